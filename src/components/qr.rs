//! A QR code rendered as inline SVG (qrcode crate), crisp at any size and printable.

use dioxus::prelude::*;
use qrcode::render::svg;
use qrcode::{EcLevel, QrCode};

/// The SVG markup for `data`, or `None` if it is too long for a QR code.
pub fn qr_svg(data: &str) -> Option<String> {
    // Level M survives a creased or smudged paper receipt.
    let code = QrCode::with_error_correction_level(data.as_bytes(), EcLevel::M).ok()?;
    Some(
        code.render::<svg::Color>()
            .min_dimensions(240, 240)
            .quiet_zone(true)
            .dark_color(svg::Color("#000000"))
            .light_color(svg::Color("#ffffff"))
            .build(),
    )
}

/// Shows `data` as a QR code.
#[component]
pub fn Qr(data: String) -> Element {
    match qr_svg(&data) {
        Some(svg) => {
            rsx! { div { class: "qr", "data-url": "{data}", dangerous_inner_html: "{svg}" } }
        }
        None => rsx! { p { class: "error", "二维码生成失败，请把办件编号抄给申请人。" } },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn svg_is_a_square_image() {
        let s = qr_svg("https://bm.example.cn/r/140423101201-20261128-K7Q2MX-0001?t=abc").unwrap();
        assert!(s.contains("<svg") && s.contains("</svg>"));
    }
}
