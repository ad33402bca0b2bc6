//! How `[state]` and the environment become a [`Config`]. Tests that need a
//! backend's config type run where its feature is on (`--all-features`);
//! the rest run in every build.

use super::*;
use crate::MemoryConfig;

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::from_toml(text, Path::new("test.toml"))
}

fn parse_with_env(text: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
    Config::from_toml_and_env(text, Path::new("test.toml"), |variable| {
        env.iter().find(|(name, _)| *name == variable).map(|(_, value)| (*value).to_owned())
    })
}

fn message(result: Result<Config, ConfigError>) -> String {
    match result {
        Ok(config) => panic!("expected an error, got {config:?}"),
        Err(error) => error.to_string(),
    }
}

/// The layout common in gateway configs: the application's tables around
/// statekit's.
const GATEWAY: &str = r#"
[server]
listen = "0.0.0.0:8080"
workers = 4

[state]
backend = "memory"
max_value_len = 65536

[rules]
deny = ["admin/*"]
[rules.limits]
per_minute = 600
"#;

#[test]
fn an_empty_file_means_memory_with_migrate_on_connect() {
    let config = parse("").unwrap();
    assert_eq!(config.backend(), "memory");
    assert!(config.migrate_on_connect());
    assert_eq!(config.backend_config::<MemoryConfig>(), Some(&MemoryConfig::new()));
}

#[test]
fn an_application_file_without_state_means_memory() {
    let config = parse("[server]\nlisten = \"0.0.0.0:8080\"\n").unwrap();
    assert_eq!(config.backend(), "memory");
}

#[test]
fn the_applications_own_tables_are_ignored() {
    let config = parse(GATEWAY).unwrap();
    assert_eq!(config.backend(), "memory");
    assert_eq!(config.backend_config::<MemoryConfig>().map(MemoryConfig::max_value_len), Some(65536));
}

#[test]
fn an_unknown_key_inside_state_names_the_key_file_line_and_backend() {
    let error = message(parse("[server]\nurll = 1\n\n[state]\nbackend = \"memory\"\nurll = \"x\"\n"));
    assert!(error.contains("`urll`") && error.contains("test.toml") && error.contains("line 6"), "{error}");
    assert!(error.contains("backend memory takes `max_value_len`"), "{error}");
}

#[test]
fn a_field_of_another_backend_is_an_error_naming_the_field_and_the_backend() {
    let error = message(parse("[state]\nbackend = \"memory\"\nurl = \"redis://127.0.0.1\"\n"));
    assert!(error.contains("`url`") && error.contains("backend memory"), "{error}");
}

#[cfg(all(feature = "redis", feature = "postgres"))]
#[test]
fn schema_with_redis_is_refused_and_postgres_named_as_its_owner() {
    let error = message(parse("[state]\nbackend = \"redis\"\nurl = \"redis://h\"\nschema = \"app\"\n"));
    assert!(error.contains("`schema` belongs to postgres, not to backend redis"), "{error}");
}

#[cfg(feature = "dynamodb")]
#[test]
fn max_value_len_with_dynamodb_is_refused() {
    let error = message(parse("[state]\nbackend = \"dynamodb\"\nmax_value_len = 1024\n"));
    assert!(error.contains("`max_value_len`") && error.contains("not to backend dynamodb"), "{error}");
}

#[test]
fn a_wrong_type_names_the_key_and_line() {
    let error = message(parse("[state]\nmax_value_len = \"many\"\n"));
    assert!(error.contains("`max_value_len`") && error.contains("line 2") && error.contains("test.toml"), "{error}");
    let error = message(parse("[state]\nmigrate_on_connect = \"yes\"\n"));
    assert!(error.contains("`migrate_on_connect`"), "{error}");
}

#[cfg(feature = "postgres")]
#[test]
fn a_wrong_type_in_a_backend_field_names_the_key() {
    let error = message(parse("[state]\nbackend = \"postgres\"\nurl = \"postgres://h/db\"\npool_size = \"many\"\n"));
    assert!(error.contains("`pool_size`") && error.contains("line 4"), "{error}");
}

#[test]
fn state_must_be_a_table() {
    let error = message(parse("state = 3\n"));
    assert!(error.contains("test.toml") && error.contains("state"), "{error}");
}

#[test]
fn an_unknown_backend_lists_the_known_ones() {
    let error = message(parse("[state]\nbackend = \"cassandra\"\n"));
    assert!(error.contains("\"cassandra\"") && error.contains("line 2"), "{error}");
    assert!(error.contains("memory, redis, postgres, dynamodb"), "{error}");
}

#[test]
fn a_value_the_backend_refuses_names_the_field() {
    let error = message(parse("[state]\nmax_value_len = 10\n"));
    assert!(error.contains("backend memory") && error.contains("`max_value_len`"), "{error}");
}

#[cfg(not(feature = "dynamodb"))]
#[test]
fn a_backend_not_compiled_in_names_its_cargo_feature() {
    let error = message(parse("[state]\nbackend = \"dynamodb\"\nurl = \"http://127.0.0.1:1\"\n"));
    assert!(error.contains("cargo feature `dynamodb`") && error.contains("-p statekit-cli"), "{error}");
}

#[cfg(feature = "redis")]
#[test]
fn a_missing_required_field_names_it_and_its_variable() {
    let error = message(parse("[state]\nbackend = \"redis\"\n"));
    assert!(error.contains("redis needs `url`") && error.contains("STATEKIT_URL"), "{error}");
}

#[cfg(feature = "redis")]
#[test]
fn a_cluster_takes_its_seeds_from_the_file_or_a_comma_separated_variable() {
    let file = "[state]\nbackend = \"redis\"\nmode = \"cluster\"\nurls = [\"redis://a:7000\", \"redis://b:7000\"]\n";
    let config = parse(file).unwrap();
    assert_eq!(config.backend_config::<state_redis::RedisConfig>().map(|c| c.urls().len()), Some(2));
    let env = [("STATEKIT_MODE", "cluster"), ("STATEKIT_URLS", "redis://a:7000, redis://b:7000,redis://c:7000")];
    let config = parse_with_env("[state]\nbackend = \"redis\"\n", &env).unwrap();
    let seeds = config.backend_config::<state_redis::RedisConfig>().map(|c| c.urls().to_vec());
    assert_eq!(
        seeds,
        Some(vec!["redis://a:7000".to_owned(), "redis://b:7000".to_owned(), "redis://c:7000".to_owned()])
    );
    let error = message(parse(
        "[state]\nbackend = \"redis\"\nmode = \"cluster\"\nurl = \"redis://a\"\nurls = [\"redis://a\"]\n",
    ));
    assert!(error.contains("`url`"), "{error}");
}

#[cfg(feature = "redis")]
#[test]
fn sentinel_mode_takes_its_master_name_and_replica_count_from_the_file_or_the_environment() {
    let file = "[state]\nbackend = \"redis\"\nmode = \"sentinel\"\nurls = [\"redis://s:26379\"]\n\
                sentinel_master = \"main\"\nmin_replicas_acked = 1\n";
    let config = parse(file).unwrap();
    let redis = config.backend_config::<state_redis::RedisConfig>().unwrap();
    assert_eq!((redis.sentinel_master(), redis.min_replicas_acked(), redis.urls().len()), (Some("main"), 1, 1));
    let env = [
        ("STATEKIT_MODE", "sentinel"),
        ("STATEKIT_URLS", "redis://s1:26379,redis://s2:26379"),
        ("STATEKIT_SENTINEL_MASTER", "other"),
        ("STATEKIT_MIN_REPLICAS_ACKED", "2"),
    ];
    let config = parse_with_env("[state]\nbackend = \"redis\"\n", &env).unwrap();
    let redis = config.backend_config::<state_redis::RedisConfig>().unwrap();
    assert_eq!((redis.sentinel_master(), redis.min_replicas_acked(), redis.urls().len()), (Some("other"), 2, 2));
    let error = message(parse("[state]\nbackend = \"redis\"\nurl = \"redis://a\"\nsentinel_master = \"main\"\n"));
    assert!(error.contains("`sentinel_master`"), "{error}");
    let error = message(parse_with_env(file, &[("STATEKIT_MIN_REPLICAS_ACKED", "many")]));
    assert!(error.contains("STATEKIT_MIN_REPLICAS_ACKED"), "{error}");
}

#[test]
fn the_environment_chooses_the_backend_and_overrides_typed_fields() {
    let env = [("STATEKIT_MAX_VALUE_LEN", "4096"), ("STATEKIT_MIGRATE_ON_CONNECT", "false")];
    let config = parse_with_env(GATEWAY, &env).unwrap();
    assert_eq!(config.backend_config::<MemoryConfig>().map(MemoryConfig::max_value_len), Some(4096));
    assert!(!config.migrate_on_connect());
    let error = message(parse_with_env("", &[("STATEKIT_BACKEND", "cassandra")]));
    assert!(error.contains("\"cassandra\"") && error.contains("STATEKIT_BACKEND"), "{error}");
}

#[test]
fn a_bad_environment_value_names_the_variable() {
    let error = message(parse_with_env("", &[("STATEKIT_MAX_VALUE_LEN", "lots")]));
    assert!(error.contains("STATEKIT_MAX_VALUE_LEN") && error.contains("\"lots\""), "{error}");
    let error = message(parse_with_env("", &[("STATEKIT_MIGRATE_ON_CONNECT", "sometimes")]));
    assert!(error.contains("STATEKIT_MIGRATE_ON_CONNECT"), "{error}");
}

#[test]
fn variables_for_fields_the_backend_lacks_and_unrelated_ones_are_not_read() {
    let env = [
        ("STATEKIT_SCHEMA", "app"),
        ("STATEKIT_POOL_SIZE", "not even a number"),
        ("STATEKIT_REDIS_URL", "redis://127.0.0.1:6379"),
        ("STATEKIT_SCALE", "small"),
        ("STATEKIT_BENCH_SECONDS", "3"),
    ];
    let config = parse_with_env(GATEWAY, &env).unwrap();
    assert_eq!(config.backend(), "memory");
}

#[test]
fn with_no_file_the_environment_alone_configures() {
    let config =
        Config::from_env(|variable| (variable == "STATEKIT_MAX_VALUE_LEN").then(|| "2048".to_owned())).unwrap();
    assert_eq!(config.backend_config::<MemoryConfig>().map(MemoryConfig::max_value_len), Some(2048));
}

#[test]
fn a_config_built_in_code_names_its_backend() {
    let config = Config::new(MemoryConfig::new().with_max_value_len(8192)).with_migrate_on_connect(false);
    assert_eq!((config.backend(), config.migrate_on_connect()), ("memory", false));
    assert_eq!(config.backend_config::<MemoryConfig>().map(MemoryConfig::max_value_len), Some(8192));
}

#[test]
fn every_row_is_listed_and_compiled_rows_announce_their_fields() {
    for driver in crate::drivers() {
        if let Some(ops) = driver.ops() {
            let fields = (ops.fields)();
            assert!(!fields.is_empty(), "{driver:?} announces no fields");
            for shared in ["backend", "migrate_on_connect"] {
                assert!(!fields.contains(&shared), "{driver:?} has a field named like a shared key: {shared}");
            }
        } else {
            assert!(!driver.feature().is_empty(), "{driver:?}: only a row behind a feature can be missing");
        }
    }
}

#[cfg(feature = "redis")]
#[test]
fn every_redis_field_can_be_set_from_the_environment() {
    use state_redis::RedisConfig;
    let env = [
        ("STATEKIT_BACKEND", "redis"),
        ("STATEKIT_URL", "redis://db:6379/2"),
        ("STATEKIT_PREFIX", "app"),
        ("STATEKIT_CONNECT_TIMEOUT_MS", "1500"),
        ("STATEKIT_COMMAND_TIMEOUT_MS", "250"),
        ("STATEKIT_MAX_VALUE_LEN", "65536"),
    ];
    let config = parse_with_env("", &env).unwrap();
    let redis = config.backend_config::<RedisConfig>().unwrap();
    assert_eq!((redis.url(), redis.key_prefix(), redis.max_value_len()), ("redis://db:6379/2", "app", 65536));
    assert_eq!((redis.connect_timeout().as_millis(), redis.command_timeout().as_millis()), (1500, 250));
}

#[cfg(feature = "postgres")]
#[test]
fn every_postgres_field_can_be_set_from_the_environment() {
    use state_postgres::PostgresConfig;
    let env = [
        ("STATEKIT_URL", "postgres://db/app"),
        ("STATEKIT_SCHEMA", "state"),
        ("STATEKIT_PREFIX", "orders"),
        ("STATEKIT_POOL_SIZE", "7"),
        ("STATEKIT_CONNECT_TIMEOUT_MS", "1500"),
        ("STATEKIT_COMMAND_TIMEOUT_MS", "250"),
        ("STATEKIT_REAP_INTERVAL_MS", "0"),
        ("STATEKIT_REAP_BATCH", "50"),
        ("STATEKIT_MAX_VALUE_LEN", "65536"),
    ];
    // The file names the backend and a prefix; the environment wins.
    let config = parse_with_env("[state]\nbackend = \"postgres\"\nprefix = \"file\"\n", &env).unwrap();
    let pg = config.backend_config::<PostgresConfig>().unwrap();
    assert_eq!((pg.schema(), pg.table_prefix(), pg.pool_size()), ("state", "orders", 7));
    assert_eq!((pg.connect_timeout().as_millis(), pg.statement_timeout().as_millis()), (1500, 250));
    assert_eq!((pg.reap_interval(), pg.reap_batch(), pg.max_value_len()), (None, 50, 65536));
    assert!(pg.redacted_url().contains("db/app"));
}

#[cfg(feature = "dynamodb")]
#[test]
fn every_dynamodb_field_can_be_set_from_the_environment() {
    use state_dynamodb::DynamoConfig;
    let env = [
        ("STATEKIT_BACKEND", "dynamodb"),
        ("STATEKIT_URL", "http://127.0.0.1:8000"),
        ("STATEKIT_REGION", "eu-west-1"),
        ("STATEKIT_TABLE_NAME", "app_state"),
        ("STATEKIT_ACCESS_KEY_ID", "local"),
        ("STATEKIT_SECRET_ACCESS_KEY", "hunter2"),
        ("STATEKIT_CONNECT_TIMEOUT_MS", "1500"),
        ("STATEKIT_COMMAND_TIMEOUT_MS", "250"),
        ("STATEKIT_MAX_ATTEMPTS", "5"),
        ("STATEKIT_MAX_CLOCK_SKEW_MS", "20"),
    ];
    let config = parse_with_env("", &env).unwrap();
    let dynamo = config.backend_config::<DynamoConfig>().unwrap();
    assert_eq!((dynamo.endpoint_url(), dynamo.region()), (Some("http://127.0.0.1:8000"), Some("eu-west-1")));
    assert_eq!((dynamo.table_name(), dynamo.max_attempts()), ("app_state", 5));
    assert_eq!((dynamo.connect_timeout().as_millis(), dynamo.operation_timeout().as_millis()), (1500, 250));
    assert_eq!(dynamo.max_clock_skew().as_millis(), 20);
    let debug = format!("{config:?}");
    assert!(debug.contains("local") && !debug.contains("hunter2"), "{debug}");
}

#[cfg(feature = "redis")]
#[test]
fn debug_redacts_the_url_password() {
    let config = parse("[state]\nbackend = \"redis\"\nurl = \"redis://:hunter2@host:6379\"\n").unwrap();
    let debug = format!("{config:?}");
    assert!(debug.contains("host") && !debug.contains("hunter2"), "{debug}");
}

#[cfg(feature = "redis")]
#[test]
fn errors_never_show_the_url_password() {
    let error = message(parse("[state]\nbackend = \"redis\"\nurl = \"redis://:hunter2@host:notaport\"\n"));
    assert!(error.contains("`url`") && !error.contains("hunter2"), "{error}");
}

#[test]
fn the_example_files_parse_or_name_the_feature_they_need() {
    let examples = [
        ("memory.toml", include_str!("../../../examples/memory.toml")),
        ("redis.toml", include_str!("../../../examples/redis.toml")),
        ("redis-cluster.toml", include_str!("../../../examples/redis-cluster.toml")),
        ("redis-sentinel.toml", include_str!("../../../examples/redis-sentinel.toml")),
        ("postgres.toml", include_str!("../../../examples/postgres.toml")),
        ("dynamodb.toml", include_str!("../../../examples/dynamodb.toml")),
        ("gateway.toml", include_str!("../../../examples/gateway.toml")),
    ];
    for (name, text) in examples {
        match Config::from_toml(text, Path::new(name)) {
            Ok(_) | Err(ConfigError::NotCompiled { .. }) => {}
            Err(error) => panic!("{name}: {error}"),
        }
    }
}

#[test]
fn a_url_is_cut_around_its_host_and_port() {
    assert_eq!(super::authority("postgres://u:p@h:5432/db?x=1"), ("postgres://u:p@", "h:5432", "/db?x=1"));
    assert_eq!(super::authority("redis://127.0.0.1:6379"), ("redis://", "127.0.0.1:6379", ""));
    assert_eq!(super::authority("http://[::1]:8000/"), ("http://", "[::1]:8000", "/"));
}

#[test]
fn the_in_memory_backend_has_no_server_to_put_a_proxy_in_front_of() {
    let config = Config::new(crate::MemoryConfig::new());
    assert_eq!(config.server_address(), None);
    assert!(config.through("127.0.0.1:1".parse().unwrap()).is_none());
}

#[cfg(feature = "redis")]
#[test]
fn a_config_aimed_through_a_proxy_keeps_its_credentials_and_database() {
    let config = parse("[state]\nbackend = \"redis\"\nurl = \"redis://:hunter2@127.0.0.1:6379/3\"\n").unwrap();
    assert_eq!(config.server_address(), Some("127.0.0.1:6379".parse().unwrap()));
    let proxied = config.through("127.0.0.1:40000".parse().unwrap()).unwrap();
    let redis = proxied.backend_config::<state_redis::RedisConfig>().unwrap();
    assert_eq!(redis.url(), "redis://:hunter2@127.0.0.1:40000/3");
    assert!(!proxied.migrate_on_connect());
}

#[cfg(feature = "redis")]
#[test]
fn a_cluster_or_sentinel_config_is_not_aimed_through_one_proxy() {
    for file in [
        "[state]\nbackend = \"redis\"\nmode = \"cluster\"\nurls = [\"redis://127.0.0.1:7000\", \"redis://127.0.0.1:7001\"]\n",
        "[state]\nbackend = \"redis\"\nmode = \"sentinel\"\nurls = [\"redis://127.0.0.1:26379\"]\nsentinel_master = \"m\"\n",
    ] {
        let config = parse(file).unwrap();
        assert!(config.through("127.0.0.1:40000".parse().unwrap()).is_none(), "{file}");
    }
}
