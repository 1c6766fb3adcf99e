//! Neuron models as data, through the binary: a model file given by path
//! runs exactly as the built-in it copies, a swept parameter equals the
//! same value written in a model file, other models are deterministic, and
//! a bad model file is a clear error (exit 2, no output directory).

mod common;

use common::*;
use polars::prelude::*;
use std::path::Path;

const HH: &str = include_str!("../models/hh.toml");

/// A small noisy, coupled run of `neuron` lines.
fn spec(neuron: &str, extra: &str) -> String {
    format!(
        "name = \"m\"\nseed = 5\nreplicates = 3\n[time]\nduration_ms = 60.0\ntransient_ms = 10.0\n\
         [neuron]\n{neuron}\n[network]\nn = 3\nstrength = 0.1\n[noise]\nsigma = 2.0\n{extra}"
    )
}

/// Every column of `name` but wall-clock time and the swept columns.
fn columns(dir: &Path, name: &str) -> DataFrame {
    let df = table(dir, name);
    let drop: Vec<String> = df
        .get_column_names()
        .iter()
        .map(|c| c.to_string())
        .filter(|c| c == "wall_ms" || c.starts_with("neuron_"))
        .collect();
    df.drop_many(drop)
}

fn same_tables(a: &Path, b: &Path, what: &str) {
    for name in ["trials", "neurons", "spikes"] {
        assert!(
            columns(a, name).equals_missing(&columns(b, name)),
            "{what}: {name} differs"
        );
    }
    assert!(table(a, "spikes").height() > 10, "{what}: the neurons fire");
}

#[test]
fn a_copied_model_file_runs_exactly_as_the_built_in() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir(tmp.path().join("cells")).unwrap();
    std::fs::write(tmp.path().join("cells/my_hh.toml"), HH).unwrap();
    let (built_in, copied) = (tmp.path().join("a"), tmp.path().join("b"));
    let spec_a = tmp.path().join("a.toml");
    std::fs::write(&spec_a, spec("model = \"hh\"", "")).unwrap();
    run_ok(&spec_a, &built_in, &["--quiet"]);
    // The path is relative to the spec, not to where spikesweep runs.
    let spec_b = tmp.path().join("b.toml");
    std::fs::write(&spec_b, spec("model = \"cells/my_hh.toml\"", "")).unwrap();
    run_ok(&spec_b, &copied, &["--quiet"]);
    same_tables(&built_in, &copied, "copy of hh.toml");
    // The model's text travels in the tables' metadata.
    let meta = spikesweep::output::read_metadata(&copied.join("trials.parquet")).unwrap();
    let model = meta
        .iter()
        .find(|(k, _)| k == "spikesweep.model")
        .map(|(_, v)| v.as_str());
    assert_eq!(model, Some(HH));
}

#[test]
fn a_swept_parameter_equals_the_same_value_written_in_a_model_file() {
    let tmp = tempfile::tempdir().unwrap();
    let edited = HH.replace("g_na = { value = 120.0", "g_na = { value = 100.0");
    assert_ne!(edited, HH);
    std::fs::write(tmp.path().join("g100.toml"), edited).unwrap();
    let swept = tmp.path().join("swept.toml");
    std::fs::write(&swept, spec("model = \"hh\"", "[sweep]\n\"neuron.g_na\" = [100.0]\n")).unwrap();
    let written = tmp.path().join("written.toml");
    std::fs::write(&written, spec("model = \"g100.toml\"", "")).unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    run_ok(&swept, &a, &["--quiet"]);
    run_ok(&written, &b, &["--quiet"]);
    same_tables(&a, &b, "g_na = 100 swept or written");
    let g: Vec<f64> = table(&a, "trials")
        .column("neuron_g_na")
        .unwrap()
        .f64()
        .unwrap()
        .iter()
        .flatten()
        .collect();
    assert_eq!(g, [100.0; 3]);
}

#[test]
fn other_models_give_the_same_tables_on_one_and_two_threads() {
    let tmp = tempfile::tempdir().unwrap();
    for (k, neuron) in [
        "model = \"wang-buzsaki\"\ni_inj = 1.0",
        "model = \"pospischil-rs\"\ni_inj = 4.0",
    ]
    .iter()
    .enumerate()
    {
        let s = tmp.path().join(format!("s{k}.toml"));
        std::fs::write(
            &s,
            spec(neuron, "[integrator]\nrates = \"exact\"\n").replace("replicates = 3", "replicates = 20"),
        )
        .unwrap();
        let (a, b) = (tmp.path().join(format!("a{k}")), tmp.path().join(format!("b{k}")));
        run_ok(&s, &a, &["--quiet", "--threads", "1"]);
        run_ok(&s, &b, &["--quiet", "--threads", "2"]);
        same_tables(&a, &b, neuron);
    }
}

/// `spikesweep run` of a spec naming `model_text` as its model file:
/// exit 2, stderr naming the file and `key`, no output directory.
fn rejected(model_text: &str, key: &str) -> String {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("bad.toml");
    std::fs::write(&file, model_text).unwrap();
    let s = tmp.path().join("spec.toml");
    std::fs::write(&s, spec("model = \"bad.toml\"", "")).unwrap();
    let out = tmp.path().join("out");
    for command in ["plan", "run"] {
        let mut args = vec![command, s.to_str().unwrap()];
        if command == "run" {
            args.extend(["--out", out.to_str().unwrap()]);
        }
        let o = spikesweep(&args);
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert_eq!(o.status.code(), Some(2), "{command}: {err}");
        assert!(
            err.contains(&format!("model file {}: {key}", file.display())),
            "{command}: {err}"
        );
        assert!(!err.contains("panicked"), "{err}");
        assert!(!out.exists(), "{command}: no output directory on a bad model");
    }
    String::from_utf8_lossy(&spikesweep(&["plan", s.to_str().unwrap()]).stderr).into_owned()
}

#[test]
fn bad_model_files_are_errors_naming_file_and_key() {
    // One per class of the issue: an unknown name in an expression, a gate
    // used by no current, a current naming a missing gate, a non-finite
    // rate, a negative rate.
    let e = rejected(&HH.replace("(v + 65) / 20)", "(v + v_shift) / 20)"), "gates.h.alpha");
    assert!(e.contains("unknown name `v_shift`"), "{e}");
    let e = rejected(&HH.replace("gates = { n = 4 }", "gates = { m = 1 }"), "gates.n");
    assert!(e.contains("is used by no current"), "{e}");
    let e = rejected(
        &HH.replace("gates = { n = 4 }", "gates = { q = 4 }"),
        "currents.k.gates.q",
    );
    assert!(e.contains("names no gate (the gates: m, h, n)"), "{e}");
    let e = rejected(
        &HH.replace("beta = \"0.125 * exp(-(v + 65) / 80)\"", "beta = \"log(v + 100)\""),
        "gates.n.beta",
    );
    assert!(
        e.contains("a rate must be finite and >= 0, but it is NaN at V = -150 mV"),
        "{e}"
    );
    let e = rejected(
        &HH.replace(
            "beta = \"4 * exp(-(v + 65) / 18)\"",
            "beta = \"4 * exp(-(v + 65) / 18) - 2\"",
        ),
        "gates.m.beta",
    );
    assert!(e.contains("a rate must be finite and >= 0, but it is -"), "{e}");
}

#[test]
fn the_readme_s_worked_model_file_runs_with_its_new_gates() {
    // README "Writing your own": HH plus an A-current, two new gates added
    // in the model file alone. It must load, list its gates and fire: the
    // example a user copies first has to work as printed.
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let from = readme.find("**Writing your own.**").expect("README section");
    let block = &readme[from..];
    let start = block.find("```toml\n").unwrap() + "```toml\n".len();
    let model = &block[start..start + block[start..].find("```").unwrap()];
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("my_cell.toml"), model).unwrap();
    let spec_path = tmp.path().join("s.toml");
    std::fs::write(&spec_path, spec("model = \"my_cell.toml\"", "")).unwrap();
    let plan = spikesweep(&["plan", spec_path.to_str().unwrap()]);
    assert!(plan.status.success(), "{}", String::from_utf8_lossy(&plan.stderr));
    let text = String::from_utf8_lossy(&plan.stdout);
    assert!(text.contains("hh-ka"), "{text}");
    for gate in ["a", "b"] {
        assert!(text.contains(&format!(" {gate}")), "gate {gate} in plan: {text}");
    }
    let out = tmp.path().join("out");
    run_ok(&spec_path, &out, &["--quiet"]);
    assert!(table(&out, "spikes").height() > 10, "the cell fires at I = 10");
}
