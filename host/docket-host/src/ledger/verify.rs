//! Checking a store's ledger: the chain, the records it points at, the rows
//! it should record, and the signed checkpoints.

use super::{Checkpoint, EntryKind, GENESIS, Hash, PublicKey, record_hash};
use crate::store::{Backend, Error};
use std::collections::HashMap;

/// Entries read from the store at a time.
const CHUNK: usize = 10_000;

/// What was done to the ledger, as far as it can be told.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tampering {
    /// An entry, or the row it records, was changed.
    Modified,
    /// An entry, or the row it records, is gone.
    Removed,
    /// Entries are out of their order.
    Reordered,
    /// Something is there that was never appended.
    Inserted,
    /// The chain up to a signed checkpoint is not the one that was signed:
    /// entries were rewritten consistently, without the key.
    Rewritten,
    /// A checkpoint's signature is not the trusted key's.
    BadSignature,
}

impl std::fmt::Display for Tampering {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Tampering::Modified => "modified",
            Tampering::Removed => "removed",
            Tampering::Reordered => "reordered",
            Tampering::Inserted => "inserted",
            Tampering::Rewritten => "rewritten",
            Tampering::BadSignature => "signed by another key",
        })
    }
}

/// The first thing found wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// What was done.
    pub tampering: Tampering,
    /// The ledger position it was found at; `None` for a row the ledger
    /// never recorded.
    pub position: Option<u64>,
    /// The details, in a sentence.
    pub detail: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.position {
            Some(position) => write!(
                f,
                "{} at position {position}: {}",
                self.tampering, self.detail
            ),
            None => write!(f, "{}: {}", self.tampering, self.detail),
        }
    }
}

/// What [`verify`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    /// Entries in the chain.
    pub entries: u64,
    /// Records compared with their entries (all, or the case's).
    pub records: u64,
    /// Checkpoints whose signature and head were checked.
    pub checkpoints: usize,
    /// The key signatures were checked against: the trusted one, or (none
    /// given) the one each checkpoint names.
    pub key: Option<PublicKey>,
    /// The last checkpoint's position; entries after it are chained but
    /// not yet signed.
    pub signed_up_to: Option<u64>,
    /// Events whose personal data was purged under a retention policy:
    /// each matches the content a purge entry recorded for it, and its
    /// original entry still holds in the chain.
    pub purged: u64,
    /// The first problem, in ledger order; `None` if everything verified.
    pub problem: Option<Problem>,
}

impl Report {
    /// Whether nothing was found wrong.
    pub fn is_ok(&self) -> bool {
        self.problem.is_none()
    }
}

/// Recomputes the ledger of `store` and compares it with the rows the store
/// holds, and every checkpoint with the chain. With `trusted`, each
/// checkpoint must be signed by that key. With `case`, only that case's
/// records are compared (the chain and the checkpoints are checked whole,
/// since the case's entries are only as sound as the chain around them).
///
/// # Errors
///
/// If the store cannot be read; tampering is a [`Report::problem`], not an
/// error.
pub fn verify(
    store: &dyn Backend,
    trusted: Option<&PublicKey>,
    case: Option<&str>,
) -> Result<Report, Error> {
    // Pass 1: where each hash and each content sits, to tell a reordering
    // or an insertion from a plain change.
    let mut position_of_hash: HashMap<Hash, u64> = HashMap::new();
    let mut position_of_content: HashMap<Hash, u64> = HashMap::new();
    // What each purged event's record hashes to now, by (case, seq). A
    // purge entry is itself checked in pass 2 like any other.
    let mut purged: HashMap<(String, u64), Hash> = HashMap::new();
    for item in items(store, 0) {
        let item = item?;
        position_of_hash.insert(item.entry.hash, item.entry.position);
        position_of_content.insert(item.entry.content, item.entry.position);
        if item.entry.kind == EntryKind::Purge
            && let Some(record) = &item.record
        {
            purged.extend(purged_contents(&item.entry.subject, record));
        }
    }

    let checkpoints = store.checkpoints()?;
    let mut report = Report {
        entries: 0,
        records: 0,
        checkpoints: 0,
        key: trusted.copied(),
        signed_up_to: None,
        purged: 0,
        problem: None,
    };
    let mut by_position: HashMap<u64, &Checkpoint> = HashMap::new();
    for checkpoint in &checkpoints {
        let key = trusted.unwrap_or(&checkpoint.public_key);
        if !checkpoint.signed_by(key) {
            report.problem = Some(Problem {
                tampering: Tampering::BadSignature,
                position: Some(checkpoint.position),
                detail: format!(
                    "the checkpoint is not signed by key {key} (it names key {})",
                    checkpoint.public_key
                ),
            });
            return Ok(report);
        }
        if trusted.is_none() {
            report.key = Some(checkpoint.public_key);
        }
        by_position.insert(checkpoint.position, checkpoint);
    }

    // Pass 2: the chain in order, each entry against the one before it,
    // its own fields, its record and any checkpoint signed at it.
    let mut expected = 1;
    let mut prev = GENESIS;
    let mut before_prev: Option<Hash> = None;
    for item in items(store, 0) {
        let item = item?;
        let entry = &item.entry;
        let p = entry.position;
        let problem = |tampering, position, detail: String| Problem {
            tampering,
            position: Some(position),
            detail,
        };
        let found = if p != expected {
            Some(problem(
                Tampering::Removed,
                expected,
                format!("the chain jumps from entry {} to entry {p}", expected - 1),
            ))
        } else if entry.prev != prev {
            Some(if Some(entry.prev) == before_prev {
                problem(
                    Tampering::Inserted,
                    p - 1,
                    format!(
                        "entry {p} follows entry {}, so entry {} was put between them",
                        p - 2,
                        p - 1
                    ),
                )
            } else if let Some(q) = position_of_hash.get(&entry.prev) {
                problem(
                    Tampering::Reordered,
                    p,
                    format!(
                        "entry {p} was appended after entry {q}, not after entry {}",
                        p - 1
                    ),
                )
            } else {
                problem(
                    Tampering::Removed,
                    p,
                    format!("entry {p} follows an entry that is no longer in the ledger"),
                )
            })
        } else if entry.expected_hash() != entry.hash {
            Some(problem(
                Tampering::Modified,
                p,
                format!(
                    "the fields of entry {p} ({}) do not give its hash",
                    describe(entry)
                ),
            ))
        } else if let Some(checkpoint) = by_position.get(&p)
            && checkpoint.head != entry.hash
        {
            Some(problem(
                Tampering::Rewritten,
                p,
                format!(
                    "the chain up to entry {p} is not the one signed at {} (the signed head is {}, the chain has {})",
                    humantime::format_rfc3339_seconds(crate::engine::from_millis(checkpoint.at)),
                    short(&checkpoint.head),
                    short(&entry.hash)
                ),
            ))
        } else if case.is_none_or(|case| entry.kind == EntryKind::Event && entry.subject == case) {
            report.records += 1;
            match &item.record {
                None => Some(problem(
                    Tampering::Removed,
                    p,
                    format!("{} is gone from the store", describe(entry)),
                )),
                Some(record) => {
                    let content = record_hash(record);
                    if content == entry.content {
                        None
                    } else if entry.kind == EntryKind::Event
                        && purged.get(&(entry.subject.clone(), entry.seq.unwrap_or_default()))
                            == Some(&content)
                    {
                        report.purged += 1;
                        None
                    } else if let Some(q) = position_of_content.get(&content) {
                        Some(problem(
                            Tampering::Reordered,
                            p,
                            format!("{} holds what entry {q} recorded", describe(entry)),
                        ))
                    } else {
                        Some(problem(
                            Tampering::Modified,
                            p,
                            format!("{} differs from what was recorded", describe(entry)),
                        ))
                    }
                }
            }
        } else {
            None
        };
        if let Some(problem) = found {
            report.entries = p;
            report.problem = Some(problem);
            return Ok(report);
        }
        if by_position.contains_key(&p) {
            report.checkpoints += 1;
            report.signed_up_to = Some(p);
        }
        before_prev = Some(prev);
        prev = entry.hash;
        expected += 1;
    }
    report.entries = expected - 1;

    if let Some(beyond) = checkpoints.iter().find(|c| c.position > report.entries) {
        report.problem = Some(Problem {
            tampering: Tampering::Removed,
            position: Some(report.entries + 1),
            detail: format!(
                "the ledger ends at entry {}, but a checkpoint was signed at entry {}",
                report.entries, beyond.position
            ),
        });
        return Ok(report);
    }

    let unledgered = store.unledgered(100)?;
    if let Some(row) = unledgered
        .iter()
        .find(|row| case.is_none_or(|case| row.subject == case))
    {
        report.problem = Some(Problem {
            tampering: Tampering::Inserted,
            position: None,
            detail: match row.kind {
                EntryKind::Deployment => format!(
                    "version {} of workflow `{}` is in the store but not in the ledger",
                    row.seq, row.subject
                ),
                _ => format!(
                    "event {} of case `{}` is in the journal but not in the ledger",
                    row.seq, row.subject
                ),
            },
        });
    }
    Ok(report)
}

/// The ledger's items after position `after`, read a chunk at a time.
pub(super) fn items(store: &dyn Backend, after: u64) -> Items<'_> {
    Items {
        store,
        after,
        chunk: std::collections::VecDeque::new(),
        done: false,
    }
}

/// See [`items`].
pub(super) struct Items<'a> {
    store: &'a dyn Backend,
    after: u64,
    chunk: std::collections::VecDeque<super::Item>,
    done: bool,
}

impl Iterator for Items<'_> {
    type Item = Result<super::Item, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.chunk.is_empty() && !self.done {
            match self.store.ledger(self.after, CHUNK) {
                Ok(chunk) => {
                    self.done = chunk.len() < CHUNK;
                    self.chunk = chunk.into();
                }
                Err(err) => {
                    self.done = true;
                    return Some(Err(err));
                }
            }
        }
        let item = self.chunk.pop_front()?;
        self.after = item.entry.position;
        Some(Ok(item))
    }
}

/// The (case, seq) -> content pairs a purge record lists; a malformed one
/// lists none, so its events fail as modified.
fn purged_contents(case: &str, record: &serde_json::Value) -> Vec<((String, u64), Hash)> {
    let events = record["events"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    events
        .iter()
        .filter_map(|event| {
            let seq = event["seq"].as_u64()?;
            let content = hex::decode(event["content"].as_str()?).ok()?;
            Some(((case.to_owned(), seq), content.try_into().ok()?))
        })
        .collect()
}

/// What an entry records, in words.
fn describe(entry: &super::Entry) -> String {
    let seq = entry.seq.unwrap_or_default();
    match entry.kind {
        EntryKind::Event => format!("event {seq} of case `{}`", entry.subject),
        EntryKind::Deployment => format!("version {seq} of workflow `{}`", entry.subject),
        EntryKind::Plugin => format!("the load of plugin `{}`", entry.subject),
        EntryKind::Purge => format!("the purge of case `{}`", entry.subject),
    }
}

/// The first 12 hex digits of a hash, enough to tell two apart.
pub(super) fn short(hash: &Hash) -> String {
    hex::encode(&hash[..6])
}
