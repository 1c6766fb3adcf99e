//! The integration loop of a batch of trials stepped together as
//! [`Lanes`]: noise, steps, spike detection and the divergence check.

use super::{Status, V_ABSURD_MV};
use crate::graph::graph_seed;
use crate::integrate::{draw_lanes, step, Kernel, LaneNoises, Lanes, Method, Noise, State, StepInput, Workspace};
use crate::model::Network;
use crate::observe::SpikeDetector;
use crate::simd::{run_widest, Simd};
use crate::spec::TrialConfig;
use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;
use std::sync::Arc;

/// How many trials of `cfg` one task steps together as [`Lanes`]: enough
/// for one full chunk of stacked entries (`integrate::stepper::CHUNK`: a
/// pair gets 16 lanes, a 100-neuron network 1). One where a step's clamp count
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

/// Whether trials of `a` and `b` can be stepped together as lanes: the same
/// cell, synapse, integrator, time grid and spike rule, so that one kernel
/// serves both; coupling, drive, noise and initial voltages may differ
/// (each lane has its own). A sweep over noise or coupling strength with
/// few replicates per point then still fills whole chunks.
pub fn can_share(a: &TrialConfig, b: &TrialConfig) -> bool {
    !counts_clamps(a)
        && !counts_clamps(b)
        && Arc::ptr_eq(&a.rates, &b.rates)
        && a.method == b.method
        && a.dt_ms == b.dt_ms
        && a.n_steps == b.n_steps
        && a.transient_ms == b.transient_ms
        && (a.threshold_mv, a.rearm_mv) == (b.threshold_mv, b.rearm_mv)
        && a.network.n() == b.network.n()
        && a.network.cell == b.network.cell
        && a.network.synapse == b.network.synapse
        && a.network.rise_decay == b.network.rise_decay
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
    let batch: Vec<(&TrialConfig, u64)> = seeds.iter().map(|&s| (cfg, s)).collect();
    integrate_batch_until(&batch, &|_| false, observe).expect("never asked to stop")
}

/// How often (in steps) a trial reports its progress and asks whether to
/// stop (Ctrl-C): often enough that a long trial moves its progress bar
/// and stops at once (1024 steps of a 1000-neuron network take about 0.1
/// s), rarely enough to cost nothing.
pub const CHECK_STEPS: u64 = 1024;

/// [`integrate_lanes`] for a batch of trials that [`can_share`] lanes,
/// each with its own configuration and seed, calling `check(steps done)`
/// every [`CHECK_STEPS`] steps and giving up (None) when it returns true: a
/// long trial shows progress and need not run to its end before a Ctrl-C
/// takes effect.
pub fn integrate_batch_until(
    batch: &[(&TrialConfig, u64)],
    check: &dyn Fn(u64) -> bool,
    observe: impl FnMut(u64, f64, &State),
) -> Option<Vec<Integrated>> {
    // The loop compiled for the widest instruction set this CPU has; it
    // calls the step built for the same level (same bits on every build).
    run_widest(
        #[inline(always)]
        |level| integrate_lanes_on(level, batch, check, observe),
    )
}

#[inline(always)]
pub(super) fn integrate_lanes_on(
    level: Simd,
    batch: &[(&TrialConfig, u64)],
    check: &dyn Fn(u64) -> bool,
    mut observe: impl FnMut(u64, f64, &State),
) -> Option<Vec<Integrated>> {
    let lanes_n = batch.len();
    let cfg = batch[0].0;
    assert!(
        lanes_n == 1 || batch.iter().all(|(c, _)| can_share(cfg, c)),
        "a batch's trials must be able to share lanes (euler and channel noise: one at a time)"
    );
    let n = cfg.network.n();
    // With network.resample each trial draws its own graph and drive.
    let resampled: Vec<Option<Network>> = batch
        .iter()
        .map(|(c, seed)| {
            (c.graph.resample && c.graph.is_random()).then(|| {
                let r = c.graph.realize(graph_seed(*seed));
                Network {
                    i_inj: r.i_inj,
                    coupling: r.coupling,
                    gap: r.gap,
                    ..c.network.clone()
                }
            })
        })
        .collect();
    let nets: Vec<&Network> = batch
        .iter()
        .zip(&resampled)
        .map(|((c, _), own)| own.as_ref().unwrap_or(&c.network))
        .collect();
    let dt = cfg.dt_ms;
    let mut rngs: Vec<Xoshiro256PlusPlus> = batch
        .iter()
        .map(|&(_, s)| Xoshiro256PlusPlus::seed_from_u64(s))
        .collect();
    // Each lane's noise is its own trial's (a batch may mix noise levels).
    let mut noises = LaneNoises::new(
        rngs.iter_mut()
            .zip(batch)
            .map(|(rng, (c, _))| {
                Noise::new(
                    c.noise_sigma,
                    c.noise_draws_common.then_some(c.noise_shared),
                    c.noise_tau_ms,
                    c.network.cell.c_m(),
                    dt,
                    n,
                    rng,
                )
            })
            .collect(),
    );
    // The lanes share the cell and the synapse (`can_share`), so one call
    // puts them all at rest.
    let v0: Vec<f64> = batch.iter().flat_map(|(c, _)| c.v0_mv.iter().copied()).collect();
    let mut state = State::at_rest(&cfg.network, &v0);
    let initial = state.clone();
    let lanes = Lanes::new(nets);
    let total = lanes.len();
    let kernel = Kernel::new(&cfg.network, &cfg.rates, cfg.method, dt, level);
    let mut ws = Workspace::new(&kernel, total, state.vars.len());
    let (mut noise_dv, mut i_start, mut i_mid) = (vec![0.0; total], vec![0.0; total], vec![0.0; total]);
    let mut v_prev = vec![0.0; total];
    let mut detector = SpikeDetector::new(cfg.threshold_mv, cfg.rearm_mv, &v0);
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
