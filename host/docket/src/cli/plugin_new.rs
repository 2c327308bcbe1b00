//! `docket plugin new`: a new plugin from a template that builds, passes
//! its own tests and runs through the host as generated.

use anyhow::{Context as _, bail};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The Rust template: one source per kind, a manifest, a README.
const RUST_MANIFEST: &str = include_str!("../../../../templates/rust-step/Cargo.toml");
const RUST_README: &str = include_str!("../../../../templates/rust-step/README.md");
const RUST_SOURCES: [(&str, &str); 4] = [
    (
        "validate",
        include_str!("../../../../templates/rust-step/validate.rs"),
    ),
    (
        "route",
        include_str!("../../../../templates/rust-step/route.rs"),
    ),
    (
        "notify",
        include_str!("../../../../templates/rust-step/notify.rs"),
    ),
    (
        "transform",
        include_str!("../../../../templates/rust-step/transform.rs"),
    ),
];

/// The other languages' templates: an age check each.
const PYTHON_APP: &str = include_str!("../../../../templates/python-step/app.py");
const PYTHON_WORLD: &str = include_str!("../../../../templates/python-step/wit/world.wit");
const JS_APP: &str = include_str!("../../../../templates/js-step/app.js");
const JS_WORLD: &str = include_str!("../../../../templates/js-step/wit/world.wit");

/// The step contract, copied into a Python or JavaScript plugin as its
/// WIT dependency.
const CONTRACT: [(&str, &str); 7] = [
    ("log.wit", include_str!("../../../../wit/log.wit")),
    ("notify.wit", include_str!("../../../../wit/notify.wit")),
    ("secrets.wit", include_str!("../../../../wit/secrets.wit")),
    ("settings.wit", include_str!("../../../../wit/settings.wit")),
    ("step.wit", include_str!("../../../../wit/step.wit")),
    ("types.wit", include_str!("../../../../wit/types.wit")),
    ("world.wit", include_str!("../../../../wit/world.wit")),
];

/// What a new plugin does, per kind: a summary, and a config and input
/// its README shows `docket step run` with.
const KINDS: [(&str, &str, &str, &str); 4] = [
    (
        "validate",
        "rejects case data that lacks a required field.",
        r#"{"required": ["name"]}"#,
        r#"{"name": "Ada"}"#,
    ),
    (
        "route",
        "routes a case to `high` or `low` by an amount.",
        r#"{"field": "amount", "threshold": 1000}"#,
        r#"{"amount": 1500}"#,
    ),
    (
        "notify",
        "tells the applicant that the case reached this step.",
        r#"{"channel": "email", "to_field": "email", "subject": "News"}"#,
        r#"{"email": "ada@example.org"}"#,
    ),
    (
        "transform",
        "adds a fee computed from a number of units.",
        r#"{"cents_per_unit": 250}"#,
        r#"{"units": 4}"#,
    ),
];

/// Create a plugin from a template: a Rust crate on docket-sdk (one per
/// kind), or a Python or JavaScript step.
#[derive(clap::Args)]
pub struct NewCommand {
    /// The plugin's name: lowercase letters, digits and `-`.
    name: String,
    /// What the step does (Rust): validate, route, notify or transform.
    #[arg(long, default_value = "validate")]
    kind: String,
    /// The language: rust, python or js.
    #[arg(long, default_value = "rust")]
    lang: String,
    /// Where to create it; default: a directory named after the plugin.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// The docket-sdk crate a Rust plugin depends on; default: the one in
    /// the docket source tree this binary was built from.
    #[arg(long)]
    sdk: Option<PathBuf>,
}

impl NewCommand {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        check_name(&self.name)?;
        let dir = self
            .dir
            .clone()
            .unwrap_or_else(|| PathBuf::from(&self.name));
        if dir.exists() && std::fs::read_dir(&dir).map_or(true, |mut d| d.next().is_some()) {
            bail!(
                "`{}` exists and is not empty; choose another --dir",
                dir.display()
            );
        }
        let files = match self.lang.as_str() {
            "rust" => self.rust_files()?,
            "python" | "js" if self.kind != "validate" => bail!(
                "the {} template is a validate step; write other kinds from it, or use --lang rust",
                self.lang
            ),
            "python" => script_files(&self.name, "app.py", PYTHON_APP, PYTHON_WORLD),
            "js" => script_files(&self.name, "app.js", JS_APP, JS_WORLD),
            other => bail!("unknown language `{other}` (expected rust, python or js)"),
        };
        for (path, text) in &files {
            let path = dir.join(path);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("failed to create `{}`", parent.display()))?;
            }
            std::fs::write(&path, text)
                .with_context(|| format!("failed to write `{}`", path.display()))?;
        }
        println!(
            "created {} plugin `{}` in {}",
            if self.lang == "rust" {
                self.kind.as_str()
            } else {
                self.lang.as_str()
            },
            self.name,
            dir.display()
        );
        Ok(ExitCode::SUCCESS)
    }

    fn rust_files(&self) -> anyhow::Result<Vec<(PathBuf, String)>> {
        let Some((_, source)) = RUST_SOURCES.iter().find(|(kind, _)| *kind == self.kind) else {
            bail!(
                "unknown kind `{}` (expected validate, route, notify or transform)",
                self.kind
            );
        };
        let (_, summary, config, input) = KINDS
            .iter()
            .find(|(kind, ..)| *kind == self.kind)
            .expect("every kind has a summary");
        let sdk = match &self.sdk {
            Some(sdk) => sdk.clone(),
            None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../sdk"),
        };
        let sdk = sdk.canonicalize().with_context(|| {
            format!(
                "there is no docket-sdk at `{}`; pass --sdk <path to docket's sdk/>",
                sdk.display()
            )
        })?;
        let fill = |text: &str| {
            text.replace("{{name}}", &self.name)
                .replace("{{Type}}", &type_name(&self.name))
                .replace("{{summary}}", summary)
                .replace("{{kind}}", &self.kind)
                .replace("{{config}}", config)
                .replace("{{input}}", input)
                .replace("{{sdk}}", &sdk.display().to_string().replace('\\', "/"))
        };
        Ok(vec![
            (PathBuf::from("Cargo.toml"), fill(RUST_MANIFEST)),
            (PathBuf::from("README.md"), fill(RUST_README)),
            (PathBuf::from("src/lib.rs"), fill(source)),
            (PathBuf::from(".gitignore"), "/target\n".to_owned()),
        ])
    }
}

/// A Python or JavaScript step: its source, its world, the contract as
/// the world's dependency, and a README with the build command.
fn script_files(name: &str, app: &str, source: &str, world: &str) -> Vec<(PathBuf, String)> {
    let build = if app == "app.py" {
        format!(
            "pip install componentize-py==0.25.1\n\
             componentize-py -d wit -w docket-plugins:{name}/{name} componentize --stub-wasi app -o {name}.wasm"
        )
    } else {
        format!(
            "npm install @bytecodealliance/componentize-js@0.23.0 @bytecodealliance/preview2-shim@0.25.0\n\
             npx componentize-js {app} --wit wit --world-name docket-plugins:{name}/{name} \\\n  \
             --disable stdio random clocks http fetch-event --out {name}.wasm"
        )
    };
    let readme = format!(
        "# {name}\n\nA docket step: an age check to start from \
         (docs/plugins-{lang}.md in the docket repository).\n\n\
         ```sh\n{build}\n\
         docket step run {name}.wasm --config '{{\"minimum\": 18}}' --input '{{\"age\": 17}}'\n```\n\n\
         `wit/world.wit` lists the capabilities the step imports (its permission request); \
         `wit/deps/docket-step/` is the step contract.\n",
        lang = if app == "app.py" { "python" } else { "js" },
    );
    let mut files = vec![
        (PathBuf::from(app), source.replace("my-step", name)),
        (
            PathBuf::from("wit/world.wit"),
            world.replace("my-step", name),
        ),
        (PathBuf::from("README.md"), readme),
    ];
    for (file, text) in CONTRACT {
        files.push((
            PathBuf::from("wit/deps/docket-step").join(file),
            text.to_owned(),
        ));
    }
    files
}

/// `fire-check` -> `FireCheck`.
fn type_name(name: &str) -> String {
    name.split('-')
        .map(|part| {
            let mut chars = part.chars();
            chars
                .next()
                .map(|first| first.to_uppercase().chain(chars).collect::<String>())
                .unwrap_or_default()
        })
        .collect()
}

fn check_name(name: &str) -> anyhow::Result<()> {
    let valid = name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.ends_with('-')
        && !name.contains("--");
    if !valid {
        bail!(
            "`{name}` is not a plugin name: start with a letter, use lowercase letters, digits and single `-`"
        );
    }
    Ok(())
}
