//! The statekit conformance kit.

pub mod linearizability;
