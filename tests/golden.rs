//! Golden tests against reference data computed with a stiff solver at
//! tight tolerance (tests/data/README.md). The reference spike times are
//! exact to about 1e-5 ms, so every error measured here is the method's.

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

/// The original question's pair (reference_pair.json), no noise.
fn pair(method: &str, dt_ms: f64) -> TrialConfig {
    let text = format!(
        r#"
name = "pair"
[time]
dt_ms = {dt_ms}
duration_ms = 200.0
[integrator]
method = "{method}"
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
    );
    ExperimentSpec::parse(&text).unwrap().resolve(&[]).unwrap()
}

/// Max |t - t_ref| over both neurons; panics if the spike counts differ.
fn pair_error(method: &str, dt_ms: f64) -> f64 {
    let reference = load("reference_pair.json");
    let out = simulate_trial(&pair(method, dt_ms), 1);
    assert_eq!(out.status, Status::Ok);
    let mut worst = 0.0f64;
    for (i, key) in ["neuron1", "neuron2"].iter().enumerate() {
        let want = floats(&reference["spikes_ms"][key]);
        let got = &out.spikes_ms[i];
        assert_eq!(got.len(), want.len(), "{method} dt={dt_ms} {key}: spike count");
        for (g, w) in got.iter().zip(&want) {
            worst = worst.max((g - w).abs());
        }
    }
    worst
}

#[test]
fn pair_spike_times_match_the_reference_within_0_05_ms_at_dt_0_01() {
    // Requirement of issue 2: every one of the 28 spike times within
    // 0.05 ms. Exponential midpoint measures 0.012 ms here, so the bound has
    // 4x headroom for rounding differences across platforms, and still fails
    // for a first-order scheme (exp-euler: 0.63 ms).
    let err = pair_error("exp-midpoint", 0.01);
    assert!(err < 0.05, "max spike-time error {err} ms");
}

#[test]
fn exp_midpoint_converges_at_second_order_and_both_eulers_at_first() {
    // Halving dt divides a p-th order method's error by 2^p. On a smooth
    // deterministic run the ratios come out close to 4 and 2; allow a band
    // around each wide enough for the error's higher-order terms.
    let m = [
        pair_error("exp-midpoint", 0.04),
        pair_error("exp-midpoint", 0.02),
        pair_error("exp-midpoint", 0.01),
    ];
    let e = [pair_error("exp-euler", 0.004), pair_error("exp-euler", 0.002)];
    let f = [pair_error("euler", 0.01), pair_error("euler", 0.005)];
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

fn single(i_inj: f64) -> TrialConfig {
    let text = format!(
        "name = \"fi\"\n[time]\ndt_ms = 0.01\nduration_ms = 2000.0\ntransient_ms = 500.0\n[neuron]\ni_inj = {i_inj}\n"
    );
    ExperimentSpec::parse(&text).unwrap().resolve(&[]).unwrap()
}

#[test]
fn f_i_curve_steady_period_within_half_a_percent() {
    // The reference's `rate_isi_Hz` is 1000 / mean ISI over [500, 2000) ms.
    // 0.5 % of a 15-18 ms period is ~0.08 ms, which a 0.012 ms spike-time
    // error per spike cannot approach; a wrong rate function or a sign error
    // in a current moves the period by far more.
    let reference = load("reference_fi.json");
    for i_inj in [6.5, 10.0, 20.0, 50.0] {
        let row = reference["fi_curve"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["I"].as_f64() == Some(i_inj))
            .expect("reference row");
        let want_hz = row["rate_isi_Hz"].as_f64().unwrap();
        let out = simulate_trial(&single(i_inj), 1);
        let window: Vec<f64> = out.spikes_ms[0]
            .iter()
            .copied()
            .filter(|&t| (500.0..2000.0).contains(&t))
            .collect();
        let mean_isi = (window[window.len() - 1] - window[0]) / (window.len() - 1) as f64;
        let got_hz = 1000.0 / mean_isi;
        let rel = (got_hz - want_hz).abs() / want_hz;
        assert!(
            rel < 0.005,
            "I = {i_inj}: {got_hz} Hz vs {want_hz} Hz ({:.3} %)",
            rel * 100.0
        );
    }
}

#[test]
fn first_spikes_at_i_10_match_the_reference() {
    // Same 0.05 ms bound as the pair, for an uncoupled neuron from rest.
    let reference = load("reference_fi.json");
    let want = floats(&reference["I10_first5_spikes_ms"]);
    let out = simulate_trial(&single(10.0), 1);
    for (g, w) in out.spikes_ms[0].iter().zip(&want) {
        assert!((g - w).abs() < 0.05, "{g} vs {w}");
    }
}

#[test]
fn no_sustained_firing_below_the_rheobase_of_repetitive_firing() {
    // From rest, I = 6.0 fires twice and then rests (the stable limit cycle
    // appears only at I = 6.26): no spike may fall in [500, 2000).
    let out = simulate_trial(&single(6.0), 1);
    assert_eq!(out.neurons[0].n_spikes, 0, "spikes: {:?}", out.spikes_ms[0]);
    assert_eq!(out.spikes_ms[0].len(), 2, "two onset spikes, as in the reference");
}

#[test]
fn tabulated_gates_stay_within_a_stated_bound_of_the_exact_run() {
    // integrator.tables interpolates the gate updates on 0.05 mV bins. On
    // the reference pair (28 spikes, 200 ms, dt 0.01) its spike times stay
    // within 1e-3 ms of the exact exp-midpoint run (measured: see the
    // printed figure), a tenth of the method's own error (0.0125 ms), and
    // within the 0.05 ms bound of the reference.
    let exact = simulate_trial(&pair("exp-midpoint", 0.01), 1);
    let mut cfg = pair("exp-midpoint", 0.01);
    cfg.gate_table = Some(spikesweep::integrate::GateTable::for_dt(
        0.01,
        Some(&cfg.network.synapse),
    ));
    let tabled = simulate_trial(&cfg, 1);
    let mut shift = 0.0f64;
    for (a, b) in exact.spikes_ms.iter().zip(&tabled.spikes_ms) {
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(b) {
            shift = shift.max((x - y).abs());
        }
    }
    println!("tables move spike times by at most {shift:.2e} ms");
    assert!(shift < 1e-3, "{shift}");
    assert!(
        shift > 0.0,
        "tables do change the last digits: that is why they are opt-in"
    );
    let reference = load("reference_pair.json");
    let want = floats(&reference["spikes_ms"]["neuron1"]);
    for (g, w) in tabled.spikes_ms[0].iter().zip(&want) {
        assert!((g - w).abs() < 0.05);
    }
}

#[test]
fn fast_stepper_matches_the_reference_as_the_default_does() {
    // integrator.fast rearranges the same equations for SIMD (one
    // division per gate, a polynomial exponential within 2 ulp of libm):
    // on the reference pair its spike times stay within 1e-9 ms of the
    // default's (measured: 1.7e-13 ms, printed; rounding level, far below
    // the method's own error) and so within the 0.05 ms
    // bound of the reference, with the same error 0.0125 ms.
    let exact = simulate_trial(&pair("exp-midpoint", 0.01), 1);
    let cfg = TrialConfig {
        fast: true,
        ..pair("exp-midpoint", 0.01)
    };
    let fast = simulate_trial(&cfg, 1);
    let mut shift = 0.0f64;
    for (a, b) in exact.spikes_ms.iter().zip(&fast.spikes_ms) {
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(b) {
            shift = shift.max((x - y).abs());
        }
    }
    println!("the fast stepper moves spike times by at most {shift:.2e} ms");
    assert!(shift < 1e-9, "{shift}");
    let reference = load("reference_pair.json");
    for (i, key) in ["neuron1", "neuron2"].iter().enumerate() {
        let want = floats(&reference["spikes_ms"][key]);
        assert_eq!(fast.spikes_ms[i].len(), want.len());
        let worst = fast.spikes_ms[i]
            .iter()
            .zip(&want)
            .map(|(g, w)| (g - w).abs())
            .fold(0.0, f64::max);
        assert!(worst < 0.0126, "{key}: {worst} ms from the reference");
    }
}
