//! Helpers of the tests that sync a phone's outbox with real servers over sockets.

use std::time::Duration;

use bianmin_engine::sync::Backoff;
use bianmin_engine::transport::{Credential, Timeouts, Transport};
use bianmin_protocol::sync::EnrolRequest;
use ed25519_dalek::VerifyingKey;

use super::outbox::MemOutbox;
use super::{page, Device};

pub async fn enrol_over_http(server: &str, code: &str, village: &str) -> (Device, VerifyingKey) {
    let dev = Device::fresh(village);
    let t = Transport::new(server, None).unwrap();
    let resp = t
        .enrol(&EnrolRequest {
            code: code.into(),
            device_id: dev.id.clone(),
            public_key: hex::encode(dev.key.verifying_key().to_bytes()),
            person: "李代办".into(),
        })
        .await
        .unwrap();
    let key = VerifyingKey::from_bytes(&hex::decode(&resp.server_key).unwrap().try_into().unwrap())
        .unwrap();
    (dev, key)
}

pub fn transport(server: &str, dev: &Device) -> Transport {
    // Short timeouts so a stalled connection is abandoned and retried rather than waited on.
    Transport::with_timeouts(
        server,
        Some(Credential {
            device_id: dev.id.clone(),
            key: dev.key.clone(),
        }),
        Timeouts {
            connect: Duration::from_secs(2),
            request: Duration::from_secs(2),
            stall: Duration::from_secs(2),
        },
    )
    .unwrap()
}

pub fn fill(out: &MemOutbox, dev: &Device, cases: usize, seed: u64) -> Vec<(String, Vec<Vec<u8>>)> {
    let mut made = Vec::new();
    for i in 0..cases {
        let pages: Vec<Vec<u8>> = (0..(2 + i % 2))
            .map(|j| {
                page(
                    seed * 1000 + (i * 10 + j) as u64,
                    60_000 + 37_000 * ((i + j) % 7),
                )
            })
            .collect();
        let refs: Vec<&[u8]> = pages.iter().map(|p| p.as_slice()).collect();
        let id = dev.next_case_id();
        out.add(dev.submission(&id, 1, &refs), pages.clone());
        made.push((id, pages));
    }
    made
}

pub const PATIENT: Backoff = Backoff {
    base: Duration::from_millis(5),
    cap: Duration::from_millis(100),
    max_attempts: 400,
};

pub fn assert_all_stored(
    files: &bianmin_town::Files,
    cases: &[bianmin_town::store::StoredCase],
    made: &[(String, Vec<Vec<u8>>)],
) {
    assert_all_stored_at(&|sha| files.attachment_path(sha), cases, made)
}

/// As `assert_all_stored`, reading each page from `path_of(sha)`.
pub fn assert_all_stored_at(
    path_of: &dyn Fn(&str) -> std::path::PathBuf,
    cases: &[bianmin_town::store::StoredCase],
    made: &[(String, Vec<Vec<u8>>)],
) {
    assert_eq!(cases.len(), made.len(), "zero lost cases, zero duplicates");
    for (id, pages) in made {
        let sc = cases
            .iter()
            .find(|c| &c.case.id == id)
            .unwrap_or_else(|| panic!("case {id} lost"));
        assert_eq!(sc.versions.len(), 1);
        let stored: Vec<&bianmin_protocol::AttachmentRef> =
            sc.case.materials.iter().flat_map(|m| &m.pages).collect();
        assert_eq!(stored.len(), pages.len());
        for (r, p) in stored.iter().zip(pages) {
            assert_eq!(
                &std::fs::read(path_of(&r.sha256)).unwrap(),
                p,
                "attachment of {id} differs"
            );
        }
    }
}
