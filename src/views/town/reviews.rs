//! The 差评 desk on the town tablet (reached from the inbox): the town's bad reviews, each with the
//! item, the applicant's phone for the 回访 call, the case's timeline, the resident's words and the
//! working-day clock, and a form for the loop's next step (核实 → 整改 → 回访 with its outcome).
//! 整改 sets the day of the 回访 call; the card then shows 待回访 (date) or 回访逾期, counted in
//! working days by the town centre. 核实 and 整改 take photos (the app's capture button: the
//! tablet's camera or file picker), uploaded like case pages before the step is recorded, and
//! each step's photos show as thumbnails fetched from the town centre.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use bianmin_protocol::bad_review::{outcome_label, step_label, BadReview, ReviewStepRequest};
use dioxus::prelude::*;

use crate::capture::{CaptureButton, Photo};

use crate::components::top_bar::TopBar;
use crate::components::who::WhoLine;
use crate::route::Route;
use crate::services::use_enrolment;
use crate::views::town::staff_transport;

/// "还剩3个工作日" / "今天到期" / "已超期2个工作日" / "已闭环".
pub fn clock(review: &BadReview) -> String {
    match (review.next_step.is_some(), review.working_days_left) {
        (false, _) => "已闭环".to_string(),
        (true, 0) => "今天到期".to_string(),
        (true, n) if n > 0 => format!("还剩{n}个工作日"),
        (true, n) => format!("已超期{}个工作日", -n),
    }
}

/// "待回访（2026-12-03）" / "回访逾期（应于2026-12-03回访）" while a scheduled 回访 is still to be
/// made; the town centre counts the working days, so a weekend does not make it overdue.
pub fn follow_up(review: &BadReview) -> Option<String> {
    let due = review.follow_up_due?;
    Some(match review.follow_up_days_left {
        Some(n) if n < 0 => format!("回访逾期（应于{due}回访）"),
        _ => format!("待回访（{due}）"),
    })
}

/// Photos one step may carry (the town centre refuses more).
pub const MAX_STEP_PHOTOS: usize = 6;
/// Largest photo the town centre takes, in bytes.
pub const MAX_STEP_PHOTO_BYTES: usize = 12 * 1024 * 1024;

/// Adds a taken photo to a step's, or says in Chinese why not.
pub fn add_photo(photos: &mut Vec<Photo>, photo: Photo) -> Result<(), String> {
    if photos.len() >= MAX_STEP_PHOTOS {
        return Err(format!("每一步最多{MAX_STEP_PHOTOS}张照片。"));
    }
    if photo.bytes.len() > MAX_STEP_PHOTO_BYTES {
        return Err(format!(
            "照片太大（超过{}MB），请降低相机分辨率后重拍。",
            MAX_STEP_PHOTO_BYTES / 1024 / 1024
        ));
    }
    let is_picture = photo.bytes.starts_with(&[0xFF, 0xD8, 0xFF])
        || photo.bytes.starts_with(b"\x89PNG\r\n\x1a\n");
    if !is_picture {
        return Err("这不是照片（只收JPEG或PNG），请重新拍一张。".to_string());
    }
    photos.push(photo);
    Ok(())
}

/// A moment in the tablet's local time, to the minute.
fn when(at: chrono::DateTime<chrono::Utc>) -> String {
    at.with_timezone(&chrono::Local)
        .format("%Y-%m-%d %H:%M")
        .to_string()
}

#[component]
pub fn TownReviews() -> Element {
    let enrolment = use_enrolment();
    let mut reload = use_signal(|| 0u32);
    let mut busy = use_signal(|| false);
    let mut message = use_signal(|| None::<String>);
    let reviews = use_resource(move || async move {
        let _ = reload();
        let t = staff_transport(&enrolment.read())?;
        t.bad_reviews().await.map_err(|e| e.staff_message())
    });
    // Who is recorded: the person who unlocked the tablet with their PIN (checked by the town
    // centre), or on a town without personal accounts the tablet's enrolled person.
    let operator = super::operator::use_operator();
    let (unlocked, _) = super::operator::credentials(&operator.read());
    let person = if unlocked.is_empty() {
        enrolment
            .read()
            .as_ref()
            .map(|e| e.person.clone())
            .unwrap_or_default()
    } else {
        unlocked
    };
    let record = move |(case_id, mut req, photos): (String, ReviewStepRequest, Vec<Photo>)| {
        req.pin = super::operator::credentials(&operator.read()).1;
        spawn(async move {
            busy.set(true);
            let done = async {
                let t = staff_transport(&enrolment.read())?;
                // Photos first (resumable, hash-checked); the step names them by hash.
                for p in photos {
                    let sha = t
                        .upload_bytes(p.bytes)
                        .await
                        .map_err(|e| e.staff_message())?;
                    req.photos.push(sha);
                }
                t.record_review_step(&case_id, &req)
                    .await
                    .map_err(|e| e.staff_message())
            }
            .await;
            match done {
                Ok(()) => {
                    message.set(Some(format!("已登记{}", step_label(&req.step))));
                    reload += 1;
                }
                Err(e) => message.set(Some(e)),
            }
            busy.set(false);
        });
    };
    let list: Result<Vec<BadReview>, String> = match &*reviews.read() {
        None => Ok(Vec::new()),
        Some(r) => r.clone(),
    };
    rsx! {
        TopBar { title: "差评整改" }
        main { class: "page town reviews",
            WhoLine {}
            div { class: "actions",
                button { class: "btn", id: "reviews-back", onclick: move |_| { navigator().push(Route::TownInbox {}); }, "返回收件箱" }
                button { class: "btn", id: "reviews-refresh", onclick: move |_| reload += 1, "刷新" }
            }
            if let Some(m) = message() { p { class: "muted", id: "review-message", "{m}" } }
            match list {
                Err(e) => rsx! { p { class: "error", "{e}" } },
                Ok(list) if list.is_empty() => rsx! { p { class: "empty", "本镇暂无差评。" } },
                Ok(list) => rsx! {
                    for r in list {
                        ReviewCard { key: "{r.case_id}", review: r.clone(), person: person.clone(), busy: busy(), record }
                    }
                },
            }
        }
    }
}

/// One bad review with its loop and the form for its next step.
#[component]
pub fn ReviewCard(
    review: BadReview,
    /// Who is recorded: the unlocked person, or the tablet's enrolled person.
    person: String,
    busy: bool,
    record: Callback<(String, ReviewStepRequest, Vec<Photo>)>,
) -> Element {
    // Photos taken for the next step (by its number), kept in memory until it is recorded: a
    // failed upload or refusal keeps them for another try, a recorded step leaves them behind.
    let mut photos = use_signal(|| (0usize, Vec::<Photo>::new()));
    let mut photo_error = use_signal(|| None::<String>);
    let mut notes = use_signal(String::new);
    let mut outcome = use_signal(|| "reached".to_string());
    // The 回访 day, set with the 整改 (an <input type=date> value, YYYY-MM-DD).
    let mut follow_up_on = use_signal(String::new);
    let r = &review;
    let step_no = r.steps.len();
    let pending: Vec<Photo> = {
        let p = photos.read();
        if p.0 == step_no {
            p.1.clone()
        } else {
            Vec::new()
        }
    };
    let overdue = r.next_step.is_some() && r.working_days_left < 0;
    let next = r.next_step.clone();
    let next_attr = next.clone().unwrap_or_default();
    let submit = {
        let (case_id, next, person) = (r.case_id.clone(), next.clone(), person.clone());
        let pending = pending.clone();
        move |_| {
            let Some(step) = next.clone() else { return };
            let follow_up = step == "follow_up";
            let on = (step == "rectify")
                .then(|| chrono::NaiveDate::parse_from_str(&follow_up_on.read(), "%Y-%m-%d").ok())
                .flatten();
            record.call((
                case_id.clone(),
                ReviewStepRequest {
                    step,
                    by: person.clone(),
                    notes: notes.read().trim().to_string(),
                    outcome: follow_up.then(|| outcome.read().clone()),
                    follow_up_on: on,
                    photos: Vec::new(),
                    pin: None,
                },
                pending.clone(),
            ));
            photo_error.set(None);
            notes.set(String::new());
            follow_up_on.set(String::new());
        }
    };
    rsx! {
        div { class: "card review", id: "review-{r.case_id}", "data-next": "{next_attr}",
            div { class: "row-top",
                strong { "{r.item_name}" }
                span { class: if overdue { "badge error clock" } else { "badge clock" }, "{clock(r)}" }
            }
            if let Some(f) = follow_up(r) {
                p { class: if r.follow_up_days_left.is_some_and(|n| n < 0) { "follow-up badge error" } else { "follow-up badge" }, "{f}" }
            }
            p { class: "muted", "{r.village_name} · 办件编号 {r.case_id} · 整改期限 {r.deadline}" }
            p { "申请人：{r.applicant}　电话：" a { class: "phone", href: "tel:{r.phone}", "{r.phone}" } }
            p { class: "rating",
                strong { "{r.level_label}" }
                "（服务效率{r.efficiency} · 服务水平{r.quality} · 服务态度{r.attitude}）"
            }
            if !r.comment.is_empty() { p { class: "comment", "群众意见：{r.comment}" } }
            details { class: "timeline",
                summary { "办件经过（{r.timeline.len()}）" }
                ol { for t in r.timeline.iter() {
                    li { "{when(t.at)} {t.label}"
                        if !t.note.is_empty() { "：{t.note}" } }
                } }
            }
            if !r.steps.is_empty() {
                ol { class: "steps",
                    for s in r.steps.iter() {
                        li { "data-kind": "{s.kind}",
                            strong { "{step_label(&s.kind)}" } " {s.by} {when(s.at)}"
                            br {}
                            if let Some(o) = &s.outcome { "{outcome_label(o)}。" }
                            "{s.notes}"
                            if let Some(d) = s.follow_up_on { br {} "约定回访：{d}" }
                            if !s.photos.is_empty() {
                                div { class: "step-photos",
                                    for (i, sha) in s.photos.iter().enumerate() {
                                        StepPhoto { key: "{sha}", case_id: r.case_id.clone(), sha: sha.clone(), alt: format!("{}照片{}", step_label(&s.kind), i + 1) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            if let Some(step) = next.clone() {
                div { class: "step-form",
                    p { class: "step-by", "登记人：{person}" }
                    if step == "follow_up" {
                        label { class: "field", span { "回访结果" }
                            select { class: "step-outcome", onchange: move |e| outcome.set(e.value()),
                                for o in ["reached", "unreachable"] {
                                    option { value: "{o}", selected: *outcome.read() == o, "{outcome_label(o)}" }
                                }
                            }
                        }
                    }
                    if step == "rectify" {
                        label { class: "field", span { "回访日期（工作日）" }
                            input { class: "step-follow-up", r#type: "date", value: "{follow_up_on}",
                                oninput: move |e| follow_up_on.set(e.value()) } }
                    }
                    if step != "follow_up" {
                        div { class: "step-photo-form",
                            CaptureButton { label: "拍照片", tag: "review-photo",
                                on_photo: move |p: Result<Photo, String>| {
                                    let mut w = photos.write();
                                    if w.0 != step_no {
                                        *w = (step_no, Vec::new());
                                    }
                                    let added = p.and_then(|p| add_photo(&mut w.1, p));
                                    photo_error.set(added.err());
                                }
                            }
                            if let Some(e) = photo_error() { p { class: "error photo-error", "{e}" } }
                            div { class: "step-photos pending",
                                for (i, p) in pending.iter().enumerate() {
                                    span { class: "pending-photo", key: "{i}",
                                        img { class: "thumb", alt: "待上传照片{i + 1}",
                                            src: "data:{p.mime};base64,{STANDARD.encode(&p.bytes)}" }
                                        button { class: "btn small remove-photo",
                                            onclick: move |_| { photos.write().1.remove(i); },
                                            "移除" }
                                    }
                                }
                            }
                        }
                    }
                    label { class: "field", span { "{step_label(&step)}情况" }
                        textarea { class: "step-notes", value: "{notes}", oninput: move |e| notes.set(e.value()) } }
                    button { class: "btn primary step-submit", "data-step": "{step}",
                        // A 整改 is recorded with the day of its 回访.
                        disabled: busy || notes.read().trim().is_empty()
                            || (step == "rectify" && follow_up_on.read().is_empty()),
                        onclick: submit,
                        "登记{step_label(&step)}" }
                }
            }
        }
    }
}

/// A stored photo of a step, as a thumbnail the town centre makes (memory only).
#[component]
fn StepPhoto(case_id: String, sha: String, alt: String) -> Element {
    let enrolment = use_enrolment();
    let thumb = use_resource(move || {
        let (case_id, sha) = (case_id.clone(), sha.clone());
        async move {
            let t = staff_transport(&enrolment.read())?;
            let bytes = t
                .rectification_photo(&case_id, &sha, true)
                .await
                .map_err(|e| e.staff_message())?;
            Ok::<String, String>(format!("data:image/jpeg;base64,{}", STANDARD.encode(bytes)))
        }
    });
    let shown = thumb.read().clone();
    match shown {
        Some(Ok(src)) => rsx! { img { class: "thumb", alt: "{alt}", src: "{src}" } },
        Some(Err(_)) => rsx! { span { class: "thumb missing", "{alt}未能载入" } },
        None => rsx! { span { class: "thumb loading", "{alt}载入中" } },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn review(next: Option<&str>, left: i64) -> BadReview {
        BadReview {
            case_id: "x".into(),
            village_name: String::new(),
            item_name: String::new(),
            applicant: String::new(),
            phone: String::new(),
            level: 1,
            level_label: String::new(),
            efficiency: 1,
            quality: 1,
            attitude: 1,
            comment: String::new(),
            rated_at: chrono::Utc::now(),
            deadline: chrono::Utc::now().date_naive(),
            working_days_left: left,
            timeline: vec![],
            steps: vec![],
            next_step: next.map(str::to_string),
            follow_up_due: None,
            follow_up_days_left: None,
        }
    }

    #[test]
    fn the_clock_in_plain_chinese() {
        assert_eq!(clock(&review(Some("verify"), 15)), "还剩15个工作日");
        assert_eq!(clock(&review(Some("rectify"), 0)), "今天到期");
        assert_eq!(clock(&review(Some("follow_up"), -2)), "已超期2个工作日");
        assert_eq!(clock(&review(None, -2)), "已闭环");
    }

    #[test]
    fn photos_are_checked_before_upload() {
        let photo = |bytes: &[u8]| Photo {
            bytes: bytes.to_vec(),
            name: "p.jpg".into(),
            mime: "image/jpeg".into(),
        };
        let mut ps = Vec::new();
        assert!(add_photo(&mut ps, photo(&[0xFF, 0xD8, 0xFF, 0xE0])).is_ok());
        assert!(add_photo(&mut ps, photo(b"\x89PNG\r\n\x1a\n....")).is_ok());
        assert_eq!(
            add_photo(&mut ps, photo(b"GIF89a")).unwrap_err(),
            "这不是照片（只收JPEG或PNG），请重新拍一张。"
        );
        let mut big = vec![0xFF, 0xD8, 0xFF];
        big.resize(MAX_STEP_PHOTO_BYTES + 1, 0);
        assert!(add_photo(&mut ps, photo(&big))
            .unwrap_err()
            .contains("照片太大"));
        while ps.len() < MAX_STEP_PHOTOS {
            ps.push(photo(&[0xFF, 0xD8, 0xFF]));
        }
        assert_eq!(
            add_photo(&mut ps, photo(&[0xFF, 0xD8, 0xFF])).unwrap_err(),
            "每一步最多6张照片。"
        );
    }

    #[test]
    fn a_scheduled_follow_up_in_plain_chinese() {
        let mut r = review(Some("follow_up"), 10);
        assert_eq!(follow_up(&r), None);
        let due = chrono::NaiveDate::from_ymd_opt(2026, 12, 4).unwrap();
        r.follow_up_due = Some(due);
        r.follow_up_days_left = Some(0);
        assert_eq!(follow_up(&r).unwrap(), "待回访（2026-12-04）");
        r.follow_up_days_left = Some(-1);
        assert_eq!(follow_up(&r).unwrap(), "回访逾期（应于2026-12-04回访）");
    }
}
