//! Guards on inputs that would hang, abort or exhaust memory (issue 19,
//! item 4) and the honesty of the schema (item 6), through the binary.
//! Each test reproduces a failure of spikesweep 0.3.0 (a hang, a panic, an
//! abort, an out-of-memory read) and asserts the exact outcome now.

mod common;

use common::{bin, ok, run_ok, write_spec, LONG};
use polars::prelude::*;
use spikesweep::output::read_metadata;
use spikesweep::store::read_final;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A spec that resolves quickly, with room for a `[sweep]` or other keys.
fn spec_with(extra: &str) -> String {
    format!("name = \"guard\"\n[time]\ndt_ms = 0.05\nduration_ms = 10.0\n{extra}")
}

/// Runs the binary for at most `limit`: its output, or None when it had to
/// be killed (a hang is a failure, never a stuck test).
fn within(args: &[&str], limit: Duration) -> Option<Output> {
    let mut child = bin()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while start.elapsed() < limit {
        if child.try_wait().unwrap().is_some() {
            return Some(child.wait_with_output().unwrap());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    None
}

/// Asserts exit 2 within `limit` with `expected` on stderr and no panic.
fn refused_within(args: &[&str], limit: Duration, expected: &str) -> String {
    let start = Instant::now();
    let o = within(args, limit).unwrap_or_else(|| panic!("{args:?} still running after {limit:?}"));
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
    assert!(err.contains(expected), "{args:?}: expected {expected:?} in: {err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(start.elapsed() < limit);
    err
}

fn plan_refused(spec: &Path, expected: &str) -> String {
    refused_within(&["plan", spec.to_str().unwrap()], Duration::from_secs(1), expected)
}

#[test]
fn a_huge_axis_is_refused_in_under_a_second_with_the_figure_and_the_override() {
    let tmp = tempfile::tempdir().unwrap();
    // 0.3.0: linspace made 1e7 values, then the quadratic repeat check ran for minutes.
    let s = write_spec(
        tmp.path(),
        &spec_with("[sweep]\n\"noise.sigma\" = { linspace = [0.0, 1.0, 10000000] }\n"),
    );
    let err = plan_refused(
        &s,
        "sweep: noise.sigma 10000000 values make 10000000 parameter points, more than 100000",
    );
    assert!(err.contains("--allow-huge"), "{err}");
}

#[test]
fn a_huge_grid_is_refused_in_under_a_second_before_it_is_expanded() {
    let tmp = tempfile::tempdir().unwrap();
    // 0.3.0: 1e9 points passed the 2^32 trial check and Plan::new expanded them until memory ran out.
    let s = write_spec(
        tmp.path(),
        &spec_with(
            "[sweep]\n\"noise.sigma\" = { linspace = [0.0, 1.0, 1000] }\n\"network.strength\" = { linspace = [0.0, 0.1, 1000] }\n\"neuron.i_inj\" = { linspace = [5.0, 15.0, 1000] }\n",
        ),
    );
    plan_refused(
        &s,
        "noise.sigma 1000 x network.strength 1000 x neuron.i_inj 1000 values make 1000000000 parameter points",
    );
    let out = tmp.path().join("never");
    refused_within(
        &["run", s.to_str().unwrap(), "--out", out.to_str().unwrap()],
        Duration::from_secs(1),
        "more than 100000 ",
    );
    assert!(!out.exists(), "no output directory for a refused spec");
}

#[test]
fn a_repeated_value_in_a_long_list_is_found_in_n_log_n() {
    let tmp = tempfile::tempdir().unwrap();
    // 0.3.0: 4.5e10 comparisons (6.6 s measured) to find the repeat at the end; --allow-huge gets
    // 3e5 values past the 1e5-point limit to the check.
    let values: Vec<String> = (0..300_000).map(|i| i.to_string()).chain(["7".into()]).collect();
    let s = write_spec(
        tmp.path(),
        &spec_with(&format!("[sweep]\n\"noise.sigma\" = [{}]\n", values.join(","))),
    );
    refused_within(
        &["plan", s.to_str().unwrap(), "--allow-huge"],
        Duration::from_secs(3),
        "7 appears twice",
    );
}

#[test]
fn linspace_with_2_to_the_63_or_1e11_values_exits_2_without_allocating() {
    let tmp = tempfile::tempdir().unwrap();
    // 0.3.0: 2^63 - 1 panicked (capacity overflow, exit 101), 1e11 aborted (allocation failure, 134).
    for n in ["9223372036854775807", "100000000000"] {
        let s = write_spec(
            tmp.path(),
            &spec_with(&format!(
                "[sweep]\n\"noise.sigma\" = {{ linspace = [0.0, 1.0, {n}] }}\n"
            )),
        );
        plan_refused(&s, &format!("noise.sigma {n} values make {n} parameter points"));
        // --allow-huge lifts the limits only to what trial ids can address.
        refused_within(
            &["plan", s.to_str().unwrap(), "--allow-huge"],
            Duration::from_secs(1),
            "the most trial ids can address",
        );
    }
}

#[test]
fn a_billion_replicates_exit_2_at_once_and_leave_no_directory() {
    let tmp = tempfile::tempdir().unwrap();
    // 0.3.0: the run started silently, then aborted with its directory left behind.
    let s = write_spec(
        tmp.path(),
        "name = \"many\"\nreplicates = 1000000000\n[time]\nduration_ms = 10.0\n",
    );
    let out = tmp.path().join("many");
    refused_within(
        &["run", s.to_str().unwrap(), "--out", out.to_str().unwrap()],
        Duration::from_secs(1),
        "replicates = 1000000000: 1 parameter point x 1000000000 replicates = 1000000000 trials, more than 100000000",
    );
    assert!(!out.exists(), "no output directory for a refused spec");
}

#[test]
fn too_much_work_is_refused_and_allow_huge_lifts_it() {
    let tmp = tempfile::tempdir().unwrap();
    // 1e7 trials x 1000 neurons x 1e6 steps = 1e16 neuron-steps: half a century of one core.
    let s = write_spec(
        tmp.path(),
        "name = \"long\"\nreplicates = 10000000\n[time]\ndt_ms = 0.01\nduration_ms = 10000.0\n[network]\nn = 1000\ntopology = \"none\"\n",
    );
    let err = plan_refused(&s, "1.000e16 neuron-steps in all");
    assert!(err.contains("years") && err.contains("--allow-huge"), "{err}");
    let planned = ok(&["plan", s.to_str().unwrap(), "--allow-huge"]);
    assert!(planned.contains("1.000e16 neuron-steps"), "{planned}");
}

#[test]
fn run_states_the_cost_of_a_plan_longer_than_an_hour() {
    let tmp = tempfile::tempdir().unwrap();
    // 1e5 trials x 2 x 1e5 steps = 2e10 neuron-steps: over an hour at 5e6 per thread on 1 thread.
    let s = write_spec(
        tmp.path(),
        "name = \"costly\"\nreplicates = 100000\n[time]\ndt_ms = 0.01\nduration_ms = 1000.0\n[network]\nn = 2\n",
    );
    let out = tmp.path().join("costly");
    let mut child = bin()
        .args([
            "run",
            s.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--threads",
            "1",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 400];
    let n = std::io::Read::read(&mut stdout, &mut first).unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    let line = String::from_utf8_lossy(&first[..n]);
    assert!(
        line.starts_with("cost: 2.000e10 neuron-steps, about 67 min on 1 thread at 5e6 neuron-steps/s per thread"),
        "{line}"
    );
}

#[test]
fn a_fifo_as_matrix_file_exits_2_in_under_a_second() {
    let tmp = tempfile::tempdir().unwrap();
    let fifo = tmp.path().join("matrix.csv");
    assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    // 0.3.0: opening the FIFO waited for a writer forever.
    let s = write_spec(
        tmp.path(),
        &spec_with(&format!(
            "[network]\nn = 2\ntopology = {{ matrix_file = \"{}\" }}\n",
            fifo.display()
        )),
    );
    let err = plan_refused(&s, "is a FIFO (named pipe), not a regular file");
    assert!(err.contains("cannot read it"), "{err}");
}

#[test]
fn dev_zero_as_matrix_file_or_spec_exits_2_in_under_a_second() {
    let tmp = tempfile::tempdir().unwrap();
    // 0.3.0: /dev/zero was read until memory ran out.
    let s = write_spec(
        tmp.path(),
        &spec_with("[network]\nn = 2\ntopology = { matrix_file = \"/dev/zero\" }\n"),
    );
    plan_refused(
        &s,
        "network.topology.matrix_file = \"/dev/zero\": cannot read it: is a device, not a regular file",
    );
    refused_within(
        &["plan", "/dev/zero"],
        Duration::from_secs(1),
        "cannot read spec /dev/zero: is a device, not a regular file",
    );
}

#[test]
fn a_spec_or_matrix_over_64_mib_is_refused_unread() {
    let tmp = tempfile::tempdir().unwrap();
    // Sparse: 65 MiB of zeros costs no disk; the size alone refuses it.
    let big = tmp.path().join("big.csv");
    std::fs::File::create(&big).unwrap().set_len(65 << 20).unwrap();
    refused_within(
        &["plan", big.to_str().unwrap()],
        Duration::from_secs(1),
        "is 68157440 bytes, more than the 64 MiB spikesweep reads",
    );
    let s = write_spec(
        tmp.path(),
        &spec_with(&format!(
            "[network]\nn = 2\ntopology = {{ matrix_file = \"{}\" }}\n",
            big.display()
        )),
    );
    plan_refused(&s, "more than the 64 MiB");
}

#[test]
fn plan_into_a_full_stdout_exits_2_and_into_a_closed_pipe_quietly() {
    let tmp = tempfile::tempdir().unwrap();
    let s = write_spec(tmp.path(), &spec_with(""));
    // 0.3.0: println! panicked on /dev/full (exit 101).
    let full = std::fs::OpenOptions::new().write(true).open("/dev/full").unwrap();
    let o = bin().args(["plan", s.to_str().unwrap()]).stdout(full).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.starts_with("error: cannot write to stdout: No space left on device"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");

    // 0.3.0: a closed pipe panicked too; now a quiet exit 141 (as SIGPIPE would give).
    let mut child = bin()
        .args(["plan", s.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(141));
    assert_eq!(String::from_utf8_lossy(&o.stderr), "", "quiet");
}

#[test]
fn a_name_longer_than_200_bytes_is_refused_by_plan() {
    let tmp = tempfile::tempdir().unwrap();
    // 0.3.0: plan passed a 256-byte name, then run failed to create the directory.
    let s = write_spec(
        tmp.path(),
        &format!("name = \"{}\"\n[time]\nduration_ms = 10.0\n", "n".repeat(256)),
    );
    plan_refused(
        &s,
        "(256 bytes): is longer than 200 bytes: it names the output directory",
    );
    let s = write_spec(
        tmp.path(),
        &format!("name = \"{}\"\n[time]\nduration_ms = 10.0\n", "n".repeat(200)),
    );
    ok(&["plan", s.to_str().unwrap()]);
}

#[test]
fn a_byte_order_mark_in_a_csv_or_a_spec_is_skipped() {
    let tmp = tempfile::tempdir().unwrap();
    // 0.3.0: "\u{feff}0" was not a number, so the matrix was refused.
    let csv = tmp.path().join("m.csv");
    std::fs::write(&csv, "\u{feff}0, 1\n1, 0\n").unwrap();
    let s = write_spec(
        tmp.path(),
        &format!(
            "\u{feff}name = \"bom\"\n[time]\ndt_ms = 0.05\nduration_ms = 10.0\n[network]\nn = 2\nstrength = 0.1\ntopology = {{ matrix_file = \"{}\" }}\n",
            csv.display()
        ),
    );
    let planned = ok(&["plan", s.to_str().unwrap()]);
    assert!(planned.starts_with("spec        bom"), "{planned}");
    let out = tmp.path().join("bom");
    run_ok(&s, &out, &["--quiet"]);
    let stored = std::fs::read_to_string(out.join("spec.toml")).unwrap();
    assert!(stored.starts_with("name = \"bom\""), "the stored spec has no BOM");
}

#[test]
fn sighup_commits_finished_trials_and_resume_completes_the_tables() {
    let tmp = tempfile::tempdir().unwrap();
    let s = write_spec(tmp.path(), LONG);
    let s = s.to_str().unwrap();
    let out = tmp.path().join("hup");
    let o = out.to_str().unwrap();
    let child = bin()
        .args(["run", s, "--out", o, "--threads", "1"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let committed = || {
        std::fs::read_dir(out.join("parts"))
            .is_ok_and(|mut d| d.any(|e| e.is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".trials.parquet"))))
    };
    while !committed() {
        assert!(start.elapsed() < Duration::from_secs(120), "no part committed in 120 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    // 0.3.0: SIGHUP (a closed terminal) killed the run without committing what had finished.
    let hup = Command::new("kill")
        .args(["-HUP", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    let done = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&done.stderr);
    assert_eq!(done.status.code(), Some(129), "{err}");
    assert!(
        err.contains("interrupted (SIGHUP)") && err.contains("--resume"),
        "{err}"
    );
    assert!(!out.join("trials.parquet").exists());
    ok(&["run", s, "--out", o, "--resume"]);
    let clean = tmp.path().join("clean");
    ok(&["run", s, "--out", clean.to_str().unwrap()]);
    for table in ["trials", "neurons", "spikes", "summary"] {
        let drop = |df: DataFrame| df.drop("wall_ms").unwrap_or(df);
        let (a, b) = (read_final(&out, table).unwrap(), read_final(&clean, table).unwrap());
        assert!(
            drop(a).equals_missing(&drop(b)),
            "{table} differs after SIGHUP and --resume"
        );
    }
}

const SWEPT: &str = r#"
name = "units"
replicates = 2
[time]
dt_ms = 0.05
duration_ms = 20.0
[network]
n = 2
[sweep]
"noise.sigma" = [0.0, 1.0]
"network.strength" = [0.0, 0.1]
"neuron.g_na" = [120.0]
"#;

#[test]
fn swept_columns_carry_their_units_in_the_metadata_and_in_plan() {
    let tmp = tempfile::tempdir().unwrap();
    let s = write_spec(tmp.path(), SWEPT);
    let out = tmp.path().join("units");
    run_ok(&s, &out, &["--quiet"]);
    // 0.3.0: no unit anywhere for noise_sigma, network_strength, neuron_g_na.
    let expected =
        r#"{"noise_sigma": "uA/cm^2 ms^0.5", "network_strength": "dimensionless", "neuron_g_na": "mS/cm^2"}"#;
    for table in ["trials", "neurons", "spikes", "summary"] {
        let meta = read_metadata(&out.join(format!("{table}.parquet"))).unwrap();
        let units = meta
            .iter()
            .find(|(k, _)| k == "spikesweep.units")
            .map(|(_, v)| v.as_str());
        assert_eq!(units, Some(expected), "{table}");
    }
    // And in the Arrow schema stored beside the Parquet one, as field metadata `unit`.
    for table in ["trials", "summary"] {
        let file = std::fs::File::open(out.join(format!("{table}.parquet"))).unwrap();
        let arrow = ParquetReader::new(file).schema().unwrap();
        let unit = |column: &str| {
            let field = arrow.get(column).unwrap_or_else(|| panic!("{table} has {column}"));
            field
                .metadata
                .as_ref()
                .and_then(|m| m.get("unit"))
                .map(|u| u.to_string())
        };
        assert_eq!(unit("noise_sigma").as_deref(), Some("uA/cm^2 ms^0.5"), "{table}");
        assert_eq!(unit("network_strength").as_deref(), Some("dimensionless"), "{table}");
        assert_eq!(unit("neuron_g_na").as_deref(), Some("mS/cm^2"), "{table}");
        assert_eq!(unit("point"), None, "{table}: only the swept columns");
    }
    let planned = ok(&["plan", s.to_str().unwrap()]);
    assert!(
        planned.contains("noise.sigma = [0, 1] (2 values), column noise_sigma, unit uA/cm^2 ms^0.5"),
        "{planned}"
    );
    assert!(
        planned.contains("column network_strength, unit dimensionless"),
        "{planned}"
    );
}

#[test]
fn status_is_a_parquet_string_column_read_back_as_a_string() {
    let tmp = tempfile::tempdir().unwrap();
    let s = write_spec(tmp.path(), SWEPT);
    let out = tmp.path().join("status");
    run_ok(&s, &out, &["--quiet"]);
    // README "Output schema": BYTE_ARRAY with the String logical type (pyarrow's view of the
    // stored Arrow schema, plain utf8, is tested in tests/python/test_schema.py).
    let mut reader = ParquetReader::new(std::fs::File::open(out.join("trials.parquet")).unwrap());
    let meta = reader.get_metadata().unwrap();
    let status = meta
        .schema_descr
        .columns()
        .iter()
        .find(|c| c.path_in_schema.iter().map(|p| p.as_str()).eq(["status"]))
        .expect("a status column");
    let t = &status.descriptor.primitive_type;
    assert_eq!(
        format!("{:?} {:?}", t.physical_type, t.logical_type),
        "ByteArray Some(String)"
    );
    let kv = read_metadata(&out.join("trials.parquet")).unwrap();
    assert_eq!(kv[0].0, "ARROW:schema", "ours, stored first");
    let trials = read_final(&out, "trials").unwrap();
    assert_eq!(trials.column("status").unwrap().dtype(), &DataType::String);
}
