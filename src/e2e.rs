//! End-to-end driver (feature `e2e`, activated by `BIANMIN_E2E=1`): drives the real webview through `document::eval`.
//!
//! The driver fills inputs and clicks exactly as a user would (DOM events that Dioxus serialises
//! to Rust), waits for conditions by polling the DOM with a bounded wait, saves screenshots at
//! phone and tablet size, and exits 0 when every step passed or 1 naming the step that failed.
//! `tests/e2e.rs` starts two instances of the app in this mode against one town centre: the village
//! agent's phone (`scenario`) and the town staff's tablet (`BIANMIN_E2E_ROLE=town`,
//! `town_scenario`). They coordinate only through the town centre, each waiting for the other's
//! decision to show on its own screen. Photos go through the capture interface's test hook (a
//! text field taking a file path), because a file input cannot be clicked from JS.
//!
//! Every screen it photographs is also checked with axe-core inside the same webview (no serious
//! or critical violation) and, at phone size, for a layout that holds (nothing wider than the
//! screen). The village side turns 大字 on after the first home screenshot, so its screens are
//! checked and photographed at the large setting; the tablet stays at the normal size. The
//! driver counts what the agent does to file the case (taps, fields typed, photos) and writes
//! it to `taps.txt`.
//!
//! Environment: `BIANMIN_E2E_OUT` (screenshot and result dir), `BIANMIN_E2E_PHOTO` (a JPEG),
//! `BIANMIN_SERVER` (prefills enrolment), `BIANMIN_DATA` (a fresh data dir), `BIANMIN_E2E_AXE`
//! (axe-core's `axe.min.js`, installed by `tools/deps.sh`).

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bianmin_engine::catalog::{Catalog, FieldKind};
use bianmin_engine::validate::checksum_char;
use chrono::Local;
use dioxus::prelude::*;
use serde_json::Value;

/// The item the scenario applies for: 城乡居民最低生活保障的申报.
pub const ITEM: &str = "V11";
/// How long any single condition may take before the step fails.
const BOUNDED_WAIT: Duration = Duration::from_secs(30);
/// How long one app may wait for the other to act (the other app files or decides a case through
/// its own screens, on a shared machine): a failure deadline, not a pause.
const OTHER_PARTY_WAIT: Duration = Duration::from_secs(480);

/// What the town tablet asks to be corrected, and how it completes the case (the village checks
/// it sees exactly this).
pub const CORRECTION_NOTE: &str = "照片不清楚，请重拍一张";
pub const RESULT: &str = "已批准，低保证明随件邮寄";
pub const CARRIER: &str = "中国邮政EMS";
pub const TRACKING: &str = "1151234567890";
/// The chain to the county: the town forwards the simple case with this note, the county office
/// (the test drives its pages in Chromium) asks for this, the tablet answers with the reply, and
/// the county completes it with this result, which the phone and the resident page show.
pub const COUNTY_NOTE: &str = "材料齐全，请县里审批";
pub const COUNTY_REQUEST: &str = "请补充申请人户口簿本人页";
pub const COUNTY_REPLY: &str = "户口簿本人页已补交，请核对";
pub const COUNTY_RESULT: &str = "准予办理，县里已出具证明";
/// The town's two staff accounts (name, PIN): the first asks for the correction, the second
/// takes the tablet over (换人) and accepts and completes the case.
pub const STAFF: [(&str, &str); 2] = [("张窗口", "204816"), ("李窗口", "580317")];

/// The material the town asks to be corrected: the scenario item's first required one.
pub fn correction_material() -> Result<String, String> {
    let catalog = Catalog::embedded().map_err(|e| e.to_string())?;
    let guide = catalog
        .item(ITEM)
        .and_then(|i| i.guide.clone())
        .ok_or("scenario item has no guide")?;
    guide
        .materials
        .iter()
        .find(|m| m.required)
        .map(|m| m.key.clone())
        .ok_or_else(|| "scenario item has no required material".to_string())
}

/// Phone and tablet viewport sizes of the acceptance criteria.
pub const PHONE: (u32, u32) = (360, 640);
pub const TABLET: (u32, u32) = (1280, 800);

/// A valid resident ID number for the scenario's applicant, born 1980-01-01.
pub fn valid_id() -> String {
    let first17 = "14042319800101123";
    format!("{first17}{}", checksum_char(first17.as_bytes()))
}

/// The same number with a wrong check digit, which validation must flag.
pub fn invalid_id() -> String {
    let good = valid_id();
    let last = good.chars().last().expect("18 chars");
    let wrong = if last == '1' { '2' } else { '1' };
    format!("{}{wrong}", &good[..17])
}

/// Renders nothing; in test mode it starts the scenario once the root is mounted.
#[component]
pub fn Driver() -> Element {
    let originals = crate::services::use_originals();
    use_hook(move || {
        if std::env::var_os("BIANMIN_BENCH").is_some() {
            spawn(async move {
                // First screen rendered: the root is in the DOM and painted.
                let _ = document::eval("await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r))); return 1;").await;
                println!("BIANMIN_FIRST_SCREEN");
                std::process::exit(0);
            });
        }
        if std::env::var_os("BIANMIN_E2E").is_some() {
            spawn(async move {
                let run = if std::env::var("BIANMIN_E2E_ROLE").as_deref() == Ok("town") {
                    town_scenario().await
                } else {
                    scenario(originals).await
                };
                let code = match run {
                    Ok(()) => {
                        println!("E2E PASS");
                        0
                    }
                    Err(e) => {
                        eprintln!("E2E FAIL: {e}");
                        let _ = screenshot("failure", PHONE).await;
                        1
                    }
                };
                std::process::exit(code);
            });
        }
    });
    rsx! {}
}

type Step = Result<(), String>;

fn out_dir() -> PathBuf {
    PathBuf::from(std::env::var("BIANMIN_E2E_OUT").unwrap_or_else(|_| "target/e2e".into()))
}

async fn eval(js: &str) -> Result<Value, String> {
    document::eval(js)
        .await
        .map_err(|e| format!("eval failed: {e:?}\n{js}"))
}

/// JS string literal.
fn lit(s: &str) -> String {
    serde_json::to_string(s).expect("string serialises")
}

/// Polls `cond` (a JS expression) until it is truthy, at most `BOUNDED_WAIT`.
async fn wait_for(cond: &str, what: &str) -> Step {
    wait_for_in(cond, what, BOUNDED_WAIT).await
}

/// Presses "立即同步" until `cond` holds: the town tablet acts in its own time (another app).
async fn sync_until(cond: &str, what: &str) -> Step {
    press_until("#sync-now", cond, what).await
}

/// Presses `button` (a refresh) until `cond` holds, for at most `OTHER_PARTY_WAIT`.
async fn press_until(button: &str, cond: &str, what: &str) -> Step {
    let start = Instant::now();
    loop {
        click(button).await?;
        if wait_for_in(cond, what, Duration::from_secs(3))
            .await
            .is_ok()
        {
            return Ok(());
        }
        if start.elapsed() > OTHER_PARTY_WAIT {
            return wait_for_in(cond, what, Duration::ZERO).await;
        }
    }
}

async fn wait_for_in(cond: &str, what: &str, limit: Duration) -> Step {
    let start = Instant::now();
    loop {
        // An eval issued before the webview finished loading the page fails; that is "not yet".
        let v = eval(&format!(
            "try {{ return !!({cond}); }} catch (e) {{ return false; }}"
        ))
        .await;
        if v == Ok(Value::Bool(true)) {
            return Ok(());
        }
        if start.elapsed() > limit {
            let body = eval("return document.body.innerText.slice(0, 800);")
                .await
                .unwrap_or_default();
            return Err(format!(
                "timed out waiting for {what} ({cond}); screen text: {body}"
            ));
        }
        // Yield to the UI between polls; the condition, not the delay, is what synchronises.
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
}

async fn wait_el(sel: &str) -> Step {
    wait_for(&format!("document.querySelector({})", lit(sel)), sel).await
}

/// What the driver did, as the agent would: taps on buttons and boxes, fields typed into (each
/// also a tap to focus), photos taken (each a capture button and the shutter).
static TAPS: AtomicUsize = AtomicUsize::new(0);
static FIELDS: AtomicUsize = AtomicUsize::new(0);
static PHOTOS_TAKEN: AtomicUsize = AtomicUsize::new(0);
/// Off while the scenario does what an agent filing a case would not (typing a wrong ID number
/// on purpose, the corner editor, trying the delete confirmation).
static COUNTING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);

fn counting(on: bool) {
    COUNTING.store(on, Ordering::Relaxed);
}

fn count(c: &AtomicUsize) {
    if COUNTING.load(Ordering::Relaxed) {
        c.fetch_add(1, Ordering::Relaxed);
    }
}

/// The counters now: (taps, fields, photos).
fn effort() -> (usize, usize, usize) {
    (
        TAPS.load(Ordering::Relaxed),
        FIELDS.load(Ordering::Relaxed),
        PHOTOS_TAKEN.load(Ordering::Relaxed),
    )
}

/// One line of `taps.txt`: what filing `what` took between two readings of [`effort`]. The
/// total counts a field as one tap (typing is counted apart) and a photo as two.
fn record_effort(what: &str, from: (usize, usize, usize)) -> Result<String, String> {
    let now = effort();
    let (taps, fields, photos) = (now.0 - from.0, now.1 - from.1, now.2 - from.2);
    let line = format!(
        "{what}\ttaps={taps}\tfields={fields}\tphotos={photos}\ttotal_taps={}\n",
        taps + fields + 2 * photos
    );
    use std::io::Write as _;
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(out_dir().join("taps.txt"))
        .and_then(|mut f| f.write_all(line.as_bytes()))
        .map_err(|e| format!("taps.txt: {e}"))?;
    print!("E2E EFFORT {line}");
    Ok(line)
}

async fn click(sel: &str) -> Step {
    wait_el(sel).await?;
    count(&TAPS);
    act(&format!("document.querySelector({}).click();", lit(sel))).await
}

/// Runs a DOM action exactly once, after this eval has answered.
///
/// A reply can be lost ("Finished") when the screen re-renders while the eval is in flight, so
/// the action sets a per-action marker: a lost reply is resolved by reading the marker back, and
/// the action is only sent again if it never ran.
async fn act(body: &str) -> Step {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let token = NEXT.fetch_add(1, Ordering::Relaxed);
    let js = format!(
        "window.__e2e = window.__e2e || {{}};
         if (!window.__e2e[{token}]) {{ window.__e2e[{token}] = 1; setTimeout(() => {{ {body} }}, 0); }}
         return 1;"
    );
    let start = Instant::now();
    loop {
        if eval(&js).await.is_ok() {
            return Ok(());
        }
        if let Ok(Value::Bool(true)) = eval(&format!(
            "return !!(window.__e2e && window.__e2e[{token}]);"
        ))
        .await
        {
            return Ok(());
        }
        if start.elapsed() > BOUNDED_WAIT {
            return Err(format!("could not run action: {body}"));
        }
    }
}

/// An idempotent read, retried when its reply was lost.
async fn read(js: &str) -> Result<Value, String> {
    let start = Instant::now();
    loop {
        match eval(js).await {
            Ok(v) => return Ok(v),
            Err(e) if start.elapsed() > BOUNDED_WAIT => return Err(e),
            Err(_) => {}
        }
    }
}

/// Types into an input the way a keyboard does: sets the value and fires `input` (and `change`).
async fn fill(sel: &str, value: &str) -> Step {
    wait_el(sel).await?;
    if sel.starts_with(".capture-hook") {
        count(&PHOTOS_TAKEN);
    } else {
        count(&FIELDS);
    }
    act(&format!(
        "const el = document.querySelector({}); el.focus(); el.value = {};
         el.dispatchEvent(new Event('input', {{ bubbles: true }}));
         el.dispatchEvent(new Event('change', {{ bubbles: true }}));",
        lit(sel),
        lit(value)
    ))
    .await
}

async fn text(sel: &str) -> Result<String, String> {
    wait_el(sel).await?;
    let v = read(&format!(
        "return document.querySelector({}).innerText;",
        lit(sel)
    ))
    .await?;
    Ok(v.as_str().unwrap_or_default().to_string())
}

/// Resizes the window to a viewport size and waits until the page has laid out at that size.
async fn resize(size: (u32, u32)) -> Step {
    #[cfg(not(any(target_os = "android", target_os = "ios")))]
    dioxus::desktop::window().set_inner_size(dioxus::desktop::LogicalSize::new(
        size.0 as f64,
        size.1 as f64,
    ));
    // At a platform text scale the webview zooms the page: its CSS viewport is the window's size
    // divided by the scale.
    let scale = text_scale();
    if let Err(e) = wait_for(
        &format!(
            "Math.abs(window.innerWidth - {}) <= 1 && Math.abs(window.innerHeight - {}) <= 1",
            (size.0 as f64 / scale).floor(),
            (size.1 as f64 / scale).floor()
        ),
        "window resize",
    )
    .await
    {
        let got = read("return [window.innerWidth, window.innerHeight, window.devicePixelRatio, getComputedStyle(document.documentElement).fontSize];").await?;
        return Err(format!("{e} (the window is {got})"));
    }
    read("await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r))); return 1;")
        .await
        .map(|_| ())
}

/// Saves `target/e2e/{name}-{phone|tablet}.png` of the window at `size`.
async fn screenshot(name: &str, size: (u32, u32)) -> Step {
    resize(size).await?;
    let label = if size == PHONE { "phone" } else { "tablet" };
    let dir = out_dir();
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let path = dir.join(format!("{name}-{label}.png"));
    // The window sits at (0,0) of the test's own X screen, so the crop is exactly the viewport.
    let status = std::process::Command::new("import")
        .args([
            "-window",
            "root",
            "-crop",
            &format!("{}x{}+0+0", size.0, size.1),
            "+repage",
        ])
        .arg(&path)
        .status()
        .map_err(|e| format!("ImageMagick import failed to start: {e}"))?;
    if !status.success() {
        return Err(format!("import failed for {}", path.display()));
    }
    Ok(())
}

/// [`both_sizes`] with `sel` scrolled into view at each size (a resize moves the scroll).
async fn both_sizes_showing(name: &str, sel: &str) -> Step {
    for size in [TABLET, PHONE] {
        resize(size).await?;
        read(&format!(
            "document.querySelector({}).scrollIntoView({{block: 'center'}}); await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r))); return 1;",
            lit(sel)
        ))
        .await?;
        screenshot(name, size).await?;
        axe(name).await?;
    }
    fits(name).await
}

/// Both screenshots, then the checks every photographed screen passes at phone size: axe-core's
/// rules and a layout no wider than the screen.
async fn both_sizes(name: &str) -> Step {
    screenshot(name, TABLET).await?;
    axe(name).await?;
    screenshot(name, PHONE).await?;
    axe(name).await?;
    fits(name).await
}

/// Runs axe-core (WCAG 2.x A and AA rules, colour contrast included) on the screen as it is,
/// inside this webview, and fails on any serious or critical violation, naming rule and elements.
async fn axe(screen: &str) -> Step {
    if read("return typeof window.axe === 'object';").await? != Value::Bool(true) {
        let path = std::env::var("BIANMIN_E2E_AXE")
            .map_err(|_| "BIANMIN_E2E_AXE (axe.min.js) is not set".to_string())?;
        let source = std::fs::read_to_string(&path)
            .map_err(|e| format!("axe-core not readable at {path}: {e} (run tools/deps.sh)"))?;
        // A script element runs it in the page's global scope, where it defines `window.axe`.
        act(&format!(
            "const s = document.createElement('script'); s.textContent = {}; document.head.appendChild(s);",
            lit(&source)
        ))
        .await?;
        wait_for("typeof window.axe === 'object'", "axe-core loaded").await?;
    }
    let found = read(
        "const r = await axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'] }, resultTypes: ['violations'] });
         return r.violations.filter(v => v.impact === 'serious' || v.impact === 'critical')
           .map(v => v.id + ' (' + v.impact + '): ' + v.nodes.slice(0, 4).map(n => n.target.join(' ') + ' — ' + (n.failureSummary || '').replace(/\\s+/g, ' ')).join(' | '));",
    )
    .await?;
    match found.as_array() {
        Some(v) if v.is_empty() => Ok(()),
        Some(v) => Err(format!(
            "axe-core on {screen}: {}",
            v.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join("\n")
        )),
        None => Err(format!("axe-core on {screen} answered {found}")),
    }
}

/// At phone size the screen scrolls only up and down: nothing is wider than the window, at the
/// normal and the large text size alike.
async fn fits(screen: &str) -> Step {
    let wide = read(
        "return Array.from(document.querySelectorAll('body *')).filter(e => { const r = e.getBoundingClientRect(); return r.width > 0 && r.right > window.innerWidth + 1 && getComputedStyle(e).position !== 'fixed' && !e.closest('.viewer-stage, .ce-area, table.rows'); }).slice(0, 5).map(e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right));",
    )
    .await?;
    if wide != Value::Array(vec![]) {
        return Err(format!("{screen} is wider than the phone screen: {wide}"));
    }
    Ok(())
}

/// 大字: one tap on the home screen sets the root size to 130% (every size is in rem), and the
/// sync button keeps its one line at phone size.
async fn large_text_on() -> Step {
    click("#large-text").await?;
    let want = 16.0 * crate::services::display::LARGE_TEXT_PERCENT as f64 / 100.0;
    wait_for(
        &format!("Math.abs(parseFloat(getComputedStyle(document.documentElement).fontSize) - {want}) < 0.5 && parseFloat(getComputedStyle(document.body).fontSize) >= {want} - 0.5"),
        "large text applied",
    )
    .await?;
    wait_el("#large-text[aria-pressed='true']").await?;
    resize(PHONE).await?;
    one_line_sync_button().await
}

/// The test starts the tablet with the platform's text scale at 130% (`GDK_DPI_SCALE=1.3`,
/// `BIANMIN_E2E_TEXT_SCALE` tells the driver): the page follows it, and every tablet screen is
/// then checked and photographed at that scale.
async fn platform_scale_followed() -> Step {
    let scale = text_scale();
    if scale == 1.0 {
        return Ok(());
    }
    // The webview zooms the whole page (resize checks the viewport), and the app adds nothing
    // of its own: the root stays at 16 CSS px, drawn at 16 × scale.
    resize(TABLET).await?;
    wait_for(
        "Math.abs(parseFloat(getComputedStyle(document.documentElement).fontSize) - 16) < 0.5",
        "the root font size left to the webview's zoom",
    )
    .await
}

/// The platform text scale the test started this app with (`BIANMIN_E2E_TEXT_SCALE`, 1 when unset).
fn text_scale() -> f64 {
    std::env::var("BIANMIN_E2E_TEXT_SCALE")
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(1.0)
}

/// "立即同步" is one line: its text's line boxes share one top.
async fn one_line_sync_button() -> Step {
    let lines = read("const r = document.createRange(); r.selectNodeContents(document.querySelector('#sync-now')); return new Set(Array.from(r.getClientRects()).map(x => Math.round(x.top))).size;").await?;
    if lines != 1 {
        return Err(format!("立即同步 wraps into {lines} lines"));
    }
    Ok(())
}

/// How many different page photos the test provides (`page-0.jpg` ...) in `BIANMIN_E2E_PHOTO`.
pub const PHOTOS: usize = 12;

/// The photo directory; each capture takes the next page from it.
fn photo() -> Result<String, String> {
    std::env::var("BIANMIN_E2E_PHOTO").map_err(|_| "BIANMIN_E2E_PHOTO is not set".to_string())
}

/// A different page photo for every capture (`n` counts captures).
fn nth_photo(dir: &str, n: &mut usize) -> String {
    *n += 1;
    format!("{dir}/page-{}.jpg", *n % PHOTOS)
}

/// A valid answer for each field kind of the item's form.
fn answer_for(kind: FieldKind, min: Option<i64>, choices: &[String]) -> String {
    match kind {
        FieldKind::Text | FieldKind::Textarea => "家庭收入低于当地低保标准".to_string(),
        FieldKind::Number => min.unwrap_or(1).max(1).to_string(),
        FieldKind::Date => Local::now().date_naive().format("%Y-%m-%d").to_string(),
        FieldKind::Choice | FieldKind::Multi => choices.first().cloned().unwrap_or_default(),
        FieldKind::Bool => "是".to_string(),
        FieldKind::IdNumber => valid_id(),
        FieldKind::Phone => "13800138000".to_string(),
        FieldKind::Group => String::new(),
    }
}

/// The household members the scenario lists in a repeat group (three, as a real family).
const MEMBERS: usize = 3;

fn member_name(i: usize) -> &'static str {
    ["王秀英", "李大山", "李小花"][i % 3]
}

/// A valid ID number for member `i` (the first is the applicant).
fn member_id(i: usize) -> String {
    if i == 0 {
        return valid_id();
    }
    let first17 = format!("1404231985060{}10{i}", i % 10);
    format!("{first17}{}", checksum_char(first17.as_bytes()))
}

/// Fills the item's questions as shown on the screen: a field hidden by its condition is skipped,
/// a multiple choice gets its first option ticked, a repeat group gets three members, each with
/// every column the screen shows.
async fn fill_item_fields(fields: &[bianmin_engine::catalog::FieldDef]) -> Step {
    for f in fields {
        match f.kind {
            FieldKind::Group => {
                for i in 0..MEMBERS {
                    let row = format!("#group-{} .group-row[data-row='{i}']", f.key);
                    let exists =
                        read(&format!("return !!document.querySelector({});", lit(&row))).await?;
                    if exists != Value::Bool(true) {
                        click(&format!("#add-{}", f.key)).await?;
                        wait_el(&row).await?;
                    }
                    for col in &f.fields {
                        let sel = format!("#f-{}-{i}-{}", f.key, col.key);
                        let shown =
                            read(&format!("return !!document.querySelector({});", lit(&sel)))
                                .await?;
                        if shown != Value::Bool(true) {
                            continue;
                        }
                        let v = match (col.kind, col.key.as_str()) {
                            (FieldKind::IdNumber, _) => member_id(i),
                            (_, "name") => member_name(i).to_string(),
                            // The applicant is one of the members; the others are family.
                            (FieldKind::Choice, _) => {
                                col.choices[i.min(col.choices.len() - 1)].clone()
                            }
                            _ => answer_for(col.kind, col.min, &col.choices),
                        };
                        fill(&sel, &v).await?;
                    }
                }
                wait_for(
                    &format!(
                        "document.querySelectorAll('#group-{} .group-row').length === {MEMBERS}",
                        f.key
                    ),
                    "three household members",
                )
                .await?;
                read(&format!("document.querySelector('#group-{}').scrollIntoView({{block: 'start'}}); return 1;", f.key)).await?;
                both_sizes("case-household").await?;
            }
            FieldKind::Multi => {
                let first = format!("#f-{} input[type=checkbox]", f.key);
                let shown = read(&format!(
                    "return !!document.querySelector({});",
                    lit(&first)
                ))
                .await?;
                if shown == Value::Bool(true) {
                    click(&first).await?;
                    wait_for(
                        &format!("document.querySelector({}).checked", lit(&first)),
                        "choice ticked",
                    )
                    .await?;
                }
            }
            _ => {
                let sel = format!("#f-{}", f.key);
                let shown =
                    read(&format!("return !!document.querySelector({});", lit(&sel))).await?;
                if shown == Value::Bool(true) {
                    fill(&sel, &answer_for(f.kind, f.min, &f.choices)).await?;
                }
            }
        }
    }
    Ok(())
}

async fn scenario(originals: std::sync::Arc<crate::capture::pipeline::Originals>) -> Step {
    let catalog = Catalog::embedded().map_err(|e| e.to_string())?;
    let item = catalog.item(ITEM).ok_or("scenario item missing")?.clone();
    let guide = item.guide.clone().ok_or("scenario item has no guide")?;
    let photo = photo()?;
    let mut shots = 0;

    // Enrolment as a village agent, on a styled screen: the app was started without cargo's
    // environment, and the stylesheet must apply all the same.
    wait_el("#enrol-submit").await?;
    styled().await?;
    click("#role-village").await?;
    fill("#enrol-code", "140423").await?;
    fill("#enrol-person", "李代办").await?;
    click("#enrol-submit").await?;
    wait_for("document.querySelector('.errors') && document.querySelector('.errors').innerText.includes('12位')", "enrolment error")
        .await?;
    // The town centre's one-time code (from the test's town server) enrols online.
    let code = std::env::var("BIANMIN_ENROLL_CODE")
        .map_err(|_| "BIANMIN_ENROLL_CODE is not set".to_string())?;
    fill("#enrol-code", &code).await?;
    click("#enrol-submit").await?;
    wait_el("#go-items").await?;
    both_sizes("home").await?;
    legible(16.0).await?;
    one_line_sync_button().await?;
    // 大字 on: every later village screen is checked and photographed at 130%.
    large_text_on().await?;
    both_sizes("home-large").await?;
    legible(16.0 * 1.3).await?;

    // The platform's back (Android's back key is the webview's history.back()) leaves the item
    // list for home, as the top bar's ‹ does.
    click("#go-items").await?;
    wait_el(".item[data-code='V01']").await?;
    read("history.back(); return 1;").await?;
    wait_el("#go-items").await?;

    // Item list, searched by pinyin initials. From here to 提交 the driver counts what the
    // agent does to file the case.
    let filing = effort();
    click("#go-items").await?;
    wait_el(".item[data-code='V01']").await?;
    both_sizes("items").await?;
    fill("#item-search", "zdshbz").await?;
    wait_for(
        &format!("document.querySelectorAll('.item').length >= 1 && document.querySelector('.item[data-code={ITEM}]')"),
        "pinyin search result",
    )
    .await?;
    click(&format!(".item[data-code='{ITEM}']")).await?;
    wait_el("#notice").await?;
    let notice = text("#notice").await?;
    if !notice.contains("一次性告知") {
        return Err(format!("notice text missing: {notice}"));
    }
    both_sizes("guide").await?;
    click("#start-case").await?;

    // The form, with a validation error that is then corrected.
    wait_el("#f-applicant-name").await?;
    fill("#f-applicant-name", "王秀英").await?;
    counting(false);
    fill("#f-applicant-id_number", &invalid_id()).await?;
    wait_el(".problem[data-for='applicant.id_number']").await?;
    read("document.querySelector(\".problem[data-for='applicant.id_number']\").scrollIntoView({block: 'center'}); return 1;").await?;
    both_sizes("case-form-error").await?;
    counting(true);
    fill("#f-applicant-id_number", &valid_id()).await?;
    wait_for(
        "!document.querySelector(\".problem[data-for='applicant.id_number']\")",
        "ID error cleared",
    )
    .await?;
    fill("#f-applicant-phone", "13800138000").await?;
    prefilled_address().await?;
    fill_item_fields(&guide.fields).await?;

    // 提交 before the photos is refused with 初审's list of what is missing.
    counting(false);
    click("#submit").await?;
    wait_el("#precheck #still-missing").await?;
    counting(true);

    // Photos of every material the screen asks for, as many as it names (both sides of a card,
    // each household member's card): the answers decide, so the screen is the source.
    photograph_missing(&guide, &photo, &mut shots).await?;
    read("document.querySelector('#walk-end').scrollIntoView({block: 'start'}); return 1;").await?;
    both_sizes("case-walk-end").await?;
    if let Some(group) = guide.fields.iter().find(|f| f.kind == FieldKind::Group) {
        // A household member's card is asked for by name, on the screen and in 初审.
        let first = format!("{}：", member_name(0));
        let shown = text(".materials").await?;
        if guide
            .materials
            .iter()
            .any(|m| m.per.as_deref() == Some(&group.key))
            && !shown.contains(&first)
        {
            return Err(format!(
                "per-member photos are not named by member: {shown}"
            ));
        }
    }
    read("document.querySelector('.materials').scrollIntoView({block: 'start'}); return 1;")
        .await?;
    both_sizes("case-form").await?;
    counting(false);
    delete_asks_first().await?;
    adjust_first_page().await?;
    counting(true);

    wait_el("#walk-ready").await?;
    if originals.is_empty() {
        return Err("the photos just taken should be kept in memory for the corner editor".into());
    }
    click("#submit").await?;
    record_effort(&format!("{ITEM} household ({MEMBERS} members)"), filing)?;

    // The receipt is shown at once (signed on the phone, before any upload).
    wait_el("#receipt .qr svg").await?;
    // Sealed pages cannot be re-cut: their original photos left memory with the seal.
    if !originals.is_empty() {
        return Err(format!(
            "{} original photo(s) still in memory after sealing",
            originals.len()
        ));
    }
    let case_id = text("#receipt-case").await?;
    click("#receipt-done").await?;

    // The outbox: queued, then uploaded and received by the town centre.
    click("#go-outbox").await?;
    let row = format!(".case-row[data-case='{case_id}']");
    wait_el(&row).await?;
    both_sizes("outbox").await?;
    let state_is = |s: &str| format!("document.querySelector(\"{row}\").dataset.state === '{s}'");
    // Uploaded, received, then the town tablet asks for a correction; the town may act between
    // two polls, so only the correction is waited for.
    sync_until(&state_is("correction_requested"), "补正 arrives").await?;
    both_sizes("outbox-correction").await?;
    click(&row).await?;
    wait_el("#correction li").await?;
    let asked = text("#correction").await?;
    if !asked.contains(CORRECTION_NOTE) {
        return Err(format!(
            "the tablet's correction note is not shown: {asked}"
        ));
    }
    both_sizes("correction").await?;
    let keys = read(
        "return Array.from(document.querySelectorAll('#correction li')).map(l => l.dataset.key);",
    )
    .await?;
    let keys: Vec<String> = serde_json::from_value(keys).map_err(|e| e.to_string())?;
    for key in &keys {
        let have = format!("document.querySelector(\"[data-material='{key}'] .have\").innerText");
        // Asked for again: not a green 已拍 n/n until a new photo is taken.
        wait_el(&format!("[data-material='{key}'].flagged")).await?;
        let before = read(&format!("return {have};")).await?;
        if !before.as_str().is_some_and(|s| s.contains("需补正")) {
            return Err(format!("{key} is on the 补正 list but shows {before}"));
        }
        // The walk stands on what the town asked for.
        wait_el(&format!(".mat.current[data-material='{key}']")).await?;
        fill(
            &format!(".capture-hook[data-capture='{key}']"),
            &nth_photo(&photo, &mut shots),
        )
        .await?;
        wait_for(
            &format!(
                "{have} !== {before} && {have}.startsWith('已拍') && !document.querySelector(\"[data-material='{key}'].flagged\")"
            ),
            &format!("new page for {key}"),
        )
        .await?;
    }
    wait_el("#walk-ready").await?;
    click("#submit").await?;
    wait_el("#receipt .qr svg").await?;
    click("#receipt-done").await?;

    // Resubmitted as version 2 of the same case; the town tablet accepts and completes it.
    click("#go-outbox").await?;
    wait_el(&row).await?;
    // The tablet marks the result 已送达 right after 办结; either may be what arrives.
    let done = format!("({} || {})", state_is("completed"), state_is("delivered"));
    sync_until(&done, "办结 arrives").await?;
    let rows = read("return document.querySelectorAll('.case-row').length;").await?;
    if rows != 1 {
        return Err(format!(
            "expected one case after the resubmission, found {rows}"
        ));
    }
    click(&row).await?;
    wait_el("#completed").await?;
    // It opens on its outcome: above the form, inside the first screen.
    resize(PHONE).await?;
    let first = read("const o = document.querySelector('#outcome').getBoundingClientRect(); return o.top >= 0 && o.top < window.innerHeight / 2 && o.top < document.querySelector('.materials').getBoundingClientRect().top;").await?;
    if first != Value::Bool(true) {
        return Err("a finished case does not open on its result".into());
    }
    let done = text("#completed").await?;
    if !(done.contains(RESULT) && done.contains(TRACKING)) {
        return Err(format!(
            "the tablet's result and tracking number are not shown: {done}"
        ));
    }
    both_sizes("case-completed").await?;
    click("#show-receipt").await?;

    // The final receipt; the test decodes its QR from the screenshot.
    wait_el("#receipt .qr svg").await?;
    let url = read("return document.querySelector('#receipt .qr').dataset.url;").await?;
    let url = url.as_str().ok_or("no receipt url")?.to_string();
    if !url.contains(&format!("/r/{case_id}?t=")) {
        return Err(format!(
            "receipt url {url} does not point at case {case_id}"
        ));
    }
    read("document.querySelector('#receipt .qr').scrollIntoView({block: 'start'}); return 1;")
        .await?;
    screenshot("receipt", TABLET).await?;
    std::fs::write(out_dir().join("receipt-url.txt"), &url).map_err(|e| e.to_string())?;

    // Home counts the case by its outcome: 已办结, not 不予受理 or 退回补正.
    click("#receipt-done").await?;
    wait_el("#count-done").await?;
    for (id, want) in [
        ("count-done", "1"),
        ("count-refused", "0"),
        ("count-corrections", "0"),
    ] {
        let n = text(&format!("#{id} strong")).await?;
        if n != want {
            return Err(format!("home shows {n} in #{id}, expected {want}"));
        }
    }
    both_sizes("home-done").await?;

    // A simple item, filed the same way and counted by the same rules.
    let simple = file_simple_case(&photo, &mut shots).await?;
    // The town forwards it to the county, which decides it; the result comes back here.
    county_result(&simple).await?;
    // The applicant listed among the household's insured people with one tap.
    applicant_as_member().await?;
    Ok(())
}

/// The applicant's address a case starts with on the test's phone (enrolled for 南关村).
pub const VILLAGE_ADDRESS: &str = "襄垣县古韩镇南关村";

/// The address is there without typing: the phone's village, from the divisions.
async fn prefilled_address() -> Step {
    wait_for(
        &format!(
            "document.querySelector('#f-applicant-address').value === {}",
            lit(VILLAGE_ADDRESS)
        ),
        "the address prefilled with the phone's village",
    )
    .await
}

/// The simple item the driver also files and counts: 城乡参保信息和领取养老金信息查询 (the ID
/// card, and two materials only when someone else asks on the applicant's behalf).
pub const SIMPLE_ITEM: &str = "V27";

/// Photographs, in the catalog's order, every page the screen still asks for (a required
/// material that is not complete), waiting for each to be stored; then the walk's end says
/// everything is there.
async fn photograph_missing(
    guide: &bianmin_engine::catalog::Guide,
    photo: &str,
    shots: &mut usize,
) -> Step {
    for m in guide.materials.iter() {
        let have_need = read(&format!(
            "const h = document.querySelector(\"[data-material='{}'].missing .have\"); return h ? h.innerText.replace('已拍', '').trim().split('/').map(x => parseInt(x)) : [0, 0];",
            m.key
        ))
        .await?;
        let at = |i: usize| have_need.get(i).and_then(Value::as_u64).unwrap_or(0);
        let (have, need) = (at(0), at(1));
        for n in have + 1..=need {
            // 逐项拍照: after each stored page the walk already stands on the material to
            // photograph next, in order, with no tap to get there.
            wait_el(&format!(".mat.current[data-material='{}']", m.key)).await?;
            fill(
                &format!(".capture-hook[data-capture='{}']", m.key),
                &nth_photo(photo, shots),
            )
            .await?;
            wait_for(
                &format!(
                    "document.querySelector(\"[data-material='{}'] .have\").innerText.startsWith('已拍 {n}/')",
                    m.key
                ),
                &format!("photo {n} of {}", m.key),
            )
            .await?;
        }
    }
    wait_el("#walk-end #walk-ready").await
}

/// Files [`SIMPLE_ITEM`] from the home screen to its receipt, counting what the agent does.
async fn file_simple_case(photo: &str, shots: &mut usize) -> Result<String, String> {
    let catalog = Catalog::embedded().map_err(|e| e.to_string())?;
    let item = catalog.item(SIMPLE_ITEM).ok_or("simple item missing")?;
    let guide = item.guide.clone().ok_or("simple item has no guide")?;
    let filing = effort();
    click("#go-items").await?;
    click(&format!(".item[data-code='{SIMPLE_ITEM}']")).await?;
    click("#start-case").await?;
    wait_el("#f-applicant-name").await?;
    fill("#f-applicant-name", member_name(1)).await?;
    // The ID number is read from the photo of the card's front and filled with one tap (填入),
    // not typed; birth date and sex follow from it under the field.
    let number = read_card_number().await?;
    fill("#f-applicant-phone", "13900139000").await?;
    prefilled_address().await?;
    if !text("[data-derived='applicant.id_number']")
        .await?
        .starts_with("按身份证号码：")
    {
        return Err("no birth date and sex under the ID number read from the card".into());
    }
    fill_item_fields(&guide.fields).await?;
    photograph_missing(&guide, photo, shots).await?;
    click("#submit").await?;
    record_effort(
        &format!("{SIMPLE_ITEM} simple (ID number read from the card)"),
        filing,
    )?;
    wait_el("#receipt .qr svg").await?;
    let case_id = text("#receipt-case").await?;
    click("#receipt-done").await?;
    wait_el("#go-items").await?;
    tracing::info!(%number, "e2e: simple case filed with the number read from the card");
    Ok(case_id)
}

/// The simple case went to the county (转县), which asked the town for more and then completed
/// it: the phone shows the county's result, and writes the case's resident link for the test to
/// open in Chromium. Ends on the home screen.
async fn county_result(case_id: &str) -> Step {
    click("#go-outbox").await?;
    let row = format!(".case-row[data-case='{case_id}']");
    wait_el(&row).await?;
    sync_until(
        &format!("document.querySelector(\"{row}\").dataset.state === 'completed'"),
        "the county's 办结 arrives",
    )
    .await?;
    click(&row).await?;
    wait_el("#completed").await?;
    let done = text("#completed").await?;
    if !done.contains(COUNTY_RESULT) {
        return Err(format!("the county's result is not shown: {done}"));
    }
    both_sizes("case-county").await?;
    click("#show-receipt").await?;
    wait_el("#receipt .qr svg").await?;
    let url = read("return document.querySelector('#receipt .qr').dataset.url;").await?;
    let url = url.as_str().ok_or("no receipt url")?.to_string();
    std::fs::write(out_dir().join("county-receipt-url.txt"), &url).map_err(|e| e.to_string())?;
    click("#receipt-done").await?;
    wait_el("#go-items").await
}

/// Photographs the front of the applicant's ID card (`BIANMIN_E2E_CARD`, a generated card the
/// test knows the reader reads), waits for the number offered on the card's material, takes the
/// screenshots of the offer and taps 填入; returns the number now in the applicant's field.
async fn read_card_number() -> Result<String, String> {
    let card =
        std::env::var("BIANMIN_E2E_CARD").map_err(|_| "BIANMIN_E2E_CARD is not set".to_string())?;
    let want = std::env::var("BIANMIN_E2E_CARD_NUMBER")
        .map_err(|_| "BIANMIN_E2E_CARD_NUMBER is not set".to_string())?;
    wait_el(".mat.current[data-material='id_card']").await?;
    fill(".capture-hook[data-capture='id_card']", &card).await?;
    wait_for(
        "document.querySelector(\"[data-material='id_card'] .have\").innerText.startsWith('已拍 1/')",
        "the card's front stored",
    )
    .await?;
    wait_el("[data-id-offer='read'] #id-offer-accept").await?;
    let offered = text("[data-id-offer='read'] .id-read").await?;
    if offered != want {
        return Err(format!("the card offered {offered}, the card says {want}"));
    }
    both_sizes_showing("id-read", "[data-id-offer='read']").await?;
    click("#id-offer-accept").await?;
    wait_for(
        &format!(
            "document.querySelector('#f-applicant-id_number').value === {}",
            lit(&want)
        ),
        "the number read from the card filled in",
    )
    .await?;
    Ok(want)
}

/// The item whose household list includes the applicant (V32 本户参保人员（含申请人本人）):
/// one tap lists the applicant first, with 本人 derived as the relation.
pub const SELF_MEMBER_ITEM: &str = "V32";

/// Starts a [`SELF_MEMBER_ITEM`] case, taps 申请人本人, checks the row and photographs it. The
/// case stays a draft on the phone (nothing is submitted).
async fn applicant_as_member() -> Step {
    click("#go-items").await?;
    click(&format!(".item[data-code='{SELF_MEMBER_ITEM}']")).await?;
    click("#start-case").await?;
    wait_el("#f-applicant-name").await?;
    fill("#f-applicant-name", member_name(0)).await?;
    fill("#f-applicant-id_number", &member_id(0)).await?;
    click("#add-self-members").await?;
    let row = "#group-members .group-row[data-row='0']";
    wait_el(row).await?;
    for (sel, want) in [
        ("#f-members-0-name", member_name(0).to_string()),
        ("#f-members-0-id_number", member_id(0)),
        (
            "#f-members-0-relation",
            crate::views::case::household::SELF_RELATION.to_string(),
        ),
    ] {
        wait_for(
            &format!(
                "document.querySelector({}).value === {}",
                lit(sel),
                lit(&want)
            ),
            &format!("{sel} copied from the applicant"),
        )
        .await?;
    }
    wait_el("[data-derived='members.0.id_number']").await?;
    wait_el("[data-derived='members.0.relation']").await?;
    // Listed once: the offer is gone.
    wait_for(
        "!document.querySelector('#add-self-members')",
        "the offer gone once the applicant is listed",
    )
    .await?;
    both_sizes_showing(
        "case-applicant-member",
        "[data-derived='members.0.id_number']",
    )
    .await?;
    Ok(())
}

/// Every piece of text on the screen is at least `px` (16 px body text, 130% of it with 大字).
async fn legible(px: f64) -> Step {
    let small = read(&format!(
        "return Array.from(document.querySelectorAll('body *')).filter(e => Array.from(e.childNodes).some(n => n.nodeType === 3 && n.textContent.trim()) && e.getClientRects().length > 0 && parseFloat(getComputedStyle(e).fontSize) < {px} - 0.5).slice(0, 5).map(e => e.tagName.toLowerCase() + '.' + e.className + ' ' + getComputedStyle(e).fontSize);"
    ))
    .await?;
    if small != Value::Array(vec![]) {
        return Err(format!("text under {px} px: {small}"));
    }
    Ok(())
}

/// 删除 on a page asks first: the first tap only turns it into 确认删除 (with 不删), and the page
/// stays until that is tapped.
async fn delete_asks_first() -> Step {
    let pages = "document.querySelectorAll('.shot').length";
    let before = read(&format!("return {pages};")).await?;
    click(".shot .delete").await?;
    wait_el(".shot .delete.confirm").await?;
    screenshot("delete-confirm", PHONE).await?;
    axe("delete-confirm").await?;
    if read(&format!("return {pages};")).await? != before {
        return Err("a page went at the first tap of 删除".into());
    }
    click(".shot .delete-cancel").await?;
    wait_for(
        &format!("!document.querySelector('.shot .delete.confirm') && {pages} === {before}"),
        "delete cancelled, page kept",
    )
    .await
}

/// The corner editor on the first page: the top-left corner is dragged with pointer events as a
/// finger would, and 确定 re-cuts the page in place from its original (a new picture, same count).
async fn adjust_first_page() -> Step {
    let pic =
        "(s => s.length + s.slice(-48))(document.querySelector('.shot img').getAttribute('src'))";
    let before = read(&format!("return {pic};")).await?;
    // The test's pages lie edge to edge with blank margins: the scanner is sure of them, so no
    // editor has opened by itself to ask 请检查是否拍全, and the one opened here is the only one.
    let editors = read("return document.querySelectorAll('.corner-editor').length;").await?;
    if editors != 0 {
        return Err(format!(
            "{editors} corner editor(s) opened without being asked for"
        ));
    }
    click(".shot .adjust").await?;
    let handle = "document.querySelector(\".ce-handle[data-corner='0']\")";
    wait_for(handle, "corner editor").await?;
    let editors = read("return document.querySelectorAll('.corner-editor').length;").await?;
    if editors != 1 || read("return !!document.querySelector('#ce-prompt');").await? != false {
        return Err(format!(
            "expected one corner editor and no 请检查是否拍全, found {editors} editor(s)"
        ));
    }
    act(&format!("const r = {handle}.getBoundingClientRect();
         {handle}.dispatchEvent(new PointerEvent('pointerdown', {{ bubbles: true, pointerId: 1, isPrimary: true, clientX: r.x + r.width / 2, clientY: r.y + r.height / 2 }}));")).await?;
    // Grabbed (active) and the stage's rectangle re-read since (ready): moves now land.
    wait_el(".ce-handle.active[data-corner='0']").await?;
    wait_el(".ce-stage[data-ready='true']").await?;
    act(&format!("const s = document.querySelector('.ce-stage').getBoundingClientRect();
         const o = {{ bubbles: true, pointerId: 1, isPrimary: true, clientX: s.x + s.width * 0.2, clientY: s.y + s.height * 0.15 }};
         {handle}.dispatchEvent(new PointerEvent('pointermove', o));
         {handle}.dispatchEvent(new PointerEvent('pointerup', o));")).await?;
    wait_for(&format!("Math.abs(parseFloat({handle}.style.left) - 20) < 1 && !{handle}.classList.contains('active')"), "corner dragged").await?;
    both_sizes("corner-editor").await?;
    click("#ce-confirm").await?;
    wait_for(
        &format!(
            "!document.querySelector('.corner-editor') && {pic} !== {}",
            before
        ),
        "page re-cut",
    )
    .await
}

/// Waits until every page thumbnail of the open case has loaded (downloaded and verified).
async fn pages_loaded() -> Step {
    wait_for(
        "(t => t.length > 0 && Array.from(t).every(x => x.dataset.state === 'ready' && x.querySelector('img').complete && x.querySelector('img').naturalWidth > 0))(document.querySelectorAll('.thumb'))",
        "every page thumbnail loaded",
    )
    .await
}

/// The town tablet: enrols with a staff code; waits for the village's case; opens a page full
/// size; asks for a correction of the first required material through the tablet's own buttons;
/// waits for the resubmission; accepts it and completes it with mail delivery and a tracking number.
async fn town_scenario() -> Step {
    let code = std::env::var("BIANMIN_ENROLL_CODE")
        .map_err(|_| "BIANMIN_ENROLL_CODE is not set".to_string())?;
    let material = correction_material()?;
    wait_el("#enrol-submit").await?;
    click("#role-town").await?;
    fill("#enrol-code", &code).await?;
    fill("#enrol-person", "镇窗口张").await?;
    click("#enrol-submit").await?;
    // 谁在办理: the shared tablet asks who is working before anything else.
    wait_el(&format!("[data-person='{}']", STAFF[0].0)).await?;
    platform_scale_followed().await?;
    both_sizes("town-pin").await?;
    sign_in(STAFF[0]).await?;
    wait_el("#inbox-refresh").await?;

    // The village files and syncs in its own time.
    let v1 = ".town .case-row[data-state='received'][data-version='1']";
    press_until(
        "#inbox-refresh",
        &format!("document.querySelector(\"{v1}\")"),
        "version 1 in the inbox",
    )
    .await?;
    // Every row shows when it was received and its countdown; the clerk filters by village name
    // (not a 12-digit code) and finds a case by its number or the applicant's name.
    // Received dates are shown in China time, whatever the test machine's zone.
    let china = chrono::FixedOffset::east_opt(8 * 3600).expect("UTC+8");
    let today = chrono::Utc::now()
        .with_timezone(&china)
        .format("%Y-%m-%d")
        .to_string();
    let row_text = read(&format!(
        "return document.querySelector(\"{v1}\").textContent;"
    ))
    .await?
    .as_str()
    .unwrap_or_default()
    .to_string();
    if !(row_text.contains(&format!("收件 {today}")) && row_text.contains("未受理")) {
        return Err(format!(
            "the inbox row lacks its received date or countdown: {row_text}"
        ));
    }
    let case_id = read(&format!(
        "return document.querySelector(\"{v1}\").dataset.case;"
    ))
    .await?
    .as_str()
    .unwrap_or_default()
    .to_string();
    let rows = "document.querySelectorAll('.town .case-row').length";
    fill("#filter-village", "北关村").await?;
    wait_for(&format!("{rows} === 0"), "no case from 北关村").await?;
    fill("#filter-village", "南关").await?;
    wait_for(&format!("{rows} === 1"), "the case from 南关村").await?;
    fill("#inbox-search", &case_id[case_id.len() - 8..]).await?;
    wait_for(&format!("{rows} === 1"), "the case found by its number").await?;
    fill("#inbox-search", "李四").await?;
    wait_for(
        "document.querySelector('.town .empty')",
        "nobody called 李四",
    )
    .await?;
    fill("#inbox-search", member_name(0)).await?;
    wait_for(
        &format!("document.querySelector(\"{v1}\")"),
        "the case found by the applicant's name",
    )
    .await?;
    fill("#inbox-sort", "deadline").await?;
    wait_for(
        &format!("document.querySelector(\"{v1}\")"),
        "sorted by deadline",
    )
    .await?;
    both_sizes("town-inbox").await?;
    fill("#inbox-search", "").await?;
    fill("#filter-village", "").await?;
    click(v1).await?;
    wait_el("#case-state[data-state='received'][data-version='1']").await?;
    // The town's own 初审 agrees with the village's: nothing missing.
    wait_el("#town-check[data-problems='0']").await?;
    pages_loaded().await?;
    // The materials and the picks at the top of the screen; the applicant's facts are above.
    // At each size, scrolled so the materials heading sits just below the sticky top bar.
    for size in [TABLET, PHONE] {
        resize(size).await?;
        read("const h = document.querySelector('#materials'); window.scrollTo(0, h.getBoundingClientRect().top + window.scrollY - document.querySelector('.bar').offsetHeight - 8); return 1;").await?;
        screenshot("town-case", size).await?;
    }

    // A page full size: next and previous page, zoom in and out, then the screenshot at fit width.
    click(".thumb[data-state='ready']").await?;
    wait_for("document.querySelector('#viewer[data-index=\"0\"] #viewer-img') && document.querySelector('#viewer-img').complete && document.querySelector('#viewer-img').naturalWidth > 0", "page 1 full size").await?;
    let pages = read("return document.querySelectorAll('.thumb').length;")
        .await?
        .as_u64()
        .unwrap_or(0);
    if pages > 1 {
        click("#viewer-next").await?;
        wait_el("#viewer[data-index='1'] #viewer-img").await?;
        click("#viewer-prev").await?;
        wait_el("#viewer[data-index='0'] #viewer-img").await?;
    }
    click("#viewer-zoom-in").await?;
    wait_el("#viewer-img[data-zoom='150']").await?;
    let wide = read(
        "const s = document.querySelector('.viewer-stage'); return s.scrollWidth > s.clientWidth;",
    )
    .await?;
    if wide != Value::Bool(true) {
        return Err("a zoomed page does not scroll sideways".into());
    }
    click("#viewer-zoom-out").await?;
    wait_el("#viewer-img[data-zoom='100']").await?;
    // The whole page at once: the picture, as drawn inside its box, fits the stage both ways.
    let fit = read("const i = document.querySelector('#viewer-img'), s = document.querySelector('.viewer-stage'); const k = Math.min(s.clientWidth / i.naturalWidth, s.clientHeight / i.naturalHeight); const r = i.getBoundingClientRect(); return getComputedStyle(i).objectFit === 'contain' && r.width <= s.clientWidth + 1 && r.height <= s.clientHeight + 1 && (Math.abs(i.naturalWidth * k - s.clientWidth) <= 1 || Math.abs(i.naturalHeight * k - s.clientHeight) <= 1) && s.scrollHeight <= s.clientHeight + 1;").await?;
    if fit != Value::Bool(true) {
        return Err("the full-size page is not fitted whole to the screen".into());
    }
    both_sizes("town-material").await?;
    // Every viewer button is a touch target of at least 48 px on the screen, at phone size too
    // (under the platform's text scale the webview draws each CSS px `scale` screen px).
    let min_css = 48.0 / text_scale();
    let small = read(&format!("return Array.from(document.querySelectorAll('#viewer button, .thumb, .town-case .btn')).filter(b => {{ const r = b.getBoundingClientRect(); return r.width > 0 && (r.width < {min_css} - 0.5 || r.height < {min_css} - 0.5); }}).map(b => b.id || b.className);")).await?;
    if small != Value::Array(vec![]) {
        return Err(format!("touch targets under 48 px at phone size: {small}"));
    }
    click("#viewer-close").await?;
    wait_for("!document.querySelector('#viewer')", "viewer closed").await?;

    // 补正: pick the missing material, say what is wrong, press 补正.
    let mat = format!(".town-mat[data-key='{material}']");
    click(&format!("{mat} .pick input")).await?;
    fill(&format!("{mat} .pick-note"), CORRECTION_NOTE).await?;
    fill("#staff-text", "请补齐后重新提交").await?;
    wait_for(
        "document.querySelector('#act-correct').innerText.includes('1项')",
        "one item picked",
    )
    .await?;
    click("#act-correct").await?;
    click("#confirm-act").await?;
    wait_el("#case-state[data-state='correction_requested']").await?;
    wait_el("#open-correction").await?;
    click("#back-inbox").await?;

    // The village fixes and resubmits: version 2 of the same case is back in the inbox.
    let v2 = ".town .case-row[data-state='received'][data-version='2']";
    press_until(
        "#inbox-refresh",
        &format!("document.querySelector(\"{v2}\")"),
        "version 2 in the inbox",
    )
    .await?;
    let rows = read("return document.querySelectorAll('.town .case-row').length;").await?;
    if rows != 1 {
        return Err(format!(
            "expected the same single case after the resubmission, found {rows} rows"
        ));
    }
    // A colleague takes the tablet over: 换人, their name, their PIN.
    click("#operator-switch").await?;
    sign_in(STAFF[1]).await?;
    wait_for(
        &format!(
            "document.querySelector('#operator-name') && document.querySelector('#operator-name').innerText.includes({})",
            lit(STAFF[1].0)
        ),
        "the colleague signed in",
    )
    .await?;
    both_sizes("town-pin-switch").await?;
    click(v2).await?;
    wait_el("#case-state[data-state='received'][data-version='2']").await?;
    pages_loaded().await?;

    // 受理, then 办结 by mail with a tracking number.
    // 受理 asks once more; nothing is decided until 确认受理.
    click("#act-accept").await?;
    wait_el("#confirm-bar").await?;
    both_sizes("town-confirm").await?;
    if read("return !!document.querySelector(\"#case-state[data-state='received']\");").await?
        != Value::Bool(true)
    {
        return Err("受理 was sent before it was confirmed".into());
    }
    click("#confirm-act").await?;
    wait_el("#case-state[data-state='accepted']").await?;
    // 受理 started the working-day clock: a 公示 stops it (asked once more) and 恢复计时
    // starts it again, each recorded on the clock's own timeline.
    wait_el("#clock[data-paused='false'] #clock-pause").await?;
    fill("#clock-note", "低保名单在村务公开栏公示7天").await?;
    click("#clock-pause").await?;
    wait_el("#clock-confirm").await?;
    click("#clock-confirm-ok").await?;
    wait_el("#clock[data-paused='true'] #clock-paused").await?;
    wait_for(
        "document.querySelector('#clock-label').innerText.includes('暂停计时')",
        "the clock shows its pause",
    )
    .await?;
    both_sizes("town-clock-paused").await?;
    click("#clock-resume").await?;
    click("#clock-confirm-ok").await?;
    wait_el("#clock[data-paused='false'] #clock-pause").await?;
    wait_for(
        "document.querySelectorAll('.clock-entries li').length >= 2",
        "the pause and the resumption on the clock's timeline",
    )
    .await?;
    fill("#result", RESULT).await?;
    fill("#delivery", "mail").await?;
    wait_el("#tracking").await?;
    fill("#carrier", CARRIER).await?;
    fill("#tracking", TRACKING).await?;
    click("#act-complete").await?;
    click("#confirm-act").await?;
    wait_el("#case-state[data-state='completed']").await?;
    wait_for(&format!("document.querySelector('#completed') && document.querySelector('#completed').innerText.includes({})", lit(TRACKING)), "completion shown").await?;
    both_sizes("town-completed").await?;

    // The result was mailed and has arrived: 已送达, pressed on the tablet.
    click("#act-deliver").await?;
    click("#confirm-act").await?;
    wait_el("#case-state[data-state='delivered']").await?;
    both_sizes("town-delivered").await?;
    county_chain().await?;
    window_intake().await
}

/// 转县: the village's simple case is accepted and forwarded to the county office; the county
/// (driven by the test in Chromium) asks for more, which the inbox flags and the case's county box
/// shows; the tablet answers it (重新报送县里) and sees the county's 办结 come back.
async fn county_chain() -> Step {
    click("#back-inbox").await?;
    let received = ".town .case-row[data-state='received'][data-version='1']";
    press_until(
        "#inbox-refresh",
        &format!("document.querySelector(\"{received}\")"),
        "the simple case in the inbox",
    )
    .await?;
    let case_id = read(&format!(
        "return document.querySelector(\"{received}\").dataset.case;"
    ))
    .await?
    .as_str()
    .unwrap_or_default()
    .to_string();
    let row = format!(".town .case-row[data-case='{case_id}']");
    click(&row).await?;
    wait_el("#case-state[data-state='received']").await?;
    click("#act-accept").await?;
    click("#confirm-act").await?;
    wait_el("#case-state[data-state='accepted']").await?;
    fill("#staff-text", COUNTY_NOTE).await?;
    click("#act-forward").await?;
    click("#confirm-act").await?;
    wait_el("#case-state[data-state='forwarded']").await?;
    wait_el("#county[data-status='待受理']").await?;
    click("#back-inbox").await?;

    // The county's 要求补正: a badge on the row, the request in the case's county box.
    press_until(
        "#inbox-refresh",
        &format!("document.querySelector(\"{row} .county-request\")"),
        "the county's 要求补正 on the inbox row",
    )
    .await?;
    click(&row).await?;
    wait_el("#county-request").await?;
    let asked = text("#county-request-note").await?;
    if asked != COUNTY_REQUEST {
        return Err(format!("the county's request is not shown: {asked}"));
    }
    both_sizes_showing("town-county-request", "#county-request").await?;
    // An empty reply is not sent; the reply is, after 确认.
    click("#county-resend").await?;
    wait_el("#county-reply-empty").await?;
    fill("#county-reply", COUNTY_REPLY).await?;
    click("#county-resend").await?;
    click("#county-confirm-ok").await?;
    wait_el("#county-message.ok").await?;
    wait_el("#county[data-status='县已受理']").await?;

    // The county completes it: the row and the box show the decision.
    click("#back-inbox").await?;
    press_until(
        "#inbox-refresh",
        &format!("document.querySelector(\"{row}[data-state='completed']\")"),
        "the county's 办结 in the inbox",
    )
    .await?;
    click(&row).await?;
    wait_el("#county-decided").await?;
    click("#back-inbox").await?;
    wait_el("#open-window").await
}

/// 窗口收件: the screen where a clerk takes in a case from a resident at the counter.
async fn window_intake() -> Step {
    click("#open-window").await?;
    wait_el("#window-items .item-row").await?;
    both_sizes("town-window-intake").await
}

/// Picks `person` on the 谁在办理 screen and enters their PIN (two taps and the digits).
async fn sign_in(person: (&str, &str)) -> Step {
    click(&format!("[data-person='{}']", person.0)).await?;
    fill("#pin", person.1).await?;
    // 确定 is enabled once the six digits are in (the typed value reaches the screen's state
    // after the input event).
    click("#pin-ok:not([disabled])").await?;
    wait_el("#operator-name").await
}

/// The stylesheet applied: the top bar has the accent colour, not the browser's default.
async fn styled() -> Step {
    let bg =
        read("return getComputedStyle(document.querySelector('.bar')).backgroundColor;").await?;
    match bg.as_str() {
        Some(c) if c != "rgba(0, 0, 0, 0)" && c != "transparent" => Ok(()),
        _ => Err(format!(
            "the stylesheet did not apply: the top bar's background is {bg}"
        )),
    }
}
