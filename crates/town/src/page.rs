//! The page layout every HTML page of the town centre shares (resident receipt pages, county
//! oversight), and the few stock pages: a message, an internal error, a form too large.
//!
//! Server-rendered with maud (auto-escaping) and one small inline stylesheet: the resident pages
//! must load on 2G and inside WeChat's browser.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::{html, Markup, PreEscaped, DOCTYPE};

/// Shared by every HTML page of the town centre: small, readable on a 320 px screen.
pub const CSS: &str = "body{font:16px/1.6 -apple-system,'PingFang SC','Noto Sans CJK SC','Microsoft YaHei',sans-serif;margin:0;background:#f4f6f8;color:#222}\
main{max-width:40em;margin:0 auto;padding:12px}h1{font-size:1.25em;margin:.4em 0}h2{font-size:1.05em;margin:1em 0 .4em}\
.card{background:#fff;border-radius:8px;padding:12px;margin:10px 0;box-shadow:0 1px 2px #0001}\
.muted{color:#667}.ok{color:#1a7f37}.bad{color:#c0392b}ol.tl{list-style:none;padding:0;margin:0}\
ol.tl li{border-left:3px solid #1677ff;padding:0 0 10px 12px;margin-left:4px}ol.tl li.now{border-color:#1a7f37}\
label{display:block;margin:6px 0}fieldset{border:1px solid #ddd;border-radius:6px;margin:8px 0}\
select,input[type=text],input[type=password],input[type=tel],textarea{font:inherit;width:100%;box-sizing:border-box;padding:8px;border:1px solid #bbb;border-radius:6px}\
button{font:inherit;background:#0b57d0;color:#fff;border:0;border-radius:6px;padding:10px 18px;margin-top:8px;width:100%}\
table{border-collapse:collapse;width:100%;font-size:.9em}td,th{border:1px solid #ddd;padding:4px 6px;text-align:left}\
th{background:#eef2f7}.scroll{overflow-x:auto}td:first-child,th{white-space:nowrap}main.wide{max-width:72em}tr.town td{font-weight:bold;background:#f7f9fc}.flag{color:#fff;background:#c0392b;border-radius:4px;padding:0 4px}button.narrow{width:auto}\
.big{font-size:1.2em;line-height:1.7}.big h1{font-size:1.4em}.levels label{display:flex;align-items:center;min-height:48px;border:2px solid #1677ff;border-radius:10px;padding:8px 12px;margin:10px 0;color:#111}\
.levels input{width:28px;height:28px;margin:0 12px 0 0}.big button{min-height:52px;font-size:1.1em}summary{min-height:48px;line-height:48px;color:#0b57d0}\
a.call{display:block;text-align:center;background:#1a7f37;color:#fff;border-radius:10px;padding:14px;font-size:1.2em;text-decoration:none;min-height:28px}button.quiet{background:#fff;color:#0b57d0;border:2px solid #0b57d0}";

/// The page frame.
pub fn frame(title: &str, body: Markup) -> Markup {
    frame_with(title, false, body)
}

/// The page frame; `wide` for the county's tables on a desk screen.
pub fn frame_with(title: &str, wide: bool, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="zh-CN" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width,initial-scale=1";
                // Receipt links carry a token: keep it out of Referer headers and search engines.
                meta name="referrer" content="no-referrer";
                meta name="robots" content="noindex";
                title { (title) }
                style { (PreEscaped(CSS)) }
            }
            body { main class=[wide.then_some("wide")] { (body) } }
        }
    }
}

pub fn no_store(status: StatusCode, m: Markup) -> Response {
    (status, [(header::CACHE_CONTROL, "no-store")], m).into_response()
}

/// A page with a heading and one message (errors, limits, kind notices).
pub fn message_page(status: StatusCode, title: &str, message: &str) -> Response {
    no_store(
        status,
        frame(
            title,
            html! {
                div.card {
                    h1 { (title) }
                    p { (message) }
                    p.muted { "如有疑问，请联系您所在村的便民服务点代办员。" }
                }
            },
        ),
    )
}

pub fn internal(e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "page failed");
    message_page(
        StatusCode::INTERNAL_SERVER_ERROR,
        "系统繁忙",
        "系统暂时无法处理您的请求，请稍后再试。",
    )
}

/// A public form's body over `Limits::public_form`.
pub fn form_too_large() -> Response {
    message_page(
        StatusCode::PAYLOAD_TOO_LARGE,
        "提交失败",
        "提交的内容过长，请删减后重新填写。",
    )
}
