//! Golden tests against reference data computed with a stiff solver at
//! tight tolerance (tests/data/README.md). The reference spike times are
//! exact to about 1e-5 ms, so every error measured here is the method's
//! (and, in the default rates mode, the table's).

use serde_json::Value;
use spikesweep::run::{simulate_trial, Status};
use spikesweep::spec::{ExperimentSpec, TrialConfig};

fn load(name: &str) -> Value {
    let path = format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).expect("reference data")).expect("valid JSON")
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_f64().expect("number"))
        .collect()
}

fn config(text: &str) -> TrialConfig {
    ExperimentSpec::parse(text).unwrap().resolve(&[]).unwrap()
}

/// The original question's pair (reference_pair.json), no noise.
fn pair(method: &str, dt_ms: f64, rates: &str) -> TrialConfig {
    config(&format!(
        r#"
name = "pair"
[time]
dt_ms = {dt_ms}
duration_ms = 200.0
[integrator]
method = "{method}"
rates = "{rates}"
[neuron]
i_inj = 10.0
v0_mv = [-65.0, -70.0]
[network]
n = 2
topology = {{ matrix = [[0, 1], [1, 0]] }}
strength = 0.1
[synapse]
v_rev_mv = 20.0
w = 1.0
"#
    ))
}

/// Max |t - t_ref| over every spike of `want`'s trains; panics if the
/// spike counts differ.
fn worst_error(got: &[Vec<f64>], want: &[Vec<f64>], what: &str) -> f64 {
    let mut worst = 0.0f64;
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert_eq!(g.len(), w.len(), "{what}: neuron {i} spike count");
        for (a, b) in g.iter().zip(w) {
            worst = worst.max((a - b).abs());
        }
    }
    worst
}

fn pair_error(method: &str, dt_ms: f64, rates: &str) -> f64 {
    let reference = load("reference_pair.json");
    let want = [
        floats(&reference["spikes_ms"]["neuron1"]),
        floats(&reference["spikes_ms"]["neuron2"]),
    ];
    let out = simulate_trial(&pair(method, dt_ms, rates), 1);
    assert_eq!(out.status, Status::Ok);
    worst_error(&out.spikes_ms, &want, &format!("{method} dt={dt_ms} {rates}"))
}

#[test]
fn hh_pair_spike_times_match_the_reference_within_0_05_ms_at_dt_0_01_in_both_rates_modes() {
    // Every one of the 28 spike times within 0.05 ms. Exponential midpoint
    // measures 0.0125 ms here (printed), so the bound has 4x headroom, and
    // still fails for a first-order scheme (exp-euler: 0.63 ms).
    for rates in ["table", "exact"] {
        let err = pair_error("exp-midpoint", 0.01, rates);
        println!("HH pair, rates = {rates}: max spike-time error {err:.4} ms");
        assert!(err < 0.05, "{rates}: max spike-time error {err} ms");
    }
}

#[test]
fn exp_midpoint_converges_at_second_order_and_both_eulers_at_first() {
    // Halving dt divides a p-th order method's error by 2^p. On a smooth
    // deterministic run the ratios come out close to 4 and 2; allow a band
    // around each wide enough for the error's higher-order terms. Exact
    // rates: the table's own small error does not shrink with dt.
    let m = [
        pair_error("exp-midpoint", 0.04, "exact"),
        pair_error("exp-midpoint", 0.02, "exact"),
        pair_error("exp-midpoint", 0.01, "exact"),
    ];
    let e = [
        pair_error("exp-euler", 0.004, "exact"),
        pair_error("exp-euler", 0.002, "exact"),
    ];
    let f = [pair_error("euler", 0.01, "exact"), pair_error("euler", 0.005, "exact")];
    println!("exp-midpoint errors {m:?}, exp-euler {e:?}, euler {f:?}");
    for w in m.windows(2) {
        let ratio = w[0] / w[1];
        assert!((3.0..5.5).contains(&ratio), "exp-midpoint error ratio {ratio} ({m:?})");
    }
    let ratio = e[0] / e[1];
    assert!((1.6..2.6).contains(&ratio), "exp-euler error ratio {ratio} ({e:?})");
    // Forward Euler for every variable: first order, 0.04 ms at dt = 0.01
    // (the figure measured by hand for the reference).
    let ratio = f[0] / f[1];
    assert!((1.6..2.6).contains(&ratio), "euler error ratio {ratio} ({f:?})");
    assert!((0.02..0.06).contains(&f[0]), "euler error at dt 0.01: {}", f[0]);
}

/// One neuron of `model` at constant current from rest, 2000 ms.
fn single(model: &str, i_inj: f64, rates: &str) -> TrialConfig {
    config(&format!(
        "name = \"fi\"\n[time]\ndt_ms = 0.01\nduration_ms = 2000.0\ntransient_ms = 500.0\n\
         [integrator]\nrates = \"{rates}\"\n[neuron]\nmodel = \"{model}\"\ni_inj = {i_inj}\n"
    ))
}

/// 1000 / mean ISI over [500, 2000) ms, the reference's `rate_isi` (count
/// rates jump by 0.67 Hz per spike); `None` below two spikes there.
fn rate_by_isi(spikes_ms: &[f64]) -> Option<f64> {
    let window: Vec<f64> = spikes_ms
        .iter()
        .copied()
        .filter(|&t| (500.0..2000.0).contains(&t))
        .collect();
    (window.len() >= 2).then(|| 1000.0 * (window.len() - 1) as f64 / (window[window.len() - 1] - window[0]))
}

#[test]
fn hh_f_i_curve_steady_period_within_half_a_percent() {
    // 0.5 % of a 15-18 ms period is ~0.08 ms, which a 0.0125 ms spike-time
    // error per spike cannot approach; a wrong rate function or a sign
    // error in a current moves the period by far more.
    let reference = load("reference_fi.json");
    for rates in ["table", "exact"] {
        for i_inj in [6.5, 7.0, 8.0, 10.0, 15.0, 20.0, 30.0, 50.0] {
            let row = reference["fi_curve"]
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r["I"].as_f64() == Some(i_inj))
                .expect("reference row");
            let want_hz = row["rate_isi_Hz"].as_f64().unwrap();
            let got_hz = rate_by_isi(&simulate_trial(&single("hh", i_inj, rates), 1).spikes_ms[0]).unwrap();
            let rel = (got_hz - want_hz).abs() / want_hz;
            assert!(
                rel < 0.005,
                "{rates}, I = {i_inj}: {got_hz} Hz vs {want_hz} Hz ({:.3} %)",
                rel * 100.0
            );
        }
    }
}

#[test]
fn hh_first_spikes_at_i_10_match_the_reference() {
    // Same 0.05 ms bound as the pair, for an uncoupled neuron from rest.
    let reference = load("reference_fi.json");
    let want = floats(&reference["I10_first5_spikes_ms"]);
    for rates in ["table", "exact"] {
        let out = simulate_trial(&single("hh", 10.0, rates), 1);
        for (g, w) in out.spikes_ms[0].iter().zip(&want) {
            assert!((g - w).abs() < 0.05, "{rates}: {g} vs {w}");
        }
    }
}

#[test]
fn hh_no_sustained_firing_below_the_rheobase_of_repetitive_firing() {
    // From rest, I = 6.0 fires twice and then rests (the stable limit cycle
    // appears only at I = 6.26): no spike may fall in [500, 2000).
    for rates in ["table", "exact"] {
        let out = simulate_trial(&single("hh", 6.0, rates), 1);
        assert_eq!(out.neurons[0].n_spikes, 0, "{rates}: spikes {:?}", out.spikes_ms[0]);
        assert_eq!(
            out.spikes_ms[0].len(),
            2,
            "{rates}: two onset spikes, as in the reference"
        );
    }
}

#[test]
fn new_models_f_i_rates_within_half_a_percent_of_the_reference() {
    // reference_models.json: Wang-Buzsaki, Traub-Miles and Pospischil's RS
    // cell from rest, 2000 ms, rates by 1000 / mean ISI over [500, 2000).
    // 0.5 %: as for HH (measured at most 0.041 %, Traub-Miles at I = 20).
    // Where the reference does not fire in the window (WB at 0.15, just
    // below its rheobase 0.16-0.17; Pospischil at 0.5, one spike and rest)
    // neither may we: the same number of spikes. The first spike within
    // 0.05 ms (measured at most 0.036 ms, WB at 0.17 with tables); later
    // ones drift by up to 0.05 ms per spike near a rheobase, where the
    // period is most sensitive to any error, so they are not compared.
    let reference = load("reference_models.json");
    for (model, rows) in reference["models"].as_object().unwrap() {
        for row in rows.as_array().unwrap() {
            let i_inj = row["I"].as_f64().unwrap();
            let want_hz = row["rate_isi_hz"].as_f64().unwrap();
            let first = floats(&row["first_spikes_ms"]);
            for rates in ["table", "exact"] {
                let out = simulate_trial(&single(model, i_inj, rates), 1);
                let what = format!("{model}, I = {i_inj}, {rates}");
                let spikes = &out.spikes_ms[0];
                if want_hz == 0.0 {
                    assert_eq!(spikes.len(), first.len(), "{what}: {spikes:?}");
                } else {
                    let got_hz = rate_by_isi(spikes).unwrap_or(0.0);
                    let rel = (got_hz - want_hz).abs() / want_hz;
                    assert!(
                        rel < 0.005,
                        "{what}: {got_hz} Hz vs {want_hz} Hz ({:.3} %)",
                        rel * 100.0
                    );
                }
                if let (Some(g), Some(w)) = (spikes.first(), first.first()) {
                    assert!((g - w).abs() < 0.05, "{what}: first spike {g} vs {w}");
                }
            }
        }
    }
}

#[test]
fn wang_buzsaki_inhibitory_pair_spike_times_within_0_05_ms() {
    // Two WB cells inhibiting each other with their synapse (alpha 12,
    // beta 0.1, v_half 0, k 2, v_rev -75, g = 0.1 all-to-all), I = 2, from
    // -65 and -55 mV; they synchronise within about 60 ms. A well-
    // conditioned reference (LSODA and Radau agree within 3e-7 ms).
    let reference = load("reference_models.json");
    let wb = &reference["wb_pair"];
    let want = [floats(&wb["spikes_ms"]["neuron1"]), floats(&wb["spikes_ms"]["neuron2"])];
    for rates in ["table", "exact"] {
        let cfg = config(&format!(
            r#"
name = "wb_pair"
[time]
dt_ms = 0.01
duration_ms = 300.0
[integrator]
rates = "{rates}"
[neuron]
model = "wang-buzsaki"
i_inj = 2.0
v0_mv = [-65.0, -55.0]
[network]
n = 2
strength = 0.1
[synapse]
alpha_per_ms = 12.0
beta_per_ms = 0.1
v_half_mv = 0.0
k_mv = 2.0
v_rev_mv = -75.0
w = 1.0
"#
        ));
        let out = simulate_trial(&cfg, 1);
        let err = worst_error(&out.spikes_ms, &want, &format!("wb pair {rates}"));
        println!("WB pair, rates = {rates}: max spike-time error {err:.4} ms");
        assert!(err < 0.05, "{rates}: {err} ms");
    }
}

#[test]
fn tables_move_spike_times_by_a_stated_bound_per_model() {
    // The table interpolates x_inf and the decay factors linearly on 0.05
    // mV bins (errors ~ h^2/8 |f''|, below 1e-6 per update), which shifts
    // the period by a few parts in 1e5 and so the spike times by a drift
    // that grows with the spike count. Over 1000 ms of repetitive firing
    // (60 to 110 spikes) the stated bound per model, measured x1.5: HH
    // 3.2e-3 ms, WB 2.7e-3, Traub-Miles 1.2e-3, Pospischil 1.25e-3 (about
    // a fifth of those over 200 ms). The method's own drift against the
    // reference is tens of times larger (WB at I = 1: 0.0034 ms per spike,
    // 0.2 ms after 1000 ms, both rates modes alike).
    for (model, i_inj, bound) in [
        ("hh", 10.0, 5e-3),
        ("wang-buzsaki", 1.0, 4e-3),
        ("traub-miles", 2.0, 2e-3),
        ("pospischil-rs", 5.0, 2e-3),
    ] {
        let run = |rates: &str| {
            let mut cfg = single(model, i_inj, rates);
            cfg.n_steps = 100_000;
            cfg.duration_ms = 1000.0;
            simulate_trial(&cfg, 1).spikes_ms
        };
        let (table, exact) = (run("table"), run("exact"));
        let shift = worst_error(&table, &exact, model);
        println!("{model}: tables move spike times by at most {shift:.2e} ms over 1000 ms");
        assert!(shift < bound, "{model}: {shift} ms");
        assert!(shift > 0.0, "{model}: tables and exact rates round differently");
        assert!(table[0].len() > 5, "{model} fires repetitively at I = {i_inj}");
    }
}
