//! `docket plugin inspect`: what a plugin is and what it asks for.

use super::RuntimeArgs;
use anyhow::Context as _;
use docket_host::plugin::Inspection;
use serde_json::{Value, json};
use std::path::PathBuf;

/// Show a plugin's name, version, kind, schemas, routes, imports (its
/// permission request), size and sha256.
#[derive(clap::Args)]
pub struct InspectCommand {
    /// The plugin component (.wasm).
    plugin: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    runtime: RuntimeArgs,
}

impl InspectCommand {
    pub fn run(self) -> anyhow::Result<()> {
        let bytes = std::fs::read(&self.plugin)
            .with_context(|| format!("failed to read `{}`", self.plugin.display()))?;
        let runtime = self.runtime.runtime()?;
        let inspection = runtime
            .inspect(&bytes)
            .with_context(|| format!("failed to inspect `{}`", self.plugin.display()))?;
        #[allow(clippy::print_stdout, reason = "this command's output")]
        if self.json {
            println!(
                "{}",
                serde_json::to_string_pretty(&inspection_json(&inspection))?
            );
        } else {
            print!("{}", render(&inspection));
        }
        Ok(())
    }
}

fn inspection_json(i: &Inspection) -> Value {
    json!({
        "name": i.info.name,
        "version": i.info.version,
        "kind": i.info.kind.as_str(),
        "description": i.info.description,
        "routes": i.info.routes,
        "capabilities": i.imports.capabilities.iter().map(|c| c.as_str()).collect::<Vec<_>>(),
        "wasi": i.imports.wasi,
        "forbidden": i.imports.forbidden,
        "size": i.size,
        "sha256": i.digest.to_hex(),
        "config_schema": i.info.config_schema.to_value(),
        "input_schema": i.info.input_schema.to_value(),
        "output_schema": i.info.output_schema.to_value(),
    })
}

fn render(i: &Inspection) -> String {
    let list = |items: Vec<String>| {
        if items.is_empty() {
            "none".to_owned()
        } else {
            items.join(", ")
        }
    };
    let schema = |json: &docket_host::Json| {
        serde_json::to_string_pretty(&json.to_value())
            .expect("a JSON value serializes")
            .replace('\n', "\n  ")
    };
    let mut out = format!("{} {} ({})\n", i.info.name, i.info.version, i.info.kind);
    if !i.info.description.is_empty() {
        out += &format!("  {}\n", i.info.description);
    }
    out += &format!(
        "\nsize          {} bytes ({:.1} MiB)\n",
        i.size,
        i.size as f64 / (1024.0 * 1024.0)
    );
    out += &format!("sha256        {}\n", i.digest);
    out += &format!(
        "capabilities  {}\n",
        list(
            i.imports
                .capabilities
                .iter()
                .map(ToString::to_string)
                .collect()
        )
    );
    out += &format!("wasi          {}\n", list(i.imports.wasi.clone()));
    if !i.imports.forbidden.is_empty() {
        out += &format!(
            "forbidden     {} (docket refuses to load this plugin)\n",
            i.imports.forbidden.join(", ")
        );
    }
    out += &format!("routes        {}\n", list(i.info.routes.clone()));
    out += &format!("\nconfig schema\n  {}\n", schema(&i.info.config_schema));
    out += &format!("input schema\n  {}\n", schema(&i.info.input_schema));
    out += &format!("output schema\n  {}\n", schema(&i.info.output_schema));
    out
}
