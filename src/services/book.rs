//! The case book on this device: enrolment, cases and captured pages under the data directory.
//!
//! Every write goes to a temporary file that is synced and then renamed over the old one, so a
//! crash or a full disk leaves either the old or the new version, never half a case: a draft
//! typed by the agent survives the app being killed. Pages are files named by their SHA-256,
//! never values inside a database (BRIEF §6), so the same photo is stored once.
//!
//! This is the app's own file layout while the engine's encrypted outbox (issue 3) is not in the
//! tree; the screens only use the methods below, so switching to it changes this file only.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use bianmin_engine::case::Case;
use bianmin_engine::number::{device_code_from, CaseNumber, DEVICE_CODE_LEN};
use bianmin_protocol::{AttachmentRef, CaseState};
use chrono::{DateTime, NaiveDate, Utc};
use ed25519_dalek::SigningKey;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

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
    /// Six base32 characters, part of every case number minted here.
    pub device_code: String,
    /// Ed25519 secret key (base64) that signs receipt links.
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
    /// A new enrolment with a fresh device code and receipt key.
    pub fn new(role: Role, server: &str, place: &str, person: &str, now: DateTime<Utc>) -> Device {
        use rand::RngCore;
        let mut rng = rand::rngs::OsRng;
        let mut code = [0u8; DEVICE_CODE_LEN];
        rng.fill_bytes(&mut code);
        let key = SigningKey::generate(&mut rng);
        Device {
            role,
            server: server.trim().trim_end_matches('/').to_string(),
            place: place.trim().to_string(),
            person: person.trim().to_string(),
            device_code: device_code_from(code),
            signing_key: STANDARD.encode(key.to_bytes()),
            enrolled_at: now,
            last_sync: None,
            server_key: None,
            place_name: String::new(),
        }
    }

    /// The receipt signing key.
    pub fn key(&self) -> Result<SigningKey, String> {
        let raw = STANDARD.decode(&self.signing_key).map_err(|e| e.to_string())?;
        let bytes: [u8; 32] = raw.try_into().map_err(|_| "签名密钥长度不对".to_string())?;
        Ok(SigningKey::from_bytes(&bytes))
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

/// The on-device book of cases.
#[derive(Debug, Clone, PartialEq)]
pub struct Book {
    dir: PathBuf,
}

fn io_err(what: &str, e: std::io::Error) -> String {
    if e.raw_os_error() == Some(28) {
        return format!("{what}失败：手机存储空间已满，请删除一些照片或视频后再试。已填写的内容没有丢失。");
    }
    format!("{what}失败：{e}。请重试；如果一直失败，请重启应用。")
}

impl Book {
    /// Opens (creating) the book in `dir`.
    pub fn open(dir: &Path) -> Result<Book, String> {
        for sub in ["cases", "pages"] {
            fs::create_dir_all(dir.join(sub)).map_err(|e| io_err("创建数据目录", e))?;
        }
        Ok(Book { dir: dir.to_path_buf() })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes `bytes` to `path` atomically: temp file, fsync, rename.
    fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
        let tmp = path.with_extension("tmp");
        {
            let mut f = fs::File::create(&tmp)?;
            f.write_all(bytes)?;
            f.sync_all()?;
        }
        fs::rename(&tmp, path)
    }

    pub fn device(&self) -> Option<Device> {
        let text = fs::read(self.dir.join("device.json")).ok()?;
        serde_json::from_slice(&text).ok()
    }

    pub fn save_device(&self, d: &Device) -> Result<(), String> {
        let json = serde_json::to_vec_pretty(d).map_err(|e| e.to_string())?;
        Self::write_atomic(&self.dir.join("device.json"), &json).map_err(|e| io_err("保存登记信息", e))
    }

    fn case_path(&self, id: &str) -> PathBuf {
        self.dir.join("cases").join(format!("{id}.json"))
    }

    /// Saves a case (draft autosave, seal, decisions).
    pub fn save(&self, case: &Case) -> Result<(), String> {
        let json = serde_json::to_vec(case).map_err(|e| e.to_string())?;
        Self::write_atomic(&self.case_path(&case.id), &json).map_err(|e| io_err("保存", e))
    }

    pub fn get(&self, id: &str) -> Option<Case> {
        let bytes = fs::read(self.case_path(id)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Every case, newest first.
    pub fn list(&self) -> Vec<Case> {
        let mut out: Vec<Case> = fs::read_dir(self.dir.join("cases"))
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
            .filter_map(|e| fs::read(e.path()).ok())
            .filter_map(|b| serde_json::from_slice::<Case>(&b).ok())
            .collect();
        out.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
        out
    }

    pub fn counts(&self) -> Counts {
        let mut c = Counts::default();
        for case in self.list() {
            match case.state {
                CaseState::Draft | CaseState::Ready => c.drafts += 1,
                CaseState::Queued => c.waiting += 1,
                CaseState::CorrectionRequested => c.corrections += 1,
                CaseState::Uploaded | CaseState::Received | CaseState::Accepted | CaseState::Forwarded => c.at_town += 1,
                CaseState::Refused | CaseState::Completed | CaseState::Delivered | CaseState::Rated => c.done += 1,
            }
        }
        c
    }

    /// The next case number for this device today; the counter is kept in a file per day.
    pub fn next_case_id(&self, device: &Device, today: NaiveDate) -> Result<String, String> {
        let path = self.dir.join(format!("seq-{}", today.format("%Y%m%d")));
        let last: u32 = fs::read_to_string(&path).ok().and_then(|s| s.trim().parse().ok()).unwrap_or(0);
        let seq = last + 1;
        Self::write_atomic(&path, seq.to_string().as_bytes()).map_err(|e| io_err("生成办件编号", e))?;
        CaseNumber::new(&device.place, today, &device.device_code, seq)
            .map(|n| n.to_string())
            .map_err(|e| format!("无法生成办件编号：{e}。请检查登记的村代码是否为12位数字。"))
    }

    /// Stores a captured page and returns its reference.
    pub fn add_page(&self, bytes: &[u8], name: &str, mime: &str) -> Result<AttachmentRef, String> {
        let sha = hex::encode(Sha256::digest(bytes));
        let path = self.dir.join("pages").join(&sha);
        if !path.exists() {
            Self::write_atomic(&path, bytes).map_err(|e| io_err("保存照片", e))?;
        }
        Ok(AttachmentRef { name: name.to_string(), sha256: sha, bytes: bytes.len() as u64, mime: mime.to_string() })
    }

    pub fn page_path(&self, page: &AttachmentRef) -> PathBuf {
        self.dir.join("pages").join(&page.sha256)
    }

    /// The page as a `data:` URL for an `<img>`; works the same in every webview.
    pub fn page_data_url(&self, page: &AttachmentRef) -> Option<String> {
        let bytes = fs::read(self.page_path(page)).ok()?;
        Some(format!("data:{};base64,{}", page.mime, STANDARD.encode(bytes)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bianmin_protocol::{AgentRef, Applicant};

    #[test]
    fn cases_round_trip_and_numbers_count_up() {
        let dir = tempfile::tempdir().unwrap();
        let book = Book::open(dir.path()).unwrap();
        let dev = Device::new(Role::Village, "http://x/", "140423101201", "李代办", Utc::now());
        book.save_device(&dev).unwrap();
        assert_eq!(book.device().unwrap(), dev);
        let today = NaiveDate::from_ymd_opt(2026, 11, 28).unwrap();
        let a = book.next_case_id(&dev, today).unwrap();
        let b = book.next_case_id(&dev, today).unwrap();
        assert!(a.ends_with("-0001") && b.ends_with("-0002"), "{a} {b}");
        let agent = AgentRef { device_id: dev.device_code.clone(), name: dev.person.clone(), village: dev.place.clone() };
        let case = Case::new(a.clone(), "V11", Applicant::default(), agent, Utc::now());
        book.save(&case).unwrap();
        assert_eq!(book.get(&a).unwrap(), case);
        assert_eq!(book.counts().drafts, 1);
        let p = book.add_page(b"jpeg", "x.jpg", "image/jpeg").unwrap();
        assert!(book.page_path(&p).exists());
        assert!(book.page_data_url(&p).unwrap().starts_with("data:image/jpeg;base64,"));
    }
}

/// The engine's sync client drives uploads and decisions through this.
impl bianmin_engine::sync::SyncStore for Book {
    fn pending(&self) -> Result<Vec<bianmin_protocol::CaseSubmission>, bianmin_engine::sync::StoreFailure> {
        let mut out: Vec<_> = self
            .list()
            .into_iter()
            .filter(|c| c.state == CaseState::Queued)
            .map(|c| {
                // The seal time is fixed in the history, so every retry sends the identical submission.
                let sealed_at = c.history.iter().rev().find(|h| h.to == CaseState::Queued).map(|h| h.at).unwrap_or(c.created_at);
                c.submission(sealed_at)
            })
            .collect();
        out.sort_by(|a, b| a.sealed_at.cmp(&b.sealed_at));
        Ok(out)
    }

    fn read_attachment(&self, sha256: &str, offset: u64, max: usize) -> Result<Vec<u8>, bianmin_engine::sync::StoreFailure> {
        use std::io::{Read, Seek, SeekFrom};
        if !sha256.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(format!("bad attachment id {sha256}").into());
        }
        let mut f = fs::File::open(self.dir.join("pages").join(sha256))?;
        f.seek(SeekFrom::Start(offset))?;
        let mut buf = Vec::with_capacity(max);
        f.take(max as u64).read_to_end(&mut buf)?;
        Ok(buf)
    }

    fn mark_uploaded(&self, receipt: &bianmin_protocol::sync::Receipt) -> Result<(), bianmin_engine::sync::StoreFailure> {
        let Some(mut c) = self.get(&receipt.case_id) else { return Ok(()) };
        if c.state == CaseState::Queued && c.version == receipt.version {
            c.apply(bianmin_engine::case::CaseEvent::Uploaded, "town", receipt.received_at)?;
            self.save(&c)?;
        }
        Ok(())
    }

    fn apply_town_event(&self, event: &bianmin_protocol::DecisionEvent) -> Result<(), bianmin_engine::sync::StoreFailure> {
        let Some(mut c) = self.get(&event.case_id) else { return Ok(()) };
        if event.version != c.version {
            return Ok(());
        }
        // The feed may repeat what the phone already knows; an event that does not apply is skipped.
        if c.apply(bianmin_engine::case::CaseEvent::Town(event.decision.clone()), &event.by, event.at).is_ok() {
            self.save(&c)?;
        }
        Ok(())
    }

    fn cursor(&self) -> Result<u64, bianmin_engine::sync::StoreFailure> {
        Ok(fs::read_to_string(self.dir.join("cursor")).ok().and_then(|s| s.trim().parse().ok()).unwrap_or(0))
    }

    fn set_cursor(&self, cursor: u64) -> Result<(), bianmin_engine::sync::StoreFailure> {
        Self::write_atomic(&self.dir.join("cursor"), cursor.to_string().as_bytes())?;
        Ok(())
    }
}
