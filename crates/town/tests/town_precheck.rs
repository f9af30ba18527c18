//! The town's own 初审: every submission is checked again on arrival, by the definition its case
//! was made under, and what that finds is kept with the case (and counted in the audit entry) for
//! the staff to see before they accept. A case is never refused for it: the resident has already
//! been given a receipt, and a finding here is the town's to act on with one 补正.

mod common;

use axum::http::StatusCode;
use bianmin_protocol::{Answer, AttachmentRef, MaterialPages};
use bianmin_town::files::sha256_hex;
use bianmin_town::TownStore;
use common::{send, Town, NANGUAN};

#[tokio::test]
async fn an_incomplete_case_is_received_with_every_finding_and_a_complete_one_with_none() {
    let town = Town::new();
    let r = town.router();
    let agent = town.agent(NANGUAN).await;

    // What an altered or outdated phone might send: one side of the ID card, nothing else.
    let front = common::page(1, 2000);
    agent.upload(&r, &front).await;
    let sub = agent.submission(&agent.next_case_id(), 1, &[&front]);
    let (st, body) = send(
        &r,
        agent.json("PUT", &format!("/v1/cases/{}", sub.id), &sub),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{body}");
    let stored = town.store.case(&sub.id).unwrap().unwrap();
    let found = stored.town_check.join("\n");
    assert!(
        found.contains("身份证") && found.contains("反面"),
        "{found}"
    );
    assert!(found.contains("户口簿"), "{found}");
    assert!(found.contains("文化程度"), "{found}");
    let audit = town.store.audit_log().unwrap();
    let entry = audit
        .iter()
        .rev()
        .find(|e| e.draft.action == "submit")
        .unwrap();
    assert!(
        entry.draft.detail.ends_with(&format!(
            "town precheck: {} problems",
            stored.town_check.len()
        )),
        "{}",
        entry.draft.detail
    );

    // The same item filled in as the guide asks: the town's 初审 finds nothing.
    let pages: Vec<Vec<u8>> = (10..14).map(|s| common::page(s, 2000)).collect();
    for p in &pages {
        agent.upload(&r, p).await;
    }
    let refs = |ps: &[Vec<u8>]| -> Vec<AttachmentRef> {
        ps.iter()
            .enumerate()
            .map(|(i, p)| AttachmentRef {
                name: format!("p{i}.jpg"),
                sha256: sha256_hex(p),
                bytes: p.len() as u64,
                mime: "image/jpeg".into(),
            })
            .collect()
    };
    let mut sub = agent.submission(&agent.next_case_id(), 1, &[]);
    sub.applicant.id_number = "140423200701010011".into();
    sub.materials = vec![
        MaterialPages {
            key: "id_card".into(),
            pages: refs(&pages[0..2]),
        },
        MaterialPages {
            key: "household_register".into(),
            pages: refs(&pages[2..4]),
        },
    ];
    sub.answers
        .insert("education".into(), Answer::Text("初中及以下".into()));
    sub.answers
        .insert("status".into(), Answer::Text("社会青年".into()));
    let (st, body) = send(
        &r,
        agent.json("PUT", &format!("/v1/cases/{}", sub.id), &sub),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{body}");
    let stored = town.store.case(&sub.id).unwrap().unwrap();
    assert_eq!(stored.town_check, Vec::<String>::new());
}
