//! Broken schedules: a plain list of items, each mutant getting one rule
//! of the contract's "Schedules" wrong the way timer indexes built on
//! state stores have.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use parking_lot::Mutex;
use state_api::{Claim, EpochMillis, Key, Lease, Result, ScheduleService, ScheduledItem, StateError};
use tokio::time::Instant;

/// What the list gets wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Defect {
    /// `schedule` appends an item even when the id is already there.
    AppendsInsteadOfReplacing,
    /// `claim` lists the due items, then marks them claimed in a second
    /// step, without looking again: claimers racing there get the same
    /// items.
    PeeksThenTakes,
    /// `complete` checks the claim's owner but not its lease.
    ExpiredClaimCompletes,
    /// Nothing wrong but the cost: `due` walks every item of every space.
    WalksEverything,
}

struct Listed {
    item: ScheduledItem,
    claim: Option<(String, Instant)>,
}

/// Each space's items in one list, in insertion order: `due` walks the
/// space's whole list.
pub(crate) struct BrokenSchedules {
    defect: Defect,
    spaces: Mutex<HashMap<String, Vec<Listed>>>,
}

impl BrokenSchedules {
    pub(crate) fn new(defect: Defect) -> BrokenSchedules {
        BrokenSchedules { defect, spaces: Mutex::default() }
    }

    fn due_keys(&self, space: &str, now: EpochMillis, limit: usize) -> Vec<ScheduledItem> {
        let spaces = self.spaces.lock();
        let items = spaces.get(space).map_or(&[][..], Vec::as_slice);
        if self.defect == Defect::WalksEverything {
            // The whole index loaded, then filtered and sorted: what a
            // timer table read in full on every tick costs.
            let loaded: Vec<Listed> =
                items.iter().map(|listed| Listed { item: listed.item.clone(), claim: listed.claim.clone() }).collect();
            return due_in(&loaded, now, limit);
        }
        due_in(items, now, limit)
    }

    /// Runs `f` on the claimed item of `claim`, if `owner` holds it.
    fn with_claimed(&self, claim: &Claim, f: impl FnOnce(&mut Vec<Listed>, usize)) -> Result<()> {
        let now = Instant::now();
        let mut spaces = self.spaces.lock();
        let items = spaces.entry(claim.key().space().to_owned()).or_default();
        let held = items.iter().position(|listed| {
            listed.item.key == *claim.key()
                && listed.claim.as_ref().is_some_and(|(owner, until)| {
                    owner == claim.owner() && (self.defect == Defect::ExpiredClaimCompletes || *until > now)
                })
        });
        match held {
            Some(at) => {
                f(items, at);
                Ok(())
            }
            None => {
                Err(StateError::ClaimLost { space: claim.key().space().to_owned(), id: claim.key().id().to_owned() })
            }
        }
    }
}

/// The unclaimed (or expired-claim) items of `space` due at `now`, in due
/// order, at most `limit`.
fn due_in(items: &[Listed], now: EpochMillis, limit: usize) -> Vec<ScheduledItem> {
    let instant = Instant::now();
    let mut due: Vec<ScheduledItem> = items
        .iter()
        .filter(|listed| listed.item.due_at <= now)
        .filter(|listed| listed.claim.as_ref().is_none_or(|(_, until)| *until <= instant))
        .map(|listed| listed.item.clone())
        .collect();
    due.sort_by(|a, b| (a.due_at, a.key.id().as_bytes()).cmp(&(b.due_at, b.key.id().as_bytes())));
    due.truncate(limit);
    due
}

#[async_trait]
impl ScheduleService for BrokenSchedules {
    async fn schedule(&self, key: &Key, due_at: EpochMillis, payload: Bytes) -> Result<()> {
        let mut spaces = self.spaces.lock();
        let items = spaces.entry(key.space().to_owned()).or_default();
        if self.defect != Defect::AppendsInsteadOfReplacing {
            items.retain(|listed| listed.item.key != *key);
        }
        items.push(Listed { item: ScheduledItem { key: key.clone(), due_at, payload }, claim: None });
        Ok(())
    }

    async fn cancel(&self, key: &Key) -> Result<bool> {
        let mut spaces = self.spaces.lock();
        let items = spaces.entry(key.space().to_owned()).or_default();
        let before = items.len();
        items.retain(|listed| listed.item.key != *key);
        Ok(items.len() < before)
    }

    async fn due(&self, space: &str, now: EpochMillis, limit: usize) -> Result<Vec<ScheduledItem>> {
        Ok(self.due_keys(space, now, limit))
    }

    async fn claim(&self, space: &str, now: EpochMillis, limit: usize, lease: Duration) -> Result<Vec<Claim>> {
        let owner = Lease::new_owner_id();
        let started = Instant::now();
        let until = started + lease;
        if self.defect == Defect::PeeksThenTakes {
            let due = self.due_keys(space, now, limit);
            // The other claimers run here.
            tokio::time::sleep(Duration::from_millis(1)).await;
            let mut spaces = self.spaces.lock();
            let items = spaces.entry(space.to_owned()).or_default();
            for item in &due {
                if let Some(listed) = items.iter_mut().find(|listed| listed.item.key == item.key) {
                    listed.claim = Some((owner.clone(), until));
                }
            }
            return Ok(due.into_iter().map(|item| Claim::new(item, owner.clone(), started, lease)).collect());
        }
        let mut spaces = self.spaces.lock();
        let items = spaces.entry(space.to_owned()).or_default();
        let due = due_in(items, now, limit);
        for item in &due {
            if let Some(listed) = items.iter_mut().find(|listed| listed.item.key == item.key) {
                listed.claim = Some((owner.clone(), until));
            }
        }
        Ok(due.into_iter().map(|item| Claim::new(item, owner.clone(), started, lease)).collect())
    }

    async fn complete(&self, claim: &Claim) -> Result<()> {
        self.with_claimed(claim, |items, at| {
            items.remove(at);
        })
    }

    async fn release_claim(&self, claim: &Claim) -> Result<()> {
        self.with_claimed(claim, |items, at| items[at].claim = None)
    }
}
