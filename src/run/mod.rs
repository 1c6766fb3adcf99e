//! Running trials: [`simulate_trial`] for one, [`run_ensemble`] for many on
//! rayon. Nothing here prints; progress goes through a callback.
//!
//! Layout: this file (what a trial reduces to, traces), [`lanes`] (the
//! integration loop over a batch of trials stepped together), `ensemble`
//! (batches on the thread pool).

mod ensemble;
pub mod lanes;

pub use ensemble::run_ensemble;
pub use lanes::{integrate_lanes, lanes_for, Integrated, CHECK_STEPS};

use crate::integrate::State;
use crate::observe::measures::{compute_all, pair_values, PairValues, TrialView, MEASURES};
use crate::observe::sync::ChiAccumulator;
use crate::observe::{in_window, train_stats, TrainStats};
use crate::plan::Trial;
use crate::spec::TrialConfig;

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
    /// The registry's measures over the analysis window, in
    /// [`MEASURES`] order (all `None` when diverged).
    pub measures: Vec<Option<f64>>,
    /// Per-pair measures, pairs i < j in order, with `measures.pairs`
    /// (else, and when diverged, empty).
    pub pairs: Vec<PairValues>,
    /// Gate values clamped back into [0, 1]: by the `euler` method, or
    /// truncations of channel noise.
    pub n_clamped: u64,
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

/// Simulates the trials of `cfg` with the given seeds together, as lanes of
/// one stacked state: each outcome is the very one [`simulate_trial`] gives
/// for its seed, bit for bit (tested). `observe` sees the stacked state
/// (lane b's neurons at `b n .. (b + 1) n`).
pub fn simulate_lanes(cfg: &TrialConfig, seeds: &[u64], observe: impl FnMut(u64, f64, &State)) -> Vec<TrialOutcome> {
    let batch: Vec<(&TrialConfig, u64)> = seeds.iter().map(|&s| (cfg, s)).collect();
    simulate_batch(&batch, &|_| false, observe).expect("never asked to stop")
}

/// Simulates a batch of trials (configurations [`lanes::can_share`]
/// allows together, with their seeds) as lanes of one stacked state, each
/// outcome the one [`simulate_trial`] gives alone; `None` once
/// `check(steps done)`, called every [`CHECK_STEPS`] steps, returns true.
pub fn simulate_batch(
    batch: &[(&TrialConfig, u64)],
    check: &dyn Fn(u64) -> bool,
    mut observe: impl FnMut(u64, f64, &State),
) -> Option<Vec<TrialOutcome>> {
    let cfg = batch[0].0;
    let n = cfg.network.n();
    let mut chi = ChiAccumulator::stacked(n, batch.len());
    // Samples at t = k dt enter chi when transient_ms <= t < duration_ms.
    let first_sample = (cfg.transient_ms / cfg.dt_ms - 1e-9).ceil().max(0.0) as u64;
    // Inlined into the SIMD build of the loop that calls it (as is
    // chi's push), so that the push vectorises at that level.
    let integrated = lanes::integrate_batch_until(
        batch,
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
            .zip(batch)
            .enumerate()
            .map(|(b, (lane, (cfg, _)))| reduce(cfg, lane, chi.chi_of(b)))
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
            measures: vec![None; MEASURES.len()],
            pairs: vec![],
            n_clamped,
        };
    }
    let (t0, t1) = (cfg.transient_ms, cfg.duration_ms);
    let bin_ms = cfg.measures.bin_ms;
    let neurons: Vec<TrainStats> = spikes_ms.iter().map(|s| train_stats(s, t0, t1, bin_ms)).collect();
    let trains: Vec<&[f64]> = spikes_ms.iter().map(Vec::as_slice).collect();
    let windows: Vec<&[f64]> = trains.iter().map(|s| in_window(s, t0, t1)).collect();
    let view = TrialView {
        trains: &trains,
        windows: &windows,
        neurons: &neurons,
        t0_ms: t0,
        t1_ms: t1,
        dt_ms: cfg.dt_ms,
        params: &cfg.measures,
        chi,
        prepared: Default::default(),
    };
    let measures = compute_all(&view);
    let pairs = if cfg.measures.pairs { pair_values(&view) } else { vec![] };
    TrialOutcome {
        status,
        spikes_ms,
        neurons,
        measures,
        pairs,
        n_clamped,
    }
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

#[cfg(test)]
mod tests;
