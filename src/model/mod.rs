//! The model: membrane, synapse and topology. Pure math: no I/O, no RNG.

pub mod hh;
pub mod synapse;
pub mod topology;

pub use hh::HhParams;
pub use synapse::KineticSynapse;
pub use topology::{Coupling, Topology};

/// Everything deterministic about one network: who the neurons are and how
/// they are wired. Noise lives in `integrate`, which is handed an RNG.
#[derive(Debug, Clone, PartialEq)]
pub struct Network {
    /// Membrane parameters, shared by all neurons.
    pub hh: HhParams,
    /// Injected current per neuron (uA/cm^2).
    pub i_inj: Vec<f64>,
    /// The chemical synapse.
    pub synapse: KineticSynapse,
    /// `E = strength * A`.
    pub coupling: Coupling,
}

impl Network {
    /// Number of neurons.
    pub fn n(&self) -> usize {
        self.i_inj.len()
    }
}
