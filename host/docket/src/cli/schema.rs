//! `docket schema`: prints the JSON Schema of workflow definitions.

/// Print the JSON Schema (draft 2020-12) of workflow definitions.
///
/// Editors that speak the YAML language server pick it up from a
/// `# yaml-language-server: $schema=...` comment at the top of a workflow.
#[derive(clap::Args)]
pub struct SchemaCommand {}

impl SchemaCommand {
    pub fn run(self) -> anyhow::Result<()> {
        print!("{}", docket_host::workflow::json_schema());
        Ok(())
    }
}
