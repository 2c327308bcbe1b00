//! What a step decides, and how it fails.

use std::fmt;

/// What a step decided about the case.
///
/// A rejection is an outcome, not an error: the case data was looked at and
/// found wanting, and the workflow decides what happens next.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome<T> {
    /// Go on to the next step with this case data.
    Continue(T),
    /// Take the named routes with this case data.
    Route {
        /// One or more route names, each declared in [`crate::Info::routes`].
        routes: Vec<String>,
        /// The case data to carry along.
        data: T,
    },
    /// Stop: the case data has these problems.
    Reject(Vec<Problem>),
}

impl<T> Outcome<T> {
    /// Takes one route with `data`.
    pub fn route(route: impl Into<String>, data: T) -> Outcome<T> {
        Outcome::Route {
            routes: vec![route.into()],
            data,
        }
    }

    /// Rejects the case with `problems`.
    pub fn reject(problems: impl IntoIterator<Item = Problem>) -> Outcome<T> {
        Outcome::Reject(problems.into_iter().collect())
    }

    /// The problems of a rejection; empty for any other outcome.
    pub fn problems(&self) -> &[Problem] {
        match self {
            Outcome::Reject(problems) => problems,
            Outcome::Continue(_) | Outcome::Route { .. } => &[],
        }
    }

    /// Applies `f` to the data the outcome carries.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Outcome<U> {
        match self {
            Outcome::Continue(data) => Outcome::Continue(f(data)),
            Outcome::Route { routes, data } => Outcome::Route {
                routes,
                data: f(data),
            },
            Outcome::Reject(problems) => Outcome::Reject(problems),
        }
    }
}

/// One thing wrong with the case data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub(crate) pointer: String,
    pub(crate) code: String,
    pub(crate) message: String,
}

impl Problem {
    /// A problem at `pointer` (a JSON Pointer, `""` for the whole document),
    /// with a machine-readable `code` and a `message` for a person.
    pub fn new(
        pointer: impl Into<String>,
        code: impl Into<String>,
        message: impl Into<String>,
    ) -> Problem {
        Problem {
            pointer: pointer.into(),
            code: code.into(),
            message: message.into(),
        }
    }

    /// The JSON Pointer to the offending value.
    pub fn pointer(&self) -> &str {
        &self.pointer
    }

    /// The machine-readable code.
    pub fn code(&self) -> &str {
        &self.code
    }

    /// The message for a person.
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// Why a step could not reach an outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StepError {
    /// Something outside the step failed; a retry may succeed.
    Transient(String),
    /// A retry with the same context, config and input will fail again.
    Permanent(String),
}

impl StepError {
    /// A transient error: a retry may help.
    pub fn transient(message: impl fmt::Display) -> StepError {
        StepError::Transient(message.to_string())
    }

    /// A permanent error: a retry will not help.
    pub fn permanent(message: impl fmt::Display) -> StepError {
        StepError::Permanent(message.to_string())
    }

    /// The error's message.
    pub fn message(&self) -> &str {
        match self {
            StepError::Transient(message) | StepError::Permanent(message) => message,
        }
    }
}

impl fmt::Display for StepError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StepError::Transient(message) => write!(f, "transient: {message}"),
            StepError::Permanent(message) => write!(f, "permanent: {message}"),
        }
    }
}

impl std::error::Error for StepError {}
