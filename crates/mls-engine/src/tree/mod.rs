//! The ratchet tree (RFC 9420 §4, §7): tree math, nodes, hashes, validation and TreeKEM.
