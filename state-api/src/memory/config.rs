//! [`MemoryConfig`]: the in-memory backend's settings, as a config file
//! states them.

use serde::Deserialize;

use super::{MemoryStore, MemoryStoreBuilder};
use crate::StateError;

/// The settings of a [`MemoryStore`] that a config file can state.
///
/// ```
/// use state_api::memory::MemoryConfig;
///
/// let config = MemoryConfig::new().with_max_value_len(64 * 1024);
/// let store = config.builder().build();
/// # let _ = store;
/// assert!(MemoryConfig::new().with_max_value_len(10).validate().is_err());
/// ```
///
/// # In a config file
///
/// `MemoryConfig` deserializes (serde) from these fields, the ones
/// `statekit` reads from `[state]` when `backend = "memory"`; any other
/// field is an error naming it, and the result is
/// [validated](Self::validate) before it is returned.
///
/// | field | meaning | default |
/// |---|---|---|
/// | `max_value_len` | [largest value](Self::with_max_value_len), bytes | 16 MiB |
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "MemoryFields")]
pub struct MemoryConfig {
    max_value_len: usize,
}

impl MemoryConfig {
    /// The smallest `max_value_len` accepted: 1 KiB, the floor every
    /// backend offers, so that a configuration cannot make ordinary values
    /// unstorable.
    pub const MIN_MAX_VALUE_LEN: usize = 1024;

    /// The defaults: values up to [`MemoryStore::DEFAULT_MAX_VALUE_LEN`].
    pub fn new() -> MemoryConfig {
        MemoryConfig { max_value_len: MemoryStore::DEFAULT_MAX_VALUE_LEN }
    }

    /// Sets the largest value `put` accepts, in bytes (at least
    /// [`MIN_MAX_VALUE_LEN`](Self::MIN_MAX_VALUE_LEN); checked by
    /// [`validate`](Self::validate)).
    pub fn with_max_value_len(mut self, bytes: usize) -> MemoryConfig {
        self.max_value_len = bytes;
        self
    }

    /// The largest value accepted.
    pub fn max_value_len(&self) -> usize {
        self.max_value_len
    }

    /// Checks every field.
    ///
    /// # Errors
    /// [`StateError::InvalidArgument`] naming `max_value_len` when it is
    /// under [`MIN_MAX_VALUE_LEN`](Self::MIN_MAX_VALUE_LEN).
    pub fn validate(&self) -> Result<(), StateError> {
        if self.max_value_len < Self::MIN_MAX_VALUE_LEN {
            return Err(StateError::invalid_argument(
                "max_value_len",
                format!("must be at least {} bytes, got {}", Self::MIN_MAX_VALUE_LEN, self.max_value_len),
            ));
        }
        Ok(())
    }

    /// A [`MemoryStoreBuilder`] with these settings (and the builder's
    /// defaults for the rest), ready to [`build`](MemoryStoreBuilder::build).
    pub fn builder(&self) -> MemoryStoreBuilder {
        MemoryStore::builder().max_value_len(self.max_value_len())
    }
}

impl Default for MemoryConfig {
    fn default() -> Self {
        MemoryConfig::new()
    }
}

/// The serialized form of a [`MemoryConfig`]: the field names of a config
/// file, all optional.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MemoryFields {
    #[serde(default = "default_max_value_len")]
    max_value_len: usize,
}

fn default_max_value_len() -> usize {
    MemoryStore::DEFAULT_MAX_VALUE_LEN
}

impl TryFrom<MemoryFields> for MemoryConfig {
    type Error = StateError;

    /// Applies the fields over the defaults and validates the result.
    fn try_from(fields: MemoryFields) -> Result<MemoryConfig, StateError> {
        let config = MemoryConfig::new().with_max_value_len(fields.max_value_len);
        config.validate()?;
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use serde::de::value::{Error, MapDeserializer};

    use super::*;

    fn from_fields(fields: &[(&'static str, u64)]) -> Result<MemoryConfig, Error> {
        MemoryConfig::deserialize(MapDeserializer::new(fields.iter().copied()))
    }

    #[test]
    fn no_fields_mean_the_defaults() {
        assert_eq!(from_fields(&[]).unwrap(), MemoryConfig::new());
        assert_eq!(MemoryConfig::new().max_value_len(), MemoryStore::DEFAULT_MAX_VALUE_LEN);
    }

    #[test]
    fn max_value_len_reaches_the_store() {
        let config = from_fields(&[("max_value_len", 4096)]).unwrap();
        assert_eq!(config.max_value_len(), 4096);
        let store = config.builder().sweep_interval(None).build();
        assert_eq!(store.capabilities_value().max_value_len, 4096);
    }

    #[test]
    fn a_value_limit_under_the_floor_is_refused_naming_the_field() {
        let error = from_fields(&[("max_value_len", 10)]).unwrap_err().to_string();
        assert!(error.contains("`max_value_len`"), "{error}");
    }

    #[test]
    fn fields_of_other_backends_are_refused() {
        let error = from_fields(&[("pool_size", 4)]).unwrap_err().to_string();
        assert!(error.contains("unknown field `pool_size`"), "{error}");
    }
}
