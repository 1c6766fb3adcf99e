//! The synapses: the kinetic one of the original question and a
//! double-exponential (rise/decay) one.
//!
//! Postsynaptic current into neuron i (uA/cm^2):
//! `Isyn_i = (v_rev - V_i) / w * sum_j E_ij s_j`, and the presynaptic gate
//! `ds_j/dt = alpha (1 - s_j) / (1 + exp(-(V_j - v_half)/k)) - beta s_j`,
//! with alpha = 5/ms, beta = 1/ms, v_half = -3 mV, k = 8 mV by default.
//! This is the first-order transmitter-release scheme of Destexhe, Mainen &
//! Sejnowski (1994), Neural Comput. 6:14-18, with the transmitter
//! concentration a sigmoid of the presynaptic voltage (as in Wang & Buzsaki
//! 1996, J. Neurosci. 16:6402), in the original question's parameters.

use super::expr::Expr;
use super::neuron::Kinetics;

/// Parameters of the kinetic synapse.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KineticSynapse {
    /// Synaptic reversal potential (mV).
    pub v_rev_mv: f64,
    /// Divisor of the synaptic current (dimensionless; the question's `w`).
    pub w: f64,
    /// Maximal opening rate (1/ms).
    pub alpha_per_ms: f64,
    /// Closing rate (1/ms).
    pub beta_per_ms: f64,
    /// Half-activation voltage of the release sigmoid (mV).
    pub v_half_mv: f64,
    /// Slope of the release sigmoid (mV).
    pub k_mv: f64,
}

impl Default for KineticSynapse {
    fn default() -> Self {
        KineticSynapse {
            v_rev_mv: 20.0,
            w: 1.0,
            alpha_per_ms: 5.0,
            beta_per_ms: 1.0,
            v_half_mv: -3.0,
            k_mv: 8.0,
        }
    }
}

impl KineticSynapse {
    /// The presynaptic gate s: `alpha = alpha_per_ms / (1 + exp(-(v -
    /// v_half_mv) / k_mv))`, `beta = beta_per_ms`, as compiled expressions.
    pub fn gate(&self) -> Kinetics {
        Kinetics::AlphaBeta {
            alpha: compiled(&format!("{:?} * {}", self.alpha_per_ms, self.sigmoid())),
            beta: Expr::Num(self.beta_per_ms),
        }
    }

    /// `1 / (1 + exp(-(v - v_half_mv) / k_mv))` as text.
    fn sigmoid(&self) -> String {
        format!("(1 / (1 + exp(-(v - ({:?})) / {:?})))", self.v_half_mv, self.k_mv)
    }

    /// Opening rate of s at presynaptic voltage `v_mv` (1/ms).
    pub fn opening_rate(&self, v_mv: f64) -> f64 {
        match self.gate() {
            Kinetics::AlphaBeta { alpha, .. } => alpha.at(v_mv),
            Kinetics::InfTau { .. } => unreachable!("an alpha/beta gate"),
        }
    }

    /// Steady-state s for a neuron clamped at `v_mv`: `a / (a + beta)`.
    pub fn s_at_rest(&self, v_mv: f64) -> f64 {
        self.gate().x_inf(v_mv)
    }

    /// Current into a neuron at `v_mv` whose summed presynaptic drive is
    /// `drive = sum_j E_ij s_j` (uA/cm^2, inward positive).
    #[inline(always)]
    pub fn current(&self, v_mv: f64, drive: f64) -> f64 {
        (self.v_rev_mv - v_mv) / self.w * drive
    }
}

/// An expression of this module's own making, compiled (no parameters).
fn compiled(text: &str) -> Expr {
    Expr::parse(text)
        .expect("a well-formed synapse expression")
        .compile(&|p| unreachable!("no parameter {p} in a synapse expression"))
}

/// Time constants of the double-exponential (rise/decay) synapse:
///
/// ```text
/// dx_j/dt = (T(V_j) - x_j) / tau_rise        T(V) = 1 / (1 + exp(-(V - v_half)/k))
/// ds_j/dt = (x_j - s_j) / tau_decay
/// Isyn_i = (e_rev - V_i) * sum_j E_ij s_j
/// ```
///
/// A presynaptic spike drives T to 1 for about a millisecond; s then rises
/// with tau_rise and decays with tau_decay, the difference of two
/// exponentials of the classic rise/decay conductance (Dayan & Abbott 2001,
/// eq. 5.35; Roth & van Rossum 2009, in *Computational Modeling Methods
/// for Neuroscientists*, ch. 6), driven smoothly by the presynaptic voltage
/// as in the original question. Excitatory or inhibitory by `e_rev`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RiseDecay {
    pub tau_rise_ms: f64,
    pub tau_decay_ms: f64,
}

impl RiseDecay {
    /// The rise variable x: `x_inf = T(V)` (the sigmoid of `syn`),
    /// `tau = tau_rise_ms`.
    pub fn gate(&self, syn: &KineticSynapse) -> Kinetics {
        Kinetics::InfTau {
            inf: compiled(&syn.sigmoid()),
            tau_ms: Expr::Num(self.tau_rise_ms),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steady_state_matches_the_reference_initial_state() {
        // reference_pair.json gives s0 = a/(a+1) at -65 and -70 mV
        // (0.0021481608772354836, 0.0011512068054304189); same formula, so
        // only rounding may differ.
        let syn = KineticSynapse::default();
        assert!((syn.s_at_rest(-65.0) - 0.0021481608772354836).abs() < 1e-15);
        assert!((syn.s_at_rest(-70.0) - 0.0011512068054304189).abs() < 1e-15);
    }
}
