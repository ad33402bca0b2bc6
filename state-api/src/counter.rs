//! The text form of counters.
//!
//! A counter is stored as the canonical decimal text of an `i64` — what
//! `i64::to_string` produces: an optional `-`, then digits without leading
//! zeros (`0`, `42`, `-7`; never `+1`, `007`, `-0` or ` 1`). Keeping exactly
//! one spelling per number means every backend (Lua, SQL, Rust) agrees on
//! what is a counter, and `get` reads a counter back as plain bytes.

/// Parses a stored value as a counter; `None` if it is not canonical decimal
/// `i64` text.
///
/// ```
/// use state_api::counter::parse;
/// assert_eq!(parse(b"-42"), Some(-42));
/// assert_eq!(parse(b"042"), None);
/// assert_eq!(parse(b"9223372036854775808"), None);
/// ```
pub fn parse(bytes: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(bytes).ok()?;
    let n: i64 = text.parse().ok()?;
    // `str::parse` accepts `+1` and `007`; only the canonical spelling counts.
    (format(n).as_bytes() == bytes).then_some(n)
}

/// The canonical text of a counter value.
pub fn format(n: i64) -> String {
    n.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_canonical_spelling_is_a_counter() {
        for ok in ["0", "1", "-1", "9223372036854775807", "-9223372036854775808"] {
            assert_eq!(parse(ok.as_bytes()).map(format).as_deref(), Some(ok));
        }
        for bad in ["", "-", "+1", "01", "-0", " 1", "1 ", "1.0", "1e3", "9223372036854775808", "x", "\u{661}"] {
            assert_eq!(parse(bad.as_bytes()), None, "{bad:?}");
        }
        assert_eq!(parse(&[0xff, b'1']), None);
    }
}
