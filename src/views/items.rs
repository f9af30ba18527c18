//! The item list: every village-level item of the catalog, searchable by name, code or pinyin initials.

use std::cell::RefCell;
use std::rc::Rc;

use dioxus::prelude::*;

use crate::components::top_bar::TopBar;
use crate::route::Route;
use crate::services::search::SearchKey;
use crate::services::{use_catalog, use_catalog_version};

/// Lists the village items (村级政务服务事项) with a search box.
#[component]
pub fn ItemList() -> Element {
    let catalog = use_catalog();
    let version = use_catalog_version();
    let nav = navigator();
    // Initials are computed once per catalog version, not per keystroke.
    let cache = use_hook(|| Rc::new(RefCell::new(None::<(u32, Rc<Vec<(String, SearchKey)>>)>)));
    let cached = cache.borrow().clone();
    let keys = match cached {
        Some((v, keys)) if v == version => keys,
        _ => {
            let keys = Rc::new(
                catalog
                    .village_items()
                    .map(|i| (i.code.clone(), SearchKey::new(&i.code, &i.name)))
                    .collect::<Vec<_>>(),
            );
            *cache.borrow_mut() = Some((version, keys.clone()));
            keys
        }
    };
    let mut query = use_signal(String::new);
    let q = query.read().clone();
    let items: Vec<_> = catalog
        .village_items()
        .zip(keys.iter())
        .filter(|(_, (_, key))| key.matches(&q))
        .map(|(i, _)| (i.code.clone(), i.seq, i.name.clone(), i.kind.clone()))
        .collect();
    rsx! {
        TopBar { title: "选择事项" }
        input {
            class: "search",
            id: "item-search",
            r#type: "search",
            placeholder: "搜索事项名称或拼音首字母，如 dbsq",
            value: "{query}",
            oninput: move |e| query.set(e.value()),
        }
        p { class: "count", "共 {items.len()} 项" }
        if items.is_empty() {
            p { class: "empty", "没有找到相关事项，请换个说法，或输入拼音首字母。" }
        }
        ul { class: "items",
            for (code, seq, name, kind) in items {
                li { key: "{code}",
                    button { class: "item", "data-code": "{code}",
                        onclick: { let code = code.clone(); move |_| { nav.push(Route::GuideScreen { code: code.clone() }); } },
                        span { class: "seq", "{seq}" }
                        span { class: "name", "{name}" }
                        span { class: "kind", "{kind}" }
                    }
                }
            }
        }
    }
}
