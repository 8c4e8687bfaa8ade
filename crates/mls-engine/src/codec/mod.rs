//! RFC 9420 wire structs in the TLS presentation language (§2.1), encoded with `tls_codec`.
