//! The item list: every village-level item of the catalog, searchable by name.

use std::sync::Arc;

use bianmin_engine::catalog::Catalog;
use dioxus::prelude::*;

/// Lists the village items (村级政务服务事项) with a search box.
#[component]
pub fn ItemList(catalog: Arc<Catalog>) -> Element {
    let mut query = use_signal(String::new);
    let q = query.read().trim().to_string();
    let items: Vec<_> = catalog
        .village_items()
        .filter(|i| q.is_empty() || i.name.contains(q.as_str()) || i.code.eq_ignore_ascii_case(&q))
        .map(|i| (i.code.clone(), i.seq, i.name.clone(), i.kind.clone()))
        .collect();
    rsx! {
        header { class: "bar", h1 { "村级政务服务事项" } }
        input {
            class: "search",
            r#type: "search",
            placeholder: "搜索事项名称",
            value: "{query}",
            oninput: move |e| query.set(e.value()),
        }
        p { class: "count", "共 {items.len()} 项" }
        ul { class: "items",
            for (code, seq, name, kind) in items {
                li { key: "{code}", class: "item", "data-code": "{code}",
                    span { class: "seq", "{seq}" }
                    span { class: "name", "{name}" }
                    span { class: "kind", "{kind}" }
                }
            }
        }
    }
}
