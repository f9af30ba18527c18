//! The embedded backend's administration state as files in the data directory: enrolment
//! tickets, revocations, supervisor accounts and the server key.
//!
//! Files rather than sled values because the administration commands (`enroll`, `revoke`,
//! `supervisor add`) must work while `serve` holds the sled database's lock; each file is
//! written atomically and durably, and a ticket is redeemed by an atomic rename.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use bianmin_engine::outbox::disk::create_dir_durable;
use chrono::{DateTime, Utc};
use ed25519_dalek::SigningKey;
use rand::RngCore;

use super::{
    enrol_code_hash, new_enrol_code, AdminStore, CountyStaff, StaffAccount, StoreError, Supervisor,
    Ticket, TicketError,
};
use crate::digest::write_atomic;

/// Administration files under a data directory.
#[derive(Debug, Clone)]
pub struct FileAdmin {
    root: PathBuf,
}

impl FileAdmin {
    pub fn new(root: &Path) -> FileAdmin {
        FileAdmin {
            root: root.to_path_buf(),
        }
    }

    fn ticket_path(&self, code: &str) -> PathBuf {
        self.root
            .join("enrolment")
            .join(format!("{}.json", enrol_code_hash(code)))
    }

    fn supervisors_path(&self) -> PathBuf {
        self.root.join("supervisors.json")
    }

    fn supervisors(&self) -> Result<BTreeMap<String, Supervisor>, StoreError> {
        match fs::read(self.supervisors_path()) {
            Ok(b) => serde_json::from_slice(&b)
                .map_err(|e| StoreError::Corrupt(format!("supervisors.json: {e}"))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(e) => Err(e.into()),
        }
    }

    fn staff_path(&self) -> PathBuf {
        self.root.join("staff.json")
    }

    /// Staff accounts keyed by `town/name`.
    fn staff_map(&self) -> Result<BTreeMap<String, StaffAccount>, StoreError> {
        match fs::read(self.staff_path()) {
            Ok(b) => serde_json::from_slice(&b)
                .map_err(|e| StoreError::Corrupt(format!("staff.json: {e}"))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(e) => Err(e.into()),
        }
    }
}

impl FileAdmin {
    fn county_staff_path(&self) -> PathBuf {
        self.root.join("county_staff.json")
    }

    /// County staff accounts keyed by name.
    fn county_staff_map(&self) -> Result<BTreeMap<String, CountyStaff>, StoreError> {
        match fs::read(self.county_staff_path()) {
            Ok(b) => serde_json::from_slice(&b)
                .map_err(|e| StoreError::Corrupt(format!("county_staff.json: {e}"))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(e) => Err(e.into()),
        }
    }
}

impl FileAdmin {
    /// Adds the administration records to `snap` (`migrate`): revocations, supervisors, unused
    /// enrolment tickets, the server key.
    pub fn export_into(&self, snap: &mut super::Snapshot) -> Result<(), StoreError> {
        snap.revoked = match fs::read_dir(self.root.join("revoked")) {
            Ok(d) => d
                .flatten()
                .map(|e| e.file_name().to_string_lossy().to_string())
                .filter(|n| !n.contains(".tmp"))
                .collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e.into()),
        };
        snap.supervisors = self.supervisors()?.into_values().collect();
        snap.staff = self.staff_map()?.into_values().collect();
        snap.county_staff = self.county_staff_map()?.into_values().collect();
        snap.tickets = Vec::new();
        if let Ok(d) = fs::read_dir(self.root.join("enrolment")) {
            for e in d.flatten() {
                let name = e.file_name().to_string_lossy().to_string();
                if let Some(hash) = name.strip_suffix(".json") {
                    if let Some(t) = fs::read(e.path())
                        .ok()
                        .and_then(|b| serde_json::from_slice::<Ticket>(&b).ok())
                    {
                        snap.tickets.push((hash.to_string(), t));
                    }
                }
            }
        }
        snap.server_key = Some(self.server_key()?.to_bytes());
        Ok(())
    }
}

impl FileAdmin {
    /// Writes the administration records of `snap` into this data directory (`restore`).
    pub fn import(&self, snap: &super::Snapshot) -> Result<(), StoreError> {
        for d in &snap.revoked {
            self.revoke(d)?;
        }
        for s in &snap.supervisors {
            self.put_supervisor(s)?;
        }
        for s in &snap.staff {
            self.put_staff(s)?;
        }
        for s in &snap.county_staff {
            self.put_county_staff(s)?;
        }
        create_dir_durable(&self.root.join("enrolment"))?;
        for (hash, t) in &snap.tickets {
            write_atomic(
                &self.root.join("enrolment").join(format!("{hash}.json")),
                &serde_json::to_vec(t).expect("tickets serialize"),
            )?;
        }
        if let Some(k) = &snap.server_key {
            write_atomic(&self.root.join("server.key"), hex::encode(k).as_bytes())?;
        }
        Ok(())
    }
}

impl AdminStore for FileAdmin {
    fn issue_ticket(&self, ticket: &Ticket) -> Result<String, StoreError> {
        create_dir_durable(&self.root.join("enrolment"))?;
        let code = new_enrol_code();
        write_atomic(
            &self.ticket_path(&code),
            &serde_json::to_vec(ticket).expect("tickets serialize"),
        )?;
        Ok(code)
    }

    fn redeem_ticket(
        &self,
        code: &str,
        now: DateTime<Utc>,
    ) -> Result<Result<Ticket, TicketError>, StoreError> {
        let path = self.ticket_path(code);
        let used = path.with_extension("used");
        // The rename is atomic: of two concurrent redemptions only one finds the file.
        if fs::rename(&path, &used).is_err() {
            return Ok(Err(TicketError::Unknown));
        }
        let Some(ticket) = fs::read(&used)
            .ok()
            .and_then(|b| serde_json::from_slice::<Ticket>(&b).ok())
        else {
            return Ok(Err(TicketError::Unknown));
        };
        if now > ticket.expires_at {
            return Ok(Err(TicketError::Expired));
        }
        Ok(Ok(ticket))
    }

    fn restore_ticket(&self, code: &str) -> Result<(), StoreError> {
        let path = self.ticket_path(code);
        fs::rename(path.with_extension("used"), path)?;
        Ok(())
    }

    fn revoke(&self, device: &str) -> Result<(), StoreError> {
        write_atomic(
            &self.root.join("revoked").join(device),
            Utc::now().to_rfc3339().as_bytes(),
        )?;
        Ok(())
    }

    fn is_revoked(&self, device: &str) -> Result<bool, StoreError> {
        Ok(self.root.join("revoked").join(device).exists())
    }

    fn put_supervisor(&self, s: &Supervisor) -> Result<(), StoreError> {
        let mut all = self.supervisors()?;
        all.insert(s.name.clone(), s.clone());
        write_atomic(
            &self.supervisors_path(),
            &serde_json::to_vec_pretty(&all).expect("supervisors serialize"),
        )?;
        Ok(())
    }

    fn supervisor(&self, name: &str) -> Result<Option<Supervisor>, StoreError> {
        // Read fresh each time, so an account added by the CLI works at once.
        Ok(self.supervisors()?.remove(name))
    }

    fn put_staff(&self, s: &StaffAccount) -> Result<(), StoreError> {
        let mut all = self.staff_map()?;
        all.insert(format!("{}/{}", s.town, s.name), s.clone());
        write_atomic(
            &self.staff_path(),
            &serde_json::to_vec_pretty(&all).expect("staff accounts serialize"),
        )?;
        Ok(())
    }

    fn staff_account(&self, town: &str, name: &str) -> Result<Option<StaffAccount>, StoreError> {
        // Read fresh each time, so an account added or disabled by the CLI counts at once.
        Ok(self.staff_map()?.remove(&format!("{town}/{name}")))
    }

    fn staff_accounts(&self) -> Result<Vec<StaffAccount>, StoreError> {
        Ok(self.staff_map()?.into_values().collect())
    }

    fn put_county_staff(&self, s: &CountyStaff) -> Result<(), StoreError> {
        let mut all = self.county_staff_map()?;
        all.insert(s.name.clone(), s.clone());
        write_atomic(
            &self.county_staff_path(),
            &serde_json::to_vec_pretty(&all).expect("county staff accounts serialize"),
        )?;
        Ok(())
    }

    fn county_staff(&self, name: &str) -> Result<Option<CountyStaff>, StoreError> {
        // Read fresh each time, so an account added or disabled by the CLI counts at once.
        Ok(self.county_staff_map()?.remove(name))
    }

    fn county_staff_list(&self) -> Result<Vec<CountyStaff>, StoreError> {
        Ok(self.county_staff_map()?.into_values().collect())
    }

    fn server_key(&self) -> Result<SigningKey, StoreError> {
        let path = self.root.join("server.key");
        match fs::read_to_string(&path) {
            Ok(text) => {
                let bytes: [u8; 32] = hex::decode(text.trim())
                    .ok()
                    .and_then(|b| b.try_into().ok())
                    .ok_or_else(|| StoreError::Corrupt("server.key is not 32 hex bytes".into()))?;
                Ok(SigningKey::from_bytes(&bytes))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut seed = [0u8; 32];
                rand::rngs::OsRng.fill_bytes(&mut seed);
                write_atomic(&path, hex::encode(seed).as_bytes())?;
                Ok(SigningKey::from_bytes(&seed))
            }
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use bianmin_protocol::sync::DeviceRole;

    use super::*;

    #[test]
    fn tickets_are_single_use_and_expire() {
        let dir = tempfile::tempdir().unwrap();
        let admin = FileAdmin::new(dir.path());
        let now = Utc::now();
        let t = Ticket {
            role: DeviceRole::Agent,
            village: Some("140423100201".into()),
            town: "140423100".into(),
            expires_at: now + chrono::Duration::minutes(10),
        };
        let code = admin.issue_ticket(&t).unwrap();
        assert_eq!(
            admin.redeem_ticket(&code.to_lowercase(), now).unwrap(),
            Ok(t.clone())
        );
        assert_eq!(
            admin.redeem_ticket(&code, now).unwrap(),
            Err(TicketError::Unknown)
        );
        admin.restore_ticket(&code).unwrap();
        assert_eq!(admin.redeem_ticket(&code, now).unwrap(), Ok(t.clone()));
        let code = admin.issue_ticket(&t).unwrap();
        assert_eq!(
            admin
                .redeem_ticket(&code, now + chrono::Duration::minutes(11))
                .unwrap(),
            Err(TicketError::Expired)
        );
    }
}
