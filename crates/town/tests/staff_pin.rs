//! People, not devices, on both store backends: a town tablet acts for the person whose PIN came
//! with the signed request (checked on the server, never a bare name), timelines and the audit
//! log name that person, switching person is one unlock, wrong PINs are limited per person, a
//! disabled account unlocks nothing, and the county roster lists people and devices and revokes
//! a lost phone.

mod common;
mod haochaping;

use std::time::Duration;

use axum::http::StatusCode;
use bianmin_engine::transport::{Credential, Timeouts, Transport, TransportError};
use bianmin_protocol::sync::{ActionRequest, DeviceRole, EnrolRequest, StaffUnlock, TownAction};
use bianmin_town::staff::{add_staff, disable_staff};
use bianmin_town::{app, AppState};
use common::backends::backends;
use common::*;
use haochaping::{form, get};

fn transport(server: &str, dev: &Device) -> Transport {
    let t = Duration::from_secs(10);
    Transport::with_timeouts(
        server,
        Some(Credential {
            device_id: dev.id.clone(),
            key: dev.key.clone(),
        }),
        Timeouts {
            connect: t,
            request: t,
            stall: t,
        },
    )
    .unwrap()
}

fn code(state: &AppState, role: DeviceRole, village: Option<&str>, town: &str) -> String {
    state
        .admin
        .issue_ticket(&bianmin_town::files::Ticket {
            role,
            village: village.map(str::to_string),
            town: town.to_string(),
            expires_at: chrono::Utc::now() + chrono::Duration::minutes(10),
        })
        .unwrap()
}

async fn enrol(server: &str, state: &AppState, dev: &Device, role: DeviceRole, person: &str) {
    let (village, town) = match role {
        DeviceRole::Agent => (Some(dev.village.as_str()), &dev.village[..9]),
        DeviceRole::Staff => (None, GUHAN),
    };
    let code = off(|| code(state, role, village, town));
    Transport::new(server, None)
        .unwrap()
        .enrol(&EnrolRequest {
            code,
            device_id: dev.id.clone(),
            public_key: hex::encode(dev.key.verifying_key().to_bytes()),
            person: person.into(),
        })
        .await
        .unwrap();
}

fn act(action: TownAction, staff: &str, pin: Option<&str>) -> ActionRequest {
    ActionRequest {
        action,
        staff: staff.into(),
        expected_version: None,
        pin: pin.map(str::to_string),
    }
}

/// Runs blocking store work (the PostgreSQL client starts its own runtime) off the async thread.
fn off<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| s.spawn(f).join().unwrap())
}

fn code_of(e: &TransportError) -> (u16, String) {
    match e {
        TransportError::Rejected { status, code, .. } => (*status, code.clone()),
        TransportError::Throttled { .. } => (429, "rate_limited".into()),
        other => panic!("unexpected transport error: {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn town_actions_name_the_person_whose_pin_was_checked() {
    for b in off(backends) {
        let state =
            off(|| AppState::with_stores(b.dir.path(), b.store.clone(), b.admin.clone()).unwrap());
        let router = app(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let server = format!("http://{}", listener.local_addr().unwrap());
        let serving = router.clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server_task = tokio::spawn(async move {
            axum::serve(listener, serving)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await
                .unwrap()
        });

        let phone = Device::fresh(NANGUAN);
        let tablet = Device::fresh("");
        enrol(&server, &state, &phone, DeviceRole::Agent, "李代办").await;
        enrol(&server, &state, &tablet, DeviceRole::Staff, "登记平板的人").await;
        let (agent, staff) = (transport(&server, &phone), transport(&server, &tablet));
        let mut ids = Vec::new();
        for n in 0..3u64 {
            let p = page(100 + n, 5000);
            let sha = bianmin_engine::transport::sha256_hex(&p);
            agent
                .upload_chunk(&sha, 0, p.len() as u64, p.clone())
                .await
                .unwrap();
            let id = phone.next_case_id();
            agent
                .submit(&phone.submission(&id, 1, &[&p]))
                .await
                .unwrap();
            ids.push(id);
        }

        // Before the town has any account, a name on the request is not believed: the timeline
        // names the tablet's enrolled person.
        staff
            .act(&ids[0], &act(TownAction::Accept, "冒名顶替", None))
            .await
            .unwrap();
        let c = staff.case(&ids[0]).await.unwrap();
        let by = &c.history.last().unwrap().by;
        assert_eq!(by, &format!("登记平板的人 ({})", tablet.id), "{}", b.name);

        // The town administrator opens personal accounts (the CLI's `staff add`).
        off(|| {
            add_staff(b.admin.as_ref(), GUHAN, "王芳", "204816").unwrap();
            add_staff(b.admin.as_ref(), GUHAN, "李强", "580317").unwrap();
            add_staff(b.admin.as_ref(), "140423101", "别镇的人", "771204").unwrap();
        });
        let names: Vec<String> = staff
            .staff_members()
            .await
            .unwrap()
            .into_iter()
            .map(|m| m.name)
            .collect();
        assert_eq!(
            names,
            ["李强", "王芳"],
            "{}: only this town's people",
            b.name
        );
        // A village phone has no staff list.
        assert_eq!(code_of(&agent.staff_members().await.unwrap_err()).0, 403);

        // 谁在办理: a wrong PIN does not unlock, the right one does.
        let unlock = |name: &str, pin: &str| StaffUnlock {
            name: name.into(),
            pin: pin.into(),
        };
        let e = staff
            .unlock_staff(&unlock("王芳", "580317"))
            .await
            .unwrap_err();
        assert_eq!(code_of(&e), (403, "wrong_pin".into()), "{}", b.name);
        let me = staff.unlock_staff(&unlock("王芳", "204816")).await.unwrap();
        assert_eq!(me.name, "王芳");

        // From now on every action needs the person's PIN, checked again on the server.
        for (name, pin, want) in [
            ("", None, "pin_required"),
            ("王芳", None, "pin_required"),
            ("王芳", Some("580317"), "wrong_pin"),
            ("别镇的人", Some("771204"), "wrong_pin"),
        ] {
            let e = staff
                .act(&ids[1], &act(TownAction::Accept, name, pin))
                .await
                .unwrap_err();
            assert_eq!(code_of(&e), (403, want.into()), "{}: {name}", b.name);
        }
        staff
            .act(&ids[1], &act(TownAction::Accept, "王芳", Some("204816")))
            .await
            .unwrap();
        let c = staff.case(&ids[1]).await.unwrap();
        assert_eq!(
            c.history.last().unwrap().by,
            format!("王芳 ({})", tablet.id)
        );

        // Switching person: 李强 takes the tablet over and refuses the third case.
        staff.unlock_staff(&unlock("李强", "580317")).await.unwrap();
        staff
            .act(
                &ids[2],
                &act(
                    TownAction::Refuse {
                        reason: "不属于本村户籍".into(),
                    },
                    "李强",
                    Some("580317"),
                ),
            )
            .await
            .unwrap();
        let c = staff.case(&ids[2]).await.unwrap();
        assert_eq!(
            c.history.last().unwrap().by,
            format!("李强 ({})", tablet.id)
        );

        // The audit log names the person of every action and of every unlock.
        let log = off(|| b.store.audit_log().unwrap());
        let actor = |action: &str, case: &str| {
            log.iter()
                .find(|e| e.draft.action == action && e.draft.case_id.as_deref() == Some(case))
                .map(|e| e.draft.actor.clone())
        };
        assert_eq!(
            actor("accept", &ids[1]),
            Some(format!("王芳 ({})", tablet.id))
        );
        assert_eq!(
            actor("refuse", &ids[2]),
            Some(format!("李强 ({})", tablet.id))
        );
        let unlocks: Vec<&str> = log
            .iter()
            .filter(|e| e.draft.action == "staff_unlock")
            .map(|e| e.draft.actor.as_str())
            .collect();
        assert_eq!(
            unlocks,
            [
                format!("王芳 ({})", tablet.id),
                format!("李强 ({})", tablet.id)
            ],
            "{}",
            b.name
        );
        bianmin_town::audit::verify_chain(&log).unwrap();

        // Guessing: five wrong PINs for one person, then even the right one waits; another
        // person on the same tablet is not locked out.
        for _ in 0..5 {
            let e = staff
                .unlock_staff(&unlock("李强", "111112"))
                .await
                .unwrap_err();
            assert_eq!(code_of(&e).1, "wrong_pin");
        }
        let e = staff
            .unlock_staff(&unlock("李强", "580317"))
            .await
            .unwrap_err();
        assert_eq!(code_of(&e).0, 429, "{}", b.name);
        staff.unlock_staff(&unlock("王芳", "204816")).await.unwrap();

        // A person who left: their PIN unlocks nothing, and they leave the tablet's list.
        off(|| disable_staff(b.admin.as_ref(), GUHAN, "王芳").unwrap());
        let e = staff
            .unlock_staff(&unlock("王芳", "204816"))
            .await
            .unwrap_err();
        assert_eq!(code_of(&e), (403, "wrong_pin".into()));
        let names: Vec<String> = staff
            .staff_members()
            .await
            .unwrap()
            .into_iter()
            .map(|m| m.name)
            .collect();
        assert_eq!(names, ["李强"]);

        // The county roster: people and devices per town and village; revoking the lost phone.
        let password = off(|| {
            bianmin_town::oversight::supervisor_add(state.admin.as_ref(), "张科长").unwrap()
        });
        let resp = send_raw(
            &router,
            form(
                "/county/login",
                &[("name", "张科长"), ("password", &password)],
                None,
            ),
        )
        .await;
        assert_eq!(resp.status(), StatusCode::SEE_OTHER);
        let cookie = resp.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_string();
        let (st, body) = send(&router, get("/county/roster", Some(&cookie))).await;
        assert_eq!(st, StatusCode::OK, "{body}");
        for want in [
            "李强",
            "李代办",
            "登记平板的人",
            &phone.id,
            &tablet.id,
            "南关",
        ] {
            assert!(body.contains(want), "{}: roster lacks {want}", b.name);
        }
        assert!(!body.contains("王芳"), "a disabled account is not listed");
        let csrf = body
            .split("name=\"csrf\" value=\"")
            .nth(1)
            .and_then(|s| s.split('"').next())
            .unwrap()
            .to_string();
        let revoke = format!("/county/roster/devices/{}/revoke", phone.id);
        let (st, _) = send(&router, form(&revoke, &[("csrf", "forged")], Some(&cookie))).await;
        assert_eq!(st, StatusCode::FORBIDDEN);
        agent.me().await.unwrap();
        let resp = send_raw(&router, form(&revoke, &[("csrf", &csrf)], Some(&cookie))).await;
        assert_eq!(resp.status(), StatusCode::SEE_OTHER);
        assert_eq!(code_of(&agent.me().await.unwrap_err()).0, 401, "{}", b.name);
        let (_, body) = send(&router, get("/county/roster", Some(&cookie))).await;
        let row = body
            .split(&format!("id=\"device-{}\"", phone.id))
            .nth(1)
            .unwrap();
        assert!(row[..row.find("</tr>").unwrap()].contains("已停用"));
        let log = off(|| b.store.audit_log().unwrap());
        assert!(log
            .iter()
            .any(|e| e.draft.action == "revoke_device" && e.draft.actor == "supervisor:张科长"));

        // Stop serving, then close the stores off the async thread (PostgreSQL's client blocks).
        let _ = stop.send(());
        drop((agent, staff));
        server_task.await.unwrap();
        off(move || drop((router, state, b)));
    }
}
