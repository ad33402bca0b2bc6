//! One kind of call, repeated: what the client process does per call, for
//! `scripts/redis-client-cost`, which runs this under callgrind and counts
//! its instructions (the server's side is `scripts/redis-server-cost`).
//!
//! ```sh
//! cargo run --release -p state-redis --example client_cost -- <redis url> <job> <calls>
//! ```
//!
//! Jobs: `mark` (statekit `check_and_set` with a TTL, in a space never
//! scanned), `raw-mark` (`SET NX PX` on the `redis` crate), `counter`
//! (statekit `increment`), `raw-counter` (`INCRBY`). One task, one runtime
//! thread: the count is the client's own work per call, not scheduling.

use std::time::Duration;

use bytes::Bytes;
use state_api::{Key, StateStore};
use state_redis::{RedisConfig, RedisStore};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [url, job, calls] = args.as_slice() else {
        return Err("usage: client_cost <redis url> <mark|raw-mark|counter|raw-counter> <calls>".into());
    };
    let calls: u64 = calls.parse()?;
    let prefix = format!("cost-{}", std::process::id());
    let ttl = Duration::from_secs(60);
    match job.as_str() {
        "mark" | "counter" => {
            let config = RedisConfig::new(url.as_str())
                .with_key_prefix(prefix)
                .with_unscanned_spaces(["dedup"])
                .with_sweep_interval(None);
            let store = RedisStore::connect(config).await?;
            for i in 0..calls {
                if job == "mark" {
                    store
                        .check_and_set(&Key::new("dedup", &i.to_string())?, Bytes::from_static(b"1"), Some(ttl))
                        .await?;
                } else {
                    store.increment(&Key::new("counters", "one")?, 1, None).await?;
                }
            }
        }
        "raw-mark" | "raw-counter" => {
            let mut connection = redis::Client::open(url.as_str())?.get_multiplexed_async_connection().await?;
            for i in 0..calls {
                if job == "raw-mark" {
                    let _: Option<String> = redis::cmd("SET")
                        .arg(format!("{prefix}:{i}"))
                        .arg("1")
                        .arg("NX")
                        .arg("PX")
                        .arg(60_000)
                        .query_async(&mut connection)
                        .await?;
                } else {
                    let _: i64 =
                        redis::cmd("INCRBY").arg(format!("{prefix}:one")).arg(1).query_async(&mut connection).await?;
                }
            }
        }
        other => return Err(format!("unknown job {other}").into()),
    }
    Ok(())
}
