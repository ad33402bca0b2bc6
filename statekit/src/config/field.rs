//! The fields of `[state]` as serde sees them.
//!
//! A field's value comes from the config file (a TOML value, already typed)
//! or from an environment variable (text). Environment text is parsed as
//! whatever the backend's config type asks for — `STATEKIT_POOL_SIZE=7`
//! becomes a number where the field is a number, and stays text where the
//! field is text — so one `Deserialize` impl per backend serves both
//! sources. Every value remembers where it came from, so an error names the
//! file line or the variable.

use std::fmt;
use std::str::FromStr;

use serde::de::value::{MapDeserializer, SeqDeserializer, StringDeserializer};
use serde::de::{self, DeserializeOwned, Deserializer, IntoDeserializer, Visitor};
use serde::forward_to_deserialize_any;

/// Where a value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Origin {
    /// A line (1-based) of the config file.
    File {
        /// The line.
        line: usize,
    },
    /// An environment variable.
    Env {
        /// The variable.
        variable: String,
    },
}

/// One field of `[state]`: its name, its value and where the value came from.
#[derive(Debug, Clone)]
pub(crate) struct Field {
    pub(crate) name: String,
    pub(crate) origin: Origin,
    value: Raw,
}

#[derive(Debug, Clone)]
enum Raw {
    Toml(toml::Value),
    Text(String),
}

impl Field {
    /// A value read from line `line` of the file.
    pub(crate) fn from_file(name: String, line: usize, value: toml::Value) -> Field {
        Field { name, origin: Origin::File { line }, value: Raw::Toml(value) }
    }

    /// `STATEKIT_<NAME>` for the field `name`, if `env` has it.
    pub(crate) fn from_env(name: &str, env: &dyn Fn(&str) -> Option<String>) -> Option<Field> {
        let variable = format!("STATEKIT_{}", name.to_ascii_uppercase());
        let text = env(&variable)?;
        Some(Field { name: name.to_owned(), origin: Origin::Env { variable }, value: Raw::Text(text) })
    }

    /// The environment variable that sets the field `name`.
    pub(crate) fn variable(name: &str) -> String {
        format!("STATEKIT_{}", name.to_ascii_uppercase())
    }

    /// This one value, deserialized as `T`.
    pub(crate) fn parse<T: DeserializeOwned>(self) -> Result<T, FieldError> {
        T::deserialize(self.into_value())
    }

    fn into_value(self) -> Value {
        Value { name: self.name, origin: self.origin, raw: self.value }
    }
}

/// Why fields could not be deserialized.
#[derive(Debug)]
pub(crate) enum FieldError {
    /// A value has the wrong type or form.
    Value {
        /// The field.
        name: String,
        /// Where the value came from.
        origin: Origin,
        /// What is wrong, from serde or the parser.
        message: String,
    },
    /// A required field has no value.
    Missing(&'static str),
    /// The type has no field of this name. (The loader checks names before
    /// deserializing, so this only surfaces if a type disagrees with the
    /// field list it announced.)
    Unknown(String),
    /// The fields deserialized, but the type refused them as a whole (a
    /// backend config's validation).
    Invalid(String),
}

impl FieldError {
    /// Attaches a field and origin to an error raised while visiting its value.
    fn at(self, name: String, origin: Origin) -> FieldError {
        match self {
            FieldError::Invalid(message) => FieldError::Value { name, origin, message },
            located => located,
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FieldError::Value { name, message, .. } => write!(f, "`{name}`: {message}"),
            FieldError::Missing(name) => write!(f, "missing field `{name}`"),
            FieldError::Unknown(name) => write!(f, "unknown field `{name}`"),
            FieldError::Invalid(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for FieldError {}

impl de::Error for FieldError {
    fn custom<T: fmt::Display>(message: T) -> FieldError {
        FieldError::Invalid(message.to_string())
    }

    fn missing_field(field: &'static str) -> FieldError {
        FieldError::Missing(field)
    }

    fn unknown_field(field: &str, _expected: &'static [&'static str]) -> FieldError {
        FieldError::Unknown(field.to_owned())
    }
}

/// The fields of one `[state]` table as a map, which a backend's config
/// type deserializes itself from.
pub(crate) struct Fields(pub(crate) Vec<Field>);

impl<'de> Deserializer<'de> for Fields {
    type Error = FieldError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, FieldError> {
        let mut map = MapDeserializer::new(self.0.into_iter().map(|field| (field.name.clone(), field.into_value())));
        let value = visitor.visit_map(&mut map)?;
        map.end()?;
        Ok(value)
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option unit
        unit_struct newtype_struct seq tuple tuple_struct map struct enum identifier ignored_any
    }
}

/// One value, with its field name and origin for errors.
struct Value {
    name: String,
    origin: Origin,
    raw: Raw,
}

impl Value {
    /// A TOML value deserializes as itself (TOML is typed); environment
    /// text is parsed as `T` first, which is what makes `"7"` a number for
    /// a numeric field.
    fn typed<'de, T, V>(
        self,
        visitor: V,
        visit: fn(V, T) -> Result<V::Value, FieldError>,
    ) -> Result<V::Value, FieldError>
    where
        T: FromStr,
        T::Err: fmt::Display,
        V: Visitor<'de>,
    {
        let Value { name, origin, raw } = self;
        match raw {
            Raw::Toml(value) => {
                value.deserialize_any(visitor).map_err(|e| FieldError::Invalid(e.to_string().trim_end().to_owned()))
            }
            Raw::Text(text) => match text.trim().parse::<T>() {
                Ok(parsed) => visit(visitor, parsed),
                Err(error) => {
                    Err(FieldError::Invalid(format!("{text:?} is not a valid {}: {error}", std::any::type_name::<T>())))
                }
            },
        }
        .map_err(|e| e.at(name, origin))
    }
}

impl<'de> IntoDeserializer<'de, FieldError> for Value {
    type Deserializer = Value;

    fn into_deserializer(self) -> Value {
        self
    }
}

macro_rules! typed {
    ($($method:ident => $visit:ident: $ty:ty),* $(,)?) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, FieldError> {
            self.typed::<$ty, V>(visitor, V::$visit::<FieldError>)
        }
    )*};
}

impl<'de> Deserializer<'de> for Value {
    type Error = FieldError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, FieldError> {
        let Value { name, origin, raw } = self;
        match raw {
            Raw::Toml(value) => {
                value.deserialize_any(visitor).map_err(|e| FieldError::Invalid(e.to_string().trim_end().to_owned()))
            }
            Raw::Text(text) => visitor.visit_string(text),
        }
        .map_err(|e| e.at(name, origin))
    }

    /// A value that is present is `Some`: absence is the field missing.
    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, FieldError> {
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, FieldError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        enum_name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, FieldError> {
        let Value { name, origin, raw } = self;
        match raw {
            Raw::Toml(value) => value
                .deserialize_enum(enum_name, variants, visitor)
                .map_err(|e| FieldError::Invalid(e.to_string().trim_end().to_owned())),
            Raw::Text(text) => visitor.visit_enum(StringDeserializer::<FieldError>::new(text)),
        }
        .map_err(|e| e.at(name, origin))
    }

    typed! {
        deserialize_bool => visit_bool: bool,
        deserialize_i8 => visit_i8: i8,
        deserialize_i16 => visit_i16: i16,
        deserialize_i32 => visit_i32: i32,
        deserialize_i64 => visit_i64: i64,
        deserialize_u8 => visit_u8: u8,
        deserialize_u16 => visit_u16: u16,
        deserialize_u32 => visit_u32: u32,
        deserialize_u64 => visit_u64: u64,
        deserialize_f32 => visit_f32: f32,
        deserialize_f64 => visit_f64: f64,
    }

    /// A list: TOML's own array, or from the environment, comma-separated
    /// items (`STATEKIT_URLS=redis://a:7000,redis://b:7000`).
    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, FieldError> {
        let Value { name, origin, raw } = self;
        match raw {
            Raw::Toml(value) => {
                value.deserialize_seq(visitor).map_err(|e| FieldError::Invalid(e.to_string().trim_end().to_owned()))
            }
            Raw::Text(text) => {
                let items: Vec<String> =
                    text.split(',').map(str::trim).filter(|item| !item.is_empty()).map(str::to_owned).collect();
                visitor.visit_seq(SeqDeserializer::<_, FieldError>::new(items.into_iter()))
            }
        }
        .map_err(|e| e.at(name, origin))
    }

    forward_to_deserialize_any! {
        i128 u128 char str string bytes byte_buf unit unit_struct tuple tuple_struct map struct
        identifier ignored_any
    }
}

/// The field names a config type deserializes, read from its `Deserialize`
/// impl itself, so the list can never drift from the type: a derived impl
/// announces its fields when it asks for a struct. Config types must be
/// plain structs (no `flatten`, which asks for a map instead).
pub(crate) fn field_names<T: DeserializeOwned>() -> &'static [&'static str] {
    struct Probe<'a>(&'a mut &'static [&'static str]);

    impl<'de> Deserializer<'de> for Probe<'_> {
        type Error = FieldError;

        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _name: &'static str,
            fields: &'static [&'static str],
            _visitor: V,
        ) -> Result<V::Value, FieldError> {
            *self.0 = fields;
            Err(FieldError::Invalid("probed".to_owned()))
        }

        fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, FieldError> {
            Err(FieldError::Invalid("not a struct".to_owned()))
        }

        forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option unit
            unit_struct newtype_struct seq tuple tuple_struct map enum identifier ignored_any
        }
    }

    let mut fields: &'static [&'static str] = &[];
    // The probe fails every deserialization by design; the names it
    // captured on the way are the result.
    let _probed: Result<T, FieldError> = T::deserialize(Probe(&mut fields));
    fields
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, PartialEq, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Sample {
        size: u32,
        name: Option<String>,
        on: Option<bool>,
    }

    fn env(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |variable| pairs.iter().find(|(name, _)| *name == variable).map(|(_, value)| (*value).to_owned())
    }

    #[test]
    fn environment_text_takes_the_type_of_the_field() {
        let env = env(&[("STATEKIT_SIZE", "7"), ("STATEKIT_NAME", "123"), ("STATEKIT_ON", "true")]);
        let fields = ["size", "name", "on"].iter().filter_map(|name| Field::from_env(name, &env)).collect();
        let sample = Sample::deserialize(Fields(fields)).unwrap();
        assert_eq!(sample, Sample { size: 7, name: Some("123".to_owned()), on: Some(true) });
    }

    #[test]
    fn a_bad_environment_value_names_its_variable() {
        let env = env(&[("STATEKIT_SIZE", "many")]);
        let fields = vec![Field::from_env("size", &env).unwrap()];
        match Sample::deserialize(Fields(fields)) {
            Err(FieldError::Value { name, origin: Origin::Env { variable }, message }) => {
                assert_eq!((name.as_str(), variable.as_str()), ("size", "STATEKIT_SIZE"));
                assert!(message.contains("\"many\""), "{message}");
            }
            other => panic!("expected a value error, got {other:?}"),
        }
    }

    #[test]
    fn a_bad_file_value_names_its_line() {
        let fields = vec![Field::from_file("size".to_owned(), 4, toml::Value::String("many".to_owned()))];
        match Sample::deserialize(Fields(fields)) {
            Err(FieldError::Value { name, origin: Origin::File { line: 4 }, message }) => {
                assert_eq!(name, "size");
                assert!(message.contains("invalid type"), "{message}");
            }
            other => panic!("expected a value error, got {other:?}"),
        }
    }

    #[test]
    fn a_missing_field_is_reported_as_missing() {
        assert!(matches!(Sample::deserialize(Fields(Vec::new())), Err(FieldError::Missing("size"))));
    }

    #[test]
    fn field_names_come_from_the_deserialize_impl() {
        assert_eq!(field_names::<Sample>(), ["size", "name", "on"]);
    }
}
