//! Photos of 核实/整改 on both store backends and over a real socket: the tablet uploads each photo
//! as an attachment (SHA-256 checked, held by its town) and names it in the step; a photo not
//! uploaded by this town, a damaged or foreign file, too big a file or too many photos are refused
//! with 422 and a code; the desk lists the step's photos; the town's tablets and a logged-in
//! county supervisor get the photo and a small JPEG thumbnail, nobody else, and only of a loop.

mod common;
mod haochaping;

use axum::http::StatusCode;
use bianmin_protocol::bad_review::{BadReview, ReviewStepRequest};
use bianmin_protocol::sync::DeviceRole;
use bianmin_town::rectification_photos::{MAX_PHOTOS_PER_STEP, MAX_PHOTO_BYTES, THUMB_SIDE};
use bianmin_town::{app, AppState};
use common::backends::backends;
use common::*;
use haochaping::loopback::{enrol, http, off, sms_link};
use haochaping::{completed_case, form, get, sms_rating_post};
use http_body_util::BodyExt;

fn jpeg(w: u32, h: u32, seed: u8) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([(x as u8).wrapping_add(seed), y as u8, 90])
    });
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 85)
        .encode_image(&img)
        .unwrap();
    out
}

async fn upload(addr: std::net::SocketAddr, dev: &Device, bytes: &[u8]) -> (StatusCode, String) {
    let sha = bianmin_engine::transport::sha256_hex(bytes);
    let (st, body) = http(
        addr,
        dev.request(
            "PATCH",
            &format!("/v1/attachments/{sha}"),
            bytes.to_vec(),
            Some((0, bytes.len() as u64)),
        ),
    )
    .await;
    (st, if st == StatusCode::OK { sha } else { body })
}

fn verify(photos: Vec<String>) -> ReviewStepRequest {
    ReviewStepRequest {
        step: "verify".into(),
        by: "王镇办".into(),
        notes: "到窗口核实".into(),
        outcome: None,
        follow_up_on: None,
        photos,
        pin: None,
    }
}

/// GET over the socket, keeping the bytes (photos are not text).
async fn fetch(
    addr: std::net::SocketAddr,
    req: axum::http::Request<axum::body::Body>,
) -> (StatusCode, String, Vec<u8>) {
    let (mut parts, body) = req.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    parts.uri = format!("http://{addr}{}", parts.uri.path_and_query().unwrap())
        .parse()
        .unwrap();
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Full<axum::body::Bytes>>();
    let resp = client
        .request(axum::http::Request::from_parts(
            parts,
            http_body_util::Full::new(bytes),
        ))
        .await
        .unwrap();
    let st = resp.status();
    let kind = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let body = resp
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec();
    (st, kind, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn photos_of_a_step_are_checked_stored_and_shown_to_the_town_and_county_only() {
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
        let id = completed_case(&router, &agent, &staff).await;
        let link = sms_link(&state, &id).await;
        let (st, _) = http(addr, sms_rating_post(&link, 1, "态度差")).await;
        assert_eq!(st, StatusCode::SEE_OTHER);
        let steps = format!("/v1/rectifications/{id}/steps");
        let post = |req: &ReviewStepRequest| staff.json("POST", &steps, req);
        let refused = |body: &str, code: &str| {
            assert!(body.contains(code), "{name}: expected {code}: {body}");
        };

        let good = jpeg(800, 600, 1);
        let (st, good_sha) = upload(addr, &staff, &good).await;
        assert_eq!(st, StatusCode::OK, "{name}: {good_sha}");
        let png = {
            let img = image::RgbImage::from_pixel(300, 200, image::Rgb([200, 10, 10]));
            let mut out = Vec::new();
            image::DynamicImage::ImageRgb8(img)
                .write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
                .unwrap();
            out
        };
        let (_, png_sha) = upload(addr, &staff, &png).await;

        // Damaged (cut short) and foreign (not JPEG/PNG) files are refused by name.
        let cut = jpeg(640, 480, 2);
        let (_, cut_sha) = upload(addr, &staff, &cut[..cut.len() * 2 / 3]).await;
        let (st, body) = http(addr, post(&verify(vec![cut_sha]))).await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{name}");
        refused(&body, "photo_corrupt");
        let (_, text_sha) = upload(addr, &staff, "不是照片".repeat(100).as_bytes()).await;
        let (st, body) = http(addr, post(&verify(vec![text_sha]))).await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{name}");
        refused(&body, "photo_corrupt");
        // Too big a file, whatever it holds.
        let mut big = jpeg(64, 64, 3);
        big.resize(MAX_PHOTO_BYTES as usize + 1, 0);
        let (st, big_sha) = upload(addr, &staff, &big).await;
        assert_eq!(st, StatusCode::OK, "{name}: {big_sha}");
        let (st, body) = http(addr, post(&verify(vec![big_sha]))).await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{name}");
        refused(&body, "photo_too_large");
        // Not uploaded at all, or only by a village phone (not this town's tablets).
        let (st, body) = http(addr, post(&verify(vec!["ab".repeat(32)]))).await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{name}");
        refused(&body, "photo_not_uploaded");
        let village_photo = jpeg(120, 90, 4);
        let (st, village_sha) = upload(addr, &agent, &village_photo).await;
        assert_eq!(st, StatusCode::OK);
        let (st, body) = http(addr, post(&verify(vec![village_sha]))).await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{name}");
        refused(&body, "photo_not_uploaded");
        // Too many, or one twice.
        let many = vec![good_sha.clone(); MAX_PHOTOS_PER_STEP + 1];
        let (st, body) = http(addr, post(&verify(many))).await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{name}");
        refused(&body, "too_many_photos");
        let (st, body) = http(
            addr,
            post(&verify(vec![good_sha.clone(), good_sha.clone()])),
        )
        .await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{name}");
        refused(&body, "photo_name");
        // Nothing was recorded by the refusals.
        let s = state.store.clone();
        let lid = id.clone();
        let lp = off(move || s.rectification(&lid).unwrap().unwrap());
        assert!(lp.steps.is_empty(), "{name}");

        let (st, body) = http(addr, post(&verify(vec![good_sha.clone(), png_sha.clone()]))).await;
        assert_eq!(st, StatusCode::OK, "{name}: {body}");
        let (st, body) = http(addr, staff.get("/v1/bad-reviews")).await;
        assert_eq!(st, StatusCode::OK);
        let desk: Vec<BadReview> = serde_json::from_str(&body).unwrap();
        let row = desk.iter().find(|r| r.case_id == id).unwrap();
        assert_eq!(row.steps[0].photos, vec![good_sha.clone(), png_sha.clone()]);

        // The tablet gets the photo as uploaded, and a small JPEG thumbnail.
        let photo = format!("/v1/rectifications/{id}/photos/{good_sha}");
        let (st, kind, bytes) = fetch(addr, staff.get(&photo)).await;
        assert_eq!(
            (st, kind.as_str()),
            (StatusCode::OK, "image/jpeg"),
            "{name}"
        );
        assert_eq!(bytes, good, "{name}: the bytes as uploaded");
        let (st, kind, thumb) = fetch(addr, staff.get(&format!("{photo}?size=thumb"))).await;
        assert_eq!(
            (st, kind.as_str()),
            (StatusCode::OK, "image/jpeg"),
            "{name}"
        );
        let t = image::load_from_memory(&thumb).unwrap();
        assert_eq!((t.width(), t.height()), (THUMB_SIDE, THUMB_SIDE * 3 / 4));
        assert!(thumb.len() < good.len() / 2, "{name}: a thumbnail is small");
        let (st, kind, _) = fetch(
            addr,
            staff.get(&format!("/v1/rectifications/{id}/photos/{png_sha}")),
        )
        .await;
        assert_eq!((st, kind.as_str()), (StatusCode::OK, "image/png"));
        // Only photos of the loop, only for the town's tablets.
        let (st, _, _) = fetch(
            addr,
            staff.get(&format!(
                "/v1/rectifications/{id}/photos/{}",
                bianmin_engine::transport::sha256_hex(&village_photo)
            )),
        )
        .await;
        assert_eq!(
            st,
            StatusCode::NOT_FOUND,
            "{name}: not a photo of this loop"
        );
        let (st, _, _) = fetch(addr, agent.get(&photo)).await;
        assert_eq!(st, StatusCode::FORBIDDEN, "{name}: a village phone");
        let other_town = {
            let dev = Device::fresh("");
            let code = off(|| {
                state
                    .admin
                    .issue_ticket(&bianmin_town::store::Ticket {
                        role: DeviceRole::Staff,
                        village: None,
                        town: SHANFU.into(),
                        expires_at: chrono::Utc::now() + chrono::Duration::minutes(10),
                    })
                    .unwrap()
            });
            let req = bianmin_protocol::sync::EnrolRequest {
                code,
                device_id: dev.id.clone(),
                public_key: hex::encode(dev.key.verifying_key().to_bytes()),
                person: "另一个镇".into(),
            };
            let (st, body) = http(addr, post_json("/v1/enrol", &req)).await;
            assert_eq!(st, StatusCode::OK, "{body}");
            dev
        };
        let (st, _, _) = fetch(addr, other_town.get(&photo)).await;
        assert_eq!(st, StatusCode::FORBIDDEN, "{name}: another town's tablet");

        // The county's loop page shows thumbnails; its photo route needs the session.
        let county_photo = format!("/county/rectifications/{id}/photos/{good_sha}");
        let (st, _, _) = fetch(addr, get(&format!("{county_photo}?size=thumb"), None)).await;
        assert_eq!(st, StatusCode::SEE_OTHER, "{name}: to the login page");
        let password = off(|| {
            bianmin_town::oversight::supervisor_add(state.admin.as_ref(), "张科长").unwrap()
        });
        let login = form(
            "/county/login",
            &[("name", "张科长"), ("password", &password)],
            None,
        );
        let (mut parts, body) = login.into_parts();
        parts.uri = format!("http://{addr}/county/login").parse().unwrap();
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build_http::<http_body_util::Full<axum::body::Bytes>>();
        let resp = client
            .request(axum::http::Request::from_parts(
                parts,
                http_body_util::Full::new(body.collect().await.unwrap().to_bytes()),
            ))
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::SEE_OTHER);
        let cookie = resp.headers()["set-cookie"].to_str().unwrap();
        let cookie = cookie.split(';').next().unwrap().to_string();
        let (st, page) = http(addr, get("/county", Some(&cookie))).await;
        assert_eq!(st, StatusCode::OK);
        assert!(
            page.contains(&format!("src=\"{county_photo}?size=thumb\""))
                && page.contains("alt=\"核实照片1\""),
            "{name}: {page}"
        );
        let (st, kind, thumb2) = fetch(
            addr,
            get(&format!("{county_photo}?size=thumb"), Some(&cookie)),
        )
        .await;
        assert_eq!(
            (st, kind.as_str()),
            (StatusCode::OK, "image/jpeg"),
            "{name}"
        );
        assert_eq!(thumb2, thumb);
        let (st, _, _) = fetch(
            addr,
            get(
                &format!("/county/rectifications/{id}/photos/{}", "cd".repeat(32)),
                Some(&cookie),
            ),
        )
        .await;
        assert_eq!(st, StatusCode::NOT_FOUND, "{name}");
    }
}
