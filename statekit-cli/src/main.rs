//! # statekit-cli: the `statekit` command line
//!
//! Everything statekit offers from a shell, kept out of the `statekit`
//! library so that applications do not compile it: run the conformance kit
//! against a configured backend (`check`), create what a backend needs
//! (`migrate`), read and write state by hand (`get`, `set`, `del`, `incr`,
//! `scan`, `lock`), compare backends under load (`bench`, the load
//! generator in [`load`]), and check a recorded history for
//! linearizability (`lincheck`, every format the `lincheck` binary reads
//! plus the histories the kit records).
//!
//! ```sh
//! cargo run -p statekit-cli -- check                     # in-memory backend
//! cargo run -p statekit-cli --features all -- check -c examples/redis.toml
//! ```
//!
//! Backends are cargo features (`redis`, `postgres`, `dynamodb`, `all`),
//! forwarded to the `statekit` crate; the in-memory backend is always there.

mod load;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use conformance::{FaultTarget, Property, Scale, Subject};
use lincheck::history_file::HistoryFormat;
use lincheck::{CheckOptions, CheckResult};
use statekit::{Backend, Config, DeleteCondition, Key, StateError};

/// statekit: one state-storage contract over Redis, PostgreSQL, DynamoDB
/// and memory, and the conformance kit that proves each backend.
#[derive(Debug, Parser)]
#[command(name = "statekit", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the conformance kit against the configured backend (the embedded
    /// in-memory backend when no config is given). Exits 1 on any failure.
    Check {
        /// Config file (TOML); none means the in-memory backend.
        #[arg(short, long)]
        config: Option<PathBuf>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        /// small, default, large, or a factor (also STATEKIT_SCALE).
        #[arg(long)]
        scale: Option<Scale>,
        /// Run only these properties (repeatable), or a group of them
        /// (`schedules`); default: all (with --faults: the fault
        /// properties).
        #[arg(short, long = "property", value_name = "PROPERTY", value_parser = property_parser())]
        properties: Vec<Vec<Property>>,
        /// Put a fault-injecting proxy in front of the configured server and
        /// run the fault properties (latency, resets, cut replies, a black
        /// hole, low bandwidth, refused connections); see docs/RELIABILITY.md.
        #[arg(long)]
        faults: bool,
    },
    /// Create or upgrade what the backend needs (idempotent).
    Migrate {
        /// Config file (TOML).
        #[arg(short, long)]
        config: PathBuf,
    },
    /// Print the value at SPACE/ID.
    Get(KeyArgs),
    /// Write VALUE at SPACE/ID.
    Set {
        #[command(flatten)]
        key: KeyArgs,
        /// The value (UTF-8).
        value: String,
        /// Time to live in milliseconds.
        #[arg(long)]
        ttl_ms: Option<u64>,
        /// Write only if absent.
        #[arg(long)]
        if_absent: bool,
    },
    /// Delete SPACE/ID.
    Del(KeyArgs),
    /// Add DELTA to the counter at SPACE/ID.
    Incr {
        #[command(flatten)]
        key: KeyArgs,
        /// The delta.
        #[arg(default_value_t = 1, allow_negative_numbers = true)]
        delta: i64,
        /// Time to live in milliseconds, if the counter is created.
        #[arg(long)]
        ttl_ms: Option<u64>,
    },
    /// List the entries of SPACE whose id starts with PREFIX.
    Scan {
        /// Config file (TOML).
        #[arg(short, long)]
        config: Option<PathBuf>,
        /// The space.
        space: String,
        /// The id prefix.
        #[arg(default_value = "")]
        prefix: String,
        /// Page size.
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// List the items of schedule SPACE due by --now (default: now), in due
    /// order: due time (ms since the epoch), id, payload.
    Due {
        /// Config file (TOML).
        #[arg(short, long)]
        config: Option<PathBuf>,
        /// The space.
        space: String,
        /// The instant, in milliseconds since the Unix epoch; default: now.
        #[arg(long)]
        now: Option<u64>,
        /// The most items to list.
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Acquire NAME, print its fencing token, hold it for --hold-ms, release.
    Lock {
        /// Config file (TOML).
        #[arg(short, long)]
        config: Option<PathBuf>,
        /// The lock name.
        name: String,
        /// Lease TTL in milliseconds.
        #[arg(long, default_value_t = 30_000)]
        ttl_ms: u64,
        /// How long to wait for the lock, in milliseconds.
        #[arg(long, default_value_t = 10_000)]
        timeout_ms: u64,
        /// How long to hold it, in milliseconds.
        #[arg(long, default_value_t = 0)]
        hold_ms: u64,
    },
    /// Load report: workloads at a sweep of concurrency levels, per backend.
    Bench {
        /// Config files, one per backend to compare (none: in-memory).
        #[arg(short, long = "config")]
        configs: Vec<PathBuf>,
        /// Concurrency levels.
        #[arg(long, value_delimiter = ',', default_value = "1,8,64,256")]
        concurrency: Vec<usize>,
        /// Measured milliseconds per cell.
        #[arg(long, default_value_t = 3000)]
        duration_ms: u64,
        /// Workloads (repeatable; default all): dedup, hot-key-cas,
        /// read-heavy, counter, lock-handoff.
        #[arg(short, long = "workload")]
        workloads: Vec<load::Workload>,
        /// Directory to write bench.md, bench.json and bench.svg into.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Instead of measuring, render a saved bench.json again.
        #[arg(long)]
        render: Option<PathBuf>,
        /// Use this space (and lock name) in every cell instead of a fresh
        /// one, so that several bench processes run at once contend for
        /// one lock or key (lock-handoff, hot-key-cas).
        #[arg(long)]
        space: Option<String>,
    },
    /// Check a recorded history for linearizability.
    Lincheck {
        /// jepsen (etcd register log), kv (EDN), or jsonl (JSON lines; the
        /// header names the model: statekit, register or kv).
        #[arg(long, default_value = "jsonl")]
        format: HistoryFormat,
        /// The history file.
        file: PathBuf,
        /// Also write an HTML view of a history that is not linearizable.
        #[arg(long, value_name = "OUT.html")]
        html: Option<PathBuf>,
    },
}

/// Parses `-p NAME` into a [`Property`]; the choices, shown in `--help`
/// and in the error for a wrong name, come from [`Property::ALL`].
/// The name of a group of properties: every property that needs the
/// feature of the same name.
const PROPERTY_GROUPS: [&str; 1] = ["schedules"];

/// A property's name, or a group's ([`PROPERTY_GROUPS`]).
fn property_parser() -> impl clap::builder::TypedValueParser<Value = Vec<Property>> {
    use clap::builder::TypedValueParser;
    let names = Property::ALL.map(|property| property.name()).into_iter().chain(PROPERTY_GROUPS);
    clap::builder::PossibleValuesParser::new(names).try_map(|name| select_properties(&name))
}

fn select_properties(name: &str) -> Result<Vec<Property>, String> {
    if PROPERTY_GROUPS.contains(&name) {
        return Ok(Property::ALL.into_iter().filter(|p| p.required_features().contains(&name)).collect());
    }
    Property::from_name(name).map(|property| vec![property]).ok_or_else(|| format!("unknown property {name:?}"))
}

#[derive(Debug, clap::Args)]
struct KeyArgs {
    /// Config file (TOML).
    #[arg(short, long)]
    config: Option<PathBuf>,
    /// The space.
    space: String,
    /// The id.
    id: String,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => return fail(format!("cannot start the async runtime: {e}")),
    };
    match runtime.block_on(run(cli.command)) {
        Ok(code) => code,
        Err(message) => fail(message),
    }
}

fn fail(message: String) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(2)
}

async fn backend(config: Option<&PathBuf>) -> Result<Backend, String> {
    let config = Config::load_or_default(config.map(PathBuf::as_path)).map_err(|e| e.to_string())?;
    statekit::connect(&config).await.map_err(|e| e.to_string())
}

async fn run(command: Command) -> Result<ExitCode, String> {
    match command {
        Command::Check { config, json, scale, properties, faults } => {
            check(config, json, scale, properties.into_iter().flatten().collect(), faults).await
        }
        Command::Migrate { config } => {
            let config = Config::load(&config).map_err(|e| e.to_string())?;
            println!("{}", statekit::migrate(&config).await.map_err(|e| e.to_string())?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Get(k) => {
            let store = backend(k.config.as_ref()).await?.store;
            match store.get(&key(&k)?).await.map_err(|e| e.to_string())? {
                Some(entry) => {
                    let ttl = entry.ttl.map_or("none".to_owned(), |t| format!("{}ms", t.as_millis()));
                    println!("{} (version {}, ttl {ttl})", String::from_utf8_lossy(&entry.value), entry.version.0);
                    Ok(ExitCode::SUCCESS)
                }
                None => {
                    eprintln!("(absent)");
                    Ok(ExitCode::from(1))
                }
            }
        }
        Command::Set { key: k, value, ttl_ms, if_absent } => {
            let store = backend(k.config.as_ref()).await?.store;
            let condition = if if_absent { statekit::Condition::IfAbsent } else { statekit::Condition::Always };
            let ttl = ttl_ms.map(Duration::from_millis);
            match store.put(&key(&k)?, value.into(), condition, ttl).await.map_err(|e| e.to_string())? {
                statekit::PutOutcome::Written(v) => {
                    println!("written (version {})", v.0);
                    Ok(ExitCode::SUCCESS)
                }
                statekit::PutOutcome::Rejected(_) => {
                    println!("not written: the key exists");
                    Ok(ExitCode::from(1))
                }
            }
        }
        Command::Del(k) => {
            let store = backend(k.config.as_ref()).await?.store;
            let removed = store.delete(&key(&k)?, DeleteCondition::Always).await.map_err(|e| e.to_string())?;
            println!("{}", if removed { "deleted" } else { "(absent)" });
            Ok(ExitCode::SUCCESS)
        }
        Command::Incr { key: k, delta, ttl_ms } => {
            let store = backend(k.config.as_ref()).await?.store;
            let ttl = ttl_ms.map(Duration::from_millis);
            let counter = store.increment(&key(&k)?, delta, ttl).await.map_err(|e| e.to_string())?;
            println!("{} (version {})", counter.value, counter.version.0);
            Ok(ExitCode::SUCCESS)
        }
        Command::Scan { config, space, prefix, limit } => scan(config, &space, &prefix, limit).await,
        Command::Due { config, space, now, limit } => {
            let schedules = backend(config.as_ref()).await?.schedules;
            let now = now.map_or_else(statekit::EpochMillis::now, statekit::EpochMillis);
            let items = schedules.due(&space, now, limit).await.map_err(|e| e.to_string())?;
            let mut out = std::io::stdout().lock();
            for item in items {
                let _ = writeln!(out, "{}\t{}\t{}", item.due_at, item.key.id(), String::from_utf8_lossy(&item.payload));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Lock { config, name, ttl_ms, timeout_ms, hold_ms } => {
            let locks = backend(config.as_ref()).await?.locks;
            let ttl = Duration::from_millis(ttl_ms);
            let lease =
                locks.acquire(&name, ttl, Duration::from_millis(timeout_ms)).await.map_err(|e| e.to_string())?;
            println!("acquired {name} with fencing token {}", lease.token());
            tokio::time::sleep(Duration::from_millis(hold_ms)).await;
            locks.release(&lease).await.map_err(|e| e.to_string())?;
            println!("released");
            Ok(ExitCode::SUCCESS)
        }
        Command::Lincheck { format, file, html } => lincheck(format, &file, html.as_deref()),
        Command::Bench { render: Some(saved), out, .. } => {
            let text = std::fs::read_to_string(&saved).map_err(|e| format!("{}: {e}", saved.display()))?;
            let report = load::BenchReport::from_json(&text)?;
            write_report(&report, out)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench { configs, concurrency, duration_ms, workloads, out, render: None, space } => {
            let sweep = load::Sweep {
                workloads: if workloads.is_empty() { load::Workload::ALL.to_vec() } else { workloads },
                concurrency,
                duration: Duration::from_millis(duration_ms),
                space,
            };
            bench(configs, sweep, out).await
        }
    }
}

fn key(k: &KeyArgs) -> Result<Key, String> {
    Key::new(&k.space, &k.id).map_err(|e| e.to_string())
}

async fn scan(config: Option<PathBuf>, space: &str, prefix: &str, limit: usize) -> Result<ExitCode, String> {
    let store = backend(config.as_ref()).await?.store;
    let mut cursor = None;
    let mut out = std::io::stdout().lock();
    loop {
        let page = store.scan(space, prefix, cursor.as_ref(), limit).await.map_err(|e| e.to_string())?;
        for item in page.items {
            let _ = writeln!(out, "{}\t{}", item.id, String::from_utf8_lossy(&item.entry.value));
        }
        match page.next {
            Some(next) => cursor = Some(next),
            None => return Ok(ExitCode::SUCCESS),
        }
    }
}

async fn check(
    config: Option<PathBuf>,
    json: bool,
    scale: Option<Scale>,
    properties: Vec<Property>,
    faults: bool,
) -> Result<ExitCode, String> {
    let scale = match scale {
        Some(scale) => scale,
        None => Scale::from_env()?,
    };
    let report = if faults {
        let config = Config::load_or_default(config.as_deref()).map_err(|e| e.to_string())?;
        let selected = if properties.is_empty() { FAULT_PROPERTIES.to_vec() } else { properties };
        let target = fault_target(config.clone())?;
        let subject = Subject::from(statekit::connect(&config).await.map_err(|e| e.to_string())?).with_faults(target);
        let bar = progress_bar(selected.len() as u64, json);
        let mut reports = Vec::with_capacity(selected.len());
        for (position, property) in selected.iter().enumerate() {
            bar.set_position(position as u64);
            bar.set_message(property.name());
            reports.push(subject.run(*property, scale).await);
        }
        bar.finish_and_clear();
        let backend = subject.backend.capabilities().backend.to_owned();
        conformance::RunReport { backend, scale: scale.to_string(), properties: reports }
    } else {
        let selected = if properties.is_empty() { Property::ALL.to_vec() } else { properties };
        let config = Config::load_or_default(config.as_deref()).map_err(|e| e.to_string())?;
        let mut subject = Subject::from(statekit::connect(&config).await.map_err(|e| e.to_string())?);
        if config.server_address().is_some() && selected.contains(&Property::FairAcrossClients) {
            // A second client of the same server, as another process would
            // be (an in-process store has no second client to connect).
            subject = subject.with_peer(statekit::connect(&config).await.map_err(|e| e.to_string())?);
        }
        let bar = progress_bar(selected.len() as u64, json);
        let mut reports = Vec::with_capacity(selected.len());
        for (position, property) in selected.iter().enumerate() {
            bar.set_position(position as u64);
            bar.set_message(property.name());
            reports.push(subject.run(*property, scale).await);
        }
        bar.finish_and_clear();
        let backend = subject.backend.capabilities().backend.to_owned();
        conformance::RunReport { backend, scale: scale.to_string(), properties: reports }
    };
    if json {
        println!("{}", report.to_json());
    } else {
        println!("{report}");
    }
    Ok(if report.passed() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// What `check --faults` runs unless told otherwise: the network faults
/// (process faults need a server the kit started itself).
const FAULT_PROPERTIES: [Property; 3] = [Property::FaultsLinearizable, Property::FaultRecovery, Property::FaultsLocks];

/// The configured server behind the kit's fault proxy.
fn fault_target(config: Config) -> Result<FaultTarget, String> {
    let address = config.server_address().ok_or_else(|| {
        format!(
            "--faults needs a backend with a server whose URL names a host and port; the {} backend has none",
            config.backend()
        )
    })?;
    if config.through(address).is_none() {
        return Err(format!(
            "--faults needs a backend reached at the one server its URL names; this {} configuration reaches \
             several (Redis Cluster or Sentinel), whose addresses the client learns and goes to past a proxy \
             (a test can put the kit's proxy in front of every node: conformance::FaultTarget::spread)",
            config.backend()
        ));
    }
    Ok(FaultTarget::new(address, move |proxy| {
        let proxied = config.through(proxy);
        async move {
            let proxied = proxied.ok_or_else(|| StateError::invalid_argument("url", "no server to proxy"))?;
            statekit::connect(&proxied).await.map_err(|error| match error {
                statekit::Error::State(error) => error,
                other => StateError::invalid_argument("config", other.to_string()),
            })
        }
    }))
}

fn progress_bar(len: u64, hidden: bool) -> indicatif::ProgressBar {
    if hidden {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len);
    let style = indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} {msg}")
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
    bar.set_style(style);
    bar.enable_steady_tick(Duration::from_millis(100));
    bar
}

fn lincheck(format: HistoryFormat, file: &std::path::Path, html: Option<&std::path::Path>) -> Result<ExitCode, String> {
    let checked = conformance::history_file::check_file_with_view(format, file, &CheckOptions::default())?;
    let result = checked.result;
    println!("{result}");
    if let (Some(path), Some(page)) = (html, checked.html_view) {
        std::fs::write(path, page).map_err(|e| format!("{}: {e}", path.display()))?;
        println!("HTML view: {}", path.display());
    }
    Ok(match result {
        CheckResult::Linearizable => ExitCode::SUCCESS,
        CheckResult::NotLinearizable(_) => ExitCode::from(1),
        CheckResult::Unknown(_) => ExitCode::from(3),
    })
}

async fn bench(configs: Vec<PathBuf>, sweep: load::Sweep, out: Option<PathBuf>) -> Result<ExitCode, String> {
    let configs: Vec<Option<PathBuf>> =
        if configs.is_empty() { vec![None] } else { configs.into_iter().map(Some).collect() };
    let mut backends = Vec::new();
    for config in &configs {
        backends.push(backend(config.as_ref()).await?);
    }
    let total = (backends.len() * sweep.workloads.len() * sweep.concurrency.len()) as u64;
    let bar = progress_bar(total, false);
    let mut cells = Vec::new();
    for backend in &backends {
        for workload in &sweep.workloads {
            for concurrency in &sweep.concurrency {
                bar.set_message(format!("{} {workload} x{concurrency}", backend.capabilities().backend));
                cells.push(
                    load::run_cell(backend, *workload, *concurrency, sweep.duration, sweep.space.as_deref()).await?,
                );
                bar.inc(1);
            }
        }
    }
    bar.finish_and_clear();
    let report = load::BenchReport {
        command: std::env::args().collect::<Vec<_>>().join(" "),
        seconds_per_cell: sweep.duration.as_secs_f64(),
        cells,
    };
    write_report(&report, out)?;
    Ok(ExitCode::SUCCESS)
}

/// Prints the table and, with `out`, writes the markdown, JSON and SVG.
fn write_report(report: &load::BenchReport, out: Option<PathBuf>) -> Result<(), String> {
    println!("{}", report.markdown());
    if let Some(dir) = out {
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        for (name, body) in
            [("bench.md", report.markdown()), ("bench.json", report.json()), ("bench.svg", load::svg_chart(report))]
        {
            std::fs::write(dir.join(name), body).map_err(|e| format!("{}: {e}", dir.join(name).display()))?;
        }
        println!("wrote bench.md, bench.json and bench.svg to {}", dir.display());
    }
    Ok(())
}
