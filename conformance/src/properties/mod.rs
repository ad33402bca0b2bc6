//! The properties of the kit, one module per theme. Each is a plain async
//! function over a [`Context`](crate::Context) returning the number of
//! cases run or a counterexample.

pub mod capabilities;
pub mod configuration;
pub mod edge;
pub mod extremes;
pub mod fairness;
pub mod faults;
pub mod fenced;
pub mod keep_alive;
pub mod linearizable;
pub mod lock_timing;
pub mod locks;
pub mod races;
pub mod scan;
pub mod scan_cost;
pub mod schedules;
pub mod sequential;
pub mod storage;
pub mod ttl;
pub mod unreachable;
pub mod wakeups;
