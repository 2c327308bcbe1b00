//! Run a step natively, in a plain `cargo test`, the way the host runs it.
//!
//! [`Harness`] sets up a context, settings and secrets, runs the step on
//! JSON config and input through the same code path the WebAssembly export
//! uses, and captures what the step logged and sent.
//!
//! ```
//! # use docket_sdk::{Context, Info, Kind, Outcome, Step, StepError};
//! # struct Greet;
//! # impl Step for Greet {
//! #     type Config = serde_json::Value;
//! #     type Input = serde_json::Value;
//! #     type Output = serde_json::Value;
//! #     fn describe() -> Info { Info::new("notify-greet", "1.0.0", Kind::Notify) }
//! #     fn run(ctx: &Context, _: Self::Config, input: Self::Input) -> Result<Outcome<Self::Output>, StepError> {
//! #         let from = docket_sdk::settings::get("from").unwrap_or_default();
//! #         docket_sdk::notify::send(docket_sdk::notify::Notification::new("email", "hello", from));
//! #         Ok(Outcome::Continue(input))
//! #     }
//! # }
//! use docket_sdk::testing::Harness;
//! use serde_json::json;
//!
//! let run = Harness::new().setting("from", "permits@city.example").run::<Greet>(json!({}), json!({"a": 1}));
//! assert_eq!(run.outcome(), &docket_sdk::Outcome::Continue(json!({"a": 1})));
//! assert_eq!(run.notifications()[0].body, "permits@city.example");
//! ```

use crate::log::Level;
use crate::notify::Notification;
use crate::{Context, Outcome, Step, StepError};
use serde_json::Value;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::time::SystemTime;

/// A fake host for one step: context, settings and secrets.
#[derive(Clone, Debug, Default)]
pub struct Harness {
    ctx: Context,
    settings: BTreeMap<String, String>,
    secrets: BTreeMap<String, String>,
}

/// What one execution under a [`Harness`] produced.
#[derive(Clone, Debug)]
pub struct Run {
    result: Result<Outcome<Value>, StepError>,
    logs: Vec<(Level, String)>,
    notifications: Vec<Notification>,
}

struct Capture {
    settings: BTreeMap<String, String>,
    secrets: BTreeMap<String, String>,
    logs: Vec<(Level, String)>,
    notifications: Vec<Notification>,
}

thread_local! {
    static CAPTURE: RefCell<Option<Capture>> = const { RefCell::new(None) };
}

impl Harness {
    /// A harness with [`Context::default`], no settings and no secrets.
    pub fn new() -> Harness {
        Harness::default()
    }

    /// Sets the case id.
    pub fn case_id(mut self, case_id: impl Into<String>) -> Harness {
        self.ctx.case_id = case_id.into();
        self
    }

    /// Sets the workflow name and version.
    pub fn workflow(mut self, name: impl Into<String>, version: u32) -> Harness {
        self.ctx.workflow = name.into();
        self.ctx.workflow_version = version;
        self
    }

    /// Sets the step id.
    pub fn step_id(mut self, step_id: impl Into<String>) -> Harness {
        self.ctx.step_id = step_id.into();
        self
    }

    /// Sets the attempt number.
    pub fn attempt(mut self, attempt: u32) -> Harness {
        self.ctx.attempt = attempt;
        self
    }

    /// Sets the acting person.
    pub fn actor(mut self, actor: impl Into<String>) -> Harness {
        self.ctx.actor = Some(actor.into());
        self
    }

    /// Sets the engine's clock reading.
    pub fn now(mut self, now: SystemTime) -> Harness {
        self.ctx.now = now;
        self
    }

    /// Sets a deployment setting, read with [`crate::settings::get`].
    pub fn setting(mut self, key: impl Into<String>, value: impl Into<String>) -> Harness {
        self.settings.insert(key.into(), value.into());
        self
    }

    /// Sets a secret, read with [`crate::secrets::get`].
    pub fn secret(mut self, name: impl Into<String>, value: impl Into<String>) -> Harness {
        self.secrets.insert(name.into(), value.into());
        self
    }

    /// The context a step sees under this harness.
    pub fn context(&self) -> &Context {
        &self.ctx
    }

    /// Runs `S` once on `config` and `input`.
    ///
    /// # Panics
    ///
    /// If the step panics, and if it is called from within another run on the
    /// same thread.
    pub fn run<S: Step>(&self, config: Value, input: Value) -> Run {
        self.run_text::<S>(&config.to_string(), &input.to_string())
    }

    /// Runs `S` once on config and input given as JSON text, as the host
    /// passes them.
    ///
    /// # Panics
    ///
    /// Like [`Harness::run`].
    pub fn run_text<S: Step>(&self, config: &str, input: &str) -> Run {
        CAPTURE.with(|capture| {
            let previous = capture.borrow_mut().replace(Capture {
                settings: self.settings.clone(),
                secrets: self.secrets.clone(),
                logs: Vec::new(),
                notifications: Vec::new(),
            });
            assert!(previous.is_none(), "Harness::run called from within a run");
        });
        // Reset the capture even if the step panics, so the next test on this
        // thread starts clean.
        struct Reset;
        impl Drop for Reset {
            fn drop(&mut self) {
                CAPTURE.with(|capture| capture.borrow_mut().take());
            }
        }
        let reset = Reset;
        let result = crate::run::run_json::<S>(&self.ctx, config, input).map(|outcome| {
            outcome.map(|data| {
                serde_json::from_str(&data).expect("run_json returns data as valid JSON")
            })
        });
        let capture = CAPTURE
            .with(|capture| capture.borrow_mut().take())
            .expect("capture is set");
        drop(reset);
        Run {
            result,
            logs: capture.logs,
            notifications: capture.notifications,
        }
    }
}

impl Harness {
    /// Checks `config` for `S` the way the host does when it checks a
    /// workflow, and returns the routes `S` can take with it.
    ///
    /// # Errors
    ///
    /// What is wrong with `config`.
    pub fn check_config<S: Step>(config: Value) -> Result<Vec<String>, String> {
        crate::run::routes_json::<S>(&config.to_string())
    }
}

impl Run {
    /// The outcome, or the step's error.
    pub fn result(&self) -> &Result<Outcome<Value>, StepError> {
        &self.result
    }

    /// The outcome.
    ///
    /// # Panics
    ///
    /// If the step returned an error.
    #[track_caller]
    pub fn outcome(&self) -> &Outcome<Value> {
        match &self.result {
            Ok(outcome) => outcome,
            Err(err) => panic!("expected an outcome, the step failed: {err}"),
        }
    }

    /// The step's error.
    ///
    /// # Panics
    ///
    /// If the step reached an outcome.
    #[track_caller]
    pub fn error(&self) -> &StepError {
        match &self.result {
            Err(err) => err,
            Ok(outcome) => panic!("expected an error, the step reached an outcome: {outcome:?}"),
        }
    }

    /// The lines the step logged, in order.
    pub fn logs(&self) -> &[(Level, String)] {
        &self.logs
    }

    /// The notifications the step sent, in order.
    pub fn notifications(&self) -> &[Notification] {
        &self.notifications
    }
}

pub(crate) fn log(level: Level, message: &str) {
    let captured = CAPTURE.with(|capture| match capture.borrow_mut().as_mut() {
        Some(capture) => {
            capture.logs.push((level, message.to_owned()));
            true
        }
        None => false,
    });
    if !captured {
        #[allow(
            clippy::print_stderr,
            reason = "outside a harness, native logs go to the terminal"
        )]
        {
            eprintln!("[{level:?}] {message}");
        }
    }
}

#[track_caller]
pub(crate) fn send(notification: Notification) {
    CAPTURE.with(|capture| match capture.borrow_mut().as_mut() {
        Some(capture) => capture.notifications.push(notification),
        None => panic!("docket_sdk::notify::send called outside docket_sdk::testing::Harness::run"),
    });
}

pub(crate) fn setting(key: &str) -> Option<String> {
    CAPTURE.with(|capture| capture.borrow().as_ref()?.settings.get(key).cloned())
}

pub(crate) fn secret(name: &str) -> Option<String> {
    CAPTURE.with(|capture| capture.borrow().as_ref()?.secrets.get(name).cloned())
}
