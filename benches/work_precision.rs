//! Work-precision table: for each integration method and time step, the
//! largest spike-time error on the reference pair (tests/data/
//! reference_pair.json, 28 spikes in 200 ms, no noise) and the speed
//! (neuron-steps/s on one core, pair trials of 1000 ms with sigma = 2). It
//! tells a user which dt buys the accuracy they need. Then the same for the
//! other built-in models in both rates modes (Wang-Buzsaki's inhibitory
//! pair, the first five spikes of a lone Traub-Miles and Pospischil RS
//! cell, against tests/data/reference_models.json), and each model's f-I
//! curve beside the reference's.
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
            // Speed: noisy 1000 ms pair trials, as the ensemble steps them.
            let rate = speed(&pair(name, dt, 1000.0, 2.0));
            println!("| {name} | {dt} | {error} | {rate:.2e} |");
        }
    }
    models(&want);
}

/// Largest |got - want| over the spikes both have, or why not comparable.
fn worst(got: &[Vec<f64>], want: &[Vec<f64>]) -> Result<f64, String> {
    if got.iter().zip(want).any(|(g, w)| g.len() < w.len()) {
        let counts: Vec<usize> = got.iter().map(Vec::len).collect();
        return Err(format!("too few spikes {counts:?}"));
    }
    Ok(got
        .iter()
        .zip(want)
        .flat_map(|(g, w)| g.iter().zip(w).map(|(a, b)| (a - b).abs()))
        .fold(0.0, f64::max))
}

fn spec(text: &str) -> TrialConfig {
    ExperimentSpec::parse(text).unwrap().resolve(&[]).unwrap()
}

/// The reference's setting for one model at dt, `ms` long, noise `sigma`.
fn model_case(model: &str, rates: &str, dt_ms: f64, ms: f64, sigma: f64) -> TrialConfig {
    let head = format!(
        "name = \"wp\"\n[time]\ndt_ms = {dt_ms}\nduration_ms = {ms}\n[integrator]\nrates = \"{rates}\"\n[noise]\nsigma = {sigma}\n"
    );
    match model {
        // reference_models.json's wb_pair: the WB synapse, I = 2.
        "wang-buzsaki" => spec(&format!(
            "{head}[neuron]\nmodel = \"wang-buzsaki\"\ni_inj = 2.0\nv0_mv = [-65.0, -55.0]\n[network]\nn = 2\nstrength = 0.1\n\
             [synapse]\nalpha_per_ms = 12.0\nbeta_per_ms = 0.1\nv_half_mv = 0.0\nk_mv = 2.0\nv_rev_mv = -75.0\n"
        )),
        // A lone cell from rest at I = 2 (the f-I rows' setting).
        _ => spec(&format!("{head}[neuron]\nmodel = \"{model}\"\ni_inj = 2.0\n")),
    }
}

/// Per model and rates mode, exp-midpoint: error against the reference and
/// speed; then the f-I curve (default rates) against the reference's.
fn models(hh_pair: &[Vec<f64>]) {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/reference_models.json");
    let reference: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let floats =
        |v: &serde_json::Value| -> Vec<f64> { v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect() };
    let at_2 = |model: &str| -> Vec<Vec<f64>> {
        let rows = reference["models"][model].as_array().unwrap();
        let row = rows.iter().find(|r| r["I"].as_f64() == Some(2.0)).unwrap();
        vec![floats(&row["first_spikes_ms"])]
    };
    let wb = &reference["wb_pair"]["spikes_ms"];
    let cases: [(&str, &str, Vec<Vec<f64>>); 4] = [
        ("hh", "the reference pair, 200 ms", hh_pair.to_vec()),
        (
            "wang-buzsaki",
            "inhibitory pair, 300 ms",
            vec![floats(&wb["neuron1"]), floats(&wb["neuron2"])],
        ),
        ("traub-miles", "one cell at I = 2, first 5 spikes", at_2("traub-miles")),
        (
            "pospischil-rs",
            "one cell at I = 2, first 5 spikes",
            at_2("pospischil-rs"),
        ),
    ];
    println!();
    println!("| model (exp-midpoint) | rates | dt (ms) | max spike-time error (ms) | neuron-steps/s (1 core) |");
    println!("|---|---|---|---|---|");
    for (model, what, want) in &cases {
        for rates in ["table", "exact"] {
            for dt in [0.05, 0.025, 0.01, 0.005] {
                let cfg = if *model == "hh" {
                    pair(
                        &format!("exp-midpoint{}", if rates == "exact" { "+exact" } else { "" }),
                        dt,
                        200.0,
                        0.0,
                    )
                } else {
                    model_case(model, rates, dt, 300.0, 0.0)
                };
                let out = simulate_trial(&cfg, 1);
                let error = match out.status {
                    Status::Diverged { at_ms } => format!("diverged at {at_ms:.1} ms"),
                    Status::Ok => worst(&out.spikes_ms, want).map_or_else(|e| e, |e| format!("{e:.4}")),
                };
                let noisy = if *model == "hh" {
                    pair(
                        &format!("exp-midpoint{}", if rates == "exact" { "+exact" } else { "" }),
                        dt,
                        1000.0,
                        2.0,
                    )
                } else {
                    model_case(model, rates, dt, 1000.0, 0.5)
                };
                println!(
                    "| {model} ({what}) | {rates} | {dt} | {error} | {:.2e} |",
                    speed(&noisy)
                );
            }
        }
    }
    println!();
    println!("| model | I (uA/cm^2) | rate, ours (Hz) | rate, reference (Hz) |");
    println!("|---|---|---|---|");
    for (model, rows) in reference["models"].as_object().unwrap() {
        for row in rows.as_array().unwrap() {
            let i_inj = row["I"].as_f64().unwrap();
            let cfg = spec(&format!(
                "name = \"fi\"\n[time]\nduration_ms = 2000.0\n[neuron]\nmodel = \"{model}\"\ni_inj = {i_inj}\n"
            ));
            let spikes: Vec<f64> = simulate_trial(&cfg, 1).spikes_ms[0]
                .iter()
                .copied()
                .filter(|&t| t >= 500.0)
                .collect();
            let ours = if spikes.len() < 2 {
                0.0
            } else {
                1000.0 * (spikes.len() - 1) as f64 / (spikes[spikes.len() - 1] - spikes[0])
            };
            println!(
                "| {model} | {i_inj} | {ours:.2} | {:.2} |",
                row["rate_isi_hz"].as_f64().unwrap()
            );
        }
    }
}

/// neuron-steps/s on one core: median of 5 batches of `cfg`'s trials, as
/// many together as the ensemble steps together.
fn speed(cfg: &TrialConfig) -> f64 {
    let lanes = lanes_for(cfg) as u64;
    let mut times: Vec<f64> = (0..5)
        .map(|batch| {
            let seeds: Vec<u64> = (batch * lanes..(batch + 1) * lanes).collect();
            let t = Instant::now();
            std::hint::black_box(simulate_lanes(cfg, &seeds, |_, _, _| {}));
            t.elapsed().as_secs_f64()
        })
        .collect();
    times.sort_by(f64::total_cmp);
    (cfg.n_steps * cfg.network.n() as u64 * lanes) as f64 / times[2]
}
