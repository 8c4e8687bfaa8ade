//! Malformed input never panics a decoder, never decodes to a value that encodes differently,
//! and never makes a decoder allocate by a length field the input cannot back.
//!
//! Inputs: every field of `messages.json`, mutated by truncation, appended bytes, bit flips
//! and varint-header overwrites; plus huge length prefixes on tiny inputs, fed to every
//! decoder. Each decode must either fail or yield a value that re-encodes to exactly the
//! input. The largest single allocation made while decoding is measured by a counting global
//! allocator and must stay within a small multiple of the input's length.
//!
//! Set `VMLS_BAD_INPUT_CASES` to the number of vector cases to bit-flip (default 30; the
//! truncation and append checks always cover every case).

#[path = "support/official_vectors.rs"]
mod official_vectors;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};

use mls_engine::codec::{
    decode_exact, encode, Add, ApplicationIdExtension, AuthenticatedContent, Capabilities, Commit,
    ContentType, Credential, DeserializeBytes, Extension, ExternalInit, ExternalPubExtension,
    ExternalSendersExtension, FramedContent, GroupContext, GroupContextExtensions, GroupInfo,
    GroupSecrets, KeyPackage, LeafNode, MlsMessage, Node, PreSharedKey, PreSharedKeyID,
    PrivateMessage, PrivateMessageContent, Proposal, ProposalOrRef, PublicMessage,
    RatchetTreeExtension, ReInit, Remove, RequiredCapabilitiesExtension, SenderData, Serialize,
    Update, UpdatePath, Welcome,
};

// ---------------------------------------------------------------------------------------------
// Allocation measurement.

/// The system allocator, recording the largest single request made on each thread.
struct Counting;

thread_local! {
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

fn note(size: usize) {
    let _ = LARGEST.try_with(|largest| largest.set(largest.get().max(size)));
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged; the only
// extra work is a thread-local `Cell` update, which neither allocates nor unwinds.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: forwarded contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: forwarded contract.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        // SAFETY: forwarded contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded contract.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Runs `f` and returns its result with the largest allocation it made on this thread.
fn measured<T>(f: impl FnOnce() -> T) -> (T, usize) {
    LARGEST.with(|largest| largest.set(0));
    let out = f();
    (out, LARGEST.with(Cell::get))
}

/// The most a decoder may allocate at once for an input of `len` bytes: a fixed slack plus
/// a generous linear factor (in-memory structs are larger than their encodings), far below
/// what any length field of the input could ask for.
fn allocation_bound(len: usize) -> usize {
    64 * 1024 + 1024 * len
}

// ---------------------------------------------------------------------------------------------
// Decoders.

/// What one decoder made of one input.
enum Decoded {
    /// Refused.
    Refused,
    /// Decoded; the value re-encodes to these bytes (or fails to, with the reason).
    Accepted(Result<Vec<u8>, String>),
}

type Decoder = fn(&[u8]) -> Decoded;

fn typed<T: DeserializeBytes + Serialize>(bytes: &[u8]) -> Decoded {
    match decode_exact::<T>(bytes) {
        Err(_) => Decoded::Refused,
        Ok(value) => Decoded::Accepted(encode(&value).map_err(|e| e.to_string())),
    }
}

fn private_content(content_type: ContentType, bytes: &[u8]) -> Decoded {
    match PrivateMessageContent::decode(content_type, bytes) {
        Err(_) => Decoded::Refused,
        Ok(value) => Decoded::Accepted(value.to_bytes().map_err(|e| e.to_string())),
    }
}

/// Every decoder of the codec, by name.
fn all_decoders() -> Vec<(&'static str, Decoder)> {
    vec![
        ("MlsMessage", typed::<MlsMessage>),
        ("PublicMessage", typed::<PublicMessage>),
        ("PrivateMessage", typed::<PrivateMessage>),
        ("AuthenticatedContent", typed::<AuthenticatedContent>),
        ("FramedContent", typed::<FramedContent>),
        ("SenderData", typed::<SenderData>),
        ("PrivateMessageContent(application)", |b| {
            private_content(ContentType::Application, b)
        }),
        ("PrivateMessageContent(proposal)", |b| {
            private_content(ContentType::Proposal, b)
        }),
        ("PrivateMessageContent(commit)", |b| {
            private_content(ContentType::Commit, b)
        }),
        ("Welcome", typed::<Welcome>),
        ("GroupInfo", typed::<GroupInfo>),
        ("GroupSecrets", typed::<GroupSecrets>),
        ("GroupContext", typed::<GroupContext>),
        ("KeyPackage", typed::<KeyPackage>),
        ("LeafNode", typed::<LeafNode>),
        ("Credential", typed::<Credential>),
        ("Capabilities", typed::<Capabilities>),
        ("UpdatePath", typed::<UpdatePath>),
        ("Vec<Option<Node>>", typed::<Vec<Option<Node>>>),
        ("RatchetTreeExtension", typed::<RatchetTreeExtension>),
        ("Vec<Extension>", typed::<Vec<Extension>>),
        ("ApplicationIdExtension", typed::<ApplicationIdExtension>),
        (
            "RequiredCapabilitiesExtension",
            typed::<RequiredCapabilitiesExtension>,
        ),
        ("ExternalPubExtension", typed::<ExternalPubExtension>),
        (
            "ExternalSendersExtension",
            typed::<ExternalSendersExtension>,
        ),
        ("Proposal", typed::<Proposal>),
        ("ProposalOrRef", typed::<ProposalOrRef>),
        ("Add", typed::<Add>),
        ("Update", typed::<Update>),
        ("Remove", typed::<Remove>),
        ("PreSharedKey", typed::<PreSharedKey>),
        ("PreSharedKeyID", typed::<PreSharedKeyID>),
        ("ReInit", typed::<ReInit>),
        ("ExternalInit", typed::<ExternalInit>),
        ("GroupContextExtensions", typed::<GroupContextExtensions>),
        ("Commit", typed::<Commit>),
    ]
}

/// The structure of each `messages.json` field.
const FIELDS: [(&str, Decoder); 17] = [
    ("mls_welcome", typed::<MlsMessage>),
    ("mls_group_info", typed::<MlsMessage>),
    ("mls_key_package", typed::<MlsMessage>),
    ("ratchet_tree", typed::<RatchetTreeExtension>),
    ("group_secrets", typed::<GroupSecrets>),
    ("add_proposal", typed::<Add>),
    ("update_proposal", typed::<Update>),
    ("remove_proposal", typed::<Remove>),
    ("pre_shared_key_proposal", typed::<PreSharedKey>),
    ("re_init_proposal", typed::<ReInit>),
    ("external_init_proposal", typed::<ExternalInit>),
    (
        "group_context_extensions_proposal",
        typed::<GroupContextExtensions>,
    ),
    ("commit", typed::<Commit>),
    ("public_message_application", typed::<MlsMessage>),
    ("public_message_proposal", typed::<MlsMessage>),
    ("public_message_commit", typed::<MlsMessage>),
    ("private_message", typed::<MlsMessage>),
];

// ---------------------------------------------------------------------------------------------
// The checks.

/// How a checked input must come out.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// Refused, or decoded to a value that re-encodes to the input.
    RefusedOrExact,
    /// Refused.
    Refused,
}

/// Decodes `input` with `decoder` and returns a description of any violation.
fn check(name: &str, decoder: Decoder, input: &[u8], expect: Expect) -> Option<String> {
    let (result, largest) = measured(|| catch_unwind(AssertUnwindSafe(|| decoder(input))));
    let describe = |what: &str| Some(format!("{name}: {what} on input {}", hex::encode(input)));
    let decoded = match result {
        Err(_) => return describe("panicked"),
        Ok(decoded) => decoded,
    };
    if largest > allocation_bound(input.len()) {
        return describe(&format!("allocated {largest} bytes at once"));
    }
    match (decoded, expect) {
        (Decoded::Refused, _) => None,
        (Decoded::Accepted(_), Expect::Refused) => describe("accepted"),
        (Decoded::Accepted(Err(e)), _) => describe(&format!("decoded but cannot re-encode: {e}")),
        (Decoded::Accepted(Ok(again)), _) if again != input => {
            describe(&format!("decoded but re-encodes to {}", hex::encode(again)))
        }
        (Decoded::Accepted(Ok(_)), _) => None,
    }
}

fn vectors() -> Vec<serde_json::Value> {
    official_vectors::cases("messages.json")
}

/// `(field, decoder, bytes)` of the first `cases` cases.
fn fields(cases: usize) -> Vec<(&'static str, Decoder, Vec<u8>)> {
    let mut out = Vec::new();
    for case in vectors().iter().take(cases) {
        for (field, decoder) in FIELDS {
            let hex = case[field].as_str().expect("field is a hex string");
            out.push((field, decoder, hex::decode(hex).expect("field is hex")));
        }
    }
    out
}

fn fail_on(failures: Vec<String>) {
    if !failures.is_empty() {
        let shown: Vec<&String> = failures.iter().take(10).collect();
        panic!("{} failures, first ones:\n{shown:#?}", failures.len());
    }
}

fn bit_flip_cases() -> usize {
    std::env::var("VMLS_BAD_INPUT_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30)
}

#[test]
fn vectors_decode_exactly() {
    let mut failures = Vec::new();
    for (field, decoder, bytes) in fields(usize::MAX) {
        let (decoded, _) = measured(|| decoder(&bytes));
        match decoded {
            Decoded::Accepted(Ok(again)) if again == bytes => {}
            _ => failures.push(format!("{field}: the vector itself does not round-trip")),
        }
    }
    fail_on(failures);
}

#[test]
fn truncated_and_extended_inputs_are_refused() {
    let mut failures = Vec::new();
    for (field, decoder, bytes) in fields(usize::MAX) {
        // Every encoding here is prefix-free: no proper prefix of a valid encoding is one.
        for cut in 0..bytes.len() {
            failures.extend(check(field, decoder, &bytes[..cut], Expect::Refused));
        }
        for extra in [0x00u8, 0x01, 0xff] {
            let mut long = bytes.clone();
            long.push(extra);
            failures.extend(check(field, decoder, &long, Expect::Refused));
        }
    }
    fail_on(failures);
}

#[test]
fn bit_flipped_inputs_decode_exactly_or_not_at_all() {
    let mut failures = Vec::new();
    for (field, decoder, bytes) in fields(bit_flip_cases()) {
        let mut input = bytes.clone();
        for index in 0..input.len() {
            for bit in 0..8 {
                input[index] ^= 1 << bit;
                failures.extend(check(field, decoder, &input, Expect::RefusedOrExact));
                input[index] ^= 1 << bit;
            }
        }
    }
    fail_on(failures);
}

#[test]
fn overwritten_length_headers_decode_exactly_or_not_at_all() {
    // At each position, a varint header byte: a 2-byte and a 4-byte length prefix with the
    // largest values, and the invalid 8-byte prefix `11`.
    let headers: [&[u8]; 4] = [
        &[0x7f, 0xff],
        &[0xbf, 0xff, 0xff, 0xff],
        &[0xc0, 0, 0, 0, 0x40, 0, 0, 0],
        &[0x40, 0x01],
    ];
    let mut failures = Vec::new();
    for (field, decoder, bytes) in fields(bit_flip_cases()) {
        for index in 0..bytes.len() {
            for header in headers {
                let mut input = bytes.clone();
                let end = (index + header.len()).min(input.len());
                input[index..end].copy_from_slice(&header[..end - index]);
                failures.extend(check(field, decoder, &input, Expect::RefusedOrExact));
            }
        }
    }
    fail_on(failures);
}

#[test]
fn huge_length_prefixes_on_tiny_inputs_are_refused_fast() {
    // A maximal 4-byte length (2^30 - 1), 2^30 in the 8-byte form the RFC forbids, and
    // non-minimal encodings of small lengths, each preceded by 0-3 bytes of other fields and
    // followed by a few bytes.
    let lengths: [&[u8]; 5] = [
        &[0xbf, 0xff, 0xff, 0xff],
        &[0xc0, 0, 0, 0, 0x40, 0, 0, 0],
        &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
        &[0x40, 0x01],
        &[0x80, 0, 0, 0x01],
    ];
    let mut failures = Vec::new();
    let start = std::time::Instant::now();
    for (name, decoder) in all_decoders() {
        for prefix_len in 0..4 {
            for length in lengths {
                for fill in [0x00u8, 0x01, 0xbf] {
                    let mut input = vec![fill; prefix_len];
                    input.extend_from_slice(length);
                    input.extend_from_slice(&[fill; 6]);
                    failures.extend(check(name, decoder, &input, Expect::RefusedOrExact));
                }
            }
        }
        // The same headers at every position of a 24-byte input of 0x01 bytes (a chain of
        // one-byte lengths, small enum values and `present` octets).
        for index in 0..24 {
            for length in lengths {
                let mut input = vec![0x01u8; 24];
                let end = (index + length.len()).min(input.len());
                input[index..end].copy_from_slice(&length[..end - index]);
                failures.extend(check(name, decoder, &input, Expect::RefusedOrExact));
            }
        }
    }
    fail_on(failures);
    assert!(
        start.elapsed() < std::time::Duration::from_secs(20),
        "decoding tiny inputs took {:?}",
        start.elapsed()
    );
}

#[test]
fn the_allocation_counter_sees_large_allocations() {
    let (buffer, largest) = measured(|| vec![0u8; 1 << 20]);
    assert_eq!(buffer.len(), 1 << 20);
    assert!(largest >= 1 << 20);
}

#[test]
fn the_checker_catches_lax_decoders() {
    fn lax(_: &[u8]) -> Decoded {
        Decoded::Accepted(Ok(vec![1]))
    }
    fn greedy(_: &[u8]) -> Decoded {
        let buffer = vec![0u8; 16 << 20];
        Decoded::Accepted(Ok(buffer[..0].to_vec()))
    }
    fn panicky(input: &[u8]) -> Decoded {
        let index = input.len() + 1;
        Decoded::Accepted(Ok(vec![input[index]]))
    }
    assert!(check("lax", lax, &[2], Expect::RefusedOrExact).is_some());
    assert!(check("lax", lax, &[1], Expect::RefusedOrExact).is_none());
    assert!(check("lax", lax, &[1], Expect::Refused).is_some());
    assert!(check("greedy", greedy, &[], Expect::RefusedOrExact).is_some());
    assert!(check("panicky", panicky, &[], Expect::RefusedOrExact).is_some());
}
