//! `make bench`: spikesweep against the numpy code a researcher would write
//! (benches/numpy_baseline.py), the same workloads measured in the same run,
//! printed as one table with the ratio. Plus thread scaling and end-to-end
//! throughput of many tiny trials (Parquet writing included).
//!
//!     cargo bench --bench ensemble      (or: make bench)
//!
//! Set PYTHON to a Python with numpy (default: .venv/bin/python, made by
//! `make test`, else python3). Figures are medians; the machine is shared,
//! so compare ratios from one run, not figures across runs.

use spikesweep::plan::Plan;
use spikesweep::run::run_ensemble;
use spikesweep::spec::ExperimentSpec;
use std::process::Command;
use std::time::Instant;

/// Repeats per figure (the median is printed).
const REPEATS: usize = 5;

/// Rounds of a workload timed by turns with its numpy baseline.
const NUMPY_ROUNDS: usize = 3;

/// Each workload runs in the default rates mode (tabulated) and with
/// exact rates: (label suffix, [integrator] lines).
const MODES: [(&str, &str); 2] = [("", ""), (", `integrator.rates = \"exact\"`", "rates = \"exact\"\n")];

/// `integrator` is extra lines for the spec's [integrator] table; `neuron`
/// the model and its drive (HH at 10 uA/cm^2 unless said).
fn plan_with(neurons: usize, replicates: u32, ms: f64, normalize: bool, integrator: &str) -> Plan {
    plan_of(neurons, replicates, ms, normalize, integrator, "i_inj = 10.0\n")
}

fn plan_of(neurons: usize, replicates: u32, ms: f64, normalize: bool, integrator: &str, neuron: &str) -> Plan {
    let v0: Vec<String> = (0..neurons)
        .map(|i| if i % 2 == 0 { "-65.0" } else { "-70.0" }.to_string())
        .collect();
    let text = format!(
        "name = \"bench\"\nreplicates = {replicates}\n[integrator]\n{integrator}[time]\ndt_ms = 0.01\nduration_ms = {ms}\n[neuron]\n{neuron}v0_mv = [{}]\n\
         [network]\nn = {neurons}\nstrength = 0.1\nnormalize = {normalize}\n[noise]\nsigma = 2.0\n",
        v0.join(", ")
    );
    Plan::new(ExperimentSpec::parse(&text).unwrap()).unwrap()
}

/// Median wall seconds of `repeats` runs of all trials of `plan`.
fn time_ensemble(plan: &Plan, threads: usize, repeats: usize) -> f64 {
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
    let ids: Vec<u32> = (0..plan.n_trials()).collect();
    median_wall(repeats, || {
        std::hint::black_box(run_ensemble(plan, &ids, &pool, &|_| {}, &|_| {}, &|| false));
    })
}

/// Median wall seconds of `repeats` calls of `f`.
fn median_wall(repeats: usize, mut f: impl FnMut()) -> f64 {
    let walls = (0..repeats)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .collect();
    median(walls).expect("repeats > 0")
}

fn median(mut xs: Vec<f64>) -> Option<f64> {
    xs.sort_by(f64::total_cmp);
    xs.get(xs.len() / 2).copied()
}

/// neuron-steps/s of one run of all of `plan`'s trials on one thread.
fn rate_once(plan: &Plan) -> f64 {
    plan.neuron_steps() as f64 / time_ensemble(plan, 1, 1)
}

/// Medians of `rounds` figures of `a` and of `b`, taken by turns (a b,
/// b a, ...) so that the drift of a shared machine falls on both alike:
/// timed minutes apart, traub-miles against HH read 0.65-0.75 in three
/// runs where 16 alternating rounds read 0.96, and the pair ensemble
/// against numpy 1.7x to 2.5x in four runs of one day. `None` for a side
/// that gave no figure (numpy unavailable).
fn by_turns(
    rounds: usize,
    mut a: impl FnMut() -> Option<f64>,
    mut b: impl FnMut() -> Option<f64>,
) -> (Option<f64>, Option<f64>) {
    let (mut of_a, mut of_b) = (Vec::new(), Vec::new());
    for r in 0..rounds {
        for a_first in [r % 2 == 0, r % 2 != 0] {
            if a_first {
                of_a.extend(a());
            } else {
                of_b.extend(b());
            }
        }
    }
    (median(of_a), median(of_b))
}

/// The most two threads can give on this machine: two independent
/// one-thread runs of all of `plan`'s trials at once, against one alone
/// (`alone_s` wall seconds; medians of `repeats`). Below 2 when the cores slow each other down
/// (shared cache, memory, clock), which no scheduling can win back.
fn side_by_side_speedup(plan: &Plan, alone_s: f64, repeats: usize) -> f64 {
    let ids: Vec<u32> = (0..plan.n_trials()).collect();
    let pools: Vec<rayon::ThreadPool> = (0..2)
        .map(|_| rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap())
        .collect();
    let run =
        |pool: &rayon::ThreadPool| std::hint::black_box(run_ensemble(plan, &ids, pool, &|_| {}, &|_| {}, &|| false));
    let side_by_side_s = median_wall(repeats, || {
        std::thread::scope(|s| {
            for pool in &pools {
                s.spawn(|| run(pool).len());
            }
        });
    });
    2.0 * alone_s / side_by_side_s
}

fn python() -> String {
    std::env::var("PYTHON").unwrap_or_else(|_| {
        let venv = concat!(env!("CARGO_MANIFEST_DIR"), "/.venv/bin/python");
        if std::path::Path::new(venv).exists() {
            venv.into()
        } else {
            "python3".into()
        }
    })
}

/// neuron-steps/s of the numpy baseline, or None if it cannot run.
fn numpy(args: &[&str]) -> Option<f64> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/numpy_baseline.py");
    let out = Command::new(python()).arg(script).args(args).output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| l.strip_prefix("neuron_steps_per_s="))
        .and_then(|x| x.trim().parse().ok())
}

fn row(workload: &str, ours: f64, theirs: Option<f64>) {
    match theirs {
        Some(t) => println!("| {workload} | {ours:.3e} | {t:.3e} | {:.1}x |", ours / t),
        None => println!("| {workload} | {ours:.3e} | (numpy unavailable) | - |"),
    }
}

fn main() {
    println!("| workload (1 core unless said) | spikesweep neuron-steps/s | numpy neuron-steps/s | ratio |");
    println!("|---|---|---|---|");

    let numpy_pair = ["--trials", "10000", "--neurons", "2", "--ms", "100", "--repeats", "1"];
    // A workload's neuron-steps/s and numpy's, timed by turns (numpy's runs
    // take seconds each, so fewer rounds).
    let with_numpy = |plan: &Plan, numpy_args: &[&str]| {
        let (ours, theirs) = by_turns(NUMPY_ROUNDS, || Some(rate_once(plan)), || numpy(numpy_args));
        (ours.expect("rounds > 0"), theirs)
    };
    let rate = |plan: &Plan, threads: usize| plan.neuron_steps() as f64 / time_ensemble(plan, threads, REPEATS);
    for (label, integrator) in MODES {
        let pair = plan_with(2, 1000, 100.0, false, integrator);
        let (ours, theirs) = with_numpy(&pair, &numpy_pair);
        row(
            &format!("pair ensemble: 2 HH neurons, dt 0.01, sigma 2 (1000 x 100 ms; numpy 10000 x 100 ms){label}"),
            ours,
            theirs,
        );
    }
    // A sweep point of 8 replicates: the lanes fill chunks of 16 entries,
    // not 32 (exact rates there once ran 8x slower than in full chunks).
    for (label, integrator) in MODES {
        let few = plan_with(2, 8, 1000.0, false, integrator);
        let (ours, theirs) = with_numpy(&few, &numpy_pair);
        row(
            &format!("8 seed pair trials x 1000 ms, chunks of 16 (numpy 10000 x 100 ms){label}"),
            ours,
            theirs,
        );
    }
    // Other models, default rates, against HH per neuron-step (the numpy
    // baseline is HH's), each timed by turns with HH's pair.
    let hh = plan_with(2, 1000, 100.0, false, "");
    for (model, drive) in [("wang-buzsaki", 1.0), ("traub-miles", 2.0), ("pospischil-rs", 5.0)] {
        let pair = plan_of(
            2,
            1000,
            100.0,
            false,
            "",
            &format!("model = \"{model}\"\ni_inj = {drive}\n"),
        );
        let (hh_rate, ours) = by_turns(2 * REPEATS, || Some(rate_once(&hh)), || Some(rate_once(&pair)));
        let (hh_rate, ours) = (hh_rate.expect("rounds > 0"), ours.expect("rounds > 0"));
        let to_hh = ours / hh_rate;
        println!("| pair ensemble, {model} (I = {drive}): {ours:.3e} neuron-steps/s, {to_hh:.2}x HH's | | | |");
    }

    let numpy_big = [
        "--trials",
        "100",
        "--neurons",
        "100",
        "--ms",
        "100",
        "--repeats",
        "1",
        "--normalize",
    ];
    for (label, integrator) in MODES {
        let big = plan_with(100, 10, 100.0, true, integrator);
        let (ours, theirs) = with_numpy(&big, &numpy_big);
        row(
            &format!("100-neuron all-to-all, normalised (10 x 100 ms; numpy 100 x 100 ms){label}"),
            ours,
            theirs,
        );
    }

    let numpy_single = numpy(&["--trials", "1", "--neurons", "2", "--ms", "1000", "--repeats", "1"]);
    for (label, integrator) in MODES {
        let single = plan_with(2, 1, 1000.0, false, integrator);
        let wall = time_ensemble(&single, 1, 2 * REPEATS + 1);
        row(
            &format!("one seed pair trial, 1000 ms{label}: {:.1} ms wall", wall * 1e3),
            single.neuron_steps() as f64 / wall,
            numpy_single,
        );
    }

    for (label, integrator) in MODES {
        let pair = plan_with(2, 2000, 100.0, false, integrator);
        let (one, two) = (rate(&pair, 1), rate(&pair, 2));
        let ceiling = side_by_side_speedup(&pair, pair.neuron_steps() as f64 / one, REPEATS);
        println!(
            "| pair ensemble (2000 x 100 ms) on 2 threads{label}: {two:.3e} neuron-steps/s, speed-up {:.2}x over 1 thread \
             (this machine's ceiling: {ceiling:.2}x) | | | |",
            two / one
        );
    }

    // Trials of very different cost: a sweep over the network size.
    let text =
        "name = \"mixed\"\nreplicates = 16\n[time]\nduration_ms = 100.0\n[network]\nstrength = 0.1\nnormalize = true\n\
                [noise]\nsigma = 2.0\n[sweep]\n\"network.n\" = [2, 5, 20, 100]\n";
    let mixed = Plan::new(ExperimentSpec::parse(text).unwrap()).unwrap();
    let (one, two) = (rate(&mixed, 1), rate(&mixed, 2));
    println!(
        "| sweep over n = 2, 5, 20, 100 (16 x 100 ms each) on 2 threads: speed-up {:.2}x over 1 thread | | | |",
        two / one
    );

    // Many tiny trials end to end: the release binary, Parquet included.
    let bin = concat!(env!("CARGO_MANIFEST_DIR"), "/target/release/spikesweep");
    let dir = std::env::temp_dir().join(format!("spikesweep-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let trials = 20_000;
    for (label, integrator) in MODES {
        let spec = dir.join("tiny.toml");
        std::fs::write(
            &spec,
            format!("name = \"tiny\"\nreplicates = {trials}\n[integrator]\n{integrator}[time]\nduration_ms = 10.0\n[network]\nn = 2\nstrength = 0.1\n[noise]\nsigma = 2.0\n"),
        )
        .unwrap();
        let mut walls: Vec<f64> = vec![];
        for _ in 0..REPEATS {
            let t = Instant::now();
            let status = Command::new(bin)
                .args([
                    "run",
                    spec.to_str().unwrap(),
                    "--out",
                    dir.join("out").to_str().unwrap(),
                ])
                .args(["--threads", "1", "--quiet", "--force"])
                .output();
            match status {
                Ok(o) if o.status.success() => walls.push(t.elapsed().as_secs_f64()),
                _ => break,
            }
        }
        if walls.len() < REPEATS {
            println!("| tiny trials: build the release binary first (make bench does) | | | |");
            break;
        }
        walls.sort_by(f64::total_cmp);
        println!(
            "| {trials} tiny trials (2 neurons, 10 ms) end to end incl. Parquet, 1 thread{label}: {:.0} trials/s | | | |",
            trials as f64 / walls[REPEATS / 2]
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
