//! End-to-end tests of the `spikesweep` binary on small specs.

mod common;

use common::{ok, run_ok, spike_counts, spike_times, spikesweep, table, write_spec};
use polars::prelude::*;
use spikesweep::output::{read_metadata, read_table};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Runs SMALL into a fresh temporary directory: (the directory, the spec,
/// the output directory).
fn small_run() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let spec = write_spec(tmp.path(), SMALL);
    let out = tmp.path().join("out");
    run_ok(&spec, &out, &[]);
    (tmp, spec, out)
}

const SMALL: &str = r#"
name = "small"
seed = 7
replicates = 3
[time]
dt_ms = 0.02
duration_ms = 100.0
transient_ms = 20.0
[network]
n = 2
strength = 0.1
[neuron]
v0_mv = [-65.0, -70.0]
[noise]
sigma = 2.0
[sweep]
"noise.sigma" = [0.0, 3.0]
"network.strength" = { linspace = [0.0, 0.2, 3] }
"#;

#[test]
fn run_writes_three_consistent_tables_with_metadata() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = write_spec(tmp.path(), SMALL);
    let out = tmp.path().join("out");
    let stdout = run_ok(&spec, &out, &["--quiet"]);
    assert!(stdout.contains("18 trials, 0 diverged"), "{stdout}");
    assert!(stdout.contains("neuron-steps/s"), "{stdout}");
    assert!(
        stdout.contains(&out.join("trials.parquet").display().to_string()),
        "prints where: {stdout}"
    );

    let trials = table(&out, "trials");
    let neurons = table(&out, "neurons");
    let spikes = table(&out, "spikes");
    // 2 sigma x 3 strengths x 3 replicates.
    assert_eq!(trials.height(), 18);
    let names: Vec<&str> = trials.get_column_names().iter().map(|s| s.as_str()).collect();
    assert_eq!(
        names,
        [
            "trial",
            "point",
            "replicate",
            "seed",
            "noise_sigma",
            "network_strength",
            "status",
            "n_spikes",
            "rate_hz",
            "cv_isi",
            "chi",
            "kuramoto_r",
            "spike_sync",
            "count_corr",
            "sttc",
            "kappa",
            "fano",
            "lv",
            "cv2",
            "pop_peak_hz",
            "pop_peak_q",
            "diverged_at_ms",
            "n_clamped",
            "wall_ms"
        ]
    );
    assert_eq!(trials.column("trial").unwrap().dtype(), &DataType::UInt32);
    assert_eq!(trials.column("seed").unwrap().dtype(), &DataType::UInt64);
    assert_eq!(neurons.height(), 18 * 2, "neurons = trials x n");
    // Trial 4 is point 1 (sigma 0, strength 0.1), replicate 1: the last axis varies fastest.
    let strength = trials.column("network_strength").unwrap().f64().unwrap();
    assert_eq!(strength.get(4), Some(0.1));
    assert_eq!(trials.column("noise_sigma").unwrap().f64().unwrap().get(4), Some(0.0));

    // spikes.parquet has every spike; n_spikes counts the window [20, 100).
    let t = spikes.column("t_ms").unwrap().f64().unwrap();
    let in_window = t.iter().flatten().filter(|&t| (20.0..100.0).contains(&t)).count() as u64;
    let counted: u64 = spike_counts(&neurons).into_iter().map(u64::from).sum();
    assert_eq!(in_window, counted);
    assert!(counted > 0);

    let meta = read_metadata(&out.join("spikes.parquet")).unwrap();
    let get = |k: &str| meta.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone());
    assert_eq!(get("spikesweep.spec").as_deref(), Some(SMALL));
    assert_eq!(get("spikesweep.schema_version").as_deref(), Some("2"));
    assert_eq!(get("spikesweep.version").as_deref(), Some(env!("CARGO_PKG_VERSION")));
    assert_eq!(std::fs::read_to_string(out.join("spec.toml")).unwrap(), SMALL);
    assert!(!out.join("trials.parquet.tmp").exists());
}

fn without_wall(df: DataFrame) -> DataFrame {
    df.drop("wall_ms").unwrap_or(df)
}

#[test]
fn one_thread_and_two_threads_write_identical_tables() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = write_spec(tmp.path(), SMALL);
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    run_ok(&spec, &a, &["--threads", "1"]);
    run_ok(&spec, &b, &["--threads", "2"]);
    for name in ["trials", "neurons", "spikes"] {
        let (ta, tb) = (without_wall(table(&a, name)), without_wall(table(&b, name)));
        assert!(ta.equals_missing(&tb), "{name} differs between 1 and 2 threads");
    }
    // 600 threads: a round of batches (600 x 8 pairs) is more than a part's
    // 4096 trials at most, which panicked in the part sizing once.
    let c = tmp.path().join("c");
    run_ok(&spec, &c, &["--threads", "600", "--quiet"]);
    let (ta, tc) = (without_wall(table(&a, "trials")), without_wall(table(&c, "trials")));
    assert!(ta.equals_missing(&tc), "trials differ between 1 and 600 threads");
    // Beyond 4096 threads: a usage error, before any directory.
    let d = tmp.path().join("d");
    let o = spikesweep(&[
        "run",
        spec.to_str().unwrap(),
        "--out",
        d.to_str().unwrap(),
        "--threads",
        "5000",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("5000 is not in 0..=4096"),
        "{o:?}"
    );
    assert!(!d.exists());
}

#[test]
fn zero_noise_replicates_are_identical_and_noisy_ones_are_not() {
    let (_tmp, _spec, out) = small_run();
    let trials = table(&out, "trials");
    let rate = trials.column("rate_hz").unwrap().f64().unwrap();
    let cv = trials.column("cv_isi").unwrap().f64().unwrap();
    // Point 0 (sigma 0): trials 0, 1, 2. Point 3 (sigma 3, strength 0): 9, 10, 11.
    assert_eq!(rate.get(0), rate.get(1));
    assert_eq!(cv.get(0), cv.get(2));
    let spikes = table(&out, "spikes");
    let times = |trial: u32| spike_times(&spikes, trial);
    assert_eq!(times(0), times(1));
    assert_ne!(times(9), times(10));
}

#[test]
fn common_seed_mode_repeats_the_noise_across_points() {
    // n = 1: network.strength has no effect, so with common random numbers
    // replicate r must give the same spikes at both points; independent
    // streams must not.
    let base = "name = \"crn\"\nreplicates = 2\n[time]\nduration_ms = 100.0\n[noise]\nsigma = 3.0\n[sweep]\n\"network.strength\" = [0.1, 0.2]\n";
    let tmp = tempfile::tempdir().unwrap();
    for (mode, same) in [("common", true), ("independent", false)] {
        let spec = write_spec(tmp.path(), &format!("seed_mode = \"{mode}\"\n{base}"));
        let out = tmp.path().join(mode);
        run_ok(&spec, &out, &[]);
        let spikes = table(&out, "spikes");
        let times = |trial: u32| spike_times(&spikes, trial);
        // Trial 0 = (point 0, rep 0), trial 2 = (point 1, rep 0).
        assert_eq!(times(0) == times(2), same, "{mode}");
        assert_ne!(times(0), times(1), "{mode}: replicates differ");
    }
}

#[test]
fn a_diverging_trial_is_a_row_with_a_status_and_nulls() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = write_spec(
        tmp.path(),
        "name = \"div\"\n[time]\nduration_ms = 20.0\n[network]\nn = 2\n[sweep]\n\"noise.sigma\" = [1.0, 1e5]\n",
    );
    let out = tmp.path().join("out");
    let stdout = run_ok(&spec, &out, &[]);
    assert!(stdout.contains("2 trials, 1 diverged"), "{stdout}");
    assert!(stdout.contains("warning: 1 trial diverged"), "{stdout}");
    let trials = table(&out, "trials");
    let status: Vec<&str> = trials
        .column("status")
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .map(|x| x.expect("no nulls"))
        .collect();
    assert_eq!(status, ["ok", "diverged"]);
    assert_eq!(trials.column("rate_hz").unwrap().f64().unwrap().get(1), None);
    assert_eq!(
        trials.column("diverged_at_ms").unwrap().f64().unwrap().get(1),
        Some(0.01)
    );
    let neurons = table(&out, "neurons");
    assert_eq!(neurons.height(), 4, "diverged trials keep their neuron rows");
    assert_eq!(neurons.column("rate_hz").unwrap().null_count(), 2);
    for name in ["trials", "neurons", "spikes"] {
        let df = table(&out, name);
        for col in df.columns() {
            if let Ok(ca) = col.f64() {
                assert!(
                    ca.iter().flatten().all(f64::is_finite),
                    "{name}.{} holds a non-finite number",
                    col.name()
                );
            }
        }
    }
}

#[test]
fn a_bad_spec_exits_2_names_the_key_and_creates_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = write_spec(
        tmp.path(),
        "name = \"bad\"\n[time]\ndt_ms = -0.01\nduration_ms = 10.0\n",
    );
    let out = tmp.path().join("never");
    let o = spikesweep(&["run", spec.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("time.dt_ms = -0.01: must be > 0"), "{stderr}");
    assert!(!out.exists(), "no output directory for a bad spec");

    let o = spikesweep(&["run", tmp.path().join("missing.toml").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("cannot read spec"));

    let o = spikesweep(&["run"]);
    assert_eq!(o.status.code(), Some(2), "usage errors exit 2");
}

#[test]
fn an_existing_run_is_not_overwritten_without_force() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = write_spec(tmp.path(), "name = \"again\"\n[time]\nduration_ms = 10.0\n");
    let out = tmp.path().join("out");
    run_ok(&spec, &out, &[]);
    let o = spikesweep(&["run", spec.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--force"));
    run_ok(&spec, &out, &["--force"]);
}

#[test]
fn plan_reports_the_grid_and_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = write_spec(tmp.path(), SMALL);
    let o = Command::new(env!("CARGO_BIN_EXE_spikesweep"))
        .args(["plan", spec.to_str().unwrap()])
        .current_dir(tmp.path())
        .output()
        .unwrap();
    assert!(o.status.success());
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("noise.sigma = [0, 3] (2 values)"), "{stdout}");
    assert!(
        stdout.contains("network.strength = [0, 0.1, 0.2] (3 values)"),
        "{stdout}"
    );
    assert!(stdout.contains("trials      18"), "{stdout}");
    // 18 trials x 2 neurons x 5000 steps.
    assert!(stdout.contains("1.800e5 neuron-steps"), "{stdout}");
    assert!(!tmp.path().join("results").exists());
}

#[test]
fn help_shows_an_example_for_each_subcommand() {
    for sub in ["run", "plan"] {
        let o = spikesweep(&[sub, "--help"]);
        let text = String::from_utf8_lossy(&o.stdout);
        assert!(
            text.contains(&format!("spikesweep {sub} experiments/seed_pair.toml")),
            "{sub}: {text}"
        );
    }
}

#[test]
fn summary_has_one_row_per_point_with_replicate_statistics() {
    let (_tmp, _spec, out) = small_run();
    let summary = table(&out, "summary");
    assert_eq!(summary.height(), 6, "2 sigma x 3 strengths");
    let trials = table(&out, "trials");
    // Point 4 = trials 12, 13, 14: recompute its rate mean and sem by hand.
    let rate = trials.column("rate_hz").unwrap().f64().unwrap();
    let r: Vec<f64> = (12..15).map(|i| rate.get(i).unwrap()).collect();
    let mean = r.iter().sum::<f64>() / 3.0;
    let sd = (r.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / 2.0).sqrt();
    let get = |c: &str| summary.column(c).unwrap().f64().unwrap().get(4).unwrap();
    // Same numbers, different summation order: 1e-9 relative.
    assert!((get("rate_hz_mean") - mean).abs() < 1e-9 * mean);
    assert!((get("rate_hz_std") - sd).abs() < 1e-9 * mean.max(1.0));
    assert!((get("rate_hz_sem") - sd / 3f64.sqrt()).abs() < 1e-9 * mean.max(1.0));
    assert_eq!(summary.column("n_ok").unwrap().u32().unwrap().get(4), Some(3));
    assert_eq!(get("noise_sigma"), 3.0);
    assert_eq!(get("network_strength"), 0.1);
    for m in spikesweep::observe::measures::MEASURES.iter().map(|m| m.column) {
        for s in ["mean", "std", "sem", "n"] {
            assert!(summary.column(&format!("{m}_{s}")).is_ok(), "{m}_{s}");
        }
    }

    // `summarize` rebuilds the same table from trials.parquet.
    let before = table(&out, "summary");
    std::fs::remove_file(out.join("summary.parquet")).unwrap();
    let o = spikesweep(&["summarize", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(table(&out, "summary").equals_missing(&before));
}

#[test]
fn synchrony_columns_are_in_range_and_identical_neurons_are_fully_synchronous() {
    // shared = 1 and identical initial states: both neurons get the same
    // input and stay identical, so chi = R = spike_sync = 1.
    let tmp = tempfile::tempdir().unwrap();
    let spec = write_spec(
        tmp.path(),
        "name = \"sync\"\nreplicates = 2\n[time]\nduration_ms = 300.0\ntransient_ms = 50.0\n[network]\nn = 3\nstrength = 0.05\n[noise]\nsigma = 2.0\nshared = 1.0\n[sweep]\n\"neuron.i_inj\" = [-5.0, 10.0]\n",
    );
    let out = tmp.path().join("out");
    run_ok(&spec, &out, &[]);
    let trials = table(&out, "trials");
    let col = |c: &str| trials.column(c).unwrap().f64().unwrap().clone();
    let (chi, r, ss) = (col("chi"), col("kuramoto_r"), col("spike_sync"));
    for i in 2..4 {
        assert!((chi.get(i).unwrap() - 1.0).abs() < 1e-12, "chi {:?}", chi.get(i));
        assert!((r.get(i).unwrap() - 1.0).abs() < 1e-9, "R {:?}", r.get(i));
        assert_eq!(ss.get(i), Some(1.0));
    }
    // I = -5 (hyperpolarised) with this noise: no spikes, so R and spike_sync are undefined
    // (null), while chi (from voltages) is still 1.
    assert_eq!(r.get(0), None);
    assert_eq!(ss.get(0), None);
    assert!((chi.get(0).unwrap() - 1.0).abs() < 1e-12);
    let neurons = table(&out, "neurons");
    assert!(neurons.column("mean_isi_ms").is_ok());
}

#[test]
fn a_traced_trial_reproduces_its_spikes_bit_for_bit() {
    let (tmp, spec, out) = small_run();
    let trace_path = tmp.path().join("t13.parquet");
    let o = spikesweep(&[
        "trace",
        spec.to_str().unwrap(),
        "--trial",
        "13",
        "--every",
        "5",
        "--out",
        trace_path.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let spikes = table(&out, "spikes");
    let mask = spikes.column("trial").unwrap().u32().unwrap().equal(13);
    let expected = spikes.filter(&mask).unwrap();
    let got = read_table(&tmp.path().join("t13.spikes.parquet")).unwrap();
    assert!(expected.height() > 0);
    assert!(
        got.equals(&expected),
        "trace spikes differ from spikes.parquet:\n{got}\n{expected}"
    );
    let trace = read_table(&trace_path).unwrap();
    // 100 ms / 0.02 ms = 5000 steps, every 5th plus the start, 2 neurons.
    assert_eq!(trace.height(), 1001 * 2);
    let names: Vec<&str> = trace.get_column_names().iter().map(|s| s.as_str()).collect();
    assert_eq!(names, ["t_ms", "neuron", "v_mv", "m", "h", "n", "s"]);

    let o = spikesweep(&["trace", spec.to_str().unwrap(), "--trial", "18"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("trials 0 to 17"));
}

fn png_size(path: &Path) -> (u32, u32) {
    let img = image::open(path).unwrap_or_else(|e| panic!("{}: not a readable image: {e}", path.display()));
    (img.width(), img.height())
}

fn svg_size(path: &Path) -> (u32, u32) {
    let text = std::fs::read_to_string(path).unwrap();
    let open = &text[text.find("<svg").expect("an <svg> element")..];
    let attr = |name: &str| -> u32 {
        let start = open.find(&format!("{name}=\"")).unwrap() + name.len() + 2;
        open[start..].split('"').next().unwrap().parse().unwrap()
    };
    assert!(text.trim_end().ends_with("</svg>"), "complete document");
    (attr("width"), attr("height"))
}

#[test]
fn plots_are_images_of_the_requested_size() {
    let (tmp, spec, out) = small_run();
    let png = tmp.path().join("r.png");
    let o = spikesweep(&[
        "plot",
        out.to_str().unwrap(),
        "--x",
        "network.strength",
        "--y",
        "kuramoto_r",
        "--by",
        "noise.sigma",
        "--out",
        png.to_str().unwrap(),
        "--size",
        "640x480",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(png_size(&png), (640, 480));
    let svg = tmp.path().join("r.svg");
    let o = spikesweep(&[
        "plot",
        out.to_str().unwrap(),
        "--x",
        "noise.sigma",
        "--y",
        "rate_hz",
        "--by",
        "network.strength",
        "--out",
        svg.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(svg_size(&svg), (900, 600));
    // White noise: sigma's axis in its units (uA/cm^2 for OU noise).
    let text = std::fs::read_to_string(&svg).unwrap();
    assert!(text.contains("noise.sigma (uA/cm^2 ms^0.5)"), "axis label");

    let trace = tmp.path().join("t.parquet");
    assert!(spikesweep(&[
        "trace",
        spec.to_str().unwrap(),
        "--trial",
        "4",
        "--out",
        trace.to_str().unwrap()
    ])
    .status
    .success());
    let o = spikesweep(&["plot-trace", trace.to_str().unwrap(), "--size", "1000x400"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(png_size(&tmp.path().join("t.png")), (1000, 400));

    // Plotting a key that is not swept, or along one axis while another
    // varies, is an error that says what to do.
    let o = spikesweep(&["plot", out.to_str().unwrap(), "--x", "noise.shared", "--y", "chi"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("not a swept key"));
    let o = spikesweep(&["plot", out.to_str().unwrap(), "--x", "noise.sigma", "--y", "chi"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("pass it as --by"));
    let o = spikesweep(&[
        "plot",
        out.to_str().unwrap(),
        "--x",
        "noise.sigma",
        "--y",
        "voltage",
        "--by",
        "network.strength",
    ]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("must be one of rate_hz"));
    let stderr = |args: &[&str]| {
        let o = spikesweep(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        String::from_utf8_lossy(&o.stderr).into_owned()
    };
    let (out, trace) = (out.to_str().unwrap(), trace.to_str().unwrap());
    let e = stderr(&["plot", out, "--x", "noise.sigma", "--y", "chi", "--by", "noise.sigma"]);
    assert!(
        e.contains("--by noise.sigma: must be a different swept key than --x"),
        "{e}"
    );
    let e = stderr(&["plot-trace", trace, "--from-ms", "80", "--to-ms", "20"]);
    assert!(e.contains("--from-ms 80 is after --to-ms 20"), "{e}");
    let e = stderr(&["plot-trace", trace, "--from-ms", "500", "--to-ms", "900"]);
    assert!(
        e.contains("no samples between --from-ms 500 and --to-ms 900: the trace spans 0 to 100 ms"),
        "{e}"
    );
    let e = stderr(&["trace", spec.to_str().unwrap(), "--trial", "0", "--out", "t.csv"]);
    assert!(e.contains("--out t.csv: a trace is a Parquet file"), "{e}");
    let trials = Path::new(out).join("trials.parquet");
    let e = stderr(&["plot-trace", trials.to_str().unwrap()]);
    assert!(e.contains("not a trace"), "{e}");
    // An output that cannot be written: the OS's reason, not plotters' debug text.
    let blocked = tmp.path().join("file");
    std::fs::write(&blocked, "").unwrap();
    let e = stderr(&["plot-trace", trace, "--out", blocked.join("t.png").to_str().unwrap()]);
    assert!(e.contains("cannot create the directory") && !e.contains("Os {"), "{e}");
    let dir_png = tmp.path().join("d.png");
    std::fs::create_dir(&dir_png).unwrap();
    let e = stderr(&["plot-trace", trace, "--out", dir_png.to_str().unwrap()]);
    assert!(
        e.contains("d.png: cannot write: Is a directory") && !e.contains("Os {"),
        "{e}"
    );
}

#[test]
fn every_measure_plots_and_a_trial_has_a_raster_and_a_spectrum() {
    let (tmp, _spec, out) = small_run();
    let o = |args: &[&str]| {
        let r = spikesweep(args);
        assert!(r.status.success(), "{args:?}: {}", String::from_utf8_lossy(&r.stderr));
    };
    for m in spikesweep::observe::measures::MEASURES {
        let svg = tmp.path().join(format!("{}.svg", m.column));
        o(&[
            "plot",
            out.to_str().unwrap(),
            "--x",
            "noise.sigma",
            "--y",
            m.column,
            "--by",
            "network.strength",
            "--out",
            svg.to_str().unwrap(),
        ]);
        let text = std::fs::read_to_string(&svg).unwrap();
        assert!(text.contains(m.label), "{}: its axis label", m.column);
    }
    o(&[
        "plot-raster",
        out.to_str().unwrap(),
        "--trial",
        "5",
        "--size",
        "800x500",
    ]);
    assert_eq!(png_size(&out.join("raster_5.png")), (800, 500));
    let svg = tmp.path().join("psd.svg");
    o(&[
        "plot-psd",
        out.to_str().unwrap(),
        "--trial",
        "5",
        "--out",
        svg.to_str().unwrap(),
    ]);
    assert!(
        std::fs::read_to_string(&svg).unwrap().contains("peak"),
        "the title names the peak"
    );
    // A trial the run does not have: exit 2 naming the range.
    let r = spikesweep(&["plot-raster", out.to_str().unwrap(), "--trial", "18"]);
    assert_eq!(r.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&r.stderr).contains("trials 0 to 17"));
}

#[test]
fn euler_counts_its_clamps_and_exponential_methods_never_clamp() {
    // I = -200 drives V below -135 mV, where dt (alpha + beta) > 2 for the
    // m gate at dt = 0.05: forward Euler overshoots [0, 1] and is clamped.
    let tmp = tempfile::tempdir().unwrap();
    let base = "name = \"clamp\"\n[time]\ndt_ms = 0.05\nduration_ms = 20.0\n[neuron]\ni_inj = -200.0\n";
    for (method, clamps) in [("euler", true), ("exp-euler", false), ("exp-midpoint", false)] {
        let text = format!("{base}[integrator]\nmethod = \"{method}\"\n");
        let s = write_spec(tmp.path(), &text);
        let out = tmp.path().join(method);
        run_ok(&s, &out, &[]);
        let n = table(&out, "trials")
            .column("n_clamped")
            .unwrap()
            .u64()
            .unwrap()
            .get(0)
            .unwrap();
        assert_eq!(n > 0, clamps, "{method}: n_clamped = {n}");
    }
}

#[test]
fn strong_gap_junctions_lock_two_different_neurons_together() {
    // I = 9 and 11 fire at different rates uncoupled (66 vs 71 Hz); a strong
    // electrical coupling (g = 0.5 mS/cm^2) locks them 1:1, so their spike
    // counts in the window agree within one.
    let tmp = tempfile::tempdir().unwrap();
    let spec = write_spec(
        tmp.path(),
        "name = \"gap\"\n[time]\nduration_ms = 1000.0\ntransient_ms = 200.0\n[neuron]\ni_inj = [9.0, 11.0]\n[network]\nn = 2\n[sweep]\n\"gap.g\" = [0.0, 0.5]\n",
    );
    let out = tmp.path().join("out");
    run_ok(&spec, &out, &[]);
    let n = spike_counts(&table(&out, "neurons"));
    assert!(n[1] > n[0] + 2, "uncoupled rates differ: {n:?}");
    assert!(n[3].abs_diff(n[2]) <= 1, "coupled neurons lock: {n:?}");
}

#[test]
fn coloured_noise_runs_sweeps_and_validates_its_time_constant() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = write_spec(
        tmp.path(),
        "name = \"ou\"\nreplicates = 2\n[time]\nduration_ms = 200.0\n[network]\nn = 2\n[noise]\nsigma = 3.0\nshared = 0.5\n[sweep]\n\"noise.tau_ms\" = [0.0, 5.0]\n",
    );
    let out = tmp.path().join("out");
    run_ok(&spec, &out, &[]);
    let trials = table(&out, "trials");
    assert_eq!(trials.column("noise_tau_ms").unwrap().f64().unwrap().get(3), Some(5.0));
    let bad = write_spec(
        tmp.path(),
        "name = \"ou\"\n[time]\nduration_ms = 10.0\n[noise]\ntau_ms = -1.0\n",
    );
    let o = spikesweep(&["plan", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("noise.tau_ms = -1: must be >= 0"));
}

#[test]
fn one_random_graph_per_experiment_unless_resampled() {
    // No noise: replicates differ only if their graphs (and drives) do.
    let base = "name = \"graph\"\nreplicates = 3\n[time]\nduration_ms = 100.0\n[network]\nn = 12\ntopology = \"random\"\np = 0.3\nstrength = 0.05\n[neuron]\ni_inj = { normal = [10.0, 2.0] }\n";
    let tmp = tempfile::tempdir().unwrap();
    for (resample, same) in [(false, true), (true, false)] {
        let spec = write_spec(
            tmp.path(),
            &base.replace(
                "strength = 0.05\n",
                &format!("strength = 0.05\nresample = {resample}\n"),
            ),
        );
        let out = tmp.path().join(format!("r{resample}"));
        run_ok(&spec, &out, &[]);
        let rate = table(&out, "trials").column("rate_hz").unwrap().f64().unwrap().clone();
        let spikes = table(&out, "spikes");
        let count = |t: u32| {
            spikes
                .column("trial")
                .unwrap()
                .u32()
                .unwrap()
                .equal(t)
                .sum()
                .unwrap_or(0)
        };
        let identical = rate.get(0) == rate.get(1) && rate.get(1) == rate.get(2) && count(0) == count(1);
        assert_eq!(
            identical,
            same,
            "resample = {resample}: {:?}",
            (0..3).map(|i| rate.get(i)).collect::<Vec<_>>()
        );
    }
}

#[test]
fn a_double_exponential_synapse_excites_or_inhibits_by_its_reversal() {
    // Neuron 0 (I = 10) drives neuron 1 (I = 5: one onset spike, then rest)
    // through a rise/decay synapse. Reversing at 0 mV it makes neuron 1
    // fire; at -80 mV it keeps it silent.
    let tmp = tempfile::tempdir().unwrap();
    let spec = write_spec(
        tmp.path(),
        "name = \"dexp\"\n[time]\nduration_ms = 500.0\ntransient_ms = 100.0\n[neuron]\ni_inj = [10.0, 5.0]\n[network]\nn = 2\ntopology = { matrix = [[0, 0], [1, 0]] }\nstrength = 0.5\n[synapse]\nkind = \"double-exp\"\ntau_rise_ms = 0.5\ntau_decay_ms = 5.0\n[sweep]\n\"synapse.e_rev_mv\" = [0.0, -80.0]\n",
    );
    let out = tmp.path().join("out");
    run_ok(&spec, &out, &[]);
    let n = spike_counts(&table(&out, "neurons"));
    // Rows: (trial 0: neuron 0, 1), (trial 1: neuron 0, 1).
    assert!(n[1] > 10, "excitatory synapse drives neuron 1: {n:?}");
    assert_eq!(n[3], 0, "inhibitory synapse silences neuron 1: {n:?}");
}

#[test]
fn every_shipped_experiment_is_a_valid_spec() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/experiments");
    let mut checked = 0;
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "toml") {
            let o = spikesweep(&["plan", path.to_str().unwrap()]);
            assert!(
                o.status.success(),
                "{}: {}",
                path.display(),
                String::from_utf8_lossy(&o.stderr)
            );
            checked += 1;
        }
    }
    assert!(checked >= 6, "{checked} specs");
}

#[test]
fn the_committed_schema_is_what_the_binary_prints() {
    // Editors read spikesweep.schema.json; regenerate it with
    // `spikesweep schema > spikesweep.schema.json` when the spec changes.
    let committed = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/spikesweep.schema.json")).unwrap();
    assert!(
        ok(&["schema"]) == committed,
        "spikesweep.schema.json is stale: run `cargo run --release -- schema > spikesweep.schema.json`"
    );
}

#[test]
fn every_example_spec_points_editors_at_the_schema() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/experiments");
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.starts_with("#:schema ../spikesweep.schema.json\n"),
            "{} does not start with the #:schema directive",
            path.display()
        );
    }
}

#[test]
fn completions_name_every_subcommand() {
    for shell in ["bash", "zsh", "fish"] {
        let script = ok(&["completions", shell]);
        for sub in ["run", "plan", "merge", "summarize", "trace", "plot-trace", "schema"] {
            assert!(script.contains(sub), "{shell} completions lack {sub}");
        }
    }
    // An unknown shell is a usage error, not a panic.
    assert_eq!(spikesweep(&["completions", "tcsh"]).status.code(), Some(2));
}
