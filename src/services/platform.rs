//! Where the app keeps its data, per platform.
//!
//! Desktop: `BIANMIN_DATA` if set (tests, several agents on one PC), else the OS data directory.
//! Android: `Context.getFilesDir()` through JNI, because `dirs` knows no Android paths (BRIEF §6).
//! iOS: the app sandbox's Application Support directory under `$HOME`.

use std::path::PathBuf;

/// The directory for the outbox, photos and enrolment; created if missing.
pub fn data_dir() -> Result<PathBuf, String> {
    let dir = match std::env::var_os("BIANMIN_DATA") {
        Some(d) => PathBuf::from(d),
        None => platform_dir()?,
    };
    std::fs::create_dir_all(&dir)
        .map_err(|e| format!("无法创建数据目录 {}：{e}", dir.display()))?;
    Ok(dir)
}

#[cfg(not(any(target_os = "android", target_os = "ios")))]
fn platform_dir() -> Result<PathBuf, String> {
    dirs::data_local_dir()
        .map(|d| d.join("bianmin"))
        .ok_or_else(|| "找不到本机数据目录，请设置 BIANMIN_DATA".to_string())
}

#[cfg(target_os = "android")]
fn platform_dir() -> Result<PathBuf, String> {
    use manganis::jni::objects::{JObject, JString};
    manganis::android::with_activity(|env, activity| {
        let result = (|| -> Result<String, manganis::jni::errors::Error> {
            let file: JObject = env
                .call_method(activity, "getFilesDir", "()Ljava/io/File;", &[])?
                .l()?;
            let path: JString = env
                .call_method(&file, "getAbsolutePath", "()Ljava/lang/String;", &[])?
                .l()?
                .into();
            let s: String = env.get_string(&path)?.into();
            Ok(s)
        })();
        Some(
            result
                .map(PathBuf::from)
                .map_err(|e| format!("无法读取应用数据目录：{e}")),
        )
    })
    .unwrap_or_else(|| Err("无法读取应用数据目录：JNI 不可用".to_string()))
}

#[cfg(target_os = "ios")]
fn platform_dir() -> Result<PathBuf, String> {
    // Inside the sandbox HOME is the app container; Library/Application Support is backed up and private.
    std::env::var_os("HOME")
        .map(|h| PathBuf::from(h).join("Library/Application Support/bianmin"))
        .ok_or_else(|| "无法读取应用数据目录".to_string())
}
