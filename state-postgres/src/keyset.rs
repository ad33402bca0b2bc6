//! The bounds of a scan page on the `(space, id)` primary key.
//!
//! The ids starting with a prefix are exactly one contiguous range in byte
//! order: `[prefix, successor(prefix))`. Scanning that range (instead of
//! filtering with `LIKE`, where `%`, `_` and `\` are special) keeps every
//! character literal and lets the index read only the page.

use state_api::key::validate_id;
use state_api::{Cursor, Result, StateError};

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

/// The id after which the next page starts: the cursor's text, which is
/// the last id of the previous page. A cursor that is not an id starting
/// with the prefix was not made by this scan.
///
/// # Errors
/// [`StateError::InvalidArgument`] named `cursor`.
pub(crate) fn resume_after<'c>(cursor: Option<&'c Cursor>, prefix: &str) -> Result<&'c str> {
    match cursor {
        // Every id is non-empty, so all of them sort after "".
        None => Ok(""),
        Some(cursor) => {
            let id = cursor.as_str();
            if validate_id(id).is_err() || !id.starts_with(prefix) {
                return Err(StateError::invalid_argument("cursor", "it does not belong to this space and prefix"));
            }
            Ok(id)
        }
    }
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

    #[test]
    fn cursors_must_belong_to_the_scan() {
        let prefix = "n0";
        assert_eq!(resume_after(None, prefix).unwrap(), "");
        assert_eq!(resume_after(Some(&Cursor::new("n01")), prefix).unwrap(), "n01");
        for bad in ["a", "", "n", "n0\0"] {
            assert!(matches!(
                resume_after(Some(&Cursor::new(bad)), prefix),
                Err(StateError::InvalidArgument { name: "cursor", .. })
            ));
        }
    }
}
