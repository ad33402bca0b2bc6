//! How contract keys, spaces and lock names become Redis keys.
//!
//! ```text
//! entry        {prefix}:{<space>}:e:<id>        hash {v = value, ver = version}
//! scan index   {prefix}:{<space>}:i             sorted set of ids, every score 0
//! schedule     {prefix}:{<space>}:x             sorted set of ids by expiry deadline
//! schedule     {prefix}:{<space>}:s:w|c|d|p|o   a space's schedule (schedule_common.lua)
//! lock lease   {prefix}:lock:{<name>}:lease     token:owner id, expires with the lease
//! lock channel {prefix}:lock:{<name>}:released  pub/sub channel of releases
//! ```
//!
//! (`{prefix}` here is the configured prefix itself, written without braces.)
//!
//! **Hash tags.** Redis Cluster hashes only the part of a key between the
//! first `{` and the first `}` after it. Every key of one space carries the
//! same tag, `{<space>}`, so a space lives in one slot and every script that
//! touches an entry and its space's index (or scans the space) touches one
//! slot; the same goes for the keys of one lock. The prefix may not contain
//! braces (the configuration refuses it), so the tag is always the first
//! brace pair.
//!
//! **Injectivity.** Inside the tag the space (or lock name) is escaped:
//! `%` becomes `%25`, `{` becomes `%7B` and `}` becomes `%7D`. Escaping `%`
//! makes the escape reversible, and since no `}` survives inside, the tag
//! ends exactly where the space ends. The id follows the tag's fixed
//! `:e:` suffix verbatim, so two different `(space, id)` pairs always give
//! two different keys, whatever characters they hold (`:`, `*`, `{`,
//! newlines...). Nothing here is ever a pattern: keys are passed to Redis
//! as binary-safe arguments, never matched with `KEYS` or `SCAN`.

/// Builds every Redis key and channel name of one store from its prefix.
#[derive(Debug, Clone)]
pub(crate) struct KeyLayout {
    prefix: String,
}

impl KeyLayout {
    /// A layout under `prefix`, which the configuration has checked to hold
    /// no braces.
    pub(crate) fn new(prefix: &str) -> KeyLayout {
        KeyLayout { prefix: prefix.to_owned() }
    }

    /// `{prefix}:{<space>}`: the part every key of a space starts with.
    fn space_tag(&self, space: &str) -> String {
        let mut key = String::with_capacity(self.prefix.len() + space.len() + 8);
        key.push_str(&self.prefix);
        key.push_str(":{");
        push_escaped(&mut key, space);
        key.push('}');
        key
    }

    /// The key prefix of every entry of `space`; an entry's key is this
    /// followed by its id. The scan script builds entry keys this way.
    pub(crate) fn entry_prefix(&self, space: &str) -> String {
        let mut key = self.space_tag(space);
        key.push_str(":e:");
        key
    }

    /// The hash holding the entry `(space, id)`.
    pub(crate) fn entry(&self, space: &str, id: &str) -> String {
        let mut key = self.entry_prefix(space);
        key.push_str(id);
        key
    }

    /// The sorted set indexing the ids of `space`.
    pub(crate) fn index(&self, space: &str) -> String {
        let mut key = self.space_tag(space);
        key.push_str(":i");
        key
    }

    /// The sorted set of the ids of `space` written with a TTL, scored by
    /// deadline, from which expired ids are unindexed.
    pub(crate) fn schedule(&self, space: &str) -> String {
        let mut key = self.space_tag(space);
        key.push_str(":x");
        key
    }

    /// The five keys of `space`'s schedule, in the order the schedule
    /// scripts take them (`scripts/schedule_common.lua`): waiting ids by
    /// due time, claimed ids by lease deadline, due times, payloads, claim
    /// owners.
    pub(crate) fn timers(&self, space: &str) -> [String; 5] {
        let tag = self.space_tag(space);
        [":s:w", ":s:c", ":s:d", ":s:p", ":s:o"].map(|suffix| format!("{tag}{suffix}"))
    }

    fn lock_base(&self, name: &str) -> String {
        let mut key = String::with_capacity(self.prefix.len() + name.len() + 24);
        key.push_str(&self.prefix);
        key.push_str(":lock:{");
        push_escaped(&mut key, name);
        key.push('}');
        key
    }

    /// The lease of lock `name`.
    pub(crate) fn lock_lease(&self, name: &str) -> String {
        self.lock_base(name) + ":lease"
    }

    /// The line of waiters for lock `name`: waiter ids scored by ticket.
    pub(crate) fn lock_line(&self, name: &str) -> String {
        self.lock_base(name) + ":line"
    }

    /// Until when each waiter in lock `name`'s line is live: waiter ids
    /// scored by the server's clock, in milliseconds.
    pub(crate) fn lock_live(&self, name: &str) -> String {
        self.lock_base(name) + ":live"
    }

    /// The pub/sub channel on which releases of lock `name` are announced.
    pub(crate) fn lock_channel(&self, name: &str) -> String {
        self.lock_base(name) + ":released"
    }

    /// A `SCAN MATCH` pattern for every key of this store.
    pub(crate) fn store_pattern(&self) -> String {
        let mut pattern = String::new();
        push_glob_escaped(&mut pattern, &self.prefix);
        pattern.push_str(":*");
        pattern
    }

    /// A `SCAN MATCH` pattern for the keys of the locks whose names start
    /// with `name_prefix`: escaping is per character, with escapes no
    /// other character's spelling begins, so a name starts with the prefix
    /// exactly when its escaped form starts with the escaped prefix.
    pub(crate) fn locks_pattern(&self, name_prefix: &str) -> String {
        let mut escaped = String::new();
        push_escaped(&mut escaped, name_prefix);
        let mut pattern = String::new();
        push_glob_escaped(&mut pattern, &self.prefix);
        pattern.push_str(":lock:{");
        push_glob_escaped(&mut pattern, &escaped);
        pattern.push('*');
        pattern
    }

    /// When `key` is a space's expiry schedule in this layout: that space's
    /// index, the schedule, and the space's entry-key prefix, as
    /// [`index`](Self::index), [`schedule`](Self::schedule) and
    /// [`entry_prefix`](Self::entry_prefix) spell them. `None` for every
    /// other key (an entry whose id ends in `}:x` included: its tag would
    /// hold a `}`).
    pub(crate) fn schedule_keys(&self, key: &str) -> Option<(String, String, String)> {
        let tag = key.strip_suffix(":x")?;
        let escaped = tag.strip_prefix(self.prefix.as_str())?.strip_prefix(":{")?.strip_suffix('}')?;
        if escaped.contains(['{', '}']) {
            return None;
        }
        Some((format!("{tag}:i"), key.to_owned(), format!("{tag}:e:")))
    }
}

/// `text` with every character `SCAN MATCH` treats as special escaped.
fn push_glob_escaped(out: &mut String, text: &str) {
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
}

/// Appends `text` with `%`, `{` and `}` percent-escaped.
fn push_escaped(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '%' => out.push_str("%25"),
            '{' => out.push_str("%7B"),
            '}' => out.push_str("%7D"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    /// The part of `key` Redis Cluster hashes: between the first `{` and the
    /// first `}` after it, if that is non-empty; else the whole key.
    fn hash_tag(key: &str) -> &str {
        if let Some(open) = key.find('{')
            && let Some(len) = key[open + 1..].find('}')
            && len > 0
        {
            return &key[open + 1..open + 1 + len];
        }
        key
    }

    const SPACES: &[&str] = &["s", "a:b", "a", "{a}", "a}", "{", "}", "%7B", "%", "a%7Db", "a b", "a\nb", "*?[]"];
    const IDS: &[&str] = &["c", "b:c", "}:e:x", ":e:", "{x}", "*", "?", "[a]", "\n", "%", "é", "e:"];

    #[test]
    fn schedules_are_recognised_and_nothing_else() {
        let layout = KeyLayout::new("statekit");
        for space in SPACES {
            let found = layout.schedule_keys(&layout.schedule(space));
            let expected = (layout.index(space), layout.schedule(space), layout.entry_prefix(space));
            assert_eq!(found, Some(expected), "{space:?}");
            assert_eq!(layout.schedule_keys(&layout.index(space)), None);
            for id in IDS.iter().chain(&["x", "}:x", "a}:x"]) {
                assert_eq!(layout.schedule_keys(&layout.entry(space, id)), None, "{space:?} / {id:?}");
            }
        }
        assert_eq!(layout.schedule_keys(&layout.lock_lease("x")), None);
        assert_eq!(KeyLayout::new("other").schedule_keys(&layout.schedule("s")), None);
    }

    #[test]
    fn scan_patterns_escape_glob_characters() {
        let layout = KeyLayout::new("a*b");
        assert_eq!(layout.store_pattern(), "a\\*b:*");
        assert_eq!(layout.locks_pattern("j?{"), "a\\*b:lock:{j\\?%7B*");
    }

    #[test]
    fn every_key_of_a_space_shares_one_hash_tag() {
        let layout = KeyLayout::new("statekit");
        for space in SPACES {
            let tag = hash_tag(&layout.index(space)).to_owned();
            assert!(!tag.contains('}') && !tag.contains('{'), "{space:?} gave tag {tag:?}");
            assert_eq!(hash_tag(&layout.schedule(space)), tag);
            for id in IDS {
                assert_eq!(hash_tag(&layout.entry(space, id)), tag, "{space:?} / {id:?}");
            }
            assert_eq!(hash_tag(&layout.entry_prefix(space)), tag);
        }
    }

    #[test]
    fn the_encoding_is_injective() {
        let layout = KeyLayout::new("statekit");
        let mut seen = HashSet::new();
        for space in SPACES {
            assert!(seen.insert(layout.index(space)), "index of {space:?} collided");
            assert!(seen.insert(layout.schedule(space)), "schedule of {space:?} collided");
            for id in IDS {
                assert!(seen.insert(layout.entry(space, id)), "entry ({space:?}, {id:?}) collided");
            }
        }
        let names: HashSet<&str> = SPACES.iter().chain(IDS).copied().collect();
        for name in names {
            let keys =
                [layout.lock_lease(name), layout.lock_line(name), layout.lock_live(name), layout.lock_channel(name)];
            for key in keys {
                assert!(seen.insert(key), "a key of lock {name:?} collided");
            }
        }
    }

    #[test]
    fn keys_of_one_lock_share_a_tag_apart_from_entries() {
        let layout = KeyLayout::new("p");
        let name = "jobs:{nightly}";
        assert_eq!(layout.lock_lease(name), "p:lock:{jobs:%7Bnightly%7D}:lease");
        assert_eq!(hash_tag(&layout.lock_line(name)), hash_tag(&layout.lock_lease(name)));
        assert_eq!(hash_tag(&layout.lock_live(name)), hash_tag(&layout.lock_lease(name)));
        assert_eq!(hash_tag(&layout.lock_channel(name)), hash_tag(&layout.lock_lease(name)));
        assert_eq!(layout.entry("a:b", "c"), "p:{a:b}:e:c");
        assert_eq!(layout.entry("a", "b:c"), "p:{a}:e:b:c");
    }
}
