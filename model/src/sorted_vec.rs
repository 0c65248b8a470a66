//! Small ordered sets and maps stored as one sorted `Vec`.
//!
//! Why: a spec's rule sets, reference sets and tags hold one to a few
//! entries, and std's B-tree allocates a whole eleven-slot leaf for the
//! first of them — about 1.6 KB of a security group's 2.2 KB were empty
//! slots (issue #19, memory per node). Every node holds every observed and
//! declared spec of its groups, so those slots add up to gigabytes at
//! 100,000 processes. [`SortedVecSet`] and [`SortedVecMap`] keep their
//! entries sorted and distinct in a `Vec` of exactly their length.
//!
//! They behave as `BTreeSet` and `BTreeMap` do where the code base relies
//! on it: iteration in order; the same `Eq`, `Ord`, `Hash` and `Debug`;
//! the same serialized forms (a sequence in order, a map in key order), so
//! stored entries, snapshots, API output and hash inputs stay
//! byte-identical. Lookups are O(log n) by binary search; inserts and
//! removals are O(n) (they shift the tail), which is fine for collections
//! of a handful of entries and wrong for big ones — use a B-tree there.
//! Built from an iterator or deserialized, input in any order is sorted
//! and deduplicated as the B-tree's `insert` would: a set keeps the first
//! of equal elements, a map the last value of a key.

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::hash::{Hash, Hasher};
use std::iter::Peekable;
use std::marker::PhantomData;

use serde::de::{MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An ordered set of distinct elements in one sorted `Vec` (see the module
/// doc: for small sets; inserts are O(n)).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct SortedVecSet<T> {
    /// Sorted ascending, no two equal.
    items: Vec<T>,
}

impl<T> SortedVecSet<T> {
    /// An empty set (no allocation).
    pub const fn new() -> Self {
        SortedVecSet { items: Vec::new() }
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The elements in ascending order.
    pub fn iter(&self) -> std::slice::Iter<'_, T> {
        self.items.iter()
    }

    /// The elements as a sorted slice.
    pub fn as_slice(&self) -> &[T] {
        &self.items
    }

    pub fn first(&self) -> Option<&T> {
        self.items.first()
    }

    pub fn last(&self) -> Option<&T> {
        self.items.last()
    }

    pub fn clear(&mut self) {
        self.items = Vec::new();
    }

    /// Keeps only the elements `keep` says yes to.
    pub fn retain(&mut self, keep: impl FnMut(&T) -> bool) {
        self.items.retain(keep);
        self.items.shrink_to_fit();
    }
}

impl<T: Ord> SortedVecSet<T> {
    fn position<Q>(&self, value: &Q) -> Result<usize, usize>
    where
        T: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.items.binary_search_by(|x| x.borrow().cmp(value))
    }

    pub fn contains<Q>(&self, value: &Q) -> bool
    where
        T: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.position(value).is_ok()
    }

    /// The element equal to `value`, if any.
    pub fn get<Q>(&self, value: &Q) -> Option<&T>
    where
        T: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.position(value).ok().map(|i| &self.items[i])
    }

    /// Adds `value`; false (and the set unchanged) if an equal one is
    /// already in it.
    pub fn insert(&mut self, value: T) -> bool {
        match self.position(&value) {
            Ok(_) => false,
            Err(at) => {
                self.items.reserve_exact(1);
                self.items.insert(at, value);
                true
            }
        }
    }

    /// Removes the element equal to `value`; whether there was one.
    pub fn remove<Q>(&mut self, value: &Q) -> bool
    where
        T: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.take(value).is_some()
    }

    /// Removes and returns the element equal to `value`.
    pub fn take<Q>(&mut self, value: &Q) -> Option<T>
    where
        T: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        let at = self.position(value).ok()?;
        let taken = self.items.remove(at);
        self.items.shrink_to_fit();
        Some(taken)
    }

    /// The elements of `self` not in `other`, in order.
    pub fn difference<'a>(&'a self, other: &'a Self) -> impl Iterator<Item = &'a T> + 'a {
        self.iter().filter(move |x| !other.contains(*x))
    }

    /// The elements of both, in order.
    pub fn intersection<'a>(&'a self, other: &'a Self) -> impl Iterator<Item = &'a T> + 'a {
        self.iter().filter(move |x| other.contains(*x))
    }

    /// The elements of either, in order, each once.
    pub fn union<'a>(&'a self, other: &'a Self) -> Union<'a, T> {
        Union {
            left: self.iter().peekable(),
            right: other.iter().peekable(),
        }
    }

    /// The elements of exactly one of the two, in order.
    pub fn symmetric_difference<'a>(&'a self, other: &'a Self) -> impl Iterator<Item = &'a T> + 'a {
        self.union(other)
            .filter(move |x| !(self.contains(*x) && other.contains(*x)))
    }

    pub fn is_subset(&self, other: &Self) -> bool {
        self.iter().all(|x| other.contains(x))
    }

    pub fn is_superset(&self, other: &Self) -> bool {
        other.is_subset(self)
    }

    pub fn is_disjoint(&self, other: &Self) -> bool {
        self.intersection(other).next().is_none()
    }

    /// A set of `items` in any order: sorted, the first of equal ones
    /// kept, no spare capacity.
    fn from_unsorted(mut items: Vec<T>) -> Self {
        items.sort(); // stable: equal elements keep their order
        items.dedup(); // keeps the first of each run
        items.shrink_to_fit();
        SortedVecSet { items }
    }
}

/// [`SortedVecSet::union`]'s iterator: a merge of two sorted sequences.
pub struct Union<'a, T> {
    left: Peekable<std::slice::Iter<'a, T>>,
    right: Peekable<std::slice::Iter<'a, T>>,
}

impl<'a, T: Ord> Iterator for Union<'a, T> {
    type Item = &'a T;

    fn next(&mut self) -> Option<&'a T> {
        let order = match (self.left.peek(), self.right.peek()) {
            (Some(l), Some(r)) => l.cmp(r),
            (Some(_), None) => Ordering::Less,
            (None, _) => Ordering::Greater,
        };
        match order {
            Ordering::Less => self.left.next(),
            Ordering::Greater => self.right.next(),
            Ordering::Equal => {
                self.right.next();
                self.left.next()
            }
        }
    }
}

impl<T> Default for SortedVecSet<T> {
    fn default() -> Self {
        SortedVecSet::new()
    }
}

impl<T: fmt::Debug> fmt::Debug for SortedVecSet<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

/// As `BTreeSet`'s: the length, then each element in order.
impl<T: Hash> Hash for SortedVecSet<T> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_usize(self.items.len());
        for item in &self.items {
            item.hash(state);
        }
    }
}

impl<T: Ord> FromIterator<T> for SortedVecSet<T> {
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> Self {
        SortedVecSet::from_unsorted(iter.into_iter().collect())
    }
}

impl<T: Ord> Extend<T> for SortedVecSet<T> {
    fn extend<I: IntoIterator<Item = T>>(&mut self, iter: I) {
        let mut items = std::mem::take(&mut self.items);
        items.extend(iter);
        *self = SortedVecSet::from_unsorted(items);
    }
}

impl<'a, T: Ord + Copy + 'a> Extend<&'a T> for SortedVecSet<T> {
    fn extend<I: IntoIterator<Item = &'a T>>(&mut self, iter: I) {
        self.extend(iter.into_iter().copied());
    }
}

impl<T: Ord, const N: usize> From<[T; N]> for SortedVecSet<T> {
    fn from(items: [T; N]) -> Self {
        SortedVecSet::from_unsorted(Vec::from(items))
    }
}

impl<T: Ord> From<Vec<T>> for SortedVecSet<T> {
    fn from(items: Vec<T>) -> Self {
        SortedVecSet::from_unsorted(items)
    }
}

impl<T: Ord> From<BTreeSet<T>> for SortedVecSet<T> {
    fn from(set: BTreeSet<T>) -> Self {
        // Already sorted and distinct; collecting from an exact-size
        // iterator allocates exactly.
        SortedVecSet {
            items: set.into_iter().collect(),
        }
    }
}

impl<T: Ord> From<SortedVecSet<T>> for BTreeSet<T> {
    fn from(set: SortedVecSet<T>) -> Self {
        set.into_iter().collect()
    }
}

impl<T> IntoIterator for SortedVecSet<T> {
    type Item = T;
    type IntoIter = std::vec::IntoIter<T>;

    fn into_iter(self) -> Self::IntoIter {
        self.items.into_iter()
    }
}

impl<'a, T> IntoIterator for &'a SortedVecSet<T> {
    type Item = &'a T;
    type IntoIter = std::slice::Iter<'a, T>;

    fn into_iter(self) -> Self::IntoIter {
        self.items.iter()
    }
}

/// A sequence in order, as `BTreeSet`'s.
impl<T: Serialize> Serialize for SortedVecSet<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(&self.items)
    }
}

/// Any sequence; sorted and deduplicated as `BTreeSet`'s would be.
impl<'de, T: Deserialize<'de> + Ord> Deserialize<'de> for SortedVecSet<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SeqVisitor<T>(PhantomData<T>);

        impl<'de, T: Deserialize<'de> + Ord> Visitor<'de> for SeqVisitor<T> {
            type Value = SortedVecSet<T>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a sequence")
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                // The size hint comes from the input: cap what it reserves.
                let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(SortedVecSet::from_unsorted(items))
            }
        }

        deserializer.deserialize_seq(SeqVisitor(PhantomData))
    }
}

/// An ordered map with distinct keys in one sorted `Vec` of pairs (see the
/// module doc: for small maps; inserts are O(n)).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct SortedVecMap<K, V> {
    /// Sorted ascending by key, no two keys equal.
    entries: Vec<(K, V)>,
}

impl<K, V> SortedVecMap<K, V> {
    /// An empty map (no allocation).
    pub const fn new() -> Self {
        SortedVecMap {
            entries: Vec::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entries in key order.
    pub fn iter(&self) -> MapIter<'_, K, V> {
        MapIter {
            inner: self.entries.iter(),
        }
    }

    /// The entries in key order, values mutable.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&K, &mut V)> {
        self.entries.iter_mut().map(|(k, v)| (&*k, v))
    }

    pub fn keys(&self) -> impl Iterator<Item = &K> {
        self.entries.iter().map(|(k, _)| k)
    }

    pub fn values(&self) -> impl Iterator<Item = &V> {
        self.entries.iter().map(|(_, v)| v)
    }

    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut V> {
        self.entries.iter_mut().map(|(_, v)| v)
    }

    pub fn into_keys(self) -> impl Iterator<Item = K> {
        self.entries.into_iter().map(|(k, _)| k)
    }

    pub fn into_values(self) -> impl Iterator<Item = V> {
        self.entries.into_iter().map(|(_, v)| v)
    }

    pub fn first_key_value(&self) -> Option<(&K, &V)> {
        self.entries.first().map(|(k, v)| (k, v))
    }

    pub fn last_key_value(&self) -> Option<(&K, &V)> {
        self.entries.last().map(|(k, v)| (k, v))
    }

    pub fn clear(&mut self) {
        self.entries = Vec::new();
    }

    /// Keeps only the entries `keep` says yes to.
    pub fn retain(&mut self, mut keep: impl FnMut(&K, &mut V) -> bool) {
        self.entries.retain_mut(|(k, v)| keep(k, v));
        self.entries.shrink_to_fit();
    }
}

impl<K: Ord, V> SortedVecMap<K, V> {
    fn position<Q>(&self, key: &Q) -> Result<usize, usize>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.entries.binary_search_by(|(k, _)| k.borrow().cmp(key))
    }

    pub fn get<Q>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.get_key_value(key).map(|(_, v)| v)
    }

    pub fn get_key_value<Q>(&self, key: &Q) -> Option<(&K, &V)>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        let (k, v) = &self.entries[self.position(key).ok()?];
        Some((k, v))
    }

    pub fn get_mut<Q>(&mut self, key: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        let at = self.position(key).ok()?;
        Some(&mut self.entries[at].1)
    }

    pub fn contains_key<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.position(key).is_ok()
    }

    /// Sets `key` to `value`; the value it had, if any (the key itself is
    /// kept, as `BTreeMap`'s is).
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        match self.position(&key) {
            Ok(at) => Some(std::mem::replace(&mut self.entries[at].1, value)),
            Err(at) => {
                self.entries.reserve_exact(1);
                self.entries.insert(at, (key, value));
                None
            }
        }
    }

    /// Removes `key`; the value it had, if any.
    pub fn remove<Q>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.remove_entry(key).map(|(_, v)| v)
    }

    pub fn remove_entry<Q>(&mut self, key: &Q) -> Option<(K, V)>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        let at = self.position(key).ok()?;
        let removed = self.entries.remove(at);
        self.entries.shrink_to_fit();
        Some(removed)
    }

    /// The value of `key`, inserted by `make` first if the map has none.
    pub fn get_or_insert_with(&mut self, key: K, make: impl FnOnce() -> V) -> &mut V {
        let at = match self.position(&key) {
            Ok(at) => at,
            Err(at) => {
                self.entries.reserve_exact(1);
                self.entries.insert(at, (key, make()));
                at
            }
        };
        &mut self.entries[at].1
    }

    /// A map of `entries` in any order: sorted by key, the last value of a
    /// key kept, no spare capacity.
    fn from_unsorted(mut entries: Vec<(K, V)>) -> Self {
        // Stable: entries of one key keep their order, so the last of a
        // run is the last given.
        entries.sort_by(|(a, _), (b, _)| a.cmp(b));
        let mut kept: Vec<(K, V)> = Vec::with_capacity(entries.len());
        for (k, v) in entries {
            match kept.last_mut() {
                Some(last) if last.0 == k => last.1 = v,
                _ => kept.push((k, v)),
            }
        }
        kept.shrink_to_fit();
        SortedVecMap { entries: kept }
    }
}

/// [`SortedVecMap::iter`]'s iterator: `(&K, &V)` pairs in key order.
#[derive(Clone)]
pub struct MapIter<'a, K, V> {
    inner: std::slice::Iter<'a, (K, V)>,
}

impl<'a, K, V> Iterator for MapIter<'a, K, V> {
    type Item = (&'a K, &'a V);

    fn next(&mut self) -> Option<Self::Item> {
        self.inner.next().map(|(k, v)| (k, v))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

impl<K, V> DoubleEndedIterator for MapIter<'_, K, V> {
    fn next_back(&mut self) -> Option<Self::Item> {
        self.inner.next_back().map(|(k, v)| (k, v))
    }
}

impl<K, V> ExactSizeIterator for MapIter<'_, K, V> {}

impl<K, V> Default for SortedVecMap<K, V> {
    fn default() -> Self {
        SortedVecMap::new()
    }
}

impl<K: fmt::Debug, V: fmt::Debug> fmt::Debug for SortedVecMap<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// As `BTreeMap`'s: the length, then each key and value in order.
impl<K: Hash, V: Hash> Hash for SortedVecMap<K, V> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_usize(self.entries.len());
        for (k, v) in &self.entries {
            k.hash(state);
            v.hash(state);
        }
    }
}

impl<K: Ord, V, Q> std::ops::Index<&Q> for SortedVecMap<K, V>
where
    K: Borrow<Q>,
    Q: Ord + ?Sized,
{
    type Output = V;

    /// The value of `key`; panics if there is none, as `BTreeMap`'s does.
    fn index(&self, key: &Q) -> &V {
        match self.get(key) {
            Some(v) => v,
            None => panic!("no entry found for key"),
        }
    }
}

impl<K: Ord, V> FromIterator<(K, V)> for SortedVecMap<K, V> {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        SortedVecMap::from_unsorted(iter.into_iter().collect())
    }
}

impl<K: Ord, V> Extend<(K, V)> for SortedVecMap<K, V> {
    fn extend<I: IntoIterator<Item = (K, V)>>(&mut self, iter: I) {
        let mut entries = std::mem::take(&mut self.entries);
        entries.extend(iter);
        *self = SortedVecMap::from_unsorted(entries);
    }
}

impl<'a, K: Ord + Clone, V: Clone> Extend<(&'a K, &'a V)> for SortedVecMap<K, V> {
    fn extend<I: IntoIterator<Item = (&'a K, &'a V)>>(&mut self, iter: I) {
        self.extend(iter.into_iter().map(|(k, v)| (k.clone(), v.clone())));
    }
}

impl<K: Ord, V, const N: usize> From<[(K, V); N]> for SortedVecMap<K, V> {
    fn from(entries: [(K, V); N]) -> Self {
        SortedVecMap::from_unsorted(Vec::from(entries))
    }
}

impl<K: Ord, V> From<BTreeMap<K, V>> for SortedVecMap<K, V> {
    fn from(map: BTreeMap<K, V>) -> Self {
        // Already sorted and distinct; exact-size, so allocated exactly.
        SortedVecMap {
            entries: map.into_iter().collect(),
        }
    }
}

impl<K: Ord, V> From<SortedVecMap<K, V>> for BTreeMap<K, V> {
    fn from(map: SortedVecMap<K, V>) -> Self {
        map.into_iter().collect()
    }
}

impl<K, V> IntoIterator for SortedVecMap<K, V> {
    type Item = (K, V);
    type IntoIter = std::vec::IntoIter<(K, V)>;

    fn into_iter(self) -> Self::IntoIter {
        self.entries.into_iter()
    }
}

impl<'a, K, V> IntoIterator for &'a SortedVecMap<K, V> {
    type Item = (&'a K, &'a V);
    type IntoIter = MapIter<'a, K, V>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// A map in key order, as `BTreeMap`'s.
impl<K: Serialize, V: Serialize> Serialize for SortedVecMap<K, V> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.iter())
    }
}

/// Any map; sorted by key, the last value of a repeated key kept, as
/// `BTreeMap`'s would be.
impl<'de, K: Deserialize<'de> + Ord, V: Deserialize<'de>> Deserialize<'de> for SortedVecMap<K, V> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EntriesVisitor<K, V>(PhantomData<(K, V)>);

        impl<'de, K: Deserialize<'de> + Ord, V: Deserialize<'de>> Visitor<'de> for EntriesVisitor<K, V> {
            type Value = SortedVecMap<K, V>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                // The size hint comes from the input: cap what it reserves.
                let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(0).min(4096));
                while let Some(entry) = map.next_entry()? {
                    entries.push(entry);
                }
                Ok(SortedVecMap::from_unsorted(entries))
            }
        }

        deserializer.deserialize_map(EntriesVisitor(PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::hash_map::DefaultHasher;

    fn hash_of(value: &impl Hash) -> u64 {
        let mut h = DefaultHasher::new();
        value.hash(&mut h);
        h.finish()
    }

    #[test]
    fn a_set_keeps_its_elements_sorted_and_distinct() {
        let mut set = SortedVecSet::from([5, 1, 3, 1]);
        assert_eq!(set.as_slice(), &[1, 3, 5]);
        assert!(set.insert(4));
        assert!(!set.insert(3));
        assert!(set.remove(&1));
        assert!(!set.remove(&1));
        assert_eq!(set.iter().copied().collect::<Vec<_>>(), vec![3, 4, 5]);
        assert!(set.contains(&4) && !set.contains(&2));
        set.extend([2, 9, 2]);
        assert_eq!(set.as_slice(), &[2, 3, 4, 5, 9]);
    }

    #[test]
    fn set_operations_answer_as_the_b_tree_s() {
        let (a, b) = ([1, 2, 4, 7], [2, 3, 7, 8]);
        let (va, vb) = (SortedVecSet::from(a), SortedVecSet::from(b));
        let (ba, bb) = (BTreeSet::from(a), BTreeSet::from(b));
        let v = |it: &mut dyn Iterator<Item = &i32>| it.copied().collect::<Vec<_>>();
        assert_eq!(v(&mut va.difference(&vb)), v(&mut ba.difference(&bb)));
        assert_eq!(v(&mut va.union(&vb)), v(&mut ba.union(&bb)));
        assert_eq!(v(&mut va.intersection(&vb)), v(&mut ba.intersection(&bb)));
        assert_eq!(
            v(&mut va.symmetric_difference(&vb)),
            v(&mut ba.symmetric_difference(&bb))
        );
        assert_eq!(va.is_disjoint(&vb), ba.is_disjoint(&bb));
    }

    #[test]
    fn a_map_keeps_the_last_value_of_a_key() {
        let map = SortedVecMap::from([("b", 1), ("a", 2), ("b", 3)]);
        let btree = BTreeMap::from([("b", 1), ("a", 2), ("b", 3)]);
        assert_eq!(
            map.iter().collect::<Vec<_>>(),
            btree.iter().collect::<Vec<_>>()
        );
        let mut map = map;
        assert_eq!(map.insert("a", 5), Some(2));
        assert_eq!(map.insert("c", 6), None);
        assert_eq!(map.remove("b"), Some(3));
        assert_eq!(map["a"], 5);
        assert_eq!(map.get("b"), None);
        assert_eq!(format!("{map:?}"), r#"{"a": 5, "c": 6}"#);
    }

    #[test]
    fn order_hash_and_debug_agree_with_the_b_tree_s() {
        let sets = [vec![], vec![1], vec![1, 2], vec![2], vec![1, 3]];
        for x in &sets {
            let (vx, bx) = (
                SortedVecSet::from(x.clone()),
                BTreeSet::from_iter(x.clone()),
            );
            assert_eq!(format!("{vx:?}"), format!("{bx:?}"));
            assert_eq!(hash_of(&vx), hash_of(&bx));
            for y in &sets {
                let (vy, by) = (
                    SortedVecSet::from(y.clone()),
                    BTreeSet::from_iter(y.clone()),
                );
                assert_eq!(vx.cmp(&vy), bx.cmp(&by), "{x:?} vs {y:?}");
                assert_eq!(vx == vy, bx == by);
            }
        }
        let maps = [
            vec![],
            vec![(1, "a")],
            vec![(1, "b")],
            vec![(1, "a"), (2, "a")],
        ];
        for x in &maps {
            let vx = SortedVecMap::from_iter(x.clone());
            let bx = BTreeMap::from_iter(x.clone());
            assert_eq!(format!("{vx:?}"), format!("{bx:?}"));
            assert_eq!(hash_of(&vx), hash_of(&bx));
            for y in &maps {
                let vy = SortedVecMap::from_iter(y.clone());
                let by = BTreeMap::from_iter(y.clone());
                assert_eq!(vx.cmp(&vy), bx.cmp(&by), "{x:?} vs {y:?}");
            }
        }
    }

    #[test]
    fn json_is_the_b_tree_s_and_unsorted_input_is_accepted() {
        let set = SortedVecSet::from(["z".to_string(), "a".to_string()]);
        let btree = BTreeSet::from(["z".to_string(), "a".to_string()]);
        let json = serde_json::to_string(&set).unwrap();
        assert_eq!(json, serde_json::to_string(&btree).unwrap());
        let back: SortedVecSet<String> = serde_json::from_str(r#"["z","a","z"]"#).unwrap();
        assert_eq!(back, set);

        let map = SortedVecMap::from([("k2".to_string(), 1), ("k1".to_string(), 2)]);
        let btree = BTreeMap::from([("k2".to_string(), 1), ("k1".to_string(), 2)]);
        assert_eq!(
            serde_json::to_string(&map).unwrap(),
            serde_json::to_string(&btree).unwrap()
        );
        let back: SortedVecMap<String, i32> =
            serde_json::from_str(r#"{"k2":7,"k1":2,"k2":1}"#).unwrap();
        let btree_back: BTreeMap<String, i32> =
            serde_json::from_str(r#"{"k2":7,"k1":2,"k2":1}"#).unwrap();
        assert_eq!(back, map);
        assert_eq!(BTreeMap::from(back), btree_back);
    }

    #[test]
    fn built_from_an_iterator_it_keeps_no_spare_capacity() {
        let set: SortedVecSet<u32> = (0..100).filter(|x| x % 3 == 0).collect();
        assert_eq!(set.items.capacity(), set.len());
        let map: SortedVecMap<u32, u32> = (0..10).map(|x| (x % 4, x)).collect();
        assert_eq!(map.entries.capacity(), map.len());
        assert_eq!(map.get(&1), Some(&9));
        let json: SortedVecSet<u32> = serde_json::from_str("[3,1,2,1]").unwrap();
        assert_eq!(json.items.capacity(), 3);
    }
}
