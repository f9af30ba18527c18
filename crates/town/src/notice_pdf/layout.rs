//! A small page composer for printed notices: A4 pages of wrapped Chinese text, rules and page
//! images, laid out top to bottom, then painted with krilla (which embeds a subset of the font).
//!
//! Text widths are estimated (a full-width character is one em, an ASCII one 0.55 em, the widest
//! Noto Sans CJK Latin glyphs being narrower), which is all wrapping and centring need: a notice has
//! no justified text and the estimate errs towards shorter lines.

use krilla::geom::{PathBuilder, Point, Size, Transform};
use krilla::image::Image;
use krilla::page::PageSettings;
use krilla::paint::Stroke;
use krilla::text::{Font, TextDirection};
use krilla::Document;
use thiserror::Error;

/// A4 in PDF points.
pub const PAGE_W: f32 = 595.28;
pub const PAGE_H: f32 = 841.89;
const MARGIN_X: f32 = 64.0;
const MARGIN_TOP: f32 = 64.0;
/// Room kept at the bottom of every page for its footer.
const MARGIN_BOTTOM: f32 = 64.0;
/// Body text size.
pub const BODY: f32 = 12.5;

/// What krilla could not write.
#[derive(Debug, Error)]
#[error("the PDF could not be written: {0}")]
pub struct LayoutError(pub String);

enum Op {
    Text {
        x: f32,
        y: f32,
        size: f32,
        text: String,
    },
    Rule {
        x1: f32,
        x2: f32,
        y: f32,
    },
    Image {
        image: Image,
        x: f32,
        y: f32,
        w: f32,
        h: f32,
    },
}

/// Pages being composed; `finish` paints them.
pub struct Sheet {
    font: Font,
    pages: Vec<Vec<Op>>,
    /// Where the next line's top is on the current page.
    y: f32,
    /// Printed at the foot of every page with its number (the case number, so loose pages
    /// find their case again).
    footer: String,
}

/// Estimated advance of `c` in em.
fn advance(c: char) -> f32 {
    if c.is_ascii() {
        0.55
    } else {
        1.0
    }
}

/// Estimated width of `text` at `size`.
pub fn width(text: &str, size: f32) -> f32 {
    text.chars().map(advance).sum::<f32>() * size
}

/// Characters that must not begin a line (避头点).
fn no_line_start(c: char) -> bool {
    "，。、；：？！）》」』”’,.;:?!)".contains(c)
}

/// Breaks `text` into lines no wider than `max` at `size`; explicit newlines are kept.
pub fn wrap(text: &str, size: f32, max: f32) -> Vec<String> {
    let mut lines = Vec::new();
    for para in text.split('\n') {
        let mut line = String::new();
        let mut w = 0.0;
        for c in para.chars() {
            let a = advance(c) * size;
            if w + a > max && !line.is_empty() && !no_line_start(c) {
                lines.push(std::mem::take(&mut line));
                w = 0.0;
            }
            line.push(c);
            w += a;
        }
        lines.push(line);
    }
    lines
}

impl Sheet {
    pub fn new(font: Font, footer: impl Into<String>) -> Sheet {
        Sheet {
            font,
            pages: vec![Vec::new()],
            y: MARGIN_TOP,
            footer: footer.into(),
        }
    }

    fn ops(&mut self) -> &mut Vec<Op> {
        self.pages.last_mut().expect("a sheet always has a page")
    }

    /// Starts a new page.
    pub fn page_break(&mut self) {
        self.pages.push(Vec::new());
        self.y = MARGIN_TOP;
    }

    /// Makes room for `h` points, on a new page if this one is full.
    fn room(&mut self, h: f32) {
        if self.y + h > PAGE_H - MARGIN_BOTTOM && self.y > MARGIN_TOP {
            self.page_break();
        }
    }

    fn text_at(&mut self, x: f32, size: f32, text: &str) {
        let line_h = size * 1.7;
        self.room(line_h);
        // The baseline sits about 0.88 em below the line's top in Noto Sans CJK.
        let y = self.y + size * 1.1;
        self.ops().push(Op::Text {
            x,
            y,
            size,
            text: text.to_string(),
        });
        self.y += line_h;
    }

    /// A centred heading.
    pub fn title(&mut self, text: &str, size: f32) {
        let x = ((PAGE_W - width(text, size)) / 2.0).max(MARGIN_X);
        self.text_at(x, size, text);
        self.gap(size * 0.6);
    }

    /// A wrapped paragraph, its first line indented by `indent` em (two for body text, 公文格式).
    pub fn para(&mut self, text: &str, size: f32, indent: usize) {
        let lead = "\u{3000}".repeat(indent);
        let full = format!("{lead}{text}");
        for line in wrap(&full, size, PAGE_W - 2.0 * MARGIN_X) {
            self.text_at(MARGIN_X, size, &line);
        }
    }

    /// `label：value`, the value wrapped under itself.
    pub fn field(&mut self, label: &str, value: &str) {
        let head = format!("{label}：");
        let x = MARGIN_X + width(&head, BODY);
        let lines = wrap(value, BODY, PAGE_W - MARGIN_X - x);
        for (i, line) in lines.iter().enumerate() {
            let line_h = BODY * 1.7;
            self.room(line_h);
            if i == 0 {
                let y = self.y + BODY * 1.1;
                self.ops().push(Op::Text {
                    x: MARGIN_X,
                    y,
                    size: BODY,
                    text: head.clone(),
                });
            }
            self.text_at(x, BODY, line);
        }
    }

    /// A right-aligned line (the issuing office, the date).
    pub fn right(&mut self, text: &str, size: f32) {
        let x = (PAGE_W - MARGIN_X - width(text, size)).max(MARGIN_X);
        self.text_at(x, size, text);
    }

    /// Vertical space.
    pub fn gap(&mut self, h: f32) {
        self.y += h;
    }

    /// A horizontal rule across the text column.
    pub fn rule(&mut self) {
        self.room(8.0);
        let y = self.y + 4.0;
        self.ops().push(Op::Rule {
            x1: MARGIN_X,
            x2: PAGE_W - MARGIN_X,
            y,
        });
        self.y += 8.0;
    }

    /// A page holding one scanned page under its caption, scaled to fit and never enlarged
    /// beyond 1 px = 0.75 pt (96 dpi) so a small scan is not blown up.
    pub fn image_page(&mut self, caption: &str, image: Image) {
        if !self.ops().is_empty() {
            self.page_break();
        }
        self.text_at(MARGIN_X, BODY, caption);
        self.gap(6.0);
        let (iw, ih) = image.size();
        let (iw, ih) = (iw.max(1) as f32, ih.max(1) as f32);
        let box_w = PAGE_W - 2.0 * MARGIN_X;
        let box_h = PAGE_H - MARGIN_BOTTOM - self.y;
        let scale = (box_w / iw).min(box_h / ih).min(0.75);
        let (w, h) = (iw * scale, ih * scale);
        let (x, y) = (MARGIN_X + (box_w - w) / 2.0, self.y);
        self.ops().push(Op::Image { image, x, y, w, h });
        self.y += h;
    }

    /// Paints every page with its footer (`案件编号 … 第 n 页 共 m 页`) and returns the PDF.
    pub fn finish(self) -> Result<Vec<u8>, LayoutError> {
        let mut doc = Document::new();
        let total = self.pages.len();
        let font = self.font;
        for (n, ops) in self.pages.into_iter().enumerate() {
            let settings = PageSettings::from_wh(PAGE_W, PAGE_H)
                .ok_or_else(|| LayoutError("bad page size".into()))?;
            let mut page = doc.start_page_with(settings);
            let mut surface = page.surface();
            let foot = format!("{}    第 {} 页 共 {} 页", self.footer, n + 1, total);
            let foot_ops = [Op::Text {
                x: (PAGE_W - width(&foot, 9.0)) / 2.0,
                y: PAGE_H - MARGIN_BOTTOM / 2.0,
                size: 9.0,
                text: foot,
            }];
            for op in ops.into_iter().chain(foot_ops) {
                match op {
                    Op::Text { x, y, size, text } => surface.draw_text(
                        Point::from_xy(x, y),
                        font.clone(),
                        size,
                        &text,
                        false,
                        TextDirection::Auto,
                    ),
                    Op::Rule { x1, x2, y } => {
                        let mut pb = PathBuilder::new();
                        pb.move_to(x1, y);
                        pb.line_to(x2, y);
                        if let Some(path) = pb.finish() {
                            surface.set_stroke(Some(Stroke {
                                width: 0.8,
                                ..Default::default()
                            }));
                            surface.draw_path(&path);
                            surface.set_stroke(None);
                        }
                    }
                    Op::Image { image, x, y, w, h } => {
                        let size = Size::from_wh(w, h)
                            .ok_or_else(|| LayoutError("bad image size".into()))?;
                        surface.push_transform(&Transform::from_translate(x, y));
                        surface.draw_image(image, size);
                        surface.pop();
                    }
                }
            }
            surface.finish();
            page.finish();
        }
        doc.finish().map_err(|e| LayoutError(format!("{e:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapping_keeps_every_character_and_no_line_starts_with_a_comma() {
        let text =
            "经审查，你提交的申请材料不齐全，现一次性告知需要补正的全部内容，请补正后重新提交。"
                .repeat(3);
        let lines = wrap(&text, BODY, 200.0);
        assert!(lines.len() > 3);
        assert_eq!(lines.concat(), text);
        for l in &lines[1..] {
            assert!(!l.starts_with('，') && !l.starts_with('。'), "{l}");
        }
        for l in &lines {
            // One closing mark may hang past the edge.
            assert!(width(l, BODY) <= 200.0 + BODY, "{l}");
        }
    }
}
