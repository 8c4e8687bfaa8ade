//! The key schedule (RFC 9420 §8) and the secret tree (§9).
