//! How hard the kit pushes: one knob for every property.

use std::fmt;
use std::str::FromStr;

/// The size of a run. `Default` keeps the whole kit on the in-memory
/// backend well under a minute; `Large` is for long runs against a real
/// server. Set it with `STATEKIT_SCALE=small|default|large` (or a number,
/// which multiplies the default sizes) or the CLI's `--scale`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scale {
    factor: f64,
}

impl Scale {
    /// Quick smoke runs.
    pub const SMALL: Scale = Scale { factor: 0.25 };
    /// The default: every property, briefly.
    pub const DEFAULT: Scale = Scale { factor: 1.0 };
    /// Long runs: ten times the default.
    pub const LARGE: Scale = Scale { factor: 10.0 };

    /// The scale from `STATEKIT_SCALE`, or the default when unset.
    ///
    /// # Errors
    /// A message naming the variable when its value is not a scale.
    pub fn from_env() -> Result<Scale, String> {
        match std::env::var("STATEKIT_SCALE") {
            Ok(text) => text.parse().map_err(|e| format!("STATEKIT_SCALE: {e}")),
            Err(_) => Ok(Scale::DEFAULT),
        }
    }

    /// `base` scaled, at least 1.
    pub fn of(&self, base: u64) -> u64 {
        ((base as f64 * self.factor).round() as u64).max(1)
    }

    /// `base` scaled as a usize, at least 1.
    pub fn count(&self, base: usize) -> usize {
        usize::try_from(self.of(base as u64)).unwrap_or(usize::MAX)
    }

    /// The multiplier.
    pub fn factor(&self) -> f64 {
        self.factor
    }
}

impl Default for Scale {
    fn default() -> Self {
        Scale::DEFAULT
    }
}

impl FromStr for Scale {
    type Err = String;

    fn from_str(text: &str) -> Result<Scale, String> {
        match text.trim() {
            "small" => Ok(Scale::SMALL),
            "default" | "" => Ok(Scale::DEFAULT),
            "large" => Ok(Scale::LARGE),
            other => match other.parse::<f64>() {
                Ok(f) if f > 0.0 && f.is_finite() => Ok(Scale { factor: f }),
                _ => Err(format!("expected small, default, large or a positive number, got {other:?}")),
            },
        }
    }
}

impl fmt::Display for Scale {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.factor {
            x if x == Scale::SMALL.factor => f.write_str("small"),
            x if x == Scale::DEFAULT.factor => f.write_str("default"),
            x if x == Scale::LARGE.factor => f.write_str("large"),
            x => write!(f, "{x}"),
        }
    }
}
