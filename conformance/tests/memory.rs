//! The whole kit against the correct in-memory backend: every property passes.

#![allow(missing_docs)]

conformance::suite!(memory, async { state_api::Backend::memory() });
