//! Random network structure: Erdos-Renyi and Watts-Strogatz graphs, and
//! heterogeneous parameters, drawn from a seeded RNG (the `model` layer
//! stays free of randomness).
//!
//! **Seeds.** By default the graph and the heterogeneous values are drawn
//! once per experiment from `graph_seed(seed)`: every replicate and every
//! parameter point share one graph (unless a swept key changes it, e.g.
//! `network.p` or `network.n`). With `network.resample = true` each trial
//! draws its own from `graph_seed(trial seed)`. Draw order: the network's
//! edges, then the gap junctions' edges (if they have their own random
//! topology), then `neuron.i_inj` per neuron.

use crate::model::{Coupling, Topology};
use rand::{RngExt, SeedableRng};
use rand_distr::{Distribution, Normal};
use rand_xoshiro::Xoshiro256PlusPlus;

/// The SplitMix64 finaliser (Steele, Lea & Flood 2014, "Fast splittable
/// pseudorandom number generators", OOPSLA; constants of Stafford's Mix13):
/// a bijection of u64 with full avalanche.
pub fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Seed of the graph stream belonging to `seed` (an experiment's or a
/// trial's): a separate stream from any noise stream.
pub fn graph_seed(seed: u64) -> u64 {
    mix64(seed ^ 0x6772_6170_685f_7365) // "graph_se"
}

/// A connection pattern, possibly random.
#[derive(Debug, Clone, PartialEq)]
pub enum TopologySpec {
    Fixed(Topology),
    /// Erdos-Renyi: each unordered pair connected with probability p,
    /// both ways (undirected, no self loops).
    Random {
        p: f64,
    },
    /// Watts-Strogatz: a ring where each neuron links to its k nearest
    /// neighbours (k/2 each side), each edge rewired with probability p
    /// (undirected, no self loops or double edges).
    SmallWorld {
        k: usize,
        p: f64,
    },
}

/// A per-neuron parameter: given values, or drawn per neuron.
#[derive(Debug, Clone, PartialEq)]
pub enum PerNeuron {
    Values(Vec<f64>),
    Uniform { lo: f64, hi: f64 },
    Normal { mean: f64, sd: f64 },
}

/// Everything about a network that may be random.
#[derive(Debug, Clone, PartialEq)]
pub struct GraphSpec {
    pub n: usize,
    pub topology: TopologySpec,
    pub strength: f64,
    /// Divide each row of E by the neuron's in-degree (rows sum to strength).
    pub normalize: bool,
    pub gap_topology: TopologySpec,
    pub gap_g: f64,
    pub i_inj: PerNeuron,
    /// Draw a new graph for every trial.
    pub resample: bool,
}

/// A realised network structure.
#[derive(Debug, Clone, PartialEq)]
pub struct Realized {
    pub coupling: Coupling,
    pub gap: Coupling,
    pub i_inj: Vec<f64>,
}

impl GraphSpec {
    /// True when realising it draws random numbers.
    pub fn is_random(&self) -> bool {
        let random = |t: &TopologySpec| !matches!(t, TopologySpec::Fixed(_));
        random(&self.topology) || random(&self.gap_topology) || !matches!(self.i_inj, PerNeuron::Values(_))
    }

    /// Draws the structure from the graph stream `seed` (see module docs).
    pub fn realize(&self, seed: u64) -> Realized {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        let network = coupling(&self.topology, self.n, self.strength, self.normalize, &mut rng);
        let gap = coupling(&self.gap_topology, self.n, self.gap_g, false, &mut rng);
        let i_inj = match &self.i_inj {
            PerNeuron::Values(v) => v.clone(),
            PerNeuron::Uniform { lo, hi } => (0..self.n).map(|_| lo + (hi - lo) * rng.random::<f64>()).collect(),
            PerNeuron::Normal { mean, sd } => {
                let normal = Normal::new(*mean, *sd).expect("sd validated >= 0");
                (0..self.n).map(|_| normal.sample(&mut rng)).collect()
            }
        };
        Realized {
            coupling: network,
            gap,
            i_inj,
        }
    }
}

fn coupling(t: &TopologySpec, n: usize, strength: f64, normalize: bool, rng: &mut Xoshiro256PlusPlus) -> Coupling {
    let a = match t {
        TopologySpec::Fixed(topology) if !normalize => return Coupling::new(topology, n, strength),
        // Every in-degree is n - 1: keep the O(n) all-to-all sum.
        TopologySpec::Fixed(Topology::AllToAll) if n >= 2 => {
            return Coupling::new(&Topology::AllToAll, n, strength / (n - 1) as f64)
        }
        TopologySpec::Fixed(topology) => crate::model::topology::adjacency(topology, n),
        TopologySpec::Random { p } => erdos_renyi(n, *p, rng),
        TopologySpec::SmallWorld { k, p } => watts_strogatz(n, *k, *p, rng),
    };
    Coupling::from_adjacency(a, n, strength, normalize)
}

/// Undirected Erdos-Renyi adjacency (row-major n x n, symmetric, zero
/// diagonal): pairs i < j drawn in row order.
pub fn erdos_renyi(n: usize, p: f64, rng: &mut impl rand::Rng) -> Vec<f64> {
    let mut a = vec![0.0; n * n];
    for i in 0..n {
        for j in i + 1..n {
            if rng.random::<f64>() < p {
                a[i * n + j] = 1.0;
                a[j * n + i] = 1.0;
            }
        }
    }
    a
}

/// Undirected Watts-Strogatz adjacency (Watts & Strogatz 1998, Nature
/// 393:440): ring lattice with k nearest neighbours (k even), then each
/// lattice edge (i, i + d), d = 1..k/2, is rewired with probability p to
/// (i, j), j uniform among neurons not already linked to i.
pub fn watts_strogatz(n: usize, k: usize, p: f64, rng: &mut impl rand::Rng) -> Vec<f64> {
    let mut a = vec![0.0; n * n];
    for i in 0..n {
        for d in 1..=k / 2 {
            let j = (i + d) % n;
            if j != i {
                a[i * n + j] = 1.0;
                a[j * n + i] = 1.0;
            }
        }
    }
    for d in 1..=k / 2 {
        for i in 0..n {
            let j = (i + d) % n;
            if j == i || a[i * n + j] == 0.0 || rng.random::<f64>() >= p {
                continue;
            }
            let free: Vec<usize> = (0..n).filter(|&m| m != i && a[i * n + m] == 0.0).collect();
            if free.is_empty() {
                continue;
            }
            let m = free[rng.random_range(0..free.len())];
            a[i * n + j] = 0.0;
            a[j * n + i] = 0.0;
            a[i * n + m] = 1.0;
            a[m * n + i] = 1.0;
        }
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    fn symmetric(a: &[f64], n: usize) -> bool {
        (0..n).all(|i| a[i * n + i] == 0.0 && (0..n).all(|j| a[i * n + j] == a[j * n + i]))
    }

    #[test]
    fn erdos_renyi_has_density_p_and_is_symmetric() {
        // 200 neurons: 19 900 pairs; with p = 0.1 the edge count has sd
        // sqrt(19900 * 0.09) = 42 around 1990: allow 5 sd (210).
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(1);
        let a = erdos_renyi(200, 0.1, &mut rng);
        assert!(symmetric(&a, 200));
        let edges = a.iter().sum::<f64>() / 2.0;
        assert!((edges - 1990.0).abs() < 210.0, "{edges}");
    }

    #[test]
    fn watts_strogatz_keeps_the_edge_count_and_rewires_a_fraction_p() {
        let (n, k) = (100, 6);
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(2);
        let lattice = watts_strogatz(n, k, 0.0, &mut rng);
        assert!(symmetric(&lattice, n));
        assert!(
            (0..n).all(|i| lattice[i * n..(i + 1) * n].iter().sum::<f64>() == k as f64),
            "p = 0 is the ring lattice"
        );
        let rewired = watts_strogatz(n, k, 0.2, &mut rng);
        assert!(symmetric(&rewired, n));
        assert_eq!(
            rewired.iter().sum::<f64>(),
            (n * k) as f64,
            "rewiring moves edges, never adds or drops"
        );
        // Edges that left the lattice: about p * n k / 2 = 60 (binomial sd
        // 7; rewiring onto an edge of the lattice that is still free can
        // restore a few): allow 35..85.
        let moved = (0..n * n).filter(|&x| lattice[x] == 1.0 && rewired[x] == 0.0).count() / 2;
        assert!((35..85).contains(&moved), "{moved}");
    }

    #[test]
    fn the_same_seed_gives_the_same_graph_and_values() {
        let spec = GraphSpec {
            n: 30,
            topology: TopologySpec::SmallWorld { k: 4, p: 0.3 },
            strength: 0.1,
            normalize: true,
            gap_topology: TopologySpec::Random { p: 0.2 },
            gap_g: 0.05,
            i_inj: PerNeuron::Normal { mean: 10.0, sd: 1.0 },
            resample: false,
        };
        let a = spec.realize(graph_seed(7));
        assert_eq!(a, spec.realize(graph_seed(7)));
        assert_ne!(a, spec.realize(graph_seed(8)));
        assert!(spec.is_random());
    }

    #[test]
    fn normalised_rows_sum_to_the_strength() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(3);
        let c = coupling(&TopologySpec::Random { p: 0.3 }, 50, 0.2, true, &mut rng);
        let ones = vec![1.0; 50];
        let mut drive = vec![0.0; 50];
        c.drive(&ones, &mut drive);
        for d in drive {
            // Each row sums to 0.2, or 0 for a neuron without inputs.
            assert!((d - 0.2).abs() < 1e-12 || d == 0.0, "{d}");
        }
    }

    #[test]
    fn heterogeneous_drive_has_the_requested_distribution() {
        // 10 000 neurons uniform on [5, 15]: mean 10, sd 10/sqrt(12) = 2.89.
        let spec = GraphSpec {
            n: 10_000,
            topology: TopologySpec::Fixed(Topology::None),
            strength: 0.0,
            normalize: false,
            gap_topology: TopologySpec::Fixed(Topology::None),
            gap_g: 0.0,
            i_inj: PerNeuron::Uniform { lo: 5.0, hi: 15.0 },
            resample: false,
        };
        let v = spec.realize(1).i_inj;
        let mean = v.iter().sum::<f64>() / 1e4;
        let sd = (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / 1e4).sqrt();
        assert!(v.iter().all(|x| (5.0..15.0).contains(x)));
        // Standard errors: 0.029 for the mean, 0.013 for the sd.
        assert!((mean - 10.0).abs() < 0.12 && (sd - 2.887).abs() < 0.06, "{mean} {sd}");
    }

    #[test]
    fn normalised_all_to_all_stays_an_o_n_sum() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(4);
        let c = coupling(&TopologySpec::Fixed(Topology::AllToAll), 5, 0.2, true, &mut rng);
        assert_eq!(c, Coupling::AllToAll { strength: 0.05 });
    }
}
