//! The cross-crate integration suite, one binary: plugins built into
//! components and run through the host, hostile guests, the CLI, and the
//! project's invariants.
//!
//! It needs the components that `cargo xtask plugins` builds; `cargo xtask
//! test` builds them and then runs this suite.

mod catalog;
mod catalog_deploy;
mod cli;
mod cli_cases;
mod crash;
mod engine;
mod examples;
mod explain;
mod hostile;
mod insight;
mod lang_plugins;
mod ledger;
mod plugin_fixtures;
mod plugin_new;
mod plugins;
mod prepared;
mod retention;
mod runtime;
mod store_conformance;
mod support;
mod tidy;
mod tracking;
mod workflow_lint;
