//! The case book on this device: enrolment, cases and captured pages, kept in the engine's
//! encrypted outbox.
//!
//! The screens speak to this thin adapter, not to the outbox itself: it turns the outbox's
//! errors into the Chinese messages the agent sees and keeps the enrolment (plain facts as
//! outbox metadata, the signing key as an encrypted outbox secret). Everything personal — names,
//! ID numbers, photos — is encrypted at rest by the outbox (ARCHITECTURE.md); the device key
//! comes from the platform's key store (`keystore.rs`: Android Keystore, a 0600 file on desktop).

use std::path::Path;
use std::sync::Arc;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use bianmin_engine::case::Case;
use bianmin_engine::catalog::Item;
use bianmin_engine::outbox::{CaseSummary, DeliveryMark, Outbox, StoreError};
use bianmin_protocol::{AgentRef, Applicant, AttachmentRef, CaseState};
use chrono::{DateTime, Utc};
use ed25519_dalek::SigningKey;
use serde::{Deserialize, Serialize};

/// Who uses this device, fixed at enrolment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// 村代办员 on a phone.
    Village,
    /// 镇代办员 / window staff on a tablet.
    Town,
}

/// The enrolment of this device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Device {
    pub role: Role,
    /// Town centre base URL, e.g. `https://bm.xiangyuan.gov.cn`.
    pub server: String,
    /// Village code (12 digits) for a village device; the town's code for a town device.
    pub place: String,
    /// The agent's or staff member's name.
    pub person: String,
    /// Six base32 characters, part of every case number minted here (the outbox's device code).
    pub device_code: String,
    /// Ed25519 secret key (base64) that signs requests and receipt links. Never written with the
    /// other facts: the book keeps it as an encrypted outbox secret.
    #[serde(skip)]
    pub signing_key: String,
    pub enrolled_at: DateTime<Utc>,
    /// When the last sync with the town centre finished.
    #[serde(default)]
    pub last_sync: Option<DateTime<Utc>>,
    /// The town centre's receipt key (hex), once enrolled online; `None` for an offline enrolment
    /// that the town still has to confirm.
    #[serde(default)]
    pub server_key: Option<String>,
    /// Human-readable place, e.g. 古韩镇南关村, from the town centre.
    #[serde(default)]
    pub place_name: String,
}

impl Device {
    /// The signing key.
    pub fn key(&self) -> Result<SigningKey, String> {
        let raw = STANDARD
            .decode(&self.signing_key)
            .map_err(|e| e.to_string())?;
        let bytes: [u8; 32] = raw
            .try_into()
            .map_err(|_| "签名密钥长度不对，请重新登记设备。".to_string())?;
        Ok(SigningKey::from_bytes(&bytes))
    }

    /// A signed client for the town centre, as this device.
    pub fn transport(&self) -> Result<bianmin_engine::transport::Transport, String> {
        let cred = bianmin_engine::transport::Credential {
            device_id: self.device_code.clone(),
            key: self.key()?,
        };
        bianmin_engine::transport::Transport::new(&self.server, Some(cred))
            .map_err(|e| e.user_message())
    }

    /// Who is responsible (首问负责) for cases started on this device.
    pub fn agent(&self) -> AgentRef {
        AgentRef {
            device_id: self.device_code.clone(),
            name: self.person.clone(),
            village: self.place.clone(),
        }
    }
}

/// Counts of cases by where they are, for the home screen.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub drafts: usize,
    pub waiting: usize,
    pub at_town: usize,
    pub corrections: usize,
    pub done: usize,
}

/// Outbox metadata key of the enrolment facts (JSON of [`Device`] without the key).
const META_DEVICE: &str = "app.device";
/// Outbox secret holding the Ed25519 signing key; the same name the agent CLI uses, so a data
/// directory enrolled with `bianmin-agent` keeps its key.
const SECRET_SIGNING_KEY: &str = "device_signing_key";

fn message(what: &str, e: StoreError) -> String {
    tracing::warn!(error = %e, "{what}");
    e.user_message()
}

/// The on-device book of cases, shared by every screen and the sync task.
#[derive(Clone)]
pub struct Book {
    outbox: Arc<Outbox>,
}

impl PartialEq for Book {
    fn eq(&self, other: &Book) -> bool {
        Arc::ptr_eq(&self.outbox, &other.outbox)
    }
}

impl std::fmt::Debug for Book {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Book")
            .field("dir", &self.outbox.dir())
            .finish()
    }
}

impl Book {
    /// Opens (creating) the book in `dir` with this platform's device key store.
    pub fn open(dir: &Path) -> Result<Book, String> {
        let keys = crate::services::keystore::for_data_dir(dir);
        let outbox = Outbox::open(dir, keys.as_ref()).map_err(|e| {
            tracing::error!(error = %e, dir = %dir.display(), "cannot open the outbox");
            format!("无法打开办件库：{}", e.user_message())
        })?;
        Ok(Book {
            outbox: Arc::new(outbox),
        })
    }

    pub fn dir(&self) -> &Path {
        self.outbox.dir()
    }

    /// The outbox itself, for the engine's sync client.
    pub fn outbox(&self) -> &Outbox {
        &self.outbox
    }

    /// The signing key of this device, made (and stored encrypted) on first use, so an enrolment
    /// whose answer was lost can be retried with the same key.
    fn signing_key(&self) -> Result<SigningKey, String> {
        let stored = self
            .outbox
            .get_secret(SECRET_SIGNING_KEY)
            .map_err(|e| message("read signing key", e))?;
        if let Some(raw) = stored {
            let bytes: [u8; 32] = raw
                .try_into()
                .map_err(|_| "签名密钥已损坏，请联系镇中心重新登记。".to_string())?;
            return Ok(SigningKey::from_bytes(&bytes));
        }
        let key = SigningKey::generate(&mut rand::rngs::OsRng);
        self.outbox
            .put_secret(SECRET_SIGNING_KEY, &key.to_bytes())
            .map_err(|e| message("store signing key", e))?;
        Ok(key)
    }

    /// A new enrolment for this device: its outbox device code and its signing key.
    pub fn new_device(
        &self,
        role: Role,
        server: &str,
        place: &str,
        person: &str,
        now: DateTime<Utc>,
    ) -> Result<Device, String> {
        let key = self.signing_key()?;
        Ok(Device {
            role,
            server: server.trim().trim_end_matches('/').to_string(),
            place: place.trim().to_string(),
            person: person.trim().to_string(),
            device_code: self.outbox.device_code().to_string(),
            signing_key: STANDARD.encode(key.to_bytes()),
            enrolled_at: now,
            last_sync: None,
            server_key: None,
            place_name: String::new(),
        })
    }

    /// The enrolment, if this device has one.
    pub fn device(&self) -> Option<Device> {
        let raw = self
            .outbox
            .get_meta(META_DEVICE)
            .map_err(|e| tracing::warn!(error = %e, "read enrolment"))
            .ok()??;
        let mut d: Device = serde_json::from_slice(&raw)
            .map_err(|e| tracing::warn!(error = %e, "enrolment record unreadable"))
            .ok()?;
        let key = self
            .outbox
            .get_secret(SECRET_SIGNING_KEY)
            .map_err(|e| tracing::warn!(error = %e, "read signing key"))
            .ok()??;
        d.signing_key = STANDARD.encode(key);
        Some(d)
    }

    pub fn save_device(&self, d: &Device) -> Result<(), String> {
        let json = serde_json::to_vec(d).map_err(|e| e.to_string())?;
        self.outbox
            .put_meta(META_DEVICE, &json)
            .map_err(|e| message("save enrolment", e))
    }

    /// Starts a case for `item` with a fresh case number, saved as a draft.
    pub fn create(&self, item: &str, device: &Device) -> Result<Case, String> {
        self.outbox
            .create_draft(item, Applicant::default(), device.agent(), Utc::now())
            .map_err(|e| message("create case", e))
    }

    pub fn get(&self, id: &str) -> Option<Case> {
        self.outbox
            .get(id)
            .map_err(|e| tracing::warn!(case = id, error = %e, "read case"))
            .ok()
    }

    /// Autosave of what the agent typed (applicant and answers); returns the case as stored.
    pub fn save_draft(&self, case: &Case) -> Result<Case, String> {
        self.outbox
            .save_draft(case)
            .map_err(|e| message("autosave", e))?;
        self.outbox
            .get(&case.id)
            .map_err(|e| message("reload case", e))
    }

    /// 初审: Ready if it passes, otherwise every problem in Chinese.
    pub fn precheck(&self, id: &str, item: &Item) -> Result<Case, Vec<String>> {
        match self.outbox.precheck(id, item, Utc::now()) {
            Ok(c) => Ok(c),
            Err(StoreError::Precheck { problems, .. }) => Err(problems),
            Err(e) => Err(vec![message("precheck", e)]),
        }
    }

    /// Seals the case into the outbox (初审 runs again inside, so nothing unchecked is queued).
    pub fn seal(&self, id: &str, item: &Item) -> Result<Case, String> {
        self.outbox
            .seal(id, item, Utc::now())
            .map_err(|e| message("seal", e))
    }

    /// Stores a captured page in a material; `slot` replaces that page (a retake).
    pub fn add_page(
        &self,
        id: &str,
        material: &str,
        slot: Option<usize>,
        name: &str,
        bytes: &[u8],
    ) -> Result<Case, String> {
        match slot {
            Some(i) => self.outbox.replace_page(id, material, i, name, bytes),
            None => self.outbox.add_page(id, material, name, bytes),
        }
        .map_err(|e| message("store photo", e))?;
        self.outbox.get(id).map_err(|e| message("reload case", e))
    }

    /// Removes a page from a material of an editable case.
    pub fn remove_page(&self, id: &str, material: &str, sha256: &str) -> Result<Case, String> {
        self.outbox
            .remove_page(id, material, sha256)
            .map_err(|e| message("remove photo", e))?;
        self.outbox.get(id).map_err(|e| message("reload case", e))
    }

    /// 已送达: stored on the phone at once; the sync loop reports it to the town.
    pub fn record_delivery(&self, id: &str, person: &str) -> Result<DeliveryMark, String> {
        self.outbox
            .record_delivery(id, person, Utc::now())
            .map_err(|e| message("record delivery", e))
    }

    /// The agent's 已送达 mark on this case, if any.
    pub fn delivery(&self, id: &str) -> Option<DeliveryMark> {
        self.outbox
            .delivery(id)
            .map_err(|e| tracing::warn!(case = id, error = %e, "read delivery mark"))
            .ok()
            .flatten()
    }

    /// Every case, most recently changed first, names and ID numbers masked.
    pub fn list(&self) -> Vec<CaseSummary> {
        self.outbox
            .list()
            .map_err(|e| tracing::warn!(error = %e, "list cases"))
            .unwrap_or_default()
    }

    pub fn counts(&self) -> Counts {
        let mut c = Counts::default();
        for case in self.list() {
            match case.state {
                CaseState::Draft | CaseState::Ready => c.drafts += 1,
                CaseState::Queued => c.waiting += 1,
                CaseState::CorrectionRequested => c.corrections += 1,
                CaseState::Uploaded
                | CaseState::Received
                | CaseState::Accepted
                | CaseState::Forwarded => c.at_town += 1,
                CaseState::Refused
                | CaseState::Completed
                | CaseState::Delivered
                | CaseState::Rated => c.done += 1,
            }
            // A 已送达 mark not yet at the town is something waiting to go, like a queued case.
            if case.delivery_waiting {
                c.waiting += 1;
            }
        }
        c
    }

    /// The decrypted page bytes.
    pub fn page(&self, page: &AttachmentRef) -> Result<Vec<u8>, String> {
        self.outbox
            .read_page(page)
            .map_err(|e| message("read photo", e))
    }

    /// The page as a `data:` URL for an `<img>`; works the same in every webview.
    pub fn page_data_url(&self, page: &AttachmentRef) -> Option<String> {
        let bytes = self.page(page).ok()?;
        Some(format!(
            "data:{};base64,{}",
            page.mime,
            STANDARD.encode(bytes)
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enrolment_keeps_the_key_secret_and_cases_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let book = Book::open(dir.path()).unwrap();
        assert!(book.device().is_none());
        let dev = book
            .new_device(
                Role::Village,
                "http://x/",
                "140423101201",
                "李代办",
                Utc::now(),
            )
            .unwrap();
        assert_eq!(dev.server, "http://x");
        book.save_device(&dev).unwrap();
        assert_eq!(book.device().unwrap(), dev);
        // The same key after reopening, and a second enrolment attempt reuses it.
        drop(book);
        let book = Book::open(dir.path()).unwrap();
        assert_eq!(
            book.device().unwrap().key().unwrap().to_bytes(),
            dev.key().unwrap().to_bytes()
        );
        assert_eq!(
            book.new_device(
                Role::Village,
                "http://x",
                "140423101201",
                "李代办",
                Utc::now()
            )
            .unwrap()
            .signing_key,
            dev.signing_key
        );
        // Neither the key nor the agent's name is readable in any file of the data directory.
        let key_b64 = dev.signing_key.clone();
        let a = book.create("V11", &dev).unwrap();
        let b = book.create("V11", &dev).unwrap();
        assert!(
            a.id.ends_with("-0001") && b.id.ends_with("-0002"),
            "{} {}",
            a.id,
            b.id
        );
        let mut draft = a.clone();
        draft.applicant.name = "王秀英".into();
        assert_eq!(book.save_draft(&draft).unwrap().applicant.name, "王秀英");
        assert_eq!(book.counts().drafts, 2);
        let c = book
            .add_page(&a.id, "id_card", None, "x.jpg", b"\xFF\xD8jpeg")
            .unwrap();
        let p = c.materials[0].pages[0].clone();
        assert!(book.page_data_url(&p).unwrap().starts_with("data:"));
        drop(book);
        for entry in walk(dir.path()) {
            let bytes = std::fs::read(&entry).unwrap();
            let text = String::from_utf8_lossy(&bytes);
            assert!(
                !text.contains(&key_b64) && !text.contains("王秀英"),
                "{} leaks personal data",
                entry.display()
            );
        }
    }

    fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p))
            } else {
                out.push(p)
            }
        }
        out
    }
}
