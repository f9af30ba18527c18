//! The GB 11643 citizen ID number's own checks, used by the reader to decide between readings:
//! the ISO 7064 MOD 11-2 check character and a plausible birth date. (The engine has its own
//! validator; the scan crate does not depend on the engine.)

const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const CHECK: &[u8; 11] = b"10X98765432";
/// Province-level codes (GB/T 2260) a number's first two digits can take.
pub const PROVINCES: [u32; 35] = [
    11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37, 41, 42, 43, 44, 45, 46, 50, 51, 52,
    53, 54, 61, 62, 63, 64, 65, 71, 81, 82, 83,
];

/// The check character for the first 17 characters (ASCII digits), or None if they are not.
pub fn check_char(first17: &[u8]) -> Option<char> {
    if first17.len() != 17 || !first17.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let sum: u32 = first17
        .iter()
        .zip(WEIGHTS)
        .map(|(d, w)| (d - b'0') as u32 * w)
        .sum();
    Some(CHECK[(sum % 11) as usize] as char)
}

/// Days in `month` of `year` (Gregorian).
pub fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400) => {
            29
        }
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Whether `s` is a well-formed 18-character number: digits, a correct check character, a
/// province code that exists, and a birth date from 1900 to 2099.
pub fn is_plausible(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() != 18 || check_char(&b[..17]) != Some(b[17] as char) {
        return false;
    }
    let num = |r: std::ops::Range<usize>| s[r].parse::<u32>().unwrap_or(0);
    let (y, m, d) = (num(6..10), num(10..12), num(12..14));
    PROVINCES.contains(&num(0..2))
        && (1900..=2099).contains(&y)
        && (1..=12).contains(&m)
        && d >= 1
        && d <= days_in_month(y, m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_character_of_the_standard_example() {
        // GB 11643-1999's worked example.
        assert_eq!(check_char(b"11010519491231002"), Some('X'));
        assert!(is_plausible("11010519491231002X"));
        assert!(!is_plausible("11010519491231002"));
        assert!(!is_plausible("110105194912310021"));
        // A correct check character but 31 February.
        let body = b"11010519490231002";
        let s = format!(
            "{}{}",
            std::str::from_utf8(body).unwrap(),
            check_char(body).unwrap()
        );
        assert!(!is_plausible(&s));
    }
}
