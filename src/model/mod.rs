//! The model: neurons (model files and their rate expressions), synapses
//! and topology. Pure math: no I/O, no RNG.

pub mod expr;
pub mod neuron;
pub mod synapse;
pub mod topology;
pub mod vmath;

pub use neuron::{Cell, ModelDef};
pub use synapse::{KineticSynapse, RiseDecay};
pub use topology::{Coupling, Topology};

/// Everything deterministic about one network: who the neurons are and how
/// they are wired. Noise lives in `integrate`, which is handed an RNG.
#[derive(Debug, Clone, PartialEq)]
pub struct Network {
    /// The neuron model with its parameter values, shared by all neurons.
    pub cell: Cell,
    /// Injected current per neuron (uA/cm^2).
    pub i_inj: Vec<f64>,
    /// The chemical synapse.
    pub synapse: KineticSynapse,
    /// `E = strength * A`.
    pub coupling: Coupling,
    /// Gap junctions: `G = g * A_gap`, current `sum_j G_ij (V_j - V_i)`.
    pub gap: Coupling,
    /// `Some` for a double-exponential synapse (its sigmoid, reversal and
    /// `w = 1` are in `synapse`), `None` for the kinetic one.
    pub rise_decay: Option<RiseDecay>,
}

impl Network {
    /// Number of neurons.
    pub fn n(&self) -> usize {
        self.i_inj.len()
    }

    /// Gap-junction current into every neuron at voltages `v_mv` (uA/cm^2).
    /// Without gap junctions `out` is left as it is: the stepper's buffer
    /// starts at zero, and the common case then costs nothing per step.
    #[inline]
    /// `v_mv` may hold several copies of the network one after the other
    /// (trials stepped together, `integrate::Lanes`): each block of n is
    /// treated on its own.
    pub fn gap_currents(&self, v_mv: &[f64], out: &mut [f64]) {
        if !matches!(self.gap, Coupling::Uncoupled) {
            self.gap.diffusive_blocks(v_mv, out, self.n());
        }
    }
}
