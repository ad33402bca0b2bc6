//! Running a model [`Op`] against a real store.

use std::time::Duration;

use state_api::{Fence, FencingToken, PutOutcome, StateError, StateStore};

use crate::model::{ErrorKind, Observed, Op, Outcome};

/// Executes `op` on `store` and reports its outcome in model terms. A scan
/// reads every page; a page larger than its limit, or a cursor that does
/// not move (the scan would never end), is reported as a `Backend` failure
/// so no property can miss it.
pub async fn execute(store: &dyn StateStore, op: &Op) -> Outcome {
    match run(store, op).await {
        Ok(outcome) => outcome,
        Err(error) => Outcome::Failed(ErrorKind::of(&error)),
    }
}

async fn run(store: &dyn StateStore, op: &Op) -> Result<Outcome, StateError> {
    let ms = |t: &Option<u64>| t.map(Duration::from_millis);
    Ok(match op {
        Op::Get { key } => Outcome::Got(store.get(&key.key()?).await?.map(Observed::from)),
        Op::Put { key, value, condition, ttl_ms } => {
            match store.put(&key.key()?, value.clone(), *condition, ms(ttl_ms)).await? {
                PutOutcome::Written(v) => Outcome::Written(v.0),
                PutOutcome::Rejected(current) => Outcome::Rejected(current.map(Observed::from)),
            }
        }
        Op::Delete { key, condition } => Outcome::Deleted(store.delete(&key.key()?, *condition).await?),
        Op::Increment { key, delta, ttl_ms } => {
            let c = store.increment(&key.key()?, *delta, ms(ttl_ms)).await?;
            Outcome::Counted { value: c.value, version: c.version.0 }
        }
        Op::Fenced { lock, token, op } => {
            let fence = Fence::new(lock.as_str(), FencingToken(*token));
            match op.as_ref() {
                Op::Put { key, value, condition, ttl_ms } => {
                    match store.put_fenced(&key.key()?, value.clone(), *condition, ms(ttl_ms), &fence).await? {
                        PutOutcome::Written(v) => Outcome::Written(v.0),
                        PutOutcome::Rejected(current) => Outcome::Rejected(current.map(Observed::from)),
                    }
                }
                Op::Delete { key, condition } => {
                    Outcome::Deleted(store.delete_fenced(&key.key()?, *condition, &fence).await?)
                }
                Op::Increment { key, delta, ttl_ms } => {
                    let c = store.increment_fenced(&key.key()?, *delta, ms(ttl_ms), &fence).await?;
                    Outcome::Counted { value: c.value, version: c.version.0 }
                }
                // Only writes can be fenced.
                _ => Outcome::Failed(ErrorKind::Unsupported),
            }
        }
        // Lock operations need the lock service and the lease; the
        // properties that record them run them (`Recorder::observe`).
        Op::Acquire { .. } | Op::Release { .. } => Outcome::Failed(ErrorKind::Unsupported),
        Op::Scan { space, prefix, limit } => {
            let mut items = Vec::new();
            let mut cursor = None;
            loop {
                let page = store.scan(space, prefix, cursor.as_ref(), *limit).await?;
                if page.items.len() > *limit {
                    return Ok(Outcome::Failed(ErrorKind::Backend));
                }
                items.extend(page.items.into_iter().map(|i| (i.id, Observed::from(i.entry))));
                match page.next {
                    Some(next) if cursor.as_ref() == Some(&next) => return Ok(Outcome::Failed(ErrorKind::Backend)),
                    Some(next) => cursor = Some(next),
                    None => break,
                }
            }
            Outcome::Scanned(items)
        }
    })
}
