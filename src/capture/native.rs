//! Android and iOS capture through the native camera plugins in `android/` and `ios/`.
//!
//! The plugin's `start` opens the system camera (asking for the CAMERA permission first on
//! Android) and returns at once; the photo arrives later, so `poll` is asked until it reports a
//! file path, an empty string for "cancelled", or an error prefixed with `error:`.

use std::time::Duration;

use dioxus::prelude::*;

use super::Photo;

#[cfg(target_os = "android")]
#[manganis::ffi("/android")]
extern "Kotlin" {
    pub type CameraPlugin;
    pub fn start(this: &CameraPlugin) -> String;
    pub fn poll(this: &CameraPlugin) -> Option<String>;
}

#[cfg(target_os = "ios")]
#[manganis::ffi("/ios")]
extern "Swift" {
    pub type CameraPlugin;
    pub fn start(this: &CameraPlugin) -> String;
    pub fn poll(this: &CameraPlugin) -> Option<String>;
}

/// How long the agent may keep the camera open before we stop waiting.
const WAIT_AT_MOST: Duration = Duration::from_secs(600);

async fn take_photo() -> Result<Option<Photo>, String> {
    let plugin = CameraPlugin::new().map_err(|e| format!("无法打开相机：{e}"))?;
    let started = start(&plugin).map_err(|e| format!("无法打开相机：{e}"))?;
    if !started.is_empty() {
        return Err(format!("无法打开相机：{started}"));
    }
    let begun = std::time::Instant::now();
    // The camera is another activity/controller; its result is picked up by polling.
    while begun.elapsed() < WAIT_AT_MOST {
        match poll(&plugin).map_err(|e| format!("相机出错：{e}"))? {
            None => tokio::time::sleep(Duration::from_millis(250)).await,
            Some(r) if r.is_empty() => return Ok(None),
            Some(r) if r.starts_with("error:") => {
                return Err(format!(
                    "相机出错：{}。请在系统设置里允许“便民”使用相机后再试。",
                    &r[6..]
                ))
            }
            Some(path) => {
                let photo = Photo::from_path(std::path::Path::new(&path));
                // The camera wrote the full photo in clear text into our files; it now lives only
                // in memory (the outbox keeps the encrypted scan), so the file goes at once.
                if let Err(e) = std::fs::remove_file(&path) {
                    tracing::warn!(error = %e, "could not delete the camera's photo file");
                }
                return photo.map(Some);
            }
        }
    }
    Err("等待拍照超时，请再点一次拍照。".to_string())
}

pub fn button(
    label: String,
    tag: String,
    on_photo: EventHandler<Result<Photo, String>>,
) -> Element {
    rsx! {
        button {
            class: "btn capture-btn",
            "data-capture": "{tag}",
            onclick: move |_| async move {
                match take_photo().await {
                    Ok(Some(p)) => on_photo.call(Ok(p)),
                    Ok(None) => {}
                    Err(e) => on_photo.call(Err(e)),
                }
            },
            "{label}"
        }
    }
}
