//! Tests of the trial loop and the ensemble.

use super::*;
use crate::plan::Plan;
use crate::spec::ExperimentSpec;
use lanes::integrate_lanes_on;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

fn config(extra: &str) -> TrialConfig {
    let text = format!("name = \"t\"\n[time]\nduration_ms = 200.0\ntransient_ms = 50.0\n{extra}");
    ExperimentSpec::parse(&text).unwrap().resolve(&[]).unwrap()
}

#[test]
fn progress_adds_up_to_the_plan_and_a_stop_drops_running_batches() {
    // 3001 steps per trial: three mid-trial reports (every 1024 steps)
    // and a rest; sigma 300 makes most lanes diverge early, whose work
    // still counts as done. Every neuron-step is reported exactly once.
    let text = "name = \"p\"\nreplicates = 11\n[time]\ndt_ms = 0.01\nduration_ms = 30.01\n\
                [network]\nn = 2\n[sweep]\n\"noise.sigma\" = [2.0, 300.0]\n";
    let plan = Plan::new(ExperimentSpec::parse(text).unwrap()).unwrap();
    assert_eq!(plan.points[0].config.n_steps, 3001);
    let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
    let ids: Vec<u32> = (0..plan.n_trials()).collect();
    let (work, trials) = (AtomicU64::new(0), AtomicUsize::new(0));
    let results = run_ensemble(
        &plan,
        &ids,
        &pool,
        &|_| _ = trials.fetch_add(1, Ordering::Relaxed),
        &|steps| _ = work.fetch_add(steps, Ordering::Relaxed),
        &|| false,
    );
    assert_eq!(results.len(), 22);
    assert!(results.iter().any(|r| r.outcome.status != Status::Ok));
    assert_eq!(work.into_inner() as u128, plan.neuron_steps());
    assert_eq!(trials.into_inner(), 22);
    // Stopped once the first reports come in: the running batches give
    // up, none is returned, and none reports its rest.
    let work = AtomicU64::new(0);
    let stopped = run_ensemble(
        &plan,
        &ids,
        &pool,
        &|_| {},
        &|steps| _ = work.fetch_add(steps, Ordering::Relaxed),
        &|| work.load(Ordering::Relaxed) > 0,
    );
    assert!(stopped.is_empty(), "{} trials returned", stopped.len());
    // At most one report per thread (2): CHECK_STEPS steps of a batch's
    // lanes (as many as lanes_for gives a pair) of 2 neurons.
    let lanes = lanes_for(&plan.points[0].config) as u64;
    assert!(work.into_inner() <= 2 * CHECK_STEPS * lanes * 2);
}

#[test]
fn a_traced_trial_is_the_ensemble_trial() {
    let cfg = config("[network]\nn = 3\nstrength = 0.1\n[noise]\nsigma = 2.0\nshared = 0.3\n");
    let (outcome, trace) = trace_trial(&cfg, 42, 10);
    assert_eq!(outcome, simulate_trial(&cfg, 42), "bit for bit");
    // 200 ms / 0.01 ms = 20 000 steps; every 10th plus step 0, 3 neurons.
    assert_eq!(trace.t_ms.len(), 2001 * 3);
    assert_eq!(trace.t_ms[3], 0.1);
    assert_eq!(
        trace.vars.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
        ["m", "h", "n", "s"]
    );
    assert!(trace.vars.iter().flat_map(|(_, x)| x).all(|x| (0.0..=1.0).contains(x)));
}

#[test]
fn trials_stepped_together_give_the_bits_each_gives_alone() {
    // Stacking lanes changes loop lengths, never arithmetic. 11 seeds:
    // not a multiple of the SIMD chunk, so the remainder path runs too;
    // with sigma = 300 most lanes diverge (8 of 11 here) and must not
    // disturb the rest.
    let cases = [
        "[network]\nn = 2\nstrength = 0.1\n[noise]\nsigma = 2.0\n",
        "[integrator]\nrates = \"exact\"\n[network]\nn = 2\nstrength = 0.1\n[noise]\nsigma = 2.0\n",
        "[network]\nn = 3\nstrength = 0.1\n[noise]\nsigma = 2.0\ntau_ms = 5.0\nshared = 0.5\n",
        // Both synapses, coloured noise, gap junctions, other models.
        "[network]\nn = 2\nstrength = 0.1\n[noise]\nsigma = 2.0\ntau_ms = 5.0\nshared = 0.5\n",
        "[network]\nn = 2\nstrength = 0.1\n[synapse]\nkind = \"double-exp\"\n[gap]\ng = 0.05\n\
         [noise]\nsigma = 2.0\n",
        "[neuron]\nmodel = \"pospischil-rs\"\ni_inj = 3.0\n[network]\nn = 3\nstrength = 0.1\n[noise]\nsigma = 1.0\n",
        "[neuron]\nmodel = \"wang-buzsaki\"\ni_inj = 1.0\n[integrator]\nrates = \"exact\"\n[network]\nn = 2\nstrength = 0.1\n[noise]\nsigma = 0.5\n",
        "[integrator]\nrates = \"exact\"\n[network]\nn = 5\ntopology = \"random\"\np = 0.5\nstrength = 0.2\nresample = true\n\
         [synapse]\nkind = \"double-exp\"\n[gap]\ng = 0.05\n[neuron]\ni_inj = { uniform = [8.0, 12.0] }\n[noise]\nsigma = 1.0\n",
        "[integrator]\nrates = \"exact\"\n[network]\nn = 2\n[noise]\nsigma = 300.0\n",
    ];
    for extra in cases {
        let cfg = config(extra);
        let seeds: Vec<u64> = (100..111).collect();
        let together = simulate_lanes(&cfg, &seeds, |_, _, _| {});
        for (seed, outcome) in seeds.iter().zip(&together) {
            assert_eq!(*outcome, simulate_trial(&cfg, *seed), "{extra}: seed {seed}");
        }
        if extra.contains("300.0") {
            let diverged = together.iter().filter(|o| o.status != Status::Ok).count();
            assert!(diverged > 0 && diverged < seeds.len(), "{diverged} of 11 diverged");
        }
    }
}

#[test]
fn every_build_of_the_trial_loop_gives_the_same_bits() {
    // The loop and its step (`stepper::step_at`, a function per level)
    // are compiled per instruction set and picked at run time; a results
    // file must not depend on the machine. Each build this CPU runs
    // against the portable one, on batches with a remainder and with
    // diverging lanes, for HH and a model with an instantaneous gate, in
    // both rates modes.
    // (Meaningful in release, where the builds vectorise differently.)
    for extra in [
        "[network]\nn = 3\nstrength = 0.1\n[noise]\nsigma = 2.0\n",
        "[integrator]\nrates = \"exact\"\n[network]\nn = 3\nstrength = 0.1\n[noise]\nsigma = 2.0\ntau_ms = 2.0\n",
        "[network]\nn = 2\nstrength = 0.1\n[noise]\nsigma = 300.0\n",
        "[integrator]\nmethod = \"exp-euler\"\n[network]\nn = 3\nstrength = 0.1\n[noise]\nsigma = 2.0\n",
        "[neuron]\nmodel = \"wang-buzsaki\"\ni_inj = 1.0\n[network]\nn = 2\nstrength = 0.1\n[synapse]\nkind = \"double-exp\"\n[noise]\nsigma = 1.0\n",
        "[neuron]\nmodel = \"traub-miles\"\ni_inj = 1.0\n[integrator]\nrates = \"exact\"\n[network]\nn = 2\n[noise]\nsigma = 1.0\n",
    ] {
        let cfg = config(extra);
        let seeds: Vec<u64> = (1..12).collect();
        let batch: Vec<(&TrialConfig, u64)> = seeds.iter().map(|&s| (&cfg, s)).collect();
        let run = |level| integrate_lanes_on(level, &batch, &|_| false, |_, _, _| {});
        let portable = crate::simd::run_at(crate::simd::Simd::Portable, run).unwrap();
        assert_eq!(Some(integrate_lanes(&cfg, &seeds, |_, _, _| {})), portable, "{extra}: dispatched");
        for level in crate::simd::Simd::ALL {
            if let Some(other) = crate::simd::run_at(level, run) {
                assert_eq!(other, portable, "{extra}: {level:?}");
            }
        }
    }
}

#[test]
fn exact_and_tabulated_rates_agree_on_a_noisy_network() {
    // The table's interpolation error moves gates by < 1e-6 per
    // update; over 200 ms of a noisy coupled pair spike times stay
    // within 1e-3 ms (tests/golden.rs bounds both against the
    // stiff-solver reference, the number that matters).
    let table = config("[network]\nn = 2\nstrength = 0.1\n[neuron]\nv0_mv = [-65, -70]\n[noise]\nsigma = 1.0\n");
    let exact = config("[integrator]\nrates = \"exact\"\n[network]\nn = 2\nstrength = 0.1\n[neuron]\nv0_mv = [-65, -70]\n[noise]\nsigma = 1.0\n");
    for seed in 1..=4 {
        let (a, b) = (simulate_trial(&table, seed), simulate_trial(&exact, seed));
        assert_ne!(a, b, "the table does round differently");
        for (x, y) in a.spikes_ms.iter().zip(&b.spikes_ms) {
            assert_eq!(x.len(), y.len(), "seed {seed}");
            let worst = x.iter().zip(y).map(|(p, q)| (p - q).abs()).fold(0.0, f64::max);
            assert!(worst < 1e-3, "seed {seed}: spike times differ by {worst} ms");
        }
    }
}

#[test]
fn without_noise_every_seed_gives_the_same_trial() {
    let cfg = config("[network]\nn = 2\nstrength = 0.1\n[neuron]\nv0_mv = [-65, -70]\n");
    let a = simulate_trial(&cfg, 1);
    assert_eq!(a, simulate_trial(&cfg, 987_654_321));
    assert!(a.spikes_ms[0].len() > 5, "I = 10 fires repetitively");
}

#[test]
fn noise_makes_seeds_differ_and_a_seed_repeat_itself() {
    let cfg = config("[network]\nn = 2\n[noise]\nsigma = 3.0\n");
    let a = simulate_trial(&cfg, 1);
    assert_eq!(a, simulate_trial(&cfg, 1));
    assert_ne!(a.spikes_ms, simulate_trial(&cfg, 2).spikes_ms);
}

#[test]
fn common_random_numbers_hold_across_a_sweep_of_shared_noise_from_zero() {
    // At c = 1e-300 the common part (1e-150 of the noise) vanishes in
    // rounding and sqrt(1 - c) is 1: with the same stream the trial is
    // the c = 0 trial, bit for bit, if c = 0 draws the common normal
    // too. It must in a sweep over c; alone, c = 0 draws none.
    let text = "name = \"t\"\nseed_mode = \"common\"\n[time]\nduration_ms = 100.0\n\
                [network]\nn = 2\nstrength = 0.1\n[noise]\nsigma = 3.0\n[sweep]\n\"noise.shared\" = [0.0, 1e-300]\n";
    for tau in ["", "tau_ms = 2.0\n"] {
        let text = text.replace("sigma = 3.0\n", &format!("sigma = 3.0\n{tau}"));
        let plan = Plan::new(ExperimentSpec::parse(&text).unwrap()).unwrap();
        let trial = |point: usize| simulate_trial(&plan.points[point].config, plan.trial(point as u32).seed);
        let (unshared, tiny) = (trial(0), trial(1));
        assert!(unshared.spikes_ms[0].len() > 5, "{tau}: {unshared:?}");
        assert_eq!(unshared, tiny, "{tau}");
        let alone = ExperimentSpec::parse(&text.replace(", 1e-300", ""))
            .unwrap()
            .resolve(&[0.0])
            .unwrap();
        assert!(!alone.noise_draws_common);
        assert_ne!(
            simulate_trial(&alone, plan.trial(0).seed).spikes_ms,
            unshared.spikes_ms,
            "{tau}"
        );
    }
}

#[test]
fn absurd_noise_is_a_diverged_status_not_a_panic_or_nan() {
    // sigma = 1e5 moves V by 1e5 * sqrt(0.01) = 1e4 mV per step: far
    // beyond V_ABSURD_MV on the first step.
    let cfg = config("[noise]\nsigma = 1e5\n");
    let out = simulate_trial(&cfg, 3);
    assert_eq!(out.status, Status::Diverged { at_ms: 0.01 });
    assert!(out.neurons.is_empty() && out.spikes_ms.is_empty());
}

#[test]
fn unstable_voltage_step_is_caught_as_divergence() {
    // dt = 1 ms is far beyond the explicit voltage step's stability limit
    // (dt * gNa m^3 h / C ~ 2): the voltage oscillates with growing
    // amplitude and must be caught, not written as garbage.
    let cfg = TrialConfig {
        dt_ms: 1.0,
        n_steps: 200,
        ..config("")
    };
    let out = simulate_trial(&cfg, 1);
    assert!(matches!(out.status, Status::Diverged { .. }), "{:?}", out.status);
}

#[test]
fn spikes_are_sorted_and_window_counts_exclude_the_transient() {
    let cfg = config("[noise]\nsigma = 2.0\n");
    let out = simulate_trial(&cfg, 4);
    let s = &out.spikes_ms[0];
    assert!(s.windows(2).all(|w| w[0] < w[1]));
    assert!(s.iter().all(|&t| (0.0..=200.0).contains(&t)));
    let in_window = s.iter().filter(|&&t| (50.0..200.0).contains(&t)).count();
    assert_eq!(out.neurons[0].n_spikes as usize, in_window);
    assert!(in_window < s.len(), "some spikes fall in the transient");
}

#[test]
fn channel_noise_vanishes_on_large_membranes() {
    // At rest (I = 0) a 1 um^2 patch (60 Na, 18 K channels) fires
    // spontaneously; a 1e6 um^2 one, like the deterministic model, never
    // does. At I = 10 a 1e5 um^2 patch fires with the deterministic mean
    // ISI to within 1 % (the channel noise there is 1/sqrt(6e6) of a
    // gate's range), and a 10 um^2 one measurably does not.
    let cfg = |i_inj: f64, area: f64| {
        let text = format!(
            "name = \"t\"\n[time]\nduration_ms = 1000.0\ntransient_ms = 200.0\n[neuron]\ni_inj = {i_inj}\n[noise]\nchannel_area_um2 = {area}\n"
        );
        ExperimentSpec::parse(&text).unwrap().resolve(&[]).unwrap()
    };
    let small = simulate_trial(&cfg(0.0, 1.0), 1);
    assert!(small.neurons[0].n_spikes > 0, "spontaneous spikes in a small patch");
    let large = simulate_trial(&cfg(0.0, 1e6), 1);
    assert_eq!(large.neurons[0].n_spikes, 0);
    let deterministic = simulate_trial(&cfg(10.0, 0.0), 1).neurons[0].mean_isi_ms.unwrap();
    let big = simulate_trial(&cfg(10.0, 1e5), 1).neurons[0].mean_isi_ms.unwrap();
    assert!((big / deterministic - 1.0).abs() < 0.01, "{big} vs {deterministic}");
    let tiny = simulate_trial(&cfg(10.0, 10.0), 1).neurons[0].mean_isi_ms.unwrap();
    assert!((tiny / deterministic - 1.0).abs() > 0.01, "{tiny} vs {deterministic}");
}

#[test]
fn channel_noise_keeps_gates_in_the_unit_interval_and_counts_truncations() {
    let text = "name = \"t\"\n[time]\nduration_ms = 100.0\n[noise]\nchannel_area_um2 = 0.1\n";
    let cfg = ExperimentSpec::parse(text).unwrap().resolve(&[]).unwrap();
    let (out, trace) = trace_trial(&cfg, 3, 1);
    assert!(out.n_clamped > 0, "6 Na channels: truncations happen and are counted");
    assert_eq!(
        trace.vars.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
        ["m", "h", "n", "s"]
    );
    assert!(trace.vars.iter().flat_map(|(_, x)| x).all(|x| (0.0..=1.0).contains(x)));
}
