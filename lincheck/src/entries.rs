//! The search's working list of not-yet-linearized calls and returns.
//!
//! A circular doubly linked list over a slice of events, stored as index
//! arrays. Linearizing an operation "lifts" its call and return out of the
//! list; backtracking "unlifts" them. Because lifts are undone in exactly the
//! reverse order (the search is a depth-first stack), a removed entry keeps
//! its own links and can be put back in constant time without searching
//! (Knuth's dancing links).

use super::timeline::{Event, EventKind};

/// Index of the sentinel that closes the circle; real entries are `1..`.
const SENTINEL: usize = 0;

/// What an entry of the list stands for.
#[derive(Debug, Clone, Copy)]
enum Entry {
    /// The sentinel itself.
    Sentinel,
    /// The call of operation `op`, whose return is entry `ret` (if the
    /// operation returned within the events the list was built from).
    Call { op: usize, ret: Option<usize> },
    /// The return of an operation, the `ordinal`-th return (from 1) among
    /// the events the list was built from.
    Return { ordinal: usize },
}

/// The list of entries still to be linearized, in time order.
#[derive(Debug)]
pub(crate) struct Entries {
    entries: Vec<Entry>,
    next: Vec<usize>,
    prev: Vec<usize>,
}

impl Entries {
    /// A list holding every event in `events`, in order.
    pub(crate) fn new(events: &[Event]) -> Self {
        let len = events.len() + 1;
        let mut entries = vec![Entry::Sentinel; len];
        // Entry `i + 1` stands for `events[i]`; remember where each
        // operation's call went so its return can be attached to it.
        let ops = events.iter().map(|event| event.op + 1).max().unwrap_or(0);
        let mut call_of_op = vec![SENTINEL; ops];
        let mut returns = 0;
        for (i, event) in events.iter().enumerate() {
            let entry = i + 1;
            match event.kind {
                EventKind::Call => {
                    entries[entry] = Entry::Call { op: event.op, ret: None };
                    if let Some(slot) = call_of_op.get_mut(event.op) {
                        *slot = entry;
                    }
                }
                EventKind::Return => {
                    returns += 1;
                    entries[entry] = Entry::Return { ordinal: returns };
                    let call = call_of_op.get(event.op).copied().unwrap_or(SENTINEL);
                    if let Some(Entry::Call { ret, .. }) = entries.get_mut(call) {
                        *ret = Some(entry);
                    }
                }
            }
        }
        let next = (0..len).map(|i| (i + 1) % len).collect();
        let prev = (0..len).map(|i| (i + len - 1) % len).collect();
        Entries { entries, next, prev }
    }

    /// The first entry still in the list.
    pub(crate) fn first(&self) -> Option<usize> {
        self.after(SENTINEL)
    }

    /// The entry following `entry`, if any.
    pub(crate) fn after(&self, entry: usize) -> Option<usize> {
        self.next.get(entry).copied().filter(|&next| next != SENTINEL)
    }

    /// If `entry` is a call, the operation it calls and whether that
    /// operation returns within the list (is determinate).
    pub(crate) fn call(&self, entry: usize) -> Option<(usize, bool)> {
        match self.entries.get(entry) {
            Some(Entry::Call { op, ret }) => Some((*op, ret.is_some())),
            _ => None,
        }
    }

    /// If `entry` is a return, how many returns precede it, itself included,
    /// in the events the list was built from.
    pub(crate) fn return_ordinal(&self, entry: usize) -> Option<usize> {
        match self.entries.get(entry) {
            Some(Entry::Return { ordinal }) => Some(*ordinal),
            _ => None,
        }
    }

    /// Removes the call `entry` and its return, if it has one.
    pub(crate) fn lift(&mut self, entry: usize) {
        self.unlink(entry);
        if let Some(ret) = self.return_of(entry) {
            self.unlink(ret);
        }
    }

    /// Puts back a call lifted by the most recent [`lift`](Self::lift) that
    /// has not been undone yet.
    pub(crate) fn unlift(&mut self, entry: usize) {
        if let Some(ret) = self.return_of(entry) {
            self.relink(ret);
        }
        self.relink(entry);
    }

    fn return_of(&self, entry: usize) -> Option<usize> {
        match self.entries.get(entry) {
            Some(Entry::Call { ret, .. }) => *ret,
            _ => None,
        }
    }

    fn unlink(&mut self, entry: usize) {
        let (prev, next) = (self.prev[entry], self.next[entry]);
        self.next[prev] = next;
        self.prev[next] = prev;
    }

    fn relink(&mut self, entry: usize) {
        let (prev, next) = (self.prev[entry], self.next[entry]);
        self.next[prev] = entry;
        self.prev[next] = entry;
    }
}

#[cfg(test)]
mod tests {
    use super::Entries;
    use crate::timeline::{Event, EventKind};

    fn event(op: usize, kind: EventKind) -> Event {
        Event { op, kind }
    }

    fn walk(entries: &Entries) -> Vec<usize> {
        let mut seen = Vec::new();
        let mut cursor = entries.first();
        while let Some(entry) = cursor {
            seen.push(entry);
            cursor = entries.after(entry);
        }
        seen
    }

    #[test]
    fn lifting_removes_call_and_return_and_unlifting_restores_them() {
        use EventKind::{Call, Return};
        let events = [event(0, Call), event(1, Call), event(0, Return), event(1, Return)];
        let mut entries = Entries::new(&events);
        assert_eq!(entries.return_ordinal(4), Some(2));
        entries.lift(1);
        assert_eq!(walk(&entries), vec![2, 4]);
        entries.lift(2);
        assert_eq!(walk(&entries), Vec::<usize>::new());
        entries.unlift(2);
        entries.unlift(1);
        assert_eq!(walk(&entries), vec![1, 2, 3, 4]);
    }

    #[test]
    fn a_call_without_return_is_indeterminate() {
        let events = [event(0, EventKind::Call)];
        let entries = Entries::new(&events);
        assert_eq!(entries.call(1), Some((0, false)));
        assert_eq!(entries.return_ordinal(1), None);
    }
}
