//! Scan pages and cursors.

use std::fmt;

use crate::entry::Entry;

/// The largest page a scan may ask for.
pub const MAX_SCAN_LIMIT: usize = 1000;

/// One live entry found by a scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanItem {
    /// The entry's id inside the scanned space.
    pub id: String,
    /// The entry.
    pub entry: Entry,
}

/// One page of a scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanPage {
    /// At most `limit` live entries, in ascending byte order of their ids.
    pub items: Vec<ScanItem>,
    /// Where the next page starts; `None` when the scan is complete. A page
    /// may hold fewer than `limit` items (even none) and still have a next
    /// page: only `next == None` ends a scan.
    pub next: Option<Cursor>,
}

/// An opaque position in a scan, valid only for the same space and prefix
/// on the same backend. Its text may be stored and passed back later.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Cursor(String);

impl Cursor {
    /// Wraps a backend's cursor text. Backend authors use this; applications
    /// only pass cursors back.
    pub fn new(text: impl Into<String>) -> Cursor {
        Cursor(text.into())
    }

    /// The cursor's text, for storing it or for the backend to decode.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Cursor({:?})", self.0)
    }
}

/// Checks a scan limit.
///
/// # Errors
/// [`crate::StateError::InvalidArgument`] unless `1 <= limit <= MAX_SCAN_LIMIT`.
pub fn validate_limit(limit: usize) -> Result<(), crate::StateError> {
    if (1..=MAX_SCAN_LIMIT).contains(&limit) {
        Ok(())
    } else {
        Err(crate::StateError::invalid_argument(
            "limit",
            format!("must be between 1 and {MAX_SCAN_LIMIT}, got {limit}"),
        ))
    }
}
