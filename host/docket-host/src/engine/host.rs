//! [`Host`]: the embedder's handle. It owns the store, the plugin runtime,
//! the cases in memory, the worker threads that run plugin steps and the
//! committer thread that writes every change.
//!
//! How a change reaches the disk: a worker (or an API call) locks a case,
//! lets [`Tx`] emit events, and sends them to the committer *while still
//! holding the lock*, so a case's events reach the committer in journal
//! order. The committer writes everything that is waiting in one
//! transaction (group commit), and only then starts what follows from it:
//! the next plugin execution, the delivery of notifications, a child case.
//! An API call that changes a case returns once its events are durable.

use super::advance::{Effect, PluginRun, Tx};
use super::clock::{Clock, from_millis, to_millis};
use super::outbox::Deliver;
use super::plugins::{Pinned, PluginSource};
use super::state::{CaseState, scope_of};
use super::{CaseView, Decision, DeployError, Error, Refusal, Retained, StartCase, Started};
use crate::plugin::{Grants, Limits, Plugin, StepContext};
use crate::store::{
    Backend, CaseFilter, CaseRow, Deployment, Ending, Event, Millis, OutboxEntry, ParentRef, Pin,
    Recorded, Verdict, Write,
};
use crate::workflow::{self, StepKind, Workflow};
use crossbeam_channel::{Receiver, Sender};
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher as _, Hasher as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

/// How a [`Host`] runs.
#[derive(Clone, Debug)]
pub struct HostConfig {
    /// Threads executing plugin steps. Default: the number of cores.
    pub workers: usize,
    /// Limits of one plugin execution; a step's `timeout` replaces the deadline.
    pub limits: Limits,
    /// Seed for case ids and tracking codes; `None` for a random one.
    /// Tests set it to get the same ids every run.
    pub seed: Option<u64>,
    /// The most writes one transaction takes.
    pub max_batch: usize,
    /// The key that signs ledger checkpoints; `None` keeps the chain
    /// without signing it.
    pub ledger_key: Option<Arc<crate::ledger::SigningKey>>,
    /// Sign a checkpoint after this many new ledger entries (and when the
    /// host closes, if any were added).
    pub checkpoint_every: u64,
    /// Prometheus metrics to update as events are committed; `None` for none.
    pub metrics: Option<Arc<crate::insight::Metrics>>,
    /// How many of a workflow version's newest cases a status view measures
    /// step durations on, for its expected completion date.
    pub tracking_sample: usize,
}

impl Default for HostConfig {
    fn default() -> HostConfig {
        HostConfig {
            workers: std::thread::available_parallelism().map_or(2, |n| n.get()),
            limits: Limits::default(),
            seed: None,
            max_batch: 4096,
            ledger_key: None,
            checkpoint_every: 10_000,
            metrics: None,
            tracking_sample: 500,
        }
    }
}

/// The embeddable docket engine.
pub struct Host {
    inner: Arc<Inner>,
    threads: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Host").finish_non_exhaustive()
    }
}

/// A workflow version ready to run: the definition and a plugin per step,
/// loaded with that step's grants.
struct Deployed {
    workflow: Arc<Workflow>,
    plugins: HashMap<String, Plugin>,
    /// What each `uses:` requirement resolved to, sorted.
    pins: Vec<Pin>,
    input_schema: Option<(boon::Schemas, boon::SchemaIndex)>,
}

/// A plugin step to execute: the attempt begun by the event at `scheduled`.
struct Task {
    case: String,
    path: String,
    scheduled: u64,
}

struct Commit {
    writes: Vec<Write>,
    effects: Vec<(String, Effect)>,
    done: Option<Sender<Result<(), crate::store::Error>>>,
}

struct Inner {
    store: Arc<dyn Backend>,
    plugins: Arc<dyn PluginSource>,
    clock: Arc<dyn Clock>,
    deliver: Arc<dyn Deliver>,
    config: HostConfig,
    deployed: Mutex<HashMap<(String, u32), Arc<Deployed>>>,
    cases: Mutex<HashMap<String, Arc<Mutex<CaseState>>>>,
    tasks: Sender<Option<Task>>,
    commits: Sender<Option<Commit>>,
    busy: Mutex<usize>,
    idle: Condvar,
    rng: Mutex<StdRng>,
    /// Case ids made so far, counted from a random start.
    ids: AtomicU64,
    transactions: AtomicU64,
    events: AtomicU64,
    /// Keys of messages delivered but not yet marked so in the store.
    delivered: Mutex<Vec<String>>,
    /// Ledger entries written since the last checkpoint.
    unsigned: AtomicU64,
}

/// What the committer has written since the host opened.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CommitStats {
    /// Store transactions.
    pub transactions: u64,
    /// Journal events they wrote.
    pub events: u64,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Host {
    /// Opens a host on `store`, recovers every unfinished case from its
    /// journal, and starts the worker and committer threads. Steps that were
    /// running when the last process stopped run again; undelivered
    /// messages are delivered.
    ///
    /// # Errors
    ///
    /// If the store cannot be read, or a workflow an unfinished case runs on
    /// no longer compiles (a plugin it names is missing). A case whose
    /// journal cannot be read back (a row damaged by hand) does not stop the
    /// others: it is logged and left as stored, and reading it says why.
    pub fn open(
        store: Arc<dyn Backend>,
        plugins: Arc<dyn PluginSource>,
        clock: Arc<dyn Clock>,
        deliver: Arc<dyn Deliver>,
        config: HostConfig,
    ) -> Result<Host, Error> {
        let (tasks_tx, tasks_rx) = crossbeam_channel::unbounded();
        let (commits_tx, commits_rx) = crossbeam_channel::unbounded();
        let seed = config.seed.unwrap_or_else(|| {
            let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
            hasher.write_u64(clock.now().unsigned_abs());
            hasher.finish()
        });
        let workers = config.workers.max(1);
        let inner = Arc::new(Inner {
            store,
            plugins,
            clock,
            deliver,
            config,
            deployed: Mutex::new(HashMap::new()),
            cases: Mutex::new(HashMap::new()),
            tasks: tasks_tx,
            commits: commits_tx,
            busy: Mutex::new(0),
            idle: Condvar::new(),
            rng: Mutex::new(StdRng::seed_from_u64(seed)),
            // Where this host's count of ids starts: processes that start
            // at the same millisecond do not count alike.
            ids: AtomicU64::new(StdRng::seed_from_u64(!seed).next_u64()),
            transactions: AtomicU64::new(0),
            events: AtomicU64::new(0),
            delivered: Mutex::new(Vec::new()),
            unsigned: AtomicU64::new(0),
        });
        let mut threads = Vec::new();
        for index in 0..workers {
            let inner = inner.clone();
            let rx: Receiver<Option<Task>> = tasks_rx.clone();
            threads.push(
                std::thread::Builder::new()
                    .name(format!("docket-worker-{index}"))
                    .spawn(move || {
                        while let Ok(Some(task)) = rx.recv() {
                            inner.run_task(task);
                            inner.done(1);
                        }
                    })
                    .map_err(|err| Error::Internal(format!("cannot start a worker: {err}")))?,
            );
        }
        {
            let inner = inner.clone();
            threads.push(
                std::thread::Builder::new()
                    .name("docket-committer".into())
                    .spawn(move || inner.commit_loop(&commits_rx))
                    .map_err(|err| Error::Internal(format!("cannot start the committer: {err}")))?,
            );
        }
        let host = Host { inner, threads };
        host.recover()?;
        Ok(host)
    }

    /// Checks a workflow definition and records it as a new version, with
    /// the exact plugin bytes each step resolved to: a case of this version
    /// runs those, whatever is published later. Deploying the same source
    /// again changes nothing, not even what its plugins resolve to.
    ///
    /// # Errors
    ///
    /// [`DeployError::Invalid`] with every problem of the definition;
    /// [`DeployError::UnknownWorkflow`] for a subflow naming a workflow that
    /// is not deployed; [`DeployError::Plugin`] when a step's plugin cannot
    /// be loaded with its grants; [`DeployError::Store`] (among them a
    /// version deployed with other content).
    pub fn deploy(&self, source: &str) -> Result<Arc<Workflow>, DeployError> {
        let workflow =
            workflow::compile(source, self.inner.plugins.as_ref()).map_err(DeployError::Invalid)?;
        let digest = hex::encode(crate::ledger::sha256(source.as_bytes()));
        if let Some(existing) = self
            .inner
            .store
            .deployment(&workflow.name, Some(workflow.version))
            .map_err(DeployError::Store)?
            && existing.digest == digest
        {
            return self
                .inner
                .deployed(&workflow.name, Some(workflow.version))
                .map(|deployed| deployed.workflow.clone())
                .map_err(|err| DeployError::Deployed(Box::new(err)));
        }
        check_subflows(&workflow.steps, &*self.inner.store)?;
        let deployed = self.inner.prepare(workflow, self.inner.plugins.as_ref())?;
        let workflow = deployed.workflow.clone();
        self.inner
            .store
            .deploy(&Deployment {
                workflow: workflow.name.clone(),
                version: workflow.version,
                source: source.to_owned(),
                digest,
                deployed_at: self.inner.clock.now(),
                pins: deployed.pins.clone(),
            })
            .map_err(DeployError::Store)?;
        self.inner.unsigned.fetch_add(1, Ordering::Relaxed);
        lock(&self.inner.deployed).insert((workflow.name.clone(), workflow.version), deployed);
        Ok(workflow)
    }

    /// Replays the last recorded outcome of plugin step `step` of `case`
    /// (by id or tracking code): the component with the recorded sha256,
    /// on the step's config, the input rebuilt from the journal and the
    /// recorded clock reading, and compares what it decides now with what
    /// the journal says it decided.
    ///
    /// # Errors
    ///
    /// [`Error::NoSuchCase`]; [`Error::NotExplainable`] for a step that is
    /// not a plugin step or has no recorded outcome; [`Error::Store`].
    pub fn explain(&self, case: &str, step: &str) -> Result<super::Explanation, Error> {
        let row = crate::store::find_case(&*self.inner.store, case)?
            .ok_or_else(|| Error::NoSuchCase(case.to_owned()))?;
        if self.inner.store.purged(&row.id)?.is_some() {
            return Err(Error::NotExplainable(format!(
                "case `{}` was purged under its retention policy: its input is gone; its archive holds the record",
                row.id
            )));
        }
        let journal = self.inner.store.journal(&row.id)?;
        let mut limits = self.inner.config.limits;
        match self.inner.deployed(&row.workflow, Some(row.version)) {
            Ok(deployed) => {
                if let Some(timeout) = deployed.workflow.step(step).and_then(|s| s.timeout) {
                    limits.deadline = timeout;
                }
                let plugin = deployed
                    .plugins
                    .get(step)
                    .ok_or_else(|| format!("step `{step}` runs no plugin"));
                super::explain::explain(
                    &row.id,
                    &journal,
                    &deployed.workflow,
                    plugin,
                    step,
                    &limits,
                )
            }
            // The workflow no longer loads: a plugin it names is gone.
            Err(Error::Redeploy { problems, .. }) => Err(Error::NotExplainable(format!(
                "the plugins of {} version {} are no longer available: {}",
                row.workflow,
                row.version,
                problems.join("; ")
            ))),
            Err(err) => Err(err),
        }
    }

    /// Signs the ledger's current head with the configured key and keeps
    /// the checkpoint in the store. `None` without a key or with an empty
    /// ledger.
    ///
    /// # Errors
    ///
    /// If the store cannot be read or written.
    pub fn checkpoint(&self) -> Result<Option<crate::ledger::Checkpoint>, Error> {
        self.inner.checkpoint()
    }

    /// Starts a case of the latest version of `workflow` and returns once
    /// it is durably accepted. Steps then run on the worker threads.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownWorkflow`], [`Error::InvalidInput`] (every problem,
    /// each with a JSON pointer), [`Error::TooDeep`], [`Error::Store`] with
    /// [`crate::store::Error::DuplicateKey`] for a key in use. Nothing is
    /// written on error.
    pub fn start(&self, workflow: &str, start: StartCase) -> Result<Started, Error> {
        self.start_many(workflow, vec![start])?
            .pop()
            .unwrap_or_else(|| Err(Error::Internal("one start, one result".into())))
    }

    /// Starts many cases of the latest version of `workflow` at once (a
    /// backlog imported from another system, a batch from a form server),
    /// and returns once every accepted one is durable. Their first events
    /// share transactions, so this is much faster than one
    /// [`Host::start`] after another.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownWorkflow`] for the whole batch; otherwise one result
    /// per case, in order, with the errors of [`Host::start`]. A refused
    /// case writes nothing and does not stop the others.
    pub fn start_many(
        &self,
        workflow: &str,
        starts: Vec<StartCase>,
    ) -> Result<Vec<Result<Started, Error>>, Error> {
        let deployed = self.inner.deployed(workflow, None)?;
        // A key the batch gives twice is refused here, before its second
        // case starts a step that its failed creation would strand.
        let mut keys = HashSet::new();
        let submitted: Vec<_> = starts
            .into_iter()
            .map(|start| {
                self.inner.check_input(&deployed, &start.input)?;
                if let Some(key) = &start.key
                    && (!keys.insert(key.clone())
                        || self.inner.store.case_by_key(workflow, key)?.is_some())
                {
                    return Err(Error::Store(crate::store::Error::DuplicateKey {
                        workflow: workflow.to_owned(),
                        key: key.clone(),
                    }));
                }
                let id = self.inner.new_id();
                self.inner.create_case(&deployed, id, start, None, true)
            })
            .collect();
        Ok(submitted
            .into_iter()
            .map(|submitted| {
                let (started, done) = submitted?;
                if let Some(done) = done {
                    match done.recv() {
                        Ok(Ok(())) => {}
                        Ok(Err(err)) => {
                            lock(&self.inner.cases).remove(&started.id);
                            return Err(Error::Store(err));
                        }
                        Err(_) => return Err(Error::Stopped),
                    }
                }
                Ok(started)
            })
            .collect())
    }

    /// Records a person's decision on an approval task.
    ///
    /// # Errors
    ///
    /// [`Error::Refused`] when the decision is not allowed: the step is not
    /// waiting for a decision, the person does not act in the step's role,
    /// four-eyes forbids them, or they already decided. Nothing is written.
    pub fn decide(&self, case: &str, decision: Decision) -> Result<(), Error> {
        self.inner.change(case, |state| {
            check_decision(state, &decision)?;
            Ok(move |tx: &mut Tx<'_>| {
                tx.decide(
                    &decision.step,
                    decision.verdict,
                    &decision.person,
                    &decision.role,
                    decision.comment.clone(),
                );
            })
        })
    }

    /// Delivers a named signal with data to a case. A wait step waiting for
    /// it moves on; otherwise the case keeps it until one does.
    ///
    /// # Errors
    ///
    /// [`Error::NoSuchCase`], [`Error::Refused`] if the case has ended,
    /// [`Error::TooDeep`].
    pub fn signal(&self, case: &str, name: &str, data: Value) -> Result<(), Error> {
        if crate::json::too_deep(&data) {
            return Err(Error::TooDeep {
                what: format!("the data of signal `{name}`"),
            });
        }
        let name = name.to_owned();
        self.inner.change(case, |state| {
            if state.ending.is_some() {
                return Err(Error::Refused(Refusal::CaseEnded {
                    case: state.id.clone(),
                }));
            }
            Ok(move |tx: &mut Tx<'_>| tx.signal(&name, data.clone()))
        })
    }

    /// The applicant's changed data for a case an approver returned.
    ///
    /// # Errors
    ///
    /// [`Error::Refused`] if the case is not waiting for a resubmission,
    /// [`Error::TooDeep`].
    pub fn resubmit(&self, case: &str, data: Value) -> Result<(), Error> {
        if crate::json::too_deep(&data) {
            return Err(Error::TooDeep {
                what: "the resubmitted data".to_owned(),
            });
        }
        self.inner.change(case, |state| {
            if state.returned.is_none() {
                return Err(Error::Refused(Refusal::NotReturned {
                    case: state.id.clone(),
                }));
            }
            Ok(move |tx: &mut Tx<'_>| tx.resubmit(data.clone()))
        })
    }

    /// Fires everything due by the clock (timers, deadlines, retries), runs
    /// every step that becomes due, and returns when nothing is left to do
    /// now: every case has ended or waits for people, signals or time.
    ///
    /// # Errors
    ///
    /// A store error.
    pub fn run_until_idle(&self) -> Result<(), Error> {
        loop {
            self.inner.wait_idle();
            let fired = self.tick()?;
            self.inner.wait_idle();
            if fired == 0 {
                return Ok(());
            }
        }
    }

    /// Fires what is due by the clock; returns how many cases it changed.
    ///
    /// # Errors
    ///
    /// A store error.
    pub fn tick(&self) -> Result<usize, Error> {
        let now = self.inner.clock.now();
        // Cases another process started or changed are due in the store.
        for id in self.inner.store.due_cases(now, 10_000)? {
            unless_unreadable(&id, self.inner.load_case(&id))?;
        }
        let cases: Vec<Arc<Mutex<CaseState>>> = lock(&self.inner.cases).values().cloned().collect();
        let mut fired = 0;
        for case in cases {
            let mut state = lock(&case);
            if state.next_due().is_none_or(|due| due > now) {
                continue;
            }
            let id = state.id.clone();
            self.inner.transact(&mut state, &id, None, |tx| tx.tick());
            fired += 1;
        }
        Ok(fired)
    }

    /// When something is next due by the clock, over all cases in memory.
    pub fn next_due(&self) -> Option<Millis> {
        let cases: Vec<Arc<Mutex<CaseState>>> = lock(&self.inner.cases).values().cloned().collect();
        cases.iter().filter_map(|c| lock(c).next_due()).min()
    }

    /// A case: its index row, its journal, and the steps it waits on.
    ///
    /// # Errors
    ///
    /// [`Error::NoSuchCase`], or a store error.
    pub fn case(&self, id: &str) -> Result<CaseView, Error> {
        let row = crate::store::find_case(&*self.inner.store, id)?
            .ok_or_else(|| Error::NoSuchCase(id.to_owned()))?;
        let journal = self.inner.store.journal(&row.id)?;
        let mut open = Vec::new();
        if !row.status.is_ended()
            && let Some(first) = journal.first()
        {
            // The open steps, from the committed journal.
            let deployed = self.inner.deployed(&row.workflow, Some(row.version))?;
            if let Some(mut state) =
                CaseState::new(row.id.clone(), deployed.workflow.clone(), first)
            {
                for event in &journal[1..] {
                    state.apply(event);
                }
                open = state.open_steps();
            }
        }
        Ok(CaseView { row, journal, open })
    }

    /// A case's status as a clerk follows it: stages in plain words,
    /// departments and roles, what happened so far and who decided, what
    /// is awaited, deadlines and the expected completion date (measured on
    /// the newest [`HostConfig::tracking_sample`] cases of its version).
    ///
    /// # Errors
    ///
    /// [`Error::NoSuchCase`], or a store error.
    pub fn status(&self, case: &str) -> Result<crate::tracking::Status, Error> {
        let view = self.case(case)?;
        let row = &view.row;
        // An ended case's workflow may no longer load (a plugin is gone):
        // its status is still shown, with stages named after their ids.
        let deployed = match self.inner.deployed(&row.workflow, Some(row.version)) {
            Ok(deployed) => Some(deployed),
            Err(Error::Redeploy { .. }) if row.status.is_ended() => None,
            Err(err) => return Err(err),
        };
        let durations = crate::tracking::Durations::measure(
            &*self.inner.store,
            &row.workflow,
            row.version,
            self.inner.config.tracking_sample,
        )?;
        Ok(crate::tracking::status(
            &view,
            deployed.as_ref().map(|d| &*d.workflow),
            &durations,
            self.inner.clock.now(),
        ))
    }

    /// The public view of the case with `tracking_code`: stages, dates,
    /// outcomes and the fields its definition marks public, nothing
    /// personal. Only a tracking code finds a case here, never its id.
    ///
    /// # Errors
    ///
    /// [`Error::NoSuchCase`], or a store error.
    pub fn track(&self, tracking_code: &str) -> Result<crate::tracking::PublicStatus, Error> {
        let row = self
            .inner
            .store
            .case_by_tracking_code(tracking_code)?
            .ok_or_else(|| Error::NoSuchCase(tracking_code.to_owned()))?;
        Ok(self.status(&row.id)?.public())
    }

    /// Applies every deployed workflow version's retention policy: each
    /// case that ended longer ago than the policy keeps it is archived (its
    /// audit bundle, written to `archive/<workflow>/<case>.json`, which
    /// verifies on its own) and then purged of personal data
    /// ([`crate::store::Backend::purge`]); the ledger records the purge and
    /// the archive's sha256, and still verifies. Then the store is rewritten
    /// ([`crate::store::Backend::reclaim`]) so the purged data leaves its
    /// files, even when the run stops early; on SQLite that costs a `VACUUM`
    /// of the whole file. Cases already purged are skipped, so running it
    /// again does nothing new.
    ///
    /// # Errors
    ///
    /// [`Error::Archive`] if an archive cannot be made (no signing key to
    /// cover the case with a checkpoint, or the file cannot be written;
    /// that case is not purged), or a store error.
    pub fn apply_retention(&self, archive: &Path) -> Result<Vec<Retained>, Error> {
        let mut retained = Vec::new();
        let result = self.retain(archive, &mut retained);
        // Whatever stopped the run, what was purged leaves the file.
        if !retained.is_empty() {
            self.inner.store.reclaim()?;
        }
        result.map(|()| retained)
    }

    fn retain(&self, archive: &Path, retained: &mut Vec<Retained>) -> Result<(), Error> {
        let now = self.inner.clock.now();
        for deployment in self.inner.store.deployments()? {
            let (name, version) = (&deployment.workflow, deployment.version);
            let deployed = match self.inner.deployed(name, Some(version)) {
                Ok(deployed) => deployed,
                Err(err @ Error::Redeploy { .. }) => {
                    tracing::warn!("retention of {name} v{version} skipped: {err}");
                    continue;
                }
                Err(err) => return Err(err),
            };
            let Some(keep) = deployed.workflow.retention else {
                continue;
            };
            let cutoff = now.saturating_sub(super::duration_millis(keep));
            let days = keep.as_secs() / 86_400;
            let policy = if keep.as_secs() == days * 86_400 {
                format!("{name}@{version}: keep {days}d")
            } else {
                format!(
                    "{name}@{version}: keep {}",
                    humantime::format_duration(keep)
                )
            };
            let rows = self.inner.store.cases(&CaseFilter {
                workflow: Some(name.clone()),
                ..CaseFilter::default()
            })?;
            for row in rows {
                if row.version != version
                    || !row.status.is_ended()
                    || row.updated_at > cutoff
                    || self.inner.store.purged(&row.id)?.is_some()
                {
                    continue;
                }
                let (path, sha256) = self.archive(&row.id, &archive.join(name))?;
                let purged = self.inner.store.purge(&row.id, now, &policy, &sha256)?;
                retained.push(Retained {
                    workflow: name.clone(),
                    version,
                    ended: row.updated_at,
                    archive: path,
                    archive_sha256: sha256,
                    purged,
                });
            }
        }
        Ok(())
    }

    /// Writes the audit bundle of ended case `case` into `dir`, signing a
    /// checkpoint first if none covers it; returns its path and sha256.
    fn archive(&self, case: &str, dir: &Path) -> Result<(PathBuf, String), Error> {
        use crate::ledger::{ExportError, export_case};
        let failed = |reason: String| Error::Archive {
            case: case.to_owned(),
            reason,
        };
        let store = &*self.inner.store;
        let bundle = match export_case(store, case) {
            Err(ExportError::NotSigned { .. }) => {
                if self.inner.config.ledger_key.is_none() {
                    return Err(failed(
                        "no checkpoint covers it and the host has no ledger key to sign one"
                            .to_owned(),
                    ));
                }
                self.inner.checkpoint()?;
                export_case(store, case)
            }
            other => other,
        }
        .map_err(|err| failed(err.to_string()))?;
        let text = serde_json::to_vec_pretty(&bundle).map_err(|err| failed(err.to_string()))?;
        let path = dir.join(format!("{case}.json"));
        crate::files::write_atomically(&path, &text)
            .map_err(|err| failed(format!("cannot write `{}`: {err}", path.display())))?;
        Ok((path, hex::encode(crate::ledger::sha256(&text))))
    }

    /// Cases matching `filter`, newest first.
    ///
    /// # Errors
    ///
    /// A store error.
    pub fn cases(&self, filter: &CaseFilter) -> Result<Vec<CaseRow>, Error> {
        Ok(self.inner.store.cases(filter)?)
    }

    /// What the committer has written since the host opened: how well
    /// group commit works.
    pub fn commit_stats(&self) -> CommitStats {
        CommitStats {
            transactions: self.inner.transactions.load(Ordering::Relaxed),
            events: self.inner.events.load(Ordering::Relaxed),
        }
    }

    /// The store the host runs on.
    pub fn store(&self) -> &Arc<dyn Backend> {
        &self.inner.store
    }

    /// The clock the host reads.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.inner.clock
    }

    /// Loads every unfinished case into memory and restarts what was in flight.
    fn recover(&self) -> Result<(), Error> {
        let inner = &self.inner;
        for entry in inner.store.undelivered(usize::MAX)? {
            inner.deliver_now(vec![entry]);
        }
        for id in inner.store.unfinished_cases()? {
            unless_unreadable(&id, Self::recover_case(inner, &id))?;
        }
        Ok(())
    }

    /// Picks up one unfinished case after a restart: runs again the steps
    /// that were running, and settles child cases whose start or end did
    /// not reach it.
    fn recover_case(inner: &Inner, id: &str) -> Result<(), Error> {
        let id = id.to_owned();
        let Some(state) = inner.load_case(&id)? else {
            return Ok(());
        };
        let mut state = lock(&state);
        let mut writes_needed = Vec::new();
        for (path, active) in &state.active {
            if active.runnable {
                inner.queue(Task {
                    case: id.clone(),
                    path: path.clone(),
                    scheduled: active.scheduled,
                });
            }
            if let Some(child) = &active.child {
                writes_needed.push((path.clone(), child.clone()));
            }
        }
        // A child case whose start or end did not reach the parent.
        let mut unborn = Vec::new();
        for (path, child) in writes_needed {
            match child_in_store(&*inner.store, &child) {
                Err(err) => {
                    tracing::error!(case = %id, %child, "cannot read the child case: {err}");
                }
                Ok(Child::Running) => {}
                Ok(Child::Unborn) => {
                    let step = state.workflow.step(&path).cloned();
                    if let Some(workflow::Step {
                        kind: StepKind::Subflow { workflow, version },
                        ..
                    }) = step
                    {
                        let input = state.data_of(scope_of(&path)).clone();
                        let parent = ParentRef {
                            case: id.clone(),
                            step: path.clone(),
                        };
                        unborn.push((child, workflow, version, input, parent));
                    }
                }
                Ok(Child::Ended(ending, data)) => {
                    inner.transact(&mut state, &id, None, |tx| {
                        tx.child_ended(&path, &child, ending, data);
                    });
                }
            }
        }
        // Started without the parent's lock: a child that cannot start
        // fails the parent's step, which takes that lock.
        drop(state);
        for (child, workflow, version, input, parent) in unborn {
            inner.start_child(&child, &workflow, version, input, parent);
        }
        Ok(())
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        // Workers finish the steps already queued (their outcomes are
        // committed; had the process died instead, they would run again),
        // then the committer writes what they sent and stops. Work queued
        // after that stays in the journal for the next start.
        let workers = self.threads.len() - 1;
        for _ in 0..workers {
            let _ = self.inner.tasks.send(None);
        }
        let mut threads = std::mem::take(&mut self.threads);
        let committer = threads.pop();
        for handle in threads {
            let _ = handle.join();
        }
        let _ = self.inner.commits.send(None);
        if let Some(handle) = committer {
            let _ = handle.join();
        }
        if self.inner.unsigned.load(Ordering::Relaxed) > 0
            && let Err(err) = self.inner.checkpoint()
        {
            tracing::error!("could not sign a ledger checkpoint: {err}");
        }
    }
}

impl Inner {
    fn checkpoint(&self) -> Result<Option<crate::ledger::Checkpoint>, Error> {
        let Some(key) = &self.config.ledger_key else {
            return Ok(None);
        };
        let Some((position, head)) = self.store.ledger_head()? else {
            return Ok(None);
        };
        self.unsigned.store(0, Ordering::Relaxed);
        let checkpoint = key.checkpoint(position, head, self.clock.now());
        self.store.add_checkpoint(&checkpoint)?;
        Ok(Some(checkpoint))
    }

    /// A new case id: the clock's milliseconds, a count of this host's ids
    /// (from a random start), then 40 random bits, in Crockford's base32
    /// (20 characters).
    ///
    /// Ids in creation order (within a millisecond too, but where the
    /// count wraps) keep the cases in flight together in every index keyed
    /// by case (journal, ledger, cases, outbox), so that a group commit
    /// writes a few pages of each instead of one page per case.
    fn new_id(&self) -> String {
        let millis = u64::try_from(self.clock.now()).unwrap_or(0);
        let count = self.ids.fetch_add(1, Ordering::Relaxed);
        let random = lock(&self.rng).next_u64();
        let mut id = String::with_capacity(20);
        push_base32(&mut id, millis, 9);
        push_base32(&mut id, count, 3);
        push_base32(&mut id, random, 8);
        id
    }

    fn tracking_code(&self) -> String {
        const ALPHABET: &[u8] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
        let mut rng = lock(&self.rng);
        let mut value = rng.next_u64();
        let mut code = String::with_capacity(9);
        for i in 0..8 {
            if i == 4 {
                code.push('-');
            }
            code.push(ALPHABET[(value % 32) as usize] as char);
            value /= 32;
        }
        code
    }

    fn busy(&self, n: usize) {
        *lock(&self.busy) += n;
    }

    fn done(&self, n: usize) {
        let mut busy = lock(&self.busy);
        *busy -= n;
        if *busy == 0 {
            self.idle.notify_all();
        }
    }

    fn wait_idle(&self) {
        let mut busy = lock(&self.busy);
        while *busy > 0 {
            busy = self.idle.wait(busy).unwrap_or_else(|p| p.into_inner());
        }
    }

    fn queue(&self, task: Task) {
        self.busy(1);
        if self.tasks.send(Some(task)).is_err() {
            self.done(1);
        }
    }

    fn submit(&self, commit: Commit) {
        self.busy(1);
        if self.commits.send(Some(commit)).is_err() {
            self.done(1);
        }
    }

    /// The loaded workflow `name` at `version` (the latest if `None`).
    fn deployed(&self, name: &str, version: Option<u32>) -> Result<Arc<Deployed>, Error> {
        if let Some(version) = version
            && let Some(deployed) = lock(&self.deployed).get(&(name.to_owned(), version))
        {
            return Ok(deployed.clone());
        }
        let deployment =
            self.store
                .deployment(name, version)?
                .ok_or_else(|| Error::UnknownWorkflow {
                    name: name.to_owned(),
                    version,
                })?;
        let key = (deployment.workflow.clone(), deployment.version);
        if let Some(deployed) = lock(&self.deployed).get(&key) {
            return Ok(deployed.clone());
        }
        // A deployment from before pins resolves its plugins as it did then.
        let pinned = Pinned::new(self.plugins.as_ref(), &deployment.pins);
        let source: &dyn PluginSource = if deployment.pins.is_empty() {
            self.plugins.as_ref()
        } else {
            &pinned
        };
        let workflow = workflow::compile(&deployment.source, source).map_err(|diagnostics| {
            Error::Redeploy {
                name: deployment.workflow.clone(),
                version: deployment.version,
                problems: diagnostics.iter().map(ToString::to_string).collect(),
            }
        })?;
        let deployed = self
            .prepare(workflow, source)
            .map_err(|err| Error::Redeploy {
                name: deployment.workflow.clone(),
                version: deployment.version,
                problems: vec![err.to_string()],
            })?;
        lock(&self.deployed).insert(key, deployed.clone());
        Ok(deployed)
    }

    /// Loads a plugin for every plugin step from `source`, with the step's
    /// grants, and compiles the input schema.
    fn prepare(
        &self,
        workflow: Workflow,
        source: &dyn PluginSource,
    ) -> Result<Arc<Deployed>, DeployError> {
        let mut plugins = HashMap::new();
        let mut pins = Vec::new();
        collect_plugins(&workflow.steps, "", source, &mut plugins, &mut pins)?;
        pins.sort();
        pins.dedup();
        for plugin in plugins.values() {
            let info = plugin.info();
            self.store
                .plugin_loaded(
                    &info.name,
                    &info.version,
                    &plugin.digest().to_hex(),
                    self.clock.now(),
                )
                .map_err(DeployError::Store)?;
        }
        let input_schema = match &workflow.input_schema {
            None => None,
            Some(schema) => {
                let mut compiler = boon::Compiler::new();
                compiler.set_default_draft(boon::Draft::V2020_12);
                let url = format!("docket:/{}/{}/input", workflow.name, workflow.version);
                let mut schemas = boon::Schemas::new();
                let invalid =
                    |err: boon::CompileError| DeployError::InputSchema(format!("{err:#}"));
                compiler
                    .add_resource(&url, schema.clone())
                    .map_err(invalid)?;
                let index = compiler.compile(&url, &mut schemas).map_err(invalid)?;
                Some((schemas, index))
            }
        };
        Ok(Arc::new(Deployed {
            workflow: Arc::new(workflow),
            plugins,
            pins,
            input_schema,
        }))
    }

    fn check_input(&self, deployed: &Deployed, input: &Value) -> Result<(), Error> {
        if crate::json::too_deep(input) {
            return Err(Error::TooDeep {
                what: "the input".to_owned(),
            });
        }
        let Some((schemas, index)) = &deployed.input_schema else {
            return Ok(());
        };
        let Err(err) = schemas.validate(input, *index) else {
            return Ok(());
        };
        let mut problems = Vec::new();
        collect_problems(&err, &mut problems);
        problems.sort();
        Err(Error::InvalidInput {
            workflow: deployed.workflow.name.clone(),
            problems,
        })
    }

    /// Creates a case in memory and submits its first events; `wait` asks
    /// for a channel that says when they are durable.
    #[allow(clippy::type_complexity, reason = "a private pair")]
    fn create_case(
        &self,
        deployed: &Deployed,
        id: String,
        start: StartCase,
        parent: Option<ParentRef>,
        wait: bool,
    ) -> Result<(Started, Option<Receiver<Result<(), crate::store::Error>>>), Error> {
        let now = self.clock.now();
        let tracking_code = self.tracking_code();
        let workflow = deployed.workflow.clone();
        let first = Recorded {
            seq: 1,
            at: now,
            event: Event::CaseStarted {
                workflow: workflow.name.clone(),
                version: workflow.version,
                key: start.key.clone(),
                tracking_code: tracking_code.clone(),
                applicant: start.applicant.clone(),
                input: start.input,
                parent: parent.clone(),
            },
        };
        let mut state = CaseState::new(id.clone(), workflow.clone(), &first)
            .ok_or_else(|| Error::Internal("a case starts with CaseStarted".into()))?;
        let mut new_id = || self.new_id();
        let mut tx = Tx::new(&mut state, now, &mut new_id);
        tx.start();
        let (events, effects) = (tx.events, tx.effects);
        let mut all = vec![first];
        all.extend(events);
        let update = state.update();
        let row = CaseRow {
            id: id.clone(),
            workflow: workflow.name.clone(),
            version: workflow.version,
            key: start.key,
            tracking_code: tracking_code.clone(),
            parent: parent.map(|p| p.case),
            status: update.status,
            waiting_roles: update.waiting_roles,
            next_due: update.next_due,
            created_at: now,
            updated_at: now,
            events: all.len() as u64,
        };
        let status = update.status;
        let cell = Arc::new(Mutex::new(state));
        let guard = lock(&cell);
        if !status.is_ended() {
            lock(&self.cases).insert(id.clone(), cell.clone());
        }
        let (done_tx, done_rx) = if wait {
            let (tx, rx) = crossbeam_channel::bounded(1);
            (Some(tx), Some(rx))
        } else {
            (None, None)
        };
        let mut writes = vec![Write::CreateCase { row, events: all }];
        writes.extend(outbox_writes(&effects));
        let (runs, after_commit) = split_runs(effects);
        self.submit(Commit {
            writes,
            effects: after_commit.into_iter().map(|e| (id.clone(), e)).collect(),
            done: done_tx,
        });
        for run in runs {
            self.carry_out(&id, run);
        }
        drop(guard);
        Ok((
            Started {
                id,
                tracking_code,
                status,
            },
            done_rx,
        ))
    }

    fn start_child(
        &self,
        child: &str,
        workflow: &str,
        version: Option<u32>,
        input: Value,
        parent: ParentRef,
    ) {
        let result = self.deployed(workflow, version).and_then(|deployed| {
            self.create_case(
                &deployed,
                child.to_owned(),
                StartCase {
                    input,
                    key: None,
                    applicant: None,
                },
                Some(parent.clone()),
                false,
            )
        });
        if let Err(err) = result {
            // The child cannot start: the parent's subflow step fails.
            tracing::error!(parent = %parent.case, step = %parent.step, "cannot start child case: {err}");
            self.with_case(&parent.case, |inner, state| {
                inner.transact(state, &parent.case, None, |tx| {
                    tx.child_ended(&parent.step, child, Ending::Failed, Value::Null);
                });
            });
        }
    }

    /// Loads a case from its journal into memory (if it is not there).
    fn load_case(&self, id: &str) -> Result<Option<Arc<Mutex<CaseState>>>, Error> {
        if let Some(state) = lock(&self.cases).get(id) {
            return Ok(Some(state.clone()));
        }
        let Some(row) = self.store.case(id)? else {
            return Ok(None);
        };
        let journal = self.store.journal(id)?;
        let Some(first) = journal.first() else {
            return Ok(None);
        };
        let deployed = self.deployed(&row.workflow, Some(row.version))?;
        if let Some(metrics) = &self.config.metrics {
            metrics.resume(id, &journal);
        }
        let mut state = CaseState::new(id.to_owned(), deployed.workflow.clone(), first)
            .ok_or_else(|| Error::Internal(format!("case {id} does not start with CaseStarted")))?;
        for event in &journal[1..] {
            state.apply(event);
        }
        let ended = state.ending.is_some();
        let cell = Arc::new(Mutex::new(state));
        if ended {
            // Memory holds the cases that can still change.
            return Ok(Some(cell));
        }
        let mut cases = lock(&self.cases);
        Ok(Some(cases.entry(id.to_owned()).or_insert(cell).clone()))
    }

    fn with_case(&self, id: &str, f: impl FnOnce(&Inner, &mut CaseState)) {
        match self.load_case(id) {
            Ok(Some(cell)) => f(self, &mut lock(&cell)),
            Ok(None) => tracing::error!(case = %id, "no such case"),
            Err(err) => tracing::error!(case = %id, "cannot load case: {err}"),
        }
    }

    /// An API change to a case: checks it under the case's lock, applies
    /// it, and waits until it is durable.
    fn change<F, A>(&self, case: &str, check: F) -> Result<(), Error>
    where
        F: FnOnce(&CaseState) -> Result<A, Error>,
        A: FnOnce(&mut Tx<'_>),
    {
        let cell = self
            .load_case(case)?
            .ok_or_else(|| Error::NoSuchCase(case.to_owned()))?;
        let mut state = lock(&cell);
        let action = check(&state)?;
        let id = state.id.clone();
        let (done_tx, done_rx) = crossbeam_channel::bounded(1);
        let before = state.clone();
        self.transact(&mut state, &id, Some(done_tx), action);
        drop(state);
        match done_rx.recv() {
            Ok(Ok(())) => Ok(()),
            Ok(Err(err)) => {
                *lock(&cell) = before;
                Err(Error::Store(err))
            }
            Err(_) => Err(Error::Stopped),
        }
    }

    /// Runs `action` on a locked case and submits what it emitted.
    fn transact(
        &self,
        state: &mut CaseState,
        id: &str,
        done: Option<Sender<Result<(), crate::store::Error>>>,
        action: impl FnOnce(&mut Tx<'_>),
    ) {
        let now = self.clock.now();
        let mut new_id = || self.new_id();
        let mut tx = Tx::new(state, now, &mut new_id);
        action(&mut tx);
        let (events, effects) = (tx.events, tx.effects);
        if events.is_empty() {
            if let Some(done) = done {
                let _ = done.send(Ok(()));
            }
            return;
        }
        let update = state.update();
        if state.ending.is_some() {
            lock(&self.cases).remove(id);
        }
        let mut writes = vec![Write::Append {
            case: id.to_owned(),
            events,
            update,
        }];
        writes.extend(outbox_writes(&effects));
        let (runs, after_commit) = split_runs(effects);
        self.submit(Commit {
            writes,
            effects: after_commit
                .into_iter()
                .map(|e| (id.to_owned(), e))
                .collect(),
            done,
        });
        for run in runs {
            self.carry_out(id, run);
        }
    }

    fn run_task(&self, task: Task) {
        let Ok(Some(cell)) = self.load_case(&task.case) else {
            return;
        };
        let (ctx, input, input_sha256, workflow) = {
            let state = lock(&cell);
            let Some(attempt) = state.attempt_to_run(&task.path, task.scheduled) else {
                return;
            };
            let ctx = step_context(&state, &task.path, attempt, self.clock.now());
            // The text and hash are taken from the case's data in place:
            // a copy of the data would cost more than holding the lock.
            let data = state.data_of(scope_of(&task.path));
            (
                ctx,
                crate::Json::from_value(data),
                crate::ledger::record_hash(data),
                state.workflow.clone(),
            )
        };
        let Ok(deployed) = self.deployed(&workflow.name, Some(workflow.version)) else {
            return;
        };
        let (Some(plugin), Some(step)) =
            (deployed.plugins.get(&task.path), workflow.step(&task.path))
        else {
            return;
        };
        let StepKind::Plugin(plugin_step) = &step.kind else {
            return;
        };
        let mut limits = self.config.limits;
        if let Some(timeout) = step.timeout {
            limits.deadline = timeout;
        }
        let run = PluginRun {
            digest: plugin.digest(),
            ran_at: to_millis(ctx.now),
            input_sha256: hex::encode(input_sha256),
            input,
        };
        let execution = plugin.run(&ctx, &plugin_step.config, &run.input, &limits);
        let mut state = lock(&cell);
        let id = state.id.clone();
        self.transact(&mut state, &id, None, |tx| {
            tx.plugin_finished(&task.path, task.scheduled, run, execution);
        });
    }

    /// The single writer: group commits until the host stops.
    fn commit_loop(&self, rx: &Receiver<Option<Commit>>) {
        // Freeing a committed batch's events (made on the workers) took
        // about 7 % of the writer's time; a thread of its own frees them
        // while the next batch is written. When it lags two batches behind
        // (or did not start), the batch is freed here, as before, so that
        // batches never pile up in memory.
        let (freeing, to_free) = crossbeam_channel::bounded::<Vec<Write>>(2);
        std::thread::scope(|scope| {
            let started = std::thread::Builder::new()
                .name("docket-freeing".into())
                .spawn_scoped(scope, move || to_free.iter().for_each(drop));
            if let Err(err) = started {
                tracing::warn!("committed batches are freed by the committer: {err}");
            }
            self.commit_batches(rx, &freeing);
            drop(freeing);
        });
        self.flush_delivered();
    }

    fn commit_batches(&self, rx: &Receiver<Option<Commit>>, freeing: &Sender<Vec<Write>>) {
        let mut stopping = false;
        while !stopping && let Ok(Some(first)) = rx.recv() {
            let mut batch = vec![first];
            let mut writes = batch[0].writes.len();
            while writes < self.config.max_batch {
                match rx.try_recv() {
                    Ok(Some(commit)) => {
                        writes += commit.writes.len();
                        batch.push(commit);
                    }
                    Ok(None) => {
                        stopping = true;
                        break;
                    }
                    Err(_) => break,
                }
            }
            // The writes move into one list; each commit remembers its range.
            let mut all = Vec::with_capacity(writes + 1);
            let delivered = std::mem::take(&mut *lock(&self.delivered));
            if !delivered.is_empty() {
                all.push(Write::Delivered(delivered));
            }
            let mut ranges = Vec::with_capacity(batch.len());
            for commit in &mut batch {
                let start = all.len();
                all.append(&mut commit.writes);
                ranges.push(start..all.len());
            }
            self.transactions.fetch_add(1, Ordering::Relaxed);
            let events: usize = all
                .iter()
                .map(|w| match w {
                    Write::CreateCase { events, .. } | Write::Append { events, .. } => events.len(),
                    _ => 0,
                })
                .sum();
            self.events.fetch_add(events as u64, Ordering::Relaxed);
            let unsigned = self.unsigned.fetch_add(events as u64, Ordering::Relaxed);
            let results: Vec<Result<(), crate::store::Error>> = match self.store.commit(&all) {
                Ok(()) => batch.iter().map(|_| Ok(())).collect(),
                // One commit spoiled the batch: apply them one by one.
                Err(_) if batch.len() > 1 => ranges
                    .iter()
                    .map(|range| self.store.commit(&all[range.clone()]))
                    .collect(),
                Err(err) => vec![Err(err)],
            };
            let count = batch.len();
            for ((commit, result), range) in batch.into_iter().zip(results).zip(ranges) {
                match result {
                    Ok(()) => {
                        if let Some(metrics) = &self.config.metrics {
                            metrics.observe(&all[range]);
                        }
                        for (case, effect) in commit.effects {
                            self.carry_out(&case, effect);
                        }
                        if let Some(done) = commit.done {
                            let _ = done.send(Ok(()));
                        }
                    }
                    Err(err) => {
                        // Memory ran ahead of the store: forget the cases
                        // so they are read back from their journals.
                        for write in &all[range] {
                            if let Write::Append { case, .. }
                            | Write::CreateCase {
                                row: CaseRow { id: case, .. },
                                ..
                            } = write
                            {
                                lock(&self.cases).remove(case);
                            }
                        }
                        match commit.done {
                            Some(done) => {
                                let _ = done.send(Err(err));
                            }
                            None => tracing::error!("a commit failed: {err}"),
                        }
                    }
                }
            }
            if unsigned + events as u64 >= self.config.checkpoint_every
                && let Err(err) = self.checkpoint()
            {
                tracing::error!("could not sign a ledger checkpoint: {err}");
            }
            if let Err(full) = freeing.try_send(all) {
                drop(full.into_inner());
            }
            self.done(count);
        }
    }

    fn carry_out(&self, case: &str, effect: Effect) {
        match effect {
            Effect::Run { path, scheduled } => self.queue(Task {
                case: case.to_owned(),
                path,
                scheduled,
            }),
            Effect::Deliver(entries) => self.deliver_now(entries),
            Effect::StartChild {
                child,
                workflow,
                version,
                input,
                parent,
            } => self.start_child(&child, &workflow, version, input, parent),
            Effect::ChildEnded {
                parent,
                child,
                ending,
                data,
            } => self.with_case(&parent.case, |inner, state| {
                inner.transact(state, &parent.case, None, |tx| {
                    tx.child_ended(&parent.step, &child, ending, data.clone());
                });
            }),
        }
    }

    fn deliver_now(&self, entries: Vec<OutboxEntry>) {
        let mut delivered = Vec::new();
        for entry in entries {
            match self.deliver.deliver(&entry) {
                Ok(()) => delivered.push(entry.key),
                Err(err) => tracing::warn!(key = %entry.key, "delivery failed, will retry: {err}"),
            }
        }
        // Marked in the next transaction, not one of their own: a mark lost
        // to a crash only means a second delivery under the same key.
        lock(&self.delivered).extend(delivered);
    }

    /// Writes the delivery marks no transaction has taken yet.
    fn flush_delivered(&self) {
        let delivered = std::mem::take(&mut *lock(&self.delivered));
        if !delivered.is_empty()
            && let Err(err) = self.store.commit(&[Write::Delivered(delivered)])
        {
            tracing::warn!("cannot mark messages delivered: {err}");
        }
    }
}

/// Where a subflow's child case is, as the store has it.
enum Child {
    /// Never created: the process died before it started.
    Unborn,
    Running,
    /// Ended, with the data it ended with.
    Ended(Ending, Value),
}

fn child_in_store(store: &dyn Backend, child: &str) -> Result<Child, crate::store::Error> {
    let Some(row) = store.case(child)? else {
        return Ok(Child::Unborn);
    };
    let crate::store::CaseStatus::Ended(ending) = row.status else {
        return Ok(Child::Running);
    };
    let data = match store.journal(child)?.last().map(|r| &r.event) {
        Some(Event::CaseEnded { data, .. }) => data.clone(),
        _ => Value::Null,
    };
    Ok(Child::Ended(ending, data))
}

/// `result` of reading case `id` back, where a journal that cannot be
/// read is logged and skipped: recovery and `tick` do not stop every other
/// case for it. A store that cannot be read, or a deployment that cannot
/// be loaded, still stops them.
fn unless_unreadable<T>(id: &str, result: Result<T, Error>) -> Result<(), Error> {
    match result {
        Ok(_) => Ok(()),
        Err(err @ (Error::Store(crate::store::Error::Corrupt(_)) | Error::Internal(_))) => {
            tracing::error!(case = %id, "cannot read the case back, left as stored: {err}");
            Ok(())
        }
        Err(err) => Err(err),
    }
}

/// Appends the low `digits` base32 digits of `value` to `out`, most
/// significant first, so that text order is number order.
fn push_base32(out: &mut String, value: u64, digits: u32) {
    const ALPHABET: &[u8] = b"0123456789abcdefghjkmnpqrstvwxyz";
    for digit in (0..digits).rev() {
        out.push(ALPHABET[((value >> (5 * digit)) & 31) as usize] as char);
    }
}

/// Plugin steps to run now, and the effects that wait for their commit.
/// A step may run before the events that scheduled it are durable: commits
/// keep each case's order, so its outcome can never be durable first, and
/// if the process dies both run again. What leaves the process (messages,
/// child cases) waits.
fn split_runs(effects: Vec<Effect>) -> (Vec<Effect>, Vec<Effect>) {
    effects
        .into_iter()
        .partition(|e| matches!(e, Effect::Run { .. }))
}

/// The outbox entries a transaction's effects deliver: written in the same
/// commit as the events that produced them.
fn outbox_writes(effects: &[Effect]) -> Option<Write> {
    let entries: Vec<OutboxEntry> = effects
        .iter()
        .filter_map(|e| match e {
            Effect::Deliver(entries) => Some(entries.iter().cloned()),
            _ => None,
        })
        .flatten()
        .collect();
    (!entries.is_empty()).then_some(Write::Enqueue(entries))
}

fn check_subflows(steps: &[workflow::Step], store: &dyn Backend) -> Result<(), DeployError> {
    for step in steps {
        match &step.kind {
            StepKind::Subflow { workflow, version }
                if store
                    .deployment(workflow, *version)
                    .map_err(DeployError::Store)?
                    .is_none() =>
            {
                return Err(DeployError::UnknownWorkflow {
                    step: step.id.clone(),
                    name: workflow.clone(),
                    version: *version,
                });
            }
            StepKind::Parallel { branches, .. } => {
                for branch in branches {
                    check_subflows(&branch.steps, store)?;
                }
            }
            _ => {}
        }
    }
    Ok(())
}

fn collect_plugins(
    steps: &[workflow::Step],
    scope: &str,
    source: &dyn PluginSource,
    out: &mut HashMap<String, Plugin>,
    pins: &mut Vec<Pin>,
) -> Result<(), DeployError> {
    for step in steps {
        let path = super::state::path_in(scope, &step.id);
        match &step.kind {
            StepKind::Plugin(plugin_step) => {
                let plugin = source
                    .plugin(&plugin_step.plugin, &plugin_step.version)
                    .map_err(|problem| DeployError::Plugin {
                        step: path.clone(),
                        message: problem.to_string(),
                    })?;
                pins.push(Pin {
                    plugin: plugin_step.plugin.clone(),
                    requirement: plugin_step.version.clone(),
                    version: plugin.info().version.clone(),
                    sha256: plugin.digest().to_hex(),
                });
                let mut grants = Grants::default();
                for capability in &plugin_step.grant {
                    grants = grants.grant(*capability);
                }
                for (key, value) in &plugin_step.settings {
                    grants = grants.setting(key.clone(), value.clone());
                }
                let plugin = plugin
                    .with_grants(grants)
                    .map_err(|err| DeployError::Plugin {
                        step: path.clone(),
                        message: err.to_string(),
                    })?;
                out.insert(path, plugin);
            }
            StepKind::Parallel { branches, .. } => {
                for branch in branches {
                    collect_plugins(
                        &branch.steps,
                        &format!("{path}/{}", branch.name),
                        source,
                        out,
                        pins,
                    )?;
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// What a plugin execution of step `path` sees of its case.
pub(super) fn step_context(
    state: &CaseState,
    path: &str,
    attempt: u32,
    now: Millis,
) -> StepContext {
    StepContext {
        case_id: state.id.clone(),
        workflow: state.workflow.name.clone(),
        workflow_version: state.workflow.version,
        step_id: path.to_owned(),
        attempt,
        actor: None,
        now: from_millis(now),
    }
}

/// Whether `decision` may be recorded on `state`.
fn check_decision(state: &CaseState, decision: &Decision) -> Result<(), Error> {
    let refuse = |refusal| Err(Error::Refused(refusal));
    if state.ending.is_some() {
        return refuse(Refusal::CaseEnded {
            case: state.id.clone(),
        });
    }
    let approval = match state.workflow.step(&decision.step).map(|s| &s.kind) {
        Some(StepKind::Approval(approval)) => approval,
        _ => {
            return refuse(Refusal::NotWaiting {
                step: decision.step.clone(),
            });
        }
    };
    let Some(active) = state.active.get(&decision.step) else {
        return refuse(Refusal::NotWaiting {
            step: decision.step.clone(),
        });
    };
    let role = active.role.clone().unwrap_or_else(|| approval.role.clone());
    if decision.role != role {
        return refuse(Refusal::WrongRole {
            step: decision.step.clone(),
            role: decision.role.clone(),
            expected: role,
        });
    }
    if decision.verdict == Verdict::Approve {
        if approval.four_eyes.not_applicant
            && state.applicant.as_deref() == Some(decision.person.as_str())
        {
            return refuse(Refusal::Applicant {
                person: decision.person.clone(),
            });
        }
        if approval.four_eyes.not_previous_approvers && state.approvers.contains(&decision.person) {
            return refuse(Refusal::PreviousApprover {
                person: decision.person.clone(),
            });
        }
    }
    if active.approved_by.contains(&decision.person) {
        return refuse(Refusal::AlreadyDecided {
            person: decision.person.clone(),
            step: decision.step.clone(),
        });
    }
    Ok(())
}

/// The leaf violations of a JSON Schema validation, as `pointer: message`.
fn collect_problems(err: &boon::ValidationError<'_, '_>, out: &mut Vec<String>) {
    if !err.causes.is_empty() {
        for cause in &err.causes {
            collect_problems(cause, out);
        }
        return;
    }
    let pointer = err.instance_location.to_string();
    match &err.kind {
        boon::ErrorKind::Required { want } => {
            for property in want {
                out.push(format!(
                    "{pointer}/{property}: missing property `{property}`"
                ));
            }
        }
        kind => out.push(format!(
            "{}: {kind}",
            if pointer.is_empty() {
                "(input)"
            } else {
                &pointer
            }
        )),
    }
}
