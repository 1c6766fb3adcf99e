//! Batches of trials on a rayon pool, longest first.

use super::lanes::{can_share, lanes_for};
use super::{simulate_batch, TrialResult};
use crate::plan::{Plan, Trial};
use crate::spec::TrialConfig;
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

/// Runs the given trials of `plan` on `pool` and returns the finished ones
/// in the order of `ids`. Consecutive ids run together as lanes
/// ([`batch_ids`]), which changes no result. `on_done` is called from
/// worker threads as each trial finishes, `on_work(neuron_steps)` as
/// work gets done (every [`super::CHECK_STEPS`] steps of a batch, and its rest at
/// its end): progress bars. Once `stop()` is true (Ctrl-C) no further
/// batch starts, and the running ones give up within [`super::CHECK_STEPS`]
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
        let cfg = config(plan, b[0]);
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
        let trials: Vec<Trial> = batches[k].iter().map(|&id| plan.trial(id)).collect();
        let batch: Vec<(&TrialConfig, u64)> = trials.iter().map(|t| (config(plan, t.id), t.seed)).collect();
        let cfg = batch[0].0;
        let per_step = (cfg.network.n() * batch.len()) as u64;
        let reported = Cell::new(0);
        let check = |steps: u64| {
            on_work((steps - reported.get()) * per_step);
            reported.set(steps);
            stop()
        };
        let start = Instant::now();
        let Some(outcomes) = simulate_batch(&batch, &check, |_, _, _| {}) else {
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

fn config(plan: &Plan, id: u32) -> &TrialConfig {
    &plan.points[plan.trial(id).point as usize].config
}

/// Splits `ids` into runs of consecutive trials, each at most [`lanes_for`]
/// long, in order: the replicates of a point and, where a point's
/// replicates fill less than half a batch, neighbouring points that
/// [`can_share`] a kernel (a sweep over noise, coupling or drive). Mixed
/// points pay for per-lane wiring; `make ab` on the seed pair's sweep:
/// 2 replicates per point 2.1x faster mixed, 8 replicates 1.16x faster
/// alone.
fn batch_ids(plan: &Plan, ids: &[u32]) -> Vec<Vec<u32>> {
    let mut batches: Vec<Vec<u32>> = Vec::new();
    for &id in ids {
        let cfg = config(plan, id);
        let lanes = lanes_for(cfg);
        let mix = 2 * (plan.spec.replicates as usize) < lanes;
        match batches.last_mut() {
            Some(b)
                if b.len() < lanes
                    && (std::ptr::eq(config(plan, b[0]), cfg) || mix && can_share(config(plan, b[0]), cfg)) =>
            {
                b.push(id)
            }
            _ => batches.push(vec![id]),
        }
    }
    batches
}
