//! RFC 8785 (JSON Canonicalization Scheme) encoding of a `serde_json::Value`,
//! written straight into a byte buffer.
//!
//! Every ledger entry hashes one or two canonical encodings, on the thread
//! that commits, so this is on the engine's hot path. A generic serde
//! formatter (what `serde_json_canonicalizer` does) buffers every object
//! member separately and re-parses each key to sort it; walking the tree
//! directly needs no allocation beyond the output.
//!
//! The bytes are those of `serde_json_canonicalizer` (a test compares the
//! two), so hashes made before and after this module agree.

use serde_json::{Map, Number, Value};
use std::cmp::Ordering;

/// Appends the canonical encoding of `value` to `out`.
pub(crate) fn write_value(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => write_number(out, n),
        Value::String(s) => write_str(out, s),
        Value::Array(items) => {
            out.push(b'[');
            for (idx, item) in items.iter().enumerate() {
                if idx > 0 {
                    out.push(b',');
                }
                write_value(out, item);
            }
            out.push(b']');
        }
        Value::Object(map) => write_object(out, map),
    }
}

fn write_object(out: &mut Vec<u8>, map: &Map<String, Value>) {
    out.push(b'{');
    // serde_json's map iterates in UTF-8 byte order (or insertion order
    // with its `preserve_order` feature); RFC 8785 sorts by UTF-16 code
    // units. The two agree unless keys mix characters at or above U+E000
    // with characters beyond the BMP, so sort only when the order is off.
    let sorted = map
        .keys()
        .zip(map.keys().skip(1))
        .all(|(a, b)| key_order(a, b) == Ordering::Less);
    if sorted {
        for (idx, (key, value)) in map.iter().enumerate() {
            write_member(out, idx, key, value);
        }
    } else {
        let mut members: Vec<(&String, &Value)> = map.iter().collect();
        members.sort_by(|a, b| key_order(a.0, b.0));
        for (idx, (key, value)) in members.into_iter().enumerate() {
            write_member(out, idx, key, value);
        }
    }
    out.push(b'}');
}

fn write_member(out: &mut Vec<u8>, idx: usize, key: &str, value: &Value) {
    if idx > 0 {
        out.push(b',');
    }
    write_str(out, key);
    out.push(b':');
    write_value(out, value);
}

/// RFC 8785's property order: by UTF-16 code units.
fn key_order(a: &str, b: &str) -> Ordering {
    if a.is_ascii() && b.is_ascii() {
        a.cmp(b)
    } else {
        a.encode_utf16().cmp(b.encode_utf16())
    }
}

/// A number as ECMAScript prints the double it denotes, which is what
/// RFC 8785 asks for (an integer beyond 2^53 loses digits, as in any JCS
/// implementation).
fn write_number(out: &mut Vec<u8>, n: &Number) {
    // Without serde_json's `arbitrary_precision`, every number has an f64
    // reading; a `Value` never holds a non-finite one.
    let n = n.as_f64().unwrap_or_default();
    write_f64(out, n);
}

/// An unsigned integer, as [`write_number`] would print it.
pub(crate) fn write_u64(out: &mut Vec<u8>, n: u64) {
    #[allow(
        clippy::cast_precision_loss,
        reason = "RFC 8785 prints every number as the double it denotes"
    )]
    write_f64(out, n as f64);
}

/// A signed integer, as [`write_number`] would print it.
pub(crate) fn write_i64(out: &mut Vec<u8>, n: i64) {
    #[allow(
        clippy::cast_precision_loss,
        reason = "RFC 8785 prints every number as the double it denotes"
    )]
    write_f64(out, n as f64);
}

fn write_f64(out: &mut Vec<u8>, n: f64) {
    let mut buffer = ryu_js::Buffer::new();
    out.extend_from_slice(buffer.format_finite(n).as_bytes());
}

/// A string with RFC 8785's escapes: `"`, `\` and the control characters,
/// the common ones in their short form, the others as `\u00xx`; nothing
/// else (not `/`, not non-ASCII).
pub(crate) fn write_str(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (idx, &byte) in bytes.iter().enumerate() {
        let escape: &[u8] = match byte {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\x08' => b"\\b",
            b'\x0c' => b"\\f",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..=0x1f => &[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[(byte >> 4) as usize],
                HEX[(byte & 0xf) as usize],
            ],
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..idx]);
        out.extend_from_slice(escape);
        start = idx + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{RngExt as _, SeedableRng as _};
    use serde_json::json;

    #[track_caller]
    fn check(value: &Value) {
        let mut ours = Vec::new();
        write_value(&mut ours, value);
        let theirs = serde_json_canonicalizer::to_vec(value).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&ours),
            String::from_utf8_lossy(&theirs),
            "{value:?}"
        );
    }

    #[test]
    fn matches_the_reference_implementation_on_edge_cases() {
        let values = [
            json!(null),
            json!([true, false, null, [], {}]),
            json!({"b": 1, "a": [1.5, -0.0, 0.1, 1e21, 1e-7, 123456789012345678u64]}),
            json!({"big": u64::MAX, "small": i64::MIN, "float": 100.0, "exp": 1.5e300}),
            json!(
                "quote \" backslash \\ slash / controls \u{0}\u{8}\u{9}\u{a}\u{b}\u{c}\u{d}\u{1f}\u{7f}"
            ),
            json!({"\u{e000}": 1, "\u{10000}": 2, "a": 3, "\u{ffff}": 4, "é": 5, "\u{1f600}": 6}),
            json!({"nested": {"z": {"y": [{"b": "\u{1}", "a": "ü"}]}, "": "empty key"}}),
            json!({"key\n\"escaped\"": "v", "key": "w"}),
        ];
        for value in &values {
            check(value);
        }
    }

    fn random_string(rng: &mut StdRng) -> String {
        const POOL: [char; 14] = [
            'a',
            'B',
            'z',
            '0',
            '"',
            '\\',
            '/',
            '\n',
            '\u{1}',
            'é',
            '\u{d7ff}',
            '\u{e000}',
            '\u{fffd}',
            '\u{1f600}',
        ];
        let n = rng.random_range(0..6);
        (0..n)
            .map(|_| POOL[rng.random_range(0..POOL.len())])
            .collect()
    }

    fn random_value(rng: &mut StdRng, depth: u32) -> Value {
        match rng.random_range(0..if depth > 3 { 5 } else { 7 }) {
            0 => Value::Null,
            1 => Value::Bool(rng.random()),
            2 => json!(rng.random::<i64>() >> rng.random_range(0..64)),
            3 => {
                let f = f64::from_bits(rng.random::<u64>());
                if f.is_finite() {
                    json!(f)
                } else {
                    json!(rng.random::<f64>() * 1e6)
                }
            }
            4 => Value::String(random_string(rng)),
            5 => Value::Array(
                (0..rng.random_range(0..4))
                    .map(|_| random_value(rng, depth + 1))
                    .collect(),
            ),
            _ => Value::Object(
                (0..rng.random_range(0..5))
                    .map(|_| (random_string(rng), random_value(rng, depth + 1)))
                    .collect(),
            ),
        }
    }

    #[test]
    fn matches_the_reference_implementation_on_random_values() {
        let mut rng = StdRng::seed_from_u64(8785);
        for _ in 0..5_000 {
            check(&random_value(&mut rng, 0));
        }
    }
}
