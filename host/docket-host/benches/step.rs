//! The per-execution cost of a step, side by side with its floors, in one
//! run. `cargo xtask bench` builds the plugins and runs this.
//!
//! Rows, for the validate-schema plugin on a ~300-byte application:
//! (a) the same validation natively, in this process: the floor of the work
//!     (the schema is compiled once: `docket_sdk::prepared` keeps it);
//! (b) raw wasmtime, one instance reused for every call (which keeps the
//!     compiled schema too);
//! (e) raw wasmtime, a fresh store and instance per call from an
//!     `InstancePre`, on docket's own engine: the floor of isolation;
//! (c) docket: fresh instance, limits and grants on, outcome checked;
//! (p) the same, prepared: each fresh instance is of a snapshot taken after
//!     `check-config`, with the schema already compiled;
//! then (c) with the standard pool reset and with a plain wasm32-wasip2
//! build, throughput with 1 and 2 threads, (d) cold loads, what preparing
//! costs, and peak RSS.
//! Then (c) and (d) for the steps written in Python (validate-documents,
//! componentize-py) and JavaScript (transform-fee, componentize-js), whose
//! components carry their interpreter.

#![allow(clippy::print_stdout, reason = "a benchmark prints its table")]

use docket_host::Json;
use docket_host::plugin::floor::Floor;
use docket_host::plugin::{
    Grants, Limits, Outcome, Plugin, PoolReset, PoolResetPolicy, Runtime, RuntimeConfig,
    StepContext,
};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

/// Rows are measured in many short rounds, one after the other, so that the
/// machine's noise (these machines are shared) falls on every row alike.
const ROUNDS: usize = 500;
const PER_ROUND: usize = 40;
const WARMUP: usize = 500;

const INPUT: &str = r#"{"applicant":{"name":"Ada Lovelace","email":"ada@example.org","phone":"+44 20 7946 0958","address":{"street":"12 St James's Square","city":"London","postcode":"SW1Y 4JH"}},"parcel":"1234-567","kind":"residential","floors":2,"area_m2":145.5,"submitted":"2026-11-02"}"#;

const CONFIG: &str = r#"{"schema":{"type":"object","required":["applicant","parcel","kind"],"properties":{"applicant":{"type":"object","required":["name","email"],"properties":{"name":{"type":"string","minLength":1},"email":{"type":"string","format":"email"},"address":{"type":"object","required":["city"]}}},"parcel":{"type":"string","pattern":"^[0-9]{4}-[0-9]{3}$"},"kind":{"enum":["residential","commercial","industrial"]},"floors":{"type":"integer","minimum":1,"maximum":40}}}}"#;

fn target() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"),
        PathBuf::from,
    )
}

fn component(dir: &str, name: &str) -> Vec<u8> {
    let path = target().join(dir).join(format!("{name}.wasm"));
    std::fs::read(&path).unwrap_or_else(|err| {
        panic!(
            "{}: {err}: run `cargo xtask bench`, which builds the plugins first",
            path.display()
        )
    })
}

fn ctx() -> StepContext {
    StepContext {
        case_id: "BP-2026-0001".to_owned(),
        workflow: "building-permit".to_owned(),
        workflow_version: 1,
        step_id: "check".to_owned(),
        attempt: 1,
        actor: None,
        now: SystemTime::UNIX_EPOCH + Duration::from_secs(1_790_000_000),
    }
}

fn runtime(pool_reset: PoolResetPolicy, cache_dir: Option<PathBuf>) -> Runtime {
    Runtime::new(RuntimeConfig {
        pool_reset,
        cache_dir,
        // Rows (c) must stay unprepared; (p) is prepared explicitly.
        prepare_after: None,
        ..RuntimeConfig::default()
    })
    .expect("runtime")
}

struct Row {
    step: &'static str,
    label: &'static str,
    what: String,
    run: Box<dyn FnMut()>,
    per_round: usize,
    samples: Vec<Duration>,
}

impl Row {
    fn new(
        step: &'static str,
        label: &'static str,
        what: impl Into<String>,
        run: impl FnMut() + 'static,
    ) -> Row {
        Row {
            step,
            label,
            what: what.into(),
            run: Box::new(run),
            per_round: PER_ROUND,
            samples: Vec::new(),
        }
    }

    /// One sample per round, for a row that is orders of magnitude slower.
    fn slow(mut self) -> Row {
        self.per_round = 1;
        self
    }

    fn quantile(&self, q: f64) -> Duration {
        let idx = ((self.samples.len() - 1) as f64 * q).round() as usize;
        self.samples[idx]
    }

    fn median(&self) -> f64 {
        micros(self.quantile(0.5))
    }
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// Measures every row in rounds, interleaved, so that a noisy neighbour
/// slows all rows alike rather than one.
fn measure(rows: &mut [Row]) {
    for row in rows.iter_mut() {
        for _ in 0..WARMUP * row.per_round / PER_ROUND {
            (row.run)();
        }
    }
    for _ in 0..ROUNDS {
        for row in rows.iter_mut() {
            for _ in 0..row.per_round {
                let started = Instant::now();
                (row.run)();
                row.samples.push(started.elapsed());
            }
        }
    }
    for row in rows.iter_mut() {
        row.samples.sort();
    }
}

fn run_docket(plugin: &Plugin, config: &Json, input: &Json) {
    let execution = plugin.run(&ctx(), config, input, &Limits::default());
    assert!(
        matches!(execution.result, Ok(Outcome::Continue(_))),
        "{:?}",
        execution.result
    );
}

fn run_route(plugin: &Plugin, config: &Json, input: &Json) {
    let execution = plugin.run(&ctx(), config, input, &Limits::default());
    assert!(
        matches!(execution.result, Ok(Outcome::Route { .. })),
        "{:?}",
        execution.result
    );
}

/// Executions per second of `plugin` with `threads` threads, for `time`.
fn throughput(plugin: &Plugin, config: &Json, input: &Json, threads: usize, time: Duration) -> f64 {
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (plugin, config, input) = (plugin.clone(), config.clone(), input.clone());
            let (done, stop) = (done.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    run_docket(&plugin, &config, &input);
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    std::thread::sleep(time);
    stop.store(true, Ordering::Relaxed);
    for handle in handles {
        handle.join().expect("bench thread");
    }
    done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

/// Median wall time of `times` loads, each on a fresh runtime from `make`.
fn cold_load(make: impl Fn() -> Runtime, bytes: &[u8], times: usize) -> f64 {
    let mut times: Vec<Duration> = (0..times)
        .map(|_| {
            let runtime = make();
            let started = Instant::now();
            runtime.load(bytes, Grants::default()).expect("load");
            started.elapsed()
        })
        .collect();
    times.sort();
    times[times.len() / 2].as_secs_f64() * 1e3
}

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib: f64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(f64::NAN);
    kib / 1024.0
}

/// The step the issue's goals are stated for, and a light one beside it.
const HEAVY: &str = "validate-schema";
const LIGHT: &str = "route-rules";
const LIGHT_CONFIG: &str = r#"{"hit_policy":"first","rules":[{"when":{"/kind":{"in":["commercial","industrial"]},"/floors":{"gt":3}},"route":"senior-review"},{"when":{"/applicant/email":{"matches":"@example\\.org$"}},"route":"standard"}],"default":"manual"}"#;

/// The steps written in other languages, with a config and an input each.
const LANG: [(&str, &str, &str, &str); 2] = [
    (
        "validate-documents",
        "docket: fresh instance, Python (componentize-py)",
        r#"{"required":{"residential":["site-plan","floor-plan","structural-report"]}}"#,
        r#"{"kind":"residential","applicant":"Ada Lovelace","attachments":[{"type":"site-plan"},{"type":"floor-plan"},{"type":"structural-report"}]}"#,
    ),
    (
        "transform-fee",
        "docket: fresh instance, JavaScript (componentize-js)",
        r#"{"currency":"EUR","kinds":{"residential":{"base":800,"per_m2":4.5,"minimum":1000}},"surcharges":[{"flag":"heritage","percent":25},{"flag":"express","amount":150}]}"#,
        r#"{"kind":"residential","area_m2":145.5,"flags":["express"]}"#,
    ),
];

fn main() {
    let lean = component("plugins", HEAVY);
    let wasip2 = component("plugins-wasip2", HEAVY);
    let light = component("plugins", LIGHT);
    let config = Json::parse(CONFIG).expect("config");
    let light_config = Json::parse(LIGHT_CONFIG).expect("config");
    let input = Json::parse(INPUT).expect("input");

    let fast = runtime(PoolResetPolicy::Auto, None);
    let standard = runtime(PoolResetPolicy::Standard, None);
    let plugin = fast.load(&lean, Grants::default()).expect("load");
    let plugin_standard = standard.load(&lean, Grants::default()).expect("load");
    let plugin_wasip2 = fast.load(&wasip2, Grants::default()).expect("load");
    let light_plugin = fast.load(&light, Grants::default()).expect("load");
    let started = Instant::now();
    let prepared = plugin.prepare(&config).expect("prepare");
    let prepare_ms = started.elapsed().as_secs_f64() * 1e3;

    let native = docket_sdk::testing::Harness::new();
    let mut rows = vec![
        Row::new(
            HEAVY,
            "a",
            "the same validation natively, in process (schema compiled once: `prepared`)",
            move || {
                let run = native.run_text::<validate_schema::ValidateSchema>(CONFIG, INPUT);
                assert!(matches!(run.result(), Ok(docket_sdk::Outcome::Continue(_))));
            },
        ),
        floor_reused(HEAVY, &fast, &lean, CONFIG),
        floor_fresh(HEAVY, &fast, &lean, CONFIG),
        Row::new(HEAVY, "c", "docket: fresh instance, limits, checks", {
            let (plugin, config, input) = (plugin.clone(), config.clone(), input.clone());
            move || run_docket(&plugin, &config, &input)
        }),
        Row::new(HEAVY, "p", "docket, prepared snapshot", {
            let (plugin, config, input) = (prepared.clone(), config.clone(), input.clone());
            move || run_docket(&plugin, &config, &input)
        }),
        Row::new(HEAVY, "c'", "docket, standard pool reset", {
            let (config, input) = (config.clone(), input.clone());
            move || run_docket(&plugin_standard, &config, &input)
        }),
        Row::new(HEAVY, "c\"", "docket, plain wasm32-wasip2 build", {
            let (config, input) = (config.clone(), input.clone());
            move || run_docket(&plugin_wasip2, &config, &input)
        })
        .slow(),
        floor_reused(LIGHT, &fast, &light, LIGHT_CONFIG),
        floor_fresh(LIGHT, &fast, &light, LIGHT_CONFIG),
        Row::new(LIGHT, "c", "docket: fresh instance, limits, checks", {
            let (plugin, config, input) =
                (light_plugin.clone(), light_config.clone(), input.clone());
            move || run_route(&plugin, &config, &input)
        }),
    ];
    let mut lang_components = Vec::new();
    for (name, what, config, input) in LANG {
        let bytes = component("plugins", name);
        let plugin = fast.load(&bytes, Grants::default()).expect("load");
        let (config, input) = (
            Json::parse(config).expect("config"),
            Json::parse(input).expect("input"),
        );
        rows.push(
            Row::new(name, "c", what, move || {
                run_docket(&plugin, &config, &input)
            })
            .slow(),
        );
        lang_components.push((name, bytes));
    }
    measure(&mut rows);

    let reset = match fast.pool_reset() {
        PoolReset::Fast => "fast (pagemap scan, dirty pages kept resident)".to_owned(),
        PoolReset::Standard { reason } => format!("standard, because {reason}"),
    };
    println!("a {}-byte application; pool reset: {reset}", INPUT.len());
    println!(
        "{} samples per row ({ROUNDS} for (c\") and the Python and JavaScript rows) in {ROUNDS} interleaved rounds; {} cores\n",
        ROUNDS * PER_ROUND,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let median = |step: &str, label: &str| {
        rows.iter()
            .find(|row| row.step == step && row.label == label)
            .map(Row::median)
    };
    let ratio = |value: f64, base: Option<f64>| {
        base.map_or("-".to_owned(), |base| format!("{:.2}x", value / base))
    };
    println!(
        "| step | row | per execution | median µs | p99 µs | min .. max µs | vs (a) | vs (b) | vs (e) |"
    );
    println!("|---|---|---|---:|---:|---|---:|---:|---:|");
    for row in &rows {
        let m = row.median();
        println!(
            "| {} | ({}) | {} | {:.2} | {:.2} | {:.2} .. {:.0} | {} | {} | {} |",
            row.step,
            row.label,
            row.what,
            m,
            micros(row.quantile(0.99)),
            micros(row.samples[0]),
            micros(*row.samples.last().expect("samples")),
            ratio(m, median(row.step, "a")),
            ratio(m, median(row.step, "b")),
            ratio(m, median(row.step, "e")),
        );
    }

    let one = throughput(&plugin, &config, &input, 1, Duration::from_secs(3));
    let two = throughput(&plugin, &config, &input, 2, Duration::from_secs(3));
    let one_prepared = throughput(&prepared, &config, &input, 1, Duration::from_secs(3));
    let two_prepared = throughput(&prepared, &config, &input, 2, Duration::from_secs(3));

    let compile_dir = tempfile::tempdir().expect("tempdir");
    let cached_dir = tempfile::tempdir().expect("tempdir");
    runtime(PoolResetPolicy::Auto, Some(cached_dir.path().to_owned()))
        .load(&lean, Grants::default())
        .expect("load");
    let compile_ms = cold_load(
        || {
            // A fresh, empty cache directory each time: a compile from scratch.
            let dir = compile_dir.path().join(format!("{:?}", Instant::now()));
            runtime(PoolResetPolicy::Auto, Some(dir))
        },
        &lean,
        7,
    );
    let cached_ms = cold_load(
        || runtime(PoolResetPolicy::Auto, Some(cached_dir.path().to_owned())),
        &lean,
        7,
    );

    println!();
    for step in [HEAVY, LIGHT] {
        let [b, e, c] = ["b", "e", "c"].map(|label| median(step, label).expect("row"));
        println!(
            "{step}: price of isolation (c) - (b) = {:.2} µs (goal: at most 5), of which the raw floor (e) - (b) = {:.2} µs; \
             docket over the floor (c) / (e) = {:.3}x (goal: at most 1.1x)",
            c - b,
            e - b,
            c / e
        );
    }
    if let (Some(b), Some(c), Some(p)) =
        (median(HEAVY, "b"), median(HEAVY, "c"), median(HEAVY, "p"))
    {
        println!(
            "{HEAVY} prepared: (p) / (c) = {:.2}x; price of isolation with the same work as (b), (p) - (b) = {:.2} µs",
            p / c,
            p - b
        );
    }
    println!(
        "{HEAVY} throughput of (c): {one:.0}/s with 1 thread, {two:.0}/s with 2 threads ({:.2}x)",
        two / one
    );
    println!(
        "{HEAVY} throughput of (p): {one_prepared:.0}/s with 1 thread, {two_prepared:.0}/s with 2 threads ({:.2}x); \
         (p) over (c): {:.2}x with 1 thread, {:.2}x with 2",
        two_prepared / one_prepared,
        one_prepared / one,
        two_prepared / two
    );
    let prepared_dir = tempfile::tempdir().expect("tempdir");
    let cached = runtime(PoolResetPolicy::Auto, Some(prepared_dir.path().to_owned()));
    let cached_plugin = cached.load(&lean, Grants::default()).expect("load");
    cached_plugin.prepare(&config).expect("prepare");
    let mut from_cache: Vec<f64> = (0..7)
        .map(|_| {
            let started = Instant::now();
            cached_plugin.prepare(&config).expect("prepare");
            started.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    from_cache.sort_by(f64::total_cmp);
    println!(
        "(p) preparing {HEAVY} for the config: {prepare_ms:.0} ms (instrument, compile, check-config, snapshot, compile), \
         {:.2} ms from the disk cache",
        from_cache[from_cache.len() / 2]
    );
    println!(
        "(d) cold load of the {} KiB {HEAVY} component, describe included: {compile_ms:.1} ms compiling, \
         {cached_ms:.2} ms from the disk cache ({:.0}x faster)",
        lean.len() / 1024,
        compile_ms / cached_ms
    );
    for (name, bytes) in &lang_components {
        // One compile: an interpreter component takes seconds to compile.
        let dir = tempfile::tempdir().expect("tempdir");
        let compile_ms = cold_load(
            || runtime(PoolResetPolicy::Auto, Some(dir.path().join("fresh"))),
            bytes,
            1,
        );
        let cached_ms = cold_load(
            || runtime(PoolResetPolicy::Auto, Some(dir.path().join("fresh"))),
            bytes,
            5,
        );
        println!(
            "(d) cold load of the {:.1} MiB {name} component, describe included: {compile_ms:.0} ms compiling, \
             {cached_ms:.1} ms from the disk cache ({:.0}x faster)",
            bytes.len() as f64 / (1024.0 * 1024.0),
            compile_ms / cached_ms
        );
    }
    println!("peak RSS: {:.0} MiB", peak_rss_mib());
}

fn floor_reused(step: &'static str, runtime: &Runtime, bytes: &[u8], config: &str) -> Row {
    let mut floor = Floor::new(runtime, bytes).expect("floor");
    let (config, input) = (config.to_owned(), INPUT.to_owned());
    Row::new(step, "b", "raw wasmtime, one reused instance", move || {
        assert!(floor.call_reused(&config, &input).expect("call"));
    })
}

fn floor_fresh(step: &'static str, runtime: &Runtime, bytes: &[u8], config: &str) -> Row {
    let floor = Floor::new(runtime, bytes).expect("floor");
    let (config, input) = (config.to_owned(), INPUT.to_owned());
    Row::new(
        step,
        "e",
        "raw wasmtime, fresh instance per call",
        move || {
            assert!(floor.call_fresh(&config, &input).expect("call"));
        },
    )
}
