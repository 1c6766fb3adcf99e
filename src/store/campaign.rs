//! A run of a plan (or of one shard) into its directory, as the command
//! line drives it: open (lock, fresh / resume / force, checks), run the
//! remaining trials in committed parts of about [`PART_SECONDS`] each,
//! finish. Testable without the CLI; it prints nothing.

use super::{finish_run, open_run, owned_ids, write_part, DirLock, Existing, OpenRun, Shard, StoreError, SHARDS_DIR};
use crate::plan::Plan;
use crate::run::{lanes_for, run_ensemble, Status, TrialResult};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Trials per committed part are chosen so that a part takes about this
/// long: a kill loses at most this much work, and parts stay few.
pub const PART_SECONDS: f64 = 2.0;

/// At most this many trials per part, so that the memory a part's results
/// take does not grow with cheap trials.
pub const MAX_PART_TRIALS: f64 = 4096.0;

/// Trials in a part of about `trials`: whole rounds of batches, at most
/// MAX_PART_TRIALS, but at least one round where a round is more.
pub fn part_size(trials: f64, round: usize) -> usize {
    (trials.min(MAX_PART_TRIALS) as usize / round).max(1) * round
}

/// What a campaign computed in this process.
#[derive(Debug, Clone, Default)]
pub struct CampaignStats {
    /// Trials computed and committed.
    pub ran: usize,
    /// Of those, trials that diverged.
    pub diverged: usize,
    pub neuron_steps: f64,
    /// Seconds spent running trials (and committing their parts).
    pub sim_s: f64,
}

/// One run directory being filled: holds its lock from `open` to the end.
pub struct Campaign<'p> {
    plan: &'p Plan,
    lock: DirLock,
    shard: Option<Shard>,
    /// What opening the directory found (done ids, complete, set aside).
    pub opened: OpenRun,
    /// The trial ids of this run (or shard), sorted.
    pub mine: Vec<u32>,
    /// Those not committed yet, in order.
    pub todo: Vec<u32>,
    pub stats: CampaignStats,
}

impl<'p> Campaign<'p> {
    /// The directory a run writes: `base`, or `base/shards/K-of-N`.
    pub fn dir_for(base: &Path, shard: Option<Shard>) -> PathBuf {
        match shard {
            Some(s) => base.join(SHARDS_DIR).join(s.dir_name()),
            None => base.to_path_buf(),
        }
    }

    /// Locks the directory and opens it as `existing` says.
    pub fn open(plan: &'p Plan, base: &Path, shard: Option<Shard>, existing: Existing) -> Result<Self, StoreError> {
        let lock = DirLock::acquire(&Self::dir_for(base, shard))?;
        let opened = open_run(&lock, plan, shard, existing)?;
        let mine = owned_ids(plan.n_trials(), shard);
        let todo = if opened.complete {
            vec![]
        } else {
            mine.iter()
                .copied()
                .filter(|id| opened.done.binary_search(id).is_err())
                .collect()
        };
        Ok(Campaign {
            plan,
            lock,
            shard,
            opened,
            mine,
            todo,
            stats: CampaignStats::default(),
        })
    }

    pub fn dir(&self) -> &Path {
        self.lock.dir()
    }

    /// Neuron-steps of the trials `ids`.
    pub fn work(&self, ids: &[u32]) -> u64 {
        ids.iter()
            .map(|&id| {
                let cfg = &self.plan.points[self.plan.trial(id).point as usize].config;
                cfg.n_steps * cfg.network.n() as u64
            })
            .sum()
    }

    /// Runs the remaining trials on `pool` (`threads` threads), committing
    /// them in parts of whole rounds of batches (four per thread first,
    /// then sized to take about PART_SECONDS). Returns when all are
    /// committed or, after committing the finished ones, when `stop()`.
    pub fn run(
        &mut self,
        pool: &rayon::ThreadPool,
        threads: usize,
        on_done: &(dyn Fn(&TrialResult) + Sync),
        on_work: &(dyn Fn(u64) + Sync),
        stop: &(dyn Fn() -> bool + Sync),
    ) -> Result<(), StoreError> {
        let plan = self.plan;
        let start = Instant::now();
        let round = threads.max(1) * plan.points.first().map_or(1, |p| lanes_for(&p.config));
        let mut chunk = part_size(round as f64 * 4.0, round);
        while !self.todo.is_empty() && !stop() {
            let n = chunk.min(self.todo.len());
            let t = Instant::now();
            let results = run_ensemble(plan, &self.todo[..n], pool, on_done, on_work, stop);
            write_part(&self.lock, plan, &results)?;
            for r in &results {
                let cfg = &plan.points[r.trial.point as usize].config;
                self.stats.neuron_steps += cfg.n_steps as f64 * cfg.network.n() as f64;
                self.stats.diverged += usize::from(r.outcome.status != Status::Ok);
            }
            self.stats.ran += results.len();
            // Trials a stop dropped stay to do (and are done on --resume).
            let mut committed: Vec<u32> = results.iter().map(|r| r.trial.id).collect();
            committed.sort_unstable();
            self.todo.retain(|id| committed.binary_search(id).is_err());
            // Size the next part to take about PART_SECONDS.
            let per_trial_s = t.elapsed().as_secs_f64() / n as f64;
            chunk = part_size((PART_SECONDS / per_trial_s.max(1e-6)) * threads as f64, round);
        }
        self.stats.sim_s += start.elapsed().as_secs_f64();
        Ok(())
    }

    /// Trials committed so far (before and in this process).
    pub fn written(&self) -> usize {
        self.mine.len() - self.todo.len()
    }

    /// Merges the committed parts into the final tables and writes the
    /// manifest (see [`finish_run`]); the lock is released after.
    pub fn finish(self) -> Result<Vec<PathBuf>, StoreError> {
        if !self.todo.is_empty() {
            return Err(StoreError::refused(
                self.dir(),
                format!("{} trials are still to run; --resume continues", self.todo.len()),
            ));
        }
        finish_run(&self.lock, self.plan, self.shard)
    }
}
