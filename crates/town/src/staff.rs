//! People, not devices: town staff accounts with a personal PIN for the shared, enrolled tablets.
//!
//! The town administrator creates an account per person (`bianmin-town staff add`); the tablet
//! lists the town's people (`GET /v1/staff`), checks a PIN when someone takes it over
//! (`POST /v1/staff/unlock`) and sends that person's name and PIN inside every signed action, where
//! the server checks the PIN again before a timeline line or an audit entry names them. Wrong PINs
//! cost tokens of a per-person bucket in the store, so guessing is slow on every server alike.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use bianmin_protocol::sync::{DeviceRole, StaffMember, StaffUnlock};
use chrono::Utc;
use thiserror::Error;

use crate::audit::AuditDraft;
use crate::auth::AuthDevice;
use crate::bucket::RateConfig;
use crate::error::{blocking, ApiError};
use crate::store::{AdminStore, BucketKind, DeviceRecord, StaffAccount, StoreError, TownStore};
use crate::AppState;

/// Wrong PINs per person: 5 at once, then one a minute. A six-digit PIN then takes a guesser
/// about two years on average, while a colleague's typos never lock anyone out for long.
pub const PIN_RATE: RateConfig = RateConfig {
    burst: 5.0,
    per_second: 1.0 / 60.0,
};

/// Digits in a PIN.
pub const PIN_DIGITS: usize = 6;

/// Longest staff name.
pub const MAX_STAFF_NAME_CHARS: usize = 20;

/// Why a staff account could not be created or changed.
#[derive(Debug, Error)]
pub enum StaffError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("a staff name must be 1 to 20 characters")]
    BadName,
    #[error("a town is its 9-digit division code")]
    BadTown,
    #[error("a PIN is 6 digits, not all the same and not a run like 123456")]
    BadPin,
    #[error("no staff account {name} in town {town}")]
    Unknown { town: String, name: String },
    #[error("stored PIN hash is corrupt: {0}")]
    Corrupt(String),
    #[error("PIN hashing failed: {0}")]
    Hash(String),
}

/// Whether `pin` is acceptable: six digits, not one repeated, not a run up or down.
pub fn pin_ok(pin: &str) -> bool {
    let d: Vec<i16> = pin.bytes().map(|b| b as i16 - b'0' as i16).collect();
    if d.len() != PIN_DIGITS || d.iter().any(|x| !(0..=9).contains(x)) {
        return false;
    }
    let steps: Vec<i16> = d.windows(2).map(|w| w[1] - w[0]).collect();
    !(steps.iter().all(|s| *s == 0)
        || steps.iter().all(|s| *s == 1)
        || steps.iter().all(|s| *s == -1))
}

/// Creates a staff account, or gives an existing one a new PIN (and makes it active again).
pub fn add_staff(
    admin: &dyn AdminStore,
    town: &str,
    name: &str,
    pin: &str,
) -> Result<StaffAccount, StaffError> {
    let name = name.trim();
    if name.is_empty()
        || name.chars().count() > MAX_STAFF_NAME_CHARS
        || name.chars().any(|c| c.is_control() || c == '/')
    {
        return Err(StaffError::BadName);
    }
    if town.len() != 9 || !town.bytes().all(|b| b.is_ascii_digit()) {
        return Err(StaffError::BadTown);
    }
    if !pin_ok(pin) {
        return Err(StaffError::BadPin);
    }
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    let pin_hash = Argon2::default()
        .hash_password(pin.as_bytes(), &salt)
        .map_err(|e| StaffError::Hash(e.to_string()))?
        .to_string();
    let account = StaffAccount {
        town: town.to_string(),
        name: name.to_string(),
        pin_hash,
        created_at: Utc::now(),
        active: true,
    };
    admin.put_staff(&account)?;
    Ok(account)
}

/// Marks an account inactive (the person left): their PIN unlocks nothing from now on.
pub fn disable_staff(admin: &dyn AdminStore, town: &str, name: &str) -> Result<(), StaffError> {
    let mut account =
        admin
            .staff_account(town, name.trim())?
            .ok_or_else(|| StaffError::Unknown {
                town: town.to_string(),
                name: name.trim().to_string(),
            })?;
    account.active = false;
    admin.put_staff(&account)?;
    Ok(())
}

/// A hash of no one's PIN: an unknown or inactive name costs the same Argon2 work as a real one.
static DUMMY_HASH: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    Argon2::default()
        .hash_password(
            b"no staff member has this PIN",
            &SaltString::generate(&mut rand::rngs::OsRng),
        )
        .expect("argon2 hashes with its default parameters")
        .to_string()
});

/// Whether `pin` is the PIN of an active account `name` of `town`. Blocking (Argon2).
pub fn check_pin(
    admin: &dyn AdminStore,
    town: &str,
    name: &str,
    pin: &str,
) -> Result<bool, StaffError> {
    let account = admin.staff_account(town, name)?.filter(|a| a.active);
    let hash = account
        .as_ref()
        .map_or(DUMMY_HASH.as_str(), |a| &a.pin_hash);
    let parsed = PasswordHash::new(hash).map_err(|e| StaffError::Corrupt(e.to_string()))?;
    let ok = Argon2::default()
        .verify_password(pin.as_bytes(), &parsed)
        .is_ok();
    Ok(ok && account.is_some())
}

/// Whether `town` has at least one active account: from then on its tablets act only for a
/// person who gave their PIN.
pub fn town_uses_pins(admin: &dyn AdminStore, town: &str) -> Result<bool, StoreError> {
    Ok(admin
        .staff_accounts()?
        .iter()
        .any(|a| a.town == town && a.active))
}

/// What the timeline and the audit log record as the actor: `name (device)`.
pub fn actor_label(person: &str, device: &str) -> String {
    if person.trim().is_empty() {
        device.to_string()
    } else {
        format!("{} ({device})", person.trim())
    }
}

/// Checks `name`'s PIN for a staff device of their town, spending a token of that person's
/// bucket on a wrong one. Blocking.
fn verify(
    store: &dyn TownStore,
    admin: &dyn AdminStore,
    d: &DeviceRecord,
    name: &str,
    pin: &str,
) -> Result<Result<(), ApiError>, StoreError> {
    let name = name.trim();
    let client = format!("{}/{name}", d.town);
    let now = Utc::now().timestamp_millis() as f64 / 1000.0;
    if let Err(wait) = store.take_token(BucketKind::Pin, &client, PIN_RATE, now)? {
        return Ok(Err(ApiError::rate_limited(
            "too many wrong PINs for this person; wait",
            wait,
        )));
    }
    let ok = match check_pin(admin, &d.town, name, pin) {
        Ok(ok) => ok,
        Err(StaffError::Store(e)) => return Err(e),
        Err(e) => return Ok(Err(ApiError::internal(e))),
    };
    if ok {
        // Only failures cost.
        store.give_back_token(BucketKind::Pin, &client, PIN_RATE)?;
        Ok(Ok(()))
    } else {
        Ok(Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "wrong_pin",
            "the name and PIN do not match an active staff account of this town",
        )))
    }
}

/// Who is acting, as timelines and the audit log name them. A village phone is its enrolled
/// agent (from the device record, not the request). A town tablet is the person whose PIN came
/// with the request; a town without any staff account yet keeps the tablet's enrolled person,
/// and never takes a name on the request's word.
pub async fn acting_person(
    state: &AppState,
    d: &DeviceRecord,
    staff: &str,
    pin: Option<&str>,
) -> Result<String, ApiError> {
    if d.role == DeviceRole::Agent {
        return Ok(actor_label(&d.person, &d.id));
    }
    let (st, dev) = (state.clone(), d.clone());
    let (name, pin) = (staff.trim().to_string(), pin.map(str::to_string));
    let checked = blocking(move || match pin {
        Some(pin) => Ok(
            verify(st.store.as_ref(), st.admin.as_ref(), &dev, &name, &pin)?
                .map(|()| Some(actor_label(&name, &dev.id))),
        ),
        None if town_uses_pins(st.admin.as_ref(), &dev.town)? => Ok(Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "pin_required",
            "this town's staff act with their own name and PIN",
        ))),
        None => Ok(Ok(None)),
    })
    .await??;
    Ok(checked.unwrap_or_else(|| actor_label(&d.person, &d.id)))
}

/// The tablet routes of this module, merged into the authenticated API.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/staff", get(members))
        .route("/v1/staff/unlock", post(unlock))
}

fn staff_only(d: &DeviceRecord) -> Result<(), ApiError> {
    if d.role == DeviceRole::Staff {
        Ok(())
    } else {
        Err(ApiError::forbidden("only a town staff device may do this"))
    }
}

/// GET /v1/staff: the active people of the tablet's town, for its 谁在办理 screen.
async fn members(
    State(state): State<AppState>,
    Extension(AuthDevice(d)): Extension<AuthDevice>,
) -> Result<Json<Vec<StaffMember>>, ApiError> {
    staff_only(&d)?;
    let st = state.clone();
    let all = blocking(move || st.admin.staff_accounts()).await?;
    let mut people: Vec<StaffMember> = all
        .into_iter()
        .filter(|a| a.town == d.town && a.active)
        .map(|a| StaffMember {
            name: a.name,
            town: a.town,
        })
        .collect();
    // One order whatever the backend's collation.
    people.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Json(people))
}

/// POST /v1/staff/unlock: checks a person's PIN when they take the tablet over; audited, so the
/// log shows who held which tablet when.
async fn unlock(
    State(state): State<AppState>,
    Extension(AuthDevice(d)): Extension<AuthDevice>,
    body: Bytes,
) -> Result<Json<StaffMember>, ApiError> {
    staff_only(&d)?;
    let req: StaffUnlock = serde_json::from_slice(&body).map_err(ApiError::malformed_json)?;
    let (st, dev, name) = (state.clone(), d.clone(), req.name.trim().to_string());
    blocking(move || {
        if let Err(e) = verify(st.store.as_ref(), st.admin.as_ref(), &dev, &name, &req.pin)? {
            return Ok(Err(e));
        }
        let audit = AuditDraft::new(&actor_label(&name, &dev.id), "staff_unlock", None, "");
        st.store.commit(None, &[], vec![audit])?;
        Ok(Ok(()))
    })
    .await??;
    Ok(Json(StaffMember {
        name: req.name.trim().to_string(),
        town: d.town,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trivial_pins_are_refused() {
        for bad in [
            "", "12345", "1234567", "111111", "123456", "987654", "12a456",
        ] {
            assert!(!pin_ok(bad), "{bad}");
        }
        for good in ["204816", "135790", "000001", "901234"] {
            assert!(pin_ok(good), "{good}");
        }
    }

    #[test]
    fn a_pin_unlocks_only_its_active_account() {
        let dir = tempfile::tempdir().unwrap();
        let admin = crate::store::FileAdmin::new(dir.path());
        add_staff(&admin, "140423100", "王芳", "204816").unwrap();
        assert!(check_pin(&admin, "140423100", "王芳", "204816").unwrap());
        assert!(!check_pin(&admin, "140423100", "王芳", "204817").unwrap());
        assert!(!check_pin(&admin, "140423101", "王芳", "204816").unwrap());
        assert!(!check_pin(&admin, "140423100", "李强", "204816").unwrap());
        assert!(town_uses_pins(&admin, "140423100").unwrap());
        disable_staff(&admin, "140423100", "王芳").unwrap();
        assert!(!check_pin(&admin, "140423100", "王芳", "204816").unwrap());
        assert!(!town_uses_pins(&admin, "140423100").unwrap());
        assert!(matches!(
            add_staff(&admin, "140423100", "王芳", "123456"),
            Err(StaffError::BadPin)
        ));
    }
}
