//! The workflow language: YAML definitions in, a validated [`Workflow`] or a
//! list of [`Diagnostic`]s out.
//!
//! [`compile`] parses the YAML into a tree of positioned nodes
//! (`node`), deserializes the surface syntax from it (`source`, whose
//! JSON Schema [`json_schema`] prints), then checks everything the schema
//! cannot say and lowers the result into the [`model`] the engine runs
//! (`check`). Every problem found is reported, not only the first, each
//! with a stable code and the place in the source.
//!
//! What it does not do: IO. Plugins are known only through
//! [`PluginFacts`], which the caller implements (for example
//! [`crate::plugin::Directory`]); rendering diagnostics is the CLI's job.

mod check;
mod flow;
pub mod model;
mod node;
mod source;
mod steps;
#[cfg(test)]
mod tests;

pub use model::*;

use std::fmt;

/// A problem found in a workflow definition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// Stable, kebab-case identifier of the check, for example `unknown-plugin`.
    pub code: &'static str,
    /// What is wrong and where, in plain words.
    pub message: String,
    /// The place in the source, when there is one.
    pub span: Option<Span>,
    /// How to fix it, when there is more to say.
    pub help: Option<String>,
}

impl fmt::Display for Diagnostic {
    /// One line: `line:column: code: message`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(span) = &self.span {
            write!(f, "{}:{}: ", span.line, span.column)?;
        }
        write!(f, "{}: {}", self.code, self.message)
    }
}

/// A place in the source text.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Span {
    /// Byte offset from the start of the source.
    pub offset: usize,
    /// Length in bytes; 0 for a point.
    pub len: usize,
    /// Line, from 1.
    pub line: usize,
    /// Column (in characters), from 1.
    pub column: usize,
}

/// What the workflow language needs to know about plugins.
pub trait PluginFacts {
    /// The routes plugin `name` at `version` (a semver requirement, "*" for any) can take with `config`,
    /// or why it cannot be used.
    ///
    /// # Errors
    ///
    /// A [`PluginProblem`] saying why the plugin cannot be used this way.
    fn routes(
        &self,
        name: &str,
        version: &str,
        config: &crate::Json,
    ) -> Result<Vec<String>, PluginProblem>;
}

/// Why a step cannot use a plugin. The string is a human sentence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PluginProblem {
    /// No plugin has this name.
    Unknown(String),
    /// Plugins with this name exist, but none matches the version requirement.
    UnknownVersion(String),
    /// The plugin rejects the config.
    BadConfig(String),
    /// The catalogue has the plugin, but the host refuses it: unsigned, a
    /// bad or untrusted signature, changed bytes, a yanked version, a
    /// manifest that misstates the component.
    Refused(String),
    /// The plugin cannot be had now: the catalogue cannot be reached and
    /// the local cache does not have it, or the exact bytes a deployment
    /// pinned are gone.
    Unavailable(String),
}

impl fmt::Display for PluginProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PluginProblem::Unknown(reason)
            | PluginProblem::UnknownVersion(reason)
            | PluginProblem::Refused(reason)
            | PluginProblem::Unavailable(reason) => f.write_str(reason),
            PluginProblem::BadConfig(reason) => write!(f, "it rejects its config: {reason}"),
        }
    }
}

/// Parses and checks a workflow definition.
///
/// # Errors
///
/// Every problem found, sorted by position: YAML syntax (code `syntax`,
/// which stops the rest), the shape of the definition (`schema`), and
/// each check of the language (see the codes in `check.rs`).
pub fn compile(source: &str, plugins: &dyn PluginFacts) -> Result<Workflow, Vec<Diagnostic>> {
    let root = match node::parse(source) {
        Ok(root) => root,
        Err(err) => return Err(vec![syntax_error(source, &err)]),
    };
    let sink = node::Sink::default();
    let document = if matches!(root.value, node::Value::Null) {
        Err(node::DeError {
            message: "the definition is empty".to_owned(),
            span: Some(root.span),
        })
    } else {
        node::from_node::<source::Document>(source, &root, &sink)
    };
    let mut diagnostics: Vec<Diagnostic> =
        sink.into_inner().into_iter().map(schema_error).collect();
    let workflow = match document {
        Ok(document) => Some(check::check(&document, plugins, &mut diagnostics)),
        Err(err) => {
            diagnostics.push(schema_error(err));
            None
        }
    };
    match workflow {
        Some(workflow) if diagnostics.is_empty() => Ok(workflow),
        _ => {
            diagnostics.sort_by_key(|d| d.span.map_or((usize::MAX, 0), |s| (s.offset, s.len)));
            diagnostics.dedup();
            Err(diagnostics)
        }
    }
}

/// The names of the plugins a definition's steps use (`uses:`, in every
/// branch), sorted, each once; read from the syntax alone, so a definition
/// whose plugins are gone still answers. Empty if it does not parse.
pub fn plugins_used(source: &str) -> Vec<String> {
    fn walk(steps: &source::Sequence, out: &mut Vec<String>) {
        for step in steps.iter() {
            let node::Lenient::Ok(def) = step else {
                continue;
            };
            if let Some(uses) = &def.uses {
                let name = uses.split_once('@').map_or(uses.as_str(), |(name, _)| name);
                out.push(name.trim().to_owned());
            }
            if let Some(parallel) = &def.parallel
                && let Some(branches) = &parallel.branches
            {
                for (_, branch) in &branches.0 {
                    walk(branch, out);
                }
            }
        }
    }
    let Ok(root) = node::parse(source) else {
        return Vec::new();
    };
    let sink = node::Sink::default();
    let Ok(document) = node::from_node::<source::Document>(source, &root, &sink) else {
        return Vec::new();
    };
    let mut names = Vec::new();
    walk(&document.steps, &mut names);
    names.sort();
    names.dedup();
    names
}

/// The JSON Schema (draft 2020-12) of the workflow definition syntax,
/// pretty-printed with sorted keys, as committed in
/// `schema/workflow.schema.json`.
pub fn json_schema() -> String {
    let schema = schemars::generate::SchemaSettings::draft2020_12()
        .for_deserialize()
        .into_generator()
        .into_root_schema_for::<source::Document>();
    let value = crate::json::sorted(schema.to_value());
    let mut text = serde_json::to_string_pretty(&value).unwrap_or_default();
    text.push('\n');
    text
}

fn syntax_error(source: &str, err: &serde_saphyr::Error) -> Diagnostic {
    let err = err.without_snippet();
    let message = err.to_string();
    // serde-saphyr appends the position, which the span carries.
    let message = match message.rsplit_once(" at line ") {
        Some((head, _)) => head.to_owned(),
        None => message,
    };
    Diagnostic {
        code: "syntax",
        message,
        span: node::error_span(source, err),
        help: None,
    }
}

fn schema_error(mut err: node::DeError) -> Diagnostic {
    // serde names Rust's integer types; a definition's author knows integers.
    for ty in ["i64", "u32", "u64"] {
        err.message = err
            .message
            .replace(&format!("expected {ty}"), "expected an integer");
    }
    let (message, help) = match err.message.split_once(", expected ") {
        Some((head, expected)) if head.starts_with("unknown field") => {
            (head.to_owned(), Some(format!("expected {expected}")))
        }
        _ => (err.message, None),
    };
    Diagnostic {
        code: "schema",
        message,
        span: err.span,
        help,
    }
}
