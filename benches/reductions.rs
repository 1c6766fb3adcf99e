//! Cost of the per-trial reductions (spike statistics and every measure of
//! the registry, `pairs.parquet`'s per-pair values included) relative to
//! the bare integration loop, on the seed pair (2 neurons, 1000 ms, dt 0.01,
//! sigma 2, coupled) and on a 100-neuron all-to-all network. Both are
//! measured in the same run, alternating, and the medians compared; prints
//! the ratio.
//!
//!     cargo bench --bench reductions        (or: make bench)

use spikesweep::run::{integrate_lanes, simulate_trial};
use spikesweep::spec::ExperimentSpec;
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

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
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
    let (b, f) = (median(bare), median(full));
    let steps = cfg.n_steps as f64 * cfg.network.n() as f64;
    println!("{title}: median of {rounds} trials");
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
        5,
    );
}
