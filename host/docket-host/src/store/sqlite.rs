//! The embedded SQLite backend: one file, created on first use, in WAL
//! mode.
//!
//! One writer connection, behind a mutex, applies each [`Backend::commit`]
//! batch in one `BEGIN IMMEDIATE` transaction; reads go through a small
//! pool of separate connections, so (WAL being what it is) a reader never
//! waits for the writer and sees only committed batches.
//!
//! The layout (store schema 4, kept in `PRAGMA user_version`; the file is
//! marked as a docket store by `PRAGMA application_id`):
//!
//! - `deployments(workflow, version, source, digest, deployed_at, pins)`,
//!   keyed by workflow and version, `pins` a JSON array of [`Pin`]s;
//! - `cases`: the [`CaseRow`] of every case, with an integer `n` in
//!   insertion order that breaks ties between cases created in the same
//!   millisecond. `waiting_roles` is a JSON array, read back as is;
//! - `case_roles(role, case_n)`: one row per open role of a case, the
//!   exact index an inbox query filters on;
//! - `journal(n, case_id, seq, at, schema_version, event)`, the event as
//!   JSON, `n` in append order and a unique index on case and seq: a group
//!   commit appends its events at the table's end and touches only the
//!   small index entries of the many cases it spans, where a table keyed by
//!   case rewrote a page of events per case;
//! - `outbox(n, key, case_id, channel, recipient, subject, body,
//!   delivered_at)`, `n` being the enqueue order;
//! - `ledger(position, kind, subject, seq, record, prev, content, hash)`:
//!   the hash chain ([`crate::ledger`]), one entry per journal event (the
//!   record rebuilt from the journal row), deployment (from the
//!   deployments row) and plugin load (the record kept in `record`);
//! - `checkpoints(position, head, at, public_key, signature)`.
//!
//! Store schema 2 added the last two tables; opening a schema-1 file
//! creates them and enters its deployments and events into the chain, in
//! the order they happened. Schema 3 added `deployments.pins` (empty for
//! older deployments, which then resolve their plugins as before). Schema 4
//! keeps the journal in append order; opening an older file copies its
//! journal in the ledger's order.

use super::event::{Millis, Recorded, SCHEMA_VERSION};
use super::{
    Backend, CaseFilter, CaseRow, CaseStatus, CaseUpdate, Deployment, Error, OutboxEntry, Pin,
    Purged, Unledgered, Write,
};
use crate::ledger::{self, Checkpoint, Entry, EntryKind, Hash, Item};
use rusqlite::{
    Connection, ErrorCode, OpenFlags, OptionalExtension, Transaction, TransactionBehavior, params,
};
use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

/// How hard a commit tries to reach the disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Durability {
    /// Every commit is on disk when `commit` returns (`synchronous = FULL`).
    #[default]
    Full,
    /// A power loss may lose the last commits, never corrupt the file (`synchronous = NORMAL`).
    Normal,
}

/// The layout this build writes and reads, in `PRAGMA user_version`.
const STORE_SCHEMA: i64 = 4;

/// `PRAGMA application_id` of a docket store: "dkt1".
const APPLICATION_ID: i64 = 0x646b_7431;

/// How long a connection waits for another process's lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// At most this many idle read connections are kept.
const IDLE_READERS: usize = 8;

/// The writer's page cache, as `PRAGMA cache_size` takes it (negative:
/// KiB): 32 MiB.
const WRITER_CACHE_KIB: i64 = -32 * 1024;

/// WAL pages after which a commit checkpoints (64 MiB of 4 KiB pages).
const WAL_AUTOCHECKPOINT_PAGES: i64 = 16 * 1024;

/// Prepared statements kept per connection.
const STATEMENT_CACHE: usize = 64;

/// Statuses of a case that has not ended. Queries repeat this text
/// literally and name the partial index declared with it (`INDEXED BY`):
/// without statistics, SQLite's planner would rather scan `cases_by_status`
/// and sort.
const UNFINISHED: &str = "status IN ('running', 'waiting')";

/// Schema 3's addition to an older file.
const ADD_PINS: &str = "ALTER TABLE deployments ADD COLUMN pins TEXT NOT NULL DEFAULT '[]';";

/// The journal as schema 4 keeps it...
const JOURNAL: &str = "
CREATE TABLE journal (
    n              INTEGER PRIMARY KEY,
    case_id        TEXT    NOT NULL REFERENCES cases (id),
    seq            INTEGER NOT NULL,
    at             INTEGER NOT NULL,
    schema_version INTEGER NOT NULL,
    event          TEXT    NOT NULL
);";

/// ...and its index by case.
const JOURNAL_BY_CASE: &str = "CREATE UNIQUE INDEX journal_by_case ON journal (case_id, seq);";

const SCHEMA: &str = "
CREATE TABLE deployments (
    workflow    TEXT    NOT NULL,
    version     INTEGER NOT NULL,
    source      TEXT    NOT NULL,
    digest      TEXT    NOT NULL,
    deployed_at INTEGER NOT NULL,
    pins        TEXT    NOT NULL DEFAULT '[]',
    PRIMARY KEY (workflow, version)
);

CREATE TABLE cases (
    n             INTEGER PRIMARY KEY,
    id            TEXT    NOT NULL UNIQUE,
    workflow      TEXT    NOT NULL,
    version       INTEGER NOT NULL,
    key           TEXT,
    tracking_code TEXT    NOT NULL UNIQUE,
    parent        TEXT,
    status        TEXT    NOT NULL,
    waiting_roles TEXT    NOT NULL,
    next_due      INTEGER,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    events        INTEGER NOT NULL
);
CREATE UNIQUE INDEX cases_by_key ON cases (workflow, key) WHERE key IS NOT NULL;
CREATE INDEX cases_due ON cases (next_due)
    WHERE status IN ('running', 'waiting') AND next_due IS NOT NULL;
CREATE INDEX cases_unfinished ON cases (created_at) WHERE status IN ('running', 'waiting');
CREATE INDEX cases_by_created ON cases (created_at);
CREATE INDEX cases_by_status ON cases (status, created_at);
CREATE INDEX cases_by_workflow ON cases (workflow, status, created_at);

CREATE TABLE case_roles (
    role   TEXT    NOT NULL,
    case_n INTEGER NOT NULL REFERENCES cases (n),
    PRIMARY KEY (role, case_n)
) WITHOUT ROWID;
CREATE INDEX case_roles_by_case ON case_roles (case_n);

CREATE TABLE outbox (
    n            INTEGER PRIMARY KEY,
    key          TEXT    NOT NULL UNIQUE,
    case_id      TEXT    NOT NULL REFERENCES cases (id),
    channel      TEXT    NOT NULL,
    recipient    TEXT,
    subject      TEXT    NOT NULL,
    body         TEXT    NOT NULL,
    delivered_at INTEGER
);
CREATE INDEX outbox_undelivered ON outbox (n) WHERE delivered_at IS NULL;
CREATE INDEX outbox_by_case ON outbox (case_id);
";

/// What store schema 2 added.
const LEDGER_SCHEMA: &str = "
CREATE TABLE ledger (
    position INTEGER PRIMARY KEY,
    kind     TEXT    NOT NULL,
    subject  TEXT    NOT NULL,
    seq      INTEGER,
    record   TEXT,
    prev     BLOB    NOT NULL,
    content  BLOB    NOT NULL,
    hash     BLOB    NOT NULL
);
CREATE INDEX ledger_by_subject ON ledger (subject, seq);

CREATE TABLE checkpoints (
    position   INTEGER PRIMARY KEY,
    head       BLOB    NOT NULL,
    at         INTEGER NOT NULL,
    public_key BLOB    NOT NULL,
    signature  BLOB    NOT NULL
);
";

const CASE_COLUMNS: &str = "id, workflow, version, key, tracking_code, parent, status, \
                            waiting_roles, next_due, created_at, updated_at, events";

/// The embedded SQLite store: a single file, created with its schema on
/// first use. Several processes may open the same file; SQLite serializes
/// their writes.
pub struct Sqlite {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
}

impl std::fmt::Debug for Sqlite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sqlite")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Sqlite {
    /// Opens the store at `path`, creating the file and its tables if they
    /// do not exist. The directory must exist.
    ///
    /// # Errors
    ///
    /// [`Error::Corrupt`] if the file is not a docket store (not a SQLite
    /// database, another program's database) or was written by a newer
    /// docket; [`Error::Database`] if it cannot be opened or set up (a
    /// missing directory, permissions, a file that cannot be in WAL mode).
    pub fn open(path: impl AsRef<Path>, durability: Durability) -> Result<Sqlite, Error> {
        let path = path.as_ref().to_owned();
        let mut writer = Connection::open(&path).map_err(open_error(&path, "open"))?;
        configure(&writer, &path)?;
        let mode: String = writer
            .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
            .map_err(open_error(&path, "set WAL mode on"))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(Error::Database(format!(
                "`{}` cannot be in WAL mode (journal mode `{mode}`); the store needs a file on a local disk",
                path.display()
            )));
        }
        let synchronous = match durability {
            Durability::Full => "FULL",
            Durability::Normal => "NORMAL",
        };
        writer
            .pragma_update(None, "synchronous", synchronous)
            .map_err(open_error(&path, "configure"))?;
        writer
            .pragma_update(None, "foreign_keys", "ON")
            .map_err(open_error(&path, "configure"))?;
        // A group commit of thousands of events dirties more pages than
        // SQLite's default 2 MiB cache holds: it then spills pages to the
        // WAL mid-transaction and reads back pages it just evicted.
        writer
            .pragma_update(None, "cache_size", WRITER_CACHE_KIB)
            .map_err(open_error(&path, "configure"))?;
        // Checkpointing after every 1,000 pages (the default) copies the
        // same hot index pages into the database after nearly every group
        // commit; a larger WAL copies each of them once per checkpoint.
        writer
            .pragma_update(None, "wal_autocheckpoint", WAL_AUTOCHECKPOINT_PAGES)
            .map_err(open_error(&path, "configure"))?;
        migrate(&mut writer, &path)?;
        // Each insert checked against a foreign key may have to be undone
        // alone, so SQLite copies the pages it changes to a statement
        // journal first: in memory, not in a temporary file. Set after the
        // migration, whose sorts and index builds span the whole journal
        // and belong in temporary files.
        writer
            .pragma_update(None, "temp_store", "MEMORY")
            .map_err(open_error(&path, "configure"))?;
        let reader = open_reader(&path)?;
        Ok(Sqlite {
            path,
            writer: Mutex::new(writer),
            readers: Mutex::new(vec![reader]),
        })
    }

    /// The file the store lives in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn writer(&self) -> MutexGuard<'_, Connection> {
        // A panic while the lock was held dropped its transaction, which
        // rolled back: the connection is usable.
        self.writer.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `f` on an idle read connection, opening one if none is idle.
    fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T, Error>) -> Result<T, Error> {
        let idle = self
            .readers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let conn = match idle {
            Some(conn) => conn,
            None => open_reader(&self.path)?,
        };
        let res = f(&conn);
        let mut readers = self.readers.lock().unwrap_or_else(PoisonError::into_inner);
        if readers.len() < IDLE_READERS {
            readers.push(conn);
        }
        res
    }

    fn case_where(
        &self,
        what: &str,
        condition: &str,
        params: impl rusqlite::Params,
    ) -> Result<Option<CaseRow>, Error> {
        self.read(|conn| {
            let sql = format!("SELECT {CASE_COLUMNS} FROM cases WHERE {condition}");
            let mut stmt = conn.prepare_cached(&sql).map_err(db(what))?;
            let raw = stmt
                .query_row(params, RawCase::from_row)
                .optional()
                .map_err(db(what))?;
            raw.map(RawCase::into_row).transpose()
        })
    }
}

/// Settings every connection gets.
fn configure(conn: &Connection, path: &Path) -> Result<(), Error> {
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(open_error(path, "configure"))?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(())
}

fn open_reader(path: &Path) -> Result<Connection, Error> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_URI;
    let conn = Connection::open_with_flags(path, flags).map_err(open_error(path, "open"))?;
    configure(&conn, path)?;
    conn.pragma_update(None, "query_only", "ON")
        .map_err(open_error(path, "configure"))?;
    Ok(conn)
}

/// Creates the tables in a new file; refuses a file this build cannot read.
fn migrate(conn: &mut Connection, path: &Path) -> Result<(), Error> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(open_error(path, "lock"))?;
    let pragma = |name: &str| -> Result<i64, Error> {
        tx.pragma_query_value(None, name, |row| row.get(0))
            .map_err(open_error(path, "read the header of"))
    };
    let version = pragma("user_version")?;
    let application = pragma("application_id")?;
    let not_docket = || {
        Error::Corrupt(format!(
            "`{}` is a SQLite database, but not a docket store",
            path.display()
        ))
    };
    match version {
        0 => {
            let n_tables: i64 = tx
                .query_row("SELECT count(*) FROM sqlite_schema", [], |row| row.get(0))
                .map_err(open_error(path, "read the schema of"))?;
            if n_tables > 0 {
                return Err(not_docket());
            }
            tx.execute_batch(SCHEMA)
                .and_then(|()| tx.execute_batch(JOURNAL))
                .and_then(|()| tx.execute_batch(JOURNAL_BY_CASE))
                .and_then(|()| tx.execute_batch(LEDGER_SCHEMA))
                .map_err(open_error(path, "create the tables in"))?;
            tx.pragma_update(None, "application_id", APPLICATION_ID)
                .map_err(open_error(path, "create the tables in"))?;
            tx.pragma_update(None, "user_version", STORE_SCHEMA)
                .map_err(open_error(path, "create the tables in"))?;
        }
        1..=3 if application == APPLICATION_ID => {
            if version == 1 {
                tx.execute_batch(LEDGER_SCHEMA)
                    .map_err(open_error(path, "upgrade"))?;
                enter_history(&tx)?;
            }
            if version <= 2 {
                tx.execute_batch(ADD_PINS)
                    .map_err(open_error(path, "upgrade"))?;
            }
            journal_in_append_order(&tx).map_err(open_error(path, "upgrade"))?;
            tx.pragma_update(None, "user_version", STORE_SCHEMA)
                .map_err(open_error(path, "upgrade"))?;
        }
        STORE_SCHEMA if application == APPLICATION_ID => {}
        _ if application != APPLICATION_ID => return Err(not_docket()),
        newer => {
            return Err(Error::Corrupt(format!(
                "`{}` was written by a newer docket (store schema {newer}; this build reads schema {STORE_SCHEMA})",
                path.display()
            )));
        }
    }
    tx.commit()
        .map_err(open_error(path, "create the tables in"))
}

/// Schema 4's change to an older file (whose ledger is complete by then):
/// the journal, copied in the order the ledger recorded its events.
fn journal_in_append_order(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute_batch("ALTER TABLE journal RENAME TO journal_by_case_and_seq;")?;
    tx.execute_batch(JOURNAL)?;
    tx.execute_batch(
        "INSERT INTO journal (case_id, seq, at, schema_version, event)
             SELECT j.case_id, j.seq, j.at, j.schema_version, j.event
             FROM journal_by_case_and_seq j
             ORDER BY (SELECT l.position FROM ledger l
                       WHERE l.kind = 'event' AND l.subject = j.case_id AND l.seq = j.seq),
                      j.at, j.case_id, j.seq;
         DROP TABLE journal_by_case_and_seq;",
    )?;
    tx.execute_batch(JOURNAL_BY_CASE)
}

/// Maps an error while opening `path`; a file that is not a database says so.
fn open_error<'a>(
    path: &'a Path,
    what: &'static str,
) -> impl FnOnce(rusqlite::Error) -> Error + 'a {
    move |err| match err.sqlite_error_code() {
        Some(ErrorCode::NotADatabase) => Error::Corrupt(format!(
            "`{}` is not a docket store: it is not a SQLite database",
            path.display()
        )),
        _ => Error::Database(format!("failed to {what} `{}`: {err}", path.display())),
    }
}

/// Maps a database error, saying what was being attempted.
fn db(what: &str) -> impl FnOnce(rusqlite::Error) -> Error + '_ {
    move |err| Error::Database(format!("failed to {what}: {err}"))
}

fn to_i64(n: u64, what: &str) -> Result<i64, Error> {
    i64::try_from(n).map_err(|_| Error::Database(format!("{what} `{n}` is out of range")))
}

fn limit(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn roles_json(roles: &[String]) -> Result<String, Error> {
    serde_json::to_string(roles)
        .map_err(|err| Error::Database(format!("failed to encode roles: {err}")))
}

impl Backend for Sqlite {
    fn deploy(&self, deployment: &Deployment) -> Result<(), Error> {
        let what = || {
            format!(
                "deploy version {} of `{}`",
                deployment.version, deployment.workflow
            )
        };
        let mut conn = self.writer();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|err| db(&what())(err))?;
        let existing: Option<(String, String)> = tx
            .prepare_cached(
                "SELECT source, digest FROM deployments WHERE workflow = ?1 AND version = ?2",
            )
            .and_then(|mut stmt| {
                stmt.query_row(params![deployment.workflow, deployment.version], |row| {
                    Ok((row.get(0)?, row.get(1)?))
                })
                .optional()
            })
            .map_err(|err| db(&what())(err))?;
        match existing {
            Some((source, digest))
                if source == deployment.source && digest == deployment.digest =>
            {
                Ok(())
            }
            Some(_) => Err(Error::VersionExists {
                workflow: deployment.workflow.clone(),
                version: deployment.version,
            }),
            None => {
                tx.prepare_cached(
                    "INSERT INTO deployments (workflow, version, source, digest, deployed_at, pins) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )
                .and_then(|mut stmt| {
                    stmt.execute(params![
                        deployment.workflow,
                        deployment.version,
                        deployment.source,
                        deployment.digest,
                        deployment.deployed_at,
                        pins_text(&deployment.pins),
                    ])
                })
                .map_err(|err| db(&what())(err))?;
                let record = ledger::deployment_record(
                    &deployment.workflow,
                    deployment.version,
                    &deployment.source,
                    deployment.deployed_at,
                    &deployment.pins,
                );
                Chain::head(&tx)?.append(
                    &tx,
                    EntryKind::Deployment,
                    &deployment.workflow,
                    Some(u64::from(deployment.version)),
                    None,
                    &record,
                )?;
                tx.commit().map_err(|err| db(&what())(err))
            }
        }
    }

    fn deployment(
        &self,
        workflow: &str,
        version: Option<u32>,
    ) -> Result<Option<Deployment>, Error> {
        let what = format!("read the deployments of `{workflow}`");
        self.read(|conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT workflow, version, source, digest, deployed_at, pins FROM deployments \
                     WHERE workflow = ?1 AND (?2 IS NULL OR version = ?2) \
                     ORDER BY version DESC LIMIT 1",
                )
                .map_err(db(&what))?;
            let raw = stmt
                .query_row(params![workflow, version], RawDeployment::from_row)
                .optional()
                .map_err(db(&what))?;
            raw.map(RawDeployment::into_deployment).transpose()
        })
    }

    fn deployments(&self) -> Result<Vec<Deployment>, Error> {
        let what = "read the deployments";
        self.read(|conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT workflow, version, source, digest, deployed_at, pins FROM deployments \
                     ORDER BY workflow, version",
                )
                .map_err(db(what))?;
            let rows = stmt
                .query_map([], RawDeployment::from_row)
                .map_err(db(what))?;
            rows.map(|raw| raw.map_err(db(what))?.into_deployment())
                .collect()
        })
    }

    fn commit(&self, batch: &[Write]) -> Result<(), Error> {
        if batch.is_empty() {
            return Ok(());
        }
        let mut conn = self.writer();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(db("begin a commit"))?;
        let mut chain = Chain::head(&tx)?;
        let mut touched = TouchedCases::new();
        for write in batch {
            match write {
                Write::CreateCase { row, events } => create_case(&tx, &mut chain, row, events)?,
                Write::Append {
                    case,
                    events,
                    update,
                } => append(&tx, &mut chain, &mut touched, case, events, update)?,
                Write::Enqueue(entries) => enqueue(&tx, entries)?,
                Write::Delivered(keys) => delivered(&tx, keys)?,
            }
        }
        write_touched(&tx, &touched)?;
        // Dropping the transaction on an error above rolled everything back.
        tx.commit().map_err(db("commit a batch"))
    }

    fn case(&self, id: &str) -> Result<Option<CaseRow>, Error> {
        self.case_where(&format!("read case `{id}`"), "id = ?1", [id])
    }

    fn case_by_key(&self, workflow: &str, key: &str) -> Result<Option<CaseRow>, Error> {
        self.case_where(
            &format!("read the case of `{workflow}` with key `{key}`"),
            "workflow = ?1 AND key = ?2",
            [workflow, key],
        )
    }

    fn case_by_tracking_code(&self, code: &str) -> Result<Option<CaseRow>, Error> {
        self.case_where(
            &format!("read the case with tracking code `{code}`"),
            "tracking_code = ?1",
            [code],
        )
    }

    fn cases(&self, filter: &CaseFilter) -> Result<Vec<CaseRow>, Error> {
        let what = "list cases";
        // One statement per combination of filters (eight at most, each
        // cached), so that every one can use its index.
        let mut sql = format!("SELECT {CASE_COLUMNS} FROM cases WHERE 1");
        let mut args: Vec<&dyn rusqlite::ToSql> = Vec::with_capacity(4);
        if let Some(workflow) = &filter.workflow {
            sql += " AND workflow = ?";
            args.push(workflow);
        }
        let status = filter.status.map(CaseStatus::as_str);
        if let Some(status) = &status {
            sql += " AND status = ?";
            args.push(status);
        }
        if let Some(role) = &filter.role {
            sql += " AND n IN (SELECT case_n FROM case_roles WHERE role = ?)";
            args.push(role);
        }
        sql += " ORDER BY created_at DESC, n DESC LIMIT ?";
        let n_max = filter.limit.map_or(-1, limit);
        args.push(&n_max);
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(&sql).map_err(db(what))?;
            let rows = stmt
                .query_map(args.as_slice(), RawCase::from_row)
                .map_err(db(what))?;
            rows.map(|raw| raw.map_err(db(what))?.into_row()).collect()
        })
    }

    fn journal(&self, case: &str) -> Result<Vec<Recorded>, Error> {
        let what = format!("read the journal of case `{case}`");
        self.read(|conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT seq, at, schema_version, event FROM journal WHERE case_id = ?1 ORDER BY seq",
                )
                .map_err(db(&what))?;
            let rows = stmt
                .query_map([case], |row| {
                    Ok((
                        row.get::<_, i64>(0)?,
                        row.get::<_, Millis>(1)?,
                        row.get::<_, i64>(2)?,
                        row.get::<_, String>(3)?,
                    ))
                })
                .map_err(db(&what))?;
            rows.map(|raw| {
                let (seq, at, schema_version, event) = raw.map_err(db(&what))?;
                decode_event(case, seq, at, schema_version, &event)
            })
            .collect()
        })
    }

    fn unfinished_cases(&self) -> Result<Vec<String>, Error> {
        let what = "list unfinished cases";
        self.read(|conn| {
            let sql = format!(
                "SELECT id FROM cases INDEXED BY cases_unfinished WHERE {UNFINISHED} \
                 ORDER BY created_at, n"
            );
            let mut stmt = conn.prepare_cached(&sql).map_err(db(what))?;
            let rows = stmt.query_map([], |row| row.get(0)).map_err(db(what))?;
            rows.collect::<Result<_, _>>().map_err(db(what))
        })
    }

    fn due_cases(&self, now: Millis, n_max: usize) -> Result<Vec<String>, Error> {
        let what = "list due cases";
        self.read(|conn| {
            let sql = format!(
                "SELECT id FROM cases INDEXED BY cases_due WHERE {UNFINISHED} AND next_due <= ?1 \
                 ORDER BY next_due, n LIMIT ?2"
            );
            let mut stmt = conn.prepare_cached(&sql).map_err(db(what))?;
            let rows = stmt
                .query_map(params![now, limit(n_max)], |row| row.get(0))
                .map_err(db(what))?;
            rows.collect::<Result<_, _>>().map_err(db(what))
        })
    }

    fn undelivered(&self, n_max: usize) -> Result<Vec<OutboxEntry>, Error> {
        let what = "read the outbox";
        self.read(|conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT key, case_id, channel, recipient, subject, body FROM outbox \
                     WHERE delivered_at IS NULL ORDER BY n LIMIT ?1",
                )
                .map_err(db(what))?;
            let rows = stmt
                .query_map([limit(n_max)], |row| {
                    Ok(OutboxEntry {
                        key: row.get(0)?,
                        case: row.get(1)?,
                        channel: row.get(2)?,
                        to: row.get(3)?,
                        subject: row.get(4)?,
                        body: row.get(5)?,
                    })
                })
                .map_err(db(what))?;
            rows.collect::<Result<_, _>>().map_err(db(what))
        })
    }

    fn plugin_loaded(
        &self,
        name: &str,
        version: &str,
        sha256: &str,
        at: Millis,
    ) -> Result<(), Error> {
        let what = format!("record the load of plugin `{name}@{version}`");
        let subject = format!("{name}@{version}");
        let mut conn = self.writer();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(db(&what))?;
        let known = tx
            .prepare_cached(
                "SELECT 1 FROM ledger WHERE subject = ?1 AND kind = 'plugin' \
                 AND record ->> '$.sha256' = ?2",
            )
            .and_then(|mut stmt| stmt.exists(params![subject, sha256]))
            .map_err(db(&what))?;
        if known {
            return Ok(());
        }
        let record = ledger::plugin_record(name, version, sha256, at);
        let stored = record.to_string();
        Chain::head(&tx)?.append(
            &tx,
            EntryKind::Plugin,
            &subject,
            None,
            Some(&stored),
            &record,
        )?;
        tx.commit().map_err(db(&what))
    }

    fn ledger(&self, after: u64, n_max: usize) -> Result<Vec<Item>, Error> {
        let what = "read the ledger";
        self.read(|conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT l.position, l.kind, l.subject, l.seq, l.record, l.prev, l.content, l.hash, \
                            j.at, j.schema_version, j.event, d.source, d.deployed_at, d.pins \
                     FROM ledger l \
                     LEFT JOIN journal j ON l.kind = 'event' AND j.case_id = l.subject AND j.seq = l.seq \
                     LEFT JOIN deployments d ON l.kind = 'deployment' AND d.workflow = l.subject AND d.version = l.seq \
                     WHERE l.position > ?1 ORDER BY l.position LIMIT ?2",
                )
                .map_err(db(what))?;
            let rows = stmt
                .query_map(params![to_i64(after, "position")?, limit(n_max)], |row| {
                    Ok(RawItem {
                        position: row.get(0)?,
                        kind: row.get(1)?,
                        subject: row.get(2)?,
                        seq: row.get(3)?,
                        record: row.get(4)?,
                        prev: row.get(5)?,
                        content: row.get(6)?,
                        hash: row.get(7)?,
                        event: match row.get::<_, Option<Millis>>(8)? {
                            Some(at) => Some((at, row.get(9)?, row.get(10)?)),
                            None => None,
                        },
                        deployment: match row.get::<_, Option<String>>(11)? {
                            Some(source) => Some((source, row.get(12)?, row.get(13)?)),
                            None => None,
                        },
                    })
                })
                .map_err(db(what))?;
            rows.map(|raw| raw.map_err(db(what))?.into_item())
                .collect()
        })
    }

    fn ledger_of(&self, case: &str) -> Result<Vec<u64>, Error> {
        let what = format!("read the ledger of case `{case}`");
        self.read(|conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT position FROM ledger WHERE subject = ?1 AND kind = 'event' ORDER BY position",
                )
                .map_err(db(&what))?;
            let rows = stmt
                .query_map([case], |row| row.get::<_, i64>(0))
                .map_err(db(&what))?;
            rows.map(|position| Ok(position.map_err(db(&what))? as u64))
                .collect()
        })
    }

    fn ledger_head(&self) -> Result<Option<(u64, Hash)>, Error> {
        let what = "read the ledger's head";
        let head: Option<(i64, Vec<u8>)> = self.read(|conn| {
            conn.prepare_cached("SELECT position, hash FROM ledger ORDER BY position DESC LIMIT 1")
                .and_then(|mut stmt| {
                    stmt.query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
                        .optional()
                })
                .map_err(db(what))
        })?;
        head.map(|(position, hash)| Ok((position as u64, to_hash(hash, what)?)))
            .transpose()
    }

    fn unledgered(&self, n_max: usize) -> Result<Vec<Unledgered>, Error> {
        let what = "look for rows the ledger does not record";
        self.read(|conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT 'event', case_id, seq FROM journal j WHERE NOT EXISTS \
                       (SELECT 1 FROM ledger l WHERE l.subject = j.case_id AND l.seq = j.seq AND l.kind = 'event') \
                     UNION ALL \
                     SELECT 'deployment', workflow, version FROM deployments d WHERE NOT EXISTS \
                       (SELECT 1 FROM ledger l WHERE l.subject = d.workflow AND l.seq = d.version AND l.kind = 'deployment') \
                     LIMIT ?1",
                )
                .map_err(db(what))?;
            let rows = stmt
                .query_map([limit(n_max)], |row| {
                    Ok((row.get::<_, String>(0)?, row.get(1)?, row.get::<_, i64>(2)?))
                })
                .map_err(db(what))?;
            rows.map(|row| {
                let (kind, subject, seq) = row.map_err(db(what))?;
                Ok(Unledgered {
                    kind: EntryKind::parse(&kind).unwrap_or(EntryKind::Event),
                    subject,
                    seq: seq as u64,
                })
            })
            .collect()
        })
    }

    fn add_checkpoint(&self, checkpoint: &Checkpoint) -> Result<(), Error> {
        let what = "keep a checkpoint";
        let position = to_i64(checkpoint.position, "position")?;
        let conn = self.writer();
        conn.prepare_cached(
            "INSERT INTO checkpoints (position, head, at, public_key, signature) \
             VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (position) DO NOTHING",
        )
        .and_then(|mut stmt| {
            stmt.execute(params![
                position,
                checkpoint.head,
                checkpoint.at,
                checkpoint.public_key.0,
                checkpoint.signature,
            ])
        })
        .map_err(db(what))?;
        Ok(())
    }

    fn checkpoints(&self) -> Result<Vec<Checkpoint>, Error> {
        let what = "read the checkpoints";
        self.read(|conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT position, head, at, public_key, signature FROM checkpoints ORDER BY position",
                )
                .map_err(db(what))?;
            let rows = stmt
                .query_map([], |row| {
                    Ok((
                        row.get::<_, i64>(0)?,
                        row.get::<_, Vec<u8>>(1)?,
                        row.get::<_, Millis>(2)?,
                        row.get::<_, Vec<u8>>(3)?,
                        row.get::<_, Vec<u8>>(4)?,
                    ))
                })
                .map_err(db(what))?;
            rows.map(|row| {
                let (position, head, at, public_key, signature) = row.map_err(db(what))?;
                let corrupt = || Error::Corrupt(format!("checkpoint {position} is malformed"));
                Ok(Checkpoint {
                    position: position as u64,
                    head: to_hash(head, "a checkpoint's head")?,
                    at,
                    public_key: ledger::PublicKey(public_key.try_into().map_err(|_| corrupt())?),
                    signature: signature.try_into().map_err(|_| corrupt())?,
                })
            })
            .collect()
        })
    }

    fn purge(
        &self,
        case: &str,
        at: Millis,
        policy: &str,
        archive_sha256: &str,
    ) -> Result<Purged, Error> {
        let what = format!("purge case `{case}`");
        purge_in(&mut self.writer(), case, at, policy, archive_sha256, &what)
    }

    fn reclaim(&self) -> Result<(), Error> {
        let what = "rewrite the store without purged data";
        let conn = self.writer();
        // VACUUM rebuilds every page, so nothing purged survives in free
        // space or in cells that page reorganisations left behind; the
        // truncating checkpoint then drops the old page images the
        // write-ahead log still holds.
        // VACUUM builds its copy of the whole database as a temporary
        // database: in a file, not in memory.
        conn.execute_batch("PRAGMA temp_store = FILE")
            .map_err(db(what))?;
        let vacuumed = conn.execute_batch("VACUUM");
        conn.execute_batch("PRAGMA temp_store = MEMORY")
            .map_err(db(what))?;
        vacuumed.map_err(db(what))?;
        let busy: i64 = conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| row.get(0))
            .map_err(db(what))?;
        if busy != 0 {
            return Err(Error::Database(format!(
                "cannot {what}: a reader still uses the write-ahead log; try again when it is idle"
            )));
        }
        Ok(())
    }

    fn purged(&self, case: &str) -> Result<Option<Millis>, Error> {
        let what = format!("read whether case `{case}` was purged");
        self.read(|conn| {
            conn.prepare_cached(
                "SELECT record ->> '$.at' FROM ledger WHERE subject = ?1 AND kind = 'purge'",
            )
            .and_then(|mut stmt| stmt.query_row([case], |row| row.get(0)).optional())
            .map_err(db(&what))
        })
    }
}

/// [`Backend::purge`] in one transaction on the writer connection.
fn purge_in(
    conn: &mut Connection,
    case: &str,
    at: Millis,
    policy: &str,
    archive_sha256: &str,
    what: &str,
) -> Result<Purged, Error> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db(what))?;
    let status: Option<String> = tx
        .prepare_cached("SELECT status FROM cases WHERE id = ?1")
        .and_then(|mut stmt| stmt.query_row([case], |row| row.get(0)).optional())
        .map_err(db(what))?;
    let refuse = |reason: &str| Error::NotPurgeable {
        case: case.to_owned(),
        reason: reason.to_owned(),
    };
    match status.as_deref().and_then(CaseStatus::parse) {
        None if status.is_none() => return Err(Error::NoSuchCase(case.to_owned())),
        Some(status) if status.is_ended() => {}
        _ => return Err(refuse("it has not ended")),
    }
    let purged_before = tx
        .prepare_cached("SELECT 1 FROM ledger WHERE subject = ?1 AND kind = 'purge'")
        .and_then(|mut stmt| stmt.exists([case]))
        .map_err(db(what))?;
    if purged_before {
        return Err(refuse("it was purged before"));
    }

    let rows: Vec<(i64, Millis, i64, String)> = tx
        .prepare_cached(
            "SELECT seq, at, schema_version, event FROM journal WHERE case_id = ?1 ORDER BY seq",
        )
        .and_then(|mut stmt| {
            stmt.query_map([case], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
            })?
            .collect()
        })
        .map_err(db(what))?;
    let mut contents = Vec::with_capacity(rows.len());
    let mut changed = 0;
    for (seq, event_at, schema_version, text) in rows {
        let recorded = decode_event(case, seq, event_at, schema_version, &text)?;
        let event = recorded.event.redacted();
        let redacted = if event == recorded.event {
            text
        } else {
            changed += 1;
            let redacted = serde_json::to_string(&event)
                .map_err(|err| Error::Corrupt(format!("event {seq} of case `{case}`: {err}")))?;
            tx.prepare_cached("UPDATE journal SET event = ?3 WHERE case_id = ?1 AND seq = ?2")
                .and_then(|mut stmt| stmt.execute(params![case, seq, redacted]))
                .map_err(db(what))?;
            redacted
        };
        let schema_version = u32::try_from(schema_version).unwrap_or_default();
        let record = ledger::event_record(case, recorded.seq, event_at, schema_version, &redacted);
        contents.push((recorded.seq, ledger::record_hash(&record)));
    }
    let messages = tx
        .prepare_cached(
            "UPDATE outbox SET recipient = NULL, subject = ?2, body = ?2 \
             WHERE case_id = ?1 AND subject <> ?2",
        )
        .and_then(|mut stmt| stmt.execute(params![case, super::event::PURGED]))
        .map_err(db(what))?;

    let record = ledger::purge_record(case, at, policy, archive_sha256, &contents);
    let stored = record.to_string();
    let mut chain = Chain::head(&tx)?;
    chain.append(&tx, EntryKind::Purge, case, None, Some(&stored), &record)?;
    tx.commit().map_err(db(what))?;
    Ok(Purged {
        case: case.to_owned(),
        events: changed,
        messages,
        position: chain.position,
    })
}

/// A ledger row joined with the row its record is rebuilt from.
struct RawItem {
    position: i64,
    kind: String,
    subject: String,
    seq: Option<i64>,
    record: Option<String>,
    prev: Vec<u8>,
    content: Vec<u8>,
    hash: Vec<u8>,
    /// `at`, `schema_version`, `event` of the journal row.
    event: Option<(Millis, u32, String)>,
    /// `source`, `deployed_at`, `pins` of the deployments row.
    deployment: Option<(String, Millis, String)>,
}

impl RawItem {
    fn into_item(self) -> Result<Item, Error> {
        let position = self.position;
        let corrupt = |what: &str| Error::Corrupt(format!("ledger entry {position}: {what}"));
        let kind = EntryKind::parse(&self.kind).ok_or_else(|| corrupt("unknown kind"))?;
        let seq = self
            .seq
            .map(|seq| u64::try_from(seq).map_err(|_| corrupt("negative seq")))
            .transpose()?;
        let record = match kind {
            EntryKind::Event => self.event.map(|(at, schema_version, event)| {
                ledger::event_record(
                    &self.subject,
                    seq.unwrap_or_default(),
                    at,
                    schema_version,
                    &event,
                )
            }),
            EntryKind::Deployment => self.deployment.map(|(source, deployed_at, pins)| {
                let version = seq
                    .and_then(|seq| u32::try_from(seq).ok())
                    .unwrap_or_default();
                match serde_json::from_str::<Vec<Pin>>(&pins) {
                    Ok(pins) => ledger::deployment_record(
                        &self.subject,
                        version,
                        &source,
                        deployed_at,
                        &pins,
                    ),
                    // Unreadable pins were changed behind the store's back:
                    // keep the text, so the entry reports as modified.
                    Err(_) => {
                        let mut record = ledger::deployment_record(
                            &self.subject,
                            version,
                            &source,
                            deployed_at,
                            &[],
                        );
                        record["plugins"] = Value::String(pins);
                        record
                    }
                }
            }),
            EntryKind::Plugin | EntryKind::Purge => self
                .record
                .map(|text| serde_json::from_str::<Value>(&text).unwrap_or(Value::String(text))),
        };
        Ok(Item {
            entry: Entry {
                position: u64::try_from(position).map_err(|_| corrupt("negative position"))?,
                kind,
                subject: self.subject,
                seq,
                prev: to_hash(self.prev, "an entry's prev")?,
                content: to_hash(self.content, "an entry's content")?,
                hash: to_hash(self.hash, "an entry's hash")?,
            },
            record,
        })
    }
}

/// Checks that `events` are numbered from `first` without gaps.
fn check_numbering(case: &str, events: &[Recorded], first: u64) -> Result<(), Error> {
    for (expected, recorded) in (first..).zip(events) {
        if recorded.seq != expected {
            return Err(Error::Conflict {
                case: case.to_owned(),
                expected: recorded.seq,
                actual: expected - 1,
            });
        }
    }
    Ok(())
}

/// Appends `events` to the journal of `case`, and each to the ledger.
fn insert_events(
    tx: &Transaction<'_>,
    chain: &mut Chain,
    case: &str,
    events: &[Recorded],
) -> Result<(), Error> {
    let what = || format!("append to the journal of case `{case}`");
    let mut stmt = tx
        .prepare_cached(
            "INSERT INTO journal (case_id, seq, at, schema_version, event) VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .map_err(|err| db(&what())(err))?;
    for recorded in events {
        let unencodable = |err: serde_json::Error| {
            Error::Database(format!(
                "failed to encode event {} of case `{case}`: {err}",
                recorded.seq
            ))
        };
        // The journal keeps the event as serde_json writes it (where
        // serde_json preserves order, as in the CLI, an applicant's form
        // reads back as entered); the ledger hashes its canonical form.
        // Both are written from the event itself: a `Value` copy of it
        // cost the single writer more than the two encodings.
        let text = serde_json::to_string(&recorded.event).map_err(unencodable)?;
        stmt.execute(params![
            case,
            to_i64(recorded.seq, "seq")?,
            recorded.at,
            SCHEMA_VERSION,
            text
        ])
        .map_err(|err| db(&what())(err))?;
        let content = ledger::event_content(
            case,
            recorded.seq,
            recorded.at,
            SCHEMA_VERSION,
            &recorded.event,
        )
        .map_err(unencodable)?;
        chain.append_hashed(
            tx,
            EntryKind::Event,
            case,
            Some(recorded.seq),
            None,
            content,
        )?;
    }
    Ok(())
}

/// The ledger's end during a write transaction.
struct Chain {
    position: u64,
    head: Hash,
}

impl Chain {
    /// Reads where the chain ends. The transaction holds the write lock,
    /// so nobody else appends until it ends.
    fn head(tx: &Transaction<'_>) -> Result<Chain, Error> {
        let head: Option<(i64, Vec<u8>)> = tx
            .prepare_cached("SELECT position, hash FROM ledger ORDER BY position DESC LIMIT 1")
            .and_then(|mut stmt| {
                stmt.query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()
            })
            .map_err(db("read the ledger's head"))?;
        Ok(match head {
            None => Chain {
                position: 0,
                head: ledger::GENESIS,
            },
            Some((position, hash)) => Chain {
                position: u64::try_from(position).map_err(|_| {
                    Error::Corrupt(format!("the ledger has an entry at position {position}"))
                })?,
                head: to_hash(hash, "the ledger's head")?,
            },
        })
    }

    /// Appends the entry for `record`; `stored` is kept for records no
    /// other table holds.
    fn append(
        &mut self,
        tx: &Transaction<'_>,
        kind: EntryKind,
        subject: &str,
        seq: Option<u64>,
        stored: Option<&str>,
        record: &Value,
    ) -> Result<(), Error> {
        let content = ledger::record_hash(record);
        self.append_hashed(tx, kind, subject, seq, stored, content)
    }

    /// [`Chain::append`] for a record whose hash, `content`, is known.
    fn append_hashed(
        &mut self,
        tx: &Transaction<'_>,
        kind: EntryKind,
        subject: &str,
        seq: Option<u64>,
        stored: Option<&str>,
        content: Hash,
    ) -> Result<(), Error> {
        let entry = Entry::with_content(self.position + 1, self.head, kind, subject, seq, content);
        tx.prepare_cached(
            "INSERT INTO ledger (position, kind, subject, seq, record, prev, content, hash) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )
        .and_then(|mut stmt| {
            stmt.execute(params![
                entry.position as i64,
                kind.as_str(),
                subject,
                seq.map(|seq| seq as i64),
                stored,
                entry.prev,
                entry.content,
                entry.hash,
            ])
        })
        .map_err(db("append to the ledger"))?;
        self.position = entry.position;
        self.head = entry.hash;
        Ok(())
    }
}

fn to_hash(bytes: Vec<u8>, what: &str) -> Result<Hash, Error> {
    bytes
        .try_into()
        .map_err(|_| Error::Corrupt(format!("{what} is not a sha256 digest")))
}

/// Enters a schema-1 store's deployments and events into a new chain, in
/// the order they happened.
fn enter_history(tx: &Transaction<'_>) -> Result<(), Error> {
    let what = "enter the store's history into the ledger";
    let mut chain = Chain::head(tx)?;
    let deployments: Vec<(String, u32, String, Millis)> = tx
        .prepare("SELECT workflow, version, source, deployed_at FROM deployments ORDER BY deployed_at, workflow, version")
        .and_then(|mut stmt| {
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
                .collect()
        })
        .map_err(db(what))?;
    let events: Vec<(String, i64, Millis, u32, String)> = tx
        .prepare(
            "SELECT journal.case_id, journal.seq, journal.at, journal.schema_version, journal.event \
             FROM journal JOIN cases ON cases.id = journal.case_id \
             ORDER BY journal.at, cases.n, journal.seq",
        )
        .and_then(|mut stmt| {
            stmt.query_map([], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })?
            .collect()
        })
        .map_err(db(what))?;
    for (workflow, version, source, deployed_at) in deployments {
        let record = ledger::deployment_record(&workflow, version, &source, deployed_at, &[]);
        chain.append(
            tx,
            EntryKind::Deployment,
            &workflow,
            Some(u64::from(version)),
            None,
            &record,
        )?;
    }
    for (case, seq, at, schema_version, event) in events {
        let seq = u64::try_from(seq)
            .map_err(|_| Error::Corrupt(format!("case `{case}` has an event numbered {seq}")))?;
        let record = ledger::event_record(&case, seq, at, schema_version, &event);
        chain.append(tx, EntryKind::Event, &case, Some(seq), None, &record)?;
    }
    Ok(())
}

fn insert_roles(
    tx: &Transaction<'_>,
    case: &str,
    case_n: i64,
    roles: &[String],
) -> Result<(), Error> {
    if roles.is_empty() {
        return Ok(());
    }
    let mut stmt = tx
        .prepare_cached("INSERT OR IGNORE INTO case_roles (role, case_n) VALUES (?1, ?2)")
        .map_err(|err| db(&format!("index the roles of case `{case}`"))(err))?;
    for role in roles {
        stmt.execute(params![role, case_n])
            .map_err(|err| db(&format!("index the roles of case `{case}`"))(err))?;
    }
    Ok(())
}

fn create_case(
    tx: &Transaction<'_>,
    chain: &mut Chain,
    row: &CaseRow,
    events: &[Recorded],
) -> Result<(), Error> {
    let what = || format!("create case `{}`", row.id);
    check_numbering(&row.id, events, 1)?;
    let n_events = to_i64(events.len() as u64, "journal length")?;
    let roles = roles_json(&row.waiting_roles)?;
    let case_n: Option<i64> = tx
        .prepare_cached(
            "INSERT INTO cases (id, workflow, version, key, tracking_code, parent, status, \
             waiting_roles, next_due, created_at, updated_at, events) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12) \
             ON CONFLICT DO NOTHING RETURNING n",
        )
        .and_then(|mut stmt| {
            stmt.query_row(
                params![
                    row.id,
                    row.workflow,
                    row.version,
                    row.key,
                    row.tracking_code,
                    row.parent,
                    row.status.as_str(),
                    roles,
                    row.next_due,
                    row.created_at,
                    row.updated_at,
                    n_events,
                ],
                |r| r.get(0),
            )
            .optional()
        })
        .map_err(|err| db(&what())(err))?;
    let Some(case_n) = case_n else {
        return Err(duplicate(tx, row)?);
    };
    insert_roles(tx, &row.id, case_n, &row.waiting_roles)?;
    insert_events(tx, chain, &row.id, events)
}

/// Why a case row was not inserted: which unique column it collides on.
fn duplicate(tx: &Transaction<'_>, row: &CaseRow) -> Result<Error, Error> {
    let what = || format!("create case `{}`", row.id);
    if let Some(key) = &row.key {
        let taken = tx
            .prepare_cached("SELECT 1 FROM cases WHERE workflow = ?1 AND key = ?2")
            .and_then(|mut stmt| stmt.exists(params![row.workflow, key]))
            .map_err(|err| db(&what())(err))?;
        if taken {
            return Ok(Error::DuplicateKey {
                workflow: row.workflow.clone(),
                key: key.clone(),
            });
        }
    }
    let events: Option<i64> = tx
        .prepare_cached("SELECT events FROM cases WHERE id = ?1")
        .and_then(|mut stmt| stmt.query_row([&row.id], |r| r.get(0)).optional())
        .map_err(|err| db(&what())(err))?;
    Ok(match events {
        // Another writer created the same case first.
        Some(events) => Error::Conflict {
            case: row.id.clone(),
            expected: 1,
            actual: u64::try_from(events).unwrap_or_default(),
        },
        None => Error::Database(format!(
            "failed to create case `{}`: tracking code `{}` belongs to another case",
            row.id, row.tracking_code
        )),
    })
}

/// A case row as one transaction found and left it. A batch often appends
/// to the same case several times (its steps run while earlier commits
/// wait); the row is read once and written once, when the batch ends.
struct Touched {
    case_n: i64,
    events: u64,
    updated_at: Millis,
    roles: String,
    /// Status and due time as the transaction found them: an UPDATE that
    /// leaves both alone need not touch their indexes.
    found: (String, Option<Millis>),
    /// Status and due time after the transaction's appends, once there was one.
    after: Option<(&'static str, Option<Millis>)>,
}

/// The case rows a transaction touched, by case id.
type TouchedCases = HashMap<String, Touched>;

fn append(
    tx: &Transaction<'_>,
    chain: &mut Chain,
    touched: &mut TouchedCases,
    case: &str,
    events: &[Recorded],
    update: &CaseUpdate,
) -> Result<(), Error> {
    let what = || format!("append to case `{case}`");
    if !touched.contains_key(case) {
        let found = tx
            .prepare_cached(
                "SELECT n, events, updated_at, waiting_roles, status, next_due FROM cases WHERE id = ?1",
            )
            .and_then(|mut stmt| {
                stmt.query_row([case], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get::<_, String>(4)?,
                        r.get(5)?,
                    ))
                })
                .optional()
            })
            .map_err(|err| db(&what())(err))?;
        let Some((case_n, n_events, updated_at, roles, status, next_due)) = found else {
            return Err(Error::NoSuchCase(case.to_owned()));
        };
        let events = u64::try_from(n_events).map_err(|_| {
            Error::Corrupt(format!("case `{case}` has a journal of {n_events} events"))
        })?;
        touched.insert(
            case.to_owned(),
            Touched {
                case_n,
                events,
                updated_at,
                roles,
                found: (status, next_due),
                after: None,
            },
        );
    }
    let row = touched
        .get_mut(case)
        .unwrap_or_else(|| unreachable!("inserted above"));
    check_numbering(case, events, row.events + 1)?;
    insert_events(tx, chain, case, events)?;
    let roles = roles_json(&update.waiting_roles)?;
    if roles != row.roles {
        tx.prepare_cached("DELETE FROM case_roles WHERE case_n = ?1")
            .and_then(|mut stmt| stmt.execute([row.case_n]))
            .map_err(|err| db(&what())(err))?;
        insert_roles(tx, case, row.case_n, &update.waiting_roles)?;
        row.roles = roles;
    }
    if let Some(last) = events.last() {
        row.updated_at = last.at;
    }
    row.events += events.len() as u64;
    row.after = Some((update.status.as_str(), update.next_due));
    Ok(())
}

/// Writes the case rows a transaction's appends changed.
fn write_touched(tx: &Transaction<'_>, touched: &TouchedCases) -> Result<(), Error> {
    for (case, row) in touched {
        let Some((status, next_due)) = row.after else {
            continue;
        };
        let what = || format!("append to case `{case}`");
        let n_events = to_i64(row.events, "journal length")?;
        // SQLite rewrites the entries of every index on a column an UPDATE
        // sets, changed or not; status and next_due are in five indexes and
        // most appends (a step finished, the next one scheduled) change
        // neither, so such appends set only the columns no index holds.
        let res = if row.found.0 == status && row.found.1 == next_due {
            tx.prepare_cached(
                "UPDATE cases SET waiting_roles = ?2, updated_at = ?3, events = ?4 WHERE n = ?1",
            )
            .and_then(|mut stmt| {
                stmt.execute(params![row.case_n, row.roles, row.updated_at, n_events])
            })
        } else {
            tx.prepare_cached(
                "UPDATE cases SET status = ?2, waiting_roles = ?3, next_due = ?4, updated_at = ?5, events = ?6 \
                 WHERE n = ?1",
            )
            .and_then(|mut stmt| {
                stmt.execute(params![
                    row.case_n,
                    status,
                    row.roles,
                    next_due,
                    row.updated_at,
                    n_events
                ])
            })
        };
        res.map_err(|err| db(&what())(err))?;
    }
    Ok(())
}

fn enqueue(tx: &Transaction<'_>, entries: &[OutboxEntry]) -> Result<(), Error> {
    let mut stmt = tx
        .prepare_cached(
            "INSERT INTO outbox (key, case_id, channel, recipient, subject, body) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (key) DO NOTHING",
        )
        .map_err(db("enqueue messages"))?;
    for entry in entries {
        stmt.execute(params![
            entry.key,
            entry.case,
            entry.channel,
            entry.to,
            entry.subject,
            entry.body
        ])
        .map_err(|err| {
            if err.sqlite_extended_error_code() == Some(rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY)
            {
                Error::NoSuchCase(entry.case.clone())
            } else {
                db(&format!("enqueue message `{}`", entry.key))(err)
            }
        })?;
    }
    Ok(())
}

fn delivered(tx: &Transaction<'_>, keys: &[String]) -> Result<(), Error> {
    // The trait gives no time of delivery; the column records the system
    // clock for people inspecting the file, and nothing reads it back.
    let mut stmt = tx
        .prepare_cached(
            "UPDATE outbox SET delivered_at = CAST(unixepoch('subsec') * 1000 AS INTEGER) \
             WHERE key = ?1 AND delivered_at IS NULL",
        )
        .map_err(db("mark messages delivered"))?;
    for key in keys {
        stmt.execute([key])
            .map_err(|err| db(&format!("mark message `{key}` delivered"))(err))?;
    }
    Ok(())
}

fn decode_event(
    case: &str,
    seq: i64,
    at: Millis,
    schema_version: i64,
    event: &str,
) -> Result<Recorded, Error> {
    if schema_version > i64::from(SCHEMA_VERSION) {
        return Err(Error::Corrupt(format!(
            "event {seq} of case `{case}` has schema version {schema_version}; this build reads up to {SCHEMA_VERSION}"
        )));
    }
    let seq = u64::try_from(seq)
        .map_err(|_| Error::Corrupt(format!("case `{case}` has an event numbered {seq}")))?;
    let event = serde_json::from_str(event)
        .map_err(|err| Error::Corrupt(format!("event {seq} of case `{case}`: {err}")))?;
    Ok(Recorded { seq, at, event })
}

/// A `cases` row as stored, before its values are checked.
struct RawCase {
    id: String,
    workflow: String,
    version: i64,
    key: Option<String>,
    tracking_code: String,
    parent: Option<String>,
    status: String,
    waiting_roles: String,
    next_due: Option<Millis>,
    created_at: Millis,
    updated_at: Millis,
    events: i64,
}

impl RawCase {
    /// Reads the columns [`CASE_COLUMNS`] names, in its order.
    fn from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<RawCase> {
        Ok(RawCase {
            id: row.get(0)?,
            workflow: row.get(1)?,
            version: row.get(2)?,
            key: row.get(3)?,
            tracking_code: row.get(4)?,
            parent: row.get(5)?,
            status: row.get(6)?,
            waiting_roles: row.get(7)?,
            next_due: row.get(8)?,
            created_at: row.get(9)?,
            updated_at: row.get(10)?,
            events: row.get(11)?,
        })
    }

    fn into_row(self) -> Result<CaseRow, Error> {
        let corrupt = |what: &str, value: &dyn std::fmt::Display| {
            Error::Corrupt(format!("case `{}` has {what} `{value}`", self.id))
        };
        let version = u32::try_from(self.version).map_err(|_| corrupt("version", &self.version))?;
        let status =
            CaseStatus::parse(&self.status).ok_or_else(|| corrupt("status", &self.status))?;
        let waiting_roles = serde_json::from_str(&self.waiting_roles)
            .map_err(|_| corrupt("waiting roles", &self.waiting_roles))?;
        let events =
            u64::try_from(self.events).map_err(|_| corrupt("journal length", &self.events))?;
        Ok(CaseRow {
            id: self.id,
            workflow: self.workflow,
            version,
            key: self.key,
            tracking_code: self.tracking_code,
            parent: self.parent,
            status,
            waiting_roles,
            next_due: self.next_due,
            created_at: self.created_at,
            updated_at: self.updated_at,
            events,
        })
    }
}

/// `pins` as the deployments row keeps them.
fn pins_text(pins: &[Pin]) -> String {
    serde_json::to_string(pins).unwrap_or_else(|_| "[]".to_owned())
}

/// A `deployments` row as stored.
struct RawDeployment {
    workflow: String,
    version: i64,
    source: String,
    digest: String,
    deployed_at: Millis,
    pins: String,
}

impl RawDeployment {
    fn from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<RawDeployment> {
        Ok(RawDeployment {
            workflow: row.get(0)?,
            version: row.get(1)?,
            source: row.get(2)?,
            digest: row.get(3)?,
            deployed_at: row.get(4)?,
            pins: row.get(5)?,
        })
    }

    fn into_deployment(self) -> Result<Deployment, Error> {
        let version = u32::try_from(self.version).map_err(|_| {
            Error::Corrupt(format!(
                "workflow `{}` has a deployment numbered `{}`",
                self.workflow, self.version
            ))
        })?;
        let pins = serde_json::from_str(&self.pins).map_err(|err| {
            Error::Corrupt(format!(
                "the plugin pins of version {version} of `{}` are unreadable: {err}",
                self.workflow
            ))
        })?;
        Ok(Deployment {
            workflow: self.workflow,
            version,
            source: self.source,
            digest: self.digest,
            deployed_at: self.deployed_at,
            pins,
        })
    }
}
