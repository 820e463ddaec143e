//! Phone numbers in E.164, the one form ringside compares them in: the contacts file, the
//! numbers RingCentral reports and the watch list (`watch.numbers`, checked when the settings
//! load). Pure; re-exported as `crate::conference::names::e164`, whose tests pin it.

/// The longest E.164 number: a country code and subscriber number of at most 15 digits.
const MAX_E164_DIGITS: usize = 15;
/// The shortest number taken as a full international one (country code included).
const MIN_E164_DIGITS: usize = 7;

/// `number` in E.164 (`+` and digits), or `None` when it cannot be read as one.
///
/// Spaces, dashes, dots and parentheses are ignored. A number starting with `+` is E.164
/// already. Other forms are read only with `default_country_code` (digits, e.g. `"1"` or `"44"`):
/// `00` then the international number; a national number with its trunk `0` dropped; for
/// country code 1, eleven digits starting with 1; else the national number after the code.
pub fn e164(number: &str, default_country_code: Option<&str>) -> Option<String> {
    let compact: String = number
        .trim()
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')' | '\u{a0}'))
        .collect();
    let international = |digits: &str| {
        let fits = (MIN_E164_DIGITS..=MAX_E164_DIGITS).contains(&digits.len())
            && digits.bytes().all(|b| b.is_ascii_digit())
            && !digits.starts_with('0');
        fits.then(|| format!("+{digits}"))
    };
    if let Some(digits) = compact.strip_prefix('+') {
        return international(digits);
    }
    let code = default_country_code?;
    if compact.is_empty() || !compact.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if let Some(digits) = compact.strip_prefix("00") {
        return international(digits);
    }
    if code == "1" && compact.len() == 11 && compact.starts_with('1') {
        return international(&compact);
    }
    let national = compact.strip_prefix('0').unwrap_or(&compact);
    international(&format!("{code}{national}"))
}
