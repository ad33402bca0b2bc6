//! How to build the backend under test from its `[state]` settings: what a
//! test factory hands the kit so the kit can check the configuration
//! surface (unknown fields, the value limit, values out of range).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use state_api::Backend;

/// Why a configuration was refused, as the backend's loader reports it.
pub type Refusal = Box<dyn std::error::Error + Send + Sync>;

type Build = Arc<dyn Fn(String) -> Pin<Box<dyn Future<Output = Result<Backend, Refusal>> + Send>> + Send + Sync>;

/// Builds the backend under test from the fields of its `[state]` table,
/// given as TOML text (`key = value` lines, without the `backend` field
/// and the table header): the `base` fields that reach the test's server,
/// plus the fields the kit adds.
///
/// The kit checks that a field the backend does not know is refused with
/// an error naming it; and, where the value limit is configurable, that
/// `max_value_len` reaches the store (declared and enforced), that the
/// contract's 1 KiB floor is accepted and anything under it refused naming
/// the field. A backend whose limit is fixed declares so with
/// [`with_fixed_value_limit`](Self::with_fixed_value_limit), and the kit
/// then checks that `max_value_len` is refused. A suite may list more of
/// its backend's invalid settings with [`refusing`](Self::refusing), and
/// valid ones that must work (a bound itself, a `0` that means "off") with
/// [`accepting`](Self::accepting).
///
/// ```
/// let configured = conformance::Configured::new("", |fields: String| async move {
///     // toml::from_str::<MyConfig>(&fields)?; my_store::backend(config).await
///     let _ = fields;
///     Ok::<_, state_api::StateError>(state_api::Backend::memory())
/// });
/// assert_eq!(configured.base(), "");
/// ```
#[derive(Clone)]
pub struct Configured {
    base: String,
    build: Build,
    value_limit_configurable: bool,
    refusals: Vec<(String, String)>,
    acceptances: Vec<String>,
}

impl Configured {
    /// A loader that parses `base` plus the kit's fields and connects.
    /// `base` must not set `max_value_len`: the kit sets it.
    pub fn new<F, Fut, E>(base: impl Into<String>, build: F) -> Configured
    where
        F: Fn(String) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Backend, E>> + Send + 'static,
        E: Into<Refusal>,
    {
        let build = Arc::new(build);
        Configured {
            base: base.into(),
            build: Arc::new(move |fields| {
                let build = Arc::clone(&build);
                Box::pin(async move { build(fields).await.map_err(Into::into) })
            }),
            value_limit_configurable: true,
            refusals: Vec::new(),
            acceptances: Vec::new(),
        }
    }

    /// A setting of the backend's own that must be refused with an error
    /// naming `field` (a zero timeout, an empty prefix): the kit checks
    /// each one given, as it checks `max_value_len`.
    pub fn refusing(mut self, line: impl Into<String>, field: impl Into<String>) -> Configured {
        self.refusals.push((line.into(), field.into()));
        self
    }

    /// A setting of the backend's own that must be accepted (the largest
    /// pool or timeout allowed, a `0` documented as "off"): the kit builds
    /// the store with it and checks that the store writes and reads back,
    /// as it checks the base settings.
    pub fn accepting(mut self, line: impl Into<String>) -> Configured {
        self.acceptances.push(line.into());
        self
    }

    /// The settings that must be accepted.
    pub fn acceptances(&self) -> &[String] {
        &self.acceptances
    }

    /// The settings that must be refused, each with the field its error
    /// must name.
    pub fn refusals(&self) -> &[(String, String)] {
        &self.refusals
    }

    /// The backend's value limit is fixed: its settings have no
    /// `max_value_len`, and the kit checks that the field is refused.
    pub fn with_fixed_value_limit(mut self) -> Configured {
        self.value_limit_configurable = false;
        self
    }

    /// The fields every build starts from.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Whether `max_value_len` is one of the backend's settings.
    pub fn value_limit_configurable(&self) -> bool {
        self.value_limit_configurable
    }

    /// Builds the backend from the base fields followed by `extra` (TOML
    /// lines).
    pub async fn build(&self, extra: &str) -> Result<Backend, Refusal> {
        let mut fields = self.base.trim_end().to_owned();
        if !fields.is_empty() {
            fields.push('\n');
        }
        fields.push_str(extra);
        (self.build)(fields).await
    }
}

impl fmt::Debug for Configured {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The base fields may carry a password: left out.
        f.debug_struct("Configured")
            .field("value_limit_configurable", &self.value_limit_configurable)
            .finish_non_exhaustive()
    }
}
