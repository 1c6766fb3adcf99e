//! The state of the trials stepped together, and their wiring.

use crate::model::neuron::Kinetics;
use crate::model::{Coupling, Network};

/// State of every neuron, as a structure of arrays.
#[derive(Debug, Clone, PartialEq)]
pub struct State {
    pub v_mv: Vec<f64>,
    /// `vars[j][i]`: the model's gates in its order, then the synapse's
    /// presynaptic gate (the kinetic synapse's s, or the double-exponential
    /// one's rise variable x), then, for the double-exponential synapse,
    /// its decaying variable s. The last is what the coupling reads.
    pub vars: Vec<Vec<f64>>,
}

impl State {
    /// Neurons at `v0_mv` with every variable at its steady state there
    /// (the initial condition of the reference data). The cell's and the
    /// synapse's kinetics are compiled once for all of them (compiling
    /// parses and rewrites every expression): pass every lane of a batch,
    /// which share both, at once.
    pub fn at_rest(net: &Network, v0_mv: &[f64]) -> State {
        let at_rest = |k: &Kinetics| -> Vec<f64> { v0_mv.iter().map(|&v| k.x_inf(v)).collect() };
        let mut vars: Vec<Vec<f64>> = net.cell.kinetics().iter().map(at_rest).collect();
        match net.rise_decay {
            None => vars.push(at_rest(&net.synapse.gate())),
            // At rest x = s = T(V0).
            Some(rd) => {
                let t = at_rest(&rd.gate(&net.synapse));
                vars.push(t.clone());
                vars.push(t);
            }
        }
        State {
            v_mv: v0_mv.to_vec(),
            vars,
        }
    }

    /// `n` entries of `vars` variables, every value 0 (scratch space).
    pub fn zeros(n: usize, vars: usize) -> State {
        State {
            v_mv: vec![0.0; n],
            vars: vec![vec![0.0; n]; vars],
        }
    }

    /// Entries (neurons times lanes).
    pub fn len(&self) -> usize {
        self.v_mv.len()
    }

    pub fn is_empty(&self) -> bool {
        self.v_mv.is_empty()
    }

    /// The synaptic activation each neuron's outgoing synapses carry.
    pub fn s(&self) -> &[f64] {
        self.vars.last().expect("a synapse variable")
    }

    /// Copies the entries `range` of `from` into this state.
    pub fn copy_lane(&mut self, from: &State, range: std::ops::Range<usize>) {
        self.v_mv[range.clone()].copy_from_slice(&from.v_mv[range.clone()]);
        for (a, b) in self.vars.iter_mut().zip(&from.vars) {
            a[range.clone()].copy_from_slice(&b[range.clone()]);
        }
    }
}

/// The trials stepped together: one network per trial ("lane"), all with
/// the same neuron count, cell and synapse, their neurons stacked in the
/// state vectors (lane b holds entries `b n .. (b + 1) n`). Lanes never
/// interact: each entry sees exactly the arithmetic it would see alone, so
/// stacking changes no bit of any result (tested in run.rs); it only makes
/// the loops long, which is what SIMD needs (a pair alone is 2 entries).
#[derive(Debug, Clone)]
pub struct Lanes<'a> {
    pub(super) nets: Vec<&'a Network>,
    wiring: Wiring,
    /// Every lane's injected currents, stacked like the state.
    pub(super) i_inj: Vec<f64>,
}

impl<'a> Lanes<'a> {
    /// Lanes over `nets`, which must be non-empty and alike in all but
    /// coupling, gap junctions and drive (the trials of one grid point).
    pub fn new(nets: Vec<&'a Network>) -> Lanes<'a> {
        debug_assert!(nets.iter().all(|x| x.n() == nets[0].n()
            && x.cell == nets[0].cell
            && x.synapse == nets[0].synapse
            && x.rise_decay == nets[0].rise_decay));
        let i_inj = nets.iter().flat_map(|net| net.i_inj.iter().copied()).collect();
        let wiring = Wiring::of(&nets);
        Lanes { nets, wiring, i_inj }
    }

    /// One trial alone.
    pub fn one(net: &'a Network) -> Lanes<'a> {
        Lanes::new(vec![net])
    }

    /// Entries in the stacked state: lanes times neurons.
    pub fn len(&self) -> usize {
        self.i_inj.len()
    }

    /// Always false: there is at least one lane.
    pub fn is_empty(&self) -> bool {
        self.i_inj.is_empty()
    }

    /// The network of lane 0 (all lanes share cell and synapse).
    pub fn net(&self) -> &Network {
        self.nets[0]
    }

    /// Synaptic drive and gap currents of every lane from the stacked `v`, `s`.
    #[inline(always)]
    pub(super) fn couple(&self, v_mv: &[f64], s: &[f64], drive: &mut [f64], gap: &mut [f64]) {
        let n = self.nets[0].n();
        match &self.wiring {
            // One match for all lanes instead of one per lane: for pairs the
            // per-lane dispatch cost more than the sums themselves.
            Wiring::Shared => {
                let net = self.nets[0];
                net.coupling.drive_blocks(s, drive, n);
                net.gap_currents(v_mv, gap);
            }
            Wiring::AllToAll { syn, gap: g } => {
                all_to_all_drive(syn, n, s, drive);
                if g.iter().any(|&x| x != 0.0) {
                    all_to_all_gap(g, n, v_mv, gap);
                }
            }
            Wiring::PerLane => {
                for (b, net) in self.nets.iter().enumerate() {
                    let r = b * n..(b + 1) * n;
                    net.coupling.drive(&s[r.clone()], &mut drive[r.clone()]);
                    net.gap_currents(&v_mv[r.clone()], &mut gap[r]);
                }
            }
        }
    }
}

/// How the lanes of a batch are wired.
#[derive(Debug, Clone)]
enum Wiring {
    /// Every lane is the same network.
    Shared,
    /// Every lane all-to-all (or uncoupled), each with its own strengths
    /// (the points of a sweep over coupling): the strength of every entry's
    /// synaptic and gap coupling, so the sums run over all lanes at once.
    AllToAll { syn: Vec<f64>, gap: Vec<f64> },
    /// Anything else: lane by lane.
    PerLane,
}

impl Wiring {
    fn of(nets: &[&Network]) -> Wiring {
        if nets.iter().all(|net| std::ptr::eq(*net, nets[0])) {
            return Wiring::Shared;
        }
        let strength = |c: &Coupling| match c {
            Coupling::Uncoupled => Some(0.0),
            Coupling::AllToAll { strength } => Some(*strength),
            _ => None,
        };
        let per_entry = |of: &dyn Fn(&Network) -> &Coupling| -> Option<Vec<f64>> {
            let mut out = Vec::new();
            for net in nets {
                out.extend(std::iter::repeat_n(strength(of(net))?, net.n()));
            }
            Some(out)
        };
        match (per_entry(&|net| &net.coupling), per_entry(&|net| &net.gap)) {
            (Some(syn), Some(gap)) => Wiring::AllToAll { syn, gap },
            _ => Wiring::PerLane,
        }
    }
}

/// `drive_i = strength_i (sum_j s_j - s_i)` per block of `n`: the sums of
/// [`Coupling::drive`] for all-to-all in the same order (the same bits;
/// an uncoupled lane's strength 0 gives its 0).
#[inline(always)]
fn all_to_all_drive(strength: &[f64], n: usize, s: &[f64], drive: &mut [f64]) {
    let blocks = s
        .chunks_exact(n)
        .zip(drive.chunks_exact_mut(n))
        .zip(strength.chunks_exact(n));
    for ((sb, db), gb) in blocks {
        let total: f64 = sb.iter().sum();
        for ((d, &si), &g) in db.iter_mut().zip(sb).zip(gb) {
            *d = g * (total - si);
        }
    }
}

/// `out_i = strength_i (sum_j x_j - n x_i)` per block of `n`, as
/// [`Coupling::diffusive`] for all-to-all.
#[inline(always)]
fn all_to_all_gap(strength: &[f64], n: usize, x: &[f64], out: &mut [f64]) {
    let blocks = x
        .chunks_exact(n)
        .zip(out.chunks_exact_mut(n))
        .zip(strength.chunks_exact(n));
    for ((xb, ob), gb) in blocks {
        let total: f64 = xb.iter().sum();
        let count = n as f64;
        for ((o, &xi), &g) in ob.iter_mut().zip(xb).zip(gb) {
            *o = g * (total - count * xi);
        }
    }
}
