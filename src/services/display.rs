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

/// The text scale the platform asks for beyond what the webview already applies, read once at
/// start: on Linux desktops `GDK_DPI_SCALE`, GTK's setting for scaling text (WebKitGTK does not
/// carry it into the page's CSS). On Android the WebView's `textZoom` follows the system's
/// `fontScale` by itself and on iOS the stylesheet's `-apple-system-body` does, so there the
/// app adds nothing (1.0).
pub fn platform_text_scale() -> f64 {
    if cfg!(target_os = "linux") {
        text_scale_from(std::env::var("GDK_DPI_SCALE").ok().as_deref())
    } else {
        1.0
    }
}

/// `GDK_DPI_SCALE`'s value as a scale: a number between 0.5 and 3 (GTK's own sensible range);
/// anything else, or nothing, is 1.0 rather than an unreadable or vanishing screen.
pub fn text_scale_from(gdk_dpi_scale: Option<&str>) -> f64 {
    gdk_dpi_scale
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| (0.5..=3.0).contains(s))
        .unwrap_or(1.0)
}

/// The style that applies the settings to the whole app (rendered once, at the root): the
/// platform's scale, times 130% with 大字.
pub fn root_style(d: Display, platform_scale: f64) -> String {
    let large = if d.large_text {
        f64::from(LARGE_TEXT_PERCENT) / 100.0
    } else {
        1.0
    };
    let percent = (100.0 * platform_scale * large).round();
    if percent == 100.0 {
        String::new()
    } else {
        format!("html {{ font-size: {percent}%; }}")
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
            root_style(Display { large_text: true }, 1.0),
            "html { font-size: 130%; }"
        );
        assert_eq!(root_style(Display::default(), 1.0), "");
    }

    #[test]
    fn the_platform_scale_sizes_the_root_and_large_text_multiplies_it() {
        assert_eq!(text_scale_from(None), 1.0);
        assert_eq!(text_scale_from(Some("1.3")), 1.3);
        assert_eq!(text_scale_from(Some(" 1.25 ")), 1.25);
        for bad in ["", "abc", "0", "-1", "12", "NaN"] {
            assert_eq!(text_scale_from(Some(bad)), 1.0, "{bad:?}");
        }
        assert_eq!(
            root_style(Display::default(), 1.3),
            "html { font-size: 130%; }"
        );
        assert_eq!(
            root_style(Display { large_text: true }, 1.3),
            "html { font-size: 169%; }"
        );
    }
}
