//! 逐项拍照: the materials walked in the catalog's order. After a photo is stored the screen moves
//! on to the next material still missing (上一项 goes back, 跳过 defers one), so the agent never
//! hunts through the list; once nothing is missing the end of the screen shows what the form still
//! lacks and 提交.

use bianmin_engine::case::Case;
use bianmin_engine::validate::MaterialNeed;
use dioxus::prelude::*;

/// Whether `need` still wants a photo in `case`: a required material with fewer pages than it
/// needs, or one on the town's 补正 list that was not re-photographed yet.
pub fn still_missing(need: &MaterialNeed, case: &Case) -> bool {
    if !need.required {
        return false;
    }
    if case.awaits_retake(&need.key) {
        return true;
    }
    let have = case
        .materials
        .iter()
        .find(|m| m.key == need.key)
        .map(|m| m.pages.len())
        .unwrap_or(0);
    have < need.pages.len()
}

/// The material to show after `from` (inclusive when `from` itself still misses a page): the
/// next one still missing in order, then one skipped earlier; `None` when nothing is missing.
pub fn next_missing(needs: &[MaterialNeed], case: &Case, from: Option<&str>) -> Option<String> {
    let start = from
        .and_then(|k| needs.iter().position(|n| n.key == k))
        .unwrap_or(0);
    needs[start..]
        .iter()
        .chain(needs[..start].iter())
        .find(|n| still_missing(n, case))
        .map(|n| n.key.clone())
}

/// The next material still missing after `from`, `from` itself last (跳过 defers it).
pub fn after(needs: &[MaterialNeed], case: &Case, from: &str) -> Option<String> {
    let Some(i) = needs.iter().position(|n| n.key == from) else {
        return next_missing(needs, case, None);
    };
    needs[i + 1..]
        .iter()
        .chain(needs[..=i].iter())
        .find(|n| still_missing(n, case))
        .map(|n| n.key.clone())
}

/// The material before `current` in the list, whatever its state (the way back, e.g. to retake).
pub fn previous(needs: &[MaterialNeed], current: &str) -> Option<String> {
    let i = needs.iter().position(|n| n.key == current)?;
    i.checked_sub(1).map(|j| needs[j].key.clone())
}

/// The material the walk stands on: the one the agent chose (上一项, 跳过) while it is still
/// shown, otherwise the first one still missing.
pub fn current(needs: &[MaterialNeed], case: &Case, chosen: Option<&str>) -> Option<String> {
    chosen
        .filter(|k| needs.iter().any(|n| n.key == *k))
        .map(str::to_string)
        .or_else(|| next_missing(needs, case, None))
}

/// Brings a material's card (or the end of the walk, `None`) into view below the top bar.
pub fn show(key: Option<&str>) {
    let target = match key {
        Some(k) => format!("[data-material='{k}']"),
        None => "#walk-end".to_string(),
    };
    let js = format!(
        "const el = document.querySelector({}); if (el) el.scrollIntoView({{ block: 'start' }}); return 1;",
        serde_json::to_string(&target).unwrap_or_default()
    );
    spawn(async move {
        // Nothing to scroll where there is no webview (component tests): not an error.
        let _ = document::eval(&js).await;
    });
}

/// Where the walk stands, shown on the current material's card.
#[derive(Debug, Clone, PartialEq)]
pub struct Place {
    /// 1-based position of the material in the list.
    pub position: usize,
    /// Materials still missing a photo, this one included.
    pub missing: usize,
    /// The material before it (上一项).
    pub prev: Option<String>,
    /// The next one still missing after it (先拍下一项), when there is another.
    pub skip: Option<String>,
}

/// Where the walk stands on each material: `Some` only for the current one.
pub fn place(
    needs: &[MaterialNeed],
    case: &Case,
    current: Option<&str>,
    key: &str,
) -> Option<Place> {
    if current != Some(key) {
        return None;
    }
    Some(Place {
        position: needs.iter().position(|n| n.key == key)? + 1,
        missing: needs.iter().filter(|n| still_missing(n, case)).count(),
        prev: previous(needs, key),
        skip: after(needs, case, key).filter(|k| k != key),
    })
}

/// The walk's controls on the current material's card: where it stands, 上一项 and 跳过.
#[component]
pub fn WalkHead(
    position: usize,
    missing: usize,
    walk: Signal<Option<String>>,
    prev: Option<String>,
    skip: Option<String>,
) -> Element {
    rsx! {
        div { class: "walk-head", id: "walk-head",
            span { class: "walk-pos", "逐项拍照：第{position}项" if missing > 0 { "，还有{missing}项未拍齐" } }
            if let Some(p) = prev {
                button { class: "mini", id: "walk-prev",
                    onclick: move |_| { walk.set(Some(p.clone())); show(Some(&p)); },
                    "上一项"
                }
            }
            if let Some(s) = skip {
                button { class: "mini", id: "walk-skip",
                    onclick: move |_| { walk.set(Some(s.clone())); show(Some(&s)); },
                    "先拍下一项"
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bianmin_protocol::{AttachmentRef, MaterialPages};

    fn need(key: &str, pages: usize, required: bool) -> MaterialNeed {
        MaterialNeed {
            key: key.into(),
            name: key.into(),
            pages: (0..pages).map(|i| format!("第{}张", i + 1)).collect(),
            required,
            more_pages: false,
        }
    }

    fn with_pages(case: &mut Case, key: &str, n: usize) {
        case.materials.retain(|m| m.key != key);
        case.materials.push(MaterialPages {
            key: key.into(),
            pages: (0..n)
                .map(|i| AttachmentRef {
                    name: format!("{key}-{i}.jpg"),
                    sha256: format!("{key}{i}"),
                    bytes: 1,
                    mime: "image/jpeg".into(),
                })
                .collect(),
        });
    }

    fn blank() -> Case {
        let agent = bianmin_protocol::AgentRef {
            device_id: "K7Q2MX".into(),
            name: "李代办".into(),
            village: "140423101201".into(),
        };
        Case::new(
            "140423101201-20261102-K7Q2MX-0001".into(),
            "V11",
            bianmin_protocol::Applicant::default(),
            agent,
            chrono::Utc::now(),
        )
    }

    #[test]
    fn the_walk_goes_to_the_next_missing_material_then_to_skipped_ones_then_ends() {
        let needs = [
            need("id_card", 2, true),
            need("optional", 1, false),
            need("register", 2, true),
            need("form", 1, true),
        ];
        let mut case = blank();
        assert_eq!(current(&needs, &case, None).as_deref(), Some("id_card"));
        // One side of the card: the walk stays for the other side.
        with_pages(&mut case, "id_card", 1);
        assert_eq!(
            next_missing(&needs, &case, Some("id_card")).as_deref(),
            Some("id_card")
        );
        // Both sides: on to the next required material, past the optional one.
        with_pages(&mut case, "id_card", 2);
        assert_eq!(
            next_missing(&needs, &case, Some("id_card")).as_deref(),
            Some("register")
        );
        // 跳过 the register: the form next, and the register again after it.
        assert_eq!(after(&needs, &case, "register").as_deref(), Some("form"));
        with_pages(&mut case, "form", 1);
        assert_eq!(
            next_missing(&needs, &case, Some("form")).as_deref(),
            Some("register")
        );
        with_pages(&mut case, "register", 2);
        assert_eq!(next_missing(&needs, &case, Some("register")), None);
        assert_eq!(current(&needs, &case, None), None, "the walk has ended");
        // The way back reaches any material, complete or not, and stops at the first.
        assert_eq!(previous(&needs, "register").as_deref(), Some("optional"));
        assert_eq!(previous(&needs, "id_card"), None);
        assert_eq!(
            current(&needs, &case, Some("id_card")).as_deref(),
            Some("id_card"),
            "a material chosen by 上一项 stays current while it is shown"
        );
        assert_eq!(current(&needs, &case, Some("gone")), None);
    }
}
