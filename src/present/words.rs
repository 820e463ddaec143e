//! The words every surface shares: how a phone number is shown, how long something lasted, how
//! many are on the call, what an unknown caller is called, and Discord's limits on text.

use crate::config::PhoneNumbers;

/// Shown in place of the hidden digits of a phone number.
const MASK: &str = "•••";
/// How many trailing digits a masked number keeps.
const MASK_KEEP_DIGITS: usize = 4;

/// Discord's limit on a message's `content`, in characters.
pub const MAX_CONTENT_CHARS: usize = 2000;
/// The longest kick reason shown, in characters.
pub const MAX_REASON_CHARS: usize = 200;

/// A caller nobody has named yet, mid-sentence ([`sentence_start`] capitalises it).
pub const UNKNOWN_CALLER: &str = "an unknown caller";
/// A host nobody has named yet.
pub const UNKNOWN_HOST: &str = "an unknown host";

/// A phone number as `privacy.phone_numbers` allows it to be shown.
pub fn phone_number(number: &str, style: PhoneNumbers) -> Option<String> {
    match style {
        PhoneNumbers::Hidden => None,
        PhoneNumbers::Full => Some(number.to_owned()),
        PhoneNumbers::Masked => {
            let digits: Vec<char> = number.chars().filter(char::is_ascii_digit).collect();
            let keep = digits.len().min(MASK_KEEP_DIGITS);
            let tail: String = digits[digits.len() - keep..].iter().collect();
            Some(format!("{MASK}{tail}"))
        }
    }
}

/// `45s`, `1m 21s`, `4m`, `1h 2m`.
pub fn duration(secs: i64) -> String {
    let secs = secs.max(0);
    let (hours, minutes, seconds) = (secs / 3600, secs % 3600 / 60, secs % 60);
    match (hours, minutes, seconds) {
        (0, 0, s) => format!("{s}s"),
        (0, m, 0) => format!("{m}m"),
        (0, m, s) => format!("{m}m {s}s"),
        (h, 0, _) => format!("{h}h"),
        (h, m, _) => format!("{h}h {m}m"),
    }
}

/// ` after 4m 12s`, or nothing when how long is unknown.
pub fn after(secs: Option<i64>) -> String {
    secs.map(|secs| format!(" after {}", duration(secs)))
        .unwrap_or_default()
}

/// `3 on the call`.
pub fn on_call(count: u32) -> String {
    format!("{count} on the call")
}

/// `1 caller`, `5 callers`.
pub fn callers(count: u32) -> String {
    match count {
        1 => "1 caller".to_owned(),
        n => format!("{n} callers"),
    }
}

/// A phrase at the start of a sentence: [`UNKNOWN_CALLER`] capitalised; names and numbers are
/// left exactly as they are.
pub fn sentence_start(phrase: String) -> String {
    if phrase == UNKNOWN_CALLER {
        "An unknown caller".to_owned()
    } else {
        phrase
    }
}

/// `text` cut to `max` characters, ending with `…` when cut.
pub fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_durations_and_counts() {
        assert_eq!(
            phone_number("+1 (650) 555-1119", PhoneNumbers::Masked).as_deref(),
            Some("•••1119")
        );
        assert_eq!(
            phone_number("12", PhoneNumbers::Masked).as_deref(),
            Some("•••12")
        );
        assert_eq!(phone_number("+16505551119", PhoneNumbers::Hidden), None);
        assert_eq!(duration(45), "45s");
        assert_eq!(duration(81), "1m 21s");
        assert_eq!(duration(240), "4m");
        assert_eq!(duration(3720), "1h 2m");
        assert_eq!(duration(-5), "0s");
        assert_eq!(callers(1), "1 caller");
        assert_eq!(
            sentence_start(UNKNOWN_CALLER.to_owned()),
            "An unknown caller"
        );
        assert_eq!(sentence_start("paco".to_owned()), "paco");
        assert_eq!(cut("abcdef", 4), "abc…");
    }
}
