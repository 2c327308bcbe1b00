//! `docket plugin test`: a plugin run over its input/expected-outcome
//! fixtures, as its author does before publishing and a catalogue's
//! reviewer before signing; a package is checked against its manifest
//! first.

use crate::support::{docket, root, target};
use std::path::Path;
use std::process::Output;

fn plugin_test(plugin: &Path, fixtures: &Path) -> Output {
    docket()
        .args(["plugin", "test"])
        .arg(plugin)
        .arg(fixtures)
        .env("DOCKET_CACHE_DIR", target().join("test-cache"))
        .output()
        .unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn pack(name: &str, out: &Path) {
    let output = docket()
        .args(["plugin", "pack"])
        .arg(target().join(format!("plugins/{name}.wasm")))
        .arg("--out")
        .arg(out)
        .args(["--team", "platform", "--license", "Apache-2.0"])
        .env("DOCKET_CACHE_DIR", target().join("test-cache"))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn the_first_party_plugins_pass_their_fixtures_as_components_and_as_packages() {
    for name in ["validate-schema", "route-rules"] {
        let fixtures = root().join("plugins").join(name).join("fixtures");
        let output = plugin_test(&target().join(format!("plugins/{name}.wasm")), &fixtures);
        assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));
        assert!(
            stdout(&output).ends_with("3 passed, 0 failed\n"),
            "{}",
            stdout(&output)
        );

        let dir = tempfile::tempdir().unwrap();
        pack(name, &dir.path().join("pkg"));
        let output = plugin_test(&dir.path().join("pkg"), &fixtures);
        assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));
    }
}

#[test]
fn a_fixture_the_plugin_does_not_meet_fails_by_name_with_both_outcomes() {
    let dir = tempfile::tempdir().unwrap();
    let fixtures = root().join("plugins/route-rules/fixtures");
    for entry in std::fs::read_dir(&fixtures).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, dir.path().join(path.file_name().unwrap())).unwrap();
    }
    // Someone expects a six-floor house to be simple.
    let tower = dir.path().join("tower.expected.json");
    let text = std::fs::read_to_string(&tower)
        .unwrap()
        .replace("\"complex\"", "\"simple\"");
    std::fs::write(&tower, text).unwrap();
    // And a fixture has no expectation yet.
    std::fs::write(dir.path().join("shed.input.json"), r#"{"project": {}}"#).unwrap();

    let output = plugin_test(&target().join("plugins/route-rules.wasm"), dir.path());
    assert_eq!(output.status.code(), Some(1));
    let out = stdout(&output);
    assert!(out.contains("  ok    house\n"), "{out}");
    assert!(out.contains("  FAIL  shed: no `"), "{out}");
    assert!(
        out.contains("shed.expected.json`: write it, or run with --bless"),
        "{out}"
    );
    let failure = &out[out.find("  FAIL  tower: expected").expect(&out)..];
    let (expected, got) = failure.split_once("    got").unwrap();
    assert!(
        expected.contains("\"simple\"") && got.contains("\"complex\""),
        "{out}"
    );
    assert!(out.ends_with("2 passed, 2 failed\n"), "{out}");
}

#[test]
fn a_package_whose_manifest_misstates_its_component_is_not_tested() {
    let dir = tempfile::tempdir().unwrap();
    let pkg = dir.path().join("pkg");
    pack("validate-schema", &pkg);
    let manifest = pkg.join("manifest.json");
    let text = std::fs::read_to_string(&manifest).unwrap();
    let mut value: serde_json::Value = serde_json::from_str(&text).unwrap();
    value["capabilities"] = serde_json::json!(["log", "notify"]);
    std::fs::write(&manifest, serde_json::to_string_pretty(&value).unwrap()).unwrap();

    let output = plugin_test(&pkg, &root().join("plugins/validate-schema/fixtures"));
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("plugin `validate-schema@1.0.0`: the manifest"),
        "{stderr}"
    );
    assert!(stdout(&output).is_empty());

    let empty = dir.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let output = plugin_test(&target().join("plugins/validate-schema.wasm"), &empty);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr
            .contains("has no fixtures: each is `<name>.input.json` beside `<name>.expected.json`"),
        "{stderr}"
    );
}
