//! 追加差评 on both store backends and over a real socket: a resident who rated 满意 through the
//! SMS link adds one 差评 within the county's window (a plain form, no JavaScript); it opens the
//! bad-review loop, reaches the tablet's desk and counts in the figures as the case's rating; a
//! second addition, one on a bad rating, one without a rating and one after the window are
//! refused with 409 and a Chinese page; of concurrent additions the store keeps exactly one.

mod common;
mod haochaping;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use bianmin_protocol::bad_review::BadReview;
use bianmin_protocol::sync::DeviceRole;
use bianmin_town::feedback::{figures, AddBadError, AddedBadReview, Rectification};
use bianmin_town::store::{Rating, RatingVia};
use bianmin_town::time::china_today;
use bianmin_town::{app, AppState};
use chrono::{Duration, Utc};
use common::backends::backends;
use common::*;
use haochaping::loopback::{enrol, http, off, sms_link};
use haochaping::{completed_case, form, get, sms_rating_post};

fn add_bad(link: &str, level: &str, comment: &str) -> Request<Body> {
    form(
        &format!("{link}/add-bad"),
        &[("level", level), ("comment", comment)],
        None,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_bad_review_added_after_a_good_rating_opens_the_loop_once_within_the_window() {
    for b in off(backends) {
        let name = b.name;
        let state =
            off(|| AppState::with_stores(b.dir.path(), b.store.clone(), b.admin.clone()).unwrap());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let router = app(state.clone());
        tokio::spawn({
            let router = router.clone();
            async move { axum::serve(listener, router).await.unwrap() }
        });
        let agent = enrol(addr, &state, DeviceRole::Agent, NANGUAN).await;
        let staff = enrol(addr, &state, DeviceRole::Staff, "").await;

        // Case A: rated 满意 through the SMS link, then a 差评 is added.
        let a = completed_case(&router, &agent, &staff).await;
        let link = sms_link(&state, &a).await;
        let (st, page) = http(addr, get(&link, None)).await;
        assert_eq!(st, StatusCode::OK, "{name}: {page}");
        assert!(
            !page.contains("/add-bad"),
            "{name}: no addition before a rating"
        );
        let (st, body) = http(addr, sms_rating_post(&link, 4, "")).await;
        assert_eq!(st, StatusCode::SEE_OTHER, "{name}: {body}");
        let (_, page) = http(addr, get(&link, None)).await;
        let until = state
            .feedback
            .add_bad_until(&state.calendar(), Utc::now())
            .unwrap();
        assert!(page.contains("您的评价："), "{name}");
        assert!(
            page.contains(&format!("action=\"{link}/add-bad\"")),
            "{name}: the addition form is offered: {page}"
        );
        assert!(
            page.contains(&until.format("%Y年%m月%d日").to_string()),
            "{name}: the form says until when"
        );
        assert!(!page.contains("<script"), "{name}: no JavaScript");

        // A good level is not a 差评: the form comes back with the reason, nothing stored.
        let (st, page) = http(addr, add_bad(&link, "4", "")).await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{name}: {page}");
        assert!(page.contains("不满意 或 非常不满意"), "{name}: {page}");
        let (st, page) = http(addr, add_bad(&link, "1", &"长".repeat(501))).await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{name}: {page}");
        assert!(page.contains("最多500字"), "{name}");
        let (st, page) = http(addr, add_bad(&link, "abc", "")).await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{name}: {page}");
        {
            let s = state.store.clone();
            let (id, id2) = (a.clone(), a.clone());
            let (r, l) = off(move || {
                (
                    s.rating(&id).unwrap().unwrap(),
                    s.rectification(&id2).unwrap(),
                )
            });
            assert!(
                r.added.is_none() && l.is_none(),
                "{name}: nothing stored yet"
            );
        }

        let (st, body) = http(addr, add_bad(&link, "1", "证明上的名字写错了，又跑了一趟")).await;
        assert_eq!(st, StatusCode::SEE_OTHER, "{name}: {body}");
        let (_, page) = http(addr, get(&link, None)).await;
        assert!(page.contains("您追加的差评："), "{name}: {page}");
        assert!(page.contains("非常不满意"), "{name}");
        assert!(page.contains("核实整改"), "{name}: the loop is promised");
        assert!(!page.contains("/add-bad"), "{name}: no second form");

        // A second addition: 409 with a clear Chinese page.
        let (st, page) = http(addr, add_bad(&link, "2", "再追加一次")).await;
        assert_eq!(st, StatusCode::CONFLICT, "{name}: {page}");
        assert!(page.contains("每件办件只能追加一次"), "{name}: {page}");

        // The stored records: the first rating kept, the addition beside it, a loop opened.
        let s = state.store.clone();
        let id = a.clone();
        let (rating, loop_rec, audit) = off(move || {
            (
                s.rating(&id).unwrap().unwrap(),
                s.rectification(&id).unwrap().unwrap(),
                s.audit_log().unwrap(),
            )
        });
        assert_eq!(rating.level, 4, "{name}: the first rating is kept");
        assert_eq!(rating.counted_level(), 1, "{name}");
        let added = rating.added.clone().unwrap();
        assert_eq!(added.comment, "证明上的名字写错了，又跑了一趟");
        assert_eq!(loop_rec.level, 1);
        assert_eq!(loop_rec.comment, added.comment);
        assert_eq!(
            loop_rec.deadline,
            state.feedback.deadline(&state.calendar(), china_today())
        );
        assert_eq!(loop_rec.next_step().unwrap().as_str(), "verify");
        assert!(
            audit
                .iter()
                .any(|e| e.draft.action == "rate_add_bad" && e.draft.case_id.as_deref() == Some(&a)),
            "{name}: audited"
        );

        // The tablet's desk lists it like a first 差评, dated from the addition.
        let (st, body) = http(addr, staff.get("/v1/bad-reviews")).await;
        assert_eq!(st, StatusCode::OK, "{name}: {body}");
        let desk: Vec<BadReview> = serde_json::from_str(&body).unwrap();
        let row = desk.iter().find(|r| r.case_id == a).expect("on the desk");
        assert_eq!(row.level, 1);
        assert_eq!(row.rated_at, added.at);
        assert_eq!(row.next_step.as_deref(), Some("verify"));

        // Case B: rated 不满意 at once: nothing to add.
        let b_id = completed_case(&router, &agent, &staff).await;
        let b_link = sms_link(&state, &b_id).await;
        let (st, _) = http(addr, sms_rating_post(&b_link, 2, "太慢")).await;
        assert_eq!(st, StatusCode::SEE_OTHER);
        let (_, page) = http(addr, get(&b_link, None)).await;
        assert!(!page.contains("/add-bad"), "{name}: no form on a 差评");
        let (st, page) = http(addr, add_bad(&b_link, "1", "")).await;
        assert_eq!(st, StatusCode::CONFLICT, "{name}: {page}");
        assert!(page.contains("已经是差评"), "{name}: {page}");

        // Case C: not rated: the addition is refused, the rating form stays.
        let c_id = completed_case(&router, &agent, &staff).await;
        let c_link = sms_link(&state, &c_id).await;
        let (st, page) = http(addr, add_bad(&c_link, "1", "")).await;
        assert_eq!(st, StatusCode::CONFLICT, "{name}: {page}");
        assert!(page.contains("还没有评价"), "{name}: {page}");

        // Case D: rated 非常满意 well before the window: closed, no form, 409 on a post.
        let d_id = completed_case(&router, &agent, &staff).await;
        let d_link = sms_link(&state, &d_id).await;
        let long_ago = Utc::now() - Duration::days(60);
        let s = state.store.clone();
        let id = d_id.clone();
        off(move || {
            let sc = s.case(&id).unwrap().unwrap();
            let r = Rating {
                case_id: id.clone(),
                village: NANGUAN.into(),
                level: 5,
                efficiency: 5,
                quality: 5,
                attitude: 5,
                comment: String::new(),
                rated_at: long_ago,
                token_issued: long_ago.date_naive(),
                completion: None,
                via: RatingVia::Sms,
                added: None,
            };
            assert!(s.rate(&r, None, &sc, &[], vec![]).unwrap());
        });
        let (_, page) = http(addr, get(&d_link, None)).await;
        assert!(page.contains("您的评价："), "{name}");
        assert!(!page.contains("/add-bad"), "{name}: window closed, no form");
        let (st, page) = http(addr, add_bad(&d_link, "2", "")).await;
        assert_eq!(st, StatusCode::CONFLICT, "{name}: {page}");
        assert!(page.contains("追加差评的期限是"), "{name}: {page}");
        assert!(page.contains("已经过了"), "{name}: {page}");

        // Figures: A counts once, as a 差评 (its added level); B a 差评; D satisfied.
        let s = state.store.clone();
        let (cases, ratings, loops) = off(move || {
            (
                s.cases().unwrap(),
                s.ratings().unwrap(),
                s.rectifications().unwrap(),
            )
        });
        let f = figures(&state.divisions(), &cases, &ratings, &loops, china_today());
        let county = f.last().unwrap();
        assert_eq!(county.ratings, 3, "{name}: one rating per case");
        assert_eq!(county.satisfied, 1, "{name}: only D");
        assert_eq!(county.bad, 2, "{name}: A's added 差评 and B's");

        // Case E: 16 concurrent additions straight at the store (as from several servers):
        // exactly one is kept, the rest see it; the store also refuses a good level.
        let e_id = completed_case(&router, &agent, &staff).await;
        let e_link = sms_link(&state, &e_id).await;
        let (st, _) = http(addr, sms_rating_post(&e_link, 3, "")).await;
        assert_eq!(st, StatusCode::SEE_OTHER);
        let s = state.store.clone();
        let id = e_id.clone();
        let results: Vec<Result<Rating, AddBadError>> = off(move || {
            let s2 = s.clone();
            let wrong = s2.add_bad_review(
                &id,
                AddedBadReview {
                    level: 3,
                    comment: String::new(),
                    at: Utc::now(),
                },
                &loop_of(&id, 3, ""),
                bianmin_town::audit::AuditDraft::new("resident", "rate_add_bad", Some(&id), "t"),
            );
            assert!(matches!(wrong, Err(AddBadError::NotBad)), "{wrong:?}");
            std::thread::scope(|sc| {
                let hs: Vec<_> = (0..16)
                    .map(|n| {
                        let (s, id) = (s.clone(), id.clone());
                        sc.spawn(move || {
                            s.add_bad_review(
                                &id,
                                AddedBadReview {
                                    level: 2,
                                    comment: format!("第{n}次"),
                                    at: Utc::now(),
                                },
                                &loop_of(&id, 2, &format!("第{n}次")),
                                bianmin_town::audit::AuditDraft::new(
                                    "resident",
                                    "rate_add_bad",
                                    Some(&id),
                                    format!("try {n}"),
                                ),
                            )
                        })
                    })
                    .collect();
                hs.into_iter().map(|h| h.join().unwrap()).collect()
            })
        });
        let ok = results.iter().filter(|r| r.is_ok()).count();
        let again = results
            .iter()
            .filter(|r| matches!(r, Err(AddBadError::AlreadyAdded)))
            .count();
        assert_eq!((ok, again), (1, 15), "{name}: {results:?}");
        let s = state.store.clone();
        let id = e_id.clone();
        let (r, l, audit) = off(move || {
            (
                s.rating(&id).unwrap().unwrap(),
                s.rectification(&id).unwrap().unwrap(),
                s.audit_log().unwrap(),
            )
        });
        assert_eq!(r.added.as_ref().unwrap().comment, l.comment, "{name}");
        assert_eq!(
            audit
                .iter()
                .filter(|e| e.draft.action == "rate_add_bad"
                    && e.draft.case_id.as_deref() == Some(&e_id))
                .count(),
            1,
            "{name}: one audit entry"
        );
    }
}

fn loop_of(case_id: &str, level: u8, comment: &str) -> Rectification {
    Rectification {
        case_id: case_id.into(),
        village: NANGUAN.into(),
        level,
        comment: comment.into(),
        opened_at: Utc::now(),
        deadline: china_today() + Duration::days(21),
        steps: Vec::new(),
    }
}

/// The window is the county's setting in `feedback.toml`: a default until the county confirms
/// it, 0 turns additions off, and a misspelt key is refused rather than silently ignored.
#[test]
fn the_window_is_a_county_setting() {
    use bianmin_town::feedback::{Feedback, DEFAULT_ADD_BAD_WORKING_DAYS};
    let cal = bianmin_engine::deadline::WorkCalendar::weekends_only();
    // Friday 2026-11-27 12:00 China time.
    let rated = chrono::DateTime::parse_from_rfc3339("2026-11-27T12:00:00+08:00")
        .unwrap()
        .with_timezone(&Utc);
    let dir = tempfile::tempdir().unwrap();
    let fb = Feedback::open(dir.path()).unwrap();
    assert_eq!(fb.add_bad_days, DEFAULT_ADD_BAD_WORKING_DAYS);
    // 10 working days after Friday 27 November: Friday 11 December.
    assert_eq!(
        fb.add_bad_until(&cal, rated).unwrap().to_string(),
        "2026-12-11"
    );
    std::fs::write(
        dir.path().join("feedback.toml"),
        "add_bad_review_working_days = 3\n",
    )
    .unwrap();
    let fb = Feedback::open(dir.path()).unwrap();
    assert_eq!(fb.rectify_days, 15, "the other setting keeps its default");
    assert_eq!(
        fb.add_bad_until(&cal, rated).unwrap().to_string(),
        "2026-12-02"
    );
    std::fs::write(
        dir.path().join("feedback.toml"),
        "add_bad_review_working_days = 0\n",
    )
    .unwrap();
    assert_eq!(
        Feedback::open(dir.path())
            .unwrap()
            .add_bad_until(&cal, rated),
        None
    );
    std::fs::write(
        dir.path().join("feedback.toml"),
        "add_bad_review_days = 5\n",
    )
    .unwrap();
    let err = Feedback::open(dir.path()).unwrap_err().to_string();
    assert!(err.contains("add_bad_review_days"), "{err}");
}
