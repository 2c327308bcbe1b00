//! Write docket process steps in Rust.
//!
//! A step is a type that implements [`Step`]: it describes itself, and it
//! runs once per execution on typed config and case data. [`export!`] turns
//! it into a docket plugin when the crate is built for WebAssembly; the same
//! code runs natively under [`testing::Harness`] in a plain `cargo test`.
//!
//! ```
//! use docket_sdk::{Context, Info, Kind, Outcome, Problem, Step, StepError};
//! use serde::{Deserialize, Serialize};
//!
//! struct CheckAge;
//!
//! #[derive(Deserialize)]
//! struct Config { minimum: u32 }
//!
//! #[derive(Deserialize, Serialize)]
//! struct Applicant { name: String, age: u32 }
//!
//! impl Step for CheckAge {
//!     type Config = Config;
//!     type Input = Applicant;
//!     type Output = Applicant;
//!
//!     fn describe() -> Info {
//!         Info::new("validate-age", "1.0.0", Kind::Validate)
//!             .description("Rejects applicants younger than the configured minimum.")
//!     }
//!
//!     fn run(_ctx: &Context, config: Config, input: Applicant) -> Result<Outcome<Applicant>, StepError> {
//!         if input.age < config.minimum {
//!             return Ok(Outcome::reject([Problem::new("/age", "too-young", "the applicant is too young")]));
//!         }
//!         Ok(Outcome::Continue(input))
//!     }
//! }
//!
//! docket_sdk::export!(CheckAge);
//!
//! let run = docket_sdk::testing::Harness::new()
//!     .run::<CheckAge>(serde_json::json!({"minimum": 18}), serde_json::json!({"name": "Ada", "age": 17}));
//! assert_eq!(run.outcome().problems()[0].code(), "too-young");
//! ```
//!
//! Build the crate into a component with `docket plugin build` (see the
//! repository's README). The component imports only the capabilities the
//! code calls: [`log`] (always, since a panic's message travels through it),
//! [`notify`], [`settings`] and [`secrets`].
//!
//! What this crate deliberately does not do: give a step a clock, a random
//! source, files or a network. A step is a function of its context, config
//! and input, so that a recorded execution can be replayed.
#![deny(missing_docs)]

// The generated bindings name this crate by its path, from inside it too.
extern crate self as docket_sdk;

mod context;
mod info;
mod outcome;
mod prepared;
mod run;

pub mod log;
pub mod notify;
pub mod secrets;
pub mod settings;
#[cfg(not(target_arch = "wasm32"))]
pub mod testing;

#[cfg(target_arch = "wasm32")]
#[doc(hidden)]
pub mod guest;

pub use context::Context;
pub use info::{Info, Kind};
pub use outcome::{Outcome, Problem, StepError};
#[doc(hidden)]
pub use prepared::MARKER_VERSION;
pub use prepared::prepared;

/// A process step: what a plugin implements.
///
/// The host creates a fresh instance for every execution and calls
/// [`Step::run`] once, so nothing a step keeps in a `static` survives to the
/// next case.
pub trait Step: 'static {
    /// The step's configuration, the workflow's `with:` block. If it does not
    /// deserialize, the execution ends with a permanent [`StepError`].
    type Config: serde::de::DeserializeOwned;
    /// The case data the step reads. If it does not deserialize, the step
    /// rejects the case with one [`Problem`] pointing at the offending value.
    type Input: serde::de::DeserializeOwned;
    /// The case data the step hands on.
    type Output: serde::Serialize;

    /// Name, version, kind, schemas and routes. Read once, at load time.
    fn describe() -> Info;

    /// Checks a config beyond what deserializing it checks, and returns the
    /// route names [`Step::run`] can take with it. The default returns the
    /// routes of [`Step::describe`].
    ///
    /// # Errors
    ///
    /// A message saying what is wrong with `config`.
    fn routes(config: &Self::Config) -> Result<Vec<String>, String> {
        let _ = config;
        Ok(Self::describe().routes)
    }

    /// Prepares what every execution needs and no case changes: compiled
    /// tables, parsed constants, warmed caches. The default does nothing.
    ///
    /// `docket plugin build` runs it once, at build time, and stores what it
    /// left in memory in the component, so every execution starts with it
    /// done. Elsewhere (native tests, a plain `wasm32-wasip2` build) it runs
    /// before the first execution. It must not call a capability: at build
    /// time they trap.
    fn init() {}

    /// Runs the step once.
    ///
    /// # Errors
    ///
    /// A [`StepError`] when no outcome can be reached: transient if a retry
    /// may help, permanent if it will not.
    fn run(
        ctx: &Context,
        config: Self::Config,
        input: Self::Input,
    ) -> Result<Outcome<Self::Output>, StepError>;
}

/// Exports a [`Step`] as the plugin's implementation of the docket contract.
///
/// Use it once per plugin crate, at the crate root. It expands to nothing
/// when the crate is not built for WebAssembly, so native tests and other
/// native crates can link the plugin as a library.
///
/// `export!(MyStep, prepared)` also marks the component as one the host may
/// prepare per config: call `check-config` once, snapshot the instance, and
/// start that step's executions from the snapshot. Mark a step only if its
/// [`Step::routes`] leaves behind nothing but what [`prepared`] keeps, so
/// that a run from the snapshot gives exactly what a run from scratch gives.
#[macro_export]
macro_rules! export {
    ($step:ty, prepared) => {
        $crate::export!($step);

        // Read by the host (wasmparser), never by the guest. The custom
        // section survives pre-initialization and componentizing, which
        // copy a core module's custom sections.
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            #[unsafe(link_section = "docket:prepared-config")]
            #[used]
            static DOCKET_PREPARED_CONFIG: [u8; 1] = *$crate::MARKER_VERSION;
        };
    };
    ($step:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            struct DocketExport;
            impl $crate::guest::bindings::exports::docket::step::step::Guest for DocketExport {
                fn describe() -> $crate::guest::bindings::docket::step::types::Info {
                    $crate::guest::describe::<$step>()
                }
                fn check_config(
                    config: ::std::string::String,
                ) -> ::std::result::Result<
                    ::std::vec::Vec<::std::string::String>,
                    ::std::string::String,
                > {
                    $crate::guest::check_config::<$step>(&config)
                }
                fn run(
                    ctx: $crate::guest::bindings::docket::step::types::Context,
                    config: ::std::string::String,
                    input: ::std::string::String,
                ) -> ::std::result::Result<
                    $crate::guest::bindings::docket::step::types::Outcome,
                    $crate::guest::bindings::docket::step::types::StepError,
                > {
                    $crate::guest::run::<$step>(ctx, &config, &input)
                }
            }
    $crate::guest::bindings::export!(DocketExport with_types_in $crate::guest::bindings);

            /// What `docket plugin build` runs at build time; see `Step::init`.
            #[cfg(target_os = "unknown")]
            #[unsafe(export_name = "docket-init")]
            extern "C" fn docket_init() {
                $crate::guest::pre_initialize::<$step>();
            }
        };
    };
}
