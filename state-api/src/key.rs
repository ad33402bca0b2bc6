//! Keys: a `(space, id)` pair of validated UTF-8 strings.

use std::fmt;
use std::hash::{Hash, Hasher};

use crate::error::{KeyError, KeyPart, StateError};

/// Longest `space`, in UTF-8 bytes, that every backend accepts.
pub const MAX_SPACE_LEN: usize = 128;

/// Longest `id` (and lock name, and scan prefix), in UTF-8 bytes, that every
/// backend accepts.
pub const MAX_ID_LEN: usize = 512;

/// The address of one entry: a `space` and an `id` inside it.
///
/// Both parts are non-empty UTF-8 strings without NUL, at most
/// [`MAX_SPACE_LEN`] and [`MAX_ID_LEN`] bytes long. Every other character,
/// including `:`, `*`, `%`, `_`, `[`, `\`, `{`, spaces and newlines, means
/// itself: backends encode keys injectively, so two different keys never
/// collide and no character acts as a wildcard.
///
/// The space is the unit of scanning and of locality (one DynamoDB
/// partition, one Redis cluster slot).
///
/// ```
/// use state_api::Key;
/// let key = Key::new("sessions", "user:42").unwrap();
/// assert_eq!((key.space(), key.id()), ("sessions", "user:42"));
/// assert!(Key::new("", "x").is_err());
/// assert!(Key::new("s", "a\0b").is_err());
/// ```
#[derive(Clone)]
pub struct Key {
    /// `space`, NUL, `id`. NUL cannot occur in either part, so this string
    /// is injective and sorts exactly like the pair `(space, id)`: the
    /// in-memory backend uses it as its map key without allocating.
    joined: Box<str>,
    split: usize,
    hash: u64,
}

impl Key {
    /// Validates and builds a key.
    ///
    /// # Errors
    /// [`StateError::InvalidKey`] if a part is empty, too long or contains NUL.
    pub fn new(space: &str, id: &str) -> Result<Key, StateError> {
        validate_space(space)?;
        validate_id(id)?;
        let mut joined = String::with_capacity(space.len() + 1 + id.len());
        joined.push_str(space);
        joined.push('\0');
        joined.push_str(id);
        Ok(Key { hash: fnv1a(joined.as_bytes()), joined: joined.into_boxed_str(), split: space.len() })
    }

    /// The space this key lives in.
    pub fn space(&self) -> &str {
        &self.joined[..self.split]
    }

    /// The id of this key inside its space.
    pub fn id(&self) -> &str {
        &self.joined[self.split + 1..]
    }

    /// `space`, NUL, `id`: an injective encoding that sorts like `(space, id)`.
    pub fn joined(&self) -> &str {
        &self.joined
    }

    /// A well-mixed hash of the key, computed once at construction.
    pub fn fingerprint(&self) -> u64 {
        self.hash
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Self) -> bool {
        self.joined == other.joined
    }
}
impl Eq for Key {}
impl Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.joined.hash(state);
    }
}
impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Key {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.joined.cmp(&other.joined)
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key({:?}, {:?})", self.space(), self.id())
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}/{:?}", self.space(), self.id())
    }
}

/// Checks a space name.
///
/// # Errors
/// [`StateError::InvalidKey`] if it is empty, longer than [`MAX_SPACE_LEN`]
/// bytes or contains NUL.
pub fn validate_space(space: &str) -> Result<(), StateError> {
    validate_part(KeyPart::Space, space, MAX_SPACE_LEN, false)
}

/// Checks an id.
///
/// # Errors
/// [`StateError::InvalidKey`] if it is empty, longer than [`MAX_ID_LEN`]
/// bytes or contains NUL.
pub fn validate_id(id: &str) -> Result<(), StateError> {
    validate_part(KeyPart::Id, id, MAX_ID_LEN, false)
}

/// Checks a scan prefix: like an id, except that it may be empty.
///
/// # Errors
/// [`StateError::InvalidKey`] if it is longer than [`MAX_ID_LEN`] bytes or
/// contains NUL.
pub fn validate_prefix(prefix: &str) -> Result<(), StateError> {
    validate_part(KeyPart::Prefix, prefix, MAX_ID_LEN, true)
}

/// Checks a lock name: same rules as an id.
///
/// # Errors
/// [`StateError::InvalidKey`] if it is empty, longer than [`MAX_ID_LEN`]
/// bytes or contains NUL.
pub fn validate_lock_name(name: &str) -> Result<(), StateError> {
    validate_part(KeyPart::LockName, name, MAX_ID_LEN, false)
}

fn validate_part(part: KeyPart, text: &str, max: usize, may_be_empty: bool) -> Result<(), StateError> {
    let problem = if text.is_empty() && !may_be_empty {
        Some(KeyError::Empty { part })
    } else if text.len() > max {
        Some(KeyError::TooLong { part, len: text.len(), max })
    } else if text.as_bytes().contains(&0) {
        Some(KeyError::Nul { part })
    } else {
        None
    };
    problem.map_or(Ok(()), |e| Err(StateError::InvalidKey(e)))
}

/// FNV-1a followed by a final avalanche, so the low bits that pick a shard
/// depend on every byte.
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^ (h >> 33)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_inclusive_and_counted_in_bytes() {
        assert!(Key::new(&"s".repeat(MAX_SPACE_LEN), &"i".repeat(MAX_ID_LEN)).is_ok());
        let too_long = Key::new(&"s".repeat(MAX_SPACE_LEN + 1), "i");
        assert!(matches!(
            too_long,
            Err(StateError::InvalidKey(KeyError::TooLong { part: KeyPart::Space, len: 129, max: 128 }))
        ));
        // 'é' is two bytes: 257 of them is 514 bytes, over the id limit.
        assert!(Key::new("s", &"é".repeat(257)).is_err());
    }

    #[test]
    fn nul_and_empty_are_refused_in_either_part() {
        for (space, id) in [("", "a"), ("a", ""), ("a\0", "b"), ("a", "\0")] {
            assert!(matches!(Key::new(space, id), Err(StateError::InvalidKey(_))), "{space:?} {id:?}");
        }
    }

    #[test]
    fn metacharacters_are_ordinary_and_keys_are_injective() {
        let a = Key::new("a:b", "c").unwrap();
        let b = Key::new("a", "b:c").unwrap();
        assert_ne!(a, b);
        let odd = Key::new("{s}*", "%_[\\]\n ?").unwrap();
        assert_eq!(odd.space(), "{s}*");
        assert_eq!(odd.id(), "%_[\\]\n ?");
    }

    #[test]
    fn keys_sort_like_the_pair() {
        let mut keys = [Key::new("ab", "a").unwrap(), Key::new("a", "z").unwrap(), Key::new("a", "b").unwrap()];
        keys.sort();
        let pairs: Vec<_> = keys.iter().map(|k| (k.space(), k.id())).collect();
        assert_eq!(pairs, vec![("a", "b"), ("a", "z"), ("ab", "a")]);
    }
}
