//! What a step says about itself.

use serde_json::Value;

/// What a step is for; see the contract's `kind`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Checks case data; rejects it with problems or lets it continue.
    Validate,
    /// Chooses one or more named routes.
    Route,
    /// Tells someone about the case through [`crate::notify`].
    Notify,
    /// Computes new case data from the old.
    Transform,
    /// Anything else.
    Other,
}

/// A step's description, returned by [`crate::Step::describe`].
///
/// Schemas default to `true` (anything goes); set them so that the workflow
/// linter and the catalogue can check what flows in and out.
#[derive(Clone, Debug, PartialEq)]
pub struct Info {
    pub(crate) name: String,
    pub(crate) version: String,
    pub(crate) kind: Kind,
    pub(crate) description: String,
    pub(crate) config_schema: Value,
    pub(crate) input_schema: Value,
    pub(crate) output_schema: Value,
    pub(crate) routes: Vec<String>,
}

impl Info {
    /// A description with a name, a semantic version and a kind.
    pub fn new(name: impl Into<String>, version: impl Into<String>, kind: Kind) -> Info {
        Info {
            name: name.into(),
            version: version.into(),
            kind,
            description: String::new(),
            config_schema: Value::Bool(true),
            input_schema: Value::Bool(true),
            output_schema: Value::Bool(true),
            routes: Vec::new(),
        }
    }

    /// One or two sentences for a catalogue page.
    pub fn description(mut self, description: impl Into<String>) -> Info {
        self.description = description.into();
        self
    }

    /// The JSON Schema (draft 2020-12) of the config.
    pub fn config_schema(mut self, schema: Value) -> Info {
        self.config_schema = schema;
        self
    }

    /// The JSON Schema of the case data the step reads.
    pub fn input_schema(mut self, schema: Value) -> Info {
        self.input_schema = schema;
        self
    }

    /// The JSON Schema of the case data the step hands on.
    pub fn output_schema(mut self, schema: Value) -> Info {
        self.output_schema = schema;
        self
    }

    /// Every route name a [`crate::Outcome::Route`] of this step can name.
    pub fn routes<I, S>(mut self, routes: I) -> Info
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.routes = routes.into_iter().map(Into::into).collect();
        self
    }

    /// The step's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The step's version.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The step's kind.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The declared route names.
    pub fn route_names(&self) -> &[String] {
        &self.routes
    }
}
