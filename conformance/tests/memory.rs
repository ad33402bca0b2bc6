//! The whole kit against the correct in-memory backend: every property passes.

#![allow(missing_docs)]

use conformance::{Configured, Subject};
use state_api::memory::MemoryConfig;
use state_api::{Backend, MemoryStore};

/// The in-memory backend as `[state]` settings build it.
fn configured() -> Configured {
    Configured::new("", |fields: String| async move {
        let config: MemoryConfig = toml::from_str(&fields)?;
        let store: MemoryStore = config.builder().build();
        let store = std::sync::Arc::new(store);
        Ok::<_, toml::de::Error>(Backend::new(store.clone(), store.clone()).with_schedules(store))
    })
}

conformance::suite!(memory, async {
    // The peer shares the store's data but not its client-side lines of
    // waiters, as a second process shares a server.
    let store = MemoryStore::new();
    let peer = Backend::from(store.peer());
    Subject::from(Backend::from(store)).with_configured(configured()).with_peer(peer)
});
