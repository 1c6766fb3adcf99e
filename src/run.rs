//! Running trials: [`simulate_trial`] for one, [`run_ensemble`] for many on
//! rayon. Nothing here prints; progress goes through a callback.

use crate::graph::graph_seed;
use crate::integrate::{draw_lanes, step, Kernel, Lanes, Method, Noise, State, StepInput, Workspace};
use crate::model::Network;
use crate::observe::sync::{kuramoto_r, spike_sync, ChiAccumulator};
use crate::observe::{train_stats, SpikeDetector, TrainStats};
use crate::plan::{Plan, Trial};
use crate::simd::{run_widest, Simd};
use crate::spec::TrialConfig;
use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

/// |V| beyond which a trial is declared diverged (mV). Real action
/// potentials stay within [e_k, e_na] ~ [-80, 50] mV, and strong noise adds
/// tens of mV at most; a kilovolt only comes from an unstable integration.
pub const V_ABSURD_MV: f64 = 1000.0;

/// How a trial ended.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Status {
    Ok,
    /// Some V went non-finite or beyond [`V_ABSURD_MV`] at this time (ms);
    /// the trial's numbers are void.
    Diverged {
        at_ms: f64,
    },
}

impl Status {
    pub fn name(&self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Diverged { .. } => "diverged",
        }
    }
}

/// What one trial reduces to.
#[derive(Debug, Clone, PartialEq)]
pub struct TrialOutcome {
    pub status: Status,
    /// Every spike of every neuron, the transient included, sorted in time.
    /// Empty for a diverged trial.
    pub spikes_ms: Vec<Vec<f64>>,
    /// Per-neuron statistics over the analysis window; empty when diverged.
    pub neurons: Vec<TrainStats>,
    /// Population synchrony over the analysis window (all `None` when
    /// diverged).
    pub sync: Synchrony,
    /// Gate values clamped back into [0, 1]: by the `euler` method, or
    /// truncations of channel noise.
    pub n_clamped: u64,
}

/// Synchrony measures of one trial over its analysis window; `None` where a
/// measure is undefined (see each function's documentation).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Synchrony {
    /// Golomb-Rinzel chi ([`ChiAccumulator`]).
    pub chi: Option<f64>,
    /// Time-averaged Kuramoto order parameter from spike phases ([`kuramoto_r`]).
    pub kuramoto_r: Option<f64>,
    /// Multivariate SPIKE-synchronization ([`spike_sync`]).
    pub spike_sync: Option<f64>,
}

/// One trial's outcome with its identity and cost.
#[derive(Debug, Clone, PartialEq)]
pub struct TrialResult {
    pub trial: Trial,
    pub outcome: TrialOutcome,
    pub wall_ms: f64,
}

/// Simulates one trial. Depends on nothing but its arguments.
pub fn simulate_trial(cfg: &TrialConfig, seed: u64) -> TrialOutcome {
    simulate_trial_observed(cfg, seed, |_, _, _| {})
}

/// [`simulate_trial`], also handing the state after every step to
/// `observe(step, t_ms, state)` (step 0 is the initial state): the hook for
/// traces. The ensemble passes a no-op closure, which compiles away, so a
/// traced trial is computed by the very same code as in the ensemble.
pub fn simulate_trial_observed(cfg: &TrialConfig, seed: u64, observe: impl FnMut(u64, f64, &State)) -> TrialOutcome {
    let mut outcomes = simulate_lanes(cfg, &[seed], observe);
    outcomes.pop().expect("one lane in, one outcome out")
}

/// How many trials of `cfg` one task steps together as [`Lanes`]: enough
/// for 16 stacked entries (two AVX-512 registers per chunk loop; a pair
/// gets 8 lanes, a 100-neuron network 1). One where a step's clamp count
/// could not be told apart per lane (`euler`, channel noise).
pub fn lanes_for(cfg: &TrialConfig) -> usize {
    if counts_clamps(cfg) {
        1
    } else {
        crate::integrate::stepper::CHUNK.div_ceil(cfg.network.n().max(1))
    }
}

/// Whether a step of `cfg` can clamp gates (`euler`, channel noise): the
/// step reports one count for all lanes, so such trials run one lane each.
fn counts_clamps(cfg: &TrialConfig) -> bool {
    cfg.method == Method::Euler || cfg.channel_noise.is_some()
}

/// Simulates the trials of `cfg` with the given seeds together, as lanes of
/// one stacked state: each outcome is the very one [`simulate_trial`] gives
/// for its seed, bit for bit (tested). `observe` sees the stacked state
/// (lane b's neurons at `b n .. (b + 1) n`).
pub fn simulate_lanes(cfg: &TrialConfig, seeds: &[u64], observe: impl FnMut(u64, f64, &State)) -> Vec<TrialOutcome> {
    simulate_lanes_until(cfg, seeds, &|_| false, observe).expect("never asked to stop")
}

/// [`simulate_lanes`], given up (None) once `check(steps done)`, called
/// every [`CHECK_STEPS`] steps, returns true.
pub fn simulate_lanes_until(
    cfg: &TrialConfig,
    seeds: &[u64],
    check: &dyn Fn(u64) -> bool,
    mut observe: impl FnMut(u64, f64, &State),
) -> Option<Vec<TrialOutcome>> {
    let n = cfg.network.n();
    let mut chi = ChiAccumulator::stacked(n, seeds.len());
    // Samples at t = k dt enter chi when transient_ms <= t < duration_ms.
    let first_sample = (cfg.transient_ms / cfg.dt_ms - 1e-9).ceil().max(0.0) as u64;
    // Inlined into the SIMD build of the loop that calls it (as is
    // chi's push), so that the push vectorises at that level.
    let integrated = integrate_lanes_until(
        cfg,
        seeds,
        check,
        #[inline(always)]
        |step, t_ms, state| {
            if step >= first_sample && step < cfg.n_steps {
                chi.push(&state.v_mv);
            }
            observe(step, t_ms, state);
        },
    )?;
    Some(
        integrated
            .into_iter()
            .enumerate()
            .map(|(b, lane)| reduce(cfg, lane, chi.chi_of(b)))
            .collect(),
    )
}

/// One trial's spikes and voltage statistics reduced to its outcome.
fn reduce(cfg: &TrialConfig, lane: Integrated, chi: Option<f64>) -> TrialOutcome {
    let Integrated {
        status,
        spikes_ms,
        n_clamped,
    } = lane;
    if status != Status::Ok {
        return TrialOutcome {
            status,
            spikes_ms: vec![],
            neurons: vec![],
            sync: Synchrony::default(),
            n_clamped,
        };
    }
    let (t0, t1) = (cfg.transient_ms, cfg.duration_ms);
    let neurons = spikes_ms.iter().map(|s| train_stats(s, t0, t1)).collect();
    let trains: Vec<&[f64]> = spikes_ms.iter().map(Vec::as_slice).collect();
    // Synchrony of a single neuron is meaningless: every measure is null.
    let sync = if cfg.network.n() >= 2 {
        Synchrony {
            chi,
            kuramoto_r: kuramoto_r(&trains, t0, t1, cfg.dt_ms),
            spike_sync: spike_sync(&trains, t0, t1),
        }
    } else {
        Synchrony::default()
    };
    TrialOutcome {
        status,
        spikes_ms,
        neurons,
        sync,
        n_clamped,
    }
}

/// Whether no voltage is NaN or absurd (`V_ABSURD_MV`), in one branch-free pass.
#[inline]
fn sane(v_mv: &[f64]) -> bool {
    v_mv.iter().fold(true, |ok, &v| ok & is_sane(v))
}

/// False for NaN and for |V| >= `V_ABSURD_MV`.
#[inline]
fn is_sane(v_mv: f64) -> bool {
    v_mv.abs() < V_ABSURD_MV
}

/// What the bare integration loop returns for one trial.
#[derive(Debug, Clone, PartialEq)]
pub struct Integrated {
    pub status: Status,
    /// Every spike, sorted per neuron (up to divergence).
    pub spikes_ms: Vec<Vec<f64>>,
    /// Gate values clamped into [0, 1] (by `euler`, or channel noise).
    pub n_clamped: u64,
}

/// The integration loop alone, for the trials with the given seeds stepped
/// together as [`Lanes`]: noise, steps, spike detection and the divergence
/// check, handing the stacked state after every step to `observe` until
/// every lane has diverged or the time is up. Each lane draws from its own
/// generator seeded with its own seed, in the order a lone trial would, so
/// its outcome does not depend on its company. The reductions of
/// [`simulate_lanes`] sit on top of it; benches/reductions.rs measures their
/// cost against this bare loop.
pub fn integrate_lanes(cfg: &TrialConfig, seeds: &[u64], observe: impl FnMut(u64, f64, &State)) -> Vec<Integrated> {
    integrate_lanes_until(cfg, seeds, &|_| false, observe).expect("never asked to stop")
}

/// How often (in steps) a trial reports its progress and asks whether to
/// stop (Ctrl-C): often enough that a long trial moves its progress bar
/// and stops at once (1024 steps of a 1000-neuron network take about 0.1
/// s), rarely enough to cost nothing.
pub const CHECK_STEPS: u64 = 1024;

/// [`integrate_lanes`], calling `check(steps done)` every [`CHECK_STEPS`]
/// steps and giving up (None) when it returns true: a long trial shows
/// progress and need not run to its end before a Ctrl-C takes effect.
pub fn integrate_lanes_until(
    cfg: &TrialConfig,
    seeds: &[u64],
    check: &dyn Fn(u64) -> bool,
    observe: impl FnMut(u64, f64, &State),
) -> Option<Vec<Integrated>> {
    // The loop, the kernel inlined, compiled for the widest instruction
    // set this CPU has (the one dispatch point; same bits on every build).
    run_widest(
        #[inline(always)]
        |level| integrate_lanes_on(level, cfg, seeds, check, observe),
    )
}

#[inline(always)]
fn integrate_lanes_on(
    level: Simd,
    cfg: &TrialConfig,
    seeds: &[u64],
    check: &dyn Fn(u64) -> bool,
    mut observe: impl FnMut(u64, f64, &State),
) -> Option<Vec<Integrated>> {
    let lanes_n = seeds.len();
    assert!(
        lanes_n == 1 || !counts_clamps(cfg),
        "euler and channel noise count clamps per step, not per lane: one seed at a time"
    );
    let n = cfg.network.n();
    // With network.resample each trial draws its own graph and drive.
    let resampled: Vec<Network> = if cfg.graph.resample && cfg.graph.is_random() {
        seeds
            .iter()
            .map(|&seed| {
                let r = cfg.graph.realize(graph_seed(seed));
                Network {
                    i_inj: r.i_inj,
                    coupling: r.coupling,
                    gap: r.gap,
                    ..cfg.network.clone()
                }
            })
            .collect()
    } else {
        vec![]
    };
    let nets: Vec<&Network> = if resampled.is_empty() {
        vec![&cfg.network; lanes_n]
    } else {
        resampled.iter().collect()
    };
    let dt = cfg.dt_ms;
    let mut rngs: Vec<Xoshiro256PlusPlus> = seeds.iter().map(|&s| Xoshiro256PlusPlus::seed_from_u64(s)).collect();
    let mut noises: Vec<Noise> = rngs
        .iter_mut()
        .map(|rng| {
            Noise::new(
                cfg.noise_sigma,
                cfg.noise_draws_common.then_some(cfg.noise_shared),
                cfg.noise_tau_ms,
                cfg.network.cell.c_m(),
                dt,
                n,
                rng,
            )
        })
        .collect();
    let mut state = State::stack(nets.iter().map(|net| State::at_rest(net, &cfg.v0_mv)));
    let initial = state.clone();
    let lanes = Lanes::new(nets);
    let total = lanes.len();
    let kernel = Kernel::new(&cfg.network, &cfg.rates, cfg.method, dt, level);
    let mut ws = Workspace::new(&kernel, total, state.vars.len());
    let (mut noise_dv, mut i_start, mut i_mid) = (vec![0.0; total], vec![0.0; total], vec![0.0; total]);
    let mut v_prev = vec![0.0; total];
    let mut detector = SpikeDetector::new(cfg.threshold_mv, cfg.rearm_mv, &cfg.v0_mv.repeat(lanes_n));
    let mut out: Vec<Integrated> = (0..lanes_n)
        .map(|_| Integrated {
            status: Status::Ok,
            spikes_ms: vec![Vec::new(); n],
            n_clamped: 0,
        })
        .collect();
    let mut running = lanes_n;
    observe(0, 0.0, &state);
    for k in 0..cfg.n_steps {
        if k % CHECK_STEPS == 0 && k > 0 && check(k) {
            return None;
        }
        draw_lanes(&mut noises, &mut rngs, n, (&mut noise_dv, &mut i_start, &mut i_mid));
        v_prev.copy_from_slice(&state.v_mv);
        let input = StepInput {
            noise_dv: &noise_dv,
            i_start: &i_start,
            i_mid: &i_mid,
        };
        // Clamps only come with one lane (asserted above): they are its own.
        out[0].n_clamped += u64::from(step(&kernel, &lanes, &mut state, &input, &mut ws));
        if let Some(channels) = &cfg.channel_noise {
            out[0].n_clamped += u64::from(channels.apply(&mut rngs[0], &cfg.rates, &mut state, &v_prev, dt));
        }
        // Times from the step index, not by accumulation, so that spike
        // times carry no drift of summed rounding errors.
        let t_prev = k as f64 * dt;
        // Most steps neither spike, re-arm nor diverge; one branch-free pass
        // over every entry finds those, and the per-lane loop skips them.
        let quiet = detector.is_quiet(&v_prev, &state.v_mv) && sane(&state.v_mv);
        if !quiet {
            for (b, lane) in out.iter_mut().enumerate() {
                if lane.status != Status::Ok {
                    continue;
                }
                let mut diverged = false;
                for i in 0..n {
                    let j = b * n + i;
                    let v = state.v_mv[j];
                    diverged |= !is_sane(v);
                    if let Some(t) = detector.push(j, t_prev, dt, v_prev[j], v) {
                        lane.spikes_ms[i].push(t);
                    }
                }
                if diverged {
                    lane.status = Status::Diverged {
                        at_ms: (k + 1) as f64 * dt,
                    };
                    running -= 1;
                    // Park the lane at its initial state: its numbers are void,
                    // and runaway values must not slow the others down.
                    state.copy_lane(&initial, b * n..(b + 1) * n);
                    for i in 0..n {
                        detector.restart(b * n + i, initial.v_mv[b * n + i]);
                    }
                }
            }
        }
        if running == 0 {
            return Some(out);
        }
        observe(k + 1, (k + 1) as f64 * dt, &state);
    }
    Some(out)
}

/// Samples of one trial's state in long format: one row per (sample, neuron).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Trace {
    pub t_ms: Vec<f64>,
    pub neuron: Vec<u32>,
    pub v_mv: Vec<f64>,
    /// The model's gates by name, in its order, then `s` (the synaptic
    /// activation the neuron's outgoing synapses carry).
    pub vars: Vec<(String, Vec<f64>)>,
}

/// Re-simulates one trial exactly as the ensemble does (same code, same
/// seed), recording the state every `every` steps (step 0 included). A
/// diverged trial's trace stops at the last finite sample before divergence.
pub fn trace_trial(cfg: &TrialConfig, seed: u64, every: u64) -> (TrialOutcome, Trace) {
    let names = cfg
        .network
        .cell
        .model
        .gates
        .iter()
        .map(|g| g.name.clone())
        .chain(["s".to_string()]);
    let mut trace = Trace {
        vars: names.map(|name| (name, vec![])).collect(),
        ..Trace::default()
    };
    let gates = cfg.network.cell.model.gates.len();
    let outcome = simulate_trial_observed(cfg, seed, |step, t_ms, st| {
        if step % every == 0 {
            for i in 0..st.v_mv.len() {
                trace.t_ms.push(t_ms);
                trace.neuron.push(i as u32);
                trace.v_mv.push(st.v_mv[i]);
                for (g, (_, column)) in trace.vars.iter_mut().enumerate() {
                    column.push(if g < gates { st.vars[g][i] } else { st.s()[i] });
                }
            }
        }
    });
    (outcome, trace)
}

/// Runs the given trials of `plan` on `pool` and returns the finished ones
/// in the order of `ids`. Consecutive ids of one grid point run together as
/// lanes ([`lanes_for`]), which changes no result. `on_done` is called from
/// worker threads as each trial finishes, `on_work(neuron_steps)` as
/// work gets done (every [`CHECK_STEPS`] steps of a batch, and its rest at
/// its end): progress bars. Once `stop()` is true (Ctrl-C) no further
/// batch starts, and the running ones give up within [`CHECK_STEPS`]
/// steps: their trials are not returned (a resumed run computes them
/// again), so a long trial never holds up the exit.
pub fn run_ensemble(
    plan: &Plan,
    ids: &[u32],
    pool: &rayon::ThreadPool,
    on_done: &(dyn Fn(&TrialResult) + Sync),
    on_work: &(dyn Fn(u64) + Sync),
    stop: &(dyn Fn() -> bool + Sync),
) -> Vec<TrialResult> {
    let batches = batch_ids(plan, ids);
    // Longest first (by neuron-steps), so that when trials differ in cost (a
    // sweep over n or duration) no long batch starts last and leaves the
    // other threads idle at the end; results go back into `ids` order.
    let cost = |b: &Vec<u32>| {
        let cfg = &plan.points[plan.trial(b[0]).point as usize].config;
        cfg.n_steps as f64 * cfg.network.n() as f64 * b.len() as f64
    };
    let mut order: Vec<usize> = (0..batches.len()).collect();
    order.sort_by(|&a, &b| cost(&batches[b]).total_cmp(&cost(&batches[a])).then(a.cmp(&b)));
    // Each thread takes the next batch in that order as soon as it is free
    // (greedy longest-processing-time scheduling). A rayon parallel
    // iterator would hand one thread the first half and another the second:
    // the cheap batches ran early and two long ones could end up last on
    // one thread (a sweep over n = 2, 5, 20, 100, CLI, 2 threads over 1:
    // 1.83x -> 1.93x).
    let next = AtomicUsize::new(0);
    let done: Mutex<Vec<(usize, Vec<TrialResult>)>> = Mutex::new(Vec::with_capacity(order.len()));
    let run_batch = |k: usize| {
        let batch = &batches[k];
        let trials: Vec<Trial> = batch.iter().map(|&id| plan.trial(id)).collect();
        let seeds: Vec<u64> = trials.iter().map(|t| t.seed).collect();
        let cfg = &plan.points[trials[0].point as usize].config;
        let per_step = (cfg.network.n() * seeds.len()) as u64;
        let reported = Cell::new(0);
        let check = |steps: u64| {
            on_work((steps - reported.get()) * per_step);
            reported.set(steps);
            stop()
        };
        let start = Instant::now();
        let Some(outcomes) = simulate_lanes_until(cfg, &seeds, &check, |_, _, _| {}) else {
            return vec![];
        };
        // The rest, also when every lane diverged early.
        on_work((cfg.n_steps - reported.get()) * per_step);
        // Lanes share their wall time; each trial gets its share.
        let wall_ms = start.elapsed().as_secs_f64() * 1e3 / trials.len() as f64;
        let results: Vec<TrialResult> = trials
            .into_iter()
            .zip(outcomes)
            .map(|(trial, outcome)| TrialResult {
                trial,
                outcome,
                wall_ms,
            })
            .collect();
        results.iter().for_each(on_done);
        results
    };
    pool.scope(|scope| {
        for _ in 0..pool.current_num_threads() {
            scope.spawn(|_| {
                while let Some(&k) = order.get(next.fetch_add(1, Ordering::Relaxed)) {
                    if stop() {
                        break;
                    }
                    let results = run_batch(k);
                    done.lock().unwrap_or_else(|e| e.into_inner()).push((k, results));
                }
            });
        }
    });
    let mut done = done.into_inner().unwrap_or_else(|e| e.into_inner());
    done.sort_by_key(|(k, _)| *k);
    done.into_iter().flat_map(|(_, results)| results).collect()
}

/// Splits `ids` into runs of consecutive entries of one grid point, each at
/// most [`lanes_for`] long, in order.
fn batch_ids(plan: &Plan, ids: &[u32]) -> Vec<Vec<u32>> {
    let mut batches: Vec<Vec<u32>> = Vec::new();
    let mut point = u32::MAX;
    for &id in ids {
        let p = plan.trial(id).point;
        match batches.last_mut() {
            Some(b) if p == point && b.len() < lanes_for(&plan.points[p as usize].config) => b.push(id),
            _ => batches.push(vec![id]),
        }
        point = p;
    }
    batches
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::ExperimentSpec;
    use std::sync::atomic::AtomicU64;

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
        // At most one report per thread: 1024 steps of 8 pairs.
        assert!(work.into_inner() <= 2 * CHECK_STEPS * 16);
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
        // The loop (the kernel inlined) is compiled per instruction set and
        // picked at run time; a results file must not depend on the
        // machine. Each build this CPU runs against the portable one, on
        // batches with a remainder and with diverging lanes, for HH and a
        // model with an instantaneous gate, in both rates modes.
        // (Meaningful in release, where the builds vectorise differently.)
        for extra in [
            "[network]\nn = 3\nstrength = 0.1\n[noise]\nsigma = 2.0\n",
            "[integrator]\nrates = \"exact\"\n[network]\nn = 3\nstrength = 0.1\n[noise]\nsigma = 2.0\ntau_ms = 2.0\n",
            "[network]\nn = 2\nstrength = 0.1\n[noise]\nsigma = 300.0\n",
            "[neuron]\nmodel = \"wang-buzsaki\"\ni_inj = 1.0\n[network]\nn = 2\nstrength = 0.1\n[synapse]\nkind = \"double-exp\"\n[noise]\nsigma = 1.0\n",
            "[neuron]\nmodel = \"traub-miles\"\ni_inj = 1.0\n[integrator]\nrates = \"exact\"\n[network]\nn = 2\n[noise]\nsigma = 1.0\n",
        ] {
            let cfg = config(extra);
            let seeds: Vec<u64> = (1..12).collect();
            let run = |level| integrate_lanes_on(level, &cfg, &seeds, &|_| false, |_, _, _| {});
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
}
