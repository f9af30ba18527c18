//! The device's enrolment with the town centre: who uses it, for which place, and the keys.
//!
//! One storage format for the app and the agent CLI: the plain facts as the outbox metadata
//! `enrolment` (JSON), the Ed25519 signing key as the encrypted outbox secret
//! `device_signing_key`. Directories written by older app builds (`app.device`) and by the CLI
//! (`server`, `server_key`, `role`, `scope_name`, `village`, `person`) are migrated on
//! [`Enrolment::load`]. Keys are typed here and never passed around as strings.

use bianmin_protocol::sync::{DeviceRole, EnrolRequest, EnrolResponse};
use bianmin_protocol::AgentRef;
use chrono::{DateTime, Utc};
use ed25519_dalek::{SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::outbox::{Outbox, StoreError};
use crate::transport::{Credential, Transport, TransportError};

/// Outbox metadata key of the enrolment facts.
pub const META_ENROLMENT: &str = "enrolment";
/// Outbox secret holding the device's Ed25519 signing key (also signs resident receipt links).
pub const SECRET_SIGNING_KEY: &str = "device_signing_key";
/// The format older app builds wrote.
const LEGACY_APP: &str = "app.device";
/// The CLI's former one-fact-per-key format.
const LEGACY_CLI_SERVER: &str = "server";
const LEGACY_CLI_SERVER_KEY: &str = "server_key";
const LEGACY_CLI_ROLE: &str = "role";
const LEGACY_CLI_SCOPE: &str = "scope_name";
const LEGACY_CLI_VILLAGE: &str = "village";
const LEGACY_CLI_PERSON: &str = "person";

/// Why enrolment or reading it failed.
#[derive(Debug, Error)]
pub enum EnrolmentError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error("the stored enrolment is unreadable: {0}")]
    Corrupt(String),
    #[error("this device is already enrolled (device {0})")]
    AlreadyEnrolled(String),
    #[error("invalid enrolment: {0}")]
    Invalid(&'static str),
}

impl EnrolmentError {
    /// Plain Chinese for the person enrolling.
    pub fn user_message(&self) -> String {
        match self {
            EnrolmentError::Store(e) => e.user_message(),
            EnrolmentError::Transport(e) => format!("登记失败：{}", e.user_message()),
            EnrolmentError::Corrupt(_) => "本机登记信息已损坏，请联系镇中心重新登记。".into(),
            EnrolmentError::AlreadyEnrolled(_) => "本设备已经登记过了。".into(),
            EnrolmentError::Invalid(_) => "登记信息不完整，请核对镇中心地址和登记码。".into(),
        }
    }
}

/// This device's enrolment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enrolment {
    /// A village agent's phone or a town staff tablet.
    pub role: DeviceRole,
    /// Town centre base URL without a trailing slash.
    pub server: String,
    /// The village (12 digits) an agent serves; the town's code for staff.
    pub place: String,
    /// Human-readable place, e.g. 古韩镇南关村 (empty until the town centre said it).
    pub place_name: String,
    /// The agent's or staff member's name (首问负责).
    pub person: String,
    /// The outbox's device code, part of every case number minted here.
    pub device_code: String,
    pub signing_key: SigningKey,
    /// The town centre's receipt key; `None` for an offline start the town has not confirmed.
    pub server_key: Option<VerifyingKey>,
    pub enrolled_at: DateTime<Utc>,
    pub last_sync: Option<DateTime<Utc>>,
}

/// The stored form of the facts: the signing key is kept apart, encrypted.
#[derive(Debug, Serialize, Deserialize)]
struct Stored {
    role: DeviceRole,
    server: String,
    place: String,
    #[serde(default)]
    place_name: String,
    person: String,
    /// Hex of the town centre's key.
    #[serde(default)]
    server_key: Option<String>,
    enrolled_at: DateTime<Utc>,
    #[serde(default)]
    last_sync: Option<DateTime<Utc>>,
}

/// What older app builds stored under `app.device`.
#[derive(Debug, Deserialize)]
struct LegacyApp {
    role: String,
    server: String,
    place: String,
    person: String,
    enrolled_at: DateTime<Utc>,
    #[serde(default)]
    last_sync: Option<DateTime<Utc>>,
    #[serde(default)]
    server_key: Option<String>,
    #[serde(default)]
    place_name: String,
}

fn parse_server_key(hex_key: &str) -> Result<VerifyingKey, EnrolmentError> {
    let bytes: [u8; 32] = hex::decode(hex_key.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| EnrolmentError::Corrupt("server key is not 32 bytes of hex".into()))?;
    VerifyingKey::from_bytes(&bytes).map_err(|e| EnrolmentError::Corrupt(e.to_string()))
}

fn meta_text(outbox: &Outbox, key: &str) -> Result<Option<String>, StoreError> {
    Ok(outbox
        .get_meta(key)?
        .map(|b| String::from_utf8_lossy(&b).trim().to_string()))
}

/// Normalises a typed server address.
pub fn normalise_server(server: &str) -> String {
    server.trim().trim_end_matches('/').to_string()
}

/// The device's signing key, made and stored encrypted on first use, so an enrolment whose
/// answer was lost can be retried (and checked with `/me`) under the same key.
pub fn signing_key(outbox: &Outbox) -> Result<SigningKey, EnrolmentError> {
    if let Some(raw) = outbox.get_secret(SECRET_SIGNING_KEY)? {
        let bytes: [u8; 32] = raw
            .try_into()
            .map_err(|_| EnrolmentError::Corrupt("signing key is not 32 bytes".into()))?;
        return Ok(SigningKey::from_bytes(&bytes));
    }
    let key = SigningKey::generate(&mut rand::rngs::OsRng);
    outbox.put_secret(SECRET_SIGNING_KEY, &key.to_bytes())?;
    Ok(key)
}

impl Enrolment {
    /// The enrolment stored in `outbox`, migrating an older app or CLI format on the way;
    /// `None` when the device was never enrolled.
    pub fn load(outbox: &Outbox) -> Result<Option<Enrolment>, EnrolmentError> {
        let stored = match outbox.get_meta(META_ENROLMENT)? {
            Some(raw) => serde_json::from_slice::<Stored>(&raw)
                .map_err(|e| EnrolmentError::Corrupt(e.to_string()))?,
            None => match Self::legacy(outbox)? {
                Some(s) => {
                    let json = serde_json::to_vec(&s).expect("enrolment serialises");
                    outbox.put_meta(META_ENROLMENT, &json)?;
                    tracing::info!(
                        device = outbox.device_code(),
                        "enrolment migrated to the shared format"
                    );
                    s
                }
                None => return Ok(None),
            },
        };
        let Some(raw) = outbox.get_secret(SECRET_SIGNING_KEY)? else {
            return Err(EnrolmentError::Corrupt(
                "enrolled without a signing key".into(),
            ));
        };
        let key: [u8; 32] = raw
            .try_into()
            .map_err(|_| EnrolmentError::Corrupt("signing key is not 32 bytes".into()))?;
        Ok(Some(Enrolment {
            role: stored.role,
            server: stored.server,
            place: stored.place,
            place_name: stored.place_name,
            person: stored.person,
            device_code: outbox.device_code().to_string(),
            signing_key: SigningKey::from_bytes(&key),
            server_key: stored
                .server_key
                .as_deref()
                .map(parse_server_key)
                .transpose()?,
            enrolled_at: stored.enrolled_at,
            last_sync: stored.last_sync,
        }))
    }

    /// An older format, read as the shared one.
    fn legacy(outbox: &Outbox) -> Result<Option<Stored>, EnrolmentError> {
        if let Some(raw) = outbox.get_meta(LEGACY_APP)? {
            let old: LegacyApp =
                serde_json::from_slice(&raw).map_err(|e| EnrolmentError::Corrupt(e.to_string()))?;
            return Ok(Some(Stored {
                role: if old.role == "town" {
                    DeviceRole::Staff
                } else {
                    DeviceRole::Agent
                },
                server: old.server,
                place: old.place,
                place_name: old.place_name,
                person: old.person,
                server_key: old.server_key,
                enrolled_at: old.enrolled_at,
                last_sync: old.last_sync,
            }));
        }
        let (Some(server), Some(server_key)) = (
            meta_text(outbox, LEGACY_CLI_SERVER)?,
            meta_text(outbox, LEGACY_CLI_SERVER_KEY)?,
        ) else {
            return Ok(None);
        };
        let role = match meta_text(outbox, LEGACY_CLI_ROLE)?.as_deref() {
            Some("staff") => DeviceRole::Staff,
            _ => DeviceRole::Agent,
        };
        Ok(Some(Stored {
            role,
            server,
            place: meta_text(outbox, LEGACY_CLI_VILLAGE)?.unwrap_or_default(),
            place_name: meta_text(outbox, LEGACY_CLI_SCOPE)?.unwrap_or_default(),
            person: meta_text(outbox, LEGACY_CLI_PERSON)?.unwrap_or_default(),
            server_key: Some(server_key),
            // The CLI did not record when; the migration is the earliest time known.
            enrolled_at: Utc::now(),
            last_sync: None,
        }))
    }

    /// Writes the enrolment (durable when this returns).
    pub fn save(&self, outbox: &Outbox) -> Result<(), EnrolmentError> {
        if self.device_code != outbox.device_code() {
            return Err(EnrolmentError::Invalid("enrolment of another outbox"));
        }
        outbox.put_secret(SECRET_SIGNING_KEY, &self.signing_key.to_bytes())?;
        let stored = Stored {
            role: self.role,
            server: self.server.clone(),
            place: self.place.clone(),
            place_name: self.place_name.clone(),
            person: self.person.clone(),
            server_key: self.server_key.map(|k| hex::encode(k.to_bytes())),
            enrolled_at: self.enrolled_at,
            last_sync: self.last_sync,
        };
        let json = serde_json::to_vec(&stored).expect("enrolment serialises");
        outbox.put_meta(META_ENROLMENT, &json)?;
        Ok(())
    }

    /// An offline start for a village phone with no signal at all: the 12-digit village code
    /// stands in for the one-time code, and the town confirms the device later.
    pub fn offline(
        outbox: &Outbox,
        server: &str,
        village: &str,
        person: &str,
        now: DateTime<Utc>,
    ) -> Result<Enrolment, EnrolmentError> {
        let village = village.trim();
        if village.len() != 12 || !village.bytes().all(|b| b.is_ascii_digit()) {
            return Err(EnrolmentError::Invalid("a village code has 12 digits"));
        }
        Ok(Enrolment {
            role: DeviceRole::Agent,
            server: normalise_server(server),
            place: village.to_string(),
            place_name: String::new(),
            person: person.trim().to_string(),
            device_code: outbox.device_code().to_string(),
            signing_key: signing_key(outbox)?,
            server_key: None,
            enrolled_at: now,
            last_sync: None,
        })
    }

    /// Enrols online with the town centre's one-time code: the public key goes to the town, whose
    /// answer fixes the role, the place and the receipt key. An answer lost on the way is
    /// recovered by asking `/me` with the same key (the code is used up by then). The result is
    /// not saved; the caller saves it once it accepts it.
    pub async fn online(
        outbox: &Outbox,
        server: &str,
        code: &str,
        person: &str,
        now: DateTime<Utc>,
    ) -> Result<Enrolment, EnrolmentError> {
        let server = normalise_server(server);
        let key = signing_key(outbox)?;
        let req = EnrolRequest {
            code: code.trim().to_string(),
            device_id: outbox.device_code().to_string(),
            public_key: hex::encode(key.verifying_key().to_bytes()),
            person: person.trim().to_string(),
        };
        let open = Transport::new(&server, None)?;
        let signed = Transport::new(
            &server,
            Some(Credential {
                device_id: req.device_id.clone(),
                key: key.clone(),
            }),
        )?;
        let resp = match open.enrol(&req).await {
            Ok(r) => r,
            Err(
                e @ (TransportError::Retryable(_)
                | TransportError::Rejected {
                    status: 401 | 409, ..
                }),
            ) => signed.me().await.map_err(|_| e)?,
            Err(e) => return Err(e.into()),
        };
        Self::from_response(outbox, &server, person, key, resp, now)
    }

    fn from_response(
        outbox: &Outbox,
        server: &str,
        person: &str,
        signing_key: SigningKey,
        resp: EnrolResponse,
        now: DateTime<Utc>,
    ) -> Result<Enrolment, EnrolmentError> {
        Ok(Enrolment {
            role: resp.role,
            server: server.to_string(),
            place: resp.village.unwrap_or(resp.town),
            place_name: resp.scope_name,
            person: person.trim().to_string(),
            device_code: outbox.device_code().to_string(),
            signing_key,
            server_key: Some(parse_server_key(&resp.server_key)?),
            enrolled_at: now,
            last_sync: None,
        })
    }

    /// Whether the town centre registered this device, so it may sync.
    pub fn confirmed(&self) -> bool {
        self.server_key.is_some()
    }

    /// The credential that signs this device's requests.
    pub fn credential(&self) -> Credential {
        Credential {
            device_id: self.device_code.clone(),
            key: self.signing_key.clone(),
        }
    }

    /// A signed client for the town centre, as this device.
    pub fn transport(&self) -> Result<Transport, TransportError> {
        Transport::new(&self.server, Some(self.credential()))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbox::FileKeyStore;

    fn outbox(dir: &std::path::Path) -> Outbox {
        Outbox::open(dir, &FileKeyStore::new(dir.join("device.key"))).unwrap()
    }

    #[test]
    fn saved_enrolment_round_trips_with_typed_keys() {
        let dir = tempfile::tempdir().unwrap();
        let ob = outbox(dir.path());
        assert!(Enrolment::load(&ob).unwrap().is_none());
        let mut e =
            Enrolment::offline(&ob, " http://x/ ", "140423101201", " 李代办 ", Utc::now()).unwrap();
        assert_eq!(e.server, "http://x");
        assert_eq!(e.person, "李代办");
        assert!(!e.confirmed());
        e.server_key = Some(SigningKey::generate(&mut rand::rngs::OsRng).verifying_key());
        e.save(&ob).unwrap();
        drop(ob);
        let ob = outbox(dir.path());
        assert_eq!(Enrolment::load(&ob).unwrap().unwrap(), e);
        // A second attempt reuses the stored key.
        assert_eq!(signing_key(&ob).unwrap(), e.signing_key);
        assert!(Enrolment::offline(&ob, "http://x", "1404", "李", Utc::now()).is_err());
    }

    #[test]
    fn app_and_cli_directories_are_migrated_on_load() {
        let server_key = SigningKey::generate(&mut rand::rngs::OsRng).verifying_key();
        let server_hex = hex::encode(server_key.to_bytes());

        // The app's former format: one JSON under `app.device`, role village/town.
        let dir = tempfile::tempdir().unwrap();
        let ob = outbox(dir.path());
        let key = signing_key(&ob).unwrap();
        let app = serde_json::json!({
            "role": "town", "server": "http://t", "place": "140423100",
            "person": "王", "device_code": ob.device_code(),
            "enrolled_at": "2026-10-01T00:00:00Z", "server_key": server_hex,
            "place_name": "古韩镇"
        });
        ob.put_meta(LEGACY_APP, app.to_string().as_bytes()).unwrap();
        let e = Enrolment::load(&ob).unwrap().unwrap();
        assert_eq!(e.role, DeviceRole::Staff);
        assert_eq!(
            (e.place.as_str(), e.place_name.as_str()),
            ("140423100", "古韩镇")
        );
        assert_eq!(e.server_key, Some(server_key));
        assert_eq!(e.signing_key, key);
        assert!(ob.get_meta(META_ENROLMENT).unwrap().is_some());

        // The CLI's former format: one fact per key.
        let dir = tempfile::tempdir().unwrap();
        let ob = outbox(dir.path());
        let key = signing_key(&ob).unwrap();
        for (k, v) in [
            (LEGACY_CLI_SERVER, "http://t"),
            (LEGACY_CLI_SERVER_KEY, server_hex.as_str()),
            (LEGACY_CLI_ROLE, "agent"),
            (LEGACY_CLI_SCOPE, "古韩镇南关村"),
            (LEGACY_CLI_VILLAGE, "140423100201"),
            (LEGACY_CLI_PERSON, "李"),
        ] {
            ob.put_meta(k, v.as_bytes()).unwrap();
        }
        drop(ob);
        let ob = outbox(dir.path());
        let e = Enrolment::load(&ob).unwrap().unwrap();
        assert_eq!(e.role, DeviceRole::Agent);
        assert_eq!(e.place, "140423100201");
        assert_eq!(e.person, "李");
        assert_eq!(e.signing_key, key);
        assert!(e.confirmed());
        assert_eq!(e.agent().village, "140423100201");
    }
}
