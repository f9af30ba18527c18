//! Finds the CJK font printed notices are set in: a system font from a Debian package
//! (`fonts-noto-cjk`, installed by `tools/deps.sh`; `fonts-wqy-microhei` also serves), never a
//! font file in the repository. Only the glyphs a notice uses are embedded (krilla subsets them).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use krilla::text::Font;
use thiserror::Error;

/// Where a CJK font is looked for, in order, with the face of the collection to use (the
/// Simplified Chinese face of Noto Sans CJK is the third of its `.ttc`).
const KNOWN: &[(&str, u32)] = &[
    ("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc", 2),
    ("/usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc", 2),
    ("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc", 0),
    ("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc", 0),
];

/// Set to a font file (`path` or `path:face`) to use another font than the packaged ones.
pub const FONT_ENV: &str = "BIANMIN_NOTICE_FONT";

/// No usable CJK font on this server.
#[derive(Debug, Error)]
pub enum FontError {
    #[error(
        "no CJK font for printed notices: install the Debian package fonts-noto-cjk \
         (tools/deps.sh) or set {FONT_ENV} to a font file (tried {tried})"
    )]
    Missing { tried: String },
    #[error("the font file {path} could not be read: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} (face {face}) is not a font krilla can use")]
    Unusable { path: String, face: u32 },
}

/// The font, loaded once (a Noto CJK collection is about 19 MB); a failure is not kept, so
/// installing the package fixes a running server.
static LOADED: Mutex<Option<Font>> = Mutex::new(None);

/// The notice font.
pub fn cjk_font() -> Result<Font, FontError> {
    let mut slot = LOADED.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(f) = slot.as_ref() {
        return Ok(f.clone());
    }
    let (path, face) = locate()?;
    let bytes = std::fs::read(&path).map_err(|source| FontError::Read {
        path: path.display().to_string(),
        source,
    })?;
    let font = Font::new(Arc::new(bytes).into(), face).ok_or_else(|| FontError::Unusable {
        path: path.display().to_string(),
        face,
    })?;
    tracing::info!(font = %path.display(), face, "notice font loaded");
    *slot = Some(font.clone());
    Ok(font)
}

/// The configured font, a packaged one, or what fontconfig offers for Simplified Chinese.
fn locate() -> Result<(PathBuf, u32), FontError> {
    if let Ok(v) = std::env::var(FONT_ENV) {
        let (path, face) = match v.rsplit_once(':') {
            Some((p, f)) if f.parse::<u32>().is_ok() => (p.to_string(), f.parse().unwrap_or(0)),
            _ => (v.clone(), 0),
        };
        return Ok((PathBuf::from(path), face));
    }
    let mut tried: Vec<String> = Vec::new();
    for (p, face) in KNOWN {
        if std::path::Path::new(p).is_file() {
            return Ok((PathBuf::from(p), *face));
        }
        tried.push((*p).to_string());
    }
    // fontconfig knows fonts installed elsewhere; `fc-match` always answers with some font, so
    // its answer counts only when it names a CJK family.
    let out = std::process::Command::new("fc-match")
        .args([
            "-f",
            "%{family[0]}\t%{file}\t%{index}",
            "sans-serif:lang=zh-cn",
        ])
        .output();
    if let Ok(out) = out {
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let mut parts = text.split('\t');
        if let (Some(family), Some(file), Some(index)) = (parts.next(), parts.next(), parts.next())
        {
            let cjk = ["CJK", "WenQuanYi", "Hei", "Song", "Kai", "Fang"]
                .iter()
                .any(|w| family.contains(w));
            if cjk && std::path::Path::new(file).is_file() {
                return Ok((PathBuf::from(file), index.trim().parse().unwrap_or(0)));
            }
        }
    }
    tried.push("fc-match sans-serif:lang=zh-cn".into());
    Err(FontError::Missing {
        tried: tried.join(", "),
    })
}
