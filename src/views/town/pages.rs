//! The pages of a case on the tablet: reading order, download into memory, what staff see
//! when a page cannot be shown.

use std::collections::HashMap;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use bianmin_engine::case::Case;
use bianmin_engine::catalog::Guide;
use bianmin_engine::enrolment::Enrolment;
use bianmin_engine::transport::TransportError;
use bianmin_protocol::AttachmentRef;
use dioxus::prelude::*;

use super::staff_transport;

/// What the tablet holds of one page while its case is open.
#[derive(Debug, Clone, PartialEq)]
pub enum PageView {
    Loading,
    /// The verified bytes as a `data:` URL (memory only).
    Ready(String),
    /// What to tell staff, with what to do.
    Failed(String),
}

/// Turns a downloaded page into what the thumbnail and viewer show. Only picture formats are put
/// into an `<img>`; the mime type comes from the village's submission.
pub fn page_view(mime: &str, bytes: &[u8]) -> PageView {
    let m = match mime.trim().to_ascii_lowercase().as_str() {
        "image/jpeg" | "image/jpg" => "image/jpeg",
        "image/png" => "image/png",
        "image/webp" => "image/webp",
        _ => {
            return PageView::Failed(format!(
                "这一页的格式（{mime}）无法在平板上显示，请村代办员重新拍摄这一页。"
            ))
        }
    };
    PageView::Ready(format!("data:{m};base64,{}", STANDARD.encode(bytes)))
}

/// What staff are told when a page cannot be loaded, and what to do about it.
pub fn page_error(e: &TransportError) -> String {
    match e {
        TransportError::Offline(_) => {
            "网络不通，这一页没有载入。请检查网络，稍后点“重试”。".to_string()
        }
        TransportError::Retryable(_) => {
            "网络不稳定，这一页没有下载完整。请稍后点“重试”。".to_string()
        }
        TransportError::Throttled { .. } => e.staff_message(),
        TransportError::Corrupt { .. } => e.staff_message(),
        TransportError::ClockSkew { .. } => e.staff_message(),
        TransportError::Rejected { status: 401, .. } => {
            "本机登记已失效或已被停用，看不到材料。请联系镇中心管理员重新登记本机。".to_string()
        }
        TransportError::Rejected { status: 403, .. } => "本机无权查看这个村的材料。".to_string(),
        TransportError::Rejected { status: 404, .. } => {
            "镇中心没有这一页（办件可能刚重新提交）。请返回收件箱，刷新后重新打开办件。".to_string()
        }
        TransportError::Rejected { status, .. } => {
            format!("镇中心没有发来这一页（{status}）。请稍后点“重试”，仍不行请联系镇中心管理员。")
        }
    }
}

/// One page in reading order: material by material, page by page (what 上一页/下一页 walk).
#[derive(Debug, Clone, PartialEq)]
pub struct PageRef {
    pub material: String,
    /// 1-based page number within its material, and the material's page count.
    pub n: usize,
    pub of: usize,
    pub page: AttachmentRef,
}

/// A material as staff review it: the guide's materials in guide order (submitted or not), then
/// any material the case has that the guide no longer lists.
#[derive(Debug, Clone, PartialEq)]
pub struct ReviewMaterial {
    pub key: String,
    pub name: String,
    pub required: bool,
    /// Indices into the reading order (`pages_in_order`).
    pub pages: Vec<usize>,
}

/// The case's pages in reading order and its materials with their pages.
pub fn review_layout(c: &Case, guide: Option<&Guide>) -> (Vec<PageRef>, Vec<ReviewMaterial>) {
    let mut rows: Vec<ReviewMaterial> = guide
        .map(|g| {
            g.materials
                .iter()
                .map(|m| ReviewMaterial {
                    key: m.key.clone(),
                    name: m.name.clone(),
                    required: m.required,
                    pages: vec![],
                })
                .collect()
        })
        .unwrap_or_default();
    for m in &c.materials {
        if !rows.iter().any(|r| r.key == m.key) {
            rows.push(ReviewMaterial {
                key: m.key.clone(),
                name: m.key.clone(),
                required: false,
                pages: vec![],
            });
        }
    }
    let mut order = Vec::new();
    for row in rows.iter_mut() {
        let Some(m) = c.materials.iter().find(|m| m.key == row.key) else {
            continue;
        };
        for (i, p) in m.pages.iter().enumerate() {
            row.pages.push(order.len());
            order.push(PageRef {
                material: row.name.clone(),
                n: i + 1,
                of: m.pages.len(),
                page: p.clone(),
            });
        }
    }
    (order, rows)
}

/// Downloads `list` one page after another (in reading order, so thumbnails fill from the top).
pub fn load_pages(
    enrolment: Signal<Option<Enrolment>>,
    case_id: String,
    list: Vec<AttachmentRef>,
    mut pages: Signal<HashMap<String, PageView>>,
) {
    for p in &list {
        pages.write().insert(p.sha256.clone(), PageView::Loading);
    }
    spawn(async move {
        let t = match staff_transport(&enrolment.read()) {
            Ok(t) => t,
            Err(e) => {
                for p in list {
                    pages.write().insert(p.sha256, PageView::Failed(e.clone()));
                }
                return;
            }
        };
        for p in list {
            let v = match t.attachment(&case_id, &p.sha256).await {
                Ok(bytes) => page_view(&p.mime, &bytes),
                Err(e) => {
                    tracing::warn!(case = %case_id, sha = %p.sha256, error = %e, "page download failed");
                    PageView::Failed(page_error(&e))
                }
            };
            pages.write().insert(p.sha256, v);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_become_data_urls_only_for_pictures() {
        assert_eq!(
            page_view("image/jpeg", b"abc"),
            PageView::Ready("data:image/jpeg;base64,YWJj".into())
        );
        assert_eq!(
            page_view("IMAGE/PNG", b""),
            PageView::Ready("data:image/png;base64,".into())
        );
        let PageView::Failed(e) = page_view("text/html", b"<script>") else {
            panic!("html must not be shown")
        };
        assert!(e.contains("重新拍摄"));
    }

    #[test]
    fn page_errors_say_what_to_do() {
        assert!(page_error(&TransportError::Offline("x".into())).contains("网络不通"));
        assert!(page_error(&TransportError::Retryable("x".into())).contains("重试"));
        assert!(page_error(&TransportError::Corrupt {
            sha256: "a".into(),
            got: "b".into()
        })
        .contains("损坏"));
        let rej = |status| TransportError::Rejected {
            status,
            code: String::new(),
            message: String::new(),
            missing: vec![],
            upload_offset: None,
        };
        assert!(page_error(&rej(404)).contains("刷新"));
        assert!(page_error(&rej(401)).contains("重新登记"));
    }

    #[test]
    fn reading_order_follows_the_guide_and_keeps_unlisted_materials() {
        use bianmin_protocol::{AgentRef, Applicant, MaterialPages};
        let catalog = bianmin_engine::catalog::Catalog::embedded().unwrap();
        let guide = catalog.item("V11").unwrap().guide.clone().unwrap();
        let page = |n: &str| AttachmentRef {
            name: n.into(),
            sha256: n.repeat(64)[..64].to_string(),
            bytes: 1,
            mime: "image/jpeg".into(),
        };
        let mut c = Case::new(
            "140423100201-20261128-ABC234-0001".into(),
            "V11",
            Applicant::default(),
            AgentRef::default(),
            chrono::Utc::now(),
        );
        let first = guide.materials[0].key.clone();
        let second = guide.materials[1].key.clone();
        c.materials = vec![
            MaterialPages {
                key: second.clone(),
                pages: vec![page("c")],
            },
            MaterialPages {
                key: "old_key".into(),
                pages: vec![page("d")],
            },
            MaterialPages {
                key: first.clone(),
                pages: vec![page("a"), page("b")],
            },
        ];
        let (order, rows) = review_layout(&c, Some(&guide));
        let names: Vec<&str> = order.iter().map(|p| p.page.name.as_str()).collect();
        assert_eq!(names, ["a", "b", "c", "d"]);
        assert_eq!((order[1].n, order[1].of), (2, 2));
        assert_eq!(rows.len(), guide.materials.len() + 1);
        assert_eq!(rows[0].pages, [0, 1]);
        assert_eq!(rows.last().unwrap().key, "old_key");
        assert!(rows
            .iter()
            .filter(|r| r.key != first && r.key != second && r.key != "old_key")
            .all(|r| r.pages.is_empty()));
    }
}
