//! The bounds of a scan page on the `(space, id)` primary key.
//!
//! The ids starting with a prefix are exactly one contiguous range in byte
//! order: `[prefix, successor(prefix))`. Scanning that range (instead of
//! filtering with `LIKE`, where `%`, `_` and `\` are special) keeps every
//! character literal and lets the index read only the page.

/// The smallest string greater than every string that starts with
/// `prefix`, or `None` if there is none (the empty prefix, or one made only
/// of `char::MAX`).
///
/// UTF-8 byte order is code point order, so it is enough to drop trailing
/// `char::MAX`s and replace the last remaining character by the next code
/// point (skipping the surrogates, which are not characters).
pub(crate) fn prefix_successor(prefix: &str) -> Option<String> {
    let trimmed = prefix.trim_end_matches(char::MAX);
    let last = trimmed.chars().next_back()?;
    let next = match last {
        '\u{D7FF}' => '\u{E000}',
        c => char::from_u32(u32::from(c) + 1)?,
    };
    let mut successor = trimmed[..trimmed.len() - last.len_utf8()].to_owned();
    successor.push(next);
    Some(successor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn successor_bounds_exactly_the_prefixed_strings() {
        assert_eq!(prefix_successor(""), None);
        assert_eq!(prefix_successor("a").as_deref(), Some("b"));
        assert_eq!(prefix_successor("a%").as_deref(), Some("a&"));
        assert_eq!(prefix_successor("a\u{D7FF}").as_deref(), Some("a\u{E000}"));
        assert_eq!(prefix_successor("ab\u{10FFFF}\u{10FFFF}").as_deref(), Some("ac"));
        assert_eq!(prefix_successor("\u{10FFFF}"), None);
        let prefix = "é";
        let upper = prefix_successor(prefix).unwrap();
        for id in ["é", "éa", "é\u{10FFFF}", "é\u{10FFFF}\u{10FFFF}z"] {
            assert!(prefix <= id && id < upper.as_str(), "{id:?}");
        }
        for id in ["e", "f", "ê", "ë"] {
            assert!(!(prefix <= id && id < upper.as_str()), "{id:?}");
        }
    }
}
