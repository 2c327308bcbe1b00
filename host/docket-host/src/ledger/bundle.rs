//! A case's audit bundle: its events with the stretch of the chain that
//! links them to a signed checkpoint, verifiable without the store.
//!
//! The bundle holds every entry from the case's first one to the
//! checkpoint. Entries of other cases show only their hashes and subjects
//! (no records), which is enough to recompute the chain and to show that
//! no entry of the case was left out.

use super::verify::{Problem, Tampering, short};
use super::{Checkpoint, Entry, EntryKind, Hash, PublicKey, record_hash};
use crate::store::{Backend, Error};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The format name of a bundle.
pub const BUNDLE_FORMAT: &str = "docket-audit-bundle/1";

/// A self-contained record of one case.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Bundle {
    /// [`BUNDLE_FORMAT`].
    pub format: String,
    /// The case.
    pub case: String,
    /// Consecutive entries, from the case's first to the checkpoint's.
    pub entries: Vec<BundleEntry>,
    /// The signed head the entries lead to.
    pub checkpoint: Checkpoint,
}

/// A chain entry, with its record if it is the case's.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BundleEntry {
    /// The entry.
    #[serde(flatten)]
    pub entry: Entry,
    /// The record, for the case's own entries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<Value>,
}

/// Why a bundle could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExportError {
    /// The ledger records no event of the case.
    #[error("the ledger has no case `{0}`")]
    NoSuchCase(String),
    /// No checkpoint covers the case's last entry yet.
    #[error(
        "no checkpoint covers case `{case}` yet (its last entry is at position {position}); sign one first"
    )]
    NotSigned {
        /// The case.
        case: String,
        /// Its last entry.
        position: u64,
    },
    /// An entry's record is gone from the store.
    #[error("entry {0} of the case has no record in the store; run `docket audit verify`")]
    Damaged(u64),
    /// The store failed.
    /// The case's personal data was purged under its retention policy; the
    /// archive written then is its bundle.
    #[error(
        "case `{case}` was purged under its retention policy at {}; its archive, written then, is its audit bundle",
        humantime::format_rfc3339_seconds(crate::engine::from_millis(*at))
    )]
    Purged {
        /// The case.
        case: String,
        /// When it was purged.
        at: crate::store::Millis,
    },
    #[error(transparent)]
    Store(#[from] Error),
}

/// The bundle of `case`, up to the first checkpoint after its last entry.
///
/// # Errors
///
/// See [`ExportError`].
pub fn export_case(store: &dyn Backend, case: &str) -> Result<Bundle, ExportError> {
    if let Some(at) = store.purged(case)? {
        return Err(ExportError::Purged {
            case: case.to_owned(),
            at,
        });
    }
    let positions = store.ledger_of(case)?;
    let (Some(&first), Some(&last)) = (positions.first(), positions.last()) else {
        return Err(ExportError::NoSuchCase(case.to_owned()));
    };
    let checkpoint = store
        .checkpoints()?
        .into_iter()
        .find(|checkpoint| checkpoint.position >= last)
        .ok_or_else(|| ExportError::NotSigned {
            case: case.to_owned(),
            position: last,
        })?;
    let mut entries = Vec::new();
    for item in super::verify::items(store, first - 1) {
        let item = item?;
        if item.entry.position > checkpoint.position {
            break;
        }
        let own = item.entry.kind == EntryKind::Event && item.entry.subject == case;
        let record = match (own, item.record) {
            (false, _) => None,
            (true, Some(record)) => Some(record),
            (true, None) => return Err(ExportError::Damaged(item.entry.position)),
        };
        entries.push(BundleEntry {
            entry: item.entry,
            record,
        });
    }
    Ok(Bundle {
        format: BUNDLE_FORMAT.to_owned(),
        case: case.to_owned(),
        entries,
        checkpoint,
    })
}

/// What a bundle proves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BundleReport {
    /// The case.
    pub case: String,
    /// Its events.
    pub events: u64,
    /// Entries checked, the case's and the others between them.
    pub entries: usize,
    /// The key that signed the checkpoint.
    pub key: PublicKey,
    /// The checkpoint's position.
    pub signed_at_position: u64,
}

/// Checks a bundle on its own: every entry's hash, the links between them,
/// every record of the case against its entry, that the case's events are
/// all there (numbered from 1 without gaps), and the checkpoint's signature
/// (by `trusted`, if given) over the last entry.
///
/// # Errors
///
/// The first [`Problem`].
pub fn verify_bundle(
    bundle: &Bundle,
    trusted: Option<&PublicKey>,
) -> Result<BundleReport, Problem> {
    let problem = |tampering, position: Option<u64>, detail: String| Problem {
        tampering,
        position,
        detail,
    };
    if bundle.format != BUNDLE_FORMAT {
        return Err(problem(
            Tampering::Modified,
            None,
            format!(
                "the bundle's format is `{}`, not `{BUNDLE_FORMAT}`",
                bundle.format
            ),
        ));
    }
    let checkpoint = &bundle.checkpoint;
    let key = trusted.unwrap_or(&checkpoint.public_key);
    if !checkpoint.signed_by(key) {
        return Err(problem(
            Tampering::BadSignature,
            Some(checkpoint.position),
            format!(
                "the checkpoint is not signed by key {key} (it names key {})",
                checkpoint.public_key
            ),
        ));
    }
    let mut prev: Option<Hash> = None;
    let mut events = 0;
    for (i, BundleEntry { entry, record }) in bundle.entries.iter().enumerate() {
        let p = entry.position;
        if let Some(first) = bundle.entries.first()
            && p != first.entry.position + i as u64
        {
            return Err(problem(
                Tampering::Removed,
                Some(first.entry.position + i as u64),
                format!("the bundle jumps to entry {p}"),
            ));
        }
        if prev.is_some_and(|prev| prev != entry.prev) {
            return Err(problem(
                Tampering::Modified,
                Some(p),
                format!("entry {p} does not follow entry {}", p - 1),
            ));
        }
        if entry.expected_hash() != entry.hash {
            return Err(problem(
                Tampering::Modified,
                Some(p),
                format!("the fields of entry {p} do not give its hash"),
            ));
        }
        let own = entry.kind == EntryKind::Event && entry.subject == bundle.case;
        match (own, record) {
            (false, None) => {}
            (false, Some(_)) => {
                return Err(problem(
                    Tampering::Inserted,
                    Some(p),
                    format!(
                        "entry {p} carries a record, but it is not an event of case `{}`",
                        bundle.case
                    ),
                ));
            }
            (true, None) => {
                return Err(problem(
                    Tampering::Removed,
                    Some(p),
                    format!("the record of event {} is missing", entry.seq.unwrap_or(0)),
                ));
            }
            (true, Some(record)) => {
                if record_hash(record) != entry.content {
                    return Err(problem(
                        Tampering::Modified,
                        Some(p),
                        format!(
                            "event {} differs from what was recorded",
                            entry.seq.unwrap_or(0)
                        ),
                    ));
                }
                events += 1;
                if entry.seq != Some(events) {
                    return Err(problem(
                        Tampering::Removed,
                        Some(p),
                        format!(
                            "entry {p} is event {} of the case, but event {events} comes first",
                            entry.seq.unwrap_or(0)
                        ),
                    ));
                }
            }
        }
        prev = Some(entry.hash);
    }
    let Some(last) = bundle.entries.last() else {
        return Err(problem(
            Tampering::Removed,
            None,
            "the bundle holds no entries".to_owned(),
        ));
    };
    if last.entry.position != checkpoint.position || last.entry.hash != checkpoint.head {
        return Err(problem(
            Tampering::Rewritten,
            Some(checkpoint.position),
            format!(
                "the entries end at position {} with hash {}, the checkpoint signed position {} with hash {}",
                last.entry.position,
                short(&last.entry.hash),
                checkpoint.position,
                short(&checkpoint.head)
            ),
        ));
    }
    Ok(BundleReport {
        case: bundle.case.clone(),
        events,
        entries: bundle.entries.len(),
        key: *key,
        signed_at_position: checkpoint.position,
    })
}
