//! [`LockDriver`] for [`DynamoStore`]: one item per lock name, changed
//! only by conditional writes. DynamoDB cannot notify waiters of a
//! release, so the wait loop ([`state_api::driver::wait`]) polls with
//! backoff, never sleeping past the holder's deadline.
//!
//! A lock item lives in the entries' table under a partition key no entry
//! can have: `"\0lock\0" + name`. The contract forbids NUL in spaces, so no
//! space equals it (the same argument that makes `Key::joined` injective),
//! and each lock gets its own partition, so busy locks do not share
//! DynamoDB's per-partition throughput. The item holds:
//!
//! | attribute | meaning |
//! |---|---|
//! | `owner` | the holder's random owner id; absent when released |
//! | `exp` | the lease deadline, epoch milliseconds on the client's clock |
//! | `fence` | the last fencing token issued |
//!
//! The item has no `ttl` attribute, so DynamoDB's reaper never deletes it:
//! the fencing counter survives expiry and release, and tokens strictly
//! increase for as long as the table exists.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};
use state_api::driver::{Attempt, LockDriver, Ttl, Waiter};
use state_api::{FencingToken, Lease, Result};

use crate::DynamoStore;
use crate::clock::now_ms;
use crate::error::{Conditional, Item, conditional};
use crate::item::{attr, key_of, number, optional_string, required_number, string};
use crate::statements::{self as expr, attribute_names, values};

/// The sort key of every lock item (the partition key names the lock).
const LEASE_ID: &str = "lease";

/// The primary key of the lock `name`.
pub(crate) fn lock_key(name: &str) -> HashMap<String, AttributeValue> {
    key_of(&format!("\0lock\0{name}"), LEASE_ID)
}

impl DynamoStore {
    /// Runs a conditional update on a lease that must still be held;
    /// `false` if it is not.
    async fn change_held(
        &self,
        operation: &'static str,
        lease: &Lease,
        update: &'static str,
        exp: Option<u64>,
    ) -> Result<bool> {
        let now = now_ms();
        let mut values = values([(":owner", string(lease.owner())), (":now", number(now))]);
        if let Some(exp) = exp {
            values.insert(":exp".to_owned(), number(exp));
        }
        // Extending to a fixed deadline is idempotent, so it may use the
        // retrying client; releasing twice would misreport, so it may not.
        let client = if exp.is_some() { self.reads() } else { self.writes() };
        let request = client
            .update_item()
            .table_name(self.table())
            .set_key(Some(lock_key(lease.name())))
            .update_expression(update)
            .condition_expression(expr::LOCK_HELD_BY)
            .set_expression_attribute_names(Some(attribute_names(&[update, expr::LOCK_HELD_BY])))
            .set_expression_attribute_values(Some(values));
        Ok(matches!(conditional(self.context(operation), request.send().await)?, Conditional::Applied(_)))
    }
}

/// The attribute of a lock item that holds a waiter's ticket: this prefix
/// and the waiter's id (no other attribute starts so).
const TICKET_OF: &str = "w:";

/// The attribute that holds until when a waiter is live (epoch ms).
const LIVE_OF: &str = "l:";

/// The attribute that changes whenever an entry stands in line (see
/// `statements::LOCK_FREE_FAST`).
const LINED: &str = "lined";

/// At most this many silent waiters are checked and cleared by one grant
/// (an expression has a size limit); the rest go with later grants.
const MAX_CLEARED: usize = 16;

/// One entry in a lock item's line.
struct Standing<'a> {
    ticket: u64,
    id: &'a str,
    live_until: u64,
}

/// The entries standing in `item`'s line.
fn line_of(item: &Item) -> Vec<Standing<'_>> {
    let number_of = |name: &str| required_number(item, name).ok();
    item.keys()
        .filter_map(|name| {
            let id = name.strip_prefix(TICKET_OF)?;
            let ticket = number_of(name)?;
            Some(Standing { ticket, id, live_until: number_of(&format!("{LIVE_OF}{id}")).unwrap_or(0) })
        })
        .collect()
}

/// What a conditional grant found.
enum Granted {
    Token(FencingToken),
    Refused(Option<Item>),
}

/// What a grant does to the grantee's entry in line.
enum Entry<'a> {
    /// None (`try_acquire`, or an entry that is not in line).
    Untouched,
    /// It leaves the line.
    Leaves(&'a str),
    /// It stays, for the client's next call: id, and that call's ticket.
    Stays(&'a str, u64),
}

impl DynamoStore {
    /// One conditional grant: the lock must be free (`fast`: as
    /// [`expr::LOCK_FREE_FAST`] or, for an entry that stays,
    /// [`expr::LOCK_FREE_FAST_KEPT`] says, with `me` the caller's entry;
    /// otherwise as `LOCK_FREE`, with `lined` unchanged since `seen`) and
    /// the silent entries `passed` still silent; they leave the line, the
    /// grantee's entry as `entry` says, and `head` is recorded as the
    /// line's first entry from now on, with the earliest ticket of the
    /// others (`None`: not known).
    #[allow(clippy::too_many_arguments)]
    async fn grant(
        &self,
        name: &str,
        owner: &str,
        ttl: Ttl,
        now: u64,
        fast: Option<&str>,
        seen: Option<u64>,
        passed: &[&str],
        entry: Entry<'_>,
        head: Option<(&str, Option<u64>)>,
        live_until: u64,
    ) -> Result<Granted> {
        let mut names: HashMap<String, String> = HashMap::new();
        let mut update = expr::LOCK_ACQUIRE.to_owned();
        let mut removed = Vec::new();
        let mut values = values([
            (":owner", string(owner)),
            (":exp", number(now.saturating_add(ttl.millis()))),
            (":zero", number(0)),
            (":one", number(1)),
            (":now", number(now)),
        ]);
        let mut condition = match (fast, &entry) {
            (Some(me), Entry::Stays(_, next)) => {
                values.insert(":me".to_owned(), string(me));
                values.insert(":next".to_owned(), number(*next));
                expr::LOCK_FREE_FAST_KEPT.to_owned()
            }
            (Some(me), _) => {
                values.insert(":me".to_owned(), string(me));
                expr::LOCK_FREE_FAST.to_owned()
            }
            (None, _) => match seen {
                Some(seen) => {
                    values.insert(":seen".to_owned(), number(seen));
                    format!("{} AND #lined = :seen", expr::LOCK_FREE)
                }
                None => format!("{} AND attribute_not_exists(#lined)", expr::LOCK_FREE),
            },
        };
        for (n, id) in passed.iter().take(MAX_CLEARED).enumerate() {
            condition.push_str(&format!(" AND (attribute_not_exists(#s{n}) OR #s{n} <= :now)"));
            names.insert(format!("#s{n}"), format!("{LIVE_OF}{id}"));
            names.insert(format!("#rt{n}"), format!("{TICKET_OF}{id}"));
            removed.push(format!("#rt{n}"));
            removed.push(format!("#s{n}"));
        }
        match entry {
            Entry::Untouched => {}
            Entry::Leaves(id) => {
                names.insert("#mt".to_owned(), format!("{TICKET_OF}{id}"));
                names.insert("#ml".to_owned(), format!("{LIVE_OF}{id}"));
                removed.extend(["#mt".to_owned(), "#ml".to_owned()]);
            }
            Entry::Stays(id, ticket) => {
                names.insert("#mt".to_owned(), format!("{TICKET_OF}{id}"));
                names.insert("#ml".to_owned(), format!("{LIVE_OF}{id}"));
                update.push_str(", #mt = :ticket, #ml = :live");
                values.insert(":ticket".to_owned(), number(ticket));
            }
        }
        match head {
            // A fast grant keeps the earliest other ticket it was checked
            // against (none known: none to pass).
            Some((head, None)) => {
                update
                    .push_str(", #head = :head, #headl = :live, #lined = :live, #headt = if_not_exists(#headt, :none)");
                values.insert(":head".to_owned(), string(head));
                values.insert(":none".to_owned(), number(0));
            }
            Some((head, Some(others))) => {
                update.push_str(", #head = :head, #headl = :live, #lined = :live, #headt = :others");
                values.insert(":head".to_owned(), string(head));
                values.insert(":others".to_owned(), number(others));
            }
            None => removed.extend(["#head".to_owned(), "#headl".to_owned(), "#headt".to_owned()]),
        }
        if update.contains(":live") {
            values.insert(":live".to_owned(), number(live_until));
        }
        if !removed.is_empty() {
            update.push_str(" REMOVE ");
            update.push_str(&removed.join(", "));
        }
        for (placeholder, attribute) in attribute_names(&[&update, &condition]) {
            names.entry(placeholder).or_insert(attribute);
        }
        let request = self
            .writes()
            .update_item()
            .table_name(self.table())
            .set_key(Some(lock_key(name)))
            .update_expression(update)
            .condition_expression(condition)
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .return_values(ReturnValue::UpdatedNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        Ok(match conditional(self.context("try_acquire"), request.send().await)? {
            Conditional::Applied(output) => {
                let granted = output.attributes.unwrap_or_default();
                Granted::Token(FencingToken(required_number(&granted, attr::FENCE)?))
            }
            Conditional::Failed(item) => Granted::Refused(item),
        })
    }

    /// Stands `waiter`'s entry in the lock's line at its ticket, live
    /// until `live_until`.
    async fn stand(&self, name: &str, waiter: &Waiter<'_>, live_until: u64) -> Result<()> {
        let mut placeholders = attribute_names(&[expr::LOCK_STAND]);
        placeholders.insert("#w".to_owned(), format!("{TICKET_OF}{}", waiter.id));
        placeholders.insert("#wl".to_owned(), format!("{LIVE_OF}{}", waiter.id));
        // Idempotent (absolute ticket and deadline): the retrying client
        // may send it again.
        self.reads()
            .update_item()
            .table_name(self.table())
            .set_key(Some(lock_key(name)))
            .update_expression(expr::LOCK_STAND)
            .set_expression_attribute_names(Some(placeholders))
            .set_expression_attribute_values(Some(values([
                (":ticket", number(waiter.ticket)),
                (":live", number(live_until)),
            ])))
            .send()
            .await
            .map_err(|e| self.context("acquire").map(e))?;
        Ok(())
    }

    /// One attempt, by `waiter` in the line where given, else as
    /// `try_acquire` (which comes after every waiter).
    ///
    /// First a grant on the condition that the lock is free and nobody
    /// stood in its line within a window (`lined`): one write, when
    /// uncontended. Failing that, the item it returns decides: where the
    /// lock is free and no live entry comes first, a grant on the condition
    /// that the lock is still free and the silent entries it passes over
    /// are still silent (it clears them); otherwise the waiter stands in
    /// line, and is told how long until the holder's lease, or the first
    /// entry's window, ends. Either way a second write.
    ///
    /// A grant takes the waiter's entry out of line, or keeps it there
    /// for its client's next call (see [`Waiter::next`]).
    async fn attempt_lock(&self, name: &str, owner: &str, ttl: Ttl, waiter: Option<&Waiter<'_>>) -> Result<Attempt> {
        let now = now_ms();
        let skew = u64::try_from(self.max_clock_skew().as_millis()).unwrap_or(u64::MAX);
        let live_until = waiter.map_or(now, |w| now.saturating_add(w.window.millis()).saturating_add(skew));
        // try_acquire matches no entry.
        let me = waiter.map_or("-", |w| w.id);
        let entry = |in_line: bool| match waiter {
            Some(Waiter { id, next: Some(next), .. }) => Entry::Stays(id, *next),
            Some(Waiter { id, .. }) if in_line => Entry::Leaves(id),
            _ => Entry::Untouched,
        };
        // Granted at once, the entry (kept for the client's next call) is
        // the line's first: nobody live stood, or it was first already.
        let head = waiter.filter(|w| w.next.is_some()).map(|w| (w.id, None));
        let fast = self.grant(name, owner, ttl, now, Some(me), None, &[], entry(true), head, live_until).await?;
        let item = match fast {
            Granted::Token(token) => return Ok(Attempt::Acquired(token)),
            Granted::Refused(item) => item.unwrap_or_default(),
        };
        let holder_exp = match optional_string(&item, attr::OWNER) {
            Some(_) => required_number(&item, attr::EXPIRES).unwrap_or(0),
            None => 0,
        };
        let line = line_of(&item);
        let own = |s: &Standing<'_>| waiter.is_some_and(|w| w.id == s.id);
        let first_live = line
            .iter()
            .filter(|s| !own(s) && s.live_until > now)
            .filter(|s| waiter.is_none_or(|w| (s.ticket, s.id) < (w.ticket, w.id)))
            .map(|s| s.live_until)
            .min();
        if holder_exp <= now && first_live.is_none() {
            let silent: Vec<&str> = line.iter().filter(|s| !own(s) && s.live_until <= now).map(|s| s.id).collect();
            // The line's first after this grant: the earliest live entry
            // left, this client's kept entry included.
            let kept = waiter.and_then(|w| w.next.map(|next| (next, w.id)));
            let others = line.iter().filter(|s| !own(s) && s.live_until > now).map(|s| (s.ticket, s.id));
            let mut after: Vec<(u64, &str)> = others.chain(kept).collect();
            after.sort_unstable();
            // With no other entry, the first may keep the lock's line to
            // itself for any later ticket.
            let head = after.first().map(|(_, id)| (*id, Some(after.get(1).map_or(u64::MAX, |(t, _)| *t))));
            let seen = required_number(&item, LINED).ok();
            let granted = self.grant(name, owner, ttl, now, None, seen, &silent, entry(true), head, live_until).await?;
            return Ok(match granted {
                Granted::Token(token) => Attempt::Acquired(token),
                Granted::Refused(item) => {
                    let exp = item.as_ref().and_then(|i| required_number(i, attr::EXPIRES).ok()).unwrap_or(now);
                    Attempt::Held(Some(Duration::from_millis(exp.saturating_sub(now))))
                }
            });
        }
        if let Some(waiter) = waiter {
            self.stand(name, waiter, live_until).await?;
        }
        let until = if holder_exp > now { holder_exp } else { first_live.unwrap_or(now) };
        Ok(Attempt::Held(Some(Duration::from_millis(until.saturating_sub(now)))))
    }
}

#[async_trait]
impl LockDriver for DynamoStore {
    async fn attempt(&self, name: &str, owner: &str, ttl: Ttl) -> Result<Attempt> {
        self.attempt_lock(name, owner, ttl, None).await
    }

    async fn attempt_in_line(&self, name: &str, owner: &str, ttl: Ttl, waiter: &Waiter<'_>) -> Result<Attempt> {
        self.attempt_lock(name, owner, ttl, Some(waiter)).await
    }

    async fn leave_line(&self, name: &str, waiter: &str) -> Result<()> {
        let placeholders = HashMap::from([
            ("#w".to_owned(), format!("{TICKET_OF}{waiter}")),
            ("#wl".to_owned(), format!("{LIVE_OF}{waiter}")),
        ]);
        self.reads()
            .update_item()
            .table_name(self.table())
            .set_key(Some(lock_key(name)))
            .update_expression("REMOVE #w, #wl")
            .set_expression_attribute_names(Some(placeholders))
            .send()
            .await
            .map_err(|e| self.context("acquire").map(e))?;
        Ok(())
    }

    async fn renew(&self, lease: &Lease, ttl: Ttl) -> Result<bool> {
        let exp = now_ms().saturating_add(ttl.millis());
        self.change_held("extend", lease, expr::LOCK_EXTEND, Some(exp)).await
    }

    async fn free(&self, lease: &Lease) -> Result<bool> {
        self.change_held("release", lease, expr::LOCK_RELEASE, None).await
    }

    async fn holds(&self, lease: &Lease) -> Result<bool> {
        let now = now_ms();
        let output = self
            .reads()
            .get_item()
            .table_name(self.table())
            .set_key(Some(lock_key(lease.name())))
            .consistent_read(true)
            .projection_expression(expr::LOCK_PROJECTION)
            .set_expression_attribute_names(Some(attribute_names(&[expr::LOCK_PROJECTION])))
            .send()
            .await
            .map_err(|e| self.context("is_held").map(e))?;
        Ok(output.item.is_some_and(|item| {
            optional_string(&item, attr::OWNER) == Some(lease.owner())
                && required_number(&item, attr::EXPIRES).is_ok_and(|exp| exp > now)
        }))
    }
}
