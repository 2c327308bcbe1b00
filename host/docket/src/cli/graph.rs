//! `docket graph`: prints a workflow's steps and the ways between them as a
//! Mermaid flowchart or a Graphviz digraph.
//!
//! Normal flow is drawn solid (routes labelled with their name), rejection
//! dashed, errors and escalations dotted. A parallel step is a fork, one
//! cluster per branch, and a join. `on_reject` and `on_error` edges are
//! drawn only where they differ from the defaults (`reject`, `fail`),
//! except for approvals, whose rejection is a decision.

use super::lint::PluginArgs;
use docket_host::workflow::{Join, Step, StepKind, Target, Wait, Workflow};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

/// Print a workflow as a graph: steps, routes, parallel branches, ends.
///
/// The workflow must lint clean; otherwise its problems are shown as by
/// `docket lint` and the exit code is 1.
#[derive(clap::Args)]
pub struct GraphCommand {
    /// The workflow definition (YAML).
    workflow: PathBuf,
    /// The output format.
    #[arg(long, value_enum, default_value = "mermaid")]
    format: Format,
    #[command(flatten)]
    plugins: PluginArgs,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Format {
    /// A Mermaid flowchart (renders in GitHub and GitLab markdown).
    Mermaid,
    /// Graphviz dot.
    Dot,
}

impl GraphCommand {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        let compiled = self.plugins.compile(&self.workflow)?;
        let workflow = match &compiled.result {
            Ok(workflow) => workflow,
            Err(diagnostics) => {
                compiled.report(diagnostics);
                return Ok(ExitCode::from(1));
            }
        };
        let graph = Graph::of(workflow);
        let text = match self.format {
            Format::Mermaid => graph.mermaid(),
            Format::Dot => graph.dot(&workflow.name),
        };
        print!("{text}");
        Ok(ExitCode::SUCCESS)
    }
}

/// The node of the top-level `end` (`end` itself is a keyword in Mermaid).
const END: &str = "t_end";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Shape {
    Start,
    Plugin,
    Approval,
    Wait,
    Subflow,
    Fork,
    Join,
    Terminal,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Style {
    Normal,
    Reject,
    Dotted,
}

struct Node {
    id: String,
    label: String,
    shape: Shape,
    cluster: Option<usize>,
}

struct Edge {
    from: String,
    to: String,
    label: Option<String>,
    style: Style,
}

struct Cluster {
    label: String,
    parent: Option<usize>,
}

/// A format-neutral drawing of a workflow.
#[derive(Default)]
struct Graph {
    nodes: Vec<Node>,
    edges: Vec<Edge>,
    clusters: Vec<Cluster>,
    terminals: Vec<&'static str>,
}

impl Graph {
    fn of(workflow: &Workflow) -> Graph {
        let mut graph = Graph::default();
        graph.nodes.push(Node {
            id: "start".to_owned(),
            label: "start".to_owned(),
            shape: Shape::Start,
            cluster: None,
        });
        if !workflow.steps.is_empty() {
            // The first step of the first sequence is node `n1`.
            graph.edge("start", "n1", None, Style::Normal);
        }
        graph.sequence(&workflow.steps, None, END);
        for terminal in graph.terminals.clone() {
            graph.nodes.push(Node {
                id: terminal.to_owned(),
                label: terminal.trim_start_matches("t_").to_owned(),
                shape: Shape::Terminal,
                cluster: None,
            });
        }
        graph
    }

    fn edge(&mut self, from: &str, to: &str, label: Option<String>, style: Style) {
        // Plain flow to where a route or the default already leads adds nothing.
        let redundant = label.is_none()
            && style == Style::Normal
            && self.edges.iter().any(|e| e.from == from && e.to == to);
        if redundant {
            return;
        }
        self.edges.push(Edge {
            from: from.to_owned(),
            to: to.to_owned(),
            label,
            style,
        });
    }

    /// The node a target leads to; `done` is where `end` leads in this sequence.
    fn target(&mut self, ids: &HashMap<&str, String>, target: &Target, done: &str) -> String {
        let terminal = match target {
            Target::Step(id) => return ids.get(id.as_str()).cloned().unwrap_or_default(),
            Target::Complete if done != END => return done.to_owned(),
            Target::Complete => END,
            Target::Reject => "t_reject",
            Target::Fail => "t_fail",
        };
        if !self.terminals.contains(&terminal) {
            self.terminals.push(terminal);
        }
        terminal.to_owned()
    }

    /// Draws `steps`; returns the node of the first one.
    fn sequence(&mut self, steps: &[Step], cluster: Option<usize>, done: &str) -> Option<String> {
        let base = self.nodes.len();
        let ids: HashMap<&str, String> = steps
            .iter()
            .enumerate()
            .map(|(i, s)| (s.id.as_str(), format!("n{}", base + i)))
            .collect();
        // Reserve the node ids first, so nested sequences number after them.
        for step in steps {
            self.nodes.push(Node {
                id: ids[step.id.as_str()].clone(),
                label: String::new(),
                shape: Shape::Plugin,
                cluster,
            });
        }
        for (i, step) in steps.iter().enumerate() {
            let id = ids[step.id.as_str()].clone();
            let (label, shape) = describe(step);
            self.nodes[base + i].label = label;
            self.nodes[base + i].shape = shape;
            let mut exit = id.clone();
            match &step.kind {
                StepKind::Parallel { branches, join } => {
                    self.nodes[base + i].shape = Shape::Fork;
                    let join_id = format!("{id}_join");
                    let parallel_cluster = self.clusters.len();
                    self.clusters.push(Cluster {
                        label: step.id.clone(),
                        parent: cluster,
                    });
                    for branch in branches {
                        let branch_cluster = self.clusters.len();
                        self.clusters.push(Cluster {
                            label: branch.name.clone(),
                            parent: Some(parallel_cluster),
                        });
                        if let Some(first) =
                            self.sequence(&branch.steps, Some(branch_cluster), &join_id)
                        {
                            self.edge(&id, &first, None, Style::Normal);
                        }
                    }
                    let join = match join {
                        Join::All => "join: all".to_owned(),
                        Join::Any => "join: any".to_owned(),
                        Join::AtLeast(n) => format!("join: at least {n}"),
                    };
                    self.nodes.push(Node {
                        id: join_id.clone(),
                        label: join,
                        shape: Shape::Join,
                        cluster,
                    });
                    exit = join_id;
                }
                StepKind::Plugin(plugin) => {
                    for (route, target) in &plugin.routes {
                        let to = self.target(&ids, target, done);
                        self.edge(&id, &to, Some(route.clone()), Style::Normal);
                    }
                    if let Some(target) = &plugin.default_route {
                        let to = self.target(&ids, target, done);
                        self.edge(&id, &to, Some("default".to_owned()), Style::Normal);
                    }
                }
                _ => {}
            }
            let to = self.target(&ids, &step.next, done);
            self.edge(&exit, &to, None, Style::Normal);
            let decides = matches!(step.kind, StepKind::Approval(_));
            if decides || step.on_reject != Target::Reject {
                let to = self.target(&ids, &step.on_reject, done);
                self.edge(&exit, &to, Some("reject".to_owned()), Style::Reject);
            }
            if step.on_error != Target::Fail {
                let to = self.target(&ids, &step.on_error, done);
                self.edge(&exit, &to, Some("error".to_owned()), Style::Dotted);
            }
            for escalation in &step.escalations {
                if let Some(goto) = &escalation.goto {
                    let to = self.target(&ids, goto, done);
                    let after = duration_text(escalation.after);
                    self.edge(&id, &to, Some(format!("after {after}")), Style::Dotted);
                }
            }
        }
        steps.first().map(|s| ids[s.id.as_str()].clone())
    }

    fn mermaid(&self) -> String {
        let mut out = String::from("flowchart TD\n");
        self.mermaid_cluster(None, 1, &mut out);
        for edge in &self.edges {
            let arrow = match (edge.style, &edge.label) {
                (Style::Normal, None) => "-->".to_owned(),
                (Style::Normal, Some(label)) => format!("-->|{}|", mermaid_text(label)),
                (Style::Reject, None) => "-.->".to_owned(),
                (Style::Reject, Some(label)) => format!("-.->|{}|", mermaid_text(label)),
                (Style::Dotted, None) => "-.->".to_owned(),
                (Style::Dotted, Some(label)) => format!("-. {} .->", mermaid_text(label)),
            };
            let _ = writeln!(out, "    {} {arrow} {}", edge.from, edge.to);
        }
        out
    }

    fn mermaid_cluster(&self, cluster: Option<usize>, depth: usize, out: &mut String) {
        let indent = "    ".repeat(depth);
        for node in self.nodes.iter().filter(|n| n.cluster == cluster) {
            let text = format!("\"{}\"", mermaid_text(&node.label));
            let shape = match node.shape {
                Shape::Start | Shape::Terminal => format!("(({text}))"),
                Shape::Plugin => format!("[{text}]"),
                Shape::Approval => format!("{{{{{text}}}}}"),
                Shape::Wait => format!("([{text}])"),
                Shape::Subflow => format!("[[{text}]]"),
                Shape::Fork | Shape::Join => format!("{{{text}}}"),
            };
            let _ = writeln!(out, "{indent}{}{shape}", node.id);
        }
        for (i, child) in self.clusters.iter().enumerate() {
            if child.parent == cluster {
                let _ = writeln!(
                    out,
                    "{indent}subgraph c{i}[\"{}\"]",
                    mermaid_text(&child.label)
                );
                self.mermaid_cluster(Some(i), depth + 1, out);
                let _ = writeln!(out, "{indent}end");
            }
        }
    }

    fn dot(&self, name: &str) -> String {
        let mut out = format!(
            "digraph \"{}\" {{\n    node [shape=box, style=rounded, fontname=\"sans-serif\"];\n    edge [fontname=\"sans-serif\"];\n",
            dot_text(name)
        );
        self.dot_cluster(None, 1, &mut out);
        for edge in &self.edges {
            let mut attrs = Vec::new();
            if let Some(label) = &edge.label {
                attrs.push(format!("label=\"{}\"", dot_text(label)));
            }
            match edge.style {
                Style::Normal => {}
                Style::Reject => attrs.push("style=dashed".to_owned()),
                Style::Dotted => attrs.push("style=dotted".to_owned()),
            }
            let attrs = if attrs.is_empty() {
                String::new()
            } else {
                format!(" [{}]", attrs.join(", "))
            };
            let _ = writeln!(out, "    {} -> {}{attrs};", edge.from, edge.to);
        }
        out.push_str("}\n");
        out
    }

    fn dot_cluster(&self, cluster: Option<usize>, depth: usize, out: &mut String) {
        let indent = "    ".repeat(depth);
        for node in self.nodes.iter().filter(|n| n.cluster == cluster) {
            let shape = match node.shape {
                Shape::Start => "shape=circle, style=filled, fillcolor=black, fontcolor=white",
                Shape::Terminal => "shape=doublecircle",
                Shape::Plugin => "shape=box",
                Shape::Approval => "shape=hexagon",
                Shape::Wait => "shape=box, style=\"rounded,dashed\"",
                Shape::Subflow => "shape=box, peripheries=2",
                Shape::Fork | Shape::Join => "shape=diamond",
            };
            let _ = writeln!(
                out,
                "{indent}{} [label=\"{}\", {shape}];",
                node.id,
                dot_text(&node.label)
            );
        }
        for (i, child) in self.clusters.iter().enumerate() {
            if child.parent == cluster {
                let _ = writeln!(out, "{indent}subgraph cluster_{i} {{");
                let _ = writeln!(out, "{indent}    label=\"{}\";", dot_text(&child.label));
                self.dot_cluster(Some(i), depth + 1, out);
                let _ = writeln!(out, "{indent}}}");
            }
        }
    }
}

/// The step's label (its id, then what it does) and shape.
fn describe(step: &Step) -> (String, Shape) {
    let (what, shape) = match &step.kind {
        StepKind::Plugin(plugin) if plugin.version == "*" => (plugin.plugin.clone(), Shape::Plugin),
        StepKind::Plugin(plugin) => (
            format!("{}@{}", plugin.plugin, plugin.version),
            Shape::Plugin,
        ),
        StepKind::Parallel { .. } => ("parallel".to_owned(), Shape::Fork),
        StepKind::Approval(approval) if approval.required > 1 => (
            format!(
                "approval: {} ({} of them)",
                approval.role, approval.required
            ),
            Shape::Approval,
        ),
        StepKind::Approval(approval) => (format!("approval: {}", approval.role), Shape::Approval),
        StepKind::Wait(Wait::Signal(signal)) => (format!("wait for signal {signal}"), Shape::Wait),
        StepKind::Wait(Wait::For(duration)) => {
            (format!("wait {}", duration_text(*duration)), Shape::Wait)
        }
        StepKind::Wait(Wait::Until(time)) => {
            (format!("wait until {}", time_text(*time)), Shape::Wait)
        }
        StepKind::Subflow { workflow, version } => (
            match version {
                Some(v) => format!("subflow: {workflow} v{v}"),
                None => format!("subflow: {workflow}"),
            },
            Shape::Subflow,
        ),
    };
    (format!("{}\n{what}", step.id), shape)
}

fn mermaid_text(text: &str) -> String {
    text.replace('"', "#quot;").replace('\n', "<br/>")
}

fn dot_text(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// `10d`, `1h 30m`, `500ms`: the way definitions write durations.
fn duration_text(duration: Duration) -> String {
    let mut secs = duration.as_secs();
    let mut parts = Vec::new();
    for (unit, size) in [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)] {
        if secs >= size {
            parts.push(format!("{}{unit}", secs / size));
            secs %= size;
        }
    }
    let millis = duration.subsec_millis();
    if millis > 0 || parts.is_empty() {
        parts.push(format!("{millis}ms"));
    }
    parts.join(" ")
}

/// `2026-01-31T12:00:00Z`.
fn time_text(time: SystemTime) -> String {
    let secs = time
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rest) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3_600,
        rest % 3_600 / 60,
        rest % 60
    )
}
