//! The whole conformance kit against a real `redis-server`: a private one on
//! a free port per test, or the server named by `STATEKIT_REDIS_URL` (the
//! kit's random namespaces keep runs apart there).

#![allow(missing_docs)]

use conformance::Subject;
use state_redis::RedisConfig;
use test_servers::redis::redis;

conformance::suite!(redis, async {
    let server = redis()?;
    let backend = state_redis::backend(RedisConfig::new(server.url())).await.map_err(|e| e.to_string())?;
    Ok::<_, String>(Subject::from(backend).keep_alive(server))
});
