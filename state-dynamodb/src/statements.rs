//! Every condition and update expression the backend sends, in one place.
//!
//! Each operation is one request whose condition DynamoDB evaluates and
//! applies atomically on one item; that single step is what makes each
//! operation linearizable. Conditions compare `exp` with `:now`, the
//! client's clock when it sent the request, so "expired counts as absent"
//! is decided in the same step as the write — never read, delete, write.
//!
//! Attribute names appear as `#name` placeholders (the attribute is the
//! name without `#`, see [`crate::item::attr`]); [`attribute_names`] builds
//! the map a request needs from its expressions, because DynamoDB refuses
//! unused names.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

/// A live entry: the deadline is after `:now`. On a missing item every
/// comparison is false, so this also means "exists".
pub(crate) const LIVE: &str = "#exp > :now";

/// No entry, or only an expired one: `put(IfAbsent)`, and every branch
/// that creates a key at version 1.
pub(crate) const ABSENT: &str = "attribute_not_exists(#ver) OR #exp <= :now";

/// No item at all, or a live entry — everything but an expired item,
/// whose version must restart at 1 (see [`PUT_UPDATE_BYTES`]).
pub(crate) const MISSING_OR_LIVE: &str = "attribute_not_exists(#ver) OR #exp > :now";

/// A live entry at exactly the expected version.
pub(crate) const LIVE_AT_VERSION: &str = "#ver = :expected AND #exp > :now";

/// `put(Always)` of bytes on a missing or live item (condition
/// [`MISSING_OR_LIVE`]): version 1 for a missing item, previous + 1 for a
/// live one. An expired item fails the condition and is overwritten by a
/// `PutItem` conditioned on [`ABSENT`] instead — an update expression
/// cannot test the deadline, so "restart at 1 when expired" needs that
/// second, equally atomic, branch.
pub(crate) const PUT_UPDATE_BYTES: &str =
    "SET #v = :value, #ver = if_not_exists(#ver, :zero) + :one, #exp = :exp, #ttl = :ttl REMOVE #n";

/// As [`PUT_UPDATE_BYTES`], for a value that is a counter.
pub(crate) const PUT_UPDATE_COUNTER: &str =
    "SET #n = :value, #ver = if_not_exists(#ver, :zero) + :one, #exp = :exp, #ttl = :ttl REMOVE #v";

/// `increment`: adds `:delta` to a live counter, or creates it at `:delta`
/// with version 1 and the deadline `:exp` when there is no item. A live
/// counter keeps its deadline (`if_not_exists` keeps the stored `exp` and
/// `ttl`): the fixed window the contract asks for. Exact: DynamoDB numbers
/// have 38 digits, and the condition keeps the result inside `i64`.
pub(crate) const INCREMENT: &str = "SET #n = if_not_exists(#n, :zero) + :delta, #ver = if_not_exists(#ver, :zero) + :one, \
     #exp = if_not_exists(#exp, :exp), #ttl = if_not_exists(#ttl, :ttl)";

/// When [`INCREMENT`] may apply: no item, or a live counter (`n`, not
/// bytes `v`) whose sum stays in `i64` (`:low`/`:high` are the `i64`
/// bounds shifted by the delta). An expired item, a non-counter value or
/// an overflow fails it, and the returned item tells which.
pub(crate) const INCREMENT_CONDITION: &str =
    "attribute_not_exists(#ver) OR (#exp > :now AND #n BETWEEN :low AND :high)";

/// A scan page: one partition (space), ids in byte order.
pub(crate) const SCAN_SPACE: &str = "#space = :space";

/// A scan page of the ids starting with `:prefix` (never empty: DynamoDB
/// refuses an empty `begins_with` operand, so an empty prefix uses
/// [`SCAN_SPACE`]).
pub(crate) const SCAN_PREFIX: &str = "#space = :space AND begins_with(#id, :prefix)";

/// A lock is free: never held, released (no owner), or its lease expired.
pub(crate) const LOCK_FREE: &str = "attribute_not_exists(#owner) OR #exp <= :now";

/// Takes a free lock. The fencing counter is only ever incremented, never
/// removed (release removes the owner and deadline, nothing else), so
/// tokens strictly increase across releases and takeovers.
pub(crate) const LOCK_ACQUIRE: &str = "SET #owner = :owner, #exp = :exp, #fence = if_not_exists(#fence, :zero) + :one";

/// Takes a free lock at once, where no waiter has stood in its line within
/// a window (`#lined` is the latest deadline any entry was given), or where
/// the caller's entry is the line's first as the last grant recorded it
/// (`#head`) and nobody stood since (`#headl` still equals `#lined`).
pub(crate) const LOCK_FREE_FAST: &str = "(attribute_not_exists(#owner) OR #exp <= :now) AND \
     (attribute_not_exists(#lined) OR #lined <= :now OR (#head = :me AND #headl = #lined))";

/// As [`LOCK_FREE_FAST`], for a caller whose entry stays in line at the
/// ticket `:next` (its client's next call): as first only while `:next`
/// comes before every other entry (`#headt`, the earliest of their tickets
/// when `#head` was recorded).
pub(crate) const LOCK_FREE_FAST_KEPT: &str = "(attribute_not_exists(#owner) OR #exp <= :now) AND \
     (attribute_not_exists(#lined) OR #lined <= :now OR (#head = :me AND #headl = #lined AND #headt > :next))";

/// A waiter stands in a lock's line (`#w` and `#wl` name its attributes,
/// `w:` and `l:` and its id, so they are left out of the placeholder check
/// below), and the line is marked as stood in until its deadline.
pub(crate) const LOCK_STAND: &str = "SET #w = :ticket, #wl = :live, #lined = :live";

/// The lease is still held by this owner.
pub(crate) const LOCK_HELD_BY: &str = "#owner = :owner AND #exp > :now";

/// Moves a held lease's deadline.
pub(crate) const LOCK_EXTEND: &str = "SET #exp = :exp";

/// Frees a held lock, keeping the fencing counter.
pub(crate) const LOCK_RELEASE: &str = "REMOVE #owner, #exp";

/// A fenced write's check: the lock is held, and by the acquisition that
/// issued `:token` (any later one would have issued a higher token).
pub(crate) const FENCE_HOLDS: &str = "attribute_exists(#owner) AND #exp > :now AND #fence = :token";

/// The attributes a fenced write's snapshot reads of the lock item.
pub(crate) const FENCE_PROJECTION: &str = "#owner, #exp, #fence";

/// A fenced write's entry is still as its snapshot saw it: live, at the
/// version and with the deadline seen.
pub(crate) const SEEN_LIVE: &str = "#ver = :ver AND #exp = :seen AND #exp > :now";

/// As [`SEEN_LIVE`], for a counter, whose value is seen too (an increment's
/// answer depends on it).
pub(crate) const SEEN_COUNTER: &str = "#ver = :ver AND #exp = :seen AND #exp > :now AND #n = :n";

/// The attributes `is_held` reads.
pub(crate) const LOCK_PROJECTION: &str = "#owner, #exp";

/// The `ExpressionAttributeNames` for a request using `expressions`:
/// `#name` -> `name` for every placeholder that appears in them.
pub(crate) fn attribute_names(expressions: &[&str]) -> HashMap<String, String> {
    let mut names = HashMap::new();
    for expression in expressions {
        let mut rest = *expression;
        while let Some(start) = rest.find('#') {
            let after = &rest[start + 1..];
            let len = after.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(after.len());
            let name = &after[..len];
            names.entry(format!("#{name}")).or_insert_with(|| name.to_owned());
            rest = &after[len..];
        }
    }
    names
}

/// The `ExpressionAttributeValues` of a request, from `(":name", value)`
/// pairs.
pub(crate) fn values<const N: usize>(pairs: [(&str, AttributeValue); N]) -> HashMap<String, AttributeValue> {
    pairs.into_iter().map(|(name, value)| (name.to_owned(), value)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_collected_once_each() {
        let names = attribute_names(&[PUT_UPDATE_BYTES, MISSING_OR_LIVE]);
        let mut found: Vec<_> = names.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        found.sort();
        assert_eq!(found, [("#exp", "exp"), ("#n", "n"), ("#ttl", "ttl"), ("#v", "v"), ("#ver", "ver")]);
    }

    #[test]
    fn every_placeholder_names_a_known_attribute() {
        use crate::item::attr;
        let known = [
            attr::SPACE,
            attr::ID,
            attr::VALUE,
            attr::COUNTER,
            attr::VERSION,
            attr::EXPIRES,
            attr::REAP_AT,
            attr::OWNER,
            attr::FENCE,
            attr::LINED,
            attr::HEAD,
            attr::HEAD_LINED,
            attr::HEAD_NEXT,
        ];
        let all = [
            LIVE,
            ABSENT,
            MISSING_OR_LIVE,
            LIVE_AT_VERSION,
            PUT_UPDATE_BYTES,
            PUT_UPDATE_COUNTER,
            INCREMENT,
            INCREMENT_CONDITION,
            SCAN_SPACE,
            SCAN_PREFIX,
            LOCK_FREE,
            LOCK_FREE_FAST,
            LOCK_FREE_FAST_KEPT,
            LOCK_ACQUIRE,
            LOCK_HELD_BY,
            LOCK_EXTEND,
            LOCK_RELEASE,
            LOCK_PROJECTION,
            FENCE_HOLDS,
            FENCE_PROJECTION,
            SEEN_LIVE,
            SEEN_COUNTER,
            crate::item::ENTRY_PROJECTION,
        ];
        for (_, name) in attribute_names(&all) {
            assert!(known.contains(&name.as_str()), "unknown attribute {name}");
        }
    }
}
