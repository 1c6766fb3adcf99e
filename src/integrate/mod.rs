//! Time stepping of the stochastic network: the steppers and the noise draw.
//!
//! Equations, for every neuron i of a conductance-based model (model files,
//! see `crate::model::neuron`):
//!
//! ```text
//! C dV_i = (I_i - sum_c g_c prod_x x_i^p (V_i - E_c) + Isyn_i + Igap_i + Iou_i) dt + sigma dW_i
//! dx_i/dt = (x_inf(V_i) - x_i) / tau_x(V_i)        every gate x, and the synapse's
//! ```
//!
//! The voltage takes Euler-Maruyama increments (Kloeden & Platen 1992, §10.2;
//! for additive noise EM has strong order 1); the gates and the synaptic
//! variables take exponential (Rush & Larsen 1978, IEEE Trans. Biomed. Eng.
//! 25:389) updates, which solve the linear gate equation exactly for frozen
//! V and so keep every gate a convex combination of its old value and
//! `x_inf` in [0, 1], for any dt and any V.
//!
//! Layout: [`state`] (the stacked lanes), [`rates`] (rates exact or
//! tabulated), [`stepper`] (the stages), [`noise`]; the instruction-set
//! dispatch is [`crate::simd`]. This module draws its noise from an RNG it
//! is handed; it never seeds one.

pub mod noise;
pub mod rates;
pub mod state;
pub mod stepper;

pub use noise::{draw_lanes, ChannelNoise, LaneNoises, Noise};
pub use rates::{Rates, RatesMode, Values};
pub use state::{Lanes, State};
pub use stepper::{spans, Kernel};

/// Integration method. See [`step`] for the equations and the measured errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Exponential midpoint (the default): second order for the drift.
    ExpMidpoint,
    /// Plain exponential Euler (Rush-Larsen): first order, for comparison.
    ExpEuler,
    /// Textbook Euler-Maruyama for every variable, for comparison: gates
    /// that leave [0, 1] are clamped back and counted (`n_clamped`).
    Euler,
}

impl Method {
    /// Every method with its spec name, the default first.
    pub const ALL: [(&'static str, Method); 3] = [
        ("exp-midpoint", Method::ExpMidpoint),
        ("exp-euler", Method::ExpEuler),
        ("euler", Method::Euler),
    ];

    /// The name used in specs.
    pub fn name(self) -> &'static str {
        Method::ALL
            .iter()
            .find(|(_, m)| *m == self)
            .map(|(n, _)| *n)
            .unwrap_or("?")
    }

    /// Looks a method up by its spec name.
    pub fn from_name(name: &str) -> Option<Method> {
        Method::ALL.iter().find(|(n, _)| *n == name).map(|(_, m)| *m)
    }
}

/// What drives one step besides the state: the white noise's voltage
/// increments over the step, and extra currents (coloured noise) at the
/// step's start and midpoint (uA/cm^2). Each slice has one entry per neuron.
#[derive(Debug, Clone, Copy)]
pub struct StepInput<'a> {
    pub noise_dv: &'a [f64],
    pub i_start: &'a [f64],
    pub i_mid: &'a [f64],
}

/// Scratch space for the steps of one batch, allocated once so that the
/// step loop never allocates.
#[derive(Debug, Clone)]
pub struct Workspace {
    drive: Vec<f64>,
    gap: Vec<f64>,
    /// The midpoint state of exp-midpoint.
    mid: State,
    /// The step's result, swapped with the state after each step.
    next: State,
    /// Registers and rates of one chunk (see [`stepper`]).
    scratch: Vec<f64>,
}

impl Workspace {
    /// For `entries` stacked entries of `kernel`'s configuration with `vars`
    /// variables per entry (see [`State::vars`]).
    pub fn new(kernel: &Kernel, entries: usize, vars: usize) -> Workspace {
        Workspace {
            drive: vec![0.0; entries],
            gap: vec![0.0; entries],
            mid: State::zeros(entries, vars),
            next: State::zeros(entries, vars),
            scratch: vec![0.0; kernel.rates.scratch_rows() * stepper::CHUNK],
        }
    }
}

/// Advances every lane by one step of `kernel.dt_ms` and returns how many
/// variables had to be clamped into [0, 1] (always 0 but for `euler`).
///
/// **Default: exponential midpoint.** A half step (exponential gates and s,
/// Euler V with half of the noise increment) gives the midpoint state; the
/// full step then relaxes every gate from its old value with the rates at the
/// midpoint voltage and moves V by `dt * f(midpoint) + noise`: a
/// second-order generalisation of Rush-Larsen (Perego & Veneziani 2009,
/// Electron. Trans. Numer. Anal. 35:234; exponential Runge-Kutta methods in
/// general: Hochbruck & Ostermann 2010, Acta Numer. 19:209). It is second
/// order for the deterministic drift and keeps the unconditional gate bound
/// of exponential Euler. The half noise increment in the predictor is the
/// conditional mean of the Brownian path at mid-step given the step's
/// increment (a Brownian bridge); it costs no extra random numbers.
///
/// Measured here (tests/golden.rs, the pair of reference_pair.json, 200 ms,
/// 28 spikes): max spike-time error 0.0125 ms at dt = 0.01 for exp-midpoint
/// (0.049 at 0.02, 0.187 at 0.04: second order), 0.64 ms for exp-euler
/// (first order, large constant: the gates lag V by half a step).
/// Exponential midpoint costs two rate evaluations per step against one; the
/// 50x smaller error at equal dt is worth far more than 2x. Forward Euler
/// gates (`euler`) err 0.04 ms but go unstable once dt (alpha + beta) > 2
/// (at dt = 0.01 ms, V below about -135 mV under strong noise), which is the blow-up of the
/// code this replaces; its clamps are counted so that a user sees it.
#[inline(always)]
pub fn step(kernel: &Kernel, lanes: &Lanes, st: &mut State, input: &StepInput, ws: &mut Workspace) -> u32 {
    stepper::step(kernel, lanes, st, input, ws)
}

#[cfg(test)]
mod tests;
