//! The typed, validated configuration of a [`RedisStore`](crate::RedisStore).

use std::fmt;
use std::time::Duration;

use serde::Deserialize;
use state_api::{StateError, redact_url};

/// How to reach Redis and where to keep state there.
///
/// ```
/// use std::time::Duration;
/// use state_redis::RedisConfig;
///
/// let config = RedisConfig::new("redis://:hunter2@127.0.0.1:6379/0")
///     .with_key_prefix("myapp")
///     .with_command_timeout(Duration::from_millis(500));
/// assert!(config.validate().is_ok());
/// // The password never reaches Debug output (nor errors, nor logs).
/// assert!(!format!("{config:?}").contains("hunter2"));
/// ```
///
/// # In a config file
///
/// `RedisConfig` deserializes (serde) from these fields, the ones
/// `statekit` reads from `[state]` when `backend = "redis"`; any other
/// field is an error naming it, and the result is
/// [validated](Self::validate) before it is returned.
///
/// | field | meaning | default |
/// |---|---|---|
/// | `mode` | `standalone`, `cluster` or `sentinel` | `standalone` |
/// | `url` | the Redis URL (standalone: required; otherwise refused) | — |
/// | `urls` | cluster: the seed nodes' URLs; sentinel: the sentinels' URLs (required there; standalone: refused) | — |
/// | `sentinel_master` | the name the sentinels know the master by (sentinel: required; otherwise refused) | — |
/// | `min_replicas_acked` | [replicas that must confirm each write](Self::with_min_replicas_acked) | 0 |
/// | `prefix` | [key prefix](Self::with_key_prefix) | `statekit` |
/// | `connect_timeout_ms` | [connect timeout](Self::with_connect_timeout) | 5000 |
/// | `command_timeout_ms` | [command timeout](Self::with_command_timeout) | 5000 |
/// | `max_value_len` | [largest value](Self::with_max_value_len), bytes | 16 MiB |
/// | `sweep_interval_ms` | [sweeper interval](Self::with_sweep_interval); 0 turns the sweeper off | 30000 |
/// | `unscanned_spaces` | [spaces never scanned](Self::with_unscanned_spaces): names, or prefixes ending in `*` | none |
#[derive(Clone)]
pub struct RedisConfig {
    url: String,
    /// Cluster mode's seed nodes or sentinel mode's sentinels; empty in
    /// standalone mode.
    urls: Vec<String>,
    /// Sentinel mode's master name; `None` in the other modes.
    sentinel_master: Option<String>,
    min_replicas_acked: u32,
    key_prefix: String,
    connect_timeout: Duration,
    command_timeout: Duration,
    max_value_len: usize,
    sweep_interval: Option<Duration>,
    /// Space names, and prefixes ending in `*`, whose writes skip the scan
    /// index.
    unscanned_spaces: Vec<String>,
}

impl RedisConfig {
    /// The default interval of the background sweeper: 30 s.
    pub const DEFAULT_SWEEP_INTERVAL: Duration = Duration::from_secs(30);
    /// The longest sweeper interval accepted: a day.
    pub const MAX_SWEEP_INTERVAL: Duration = Duration::from_secs(24 * 60 * 60);
    /// The default key prefix.
    pub const DEFAULT_KEY_PREFIX: &'static str = "statekit";
    /// The default connect timeout: 5 s.
    pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
    /// The default command timeout: 5 s.
    pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(5);
    /// The default largest value: 16 MiB. Redis accepts up to 512 MB per
    /// string, but every value crosses the network and the Lua stack whole;
    /// 16 MiB keeps one request from stalling the single-threaded server.
    pub const DEFAULT_MAX_VALUE_LEN: usize = 16 * 1024 * 1024;
    /// The largest `max_value_len` accepted: Redis's default
    /// `proto-max-bulk-len`, 512 MiB.
    pub const MAX_VALUE_LEN_LIMIT: usize = 512 * 1024 * 1024;
    /// The longest key prefix accepted, in bytes.
    pub const MAX_KEY_PREFIX_LEN: usize = 64;
    /// The largest `min_replicas_acked` accepted.
    pub const MAX_REPLICAS_ACKED: u32 = 100;

    /// A configuration for `url` with the defaults. `url` is a Redis URL:
    /// `redis://[[user]:password@]host[:port][/db]`, `rediss://...` for
    /// TLS, or `unix:///path/to/socket`. Nothing is checked until
    /// [`validate`](Self::validate) or `connect`.
    pub fn new(url: impl Into<String>) -> RedisConfig {
        RedisConfig {
            url: url.into(),
            urls: Vec::new(),
            sentinel_master: None,
            min_replicas_acked: 0,
            key_prefix: Self::DEFAULT_KEY_PREFIX.to_owned(),
            connect_timeout: Self::DEFAULT_CONNECT_TIMEOUT,
            command_timeout: Self::DEFAULT_COMMAND_TIMEOUT,
            max_value_len: Self::DEFAULT_MAX_VALUE_LEN,
            sweep_interval: Some(Self::DEFAULT_SWEEP_INTERVAL),
            unscanned_spaces: Vec::new(),
        }
    }

    /// A configuration for a Redis Cluster reached through `seeds` (any
    /// of its nodes' URLs; the client learns the rest from them), with the
    /// defaults otherwise.
    ///
    /// Every key of one space carries the space as its hash tag, and every
    /// key of one lock its name, so each operation is one script on one
    /// slot, as on one server. What a cluster does not offer here, the
    /// store declares: fenced writes (a fence names a lock, whose keys sit
    /// in another slot than the entry's). The sweeper walks every master.
    pub fn cluster<S: Into<String>>(seeds: impl IntoIterator<Item = S>) -> RedisConfig {
        let seeds: Vec<String> = seeds.into_iter().map(Into::into).collect();
        let mut config = RedisConfig::new(seeds.first().cloned().unwrap_or_default());
        config.urls = seeds;
        config
    }

    /// A configuration for the master that `sentinels` (their URLs) know
    /// as `master_name`, with the defaults otherwise.
    ///
    /// The store asks the sentinels, in order, for the master's address
    /// and checks that the node there says it is a master; when the master
    /// stops answering or turns out to be a replica (a failover happened),
    /// and once a second in any case, it asks again and moves every
    /// operation and the lock wake-ups to the new master. The sentinels
    /// are reached with their URL's address alone (and TLS for
    /// `rediss://`); the first URL's username, password and database
    /// number are the master's.
    ///
    /// Replication is asynchronous: a failover can lose writes the old
    /// master acknowledged and had not passed on, leases included. Set
    /// [`with_min_replicas_acked`](Self::with_min_replicas_acked) to report
    /// such writes as indeterminate instead.
    pub fn sentinel<S: Into<String>>(
        sentinels: impl IntoIterator<Item = S>,
        master_name: impl Into<String>,
    ) -> RedisConfig {
        let mut config = RedisConfig::cluster(sentinels);
        config.sentinel_master = Some(master_name.into());
        config
    }

    /// Whether this configuration is for a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        !self.urls.is_empty() && self.sentinel_master.is_none()
    }

    /// Whether this configuration reaches its master through sentinels.
    pub fn is_sentinel(&self) -> bool {
        self.sentinel_master.is_some()
    }

    /// Cluster mode's seed URLs, or sentinel mode's sentinel URLs; empty in
    /// standalone mode.
    pub fn urls(&self) -> &[String] {
        &self.urls
    }

    /// The master name the sentinels are asked for, in sentinel mode.
    pub fn sentinel_master(&self) -> Option<&str> {
        self.sentinel_master.as_deref()
    }

    /// Sets how many replicas must confirm each write before it is
    /// acknowledged (default 0: none). After every write (and every lock
    /// operation) the store sends `WAIT n` on the same connection, in the
    /// same pipeline; when fewer than `n` replicas confirm within the
    /// command timeout, the operation fails with
    /// [`StateError::Timeout`]: it may or may not have taken effect, and
    /// may be lost in a failover. At most 100.
    ///
    /// `WAIT` blocks the connection it is sent on until the replicas
    /// answer, so every operation of the store then pays a round trip to
    /// the replicas, and while a replica is missing every write waits the
    /// full command timeout.
    pub fn with_min_replicas_acked(mut self, replicas: u32) -> RedisConfig {
        self.min_replicas_acked = replicas;
        self
    }

    /// How many replicas must confirm each write (0: none).
    pub fn min_replicas_acked(&self) -> u32 {
        self.min_replicas_acked
    }

    /// Sets how often the background sweeper runs (default 30 s; `None`
    /// turns it off). Redis forgets an expired entry by itself, but not
    /// the members that index it for scans and expiry: a pass walks this
    /// store's keys (`SCAN`, which also makes Redis drop expired keys it
    /// meets, leases included) and unindexes every id whose entry has
    /// expired. While it runs, the store reports its storage and reclaims
    /// expired data within two intervals. At most a day.
    pub fn with_sweep_interval(mut self, interval: Option<Duration>) -> RedisConfig {
        self.sweep_interval = interval;
        self
    }

    /// The sweeper interval, if the sweeper is on.
    pub fn sweep_interval(&self) -> Option<Duration> {
        self.sweep_interval
    }

    /// Declares spaces that are never scanned (default: none): each item is
    /// a space's name, or a prefix of names followed by `*`
    /// (`"dedup:*"`). Writes to these spaces skip the scan index and the
    /// expiry schedule that keeps it small, which is most of a write's
    /// server work when the entry is new (a deduplication mark, a
    /// rate-limit window): the entry alone is written, and Redis expires
    /// it by itself; a creation (`check_and_set`, an `IfAbsent` put) is a
    /// single `SET NX`, what a hand-written mark costs. Everything else
    /// about these spaces is as the contract says, except that
    /// [`scan`](state_api::StateStore::scan) and
    /// [`storage_usage`](state_api::StateStore::storage_usage) of them
    /// answer [`StateError::Unsupported`], since nothing lists their ids.
    /// The item `"*"` lists every space: the store then declares neither
    /// the `scan` feature nor storage reporting.
    ///
    /// Listing a space that already has entries is safe, and so is
    /// removing it again only while it holds no entries: entries written
    /// while it was listed are in no index, and scans would miss them.
    pub fn with_unscanned_spaces<S: Into<String>>(mut self, spaces: impl IntoIterator<Item = S>) -> RedisConfig {
        self.unscanned_spaces = spaces.into_iter().map(Into::into).collect();
        self
    }

    /// The spaces declared never scanned, as given.
    pub fn unscanned_spaces(&self) -> &[String] {
        &self.unscanned_spaces
    }

    /// Whether every space is declared never scanned (the item `"*"`):
    /// then the store declares no scans and no storage reporting.
    pub fn is_unscanned_everywhere(&self) -> bool {
        self.unscanned_spaces.iter().any(|item| item == "*")
    }

    /// Whether `space` is declared never scanned: listed by name, or
    /// starting with a listed prefix (an item ending in `*`).
    pub fn is_unscanned(&self, space: &str) -> bool {
        self.unscanned_spaces.iter().any(|item| match item.strip_suffix('*') {
            Some(prefix) => space.starts_with(prefix),
            None => space == item,
        })
    }

    /// Sets the prefix of every key this store writes (default
    /// `statekit`), so several applications can share one database. It
    /// must be 1 to 64 bytes without braces (`{`, `}`: they would break
    /// the cluster hash tags) or control characters.
    pub fn with_key_prefix(mut self, prefix: impl Into<String>) -> RedisConfig {
        self.key_prefix = prefix.into();
        self
    }

    /// Sets how long `connect` (and each reconnection attempt) may take
    /// before failing with [`StateError::Timeout`].
    pub fn with_connect_timeout(mut self, timeout: Duration) -> RedisConfig {
        self.connect_timeout = timeout;
        self
    }

    /// Sets how long one operation may wait for Redis, reconnection
    /// included, before failing with [`StateError::Timeout`].
    pub fn with_command_timeout(mut self, timeout: Duration) -> RedisConfig {
        self.command_timeout = timeout;
        self
    }

    /// Sets the largest value `put` accepts (default 16 MiB, at most
    /// 512 MiB, at least the contract's 1 KiB floor).
    pub fn with_max_value_len(mut self, bytes: usize) -> RedisConfig {
        self.max_value_len = bytes;
        self
    }

    /// The same configuration for another URL (a proxy in front of the
    /// server, say).
    pub fn with_url(mut self, url: impl Into<String>) -> RedisConfig {
        self.url = url.into();
        self
    }

    /// The URL, password included: pass it to a client, never to a log.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The URL with any password replaced by `***`.
    pub fn redacted_url(&self) -> String {
        redact_url(&self.url)
    }

    /// The key prefix.
    pub fn key_prefix(&self) -> &str {
        &self.key_prefix
    }

    /// The connect timeout.
    pub fn connect_timeout(&self) -> Duration {
        self.connect_timeout
    }

    /// The command timeout.
    pub fn command_timeout(&self) -> Duration {
        self.command_timeout
    }

    /// The largest value accepted.
    pub fn max_value_len(&self) -> usize {
        self.max_value_len
    }

    /// Checks every field without connecting.
    ///
    /// # Errors
    /// [`StateError::InvalidArgument`] naming the field (`url`,
    /// `key_prefix`, `connect_timeout`, `command_timeout`,
    /// `max_value_len`); the message never contains the URL's password.
    pub fn validate(&self) -> Result<(), StateError> {
        if self.urls.is_empty() {
            self.client_info()?;
        }
        for url in &self.urls {
            seed_info(url)?;
        }
        if self.sentinel_master.as_deref().is_some_and(|name| name.is_empty() || name.chars().any(char::is_whitespace))
        {
            return Err(StateError::invalid_argument("sentinel_master", "must be a non-empty name without spaces"));
        }
        if self.min_replicas_acked > Self::MAX_REPLICAS_ACKED {
            return Err(StateError::invalid_argument(
                "min_replicas_acked",
                format!("must be at most {}, got {}", Self::MAX_REPLICAS_ACKED, self.min_replicas_acked),
            ));
        }
        let prefix = &self.key_prefix;
        if prefix.is_empty() || prefix.len() > Self::MAX_KEY_PREFIX_LEN {
            return Err(StateError::invalid_argument(
                "key_prefix",
                format!("must be 1 to {} bytes long, got {}", Self::MAX_KEY_PREFIX_LEN, prefix.len()),
            ));
        }
        if prefix.chars().any(|c| c == '{' || c == '}' || c.is_control()) {
            return Err(StateError::invalid_argument(
                "key_prefix",
                "must not contain braces (they would break cluster hash tags) or control characters",
            ));
        }
        for (name, timeout) in [("connect_timeout", self.connect_timeout), ("command_timeout", self.command_timeout)] {
            if timeout.is_zero() {
                return Err(StateError::invalid_argument(name, "must be positive"));
            }
        }
        if self.sweep_interval.is_some_and(|i| i.is_zero() || i > Self::MAX_SWEEP_INTERVAL) {
            return Err(StateError::invalid_argument(
                "sweep_interval",
                format!("must be positive and at most {:?} (None turns the sweeper off)", Self::MAX_SWEEP_INTERVAL),
            ));
        }
        if self.unscanned_spaces.iter().any(|item| item.is_empty() || item.contains(char::is_control)) {
            return Err(StateError::invalid_argument(
                "unscanned_spaces",
                "every item must be a space name, or a prefix followed by `*`: non-empty, without control characters",
            ));
        }
        if !(1024..=Self::MAX_VALUE_LEN_LIMIT).contains(&self.max_value_len) {
            return Err(StateError::invalid_argument(
                "max_value_len",
                format!("must be between 1 KiB and {} bytes, got {}", Self::MAX_VALUE_LEN_LIMIT, self.max_value_len),
            ));
        }
        Ok(())
    }

    /// Every seed's or sentinel's connection info.
    pub(crate) fn seed_infos(&self) -> Result<Vec<redis::ConnectionInfo>, StateError> {
        self.urls.iter().map(|seed| seed_info(seed)).collect()
    }

    /// The URL parsed by the Redis client.
    pub(crate) fn client_info(&self) -> Result<redis::ConnectionInfo, StateError> {
        use redis::IntoConnectionInfo;
        // The parser's messages do not quote the URL, but its source error
        // is dropped all the same: nothing from the URL may reach an error.
        self.url.as_str().into_connection_info().map_err(|e| {
            StateError::invalid_argument(
                "url",
                format!("{} is not a Redis URL ({})", self.redacted_url(), e.detail().unwrap_or(e.category())),
            )
        })
    }
}

/// The serialized form of a [`RedisConfig`]: the field names of a config
/// file, every one but `url` optional.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RedisFields {
    mode: Option<String>,
    url: Option<String>,
    urls: Option<Vec<String>>,
    sentinel_master: Option<String>,
    min_replicas_acked: Option<u32>,
    prefix: Option<String>,
    connect_timeout_ms: Option<u64>,
    command_timeout_ms: Option<u64>,
    max_value_len: Option<usize>,
    sweep_interval_ms: Option<u64>,
    unscanned_spaces: Option<Vec<String>>,
}

impl<'de> Deserialize<'de> for RedisConfig {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<RedisConfig, D::Error> {
        let fields = RedisFields::deserialize(deserializer)?;
        // Standalone, the default, needs `url`: a missing field, reported
        // as serde reports any (statekit then names its variable too).
        if fields.url.is_none() && fields.urls.is_none() && matches!(fields.mode.as_deref(), None | Some("standalone"))
        {
            return Err(serde::de::Error::missing_field("url"));
        }
        RedisConfig::try_from(fields).map_err(serde::de::Error::custom)
    }
}

impl TryFrom<RedisFields> for RedisConfig {
    type Error = StateError;

    /// Applies the fields over the defaults and validates the result; an
    /// error names the field as it is spelled in the file.
    fn try_from(fields: RedisFields) -> Result<RedisConfig, StateError> {
        let mode = fields.mode.as_deref().unwrap_or("standalone");
        if fields.sentinel_master.is_some() && mode != "sentinel" {
            return Err(StateError::invalid_argument("sentinel_master", "is for mode = \"sentinel\""));
        }
        let mut config = match (mode, fields.url, fields.urls) {
            ("standalone", Some(url), None) => RedisConfig::new(url),
            ("standalone", None, _) => {
                return Err(StateError::invalid_argument("url", "is required in standalone mode"));
            }
            ("standalone", Some(_), Some(_)) => {
                return Err(StateError::invalid_argument(
                    "urls",
                    "is for mode = \"cluster\" or \"sentinel\"; standalone takes `url`",
                ));
            }
            ("cluster" | "sentinel", Some(_), _) => {
                return Err(StateError::invalid_argument(
                    "url",
                    format!("is for standalone mode; {mode} takes `urls`"),
                ));
            }
            ("cluster", None, Some(urls)) if !urls.is_empty() => RedisConfig::cluster(urls),
            ("sentinel", None, Some(urls)) if !urls.is_empty() => {
                let Some(master) = fields.sentinel_master else {
                    return Err(StateError::invalid_argument(
                        "sentinel_master",
                        "sentinel mode needs the master's name",
                    ));
                };
                RedisConfig::sentinel(urls, master)
            }
            ("cluster", None, _) => {
                return Err(StateError::invalid_argument("urls", "cluster mode needs at least one seed URL"));
            }
            ("sentinel", None, _) => {
                return Err(StateError::invalid_argument("urls", "sentinel mode needs at least one sentinel URL"));
            }
            (other, _, _) => {
                return Err(StateError::invalid_argument(
                    "mode",
                    format!("must be \"standalone\", \"cluster\" or \"sentinel\", got {other:?}"),
                ));
            }
        };
        if let Some(replicas) = fields.min_replicas_acked {
            config = config.with_min_replicas_acked(replicas);
        }
        if let Some(prefix) = fields.prefix {
            config = config.with_key_prefix(prefix);
        }
        if let Some(ms) = fields.connect_timeout_ms {
            config = config.with_connect_timeout(Duration::from_millis(ms));
        }
        if let Some(ms) = fields.command_timeout_ms {
            config = config.with_command_timeout(Duration::from_millis(ms));
        }
        if let Some(bytes) = fields.max_value_len {
            config = config.with_max_value_len(bytes);
        }
        if let Some(ms) = fields.sweep_interval_ms {
            // 0 turns the sweeper off.
            config = config.with_sweep_interval((ms > 0).then(|| Duration::from_millis(ms)));
        }
        if let Some(spaces) = fields.unscanned_spaces {
            config = config.with_unscanned_spaces(spaces);
        }
        config.validate().map_err(|error| match error {
            StateError::InvalidArgument { name, reason } => StateError::InvalidArgument {
                name: match name {
                    "key_prefix" => "prefix",
                    "connect_timeout" => "connect_timeout_ms",
                    "command_timeout" => "command_timeout_ms",
                    "sweep_interval" => "sweep_interval_ms",
                    other => other,
                },
                reason,
            },
            other => other,
        })?;
        Ok(config)
    }
}

/// A seed URL's connection info; errors never quote the URL.
fn seed_info(seed: &str) -> Result<redis::ConnectionInfo, StateError> {
    use redis::IntoConnectionInfo;
    seed.into_connection_info().map_err(|e| {
        StateError::invalid_argument(
            "urls",
            format!("{} is not a Redis URL ({})", redact_url(seed), e.detail().unwrap_or(e.category())),
        )
    })
}

impl fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisConfig")
            .field("url", &self.redacted_url())
            .field("urls", &self.urls.iter().map(|url| redact_url(url)).collect::<Vec<_>>())
            .field("sentinel_master", &self.sentinel_master)
            .field("min_replicas_acked", &self.min_replicas_acked)
            .field("key_prefix", &self.key_prefix)
            .field("connect_timeout", &self.connect_timeout)
            .field("command_timeout", &self.command_timeout)
            .field("max_value_len", &self.max_value_len)
            .field("sweep_interval", &self.sweep_interval)
            .field("unscanned_spaces", &self.unscanned_spaces)
            .finish()
    }
}

impl fmt::Display for RedisConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (prefix {:?})", self.redacted_url(), self.key_prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_mode_takes_its_own_url_fields() {
        let named = |text: &str| match toml::from_str::<RedisConfig>(text) {
            Err(error) => error.to_string(),
            Ok(config) => format!(
                "ok cluster={} sentinel={:?} urls={} acked={}",
                config.is_cluster(),
                config.sentinel_master(),
                config.urls().len(),
                config.min_replicas_acked()
            ),
        };
        assert_eq!(named("url = \"redis://h\""), "ok cluster=false sentinel=None urls=0 acked=0");
        assert_eq!(
            named("mode = \"cluster\"\nurls = [\"redis://a:1\", \"redis://b:2\"]"),
            "ok cluster=true sentinel=None urls=2 acked=0"
        );
        assert_eq!(
            named("mode = \"sentinel\"\nurls = [\"redis://a:1\"]\nsentinel_master = \"m\"\nmin_replicas_acked = 1"),
            "ok cluster=false sentinel=Some(\"m\") urls=1 acked=1"
        );
        assert!(named("mode = \"sentinel\"\nurls = [\"redis://a:1\"]").contains("`sentinel_master`"));
        assert!(named("url = \"redis://h\"\nsentinel_master = \"m\"").contains("`sentinel_master`"));
        assert!(named("mode = \"sentinel\"\nsentinel_master = \"m\"\nurls = []").contains("`urls`"));
        assert!(named("mode = \"sentinel\"\nsentinel_master = \"m\"\nurl = \"redis://h\"").contains("`url`"));
        assert!(named("url = \"redis://h\"\nmin_replicas_acked = 101").contains("`min_replicas_acked`"));
        assert!(
            named("mode = \"cluster\"\nurl = \"redis://h\"").contains("`url`"),
            "{}",
            named("mode = \"cluster\"\nurl = \"redis://h\"")
        );
        assert!(named("url = \"redis://h\"\nurls = [\"redis://h\"]").contains("`urls`"));
        assert!(named("mode = \"cluster\"\nurls = []").contains("`urls`"));
        assert!(named("mode = \"cluster\"\nurls = [\"http://:pw@h\"]").contains("`urls`"));
        assert!(!named("mode = \"cluster\"\nurls = [\"http://:pw@h\"]").contains("pw"));
        assert!(named("mode = \"ring\"\nurl = \"redis://h\"").contains("`mode`"));
    }

    #[test]
    fn defaults_are_valid() {
        let config = RedisConfig::new("redis://127.0.0.1:6379");
        assert!(config.validate().is_ok());
        assert_eq!(config.key_prefix(), "statekit");
    }

    #[test]
    fn each_bad_field_is_named() {
        let named = |config: RedisConfig| match config.validate() {
            Err(StateError::InvalidArgument { name, .. }) => name,
            other => panic!("expected InvalidArgument, got {other:?}"),
        };
        let base = || RedisConfig::new("redis://127.0.0.1:6379");
        assert_eq!(named(RedisConfig::new("http://:pw@host")), "url");
        assert_eq!(named(base().with_key_prefix("")), "key_prefix");
        assert_eq!(named(base().with_key_prefix("a{b")), "key_prefix");
        assert_eq!(named(base().with_key_prefix("a\nb")), "key_prefix");
        assert_eq!(named(base().with_connect_timeout(Duration::ZERO)), "connect_timeout");
        assert_eq!(named(base().with_command_timeout(Duration::ZERO)), "command_timeout");
        assert_eq!(named(base().with_max_value_len(10)), "max_value_len");
        assert_eq!(named(base().with_sweep_interval(Some(Duration::ZERO))), "sweep_interval");
        let too_long = RedisConfig::MAX_SWEEP_INTERVAL + Duration::from_millis(1);
        assert_eq!(named(base().with_sweep_interval(Some(too_long))), "sweep_interval");
        assert!(base().with_sweep_interval(None).validate().is_ok());
    }

    fn from_toml(text: &str) -> Result<RedisConfig, toml::de::Error> {
        toml::from_str(text)
    }

    #[test]
    fn deserializing_applies_the_fields_over_the_defaults() {
        let config = from_toml("url = \"redis://h:6379\"\nprefix = \"app\"\ncommand_timeout_ms = 250\n").unwrap();
        assert_eq!(config.url(), "redis://h:6379");
        assert_eq!(config.key_prefix(), "app");
        assert_eq!(config.command_timeout(), Duration::from_millis(250));
        assert_eq!(config.connect_timeout(), RedisConfig::DEFAULT_CONNECT_TIMEOUT);
        assert_eq!(config.max_value_len(), RedisConfig::DEFAULT_MAX_VALUE_LEN);
    }

    #[test]
    fn unscanned_spaces_match_by_name_or_prefix() {
        let config = from_toml("url = \"redis://h\"\nunscanned_spaces = [\"dedup\", \"rate:*\"]\n").unwrap();
        assert_eq!(config.unscanned_spaces(), ["dedup", "rate:*"]);
        for (space, unscanned) in
            [("dedup", true), ("dedup2", false), ("dedu", false), ("rate:a", true), ("rate:", true), ("rate", false)]
        {
            assert_eq!(config.is_unscanned(space), unscanned, "{space:?}");
        }
        assert!(!RedisConfig::new("redis://h").is_unscanned("dedup"));
        assert!(RedisConfig::new("redis://h").with_unscanned_spaces(["*"]).is_unscanned("anything"));
        for bad in ["", "a\nb"] {
            let refused = RedisConfig::new("redis://h").with_unscanned_spaces([bad]).validate();
            assert!(
                matches!(refused, Err(StateError::InvalidArgument { name: "unscanned_spaces", .. })),
                "{bad:?}: {refused:?}"
            );
        }
    }

    #[test]
    fn deserializing_refuses_fields_of_other_backends_and_needs_a_url() {
        let error = from_toml("url = \"redis://h\"\nschema = \"public\"\n").map(|_| ()).unwrap_err().to_string();
        assert!(error.contains("unknown field `schema`"), "{error}");
        let error = from_toml("prefix = \"app\"\n").map(|_| ()).unwrap_err().to_string();
        assert!(error.contains("missing field `url`"), "{error}");
    }

    #[test]
    fn deserializing_validates_and_names_the_field_as_written() {
        let error = from_toml("url = \"redis://h\"\nprefix = \"a{b\"\n").map(|_| ()).unwrap_err().to_string();
        assert!(error.contains("`prefix`"), "{error}");
        let error = from_toml("url = \"redis://h\"\ncommand_timeout_ms = 0\n").map(|_| ()).unwrap_err().to_string();
        assert!(error.contains("`command_timeout_ms`"), "{error}");
    }

    #[test]
    fn the_password_never_shows() {
        let config = RedisConfig::new("redis://user:hunter2@db.internal:6379/2");
        for text in [format!("{config:?}"), config.to_string(), config.redacted_url()] {
            assert!(!text.contains("hunter2"), "{text}");
            assert!(text.contains("db.internal"), "{text}");
        }
        let bad = RedisConfig::new("redis://user:hunter2@db.internal:notaport").validate();
        let text = format!("{bad:?} {}", bad.as_ref().map(|_| String::new()).unwrap_or_else(ToString::to_string));
        assert!(!text.contains("hunter2"), "{text}");
    }
}
