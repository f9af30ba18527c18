//! Printed notices and the case list against the real town API on a loopback socket: each
//! notice is rendered as PDF and read back with poppler's `pdftotext` (the case number, the item,
//! every 补正 material, the refusal's reason and appeal route), is small because the CJK font is
//! subset, and one is rendered to PNG with `pdftoppm`; the packet embeds every page image; the
//! `.xlsx` list is parsed back with calamine. Only the case's town's staff tablets get them.

mod common;

use std::io::Cursor;
use std::path::Path;
use std::process::Command;

use axum::http::StatusCode;
use bianmin_engine::transport::{Credential, NoticeKind, Transport, TransportError};
use bianmin_protocol::sync::{ActionRequest, TownAction};
use bianmin_protocol::{AttachmentRef, MaterialPages, MissingItem};
use bianmin_town::files::sha256_hex;
use bianmin_town::TownStore;
use calamine::{Data, Reader, Xlsx};
use common::*;

const WANGQIAO: &str = "140423101";

fn client(url: &str, d: &Device) -> Transport {
    Transport::new(
        url,
        Some(Credential {
            device_id: d.id.clone(),
            key: d.key.clone(),
        }),
    )
    .unwrap()
}

fn refused(e: TransportError) -> (u16, String) {
    match e {
        TransportError::Rejected { status, code, .. } => (status, code),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// A scan-like page: dark text-like bars on white, as a real JPEG or PNG.
fn scan(seed: u32, format: image::ImageFormat) -> Vec<u8> {
    let img = image::GrayImage::from_fn(620, 877, |x, y| {
        let line = (y / 24) % 3 == 0 && x > 60 && x < 560 - (seed * 37 + y) % 200;
        image::Luma([if line { 30 } else { 245 }])
    });
    let mut out = Cursor::new(Vec::new());
    image::DynamicImage::ImageLuma8(img)
        .write_to(&mut out, format)
        .unwrap();
    out.into_inner()
}

fn refs(pages: &[(&[u8], &str)]) -> Vec<AttachmentRef> {
    pages
        .iter()
        .enumerate()
        .map(|(i, (p, mime))| AttachmentRef {
            name: format!("p{i}"),
            sha256: sha256_hex(p),
            bytes: p.len() as u64,
            mime: mime.to_string(),
        })
        .collect()
}

/// Files a V01 case with a JPEG ID card (two sides) and a PNG household register page.
async fn file_case(town: &Town, agent: &Device, name: &str, id_number: &str) -> String {
    let r = town.router();
    let front = scan(1, image::ImageFormat::Jpeg);
    let back = scan(2, image::ImageFormat::Jpeg);
    let register = scan(3, image::ImageFormat::Png);
    for p in [&front, &back, &register] {
        agent.upload(&r, p).await;
    }
    let id = agent.next_case_id();
    let mut sub = agent.submission(&id, 1, &[]);
    sub.applicant.name = name.into();
    sub.applicant.id_number = id_number.into();
    sub.materials = vec![
        MaterialPages {
            key: "id_card".into(),
            pages: refs(&[(&front, "image/jpeg"), (&back, "image/jpeg")]),
        },
        MaterialPages {
            key: "household_register".into(),
            pages: refs(&[(&register, "image/png")]),
        },
    ];
    sub.answers.insert("education".into(), "初中及以下".into());
    let (st, body) = send(&r, agent.json("PUT", &format!("/v1/cases/{id}"), &sub)).await;
    assert_eq!(st, StatusCode::CREATED, "{body}");
    id
}

async fn act(town: &Town, staff: &Device, id: &str, action: TownAction) {
    let req = ActionRequest {
        action,
        staff: String::new(),
        pin: None,
        expected_version: None,
    };
    let (st, body) = send(
        &town.router(),
        staff.json("POST", &format!("/v1/cases/{id}/actions"), &req),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{body}");
}

/// The PDF's text with all white space removed (a wrapped line may split a word anywhere).
fn pdf_text(pdf: &Path) -> String {
    let out = Command::new("pdftotext")
        .arg(pdf)
        .arg("-")
        .output()
        .expect("pdftotext (poppler-utils, tools/deps.sh)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect()
}

fn pdf_info(pdf: &Path, key: &str) -> String {
    let out = Command::new("pdfinfo").arg(pdf).output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .find_map(|l| {
            l.strip_prefix(&format!("{key}:"))
                .map(|v| v.trim().to_string())
        })
        .unwrap_or_default()
}

fn save(dir: &Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
    assert!(bytes.starts_with(b"%PDF-"), "{name} is not a PDF");
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    // A copy to look at by hand: BIANMIN_NOTICE_SAMPLES=/some/dir cargo test ...
    if let Some(d) = std::env::var_os("BIANMIN_NOTICE_SAMPLES") {
        std::fs::write(Path::new(&d).join(name), bytes).unwrap();
    }
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notices_render_with_their_content_in_a_small_pdf_for_the_towns_staff_only() {
    let town = Town::new();
    let url = format!("http://{}", town.serve().await);
    let dir = tempfile::tempdir().unwrap();
    let agent = town.agent(NANGUAN).await;
    let staff = town.staff(GUHAN).await;
    let other_staff = town.staff(WANGQIAO).await;
    let tablet = client(&url, &staff);

    // 受理.
    let accepted = file_case(&town, &agent, "张三丰", "14042319800101001X").await;
    act(&town, &staff, &accepted, TownAction::Accept).await;
    let pdf = tablet
        .notice(&accepted, NoticeKind::Acceptance)
        .await
        .unwrap();
    let acceptance_size = pdf.len();
    let text = pdf_text(&save(dir.path(), "acceptance.pdf", &pdf));
    for want in [
        accepted.as_str(),
        "受理通知书",
        "兵役登记",
        "V01",
        "张三丰",
        "古韩镇",
        "予以受理",
    ] {
        assert!(text.contains(want), "{want} missing from: {text}");
    }
    // The reference data has no town phone: a marked blank, no invented number.
    assert!(text.contains("参考数据未载明"), "{text}");
    // 兵役登记 is a 行政确认: the 行政许可法 is not cited for it.
    assert!(!text.contains("行政许可法"), "{text}");

    // 补正: every material on the list, with what to bring.
    let corrected = file_case(&town, &agent, "李四", "140423198001010038").await;
    act(
        &town,
        &staff,
        &corrected,
        TownAction::RequestCorrection {
            missing: vec![
                MissingItem {
                    key: "household_register".into(),
                    note: "缺本人页，请拍摄户主页和本人页".into(),
                },
                MissingItem {
                    key: "education_cert".into(),
                    note: "请提供毕业证书".into(),
                },
                MissingItem {
                    key: "applicant.phone".into(),
                    note: "号码少一位".into(),
                },
            ],
            note: "三项一并补齐".into(),
        },
    )
    .await;
    let pdf = tablet
        .notice(&corrected, NoticeKind::Correction)
        .await
        .unwrap();
    let correction_size = pdf.len();
    let text = pdf_text(&save(dir.path(), "correction.pdf", &pdf));
    for want in [
        corrected.as_str(),
        "补正材料通知书",
        "兵役登记",
        "李四",
        "一次性告知",
        "共3项",
        "申请人户口簿（原件）",
        "缺本人页，请拍摄户主页和本人页",
        "学历（学籍）证明",
        "请提供毕业证书",
        "联系电话：号码少一位",
        "三项一并补齐",
    ] {
        assert!(text.contains(want), "{want} missing from: {text}");
    }
    // A notice the state does not support is refused, not made up.
    let (st, code) = refused(
        tablet
            .notice(&corrected, NoticeKind::Acceptance)
            .await
            .unwrap_err(),
    );
    assert_eq!((st, code.as_str()), (409, "notice_not_applicable"));

    // 不予受理: the reason and the appeal route, with the county from the reference data.
    let refused_case = file_case(&town, &agent, "王五", "140423198001010054").await;
    act(
        &town,
        &staff,
        &refused_case,
        TownAction::Refuse {
            reason: "申请人已于2025年完成兵役登记，不得重复登记".into(),
        },
    )
    .await;
    let pdf = tablet
        .notice(&refused_case, NoticeKind::Refusal)
        .await
        .unwrap();
    let refusal_size = pdf.len();
    let refusal_path = save(dir.path(), "refusal.pdf", &pdf);
    let text = pdf_text(&refusal_path);
    for want in [
        refused_case.as_str(),
        "不予受理通知书",
        "兵役登记",
        "王五",
        "申请人已于2025年完成兵役登记，不得重复登记",
        "六十日内向襄垣县人民政府申请行政复议",
        "《中华人民共和国行政复议法》第二十条",
        "六个月内依法向人民法院提起行政诉讼",
        "《中华人民共和国行政诉讼法》第四十六条",
    ] {
        assert!(text.contains(want), "{want} missing from: {text}");
    }

    // The packet for the county: the form with the full ID number, then one page per image.
    let pdf = tablet.notice(&accepted, NoticeKind::Packet).await.unwrap();
    let packet_size = pdf.len();
    let packet = save(dir.path(), "packet.pdf", &pdf);
    let text = pdf_text(&packet);
    for want in [
        accepted.as_str(),
        "14042319800101001X",
        "申请人居民身份证第1页/共2页",
        "申请人居民身份证第2页/共2页",
        "申请人户口簿第1页/共1页",
        "文化程度",
        "初中及以下",
    ] {
        assert!(text.contains(want), "{want} missing from: {text}");
    }
    let pages: usize = pdf_info(&packet, "Pages").parse().unwrap();
    let images = Command::new("pdfimages")
        .arg("-list")
        .arg(&packet)
        .output()
        .unwrap();
    let images = String::from_utf8(images.stdout).unwrap();
    // Two header lines, then one line per embedded image.
    assert_eq!(images.lines().count() - 2, 3, "{images}");
    assert!(pages >= 4, "{pages} pages");

    // The font is embedded as a subset: a notice is a few tens of KiB, not the 19 MB collection.
    for (name, size) in [
        ("acceptance", acceptance_size),
        ("correction", correction_size),
        ("refusal", refusal_size),
    ] {
        eprintln!("{name}.pdf: {size} bytes");
        assert!(size < 100_000, "{name}.pdf is {size} bytes");
    }
    eprintln!("packet.pdf: {packet_size} bytes, {pages} pages");
    let fonts = Command::new("pdffonts")
        .arg(&refusal_path)
        .output()
        .unwrap();
    let fonts = String::from_utf8(fonts.stdout).unwrap();
    assert!(fonts.contains("CJK"), "{fonts}");
    // pdffonts' "sub" column: every embedded font is a subset.
    for line in fonts.lines().skip(2) {
        let cols: Vec<&str> = line.split_whitespace().collect();
        let n = cols.len();
        assert_eq!(
            &cols[n - 5..n - 3],
            &["yes", "yes"],
            "not an embedded subset: {line}"
        );
    }

    // One notice as an image: the page has ink (text was drawn, not just an empty page).
    let png_base = dir.path().join("refusal");
    let st = Command::new("pdftoppm")
        .args(["-r", "60", "-png", "-singlefile"])
        .arg(&refusal_path)
        .arg(&png_base)
        .status()
        .unwrap();
    assert!(st.success());
    let png = image::open(png_base.with_extension("png"))
        .unwrap()
        .to_luma8();
    let dark = png.pixels().filter(|p| p.0[0] < 128).count();
    assert!(dark > 500, "{dark} dark pixels");

    // Scope: another town's tablet, a village phone and an unsigned request get nothing.
    let (st, _) = refused(
        client(&url, &other_staff)
            .notice(&accepted, NoticeKind::Acceptance)
            .await
            .unwrap_err(),
    );
    assert_eq!(st, 403);
    let (st, _) = refused(
        client(&url, &agent)
            .notice(&accepted, NoticeKind::Acceptance)
            .await
            .unwrap_err(),
    );
    assert_eq!(st, 403);
    let plain = reqwest::get(format!("{url}/v1/cases/{accepted}/notices/acceptance"))
        .await
        .unwrap();
    assert_eq!(plain.status().as_u16(), 401);

    // Every notice printed is in the audit log, with its kind.
    let printed: Vec<String> = town
        .store
        .audit_log()
        .unwrap()
        .into_iter()
        .filter(|e| e.draft.action == "print_notice")
        .map(|e| e.draft.detail)
        .collect();
    assert_eq!(printed.len(), 4, "{printed:?}");
    assert!(printed[3].starts_with("packet"), "{printed:?}");
}

fn sheet_rows(bytes: Vec<u8>) -> Vec<Vec<String>> {
    let mut wb: Xlsx<_> = Xlsx::new(Cursor::new(bytes)).unwrap();
    let range = wb.worksheet_range("案件").unwrap();
    range
        .rows()
        .map(|r| {
            r.iter()
                .map(|c| match c {
                    Data::String(s) => s.clone(),
                    Data::Empty => String::new(),
                    other => panic!("a cell that is not text: {other:?}"),
                })
                .collect()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_case_list_exports_as_xlsx_with_full_id_numbers_for_the_towns_staff_only() {
    let town = Town::new();
    let url = format!("http://{}", town.serve().await);
    let agent = town.agent(NANGUAN).await;
    let staff = town.staff(GUHAN).await;
    let other_staff = town.staff(WANGQIAO).await;
    let tablet = client(&url, &staff);

    let a = file_case(&town, &agent, "张三丰", "14042319800101001X").await;
    act(&town, &staff, &a, TownAction::Accept).await;
    let b = file_case(&town, &agent, "王五", "140423198001010054").await;
    act(
        &town,
        &staff,
        &b,
        TownAction::Refuse {
            reason: "不属于本镇受理范围".into(),
        },
    )
    .await;
    let c = file_case(&town, &agent, "李四", "140423198001010038").await;

    let rows = sheet_rows(tablet.case_list("").await.unwrap());
    assert_eq!(rows[0][0], "案件编号");
    assert_eq!(rows[0][4], "身份证号码");
    assert_eq!(rows.len(), 4, "{rows:?}");
    let row = |id: &str| rows.iter().find(|r| r[0] == id).unwrap().clone();
    let ra = row(&a);
    assert_eq!(
        &ra[1..5],
        &["V01", "兵役登记", "张三丰", "14042319800101001X"]
    );
    assert_eq!(ra[5], "古韩镇南关村");
    assert_eq!(ra[9], "已受理");
    assert!(!ra[7].is_empty() && !ra[8].is_empty(), "{ra:?}");
    let rb = row(&b);
    // 18 digits kept as text (a number would lose the last three).
    assert_eq!(rb[4], "140423198001010054");
    assert_eq!(rb[10], "不予受理：不属于本镇受理范围");
    assert_eq!(row(&c)[9], "镇中心已接收");

    // Filtered like the inbox: by state, by period of receipt.
    let rows = sheet_rows(tablet.case_list("state=refused").await.unwrap());
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[1][0], b);
    let today = rows_received_on(&town, &a);
    let rows = sheet_rows(
        tablet
            .case_list(&format!("from={today}&to={today}"))
            .await
            .unwrap(),
    );
    assert_eq!(rows.len(), 4);
    let rows = sheet_rows(tablet.case_list("to=2020-01-01").await.unwrap());
    assert_eq!(rows.len(), 1, "only the headings");
    let (st, _) = refused(tablet.case_list("from=yesterday").await.unwrap_err());
    assert_eq!(st, 400);

    // Scope: another town's tablet sees its own (empty) list and not this village; a phone
    // and an unsigned request get nothing.
    let other = client(&url, &other_staff);
    assert_eq!(sheet_rows(other.case_list("").await.unwrap()).len(), 1);
    let (st, _) = refused(
        other
            .case_list(&format!("village={NANGUAN}"))
            .await
            .unwrap_err(),
    );
    assert_eq!(st, 403);
    let (st, _) = refused(client(&url, &agent).case_list("").await.unwrap_err());
    assert_eq!(st, 403);
    let plain = reqwest::get(format!("{url}/v1/cases.xlsx")).await.unwrap();
    assert_eq!(plain.status().as_u16(), 401);

    // Each export is audited, saying it carried full ID numbers.
    let exports: Vec<String> = town
        .store
        .audit_log()
        .unwrap()
        .into_iter()
        .filter(|e| e.draft.action == "export_cases")
        .map(|e| e.draft.detail)
        .collect();
    assert_eq!(exports.len(), 5, "{exports:?}");
    assert!(
        exports[0].starts_with("3 rows with full names and ID numbers"),
        "{exports:?}"
    );
    assert!(exports[1].contains("state=refused"), "{exports:?}");
}

/// The China date the town received case `id` on.
fn rows_received_on(town: &Town, id: &str) -> String {
    let sc = town.store.case(id).unwrap().unwrap();
    bianmin_town::time::china_date(sc.received_at)
        .format("%Y-%m-%d")
        .to_string()
}

/// A town of `printers.toml` (none when `None`), served, with an accepted case of Nanguan: its
/// tablet's client and the case.
async fn town_with_printers(printers: Option<&str>) -> (Town, Transport, String) {
    let town = Town::new();
    let town = match printers {
        Some(toml) => {
            std::fs::write(town.dir.path().join("printers.toml"), toml).unwrap();
            let p = bianmin_town::printers::Printers::open(town.dir.path()).unwrap();
            let Town { dir, state, store } = town;
            Town {
                dir,
                state: state.with_printers(p),
                store,
            }
        }
        None => town,
    };
    let url = format!("http://{}", town.serve().await);
    let agent = town.agent(NANGUAN).await;
    let staff = town.staff(GUHAN).await;
    let id = file_case(&town, &agent, "张三丰", "14042319800101001X").await;
    act(&town, &staff, &id, TownAction::Accept).await;
    (town, client(&url, &staff), id)
}

/// An executable shell script in `dir` standing in for `lp`.
fn script(dir: &Path, name: &str, body: &str) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let p = dir.join(name);
    std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

fn paper_prints(town: &Town) -> Vec<(String, String)> {
    town.store
        .audit_log()
        .unwrap()
        .into_iter()
        .filter(|e| e.draft.action == "print_notice_paper")
        .map(|e| (e.draft.actor, e.draft.detail))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notice_prints_on_the_towns_own_printer_and_the_refusals_say_why() {
    use bianmin_protocol::sync::PrintRequest;
    let dir = tempfile::tempdir().unwrap();
    let printed = dir.path().join("printed.pdf");
    let args = dir.path().join("args.txt");
    // Writes its arguments and its standard input where the test can read them, as `lp` would
    // hand them to CUPS.
    let lp = script(
        dir.path(),
        "lp",
        &format!(
            "printf '%s\\n' \"$@\" > '{}'\ncat > '{}'",
            args.display(),
            printed.display()
        ),
    );
    let toml = format!(
        "[towns]\n\"{GUHAN}\" = [{:?}, \"-d\", \"古韩 front desk; rm -rf /\"]\n",
        lp.to_str().unwrap()
    );
    let (town, tablet, id) = town_with_printers(Some(&toml)).await;
    bianmin_town::staff::add_staff(town.state.admin.as_ref(), GUHAN, "王芳", "204816").unwrap();

    // The town has personal accounts: a print names its person, checked by PIN.
    let nobody = PrintRequest {
        staff: String::new(),
        pin: None,
    };
    let (st, code) = refused(
        tablet
            .print_notice(&id, NoticeKind::Acceptance, &nobody)
            .await
            .unwrap_err(),
    );
    assert_eq!((st, code.as_str()), (403, "pin_required"));
    let wrong = PrintRequest {
        staff: "王芳".into(),
        pin: Some("204817".into()),
    };
    let (st, code) = refused(
        tablet
            .print_notice(&id, NoticeKind::Acceptance, &wrong)
            .await
            .unwrap_err(),
    );
    assert_eq!((st, code.as_str()), (403, "wrong_pin"));
    assert!(
        !printed.exists(),
        "nothing printed before the PIN was right"
    );

    let wang = PrintRequest {
        staff: "王芳".into(),
        pin: Some("204816".into()),
    };
    let done = tablet
        .print_notice(&id, NoticeKind::Acceptance, &wang)
        .await
        .unwrap();
    assert_eq!(
        (done.case_id.as_str(), done.kind.as_str()),
        (id.as_str(), "acceptance")
    );
    assert!(done.by.starts_with("王芳 ("), "{}", done.by);
    // The printer got the whole PDF, with the arguments as written (no shell split them).
    let pdf = std::fs::read(&printed).unwrap();
    assert_eq!(pdf.len() as u64, done.bytes);
    let text = pdf_text(&save(dir.path(), "printed-acceptance.pdf", &pdf));
    for want in [id.as_str(), "受理通知书", "张三丰", "予以受理"] {
        assert!(text.contains(want), "{want} missing from: {text}");
    }
    assert_eq!(
        std::fs::read_to_string(&args).unwrap(),
        "-d\n古韩 front desk; rm -rf /\n"
    );
    // The packet too, through the same renderer as the download.
    let packet = tablet
        .print_notice(&id, NoticeKind::Packet, &wang)
        .await
        .unwrap();
    let text = pdf_text(&save(
        dir.path(),
        "printed-packet.pdf",
        &std::fs::read(&printed).unwrap(),
    ));
    assert!(
        text.contains("14042319800101001X") && text.contains("申请人户口簿第1页/共1页"),
        "{text}"
    );

    // A notice the case's state does not support is refused before anything is printed.
    std::fs::remove_file(&printed).unwrap();
    let (st, code) = refused(
        tablet
            .print_notice(&id, NoticeKind::Refusal, &wang)
            .await
            .unwrap_err(),
    );
    assert_eq!((st, code.as_str()), (409, "notice_not_applicable"));
    assert!(!printed.exists());

    // Another town's tablet and a village phone print nothing of this town's cases.
    let url = tablet.server().to_string();
    let other = client(&url, &town.staff("140423101").await);
    let (st, _) = refused(
        other
            .print_notice(&id, NoticeKind::Acceptance, &nobody)
            .await
            .unwrap_err(),
    );
    assert_eq!(st, 403);
    let phone = client(&url, &town.agent(NANGUAN).await);
    let (st, _) = refused(
        phone
            .print_notice(&id, NoticeKind::Acceptance, &nobody)
            .await
            .unwrap_err(),
    );
    assert_eq!(st, 403);
    assert!(!printed.exists());

    // Who printed what: the person, not the tablet alone.
    let prints = paper_prints(&town);
    assert_eq!(prints.len(), 2, "{prints:?}");
    assert!(prints.iter().all(|(by, _)| by == &done.by), "{prints:?}");
    assert!(prints[0]
        .1
        .starts_with(&format!("acceptance ({} bytes)", done.bytes)));
    assert!(prints[1]
        .1
        .starts_with(&format!("packet ({} bytes)", packet.bytes)));

    // A town with no printer configured: 503, said in Chinese, not retried by itself.
    let (bare, tablet, id) = town_with_printers(None).await;
    let e = tablet
        .print_notice(&id, NoticeKind::Acceptance, &nobody)
        .await
        .unwrap_err();
    assert!(!e.is_transient(), "{e:?}");
    assert!(
        e.staff_message().contains("没有为本镇配置打印机"),
        "{}",
        e.staff_message()
    );
    assert_eq!(refused(e), (503, "printer_not_configured".to_string()));
    assert!(paper_prints(&bare).is_empty());

    // A print command that fails (a CUPS queue that does not exist): 502, and nothing audited.
    let failing = script(
        dir.path(),
        "lp-broken",
        "cat > /dev/null\necho 'lp: The printer or class does not exist.' >&2\nexit 1",
    );
    let toml = format!("[towns]\n\"{GUHAN}\" = [{:?}]\n", failing.to_str().unwrap());
    let (broken, tablet, id) = town_with_printers(Some(&toml)).await;
    let e = tablet
        .print_notice(&id, NoticeKind::Acceptance, &nobody)
        .await
        .unwrap_err();
    assert!(!e.is_transient(), "{e:?}");
    assert!(
        e.staff_message().contains("打印机没有打印成功"),
        "{}",
        e.staff_message()
    );
    let (st, code) = refused(e);
    assert_eq!((st, code.as_str()), (502, "printer_failed"));
    assert!(paper_prints(&broken).is_empty());
}
