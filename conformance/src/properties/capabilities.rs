//! Capabilities: declared limits are sane, declared features work, and
//! undeclared optional features answer `Unsupported`.

use std::time::Duration;

use state_api::StateError;

use crate::ensure;
use crate::kit::{Context, Outcome};

/// Runs the capabilities property.
pub async fn run(cx: &Context) -> Outcome {
    let caps = &cx.capabilities;
    ensure!(caps.max_value_len >= 1024, "max_value_len {} is below the contract's 1 KiB floor", caps.max_value_len);
    ensure!(
        caps.ttl_resolution <= Duration::from_millis(1),
        "TTL resolution {:?} is coarser than the contract's millisecond",
        caps.ttl_resolution
    );
    let scan = cx.backend.store.scan(&cx.space("caps"), "", None, 1).await;
    if caps.features.scan {
        ensure!(scan.is_ok(), "scan is declared but answered {:?}", scan.map(|_| ()));
    } else {
        ensure!(
            matches!(scan, Err(StateError::Unsupported { .. })),
            "scan is not declared but answered {:?} instead of Unsupported",
            scan.map(|_| ())
        );
    }
    let lock = cx.backend.locks.try_acquire(&cx.lock_name("caps"), Duration::from_secs(1)).await;
    if caps.features.locks {
        ensure!(matches!(lock, Ok(Some(_))), "locks are declared but a free lock answered {lock:?}");
        if let Ok(Some(lease)) = &lock {
            cx.backend.locks.release(lease).await?;
        }
    } else {
        ensure!(
            matches!(lock, Err(StateError::Unsupported { .. })),
            "locks are not declared but try_acquire answered {lock:?} instead of Unsupported"
        );
    }
    Ok(2)
}
