//! Delivering the messages steps ask for. A message is written to the
//! store's outbox in the same transaction as the event that produced it,
//! delivered after that transaction commits, and marked delivered after
//! that. A crash between delivery and the mark delivers it again, with the
//! same idempotency key: a receiver that remembers keys, like [`Mailbox`],
//! sees every message exactly once.

use crate::store::OutboxEntry;
use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Where outbox messages go.
pub trait Deliver: Send + Sync {
    /// Delivers one message. An error leaves it in the outbox, to be tried
    /// again later.
    ///
    /// # Errors
    ///
    /// A sentence saying why the message could not be delivered.
    fn deliver(&self, entry: &OutboxEntry) -> Result<(), String>;
}

/// Logs each message with `tracing` and delivers nothing.
#[derive(Clone, Copy, Debug, Default)]
pub struct LogOnly;

impl Deliver for LogOnly {
    fn deliver(&self, entry: &OutboxEntry) -> Result<(), String> {
        tracing::info!(key = %entry.key, channel = %entry.channel, to = ?entry.to, subject = %entry.subject, "notification");
        Ok(())
    }
}

/// An idempotent receiver: a JSON Lines file of delivered messages that
/// ignores a key it already holds, even across processes.
#[derive(Debug)]
pub struct Mailbox {
    path: PathBuf,
    state: Mutex<(File, HashSet<String>)>,
}

impl Mailbox {
    /// Opens (or creates) the mailbox file at `path`.
    ///
    /// # Errors
    ///
    /// If the file cannot be read or created.
    pub fn open(path: impl AsRef<Path>) -> std::io::Result<Mailbox> {
        let path = path.as_ref().to_owned();
        let mut keys = HashSet::new();
        let mut complete = 0;
        if let Ok(file) = File::open(&path) {
            let mut reader = BufReader::new(file);
            let mut line = String::new();
            while reader.read_line(&mut line)? > 0 {
                // A line without its newline was torn by a crash mid-write:
                // it is cut off below, and its message delivered again.
                if !line.ends_with('\n') {
                    break;
                }
                complete += line.len() as u64;
                if let Ok(value) = serde_json::from_str::<serde_json::Value>(&line)
                    && let Some(key) = value.get("key").and_then(|k| k.as_str())
                {
                    keys.insert(key.to_owned());
                }
                line.clear();
            }
        }
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        if file.metadata()?.len() > complete {
            file.set_len(complete)?;
        }
        Ok(Mailbox {
            path,
            state: Mutex::new((file, keys)),
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every message in the mailbox file, in delivery order.
    ///
    /// # Errors
    ///
    /// If the file cannot be read.
    pub fn read(path: impl AsRef<Path>) -> std::io::Result<Vec<serde_json::Value>> {
        let file = match File::open(path) {
            Ok(file) => file,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(err) => return Err(err),
        };
        let mut messages = Vec::new();
        for line in BufReader::new(file).lines() {
            if let Ok(value) = serde_json::from_str(&line?) {
                messages.push(value);
            }
        }
        Ok(messages)
    }
}

impl Deliver for Mailbox {
    fn deliver(&self, entry: &OutboxEntry) -> Result<(), String> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let (file, keys) = &mut *state;
        if keys.contains(&entry.key) {
            return Ok(());
        }
        let line = serde_json::json!({
            "key": entry.key,
            "case": entry.case,
            "channel": entry.channel,
            "to": entry.to,
            "subject": entry.subject,
            "body": entry.body,
        });
        let mut text = line.to_string();
        text.push('\n');
        file.write_all(text.as_bytes())
            .and_then(|()| file.sync_data())
            .map_err(|err| format!("cannot write to mailbox {}: {err}", self.path.display()))?;
        keys.insert(entry.key.clone());
        Ok(())
    }
}
