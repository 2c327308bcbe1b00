//! Persistence: the [`Backend`] trait every store implements, the journal
//! event schema ([`event`]), and the embedded SQLite backend ([`Sqlite`]).
//!
//! **Invariant:** nothing outside this module writes state, and every
//! change to a case is an appended journal event. The other tables (cases,
//! deployments, outbox) are indexes the engine could rebuild from the
//! journal and the deployed sources.
//!
//! The trait is shaped for a networked backend with several engine
//! processes: writes come in batches (one transaction, so the engine can
//! group-commit many cases at once), a journal append names the sequence
//! number it expects to write (two processes advancing the same case
//! conflict instead of interleaving), and due work is found by a query on
//! an indexed `next_due`, not by scanning journals.

pub mod event;
mod sqlite;

pub use event::{Ending, Event, Millis, ParentRef, Recorded, StoredProblem, Verdict};
pub use sqlite::{Durability, Sqlite};

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Another case of the workflow already has this key. Nothing was written.
    #[error("workflow `{workflow}` already has a case with key `{key}`")]
    DuplicateKey {
        /// The workflow.
        workflow: String,
        /// The key.
        key: String,
    },
    /// This workflow version is deployed with different content. Nothing was written.
    #[error(
        "version {version} of workflow `{workflow}` is already deployed with different content; deploy it as a new version"
    )]
    VersionExists {
        /// The workflow.
        workflow: String,
        /// The version.
        version: u32,
    },
    /// A journal append did not start where the journal ends: another
    /// writer advanced the case. Nothing was written.
    #[error(
        "case `{case}` was changed concurrently: expected to write event {expected}, the journal has {actual} events"
    )]
    Conflict {
        /// The case.
        case: String,
        /// The sequence number the append started at.
        expected: u64,
        /// The journal's length.
        actual: u64,
    },
    /// An append or an outbox entry named a case that does not exist.
    #[error("no case `{0}`")]
    NoSuchCase(String),
    /// A purge of a case that has not ended, or was purged before. Nothing
    /// was written.
    #[error("case `{case}` cannot be purged: {reason}")]
    NotPurgeable {
        /// The case.
        case: String,
        /// Why, in a few words.
        reason: String,
    },
    /// A stored row could not be read back (a newer schema, or corruption).
    #[error("stored data is unreadable: {0}")]
    Corrupt(String),
    /// The database itself failed.
    #[error("store: {0}")]
    Database(String),
}

/// A deployed workflow definition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Deployment {
    /// The workflow's name.
    pub workflow: String,
    /// Its version.
    pub version: u32,
    /// The YAML source as deployed.
    pub source: String,
    /// sha256 of the source, hex.
    pub digest: String,
    /// When it was deployed.
    pub deployed_at: Millis,
    /// The exact plugin bytes its steps run, resolved when it was deployed,
    /// sorted. Empty for a deployment made before docket pinned plugins.
    pub pins: Vec<Pin>,
}

/// What a `uses:` requirement resolved to when a workflow was deployed: the
/// plugin a case of that deployment runs, whatever is published later.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pin {
    /// The plugin's name.
    pub plugin: String,
    /// The semver requirement the definition wrote (`^1.2`).
    pub requirement: String,
    /// The version it resolved to.
    pub version: String,
    /// sha256 of the component's bytes, hex.
    pub sha256: String,
}

/// Where a case is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CaseStatus {
    /// Steps are due or running.
    Running,
    /// Waiting for people, a timer, a signal or a child case.
    Waiting,
    /// Ended.
    Ended(Ending),
}

impl CaseStatus {
    /// The status's name: `running`, `waiting`, `completed`, `rejected`, `failed`.
    pub fn as_str(self) -> &'static str {
        match self {
            CaseStatus::Running => "running",
            CaseStatus::Waiting => "waiting",
            CaseStatus::Ended(ending) => ending.as_str(),
        }
    }

    /// Parses [`CaseStatus::as_str`]'s output.
    pub fn parse(name: &str) -> Option<CaseStatus> {
        Some(match name {
            "running" => CaseStatus::Running,
            "waiting" => CaseStatus::Waiting,
            "completed" => CaseStatus::Ended(Ending::Completed),
            "rejected" => CaseStatus::Ended(Ending::Rejected),
            "failed" => CaseStatus::Ended(Ending::Failed),
            _ => return None,
        })
    }

    /// Whether the case has ended.
    pub fn is_ended(self) -> bool {
        matches!(self, CaseStatus::Ended(_))
    }
}

/// A case's index row: what lists and due-work queries need without reading
/// the journal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaseRow {
    /// The case id.
    pub id: String,
    /// The workflow's name.
    pub workflow: String,
    /// The version it runs on.
    pub version: u32,
    /// The business key, unique per workflow.
    pub key: Option<String>,
    /// The applicant's tracking code, unique in the store.
    pub tracking_code: String,
    /// The parent case, for a child case.
    pub parent: Option<String>,
    /// Where the case is.
    pub status: CaseStatus,
    /// The roles with an open task on the case, for inboxes.
    pub waiting_roles: Vec<String>,
    /// The earliest timer, deadline or retry of the case, if any.
    pub next_due: Option<Millis>,
    /// When the case started.
    pub created_at: Millis,
    /// When its journal last grew.
    pub updated_at: Millis,
    /// The journal's length.
    pub events: u64,
}

/// The index fields an append updates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaseUpdate {
    /// Where the case is after the append.
    pub status: CaseStatus,
    /// The roles with an open task after the append.
    pub waiting_roles: Vec<String>,
    /// The earliest timer, deadline or retry after the append.
    pub next_due: Option<Millis>,
}

/// A message waiting for delivery. The key makes delivery idempotent: an
/// entry is written once per key, and a receiver that remembers keys sees
/// it exactly once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboxEntry {
    /// Unique: `<case>/<seq of the event that produced it>/<index>`.
    pub key: String,
    /// The case it belongs to.
    pub case: String,
    /// Delivery channel.
    pub channel: String,
    /// Recipient, if any.
    pub to: Option<String>,
    /// Subject line.
    pub subject: String,
    /// Body.
    pub body: String,
}

/// One change in a [`Backend::commit`] batch.
#[derive(Clone, Debug, PartialEq)]
pub enum Write {
    /// A new case: its index row and its first events. The row's
    /// `events` field is ignored (it is the length of `events`).
    CreateCase {
        /// The case's index row.
        row: CaseRow,
        /// Its first events, from seq 1.
        events: Vec<Recorded>,
    },
    /// Events appended to an existing case's journal.
    Append {
        /// The case.
        case: String,
        /// The events; the first one's `seq` must be the journal's length + 1.
        events: Vec<Recorded>,
        /// The case's index after them.
        update: CaseUpdate,
    },
    /// Messages to deliver; an entry whose key exists is ignored.
    Enqueue(Vec<OutboxEntry>),
    /// Messages delivered.
    Delivered(Vec<String>),
}

/// The case named by its id or, failing that, its tracking code: people
/// give either.
///
/// # Errors
///
/// If the store cannot be read.
pub fn find_case(store: &dyn Backend, id_or_code: &str) -> Result<Option<CaseRow>, Error> {
    match store.case(id_or_code)? {
        Some(row) => Ok(Some(row)),
        None => store.case_by_tracking_code(id_or_code),
    }
}

/// A row the ledger should record but does not: written behind the
/// engine's back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unledgered {
    /// An event or a deployment.
    pub kind: crate::ledger::EntryKind,
    /// The case or the workflow.
    pub subject: String,
    /// The event's seq or the deployment's version.
    pub seq: u64,
}

/// Which cases [`Backend::cases`] lists.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CaseFilter {
    /// Only this workflow.
    pub workflow: Option<String>,
    /// Only cases in this status.
    pub status: Option<CaseStatus>,
    /// Only cases with an open task for this role.
    pub role: Option<String>,
    /// At most this many, newest first. No limit if `None`.
    pub limit: Option<usize>,
}

/// A store backend. Implementations are shared between threads; every
/// method is one transaction.
pub trait Backend: Send + Sync {
    /// Records a deployment. Deploying the same source again is a no-op.
    ///
    /// # Errors
    ///
    /// [`Error::VersionExists`] if the version exists with another source.
    fn deploy(&self, deployment: &Deployment) -> Result<(), Error>;

    /// The deployment of `workflow` at `version`, or its latest version.
    fn deployment(&self, workflow: &str, version: Option<u32>)
    -> Result<Option<Deployment>, Error>;

    /// Every deployment, by workflow name then version.
    fn deployments(&self) -> Result<Vec<Deployment>, Error>;

    /// Applies every write of the batch in one durable transaction, or
    /// none of them.
    ///
    /// # Errors
    ///
    /// [`Error::DuplicateKey`], [`Error::Conflict`], [`Error::NoSuchCase`]
    /// name the first write that could not be applied; nothing was written.
    /// Events not numbered on from the journal's end (a wrong first `seq`,
    /// a gap) and a `CreateCase` whose case id exists are a
    /// [`Error::Conflict`]; a `CreateCase` whose tracking code another case
    /// has is an [`Error::Database`].
    fn commit(&self, batch: &[Write]) -> Result<(), Error>;

    /// A case's index row.
    fn case(&self, id: &str) -> Result<Option<CaseRow>, Error>;

    /// The case of `workflow` with business key `key`.
    fn case_by_key(&self, workflow: &str, key: &str) -> Result<Option<CaseRow>, Error>;

    /// The case with this tracking code.
    fn case_by_tracking_code(&self, code: &str) -> Result<Option<CaseRow>, Error>;

    /// Cases matching `filter`, newest first.
    fn cases(&self, filter: &CaseFilter) -> Result<Vec<CaseRow>, Error>;

    /// A case's whole journal, in order.
    fn journal(&self, case: &str) -> Result<Vec<Recorded>, Error>;

    /// The ids of every case that has not ended, oldest first.
    fn unfinished_cases(&self) -> Result<Vec<String>, Error>;

    /// Unfinished cases whose `next_due` is at or before `now`, earliest first.
    fn due_cases(&self, now: Millis, limit: usize) -> Result<Vec<String>, Error>;

    /// Outbox entries not yet delivered, in the order they were enqueued.
    fn undelivered(&self, limit: usize) -> Result<Vec<OutboxEntry>, Error>;

    // The ledger. `deploy` and `commit` append an entry for each deployment
    // and event in the same transaction (see `crate::ledger`); a backend
    // with several writers must serialize appends on the chain's head.

    /// Records the first load of a plugin's bytes in the ledger; a load of
    /// bytes already recorded for `name@version` is a no-op.
    fn plugin_loaded(
        &self,
        name: &str,
        version: &str,
        sha256: &str,
        at: Millis,
    ) -> Result<(), Error>;

    /// Up to `limit` ledger entries after position `after`, in order, each
    /// with its record rebuilt from the rows the store holds now.
    fn ledger(&self, after: u64, limit: usize) -> Result<Vec<crate::ledger::Item>, Error>;

    /// The positions of the entries recording `case`'s events, in order.
    fn ledger_of(&self, case: &str) -> Result<Vec<u64>, Error>;

    /// The last entry's position and hash; `None` for an empty ledger.
    fn ledger_head(&self) -> Result<Option<(u64, crate::ledger::Hash)>, Error>;

    /// Up to `limit` journal events and deployments that no ledger entry
    /// records.
    fn unledgered(&self, limit: usize) -> Result<Vec<Unledgered>, Error>;

    /// Keeps a signed checkpoint; one at a position already kept is a no-op.
    fn add_checkpoint(&self, checkpoint: &crate::ledger::Checkpoint) -> Result<(), Error>;

    /// Every checkpoint, by position.
    fn checkpoints(&self) -> Result<Vec<crate::ledger::Checkpoint>, Error>;

    // Retention.

    /// Purges the personal data of ended case `case` in one transaction:
    /// each journal event becomes [`Event::redacted`], the case's outbox
    /// messages lose recipient, subject and body, and a
    /// [`crate::ledger::EntryKind::Purge`] entry records the purge with
    /// `policy`, the archive's sha256 and each event's new content hash.
    /// The old contents may linger in the backend's free space until
    /// [`Backend::reclaim`].
    ///
    /// # Errors
    ///
    /// [`Error::NoSuchCase`]; [`Error::NotPurgeable`] if the case has not
    /// ended or was purged before; a store error otherwise. Nothing is changed then.
    fn purge(
        &self,
        case: &str,
        at: Millis,
        policy: &str,
        archive_sha256: &str,
    ) -> Result<Purged, Error>;

    /// Rewrites the backend's storage so that what purges removed is gone
    /// from its files, not only from its rows.
    ///
    /// # Errors
    ///
    /// A store error; purged rows stay purged either way.
    fn reclaim(&self) -> Result<(), Error>;

    /// When `case` was purged, if it was.
    fn purged(&self, case: &str) -> Result<Option<Millis>, Error>;
}

/// What a purge changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Purged {
    /// The case.
    pub case: String,
    /// Journal events whose content changed.
    pub events: usize,
    /// Outbox messages emptied.
    pub messages: usize,
    /// The purge's ledger position.
    pub position: u64,
}
