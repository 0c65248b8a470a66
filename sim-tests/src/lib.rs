//! Deterministic turmoil simulations of whole Canon clusters under network
//! chaos: every fault comes from a seed and every failure replays from it.
