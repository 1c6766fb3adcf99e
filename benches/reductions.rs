//! Cost of the per-trial reductions (spike statistics, chi, Kuramoto R,
//! SPIKE-sync) relative to the bare integration loop, on the seed pair
//! (2 neurons, 1000 ms, dt 0.01, sigma 2, coupled). Both are measured in
//! the same run, alternating, and the medians compared; prints the ratio.
//!
//!     cargo bench --bench reductions        (or: make bench)

use spikesweep::run::{integrate_lanes, simulate_trial};
use spikesweep::spec::ExperimentSpec;
use std::hint::black_box;
use std::time::Instant;

const SPEC: &str = r#"
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
"#;

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn main() {
    let cfg = ExperimentSpec::parse(SPEC).unwrap().resolve(&[]).unwrap();
    let (mut bare, mut full) = (vec![], vec![]);
    let rounds = 15;
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
    let steps = cfg.n_steps as f64 * 2.0;
    println!("seed pair, 1000 ms, dt 0.01, sigma 2: median of {rounds} trials");
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
