//! Document capture behind one interface: a `CaptureButton` that hands a photo to the screen.
//!
//! Desktop uses `<input type=file accept="image/*">` and `FormEvent::files()`. Android and iOS
//! cannot: Dioxus 0.7.10 sends a file input's click to a native file dialog that returns nothing on
//! mobile (BRIEF §6), so there a native camera plugin (`android/`, `ios/`) takes the photo and
//! hands back a file path. In the end-to-end test mode the button also has a hidden text field
//! taking a file path, because a test cannot click a file input in the real webview.
//!
//! Every photo then goes through the scanner (`pipeline`, the app's only user of `bianmin-scan`):
//! `ScanCapture` runs it off the UI thread and stores the clean page, `AdjustCorners` re-cuts a
//! page from its original with the corner editor.

use dioxus::prelude::*;

pub mod id_offer;
pub mod pipeline;
mod scanning;

pub use scanning::{AdjustCorners, ScanCapture};

#[cfg(not(any(target_os = "android", target_os = "ios")))]
mod desktop;
#[cfg(any(target_os = "android", target_os = "ios"))]
mod native;

/// A captured photo, as the camera or the file picker gave it.
#[derive(Debug, Clone, PartialEq)]
pub struct Photo {
    pub bytes: Vec<u8>,
    pub name: String,
    pub mime: String,
}

impl Photo {
    /// Reads a photo from a file (native plugins and the test hook hand over paths).
    pub fn from_path(path: &std::path::Path) -> Result<Photo, String> {
        let bytes =
            std::fs::read(path).map_err(|e| format!("读取照片失败：{e}。请重新拍一次。"))?;
        if bytes.is_empty() {
            return Err("照片是空的，请重新拍一次。".to_string());
        }
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "photo.jpg".into());
        Ok(Photo {
            mime: mime_of(&name).to_string(),
            bytes,
            name,
        })
    }
}

/// The MIME type by file extension; cameras give JPEG, screenshots PNG.
pub fn mime_of(name: &str) -> &'static str {
    let lower = name.to_ascii_lowercase();
    if lower.ends_with(".png") {
        "image/png"
    } else {
        "image/jpeg"
    }
}

/// A button that takes a photo. `tag` names it in the DOM (`data-capture`) for tests and styling.
#[component]
pub fn CaptureButton(
    label: String,
    tag: String,
    on_photo: EventHandler<Result<Photo, String>>,
) -> Element {
    // The end-to-end driver types a file path here: a test cannot click a file input.
    let test_mode = cfg!(feature = "e2e");
    rsx! {
        span { class: "capture",
            {platform_button(label, tag.clone(), on_photo)}
            if test_mode {
                input {
                    class: "capture-hook",
                    r#type: "text",
                    "aria-label": "照片文件路径（测试）",
                    "data-capture": "{tag}",
                    oninput: move |e: FormEvent| {
                        let path = e.value();
                        if !path.is_empty() {
                            on_photo.call(Photo::from_path(std::path::Path::new(&path)));
                        }
                    },
                }
            }
        }
    }
}

#[cfg(not(any(target_os = "android", target_os = "ios")))]
fn platform_button(
    label: String,
    tag: String,
    on_photo: EventHandler<Result<Photo, String>>,
) -> Element {
    desktop::button(label, tag, on_photo)
}

#[cfg(any(target_os = "android", target_os = "ios"))]
fn platform_button(
    label: String,
    tag: String,
    on_photo: EventHandler<Result<Photo, String>>,
) -> Element {
    native::button(label, tag, on_photo)
}
