//! ExperimentSpec -> trials: the grid of parameter points times replicates,
//! trial ids and per-trial seeds.
//!
//! **Trial order.** Points enumerate the product of the `[sweep]` axes in
//! the order written, the last axis varying fastest (like nested for-loops
//! written top to bottom). Trial `id = point * replicates + replicate`, so
//! the replicates of one point are consecutive.
//!
//! **Seeds.** A trial's noise stream is seeded with
//! [`trial_seed`]`(seed, seed_mode, point, replicate)`, a SplitMix64-style
//! hash, never `seed + id`: neighbouring trials get unrelated streams, and a
//! trial's result depends on nothing but the spec and its id (not on thread
//! count or scheduling; README "Seeds").

use crate::spec::{ExperimentSpec, Limits, SeedMode, SpecError, TrialConfig};

/// One parameter point: the swept values (aligned with the spec's axes) and
/// the validated configuration they give.
#[derive(Debug, Clone)]
pub struct Point {
    pub values: Vec<f64>,
    pub config: TrialConfig,
}

/// One trial's identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Trial {
    pub id: u32,
    pub point: u32,
    pub replicate: u32,
    /// Seed of this trial's Xoshiro256++ noise stream.
    pub seed: u64,
}

/// The expanded experiment.
#[derive(Debug, Clone)]
pub struct Plan {
    pub spec: ExperimentSpec,
    pub points: Vec<Point>,
}

impl Plan {
    /// Expands the grid and validates every point.
    pub fn new(spec: ExperimentSpec) -> Result<Plan, SpecError> {
        let points = grid(&spec.axes.iter().map(|a| a.values.as_slice()).collect::<Vec<_>>())
            .into_iter()
            .map(|values| {
                let config = spec.resolve(&values)?;
                Ok(Point { values, config })
            })
            .collect::<Result<Vec<_>, SpecError>>()?;
        Ok(Plan { spec, points })
    }

    /// [`Plan::new`], then the total work checked against `limits` (the
    /// points and trials were checked when the spec was parsed).
    pub fn new_limited(spec: ExperimentSpec, limits: &Limits) -> Result<Plan, SpecError> {
        let plan = Plan::new(spec)?;
        limits.check_work(plan.neuron_steps())?;
        Ok(plan)
    }

    /// Whether the run writes `pairs.parquet` (`measures.pairs`, not
    /// sweepable, so the same at every point).
    pub fn writes_pairs(&self) -> bool {
        self.points.first().is_some_and(|p| p.config.measures.pairs)
    }

    pub fn n_trials(&self) -> u32 {
        // Bounded by ExperimentSpec::parse.
        (self.points.len() as u64 * self.spec.replicates as u64) as u32
    }

    /// The trial with this id (`id < n_trials()`).
    pub fn trial(&self, id: u32) -> Trial {
        let point = id / self.spec.replicates;
        let replicate = id % self.spec.replicates;
        Trial {
            id,
            point,
            replicate,
            seed: trial_seed(self.spec.seed, self.spec.seed_mode, point, replicate),
        }
    }

    /// Total neuron-steps of the experiment (the unit of work of the speed
    /// figures).
    pub fn neuron_steps(&self) -> u128 {
        self.points
            .iter()
            .map(|p| p.config.n_steps as u128 * p.config.network.n() as u128)
            .sum::<u128>()
            * self.spec.replicates as u128
    }
}

/// Cartesian product of the axes, last axis fastest. No axes: one empty point.
pub fn grid(axes: &[&[f64]]) -> Vec<Vec<f64>> {
    let mut points = vec![vec![]];
    for axis in axes {
        points = points
            .into_iter()
            .flat_map(|p| {
                axis.iter().map(move |&x| {
                    let mut q = p.clone();
                    q.push(x);
                    q
                })
            })
            .collect();
    }
    points
}

pub use crate::graph::mix64;

const GOLDEN: u64 = 0x9e37_79b9_7f4a_7c15;

/// Seed of a trial's noise stream. Each input is hashed into the running
/// value in turn, so (seed, point, replicate) triples that differ anywhere
/// give unrelated seeds. With [`SeedMode::Common`] the point is left out:
/// replicate r has the same stream at every point.
pub fn trial_seed(seed: u64, mode: SeedMode, point: u32, replicate: u32) -> u64 {
    let point_key = match mode {
        SeedMode::Independent => point as u64 + 1,
        SeedMode::Common => 0,
    };
    let mut h = mix64(seed.wrapping_add(GOLDEN));
    h = mix64(h ^ mix64(point_key.wrapping_add(GOLDEN.wrapping_mul(2))));
    mix64(h ^ mix64((replicate as u64).wrapping_add(GOLDEN.wrapping_mul(3))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn grid_is_the_product_in_written_order_last_axis_fastest() {
        let g = grid(&[&[1.0, 2.0], &[10.0, 20.0, 30.0]]);
        assert_eq!(g.len(), 6);
        assert_eq!(g[0], vec![1.0, 10.0]);
        assert_eq!(g[1], vec![1.0, 20.0]);
        assert_eq!(g[3], vec![2.0, 10.0]);
        assert_eq!(grid(&[]), vec![Vec::<f64>::new()]);
    }

    #[test]
    fn trial_ids_cover_points_times_replicates_uniquely() {
        let spec = ExperimentSpec::parse(
            "name = \"t\"\nreplicates = 3\n[time]\nduration_ms = 1.0\n[sweep]\n\"noise.sigma\" = [0, 1]\n\"network.strength\" = [0, 0.1, 0.2]\n",
        )
        .unwrap();
        let plan = Plan::new(spec).unwrap();
        assert_eq!(plan.n_trials(), 18);
        let pairs: HashSet<(u32, u32)> = (0..18)
            .map(|id| plan.trial(id))
            .map(|t| (t.point, t.replicate))
            .collect();
        assert_eq!(pairs.len(), 18);
        assert_eq!(
            plan.trial(7),
            Trial {
                id: 7,
                point: 2,
                replicate: 1,
                seed: plan.trial(7).seed
            }
        );
        assert_eq!(plan.points[2].values, vec![0.0, 0.2]);
        assert_eq!(plan.neuron_steps(), 18 * 100);
    }

    #[test]
    fn seeds_are_unique_over_a_large_grid_and_not_sequential() {
        let mut seen = HashSet::new();
        for point in 0..1000 {
            for rep in 0..100 {
                assert!(seen.insert(trial_seed(1, SeedMode::Independent, point, rep)));
            }
        }
        // Neighbouring trials' seeds differ in about half their bits (a good
        // mixer gives 32 +- 4); `seed + id` would differ in one or two.
        let a = trial_seed(1, SeedMode::Independent, 5, 0);
        let b = trial_seed(1, SeedMode::Independent, 5, 1);
        let bits = (a ^ b).count_ones();
        assert!((16..=48).contains(&bits), "{bits}");
        assert_ne!(
            trial_seed(1, SeedMode::Independent, 0, 0),
            trial_seed(2, SeedMode::Independent, 0, 0)
        );
    }

    #[test]
    fn common_mode_shares_a_stream_across_points_not_replicates() {
        let s = |p, r| trial_seed(9, SeedMode::Common, p, r);
        assert_eq!(s(0, 3), s(17, 3));
        assert_ne!(s(0, 3), s(0, 4));
    }
}
