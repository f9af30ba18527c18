//! Receipt tokens: the resident's QR link, minted offline on the phone and verified by the town centre.
//!
//! The phone signs `case id + issue date` with the device's enrolled Ed25519 key, so the link can be
//! printed on the receipt (回执) before the case was ever synced. The town centre knows every enrolled
//! device's public key, finds it through the device code inside the case number, and checks the
//! signature: nobody without the phone's key can forge a link for a case, and a link for one case
//! does not open another. Tokens expire; a rating is bound to the case, so reusing a token to rate
//! twice is refused by the town's one-rating-per-case rule, not here.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chrono::{Days, NaiveDate};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use thiserror::Error;

use crate::number::CaseNumber;

/// How long a receipt link stays valid after it was issued.
pub const TOKEN_VALID_DAYS: u64 = 400;
/// Domain separation, so a receipt signature can never be replayed as a request signature.
const CONTEXT: &str = "bianmin-receipt/v1";

/// Why a receipt token is refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ReceiptError {
    #[error("receipt token is malformed")]
    Malformed,
    #[error("receipt token signature does not match the case")]
    BadSignature,
    #[error("receipt token expired on {0}")]
    Expired(NaiveDate),
    #[error("receipt token is issued in the future ({0})")]
    FromTheFuture(NaiveDate),
    #[error("case number is not valid: {0}")]
    CaseNumber(String),
}

/// A verified token's content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptClaim {
    pub case_id: String,
    /// The device code that signed (the case number's device part).
    pub device: String,
    pub issued: NaiveDate,
}

fn message(case_id: &str, issued: NaiveDate) -> Vec<u8> {
    format!("{CONTEXT}\n{case_id}\n{}", issued.format("%Y-%m-%d")).into_bytes()
}

fn epoch() -> NaiveDate {
    NaiveDate::from_ymd_opt(2020, 1, 1).expect("valid date")
}

/// Mints the token for `case_id`, issued on `issued`, with the device's signing key.
pub fn mint(key: &SigningKey, case_id: &str, issued: NaiveDate) -> String {
    let days = (issued - epoch()).num_days().clamp(0, u16::MAX as i64) as u16;
    let sig = key.sign(&message(case_id, issued));
    let mut raw = Vec::with_capacity(2 + 64);
    raw.extend_from_slice(&days.to_be_bytes());
    raw.extend_from_slice(&sig.to_bytes());
    URL_SAFE_NO_PAD.encode(raw)
}

/// The resident URL printed as the receipt's QR code: `{server}/r/{case_id}?t={token}`.
pub fn url(server: &str, case_id: &str, token: &str) -> String {
    format!("{}/r/{}?t={}", server.trim_end_matches('/'), case_id, token)
}

/// The device code of the phone that must have signed a token for `case_id`.
pub fn signer_device(case_id: &str) -> Result<String, ReceiptError> {
    case_id
        .parse::<CaseNumber>()
        .map(|n| n.device)
        .map_err(|e| ReceiptError::CaseNumber(e.to_string()))
}

/// Checks a token's signature for `case_id` against the signing device's public key, and nothing
/// about its dates: the issue date is the phone's clock, which may be wrong (the town judges
/// dates against when it received the case, see `bianmin-town`'s resident page).
pub fn verify_signature(
    public: &VerifyingKey,
    case_id: &str,
    token: &str,
) -> Result<ReceiptClaim, ReceiptError> {
    let device = signer_device(case_id)?;
    // Bounded before decoding: a token is 88 characters; a link may carry anything.
    if token.len() > 256 {
        return Err(ReceiptError::Malformed);
    }
    let raw = URL_SAFE_NO_PAD
        .decode(token.trim())
        .map_err(|_| ReceiptError::Malformed)?;
    if raw.len() != 66 {
        return Err(ReceiptError::Malformed);
    }
    let days = u16::from_be_bytes([raw[0], raw[1]]);
    let issued = epoch() + Days::new(days as u64);
    let sig = Signature::from_slice(&raw[2..]).map_err(|_| ReceiptError::Malformed)?;
    // Strict: a weak key or a non-canonical signature is refused, not "verified".
    public
        .verify_strict(&message(case_id, issued), &sig)
        .map_err(|_| ReceiptError::BadSignature)?;
    Ok(ReceiptClaim {
        case_id: case_id.to_string(),
        device,
        issued,
    })
}

/// The last day a receipt link issued (or, per the town, received) on `from` is valid.
pub fn expiry(from: NaiveDate) -> NaiveDate {
    from + Days::new(TOKEN_VALID_DAYS)
}

/// Checks a token for `case_id` against the signing device's public key, on `today`, trusting
/// its issue date (for the phone's own checks; the town uses `verify_signature`).
pub fn verify(
    public: &VerifyingKey,
    case_id: &str,
    token: &str,
    today: NaiveDate,
) -> Result<ReceiptClaim, ReceiptError> {
    let claim = verify_signature(public, case_id, token)?;
    // A phone's clock may run a day ahead; more than that is not a real receipt.
    if claim.issued > today + Days::new(1) {
        return Err(ReceiptError::FromTheFuture(claim.issued));
    }
    let expires = expiry(claim.issued);
    if today > expires {
        return Err(ReceiptError::Expired(expires));
    }
    Ok(claim)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CASE: &str = "140423101201-20261128-K7Q2MX-0007";

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn a_minted_token_verifies_for_its_case_only() {
        let k = key(7);
        let t = mint(&k, CASE, day(2026, 11, 28));
        let claim = verify(&k.verifying_key(), CASE, &t, day(2026, 12, 1)).unwrap();
        assert_eq!(claim.device, "K7Q2MX");
        assert_eq!(claim.issued, day(2026, 11, 28));
        let other = "140423101201-20261128-K7Q2MX-0008";
        assert_eq!(
            verify(&k.verifying_key(), other, &t, day(2026, 12, 1)),
            Err(ReceiptError::BadSignature)
        );
        assert_eq!(
            verify(&key(8).verifying_key(), CASE, &t, day(2026, 12, 1)),
            Err(ReceiptError::BadSignature)
        );
    }

    #[test]
    fn tampering_expiry_and_garbage_are_refused() {
        let k = key(7);
        let t = mint(&k, CASE, day(2026, 11, 28));
        // Moving the issue date forward to extend validity breaks the signature.
        let mut raw = URL_SAFE_NO_PAD.decode(&t).unwrap();
        raw[1] = raw[1].wrapping_add(1);
        let forged = URL_SAFE_NO_PAD.encode(raw);
        assert_eq!(
            verify(&k.verifying_key(), CASE, &forged, day(2026, 12, 1)),
            Err(ReceiptError::BadSignature)
        );
        assert!(matches!(
            verify(&k.verifying_key(), CASE, &t, day(2028, 6, 1)),
            Err(ReceiptError::Expired(_))
        ));
        assert!(matches!(
            verify(&k.verifying_key(), CASE, &t, day(2026, 11, 1)),
            Err(ReceiptError::FromTheFuture(_))
        ));
        assert_eq!(
            verify(&k.verifying_key(), CASE, "!!", day(2026, 12, 1)),
            Err(ReceiptError::Malformed)
        );
        assert_eq!(
            verify(&k.verifying_key(), CASE, "AAAA", day(2026, 12, 1)),
            Err(ReceiptError::Malformed)
        );
        assert!(matches!(
            verify(&k.verifying_key(), "nope", &t, day(2026, 12, 1)),
            Err(ReceiptError::CaseNumber(_))
        ));
    }

    #[test]
    fn url_shape() {
        assert_eq!(
            url("http://127.0.0.1:8714/", CASE, "abc"),
            format!("http://127.0.0.1:8714/r/{CASE}?t=abc")
        );
    }
}
