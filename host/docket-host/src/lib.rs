//! docket-host: the embeddable docket runtime.
//!
//! docket runs public-sector processes as durable workflows whose automated
//! steps are sandboxed WebAssembly components. This crate is what an
//! integrator embeds; the `docket` binary is a thin CLI over it.
//!
//! Modules:
//!
//! - [`plugin`]: loads step plugins and runs each execution in a fresh,
//!   limited sandbox (the only module that touches wasmtime);
//! - [`json`]: [`Json`], the validated JSON text case data travels as;
//! - [`ledger`]: the hash chain over everything recorded, signed
//!   checkpoints, verification and audit bundles.
//! - [`insight`]: KPIs, bottlenecks, XES and OCEL exports, and Prometheus
//!   metrics, derived from the journal;
//! - [`catalog`]: plugin packages, publisher signatures, trust policies and
//!   the catalogues that hand packages out only verified;
//! - [`keys`]: the Ed25519 keys that sign checkpoints and packages;
//! - [`tracking`]: a case's status for clerks and its public view by
//!   tracking code, with the expected completion date.
//!
//! By default the crate depends on no CLI, HTTP or PostgreSQL crate:
//! embedding it brings in the runtime and nothing else.
//!
//! | feature | what it adds |
//! |---|---|
//! | `oci` | `catalog::OciCatalog` and `oci://` locations in [`catalog::open`]: catalogues in OCI registries, through `oci-client` (reqwest, hyper, rustls with ring) on a private tokio runtime |

pub mod catalog;
pub mod engine;
mod files;
pub mod insight;
pub mod json;
pub mod keys;
pub mod ledger;
pub mod plugin;
pub mod store;
pub mod tracking;
pub mod workflow;

pub use json::{Json, JsonError};
