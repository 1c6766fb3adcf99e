//! Work-precision table: for each integration method and time step, the
//! largest spike-time error on the reference pair (tests/data/
//! reference_pair.json, 28 spikes in 200 ms, no noise) and the speed
//! (neuron-steps/s on one core, pair trials of 1000 ms with sigma = 2). It
//! tells a user which dt buys the accuracy they need.
//!
//!     cargo bench --bench work_precision      (or: make work-precision)

use spikesweep::integrate::Method;
use spikesweep::run::{lanes_for, simulate_lanes, simulate_trial, Status};
use spikesweep::spec::{ExperimentSpec, TrialConfig};
use std::time::Instant;

fn pair(method: &str, dt_ms: f64, duration_ms: f64, sigma: f64) -> TrialConfig {
    // "exp-midpoint+exact" is exp-midpoint with integrator.rates = "exact";
    // the others tabulate their rates (the default).
    let (method, rates) = match method.strip_suffix("+exact") {
        Some(m) => (m, "exact"),
        None => (method, "table"),
    };
    let text = format!(
        "name = \"wp\"\n[time]\ndt_ms = {dt_ms}\nduration_ms = {duration_ms}\n[integrator]\nmethod = \"{method}\"\nrates = \"{rates}\"\n\
         [neuron]\nv0_mv = [-65.0, -70.0]\n[network]\nn = 2\nstrength = 0.1\n[noise]\nsigma = {sigma}\n"
    );
    ExperimentSpec::parse(&text).unwrap().resolve(&[]).unwrap()
}

fn main() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/reference_pair.json");
    let reference: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let want: Vec<Vec<f64>> = ["neuron1", "neuron2"]
        .iter()
        .map(|k| {
            reference["spikes_ms"][k]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap())
                .collect()
        })
        .collect();
    println!("| method | dt (ms) | max spike-time error (ms) | neuron-steps/s (1 core) |");
    println!("|---|---|---|---|");
    let names = Method::ALL.iter().map(|(n, _)| *n).chain(["exp-midpoint+exact"]);
    for name in names {
        for dt in [0.1, 0.05, 0.025, 0.01, 0.005] {
            let out = simulate_trial(&pair(name, dt, 200.0, 0.0), 1);
            let error = match out.status {
                Status::Diverged { at_ms } => format!("diverged at {at_ms:.1} ms"),
                Status::Ok if out.spikes_ms.iter().zip(&want).any(|(g, w)| g.len() != w.len()) => {
                    let counts: Vec<usize> = out.spikes_ms.iter().map(Vec::len).collect();
                    format!("wrong spike count {counts:?} (want [14, 14])")
                }
                Status::Ok => {
                    let worst = out
                        .spikes_ms
                        .iter()
                        .zip(&want)
                        .flat_map(|(g, w)| g.iter().zip(w).map(|(a, b)| (a - b).abs()))
                        .fold(0.0, f64::max);
                    format!("{worst:.4}")
                }
            };
            if matches!(out.status, Status::Diverged { .. }) {
                println!("| {name} | {dt} | {error} | - |");
                continue;
            }
            // Speed: median of 5 batches of noisy 1000 ms pair trials, as
            // many together as the ensemble steps together (lanes_for).
            let cfg = pair(name, dt, 1000.0, 2.0);
            let lanes = lanes_for(&cfg) as u64;
            let mut times: Vec<f64> = (0..5)
                .map(|batch| {
                    let seeds: Vec<u64> = (batch * lanes..(batch + 1) * lanes).collect();
                    let t = Instant::now();
                    std::hint::black_box(simulate_lanes(&cfg, &seeds, |_, _, _| {}));
                    t.elapsed().as_secs_f64()
                })
                .collect();
            times.sort_by(f64::total_cmp);
            let rate = (cfg.n_steps * 2 * lanes) as f64 / times[2];
            println!("| {name} | {dt} | {error} | {rate:.2e} |");
        }
    }
}
