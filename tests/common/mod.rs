//! Helpers shared by the integration tests that drive the binary.
#![allow(dead_code)] // each test binary uses its own subset

use polars::prelude::*;
use spikesweep::output::read_table;
use spikesweep::store::read_final;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// 1200 trials, about 2 s of work in a release build on 2 cores (the test
/// profile): long enough that a signal or a kill lands before the run is done.
pub const LONG: &str = r#"
name = "long"
seed = 3
replicates = 300
[time]
dt_ms = 0.02
duration_ms = 2000.0
transient_ms = 20.0
[network]
n = 2
strength = 0.1
[sweep]
"noise.sigma" = [0.0, 2.0, 4.0, 6.0]
"#;

/// The binary under test.
pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_spikesweep"))
}

/// Runs the binary to completion.
pub fn spikesweep(args: &[&str]) -> Output {
    bin().args(args).output().expect("binary runs")
}

/// Runs the binary, asserts success, returns its stdout.
pub fn ok(args: &[&str]) -> String {
    let o = spikesweep(args);
    assert!(
        o.status.success(),
        "{args:?}: {:?}\n{}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Writes `text` to `dir/spec.toml`.
pub fn write_spec(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("spec.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// `spikesweep run SPEC --out OUT EXTRA...`, asserting success; its stdout.
pub fn run_ok(spec: &Path, out: &Path, extra: &[&str]) -> String {
    let mut args = vec!["run", spec.to_str().unwrap(), "--out", out.to_str().unwrap()];
    args.extend_from_slice(extra);
    ok(&args)
}

/// A final table of a run directory.
pub fn table(dir: &Path, name: &str) -> DataFrame {
    read_table(&dir.join(format!("{name}.parquet"))).unwrap()
}

/// Spike times of one trial in a spikes table, in row order.
pub fn spike_times(spikes: &DataFrame, trial: u32) -> Vec<f64> {
    let mask = spikes.column("trial").unwrap().u32().unwrap().equal(trial);
    let rows = spikes.filter(&mask).unwrap();
    rows.column("t_ms")
        .unwrap()
        .f64()
        .unwrap()
        .iter()
        .map(|x| x.expect("no nulls"))
        .collect()
}

/// The `n_spikes` column of a neurons table, in row order.
pub fn spike_counts(neurons: &DataFrame) -> Vec<u32> {
    neurons
        .column("n_spikes")
        .unwrap()
        .u32()
        .unwrap()
        .iter()
        .flatten()
        .collect()
}

/// The named final tables of two run directories are equal, all columns
/// but `wall_ms`.
pub fn assert_same_tables(a: &Path, b: &Path, tables: &[&str]) {
    for &name in tables {
        let (x, y) = (read_final(a, name).unwrap(), read_final(b, name).unwrap());
        let drop = |df: DataFrame| df.drop("wall_ms").unwrap_or(df);
        assert!(
            drop(x).equals_missing(&drop(y)),
            "{name} differs between {} and {}",
            a.display(),
            b.display()
        );
    }
}
