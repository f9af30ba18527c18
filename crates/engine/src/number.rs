//! Case numbers (办件编号) minted on the phone, offline, without collisions.
//!
//! Shape: `{village}-{yyyymmdd}-{device}-{seq}`, e.g. `140423101201-20261128-K7Q2MX-0007`.
//! The village code is the 12-digit statistical division code, the device code is six
//! base32 characters fixed when the app's data directory is made (and checked unique by the
//! town at enrolment), and the sequence is a per-device daily counter kept in the outbox.
//! Two phones never share a device code and one phone never reuses a sequence, so numbers
//! never collide, with no network needed.

use std::fmt;
use std::str::FromStr;

use chrono::NaiveDate;
use thiserror::Error;

/// The RFC 4648 base32 alphabet: no 0/1/8/9, so a code read aloud or typed is not confused.
pub const DEVICE_ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
pub const DEVICE_CODE_LEN: usize = 6;

/// A case number that does not have the expected shape.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CaseNumberError {
    #[error("case number must have 4 parts separated by '-': {0:?}")]
    Parts(String),
    #[error("village code must be 12 digits: {0:?}")]
    Village(String),
    #[error("date part must be yyyymmdd: {0:?}")]
    Date(String),
    #[error("device code must be {DEVICE_CODE_LEN} base32 characters: {0:?}")]
    Device(String),
    #[error("sequence must be 1..=9999: {0:?}")]
    Sequence(String),
    #[error("case number is not in its canonical form: {0:?}")]
    NotCanonical(String),
}

/// A parsed case number.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CaseNumber {
    pub village: String,
    pub date: NaiveDate,
    pub device: String,
    pub seq: u32,
}

impl CaseNumber {
    /// Builds a number from its parts, checking each.
    pub fn new(
        village: &str,
        date: NaiveDate,
        device: &str,
        seq: u32,
    ) -> Result<CaseNumber, CaseNumberError> {
        check_village(village)?;
        check_device(device)?;
        if !(1..=9999).contains(&seq) {
            return Err(CaseNumberError::Sequence(seq.to_string()));
        }
        Ok(CaseNumber {
            village: village.to_string(),
            date,
            device: device.to_string(),
            seq,
        })
    }
}

impl fmt::Display for CaseNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}-{}-{}-{:04}",
            self.village,
            self.date.format("%Y%m%d"),
            self.device,
            self.seq
        )
    }
}

impl FromStr for CaseNumber {
    type Err = CaseNumberError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parts: Vec<&str> = s.split('-').collect();
        let [village, date, device, seq] = parts.as_slice() else {
            return Err(CaseNumberError::Parts(s.to_string()));
        };
        let date = (date.len() == 8)
            .then(|| NaiveDate::parse_from_str(date, "%Y%m%d").ok())
            .flatten()
            .ok_or_else(|| CaseNumberError::Date(date.to_string()))?;
        let seq_n: u32 = (seq.len() == 4)
            .then(|| seq.parse().ok())
            .flatten()
            .ok_or_else(|| CaseNumberError::Sequence(seq.to_string()))?;
        let n = CaseNumber::new(village, date, device, seq_n)?;
        // One case, one spelling: `+001` or a signed year would otherwise name the same case
        // differently and be taken as a new one.
        if n.to_string() != s {
            return Err(CaseNumberError::NotCanonical(s.to_string()));
        }
        Ok(n)
    }
}

/// Checks a 12-digit statistical division code (province..village).
pub fn check_village(code: &str) -> Result<(), CaseNumberError> {
    if code.len() == 12 && code.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(CaseNumberError::Village(code.to_string()))
    }
}

/// Checks a device code.
pub fn check_device(code: &str) -> Result<(), CaseNumberError> {
    if code.len() == DEVICE_CODE_LEN && code.bytes().all(|b| DEVICE_ALPHABET.contains(&b)) {
        Ok(())
    } else {
        Err(CaseNumberError::Device(code.to_string()))
    }
}

/// Makes a device code from random bytes (the caller supplies them, so this stays pure).
pub fn device_code_from(random: [u8; DEVICE_CODE_LEN]) -> String {
    random
        .iter()
        .map(|b| DEVICE_ALPHABET[(*b & 31) as usize] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let n = CaseNumber::new(
            "140423101201",
            NaiveDate::from_ymd_opt(2026, 11, 28).unwrap(),
            "K7Q2MX",
            7,
        )
        .unwrap();
        let s = n.to_string();
        assert_eq!(s, "140423101201-20261128-K7Q2MX-0007");
        assert_eq!(s.parse::<CaseNumber>().unwrap(), n);
    }

    #[test]
    fn rejects_bad_parts() {
        assert!(matches!(
            "1-2-3".parse::<CaseNumber>(),
            Err(CaseNumberError::Parts(_))
        ));
        assert!(matches!(
            "14042310120-20261128-K7Q2MX-0007".parse::<CaseNumber>(),
            Err(CaseNumberError::Village(_))
        ));
        assert!(matches!(
            "140423101201-20261131-K7Q2MX-0007".parse::<CaseNumber>(),
            Err(CaseNumberError::Date(_))
        ));
        assert!(matches!(
            "140423101201-20261128-K7Q2M0-0007".parse::<CaseNumber>(),
            Err(CaseNumberError::Device(_))
        ));
        assert!(matches!(
            "140423101201-20261128-K7Q2MX-0000".parse::<CaseNumber>(),
            Err(CaseNumberError::Sequence(_))
        ));
    }

    #[test]
    fn only_the_canonical_spelling_parses() {
        for s in [
            "140423101201-20261128-K7Q2MX-+007",
            "140423101201-+2026112-K7Q2MX-0007",
            "140423101201-2026112+-K7Q2MX-0007",
            "140423101201- 2026112-K7Q2MX-0007",
        ] {
            assert!(s.parse::<CaseNumber>().is_err(), "{s}");
        }
        assert!("140423101201-20261128-K7Q2MX-0007"
            .parse::<CaseNumber>()
            .is_ok());
    }

    #[test]
    fn device_codes_use_the_alphabet() {
        let code = device_code_from([0, 31, 32, 255, 7, 100]);
        assert_eq!(code.len(), DEVICE_CODE_LEN);
        check_device(&code).unwrap();
    }
}
