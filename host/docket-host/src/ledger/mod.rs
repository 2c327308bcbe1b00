//! The tamper-evident ledger: every journal event, every deployment and
//! every first load of a plugin's bytes is also an entry of one hash chain,
//! written in the same transaction as the change it records.
//!
//! The encoding, so that anyone can check a chain without docket:
//!
//! - a *record* is the JSON object an entry stands for ([`event_record`],
//!   [`deployment_record`], [`plugin_record`]), encoded canonically with
//!   RFC 8785 (JSON Canonicalization Scheme);
//! - an entry's `content` is sha256 of its record's canonical encoding;
//! - an entry's `hash` is sha256 of the canonical encoding of
//!   `{"content": hex, "kind": k, "position": n, "prev": hex, "seq": n or
//!   null, "subject": s}`, `prev` being the hash of the entry before it
//!   (32 zero bytes for the first);
//! - a [`Checkpoint`] is an Ed25519 signature over the canonical encoding
//!   of `{"at": ms, "format": "docket-ledger/1", "head": hex, "position": n}`,
//!   which a notary or timestamping service can countersign as it is.
//!
//! A chain alone shows that entries were modified, removed, reordered or
//! inserted; only a signed checkpoint shows that nobody rewrote the whole
//! tail consistently, since that needs the key. [`verify`] does both.

mod bundle;
mod canonical;
mod verify;

pub use bundle::{
    BUNDLE_FORMAT, Bundle, BundleEntry, BundleReport, ExportError, export_case, verify_bundle,
};
pub use verify::{Problem, Report, Tampering, verify};

pub use crate::keys::{KeyError, PublicKey, SigningKey};
use crate::store::{Event, Millis};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::Digest as _;

/// The format name in signed checkpoint messages and bundles.
pub const FORMAT: &str = "docket-ledger/1";

/// A sha256 digest.
pub type Hash = [u8; 32];

/// The `prev` of the first entry.
pub const GENESIS: Hash = [0; 32];

/// What an entry records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    /// A journal event; the subject is the case, `seq` the event's.
    Event,
    /// A deployment; the subject is the workflow, `seq` its version.
    Deployment,
    /// The first load of a plugin's bytes; the subject is `name@version`.
    Plugin,
    /// A case's personal data purged under its workflow's retention
    /// policy; the subject is the case. The record names each purged
    /// event's new content hash, so the events' original entries still
    /// verify and the purged rows cannot be changed unnoticed.
    Purge,
}

impl EntryKind {
    /// The kind's name as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            EntryKind::Event => "event",
            EntryKind::Deployment => "deployment",
            EntryKind::Plugin => "plugin",
            EntryKind::Purge => "purge",
        }
    }

    /// The kind named `name`.
    pub fn parse(name: &str) -> Option<EntryKind> {
        match name {
            "event" => Some(EntryKind::Event),
            "deployment" => Some(EntryKind::Deployment),
            "plugin" => Some(EntryKind::Plugin),
            "purge" => Some(EntryKind::Purge),
            _ => None,
        }
    }
}

/// One link of the chain, as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// From 1, without gaps.
    pub position: u64,
    /// What the entry records.
    pub kind: EntryKind,
    /// The case, workflow or plugin the record is about.
    pub subject: String,
    /// The event's seq or the deployment's version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    /// The hash of the entry before.
    #[serde(with = "hex")]
    pub prev: Hash,
    /// sha256 of the record's canonical encoding.
    #[serde(with = "hex")]
    pub content: Hash,
    /// sha256 of this entry's canonical encoding.
    #[serde(with = "hex")]
    pub hash: Hash,
}

impl Entry {
    /// The entry that follows `prev` (at `position - 1`) and records `record`.
    pub fn next(
        position: u64,
        prev: Hash,
        kind: EntryKind,
        subject: &str,
        seq: Option<u64>,
        record: &Value,
    ) -> Entry {
        Entry::with_content(position, prev, kind, subject, seq, record_hash(record))
    }

    /// [`Entry::next`] for a record whose hash, `content`, is known.
    pub fn with_content(
        position: u64,
        prev: Hash,
        kind: EntryKind,
        subject: &str,
        seq: Option<u64>,
        content: Hash,
    ) -> Entry {
        let mut entry = Entry {
            position,
            kind,
            subject: subject.to_owned(),
            seq,
            prev,
            content,
            hash: GENESIS,
        };
        entry.hash = entry.expected_hash();
        entry
    }

    /// The hash this entry's fields give; differs from `hash` if any was
    /// changed.
    pub fn expected_hash(&self) -> Hash {
        // The canonical encoding of `{"content": hex, "kind": k,
        // "position": n, "prev": hex, "seq": n or null, "subject": s}`,
        // written out in its (sorted) key order: one per ledger entry, so
        // it skips building a `Value` to encode.
        let mut out = Vec::with_capacity(200 + self.subject.len());
        let mut hex = [0; 64];
        out.extend_from_slice(b"{\"content\":\"");
        out.extend_from_slice(to_hex(&self.content, &mut hex));
        out.extend_from_slice(b"\",\"kind\":");
        canonical::write_str(&mut out, self.kind.as_str());
        out.extend_from_slice(b",\"position\":");
        canonical::write_u64(&mut out, self.position);
        out.extend_from_slice(b",\"prev\":\"");
        out.extend_from_slice(to_hex(&self.prev, &mut hex));
        out.extend_from_slice(b"\",\"seq\":");
        match self.seq {
            Some(seq) => canonical::write_u64(&mut out, seq),
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b",\"subject\":");
        canonical::write_str(&mut out, &self.subject);
        out.push(b'}');
        sha256(&out)
    }
}

/// Lowercase hex of a hash, in `buf`.
fn to_hex<'a>(hash: &Hash, buf: &'a mut [u8; 64]) -> &'a [u8] {
    // The buffer is exactly twice the hash's length, so this cannot fail.
    let _ = hex::encode_to_slice(hash, buf);
    buf
}

/// An entry and its record as the store holds it now: `None` when the row
/// the entry points at is gone.
#[derive(Clone, Debug, PartialEq)]
pub struct Item {
    /// The chain entry.
    pub entry: Entry,
    /// The record rebuilt from the store's rows.
    pub record: Option<Value>,
}

/// RFC 8785 encoding of `value`.
pub fn canonical(value: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    canonical::write_value(&mut out, value);
    out
}

/// sha256 of `bytes`.
pub fn sha256(bytes: &[u8]) -> Hash {
    sha2::Sha256::digest(bytes).into()
}

/// sha256 of a record's canonical encoding.
pub fn record_hash(record: &Value) -> Hash {
    sha256(&canonical(record))
}

/// The record of event `seq` of `case`, from the journal row's columns.
/// An event that is not JSON (a damaged row) is recorded as its text, so it
/// matches no entry.
pub fn event_record(case: &str, seq: u64, at: Millis, schema_version: u32, event: &str) -> Value {
    let event = serde_json::from_str::<Value>(event).unwrap_or_else(|_| Value::from(event));
    event_record_of(case, seq, at, schema_version, event)
}

/// The content hash of [`event_record_of`]`(case, seq, at, schema_version,
/// serde_json::to_value(event))`, without building the record or the
/// value: its canonical encoding is the event's, between the other members
/// in key order.
///
/// # Errors
///
/// If `event` has no JSON form (a map with keys that are not strings).
pub fn event_content(
    case: &str,
    seq: u64,
    at: Millis,
    schema_version: u32,
    event: &Event,
) -> Result<Hash, serde_json::Error> {
    let mut out = Vec::with_capacity(512);
    out.extend_from_slice(b"{\"at\":");
    canonical::write_i64(&mut out, at);
    out.extend_from_slice(b",\"case\":");
    canonical::write_str(&mut out, case);
    out.extend_from_slice(b",\"event\":");
    canonical::write_serialize(&mut out, event)?;
    out.extend_from_slice(b",\"schema_version\":");
    canonical::write_u64(&mut out, u64::from(schema_version));
    out.extend_from_slice(b",\"seq\":");
    canonical::write_u64(&mut out, seq);
    out.extend_from_slice(b",\"type\":\"event\"}");
    Ok(sha256(&out))
}

/// [`event_record`] for an event already parsed.
pub fn event_record_of(
    case: &str,
    seq: u64,
    at: Millis,
    schema_version: u32,
    event: Value,
) -> Value {
    json!({
        "type": "event",
        "case": case,
        "seq": seq,
        "at": at,
        "schema_version": schema_version,
        "event": event,
    })
}

/// The record of a deployment; `source` is hashed, so an edited source no
/// longer matches. `pins` (the plugin bytes its steps run) are left out
/// when there are none, so deployments recorded before pinning still verify.
pub fn deployment_record(
    workflow: &str,
    version: u32,
    source: &str,
    deployed_at: Millis,
    pins: &[crate::store::Pin],
) -> Value {
    let mut record = json!({
        "type": "deployment",
        "workflow": workflow,
        "version": version,
        "source_sha256": hex::encode(sha256(source.as_bytes())),
        "deployed_at": deployed_at,
    });
    if !pins.is_empty() {
        record["plugins"] = json!(pins);
    }
    record
}

/// The record of a plugin's first load.
pub fn plugin_record(name: &str, version: &str, sha256: &str, at: Millis) -> Value {
    json!({
        "type": "plugin",
        "name": name,
        "version": version,
        "sha256": sha256,
        "at": at,
    })
}

/// The record of a purge: when, under which policy, the sha256 of the
/// archive that keeps the full record, and the content hash each purged
/// event's record has now (`seq` -> hex).
pub fn purge_record(
    case: &str,
    at: Millis,
    policy: &str,
    archive_sha256: &str,
    purged: &[(u64, Hash)],
) -> Value {
    json!({
        "type": "purge",
        "case": case,
        "at": at,
        "policy": policy,
        "archive_sha256": archive_sha256,
        "events": purged
            .iter()
            .map(|(seq, content)| json!({"seq": seq, "content": hex::encode(content)}))
            .collect::<Vec<_>>(),
    })
}

/// A signed statement that the chain had `head` at `position`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The position of the head entry.
    pub position: u64,
    /// That entry's hash.
    #[serde(with = "hex")]
    pub head: Hash,
    /// When it was signed (engine clock).
    pub at: Millis,
    /// The signer.
    pub public_key: PublicKey,
    /// Ed25519 over [`Checkpoint::message`].
    #[serde(with = "hex")]
    pub signature: [u8; 64],
}

impl Checkpoint {
    /// The bytes signed: the canonical encoding of position, head and time.
    pub fn message(position: u64, head: &Hash, at: Millis) -> Vec<u8> {
        canonical(&json!({
            "at": at,
            "format": FORMAT,
            "head": hex::encode(head),
            "position": position,
        }))
    }

    /// Whether the signature is `key`'s over this checkpoint's fields.
    pub fn signed_by(&self, key: &PublicKey) -> bool {
        key.verifies(
            &Checkpoint::message(self.position, &self.head, self.at),
            &self.signature,
        )
    }
}

impl SigningKey {
    /// Signs that the chain had `head` at `position`.
    pub fn checkpoint(&self, position: u64, head: Hash, at: Millis) -> Checkpoint {
        Checkpoint {
            position,
            head,
            at,
            public_key: self.public(),
            signature: self.sign(&Checkpoint::message(position, &head, at)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_encoding_sorts_keys_and_drops_whitespace() {
        let value: Value = serde_json::from_str(r#"{ "b": 1, "a": [true, null, "x"] }"#).unwrap();
        assert_eq!(canonical(&value), br#"{"a":[true,null,"x"],"b":1}"#);
    }

    #[test]
    fn an_event_record_does_not_depend_on_how_its_json_was_written() {
        let compact = event_record("c1", 2, 10, 1, r#"{"type":"x","n":1.5}"#);
        let spaced = event_record("c1", 2, 10, 1, r#"{ "n": 1.50, "type": "x" }"#);
        assert_eq!(record_hash(&compact), record_hash(&spaced));
        let other = event_record("c1", 3, 10, 1, r#"{"type":"x","n":1.5}"#);
        assert_ne!(record_hash(&compact), record_hash(&other));
        let damaged = event_record("c1", 2, 10, 1, r#"{"type":"x","n":1.5"#);
        assert_ne!(record_hash(&compact), record_hash(&damaged));
    }

    #[test]
    fn the_entry_hash_binds_every_field() {
        let record = json!({"type": "plugin"});
        let entry = Entry::next(3, [7; 32], EntryKind::Plugin, "p@1", None, &record);
        assert_eq!(entry.content, record_hash(&record));
        assert_eq!(entry.hash, entry.expected_hash());
        let changes: [fn(&mut Entry); 5] = [
            |e| e.position = 4,
            |e| e.prev = [8; 32],
            |e| e.content = [0; 32],
            |e| e.subject = "p@2".to_owned(),
            |e| e.seq = Some(1),
        ];
        for change in changes {
            let mut changed = entry.clone();
            change(&mut changed);
            assert_ne!(changed.expected_hash(), entry.hash, "{changed:?}");
        }
    }

    #[test]
    fn hashes_written_directly_equal_those_of_the_encoded_records() {
        let reference = |value: &Value| sha256(&serde_json_canonicalizer::to_vec(value).unwrap());
        for (subject, seq) in [("c-1", Some(7)), ("name@1.0.0 \"q\"\n", None)] {
            let entry = Entry::next(
                9_007_199_254_740_993,
                [3; 32],
                EntryKind::Plugin,
                subject,
                seq,
                &json!({}),
            );
            let expected = reference(&json!({
                "content": hex::encode(entry.content),
                "kind": entry.kind.as_str(),
                "position": entry.position,
                "prev": hex::encode(entry.prev),
                "seq": entry.seq,
                "subject": entry.subject,
            }));
            assert_eq!(entry.hash, expected, "{subject}");
        }
        let event = Event::SignalReceived {
            name: "paid".to_owned(),
            data: json!({"b": [1.5, 2], "\u{e000}": 1, "\u{1f600}": 2, "a": 0.12222222222222223}),
        };
        for (case, at) in [("c1", 1_800_000_000_000), ("c\u{1}\"", -5)] {
            let record = event_record_of(case, 3, at, 1, serde_json::to_value(&event).unwrap());
            assert_eq!(
                event_content(case, 3, at, 1, &event).unwrap(),
                record_hash(&record)
            );
            assert_eq!(record_hash(&record), reference(&record));
        }
    }

    #[test]
    fn a_checkpoint_verifies_only_with_its_key_and_fields() {
        let key = SigningKey::from_seed([1; 32]);
        let other = SigningKey::from_seed([2; 32]);
        let checkpoint = key.checkpoint(5, [9; 32], 1_000);
        assert!(checkpoint.signed_by(&key.public()));
        assert!(!checkpoint.signed_by(&other.public()));
        let mut moved = checkpoint.clone();
        moved.position = 6;
        assert!(!moved.signed_by(&key.public()));
    }

    #[test]
    fn a_key_file_is_created_once_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.key");
        let made = SigningKey::load_or_create(&path).unwrap();
        let read = SigningKey::load_or_create(&path).unwrap();
        assert_eq!(made.public(), read.public());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::write(&path, "not a key").unwrap();
        let err = SigningKey::load_or_create(&path).unwrap_err();
        assert!(
            err.to_string().contains("not 64 hexadecimal digits"),
            "{err}"
        );
    }

    #[test]
    fn public_keys_parse_from_hex_only() {
        let key = SigningKey::from_seed([3; 32]).public();
        assert_eq!(key.to_string().parse::<PublicKey>().unwrap(), key);
        assert!("abc".parse::<PublicKey>().is_err());
    }
}
