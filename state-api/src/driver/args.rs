//! The argument checks every operation makes before any I/O, and the
//! validated forms a driver receives.

use std::time::Duration;

use crate::entry::ttl_millis;
use crate::error::{Result, StateError};
use crate::key::{validate_id, validate_prefix, validate_space};
use crate::scan::{Cursor, ScanItem, ScanPage, validate_limit};

/// A validated TTL: whole milliseconds (rounded up, never down), at least
/// one, at most [`crate::MAX_TTL`]. Drivers receive TTLs only in this form,
/// so no driver can round to seconds, accept zero, or overflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ttl(u64);

impl Ttl {
    /// Validates `ttl`.
    ///
    /// # Errors
    /// [`StateError::InvalidArgument`] named `ttl` for zero or more than
    /// [`crate::MAX_TTL`].
    pub fn new(ttl: Duration) -> Result<Ttl> {
        ttl_millis(ttl).map(Ttl)
    }

    /// Validates an optional TTL (`None`: no expiry).
    ///
    /// # Errors
    /// As [`Ttl::new`].
    pub fn optional(ttl: Option<Duration>) -> Result<Option<Ttl>> {
        ttl.map(Ttl::new).transpose()
    }

    /// The TTL in whole milliseconds, `1..=MAX_TTL` in milliseconds (which
    /// fits `i64` with room to spare).
    pub fn millis(self) -> u64 {
        self.0
    }

    /// The TTL in milliseconds as an `i64`, for services whose integers are
    /// signed.
    pub fn millis_i64(self) -> i64 {
        i64::try_from(self.0).unwrap_or(i64::MAX)
    }

    /// The TTL as a duration (whole milliseconds).
    pub fn duration(self) -> Duration {
        Duration::from_millis(self.0)
    }
}

/// A validated scan request: the space and prefix are valid key parts, the
/// limit is within `1..=MAX_SCAN_LIMIT`, and the cursor was decoded into
/// the id after which the page starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScanRequest<'a> {
    /// The space scanned.
    pub space: &'a str,
    /// The id prefix, literal: no character is a wildcard.
    pub prefix: &'a str,
    /// The page starts strictly after this id (`None`: from the first id
    /// with the prefix). It always starts with `prefix`.
    pub after: Option<&'a str>,
    /// The most items the page may hold.
    pub limit: usize,
}

impl<'a> ScanRequest<'a> {
    /// Validates the arguments of [`crate::StateStore::scan`].
    ///
    /// A cursor is the last id a previous page of the same scan covered
    /// (see [`Listing`]); one that is not an id starting with `prefix` was
    /// not made by this scan.
    ///
    /// # Errors
    /// [`StateError::InvalidKey`] for a bad space or prefix;
    /// [`StateError::InvalidArgument`] named `limit` or `cursor`.
    pub fn new(space: &'a str, prefix: &'a str, cursor: Option<&'a Cursor>, limit: usize) -> Result<ScanRequest<'a>> {
        validate_space(space)?;
        validate_prefix(prefix)?;
        validate_limit(limit)?;
        let after = match cursor {
            None => None,
            Some(cursor) => {
                let id = cursor.as_str();
                if validate_id(id).is_err() || !id.starts_with(prefix) {
                    return Err(StateError::invalid_argument("cursor", "it does not belong to this space and prefix"));
                }
                Some(id)
            }
        };
        Ok(ScanRequest { space, prefix, after, limit })
    }
}

/// What a driver found for one scan page: the live items, in ascending
/// byte order of id, and where the next page resumes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listing {
    /// At most `limit` live items.
    pub items: Vec<ScanItem>,
    /// The last id this page covered when more may follow (it may be past
    /// the last item, when the driver skipped expired entries); `None` when
    /// the scan is complete.
    pub resume_after: Option<String>,
}

impl Listing {
    /// A listing whose next page, if `more`, starts after its last item.
    pub fn from_items(items: Vec<ScanItem>, more: bool) -> Listing {
        let resume_after = if more { items.last().map(|item| item.id.clone()) } else { None };
        Listing { items, resume_after }
    }

    /// The page applications see: the resume position becomes the cursor.
    pub fn into_page(self) -> ScanPage {
        ScanPage { items: self.items, next: self.resume_after.map(Cursor::new) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttls_are_whole_milliseconds_rounded_up() {
        assert_eq!(Ttl::new(Duration::from_micros(1500)).ok().map(Ttl::millis), Some(2));
        assert!(Ttl::new(Duration::ZERO).is_err());
        assert!(Ttl::new(Duration::MAX).is_err());
        assert!(matches!(Ttl::optional(None), Ok(None)));
    }

    #[test]
    fn a_cursor_must_belong_to_the_scan() {
        let foreign = Cursor::new("other:1");
        let bad = ScanRequest::new("space", "mine:", Some(&foreign), 10);
        assert!(matches!(bad, Err(StateError::InvalidArgument { name: "cursor", .. })), "{bad:?}");
        let own = Cursor::new("mine:7");
        let request = ScanRequest::new("space", "mine:", Some(&own), 10).ok().map(|r| r.after);
        assert_eq!(request, Some(Some("mine:7")));
        assert!(ScanRequest::new("space", "", None, 0).is_err());
        assert!(ScanRequest::new("space", "", None, usize::MAX).is_err());
    }
}
