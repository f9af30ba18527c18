//! The app's display settings (for now the 大字 switch): kept in a small file in the data
//! directory, read once at start, and applied to the whole app through the root font size.
//!
//! Every size in `assets/style.css` is in rem, so one root size scales every screen. The file
//! holds no personal data, so it is plain JSON beside the encrypted outbox, not inside it.

use std::path::{Path, PathBuf};

use dioxus::prelude::*;
use serde::{Deserialize, Serialize};

/// The root font size with 大字 on: 130% of the platform's size, the scale layouts are checked at.
pub const LARGE_TEXT_PERCENT: u32 = 130;

/// What the agent chose; a missing or unreadable file means the defaults.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Display {
    /// 大字: the root font size at [`LARGE_TEXT_PERCENT`].
    #[serde(default)]
    pub large_text: bool,
}

/// Why the settings could not be saved.
#[derive(Debug, thiserror::Error)]
pub enum DisplayError {
    #[error("could not write display settings {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl Display {
    fn path(dir: &Path) -> PathBuf {
        dir.join("display.json")
    }

    /// The settings saved in `dir`, or the defaults when there are none (or they are unreadable:
    /// a display preference is not worth refusing to start over).
    pub fn load(dir: &Path) -> Display {
        std::fs::read(Self::path(dir))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    /// Saves the settings in `dir`, replacing the file in one rename so a crash leaves either the
    /// old or the new settings.
    pub fn save(&self, dir: &Path) -> Result<(), DisplayError> {
        let path = Self::path(dir);
        let tmp = dir.join("display.json.tmp");
        let err = |source| DisplayError::Write {
            path: path.clone(),
            source,
        };
        let body = serde_json::to_vec(self).expect("display settings serialise");
        std::fs::write(&tmp, body).map_err(err)?;
        std::fs::rename(&tmp, &path).map_err(err)
    }
}

/// The display settings and the directory they are saved in.
#[derive(Clone)]
struct DisplayCtx {
    settings: Signal<Display>,
    dir: Option<PathBuf>,
}

/// Provides the settings saved in `dir` (`None`: not saved, as in component tests).
pub fn provide_display(dir: Option<PathBuf>) -> Signal<Display> {
    let settings = use_signal(|| dir.as_deref().map(Display::load).unwrap_or_default());
    use_context_provider(|| DisplayCtx { settings, dir });
    settings
}

/// The style that applies the settings to the whole app (rendered once, at the root).
///
/// The platform's own text scale is not added here: the webview applies it to the whole page
/// already, and 大字 multiplies it. WebKitGTK zooms the page by GTK's text scale
/// (`GDK_DPI_SCALE`; the e2e runs the tablet at 1.3 and finds the page's CSS viewport 1/1.3 of
/// the window with the root still at 16 px), Android's WebView sets its `textZoom` from the
/// system's `fontScale`, and on iOS the stylesheet's `-apple-system-body` follows Dynamic Type.
pub fn root_style(d: Display) -> String {
    if d.large_text {
        format!("html {{ font-size: {LARGE_TEXT_PERCENT}%; }}")
    } else {
        String::new()
    }
}

/// The 大字 switch: one tap, applied at once and saved. Renders nothing where no settings are
/// provided.
#[component]
pub fn LargeTextSwitch() -> Element {
    let Some(ctx) = try_use_context::<DisplayCtx>() else {
        return rsx! {};
    };
    let mut settings = ctx.settings;
    let mut error = use_signal(|| None::<String>);
    let on = settings().large_text;
    rsx! {
        div { class: "display-switch",
            button {
                class: if on { "btn toggle on" } else { "btn toggle" },
                id: "large-text",
                "aria-pressed": "{on}",
                onclick: move |_| {
                    let next = Display { large_text: !on };
                    settings.set(next);
                    if let Some(dir) = &ctx.dir {
                        match next.save(dir) {
                            Ok(()) => error.set(None),
                            Err(e) => {
                                tracing::warn!(error = %e, "display settings not saved");
                                error.set(Some("大字设置未能保存，下次打开需重新设置。".into()));
                            }
                        }
                    }
                },
                if on { "大字：开" } else { "大字：关" }
            }
            if let Some(e) = error() { p { class: "error", "{e}" } }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_settings_come_back_and_a_bad_file_means_defaults() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Display::load(dir.path()), Display::default());
        Display { large_text: true }.save(dir.path()).unwrap();
        assert!(Display::load(dir.path()).large_text);
        std::fs::write(dir.path().join("display.json"), b"{not json").unwrap();
        assert_eq!(Display::load(dir.path()), Display::default());
        assert_eq!(
            root_style(Display { large_text: true }),
            "html { font-size: 130%; }"
        );
        assert_eq!(root_style(Display::default()), "");
    }
}
