//! Cost of the per-trial reductions (spike statistics and every measure of
//! the registry, `pairs.parquet`'s per-pair values included) relative to
//! the bare integration loop, on the seed pair (2 neurons, 1000 ms, dt 0.01,
//! sigma 2, coupled) and on a 100-neuron all-to-all network. Both are
//! measured in the same run, alternating, and the fastest of each compared
//! (the least disturbed by other work on a shared machine, where medians
//! of this bench wandered by 10 points between runs); prints the ratio.
//!
//!     cargo bench --bench reductions        (or: make bench)

use spikesweep::observe::measures::{pair_values, TrialView, MEASURES};
use spikesweep::observe::{in_window, train_stats};
use spikesweep::run::{integrate_lanes, simulate_trial};
use spikesweep::spec::{ExperimentSpec, TrialConfig};
use std::hint::black_box;
use std::time::Instant;

const PAIR: &str = r#"
name = "bench"
[time]
dt_ms = 0.01
duration_ms = 1000.0
transient_ms = 200.0
[neuron]
v0_mv = [-65.0, -70.0]
[network]
n = 2
strength = 0.1
[noise]
sigma = 2.0
[measures]
pairs = true
"#;

const NETWORK: &str = r#"
name = "bench"
[time]
dt_ms = 0.01
duration_ms = 1000.0
transient_ms = 200.0
[neuron]
i_inj = { uniform = [9.0, 11.0] }
[network]
n = 100
strength = 0.002
[noise]
sigma = 2.0
[measures]
pairs = true
"#;

fn fastest(xs: Vec<f64>) -> f64 {
    xs.into_iter().fold(f64::INFINITY, f64::min)
}

fn measure(title: &str, spec: &str, rounds: usize) {
    let cfg = ExperimentSpec::parse(spec).unwrap().resolve(&[]).unwrap();
    let (mut bare, mut full) = (vec![], vec![]);
    for r in 0..rounds {
        let seed = r as u64;
        let t = Instant::now();
        black_box(integrate_lanes(&cfg, &[black_box(seed)], |_, _, _| {}));
        bare.push(t.elapsed().as_secs_f64());
        let t = Instant::now();
        black_box(simulate_trial(&cfg, black_box(seed)));
        full.push(t.elapsed().as_secs_f64());
    }
    let (b, f) = (fastest(bare), fastest(full));
    let steps = cfg.n_steps as f64 * cfg.network.n() as f64;
    println!("{title}: fastest of {rounds} trials");
    println!(
        "  integration loop alone   {:8.3} ms  ({:.3e} neuron-steps/s)",
        b * 1e3,
        steps / b
    );
    println!(
        "  with all reductions      {:8.3} ms  ({:.3e} neuron-steps/s)",
        f * 1e3,
        steps / f
    );
    println!(
        "  reductions overhead      {:+8.1} %  (target <= 15 %)",
        (f / b - 1.0) * 100.0
    );
    breakdown(&cfg, b);
}

/// Each measure's share of the integration loop's time, computed alone on
/// one trial's spikes (the shared preparations counted in the first
/// measure that asks for them, as in a run).
fn breakdown(cfg: &TrialConfig, loop_s: f64) {
    let outcome = simulate_trial(cfg, 0);
    let (t0, t1) = (cfg.transient_ms, cfg.duration_ms);
    let trains: Vec<&[f64]> = outcome.spikes_ms.iter().map(Vec::as_slice).collect();
    let windows: Vec<&[f64]> = trains.iter().map(|s| in_window(s, t0, t1)).collect();
    let time = |f: &dyn Fn() -> usize| {
        let t = Instant::now();
        black_box(f());
        t.elapsed().as_secs_f64()
    };
    let stats = || -> Vec<_> {
        trains
            .iter()
            .map(|s| train_stats(s, t0, t1, cfg.measures.bin_ms))
            .collect()
    };
    let neurons_s = time(&|| stats().len());
    let neurons = stats();
    let view = TrialView {
        trains: &trains,
        windows: &windows,
        neurons: &neurons,
        t0_ms: t0,
        t1_ms: t1,
        dt_ms: cfg.dt_ms,
        params: &cfg.measures,
        chi: None,
        prepared: Default::default(),
    };
    let mut parts = vec![("train statistics", neurons_s)];
    for m in MEASURES {
        parts.push((m.column, time(&|| (m.compute)(&view).is_some() as usize)));
    }
    parts.push(("pairs.parquet rows", time(&|| pair_values(&view).len())));
    let line: Vec<String> = parts
        .iter()
        .filter(|(_, s)| *s > 1e-3 * loop_s)
        .map(|(name, s)| format!("{name} {:.1} %", 100.0 * s / loop_s))
        .collect();
    println!("  of which (>= 0.1 %)      {}", line.join(", "));
}

fn main() {
    measure(
        "seed pair, 1000 ms, dt 0.01, sigma 2, every measure and pairs",
        PAIR,
        15,
    );
    measure(
        "100 neurons all-to-all, 1000 ms, dt 0.01, sigma 2, every measure and pairs",
        NETWORK,
        11,
    );
}
