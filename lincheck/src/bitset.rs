//! A fixed-size set of small integers, used as the "which operations are
//! already linearized" half of the search's memo key.

/// A set of operation indices below a fixed capacity, one bit each.
///
/// Hashing and equality look at the words only; all sets in one search have
/// the same capacity, so equal words mean equal sets.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Bitset {
    words: Box<[u64]>,
}

impl Bitset {
    /// An empty set able to hold `0..capacity`.
    pub(crate) fn new(capacity: usize) -> Self {
        Bitset { words: vec![0; capacity.div_ceil(64)].into_boxed_slice() }
    }

    /// Adds `index`. Indices at or beyond the capacity are ignored: callers
    /// size the set from the same list they index into.
    pub(crate) fn insert(&mut self, index: usize) {
        if let Some(word) = self.words.get_mut(index / 64) {
            *word |= 1 << (index % 64);
        }
    }

    /// Removes `index`.
    pub(crate) fn remove(&mut self, index: usize) {
        if let Some(word) = self.words.get_mut(index / 64) {
            *word &= !(1 << (index % 64));
        }
    }

    /// Whether `index` is in the set.
    #[cfg(test)]
    pub(crate) fn contains(&self, index: usize) -> bool {
        self.words.get(index / 64).is_some_and(|word| word & (1 << (index % 64)) != 0)
    }
}

#[cfg(test)]
mod tests {
    use super::Bitset;

    #[test]
    fn holds_exactly_the_inserted_indices_across_word_boundaries() {
        let mut set = Bitset::new(130);
        for index in [0, 63, 64, 129] {
            set.insert(index);
        }
        set.remove(63);
        let members: Vec<usize> = (0..130).filter(|&i| set.contains(i)).collect();
        assert_eq!(members, vec![0, 64, 129]);
    }

    #[test]
    fn sets_with_the_same_members_are_equal_regardless_of_history() {
        let mut a = Bitset::new(70);
        let mut b = Bitset::new(70);
        a.insert(3);
        a.insert(68);
        a.remove(68);
        b.insert(3);
        assert_eq!(a, b);
    }
}
