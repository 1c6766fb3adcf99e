//! Time stepping of the stochastic network: the steppers and the noise draw.
//!
//! Equations (DESIGN.md §2), for every neuron i:
//!
//! ```text
//! C dV_i = (I_i - I_ion(V_i, m_i, h_i, n_i) + Isyn_i + Igap_i + Iou_i) dt + sigma dW_i
//! dx_i/dt = alpha_x(V_i) (1 - x_i) - beta_x(V_i) x_i        x in {m, h, n}
//! ds_i/dt = alpha_s(V_i) (1 - s_i) - beta_s s_i
//! ```
//!
//! The voltage takes Euler-Maruyama increments (Kloeden & Platen 1992, §10.2;
//! for additive noise EM has strong order 1); the gates and the synaptic
//! variable take exponential (Rush & Larsen 1978, IEEE Trans. Biomed. Eng.
//! 25:389) updates, which solve the linear gate equation exactly for frozen V
//! and so keep every gate a convex combination of its old value and
//! `x_inf` in [0, 1], for any dt and any V.
//!
//! This module draws its noise from an RNG it is handed; it never seeds one.

use crate::model::hh::{gate_rates, ionic_current, rate_exp_args, rates_from_exps};
use crate::model::{KineticSynapse, Network, RiseDecay};
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};

mod fast;
mod libm_exp;
pub mod vexp;

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

/// State of every neuron, as a structure of arrays.
#[derive(Debug, Clone, PartialEq)]
pub struct State {
    pub v_mv: Vec<f64>,
    pub m: Vec<f64>,
    pub h: Vec<f64>,
    pub n: Vec<f64>,
    /// Presynaptic activation of each neuron's synapse.
    pub s: Vec<f64>,
    /// Rise variable of a double-exponential synapse (0 for the kinetic one).
    pub x: Vec<f64>,
}

impl State {
    /// Neurons at `v0_mv` with every gate and s at its steady state there
    /// (the initial condition of reference_pair.json).
    pub fn at_rest(net: &Network, v0_mv: &[f64]) -> State {
        let mut st = State {
            v_mv: v0_mv.to_vec(),
            m: Vec::with_capacity(v0_mv.len()),
            h: Vec::with_capacity(v0_mv.len()),
            n: Vec::with_capacity(v0_mv.len()),
            s: Vec::with_capacity(v0_mv.len()),
            x: Vec::with_capacity(v0_mv.len()),
        };
        for &v in v0_mv {
            let (m, h, n) = crate::model::hh::gates_at_rest(v);
            st.m.push(m);
            st.h.push(h);
            st.n.push(n);
            match net.rise_decay {
                None => {
                    st.s.push(net.synapse.s_at_rest(v));
                    st.x.push(0.0);
                }
                // At rest x = s = T(V0).
                Some(_) => {
                    let t = net.synapse.opening_rate(v);
                    st.s.push(t);
                    st.x.push(t);
                }
            }
        }
        st
    }

    /// `n` neurons with every variable 0 (scratch space).
    fn zeros(n: usize) -> State {
        let z = vec![0.0; n];
        State {
            v_mv: z.clone(),
            m: z.clone(),
            h: z.clone(),
            n: z.clone(),
            s: z.clone(),
            x: z,
        }
    }

    /// The lanes' states one after the other (see [`Lanes`]).
    pub fn stack(lanes: impl IntoIterator<Item = State>) -> State {
        let mut all = State {
            v_mv: vec![],
            m: vec![],
            h: vec![],
            n: vec![],
            s: vec![],
            x: vec![],
        };
        for st in lanes {
            all.v_mv.extend(st.v_mv);
            all.m.extend(st.m);
            all.h.extend(st.h);
            all.n.extend(st.n);
            all.s.extend(st.s);
            all.x.extend(st.x);
        }
        all
    }

    /// Copies the entries `range` of `from` into this state.
    pub fn copy_lane(&mut self, from: &State, range: std::ops::Range<usize>) {
        let r = range;
        self.v_mv[r.clone()].copy_from_slice(&from.v_mv[r.clone()]);
        self.m[r.clone()].copy_from_slice(&from.m[r.clone()]);
        self.h[r.clone()].copy_from_slice(&from.h[r.clone()]);
        self.n[r.clone()].copy_from_slice(&from.n[r.clone()]);
        self.s[r.clone()].copy_from_slice(&from.s[r.clone()]);
        self.x[r.clone()].copy_from_slice(&from.x[r]);
    }
}

/// Scratch space for one step, allocated once per trial so that the step
/// loop never allocates.
#[derive(Debug, Clone)]
pub struct Workspace {
    drive: Vec<f64>,
    gap: Vec<f64>,
    mid: State,
    /// The fast kernel's full step, swapped with the state after each step.
    next: State,
}

impl Workspace {
    pub fn new(n: usize) -> Workspace {
        Workspace {
            drive: vec![0.0; n],
            gap: vec![0.0; n],
            mid: State::zeros(n),
            next: State::zeros(n),
        }
    }
}

/// The trials stepped together: one network per trial ("lane"), all with the
/// same neuron count, membrane and synapse, their neurons stacked in the
/// state vectors (lane b holds entries `b n .. (b + 1) n`). Lanes never
/// interact: each entry sees exactly the arithmetic it would see alone, so
/// stacking changes no bit of any result (tested in run.rs); it only makes
/// the loops long, which is what SIMD needs (a pair alone is 2 entries).
#[derive(Debug, Clone)]
pub struct Lanes<'a> {
    nets: Vec<&'a Network>,
    /// Every lane is the same network (no per-trial graphs).
    shared: bool,
    /// Every lane's injected currents, stacked like the state.
    i_inj: Vec<f64>,
}

impl<'a> Lanes<'a> {
    /// Lanes over `nets`, which must be non-empty and alike in all but
    /// coupling, gap junctions and drive (the trials of one grid point).
    pub fn new(nets: Vec<&'a Network>) -> Lanes<'a> {
        debug_assert!(nets.iter().all(|x| x.n() == nets[0].n()
            && x.hh == nets[0].hh
            && x.synapse == nets[0].synapse
            && x.rise_decay == nets[0].rise_decay));
        let i_inj = nets.iter().flat_map(|net| net.i_inj.iter().copied()).collect();
        let shared = nets.iter().all(|net| std::ptr::eq(*net, nets[0]));
        Lanes { nets, shared, i_inj }
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

    /// Synaptic drive and gap currents of every lane from the stacked `v`, `s`.
    /// Inlined so that it is compiled at the SIMD level of the kernel
    /// that calls it.
    #[inline(always)]
    fn couple(&self, v_mv: &[f64], s: &[f64], drive: &mut [f64], gap: &mut [f64]) {
        let n = self.nets[0].n();
        if self.shared {
            // One match for all lanes instead of one per lane: for pairs the
            // per-lane dispatch cost more than the sums themselves.
            let net = self.nets[0];
            net.coupling.drive_blocks(s, drive, n);
            net.gap_currents(v_mv, gap);
            return;
        }
        for (b, net) in self.nets.iter().enumerate() {
            let r = b * n..(b + 1) * n;
            net.coupling.drive(&s[r.clone()], &mut drive[r.clone()]);
            net.gap_currents(&v_mv[r.clone()], &mut gap[r]);
        }
    }
}

/// How [`step`] integrates: the method, the step, and the opt-in
/// evaluation shortcuts (`integrator.tables`, `integrator.fast`).
#[derive(Debug, Clone, Copy)]
pub struct Scheme<'a> {
    pub method: Method,
    pub dt_ms: f64,
    pub table: Option<&'a GateTable>,
    /// Exp-midpoint with the equations rearranged for SIMD ([`fast`],
    /// [`vexp`]): rounding-level differences from the default.
    pub fast: bool,
}

/// How the stepper evaluates the right-hand side: every formula as written
/// with libm ([`Libm`], the default) or rearranged for SIMD ([`Vector`]).
trait Rhs {
    /// Whether this kernel's AVX-512 build leans on gathers (the table
    /// lookups of the default's in-line exps), so that it runs only where
    /// gathers are fast ([`gathers_fast`]).
    const GATHERS: bool;
    /// Whether the two stages of a step run through one copy of the stage
    /// code rather than a copy each (see [`midpoint`]). The default's
    /// stage, with its exps and expm1s in line, is so large that two
    /// copies overflowed the 32 KB instruction cache: cachegrind, 8 noisy
    /// pairs, 2.05 million L1i misses (6.4 per neuron-step; 1.3 million
    /// in a luckier layout) against 0.17 million with one copy, the floor
    /// of start-up and output; 2000 x 100 ms pairs 1.69e7 -> 1.81e7
    /// neuron-steps/s (interleaved CLI runs, `make ab`). The fast kernel
    /// (0.17 million either way) runs 28 % slower with one copy, hence a
    /// copy per stage there, and for tables.
    const ONE_STAGE_COPY: bool;
    fn exp(x: f64) -> f64;
    /// m, h, n relaxed over `dt` at voltage `v`.
    fn gates(v: f64, m: f64, h: f64, n: f64, dt: f64) -> (f64, f64, f64);
    /// The kinetic synapse's s relaxed over `dt` at presynaptic voltage `v`.
    fn kinetic_s(syn: &KineticSynapse, v: f64, s: f64, dt: f64) -> f64;
    /// dV/dt without white noise (mV/ms), see [`dv_dt`].
    #[allow(clippy::too_many_arguments)]
    fn dv_dt(net: &Network, i_inj: f64, v: f64, m: f64, h: f64, n: f64, drive: f64, extra: f64) -> f64;
    /// One stage of the exponential midpoint on C entries: [`stage`]
    /// ([`Vector`]) or [`stage_split`] ([`Libm`]).
    #[allow(clippy::too_many_arguments)]
    fn stage<const C: usize>(
        net: &Network,
        table: Option<&GateTable>,
        rd: Option<RiseDecay>,
        first: bool,
        dt: f64,
        rates: Rows<C>,
        from: Rows<C>,
        d: Drives<C>,
        v: &mut [f64; C],
        m: &mut [f64; C],
        h: &mut [f64; C],
        n: &mut [f64; C],
        x: &mut [f64; C],
        s: &mut [f64; C],
    );
}

/// Every formula as written, with libm: the default, whose bits the golden
/// tests pin.
struct Libm;

impl Rhs for Libm {
    const GATHERS: bool = true;
    const ONE_STAGE_COPY: bool = true;
    #[inline(always)]
    fn exp(x: f64) -> f64 {
        x.exp()
    }
    #[inline(always)]
    fn gates(v: f64, m: f64, h: f64, n: f64, dt: f64) -> (f64, f64, f64) {
        let r = gate_rates(v);
        (
            relax(m, r.a_m, r.b_m, dt),
            relax(h, r.a_h, r.b_h, dt),
            relax(n, r.a_n, r.b_n, dt),
        )
    }
    #[inline(always)]
    fn kinetic_s(syn: &KineticSynapse, v: f64, s: f64, dt: f64) -> f64 {
        relax(s, syn.opening_rate(v), syn.beta_per_ms, dt)
    }
    #[inline(always)]
    fn dv_dt(net: &Network, i_inj: f64, v: f64, m: f64, h: f64, n: f64, drive: f64, extra: f64) -> f64 {
        dv_dt(net, i_inj, v, m, h, n, drive, extra)
    }
    #[inline(always)]
    fn stage<const C: usize>(
        net: &Network,
        table: Option<&GateTable>,
        rd: Option<RiseDecay>,
        first: bool,
        dt: f64,
        rates: Rows<C>,
        from: Rows<C>,
        d: Drives<C>,
        v: &mut [f64; C],
        m: &mut [f64; C],
        h: &mut [f64; C],
        n: &mut [f64; C],
        x: &mut [f64; C],
        s: &mut [f64; C],
    ) {
        // The passes pay off on any chunk once libm's exp is computed in
        // line (libm_exp): a lone pair's step 339 -> 195 ns (criterion).
        // With every exp a libm call they paid off on full chunks only (on
        // chunks of 4 to 12 entries they cost 8 % more than entry by
        // entry). The table passes pay off on any chunk.
        if let Some(t) = table {
            stage_table::<Libm, C>(net, t, rd, first, dt, rates, from, d, v, m, h, n, x, s);
        } else if C == W || libm_exp::usable() {
            stage_split(net, rd, first, dt, rates, from, d, v, m, h, n, x, s);
        } else {
            stage::<Libm, C>(net, table, rd, first, dt, rates, from, d, v, m, h, n, x, s);
        }
    }
}

/// `integrator.fast`: the same equations rearranged for SIMD ([`fast`]).
struct Vector;

impl Rhs for Vector {
    const GATHERS: bool = false;
    const ONE_STAGE_COPY: bool = false;
    #[inline(always)]
    fn exp(x: f64) -> f64 {
        vexp::exp(x)
    }
    #[inline(always)]
    fn gates(v: f64, m: f64, h: f64, n: f64, dt: f64) -> (f64, f64, f64) {
        fast::gates(v, m, h, n, dt)
    }
    #[inline(always)]
    fn kinetic_s(syn: &KineticSynapse, v: f64, s: f64, dt: f64) -> f64 {
        fast::kinetic_s(syn, v, s, dt)
    }
    #[inline(always)]
    fn dv_dt(net: &Network, i_inj: f64, v: f64, m: f64, h: f64, n: f64, drive: f64, extra: f64) -> f64 {
        fast::dv_dt(&net.hh, &net.synapse, i_inj, v, m, h, n, drive, extra)
    }
    #[inline(always)]
    fn stage<const C: usize>(
        net: &Network,
        table: Option<&GateTable>,
        rd: Option<RiseDecay>,
        first: bool,
        dt: f64,
        rates: Rows<C>,
        from: Rows<C>,
        d: Drives<C>,
        v: &mut [f64; C],
        m: &mut [f64; C],
        h: &mut [f64; C],
        n: &mut [f64; C],
        x: &mut [f64; C],
        s: &mut [f64; C],
    ) {
        match table {
            Some(t) => stage_table::<Vector, C>(net, t, rd, first, dt, rates, from, d, v, m, h, n, x, s),
            None => stage::<Vector, C>(net, table, rd, first, dt, rates, from, d, v, m, h, n, x, s),
        }
    }
}

/// Exact solution over `dt` of `dx/dt = alpha (1 - x) - beta x` with frozen
/// rates: `x_inf + (x - x_inf) exp(-(alpha + beta) dt)`.
///
/// For alpha, beta >= 0 and x in [0, 1] this is a convex combination of x
/// and x_inf, so it stays in [0, 1]; the final clamp only removes the last
/// ulp that rounding can add, so the bound holds exactly for any dt and V.
#[inline]
pub fn relax(x: f64, alpha: f64, beta: f64, dt: f64) -> f64 {
    relax_with::<Libm>(x, alpha, beta, dt)
}

#[inline(always)]
fn relax_with<E: Rhs>(x: f64, alpha: f64, beta: f64, dt: f64) -> f64 {
    let (x_inf, arg) = relax_parts(alpha, beta, dt);
    settle(x, x_inf, E::exp(arg))
}

/// [`relax`] before its exponential: `x_inf` and the argument of the
/// decay factor `exp(-(alpha + beta) dt)`; [`settle`] finishes it.
#[inline(always)]
fn relax_parts(alpha: f64, beta: f64, dt: f64) -> (f64, f64) {
    let k = alpha + beta;
    (alpha / k, -k * dt)
}

/// dV/dt of one neuron without white noise (mV/ms). `extra` is any further
/// current into the neuron (uA/cm^2): gap junctions, coloured noise.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn dv_dt(net: &Network, i_inj: f64, v: f64, m: f64, h: f64, n: f64, drive: f64, extra: f64) -> f64 {
    (i_inj + extra - ionic_current(&net.hh, v, m, h, n) + net.synapse.current(v, drive)) / net.hh.c_m
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

/// Exponential update over `dt` of one neuron's synaptic variables, with the
/// presynaptic voltage `v` and rise variable `x_rate` frozen: returns the
/// new (x, s). Kinetic synapse (`rd` None): `s` relaxes with opening rate
/// alpha_s(v) and closing rate beta. Double-exponential synapse: `x` relaxes
/// to T(v) with time constant tau_rise and `s` to `x_rate` with tau_decay,
/// both exactly (each is `relax` with alpha = target/tau, beta =
/// (1 - target)/tau).
#[inline(always)]
fn synapse_relax<E: Rhs>(
    syn: &KineticSynapse,
    rd: Option<RiseDecay>,
    v: f64,
    x_rate: f64,
    x: f64,
    s: f64,
    dt: f64,
) -> (f64, f64) {
    match rd {
        None => (x, E::kinetic_s(syn, v, s, dt)),
        Some(rd) => {
            let t = syn.opening_rate_with(v, E::exp);
            (
                relax_with::<E>(x, t / rd.tau_rise_ms, (1.0 - t) / rd.tau_rise_ms, dt),
                relax_with::<E>(s, x_rate / rd.tau_decay_ms, (1.0 - x_rate) / rd.tau_decay_ms, dt),
            )
        }
    }
}

/// Forward-Euler counterpart of [`synapse_relax`]; returns clamps made.
#[inline]
fn synapse_euler(net: &Network, v: f64, x: &mut f64, s: &mut f64, dt: f64) -> u32 {
    match net.rise_decay {
        None => u32::from(euler_gate(s, net.synapse.opening_rate(v), net.synapse.beta_per_ms, dt)),
        Some(rd) => {
            let (t, x_old) = (net.synapse.opening_rate(v), *x);
            u32::from(euler_gate(x, t / rd.tau_rise_ms, (1.0 - t) / rd.tau_rise_ms, dt))
                + u32::from(euler_gate(
                    s,
                    x_old / rd.tau_decay_ms,
                    (1.0 - x_old) / rd.tau_decay_ms,
                    dt,
                ))
        }
    }
}

/// Opt-in tabulated gate updates (`integrator.tables = true`), as NEURON's
/// `usetable` (Hines & Carnevale 1997, Neural Comput. 9:1179): for a fixed
/// dt, `x_inf(V)`, `exp(-(alpha + beta) dt/2)` and `exp(-(alpha + beta) dt)`
/// of m, h and n are tabulated on a grid of [`TABLE_BIN_MV`] from
/// [`TABLE_V_MIN_MV`] to [`TABLE_V_MAX_MV`] and linearly interpolated, which
/// removes every transcendental function from the gate updates of
/// exp-midpoint. Outside the grid the exact rates are used, so gates stay in
/// [0, 1] for any V. Results differ from the exact default in the last
/// digits of the gates; on the reference pair the spike times move by at
/// most the figure tested in tests/golden.rs (well below the method's own
/// error), hence opt-in, never the default.
#[derive(Debug, PartialEq)]
pub struct GateTable {
    dt_ms: f64,
    /// Per [`Span`] and grid point k: m, h, n and s x_inf and their decay
    /// factors over the span (s columns only with `synapse`), then those
    /// eight values' differences to point k + 1. One row holds all a
    /// lookup reads (128 bytes, two cache lines), and interpolating is one
    /// multiply-add per value with the same bits as `a + w (b - a)`.
    rows: [Vec<[f64; 16]>; 2],
    /// The last grid point's index: positions must stay below it.
    last_row: f64,
    /// The kinetic synapse's s is tabulated too.
    synapse: bool,
}

/// Grid of [`GateTable`]: 0.05 mV bins over [-150, 100] mV (5001 rows,
/// 360 KB, shared by every trial with the same dt).
pub const TABLE_BIN_MV: f64 = 0.05;
pub const TABLE_V_MIN_MV: f64 = -150.0;
pub const TABLE_V_MAX_MV: f64 = 100.0;
/// 2^52: adding it to an integer-valued f64 below 2^52 puts the integer in
/// the low bits of the sum.
const TWO_52: f64 = 4_503_599_627_370_496.0;

impl GateTable {
    /// The table for `dt_ms` (and, when given, the kinetic synapse's s),
    /// built once per process and parameters and shared.
    pub fn for_dt(dt_ms: f64, synapse: Option<&KineticSynapse>) -> std::sync::Arc<GateTable> {
        use std::collections::HashMap;
        use std::sync::{Arc, Mutex, OnceLock};
        type Key = (u64, Option<[u64; 4]>);
        static CACHE: OnceLock<Mutex<HashMap<Key, Arc<GateTable>>>> = OnceLock::new();
        let key = (
            dt_ms.to_bits(),
            synapse.map(|s| [s.alpha_per_ms, s.beta_per_ms, s.v_half_mv, s.k_mv].map(f64::to_bits)),
        );
        let mut cache = CACHE
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        cache
            .entry(key)
            .or_insert_with(|| Arc::new(GateTable::build(dt_ms, synapse)))
            .clone()
    }

    fn build(dt_ms: f64, synapse: Option<&KineticSynapse>) -> GateTable {
        let points = ((TABLE_V_MAX_MV - TABLE_V_MIN_MV) / TABLE_BIN_MV).round() as usize + 1;
        let values: Vec<[f64; 12]> = (0..points)
            .map(|k| {
                let v = TABLE_V_MIN_MV + k as f64 * TABLE_BIN_MV;
                let r = gate_rates(v);
                let (a_s, b_s) = synapse.map_or((0.0, 1.0), |s| (s.opening_rate(v), s.beta_per_ms));
                let (km, kh, kn, ks) = (r.a_m + r.b_m, r.a_h + r.b_h, r.a_n + r.b_n, a_s + b_s);
                let decay = |k: f64, dt: f64| (-k * dt).exp();
                let half = 0.5 * dt_ms;
                [
                    r.a_m / km,
                    r.a_h / kh,
                    r.a_n / kn,
                    a_s / ks,
                    decay(km, half),
                    decay(kh, half),
                    decay(kn, half),
                    decay(ks, half),
                    decay(km, dt_ms),
                    decay(kh, dt_ms),
                    decay(kn, dt_ms),
                    decay(ks, dt_ms),
                ]
            })
            .collect();
        // Columns 0..4 then 4..8 (half step) or 8..12 (full step).
        let span_rows = |decay: usize| {
            let pick = |k: usize, j: usize| values[k][if j < 4 { j } else { decay + j - 4 }];
            (0..points)
                .map(|k| {
                    std::array::from_fn(|j| match j {
                        0..8 => pick(k, j),
                        _ if k + 1 < points => pick(k + 1, j - 8) - pick(k, j - 8),
                        _ => 0.0,
                    })
                })
                .collect()
        };
        GateTable {
            dt_ms,
            rows: [span_rows(4), span_rows(8)],
            last_row: (points - 1) as f64,
            synapse: synapse.is_some(),
        }
    }

    /// The time step this table was built for.
    pub fn dt_ms(&self) -> f64 {
        self.dt_ms
    }

    /// x_inf of m, h, n, s and their decay factors over `span`, linearly
    /// interpolated at `v_mv`, or `None` off the grid.
    #[inline(always)]
    fn lookup(&self, v_mv: f64, span: Span) -> Option<[f64; 8]> {
        let (inside, k, w) = self.position(v_mv);
        inside.then(|| self.interpolate(span, k, w))
    }

    /// Where `v_mv` falls on the grid: whether inside it, the row below
    /// (0 outside) and the weight of the row above. No branch, so that a
    /// loop of positions vectorises.
    #[inline(always)]
    fn position(&self, v_mv: f64) -> (bool, usize, f64) {
        let u = (v_mv - TABLE_V_MIN_MV) / TABLE_BIN_MV;
        let inside = (u >= 0.0) & (u < self.last_row);
        // floor(u) as an integer by the 2^52 trick (exact for 0 <= k <
        // 2^52): plain arithmetic, so a loop of lookups vectorises, where
        // `as usize` (saturating) does not.
        let k = if inside { u.floor() } else { 0.0 };
        let row = ((k + TWO_52).to_bits() - TWO_52.to_bits()) as usize;
        (inside, row, u - k)
    }

    /// Row `k` of `span` interpolated towards row `k + 1` with weight `w`.
    #[inline(always)]
    fn interpolate(&self, span: Span, k: usize, w: f64) -> [f64; 8] {
        let row = &self.rows[span as usize][k];
        std::array::from_fn(|j| row[j] + w * row[8 + j])
    }
}

/// Gate update from a steady state and decay factor (the last line of
/// [`relax`]; tabulated, or from [`relax_parts`]).
#[inline(always)]
fn settle(x: f64, x_inf: f64, decay: f64) -> f64 {
    (x_inf + (x - x_inf) * decay).clamp(0.0, 1.0)
}

/// The gating variables of one neuron.
struct Gates {
    m: f64,
    h: f64,
    n: f64,
    x: f64,
    s: f64,
}

impl Gates {
    #[inline(always)]
    fn of(st: &State, i: usize) -> Gates {
        Gates {
            m: st.m[i],
            h: st.h[i],
            n: st.n[i],
            x: st.x[i],
            s: st.s[i],
        }
    }

    #[inline(always)]
    fn store(self, st: &mut State, i: usize) {
        (st.m[i], st.h[i], st.n[i], st.x[i], st.s[i]) = (self.m, self.h, self.n, self.x, self.s);
    }
}

/// Entries per chunk of the fast kernel's loops: two AVX-512 registers of 8
/// f64 (four AVX2 ones), so the CPU has independent chains of the long
/// arithmetic of a gate update to overlap.
const W: usize = 16;

/// Which decay factors of a [`GateTable`] a stage uses: over half the
/// table's step or the whole.
#[derive(Clone, Copy)]
enum Span {
    Half = 0,
    Full = 1,
}

/// Every gating variable relaxed over `dt` from `from`, with the rates at
/// voltage `v` (and the synapse's rise variable at `x_rate`): exactly, or
/// from the table when one is given and covers `v`. `span` says whether
/// `dt` is the table's half or full step.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn advance<E: Rhs>(
    net: &Network,
    table: Option<&GateTable>,
    rd: Option<RiseDecay>,
    v: f64,
    x_rate: f64,
    from: &Gates,
    dt: f64,
    span: Span,
) -> Gates {
    if let Some((t, g)) = table.and_then(|t| Some((t, t.lookup(v, span)?))) {
        let (x, s) = if t.synapse {
            (from.x, settle(from.s, g[3], g[7]))
        } else {
            synapse_relax::<E>(&net.synapse, rd, v, x_rate, from.x, from.s, dt)
        };
        return Gates {
            m: settle(from.m, g[0], g[4]),
            h: settle(from.h, g[1], g[5]),
            n: settle(from.n, g[2], g[6]),
            x,
            s,
        };
    }
    let (m, h, n) = E::gates(v, from.m, from.h, from.n, dt);
    let (x, s) = synapse_relax::<E>(&net.synapse, rd, v, x_rate, from.x, from.s, dt);
    Gates { m, h, n, x, s }
}

/// Forward-Euler update of a gate, clamped to [0, 1]; returns whether it
/// had to clamp.
#[inline]
fn euler_gate(x: &mut f64, alpha: f64, beta: f64, dt: f64) -> bool {
    let y = *x + dt * (alpha * (1.0 - *x) - beta * *x);
    *x = y.clamp(0.0, 1.0);
    y != *x
}

/// Runs `$body` with `$t` and `$r` bound to the table and the rise/decay
/// option, written out per case so that inside each copy they are
/// constants: the `None, None` copy (every default run) then has no branch
/// left per entry and vectorises.
macro_rules! specialise {
    ($table:expr, $rd:expr, |$t:ident, $r:ident| $body:block) => {
        match ($table, $rd) {
            (None, None) => {
                let ($t, $r): (Option<&GateTable>, Option<RiseDecay>) = (None, None);
                $body
            }
            (None, Some(rd)) => {
                let ($t, $r): (Option<&GateTable>, Option<RiseDecay>) = (None, Some(rd));
                $body
            }
            (Some(table), rd) => {
                let ($t, $r): (Option<&GateTable>, Option<RiseDecay>) = (Some(table), rd);
                $body
            }
        }
    };
}

/// The exponential-midpoint step (see [`step`]) over every lane, entry by
/// entry with libm: the default below one full chunk of [`W`] entries
/// where libm's exp cannot be computed in line ([`libm_exp::usable`]),
/// but for a lone pair; there it is faster than [`midpoint`]'s passes or
/// its chunked loops with every exp a call (criterion: 1.15 against 1.46
/// us for 8 entries; a lone pair, 290 against 350 ns, until
/// [`midpoint_fixed`] turned it round).
/// Out of line, as is [`midpoint_simd`]: with both inlined, `step`
/// carried the large stack frame of the SIMD chunks on every call, which
/// doubled the cost of a lone pair's step. With a table
/// it is the entry-by-entry reference the tests hold [`stage_table`] to;
/// runs with tables take the passes at any size.
#[inline(never)]
fn midpoint_libm(
    lanes: &Lanes,
    table: Option<&GateTable>,
    dt: f64,
    st: &mut State,
    input: &StepInput,
    ws: &mut Workspace,
) {
    let net = lanes.nets[0];
    let half = 0.5 * dt;
    let mid = &mut ws.mid;
    lanes.couple(&st.v_mv, &st.s, &mut ws.drive, &mut ws.gap);
    for i in 0..lanes.len() {
        let v = st.v_mv[i];
        let extra = ws.gap[i] + input.i_start[i];
        let f = dv_dt(net, lanes.i_inj[i], v, st.m[i], st.h[i], st.n[i], ws.drive[i], extra);
        let from = Gates::of(st, i);
        advance::<Libm>(net, table, net.rise_decay, v, st.x[i], &from, half, Span::Half).store(mid, i);
        mid.v_mv[i] = stage_v(true, v, v, half, f, input.noise_dv[i]);
    }
    lanes.couple(&mid.v_mv, &mid.s, &mut ws.drive, &mut ws.gap);
    for i in 0..lanes.len() {
        let v = mid.v_mv[i];
        let extra = ws.gap[i] + input.i_mid[i];
        let f = dv_dt(net, lanes.i_inj[i], v, mid.m[i], mid.h[i], mid.n[i], ws.drive[i], extra);
        // Every gate relaxes from its old value with the midpoint's rates.
        let from = Gates::of(st, i);
        advance::<Libm>(net, table, net.rise_decay, v, mid.x[i], &from, dt, Span::Full).store(st, i);
        st.v_mv[i] = stage_v(false, v, st.v_mv[i], dt, f, input.noise_dv[i]);
    }
}

/// C entries of a state, read-only.
#[derive(Clone, Copy)]
struct Rows<'a, const C: usize> {
    v: &'a [f64; C],
    m: &'a [f64; C],
    h: &'a [f64; C],
    n: &'a [f64; C],
    x: &'a [f64; C],
    s: &'a [f64; C],
}

/// The other inputs of C entries: drive currents and noise.
#[derive(Clone, Copy)]
struct Drives<'a, const C: usize> {
    i_inj: &'a [f64; C],
    drive: &'a [f64; C],
    gap: &'a [f64; C],
    /// Coloured-noise current at this stage.
    i_ext: &'a [f64; C],
    dv: &'a [f64; C],
}

/// The full chunk of `xs` at `at`, by reference (no copy).
#[inline(always)]
fn full<const C: usize>(xs: &[f64], at: usize) -> &[f64; C] {
    (&xs[at..at + C]).try_into().expect("a full chunk")
}

#[inline(always)]
fn full_mut<const C: usize>(xs: &mut [f64], at: usize) -> &mut [f64; C] {
    (&mut xs[at..at + C]).try_into().expect("a full chunk")
}

impl<'a, const C: usize> Rows<'a, C> {
    #[inline(always)]
    fn of(st: &'a State, at: usize) -> Rows<'a, C> {
        Rows {
            v: full(&st.v_mv, at),
            m: full(&st.m, at),
            h: full(&st.h, at),
            n: full(&st.n, at),
            x: full(&st.x, at),
            s: full(&st.s, at),
        }
    }

    #[inline(always)]
    fn gates(&self, l: usize) -> Gates {
        Gates {
            m: self.m[l],
            h: self.h[l],
            n: self.n[l],
            x: self.x[l],
            s: self.s[l],
        }
    }
}

/// One stage of the exponential-midpoint step (see [`step`]) on C entries:
/// rates and dV/dt at `rates`, gates relaxed over `dt` from `from`. The
/// first stage (`first`) is the half step from the state to the midpoint;
/// the second the full step from the state with the midpoint's rates. The
/// outputs are separate `&mut` arrays, which tells the compiler that
/// nothing it stores is read again, so the loop vectorises.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn stage<E: Rhs, const C: usize>(
    net: &Network,
    table: Option<&GateTable>,
    rd: Option<RiseDecay>,
    first: bool,
    dt: f64,
    rates: Rows<C>,
    from: Rows<C>,
    d: Drives<C>,
    v: &mut [f64; C],
    m: &mut [f64; C],
    h: &mut [f64; C],
    n: &mut [f64; C],
    x: &mut [f64; C],
    s: &mut [f64; C],
) {
    let span = if first { Span::Half } else { Span::Full };
    for l in 0..C {
        let u = rates.v[l];
        let extra = d.gap[l] + d.i_ext[l];
        let f = E::dv_dt(
            net, d.i_inj[l], u, rates.m[l], rates.h[l], rates.n[l], d.drive[l], extra,
        );
        let g = advance::<E>(net, table, rd, u, rates.x[l], &from.gates(l), dt, span);
        (m[l], h[l], n[l], x[l], s[l]) = (g.m, g.h, g.n, g.x, g.s);
        v[l] = stage_v(first, u, from.v[l], dt, f, d.dv[l]);
    }
}

/// V after a stage of the exponential midpoint (see [`step`]), with dV/dt
/// `f` at the stage's rate point `u`: the half step to the midpoint
/// (`first`) moves `u` by `dt f` and half the noise increment `dv`; the full
/// step moves the old `v_from` by `dt f` and all of `dv`. The one formula of
/// every exp-midpoint kernel.
#[inline(always)]
fn stage_v(first: bool, u: f64, v_from: f64, dt: f64, f: f64, dv: f64) -> f64 {
    if first {
        u + dt * f + 0.5 * dv
    } else {
        v_from + (dt * f + dv)
    }
}

/// [`stage`] with libm, bit for bit the default's arithmetic (that of
/// [`midpoint_libm`]), in passes over the C entries: every exponential's
/// argument, then the exponentials, then every rate and decay argument,
/// the exponentials again, then the update. The exps and expm1s are
/// libm's computed in line ([`libm_exp`]: same bits, and the passes
/// vectorise); so does the arithmetic between them (a dozen divisions per
/// neuron). Measured (criterion, one step): 8 pair lanes 1.94 -> 1.00 us,
/// 100 neurons 12.1 -> 6.2 us with the in-line exp against every exp a
/// libm call; 1.00 -> 0.80 us and 6.2 -> 5.1 us with expm1 in line too.
/// The formulas are the shared pieces of [`gate_rates`] and [`relax`], so
/// the two paths cannot drift apart (and a test compares their bits).
#[inline(always)]
#[allow(clippy::too_many_arguments, clippy::needless_range_loop)]
fn stage_split<const C: usize>(
    net: &Network,
    rd: Option<RiseDecay>,
    first: bool,
    dt: f64,
    rates: Rows<C>,
    from: Rows<C>,
    d: Drives<C>,
    v: &mut [f64; C],
    m: &mut [f64; C],
    h: &mut [f64; C],
    n: &mut [f64; C],
    x: &mut [f64; C],
    s: &mut [f64; C],
) {
    let syn = &net.synapse;
    // The exponentials of the six rates and of the synapse's opening rate:
    // arguments first, then each replaced by its exponential. (Scratch
    // arrays are zeroed on every call: fewer of them, less to zero.)
    let mut e = [[0.0; C]; 7];
    for l in 0..C {
        let u = rates.v[l];
        for (j, a) in rate_exp_args(u).into_iter().enumerate() {
            e[j][l] = a;
        }
        e[6][l] = syn.opening_exp_arg(u);
    }
    let in_line = libm_exp::usable();
    if C >= 8 {
        libm_exp::expm1_each(&mut e[0], in_line);
        libm_exp::expm1_each(&mut e[4], in_line);
        for j in [1, 2, 3, 5, 6] {
            libm_exp::exp_each(&mut e[j], in_line);
        }
    } else {
        // Rows shorter than a register (a lone pair's, a lone neuron's):
        // the expm1 rows as one run and the exp rows as another, so that
        // they fill registers together instead of a pass per row. Same
        // bits. Measured (make ab, against a pass per row): a lone 20 s
        // pair 8.77e6 -> 9.27e6 neuron-steps/s (+6 %), channel_noise.toml
        // (lone neurons) 3.44e6 -> 4.36e6 (+27 %), ensembles unchanged.
        // (Before one copy of the stage code, Rhs::ONE_STAGE_COPY, the
        // grown kernel cost the ensembles 2-3 %, and it was reverted.)
        let mut expm1_rows = [e[0], e[4]];
        let mut exp_rows = [e[1], e[2], e[3], e[5], e[6]];
        libm_exp::expm1_rows(&mut expm1_rows, in_line);
        libm_exp::exp_rows(&mut exp_rows, in_line);
        [e[0], e[4]] = expm1_rows;
        [e[1], e[2], e[3], e[5], e[6]] = exp_rows;
    }
    // Steady states and decay arguments of m, h, n, s and (double-exp) x.
    let mut x_inf = [[0.0; C]; 5];
    let mut decay = [[0.0; C]; 5];
    for l in 0..C {
        let r = rates_from_exps(rates.v[l], [e[0][l], e[1][l], e[2][l], e[3][l], e[4][l], e[5][l]]);
        let t = syn.opening_rate_from_exp(e[6][l]);
        let parts = [
            relax_parts(r.a_m, r.b_m, dt),
            relax_parts(r.a_h, r.b_h, dt),
            relax_parts(r.a_n, r.b_n, dt),
            match rd {
                None => relax_parts(t, syn.beta_per_ms, dt),
                Some(rd) => relax_parts(rates.x[l] / rd.tau_decay_ms, (1.0 - rates.x[l]) / rd.tau_decay_ms, dt),
            },
            match rd {
                None => (0.0, 0.0),
                Some(rd) => relax_parts(t / rd.tau_rise_ms, (1.0 - t) / rd.tau_rise_ms, dt),
            },
        ];
        for (j, (xi, a)) in parts.into_iter().enumerate() {
            (x_inf[j][l], decay[j][l]) = (xi, a);
        }
    }
    let gates = if rd.is_some() { 5 } else { 4 };
    if C >= 8 {
        for row in &mut decay[..gates] {
            libm_exp::exp_each(row, in_line);
        }
    } else if rd.is_some() {
        // The same for the decays' short rows.
        libm_exp::exp_rows(&mut decay, in_line);
    } else if let Ok(four) = <&mut [[f64; C]; 4]>::try_from(&mut decay[..4]) {
        libm_exp::exp_rows(four, in_line);
    }
    for l in 0..C {
        let u = rates.v[l];
        let f = dv_dt(
            net,
            d.i_inj[l],
            u,
            rates.m[l],
            rates.h[l],
            rates.n[l],
            d.drive[l],
            d.gap[l] + d.i_ext[l],
        );
        m[l] = settle(from.m[l], x_inf[0][l], decay[0][l]);
        h[l] = settle(from.h[l], x_inf[1][l], decay[1][l]);
        n[l] = settle(from.n[l], x_inf[2][l], decay[2][l]);
        s[l] = settle(from.s[l], x_inf[3][l], decay[3][l]);
        x[l] = if rd.is_some() {
            settle(from.x[l], x_inf[4][l], decay[4][l])
        } else {
            from.x[l]
        };
        v[l] = stage_v(first, u, from.v[l], dt, f, d.dv[l]);
    }
}

/// [`stage`] with the gates from the table (`integrator.tables`), in
/// passes: every entry's grid position, then V, then the gates entry by
/// entry from the row below the position (values and differences to the
/// next grid point). The lookup and [`settle`]
/// are [`GateTable::lookup`]'s and [`advance`]'s, so the bits are too; a
/// chunk with an entry off the grid, or with the double-exponential synapse
/// (whose x the table lacks), takes [`stage`], which handles both per
/// entry.
#[inline(always)]
#[allow(clippy::too_many_arguments, clippy::needless_range_loop)]
fn stage_table<E: Rhs, const C: usize>(
    net: &Network,
    t: &GateTable,
    rd: Option<RiseDecay>,
    first: bool,
    dt: f64,
    rates: Rows<C>,
    from: Rows<C>,
    d: Drives<C>,
    v: &mut [f64; C],
    m: &mut [f64; C],
    h: &mut [f64; C],
    n: &mut [f64; C],
    x: &mut [f64; C],
    s: &mut [f64; C],
) {
    if !t.synapse {
        return stage::<E, C>(net, Some(t), rd, first, dt, rates, from, d, v, m, h, n, x, s);
    }
    let mut k = [0usize; C];
    let mut w = [0.0; C];
    let mut on_grid = true;
    for l in 0..C {
        let inside;
        (inside, k[l], w[l]) = t.position(rates.v[l]);
        on_grid &= inside;
    }
    if !on_grid {
        return stage::<E, C>(net, Some(t), rd, first, dt, rates, from, d, v, m, h, n, x, s);
    }
    for l in 0..C {
        let u = rates.v[l];
        let extra = d.gap[l] + d.i_ext[l];
        let f = E::dv_dt(
            net, d.i_inj[l], u, rates.m[l], rates.h[l], rates.n[l], d.drive[l], extra,
        );
        v[l] = stage_v(first, u, from.v[l], dt, f, d.dv[l]);
    }
    let span = if first { Span::Half } else { Span::Full };
    *x = *from.x;
    #[cfg(target_arch = "x86_64")]
    if C >= 2 && simd() != Simd::Portable {
        // SAFETY: simd() says the CPU has AVX2 and FMA.
        return unsafe { settle_rows_avx2(&t.rows[span as usize], &k, &w, from, [m, h, n, s]) };
    }
    for l in 0..C {
        let g = t.interpolate(span, k[l], w[l]);
        m[l] = settle(from.m[l], g[0], g[4]);
        h[l] = settle(from.h[l], g[1], g[5]);
        n[l] = settle(from.n[l], g[2], g[6]);
        s[l] = settle(from.s[l], g[3], g[7]);
    }
}

/// The gate updates of [`stage_table`] (m, h, n, s of entry l from row
/// `k[l]` interpolated with weight `w[l]`), four entries at a time in AVX2
/// registers: the four rows' interpolations are transposed into one
/// register per gate, then settled together. Left to the compiler, each
/// entry's values were inserted into the gate arrays one by one, and the
/// clamp became a branch per value. The same IEEE operations in the same
/// order as [`GateTable::interpolate`] and [`settle`], so the same bits
/// (tested: `table_passes_give_the_bits_of_the_entrywise_lookups`). A
/// remainder of two entries (a lone pair) goes through the same registers
/// half filled; one of one entry, entry-wise.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn settle_rows_avx2<const C: usize>(
    rows: &[[f64; 16]],
    k: &[usize; C],
    w: &[f64; C],
    from: Rows<C>,
    out: [&mut [f64; C]; 4],
) {
    use std::arch::x86_64::*;
    let [m, h, n, s] = out;
    let (zero, one) = (_mm256_setzero_pd(), _mm256_set1_pd(1.0));
    // clamp(0, 1) as f64::clamp has it: below 0 -> 0, above 1 -> 1, NaN kept.
    let settle4 = |x: __m256d, x_inf: __m256d, decay: __m256d| {
        let y = _mm256_add_pd(x_inf, _mm256_mul_pd(_mm256_sub_pd(x, x_inf), decay));
        let y = _mm256_blendv_pd(y, zero, _mm256_cmp_pd::<_CMP_LT_OQ>(y, zero));
        _mm256_blendv_pd(y, one, _mm256_cmp_pd::<_CMP_GT_OQ>(y, one))
    };
    // Entry l's [m, h, n, s] x_inf and decay factors, interpolated.
    let interpolate = |l: usize| {
        let row = rows[k[l]].as_ptr();
        let wl = _mm256_set1_pd(w[l]);
        let at = |j| _mm256_loadu_pd(row.add(j));
        (
            _mm256_add_pd(at(0), _mm256_mul_pd(wl, at(8))),
            _mm256_add_pd(at(4), _mm256_mul_pd(wl, at(12))),
        )
    };
    for l in (0..C - C % 4).step_by(4) {
        let [(i0, d0), (i1, d1), (i2, d2), (i3, d3)] = std::array::from_fn(|q| interpolate(l + q));
        // 4 x 4 transposes: one register per gate, entries l .. l + 4.
        let transpose = |r0, r1, r2, r3| {
            let (a, b) = (_mm256_unpacklo_pd(r0, r1), _mm256_unpackhi_pd(r0, r1));
            let (c, d) = (_mm256_unpacklo_pd(r2, r3), _mm256_unpackhi_pd(r2, r3));
            [
                _mm256_permute2f128_pd::<0x20>(a, c),
                _mm256_permute2f128_pd::<0x20>(b, d),
                _mm256_permute2f128_pd::<0x31>(a, c),
                _mm256_permute2f128_pd::<0x31>(b, d),
            ]
        };
        let x_inf = transpose(i0, i1, i2, i3);
        let decay = transpose(d0, d1, d2, d3);
        for (j, (to, old)) in [
            (&mut *m, from.m),
            (&mut *h, from.h),
            (&mut *n, from.n),
            (&mut *s, from.s),
        ]
        .into_iter()
        .enumerate()
        {
            let x = _mm256_loadu_pd(old[l..l + 4].as_ptr());
            _mm256_storeu_pd(to[l..l + 4].as_mut_ptr(), settle4(x, x_inf[j], decay[j]));
        }
    }
    let mut l = C - C % 4;
    if C - l >= 2 {
        // [m_l, m_l+1, n_l, n_l+1] and [h_l, h_l+1, s_l, s_l+1].
        let ((i0, d0), (i1, d1)) = (interpolate(l), interpolate(l + 1));
        let pairs = |a: &[f64; C], b: &[f64; C]| _mm256_loadu2_m128d(b[l..l + 2].as_ptr(), a[l..l + 2].as_ptr());
        let (x_mn, x_hs) = (pairs(from.m, from.n), pairs(from.h, from.s));
        let mn = settle4(x_mn, _mm256_unpacklo_pd(i0, i1), _mm256_unpacklo_pd(d0, d1));
        let hs = settle4(x_hs, _mm256_unpackhi_pd(i0, i1), _mm256_unpackhi_pd(d0, d1));
        _mm256_storeu2_m128d(n[l..l + 2].as_mut_ptr(), m[l..l + 2].as_mut_ptr(), mn);
        _mm256_storeu2_m128d(s[l..l + 2].as_mut_ptr(), h[l..l + 2].as_mut_ptr(), hs);
        l += 2;
    }
    if l < C {
        let g: [f64; 8] = std::array::from_fn(|j| rows[k[l]][j] + w[l] * rows[k[l]][8 + j]);
        m[l] = settle(from.m[l], g[0], g[4]);
        h[l] = settle(from.h[l], g[1], g[5]);
        n[l] = settle(from.n[l], g[2], g[6]);
        s[l] = settle(from.s[l], g[3], g[7]);
    }
}

/// One stage (see [`stage`]) over every lane into `out`, in place: [`W`]
/// entries at a time, then 4, 2 and 1. (A lone pair takes
/// [`midpoint_fixed`] instead.)
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn stage_all<E: Rhs>(
    lanes: &Lanes,
    table: Option<&GateTable>,
    first: bool,
    dt: f64,
    rates: &State,
    from: &State,
    inputs: (&[f64], &[f64], &[f64], &[f64]),
    out: &mut State,
) {
    let total = lanes.len();
    let mut at = 0;
    while total - at >= W {
        stage_at::<E, W>(lanes, table, first, dt, rates, from, inputs, out, at);
        at += W;
    }
    while total - at >= 4 {
        stage_at::<E, 4>(lanes, table, first, dt, rates, from, inputs, out, at);
        at += 4;
    }
    if total - at >= 2 {
        stage_at::<E, 2>(lanes, table, first, dt, rates, from, inputs, out, at);
        at += 2;
    }
    if total - at == 1 {
        stage_at::<E, 1>(lanes, table, first, dt, rates, from, inputs, out, at);
    }
}

/// [`stage`] on the C entries from `at`, read and written in place.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn stage_at<E: Rhs, const C: usize>(
    lanes: &Lanes,
    table: Option<&GateTable>,
    first: bool,
    dt: f64,
    rates: &State,
    from: &State,
    (drive, gap, i_ext, dv): (&[f64], &[f64], &[f64], &[f64]),
    out: &mut State,
    at: usize,
) {
    let net = lanes.nets[0];
    let d = Drives {
        i_inj: full(&lanes.i_inj, at),
        drive: full(drive, at),
        gap: full(gap, at),
        i_ext: full(i_ext, at),
        dv: full(dv, at),
    };
    let (r, f) = (Rows::of(rates, at), Rows::of(from, at));
    specialise!(table, net.rise_decay, |t, rd| {
        E::stage::<C>(
            net,
            t,
            rd,
            first,
            dt,
            r,
            f,
            d,
            full_mut(&mut out.v_mv, at),
            full_mut(&mut out.m, at),
            full_mut(&mut out.h, at),
            full_mut(&mut out.n, at),
            full_mut(&mut out.x, at),
            full_mut(&mut out.s, at),
        );
    });
}

/// The exponential-midpoint step (see [`step`]) over every lane, [`W`]
/// entries at a time: the `integrator.fast` kernel. The full step is
/// written to `ws.next`, which then becomes the state.
#[inline(always)]
fn midpoint<E: Rhs>(
    lanes: &Lanes,
    table: Option<&GateTable>,
    dt: f64,
    st: &mut State,
    input: &StepInput,
    ws: &mut Workspace,
) {
    if lanes.len() == 2 {
        return midpoint_fixed::<E, 2>(lanes, table, dt, st, input);
    }
    if E::ONE_STAGE_COPY && table.is_none() {
        // One copy of the stage code for both stages (a loop: two calls
        // would be inlined as two copies), see Rhs::ONE_STAGE_COPY.
        for first in [true, false] {
            midpoint_stage::<E>(first, lanes, table, dt, st, input, ws);
        }
    } else {
        midpoint_stage::<E>(true, lanes, table, dt, st, input, ws);
        midpoint_stage::<E>(false, lanes, table, dt, st, input, ws);
    }
    std::mem::swap(st, &mut ws.next);
}

/// The half step (`first`: coupling and rates at the state, into
/// `ws.mid`) or the full step (at `ws.mid`, into `ws.next`) of
/// [`midpoint`].
#[inline(always)]
fn midpoint_stage<E: Rhs>(
    first: bool,
    lanes: &Lanes,
    table: Option<&GateTable>,
    dt: f64,
    st: &State,
    input: &StepInput,
    ws: &mut Workspace,
) {
    let Workspace { mid, next, drive, gap } = ws;
    let (rates, out, i_ext, h): (&State, &mut State, _, _) = if first {
        (st, mid, input.i_start, 0.5 * dt)
    } else {
        (&*mid, next, input.i_mid, dt)
    };
    lanes.couple(&rates.v_mv, &rates.s, drive, gap);
    let inputs = (&drive[..], &gap[..], i_ext, input.noise_dv);
    stage_all::<E>(lanes, table, first, h, rates, st, inputs, out);
}

/// C entries of a state in local arrays.
#[derive(Clone, Copy)]
struct Fixed<const C: usize> {
    v: [f64; C],
    m: [f64; C],
    h: [f64; C],
    n: [f64; C],
    x: [f64; C],
    s: [f64; C],
}

impl<const C: usize> Fixed<C> {
    #[inline(always)]
    fn rows(&self) -> Rows<'_, C> {
        Rows {
            v: &self.v,
            m: &self.m,
            h: &self.h,
            n: &self.n,
            x: &self.x,
            s: &self.s,
        }
    }
}

/// [`midpoint`] on a state of exactly C entries (a lone pair), held in
/// local arrays: the same stages on the same values, so the same bits,
/// but without the chunk loops, the bounds checks of every chunk and the
/// stores and reloads of the workspace. Measured (AMD EPYC Zen 4, AVX2
/// build): a lone pair's step with tables 61 -> 55 ns (criterion), 744 ->
/// 463 instructions (callgrind); a lone 1000 ms pair trial 9.1 -> 8.6 ms
/// with tables, 21.4 -> 20.8 ms with fast (medians of 15, alternating
/// binaries, three rounds).
#[inline(always)]
fn midpoint_fixed<E: Rhs, const C: usize>(
    lanes: &Lanes,
    table: Option<&GateTable>,
    dt: f64,
    st: &mut State,
    input: &StepInput,
) {
    let net = lanes.nets[0];
    let old = Fixed::<C> {
        v: *full(&st.v_mv, 0),
        m: *full(&st.m, 0),
        h: *full(&st.h, 0),
        n: *full(&st.n, 0),
        x: *full(&st.x, 0),
        s: *full(&st.s, 0),
    };
    let i_inj: &[f64; C] = full(&lanes.i_inj, 0);
    let (i_start, i_mid, dv) = (full(input.i_start, 0), full(input.i_mid, 0), full(input.noise_dv, 0));
    let (mut drive, mut gap) = ([0.0; C], [0.0; C]);
    // Every field of both is overwritten by its stage.
    let (mut mid, mut new) = (old, old);
    specialise!(table, net.rise_decay, |t, rd| {
        lanes.couple(&old.v, &old.s, &mut drive, &mut gap);
        let d = Drives {
            i_inj,
            drive: &drive,
            gap: &gap,
            i_ext: i_start,
            dv,
        };
        let Fixed { v, m, h, n, x, s } = &mut mid;
        E::stage::<C>(net, t, rd, true, 0.5 * dt, old.rows(), old.rows(), d, v, m, h, n, x, s);
        lanes.couple(&mid.v, &mid.s, &mut drive, &mut gap);
        let d = Drives {
            i_inj,
            drive: &drive,
            gap: &gap,
            i_ext: i_mid,
            dv,
        };
        let Fixed { v, m, h, n, x, s } = &mut new;
        E::stage::<C>(net, t, rd, false, dt, mid.rows(), old.rows(), d, v, m, h, n, x, s);
    });
    *full_mut(&mut st.v_mv, 0) = new.v;
    *full_mut(&mut st.m, 0) = new.m;
    *full_mut(&mut st.h, 0) = new.h;
    *full_mut(&mut st.n, 0) = new.n;
    *full_mut(&mut st.x, 0) = new.x;
    *full_mut(&mut st.s, 0) = new.s;
}

/// [`midpoint`] compiled for the widest SIMD this CPU has (checked at run
/// time, so one binary serves every x86-64 machine): the fast kernel
/// ([`Vector`]) and the default one ([`Libm`], whose arithmetic between
/// libm calls vectorises). The arithmetic is the same IEEE operations in
/// the same order on every path (`mul_add` is one correctly rounded
/// operation everywhere; nothing is fused that the source does not fuse),
/// so the bits are too (tested). Without FMA (x86-64 before 2013) the
/// portable build computes the fast kernel's `mul_add` in software: same
/// bits, but slower than the default kernel.
#[inline(never)]
fn midpoint_simd<E: Rhs>(
    lanes: &Lanes,
    table: Option<&GateTable>,
    dt: f64,
    st: &mut State,
    input: &StepInput,
    ws: &mut Workspace,
) {
    // AVX-512 pays for the kernels' own exponentials on full chunks.
    // Measured (criterion, exp-midpoint step, AVX-512 build against AVX2
    // build): fast, 8 pair lanes 361 vs 502 ns, but a lone pair 240 vs 170
    // ns (Intel Xeon VM); default with libm's exp and expm1 in line, 8 pair
    // lanes 749 vs 793 ns, 100 neurons 5.00 vs 5.26 us (AMD EPYC Zen 4 VM;
    // with every exp a libm call it had been the other way round on the
    // Intel VM, 1.80 vs 1.64 us: libm's calls from AVX-512 code cost
    // more); tables 186 vs 172 ns and 1.23 vs 1.05 us (Intel), 160 vs 164
    // ns and 1.03 vs 1.00 us (AMD).
    let level = match simd() {
        Simd::Avx512 if table.is_some() || lanes.len() < W || (E::GATHERS && !gathers_fast()) => Simd::Avx2,
        level => level,
    };
    match level {
        // SAFETY: simd() says the CPU supports AVX-512F and FMA.
        #[cfg(target_arch = "x86_64")]
        Simd::Avx512 => unsafe { midpoint_avx512::<E>(lanes, table, dt, st, input, ws) },
        // SAFETY: simd() says the CPU supports AVX2 and FMA (AVX-512F
        // and FMA imply both).
        #[cfg(target_arch = "x86_64")]
        Simd::Avx2 => unsafe { midpoint_avx2::<E>(lanes, table, dt, st, input, ws) },
        _ => midpoint_portable::<E>(lanes, table, dt, st, input, ws),
    }
}

/// [`midpoint`] for CPUs without AVX2 and FMA, out of line: inlined into
/// [`midpoint_simd`], the debug build's frame for all of the kernel's
/// specialisations (about 1 MB) sat on the stack under the SIMD build's
/// own and overflowed a 2 MB thread stack.
#[inline(never)]
fn midpoint_portable<E: Rhs>(
    lanes: &Lanes,
    table: Option<&GateTable>,
    dt: f64,
    st: &mut State,
    input: &StepInput,
    ws: &mut Workspace,
) {
    midpoint::<E>(lanes, table, dt, st, input, ws)
}

/// The widest build of a hot loop this CPU can run, checked at run time so
/// that one binary serves every x86-64 machine (std caches the check).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Simd {
    /// AVX-512F and FMA.
    Avx512,
    /// AVX2 and FMA.
    Avx2,
    /// Baseline x86-64 (SSE2), or another architecture.
    Portable,
}

/// See [`Simd`]. Checked once per process: a step asks on every call, and
/// three feature checks cost a lone pair's step 23 instructions.
pub fn simd() -> Simd {
    static LEVEL: std::sync::OnceLock<Simd> = std::sync::OnceLock::new();
    *LEVEL.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            if has!("avx512f") && has!("fma") {
                return Simd::Avx512;
            }
            if has!("avx2") && has!("fma") {
                return Simd::Avx2;
            }
        }
        Simd::Portable
    })
}

/// Whether AVX-512 gathers are fast on this CPU, taken as: it is an AMD
/// one. On AMD's (Zen 4 on, the only ones with AVX-512) the default's
/// AVX-512 build, which gathers its exps' table entries, was measured
/// faster (see [`midpoint_simd`]). Intel's AVX-512 CPUs up to Ice Lake run
/// gathers several times slower under the microcode against Gather Data
/// Sampling ("Downfall", 2023), and on the Intel VM at hand the gathering
/// tables kernel lost with AVX-512 while it broke even on AMD; no Intel
/// machine was at hand to measure the default, so there it keeps its AVX2
/// build (which loads table entries one by one). Checked once.
fn gathers_fast() -> bool {
    static AMD: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *AMD.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            // CPUID leaf 0: the vendor string in EBX, EDX, ECX.
            let id = std::arch::x86_64::__cpuid(0);
            let vendor = [id.ebx, id.edx, id.ecx].map(u32::to_le_bytes).concat();
            vendor == b"AuthenticAMD"
        }
        #[cfg(not(target_arch = "x86_64"))]
        false
    })
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,fma")]
unsafe fn midpoint_avx512<E: Rhs>(
    lanes: &Lanes,
    table: Option<&GateTable>,
    dt: f64,
    st: &mut State,
    input: &StepInput,
    ws: &mut Workspace,
) {
    midpoint::<E>(lanes, table, dt, st, input, ws)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn midpoint_avx2<E: Rhs>(
    lanes: &Lanes,
    table: Option<&GateTable>,
    dt: f64,
    st: &mut State,
    input: &StepInput,
    ws: &mut Workspace,
) {
    midpoint::<E>(lanes, table, dt, st, input, ws)
}

/// Advances every lane by one step of `scheme.dt_ms` and returns how many
/// gate values had to be clamped into [0, 1] (always 0 but for `euler`).
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
// Structure of arrays: one index walks v, m, h, n, s and the inputs together.
#[allow(clippy::needless_range_loop)]
pub fn step(lanes: &Lanes, scheme: &Scheme, st: &mut State, input: &StepInput, ws: &mut Workspace) -> u32 {
    let total = lanes.len();
    let dt_ms = scheme.dt_ms;
    let net = lanes.nets[0];
    let mut clamped = 0;
    match scheme.method {
        Method::Euler => {
            lanes.couple(&st.v_mv, &st.s, &mut ws.drive, &mut ws.gap);
            for i in 0..total {
                let v = st.v_mv[i];
                let r = gate_rates(v);
                let f = dv_dt(
                    net,
                    lanes.i_inj[i],
                    v,
                    st.m[i],
                    st.h[i],
                    st.n[i],
                    ws.drive[i],
                    ws.gap[i] + input.i_start[i],
                );
                clamped += u32::from(euler_gate(&mut st.m[i], r.a_m, r.b_m, dt_ms));
                clamped += u32::from(euler_gate(&mut st.h[i], r.a_h, r.b_h, dt_ms));
                clamped += u32::from(euler_gate(&mut st.n[i], r.a_n, r.b_n, dt_ms));
                clamped += synapse_euler(net, v, &mut st.x[i], &mut st.s[i], dt_ms);
                st.v_mv[i] = v + dt_ms * f + input.noise_dv[i];
            }
        }
        Method::ExpEuler => {
            lanes.couple(&st.v_mv, &st.s, &mut ws.drive, &mut ws.gap);
            for i in 0..total {
                let v = st.v_mv[i];
                let f = dv_dt(
                    net,
                    lanes.i_inj[i],
                    v,
                    st.m[i],
                    st.h[i],
                    st.n[i],
                    ws.drive[i],
                    ws.gap[i] + input.i_start[i],
                );
                let from = Gates::of(st, i);
                advance::<Libm>(net, None, net.rise_decay, v, st.x[i], &from, dt_ms, Span::Full).store(st, i);
                st.v_mv[i] = v + dt_ms * f + input.noise_dv[i];
            }
        }
        Method::ExpMidpoint if scheme.fast => midpoint_simd::<Vector>(lanes, scheme.table, dt_ms, st, input, ws),
        // Below one full chunk, entry by entry is faster when every exp is
        // a libm call (see midpoint_libm), but for a lone pair (in local
        // arrays, see midpoint_fixed); with libm's exp in line, and for
        // tables, the passes pay off on any chunk.
        Method::ExpMidpoint if total >= W || total == 2 || scheme.table.is_some() || libm_exp::usable() => {
            midpoint_simd::<Libm>(lanes, scheme.table, dt_ms, st, input, ws)
        }
        Method::ExpMidpoint => midpoint_libm(lanes, scheme.table, dt_ms, st, input, ws),
    }
    clamped
}

/// Additive current noise with a shared fraction c, drawn per step.
///
/// **White** (`tau_ms = 0`): per step and neuron
/// `dV_i += sigma / C * sqrt(dt) * (sqrt(1 - c) xi_i + sqrt(c) xi_common)`,
/// the Euler-Maruyama increment of `C dV = ... + sigma dW` (sigma in
/// uA/cm^2 * ms^0.5; Kloeden & Platen 1992, §10.2).
///
/// **Coloured** (`tau_ms > 0`): an Ornstein-Uhlenbeck current
/// `I_i = sqrt(1 - c) eta_i + sqrt(c) eta_common` enters the drift, each eta
/// an independent OU process `tau deta = -eta dt + sigma sqrt(2 tau) dW` with
/// stationary standard deviation sigma (uA/cm^2), started from its
/// stationary distribution and advanced with the exact update
/// `eta' = eta e^(-dt/tau) + sigma sqrt(1 - e^(-2 dt/tau)) xi` (Gillespie
/// 1996, Phys. Rev. E 54:2084), so its statistics do not depend on dt. The
/// midpoint stage of exp-midpoint sees the mean of the step's two end values.
///
/// Either way any two neurons' noise correlates with coefficient c.
/// Draw order per step (part of the determinism contract): the n private
/// normals, then the common one if `shared` is `Some` (c > 0 at some point
/// of the spec: drawn at its c = 0 points too, so that every point draws
/// alike). Nothing is drawn when sigma = 0.
#[derive(Debug, Clone, PartialEq)]
pub enum Noise {
    White {
        private_dv: f64,
        /// None: no common normal is drawn.
        common_dv: Option<f64>,
    },
    Ou {
        decay: f64,
        kick: f64,
        private_w: f64,
        /// None: no common process is drawn.
        common_w: Option<f64>,
        eta: Vec<f64>,
        eta_common: f64,
        current: Vec<f64>,
    },
}

impl Noise {
    /// White noise (`tau_ms = 0`) or OU noise, for `n` neurons; draws the OU
    /// processes' initial values from `rng`. `shared`: the common fraction
    /// c, or None where no common normal is drawn (c = 0 at every point).
    pub fn new<R: Rng + ?Sized>(
        sigma: f64,
        shared: Option<f64>,
        tau_ms: f64,
        c_m: f64,
        dt_ms: f64,
        n: usize,
        rng: &mut R,
    ) -> Noise {
        // Nothing is drawn without noise.
        let shared = shared.filter(|_| sigma != 0.0);
        let c = shared.unwrap_or(0.0);
        if tau_ms == 0.0 || sigma == 0.0 {
            let scale = sigma / c_m * dt_ms.sqrt();
            return Noise::White {
                private_dv: scale * (1.0 - c).sqrt(),
                common_dv: shared.map(|c| scale * c.sqrt()),
            };
        }
        let decay = (-dt_ms / tau_ms).exp();
        let (private_w, common_w) = ((1.0 - c).sqrt(), shared.map(f64::sqrt));
        let mut draw = || -> f64 { StandardNormal.sample(rng) };
        let eta: Vec<f64> = (0..n).map(|_| sigma * draw()).collect();
        let eta_common = if shared.is_some() { sigma * draw() } else { 0.0 };
        let w = common_w.unwrap_or(0.0);
        let current = eta.iter().map(|e| private_w * e + w * eta_common).collect();
        Noise::Ou {
            decay,
            kick: sigma * (1.0 - decay * decay).sqrt(),
            private_w,
            common_w,
            eta,
            eta_common,
            current,
        }
    }

    /// True when the noise adds nothing (and draws nothing).
    pub fn is_silent(&self) -> bool {
        matches!(self, Noise::White { private_dv, common_dv: None } if *private_dv == 0.0)
    }

    /// Fills this step's inputs: white voltage increments into `dv`, or the
    /// OU current at the step's start and midpoint into `i_start`, `i_mid`.
    #[inline(always)]
    pub fn draw<R: Rng + Clone>(&mut self, rng: &mut R, dv: &mut [f64], i_start: &mut [f64], i_mid: &mut [f64]) {
        match self {
            Noise::White { private_dv, common_dv } => {
                if *private_dv == 0.0 && common_dv.is_none() {
                    return;
                }
                scaled_normals(rng, *private_dv, dv);
                if let Some(common_dv) = *common_dv {
                    let z: f64 = StandardNormal.sample(rng);
                    // At c = 0 the draw only keeps the stream in step.
                    if common_dv != 0.0 {
                        let common = common_dv * z;
                        for o in dv.iter_mut() {
                            *o += common;
                        }
                    }
                }
            }
            Noise::Ou {
                decay,
                kick,
                private_w,
                common_w,
                eta,
                eta_common,
                current,
            } => {
                i_start.copy_from_slice(current);
                for e in eta.iter_mut() {
                    let z: f64 = StandardNormal.sample(rng);
                    *e = *e * *decay + *kick * z;
                }
                if common_w.is_some() {
                    let z: f64 = StandardNormal.sample(rng);
                    *eta_common = *eta_common * *decay + *kick * z;
                }
                let w = common_w.unwrap_or(0.0);
                for (i, c) in current.iter_mut().enumerate() {
                    *c = *private_w * eta[i] + w * *eta_common;
                    i_mid[i] = 0.5 * (i_start[i] + *c);
                }
            }
        }
    }
}

/// Channel noise: the Fox & Lu (1994, Phys. Rev. E 49:3421) "subunit"
/// Langevin model in the form compared by Goldwyn & Shea-Brown (2011, PLoS
/// Comput. Biol. 7:e1002247): every gate of a membrane patch with N channels
/// of its kind gets
///
/// ```text
/// dx = (alpha (1 - x) - beta x) dt + sqrt((alpha (1 - x) + beta x) / N) dW
/// ```
///
/// with N = N_Na = rho_Na * area for m and h, N = N_K = rho_K * area for n
/// (defaults rho_Na = 60, rho_K = 18 channels per um^2, the squid-axon
/// densities those papers use). The drift is integrated by the chosen
/// method; the diffusion is added after the step as an Euler-Maruyama
/// increment with the rates at the step's starting voltage and the gate
/// value after the drift (not at the step's start: the same Ito SDE in the
/// limit, an O(dt^1.5) difference per step), and a gate that
/// leaves [0, 1] is truncated back (the bounded form Goldwyn & Shea-Brown
/// discuss; each truncation counts in `n_clamped`, so its frequency is
/// visible). The noise vanishes as 1/sqrt(area): large membranes recover
/// the deterministic model (tested).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChannelNoise {
    pub n_na: f64,
    pub n_k: f64,
}

/// `out[i] = scale * z_i` for fresh standard normals z_i, drawn on a local
/// copy of the generator, which the compiler keeps in registers (drawing
/// through `rng` stored its state back after every draw: 68 -> 52
/// instructions per draw).
#[inline(always)]
fn scaled_normals<R: Rng + Clone>(rng: &mut R, scale: f64, out: &mut [f64]) {
    let mut local = rng.clone();
    for o in out.iter_mut() {
        let z: f64 = StandardNormal.sample(&mut local);
        *o = scale * z;
    }
    *rng = local;
}

/// [`Noise::draw`] for every lane: lane b's noise from its own generator
/// into entries `b n .. (b + 1) n`. One call per step, not per lane: for
/// pairs the per-call cost was as large as the draws (measured).
#[inline(never)]
pub fn draw_lanes<R: Rng + Clone>(
    noises: &mut [Noise],
    rngs: &mut [R],
    n: usize,
    (dv, i_start, i_mid): (&mut [f64], &mut [f64], &mut [f64]),
) {
    // Private white noise (the common case) in one tight loop: the same
    // draws, in the same order, as Noise::draw (measured: 74 -> 53
    // instructions per neuron-step for pairs).
    if let [Noise::White {
        private_dv,
        common_dv: None,
    }, ..] = noises
    {
        if *private_dv != 0.0 {
            for (rng, dv) in rngs.iter_mut().zip(dv.chunks_exact_mut(n)) {
                scaled_normals(rng, *private_dv, dv);
            }
        }
        return;
    }
    let lanes = noises.iter_mut().zip(rngs).zip(dv.chunks_exact_mut(n));
    for (((noise, rng), dv), b) in lanes.zip(0..) {
        let r = b * n..(b + 1) * n;
        noise.draw(rng, dv, &mut i_start[r.clone()], &mut i_mid[r]);
    }
}

impl ChannelNoise {
    /// Adds this step's channel noise to every gate; `v_prev` is each
    /// neuron's voltage at the start of the step. Draws three normals per
    /// neuron (m, h, n, in neuron order), after the current noise's draws.
    /// Returns the number of truncations.
    pub fn apply<R: Rng + ?Sized>(&self, rng: &mut R, st: &mut State, v_prev: &[f64], dt_ms: f64) -> u32 {
        let mut clamped = 0;
        for (i, &v) in v_prev.iter().enumerate() {
            let r = gate_rates(v);
            for (x, a, b, count) in [
                (&mut st.m[i], r.a_m, r.b_m, self.n_na),
                (&mut st.h[i], r.a_h, r.b_h, self.n_na),
                (&mut st.n[i], r.a_n, r.b_n, self.n_k),
            ] {
                let z: f64 = StandardNormal.sample(rng);
                let variance = (a * (1.0 - *x) + b * *x) / count * dt_ms;
                let y = *x + variance.max(0.0).sqrt() * z;
                *x = y.clamp(0.0, 1.0);
                clamped += u32::from(y != *x);
            }
        }
        clamped
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Coupling, HhParams, KineticSynapse};
    use rand::SeedableRng;
    use rand_xoshiro::Xoshiro256PlusPlus;

    const QUIET: StepInput = StepInput {
        noise_dv: &[0.0],
        i_start: &[0.0],
        i_mid: &[0.0],
    };

    /// One step of a lone network with the default evaluation.
    fn step1(net: &Network, method: Method, dt_ms: f64, st: &mut State, input: &StepInput, ws: &mut Workspace) -> u32 {
        let scheme = Scheme {
            method,
            dt_ms,
            table: None,
            fast: false,
        };
        step(&Lanes::one(net), &scheme, st, input, ws)
    }

    fn single(i_inj: f64, hh: HhParams) -> Network {
        Network {
            hh,
            i_inj: vec![i_inj],
            synapse: KineticSynapse::default(),
            coupling: Coupling::Uncoupled,
            gap: Coupling::Uncoupled,
            rise_decay: None,
        }
    }

    /// Runs `kernel` 200 steps on 11 lanes of a coupled pair (22 entries:
    /// one full chunk, one of 4, one of 2) from spread-out states with
    /// noise increments, one of them starting below any table's grid.
    fn run_pair_lanes(net: &Network, table: Option<&GateTable>, kernel: Kernel) -> State {
        let lanes = Lanes::new(vec![net; 11]);
        let mut v0: Vec<f64> = (0..22).map(|j| -80.0 + 5.7 * j as f64).collect();
        v0[3] = TABLE_V_MIN_MV - 5.0;
        let start = State::stack([State::at_rest(net, &v0[..2])].into_iter().chain((1..11).map(|b| {
            let mut st = State::at_rest(net, &v0[2 * b..2 * b + 2]);
            st.v_mv.iter_mut().for_each(|v| *v += 1.0);
            st
        })));
        let dv: Vec<f64> = (0..22).map(|j| 0.3 * ((j * 7 % 5) as f64 - 2.0)).collect();
        let i_ext: Vec<f64> = (0..22).map(|j| 0.5 * ((j * 3 % 4) as f64 - 1.5)).collect();
        let input = StepInput {
            noise_dv: &dv,
            i_start: &i_ext,
            i_mid: &i_ext,
        };
        let (mut st, mut ws) = (start, Workspace::new(22));
        for _ in 0..200 {
            kernel(&lanes, table, 0.01, &mut st, &input, &mut ws);
        }
        assert!(st.v_mv.iter().all(|v| v.is_finite()));
        st
    }

    type Kernel = fn(&Lanes, Option<&GateTable>, f64, &mut State, &StepInput, &mut Workspace);

    /// The portable build of [`midpoint`] with `E`, after checking that the
    /// dispatched build and each build this CPU can run (AVX2, AVX-512)
    /// give the same bits: the arithmetic is the same correctly rounded
    /// operations in the same order, so the states must agree to the bit.
    /// A results file must not depend on the machine.
    fn every_build_agrees<E: Rhs>(net: &Network, table: Option<&GateTable>) -> State {
        let portable = run_pair_lanes(net, table, midpoint::<E>);
        assert_eq!(
            run_pair_lanes(net, table, midpoint_simd::<E>),
            portable,
            "dispatched build"
        );
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
                let avx2 = run_pair_lanes(net, table, |l, t, d, s, i, w| unsafe {
                    midpoint_avx2::<E>(l, t, d, s, i, w)
                });
                assert_eq!(avx2, portable, "AVX2");
            }
            if std::arch::is_x86_feature_detected!("avx512f") && std::arch::is_x86_feature_detected!("fma") {
                let avx512 = run_pair_lanes(net, table, |l, t, d, s, i, w| unsafe {
                    midpoint_avx512::<E>(l, t, d, s, i, w)
                });
                assert_eq!(avx512, portable, "AVX-512");
            }
        }
        portable
    }

    /// A coupled pair; with `double_exp`, a rise/decay synapse and gap
    /// junctions too.
    fn coupled_pair(double_exp: bool) -> Network {
        let mut net = single(10.0, HhParams::default());
        net.i_inj = vec![10.0, 7.5];
        net.coupling = Coupling::AllToAll { strength: 0.1 };
        if double_exp {
            net.rise_decay = Some(crate::model::RiseDecay {
                tau_rise_ms: 0.5,
                tau_decay_ms: 5.0,
            });
            net.gap = Coupling::AllToAll { strength: 0.05 };
        }
        net
    }

    #[test]
    fn every_simd_build_of_the_fast_stepper_gives_the_same_bits() {
        every_build_agrees::<Vector>(&coupled_pair(false), None);
    }

    /// CPUID's vendor string read right: AMD exactly where the kernel
    /// says so (Linux's /proc/cpuinfo as the witness).
    #[test]
    #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
    fn gathers_are_taken_as_fast_on_amd_cpus_only() {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap();
        let vendor = cpuinfo.lines().find(|l| l.starts_with("vendor_id")).unwrap();
        assert_eq!(gathers_fast(), vendor.ends_with("AuthenticAMD"), "{vendor}");
    }

    #[test]
    fn default_stepper_in_passes_gives_the_bits_of_the_entrywise_one() {
        // The default's full chunks go through stage_split (libm's exp and
        // expm1 in line, between vectorised passes); its bits must be
        // those of the formulas entry by entry with every exp a libm call
        // (midpoint_libm), on every build, for both synapses.
        for double_exp in [false, true] {
            let net = coupled_pair(double_exp);
            let passes = every_build_agrees::<Libm>(&net, None);
            assert_eq!(
                passes,
                run_pair_lanes(&net, None, midpoint_libm),
                "double_exp = {double_exp}"
            );
        }
    }

    #[test]
    fn table_passes_give_the_bits_of_the_entrywise_lookups() {
        // stage_table (positions, V, then gates from one row per entry)
        // must give what advance's lookup gives entry by entry, on every
        // build; a chunk with an entry off the grid, or the double-exp
        // synapse (not tabulated), falls back to the entry-wise stage.
        for double_exp in [false, true] {
            let net = coupled_pair(double_exp);
            let table = GateTable::for_dt(0.01, (!double_exp).then_some(&net.synapse));
            let passes = every_build_agrees::<Libm>(&net, Some(&table));
            assert_eq!(
                passes,
                run_pair_lanes(&net, Some(&table), midpoint_libm),
                "double_exp = {double_exp}"
            );
            assert_ne!(passes, run_pair_lanes(&net, None, midpoint_libm), "the table is used");
        }
    }

    #[cfg(target_arch = "x86_64")]
    fn settle_rows_agrees<const C: usize>(rng: &mut Xoshiro256PlusPlus) {
        use rand::RngExt;
        // Rows, weights and gates over wider ranges than a table holds, so
        // that results fall below 0 and above 1 (the clamp), and NaN gates.
        let rows: Vec<[f64; 16]> = (0..9)
            .map(|_| std::array::from_fn(|_| rng.random_range(-0.3..1.3)))
            .collect();
        let k: [usize; C] = std::array::from_fn(|_| rng.random_range(0..9));
        let w: [f64; C] = std::array::from_fn(|_| rng.random());
        let gate = |rng: &mut Xoshiro256PlusPlus| -> [f64; C] {
            std::array::from_fn(|_| {
                if rng.random_ratio(1, 20) {
                    f64::NAN
                } else {
                    rng.random_range(-0.5..1.5)
                }
            })
        };
        let from_gates = [gate(rng), gate(rng), gate(rng), gate(rng), gate(rng), gate(rng)];
        let [v, m, h, n, x, s] = &from_gates;
        let from = Rows { v, m, h, n, x, s };
        let mut out = [[0.0; C]; 4];
        let [om, oh, on, os] = &mut out;
        // SAFETY: checked just above.
        unsafe { settle_rows_avx2(&rows, &k, &w, from, [om, oh, on, os]) };
        for l in 0..C {
            let row = &rows[k[l]];
            let g: [f64; 8] = std::array::from_fn(|j| row[j] + w[l] * row[8 + j]);
            let want = [
                settle(m[l], g[0], g[4]),
                settle(h[l], g[1], g[5]),
                settle(n[l], g[2], g[6]),
                settle(s[l], g[3], g[7]),
            ];
            let got = [out[0][l], out[1][l], out[2][l], out[3][l]];
            assert_eq!(got.map(f64::to_bits), want.map(f64::to_bits), "C = {C}, entry {l}");
        }
    }

    #[test]
    fn settle_rows_avx2_gives_the_bits_of_interpolate_and_settle() {
        // Groups of 4, the pair remainder of a lone pair, a lone remainder.
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            let mut rng = Xoshiro256PlusPlus::seed_from_u64(17);
            for _ in 0..200 {
                settle_rows_agrees::<16>(&mut rng);
                settle_rows_agrees::<2>(&mut rng);
                settle_rows_agrees::<7>(&mut rng);
            }
        }
    }

    #[test]
    fn gate_update_stays_in_unit_interval_for_any_dt_and_v() {
        // The bound of requirement 3(a): sweep V over +-10 V (far past any
        // physiological value; the run marks |V| > 1000 mV as diverged) and dt
        // from 1e-4 to 1e3 ms, from both ends of [0, 1].
        for k in 0..=2000 {
            let v = -10_000.0 + 10.0 * k as f64;
            let r = gate_rates(v);
            for dt in [1e-4, 0.01, 0.1, 1.0, 10.0, 1e3] {
                for x in [0.0, 0.3, 1.0] {
                    for (a, b) in [(r.a_m, r.b_m), (r.a_h, r.b_h), (r.a_n, r.b_n)] {
                        let y = relax(x, a, b, dt);
                        assert!((0.0..=1.0).contains(&y), "V={v} dt={dt} x={x}: {y}");
                    }
                }
            }
        }
    }

    #[test]
    fn steady_state_is_a_fixed_point_of_both_methods() {
        // A neuron at rest with I = I_ion(rest) has zero drift: one step of
        // either method must leave it where it is, up to rounding (1e-12).
        let hh = HhParams::default();
        let v0 = -65.0;
        let (m, h, n) = crate::model::hh::gates_at_rest(v0);
        let i_rest = ionic_current(&hh, v0, m, h, n);
        let net = single(i_rest, hh);
        for (_, method) in Method::ALL {
            let mut st = State::at_rest(&net, &[v0]);
            let before = st.clone();
            let mut ws = Workspace::new(1);
            step1(&net, method, 0.05, &mut st, &QUIET, &mut ws);
            for (a, b) in [
                (st.v_mv[0], before.v_mv[0]),
                (st.m[0], before.m[0]),
                (st.h[0], before.h[0]),
                (st.n[0], before.n[0]),
            ] {
                assert!((a - b).abs() < 1e-12, "{method:?}: {a} vs {b}");
            }
        }
    }

    #[test]
    fn passive_membrane_decays_with_tau_c_over_gl() {
        // With the active conductances off the membrane is linear:
        // V(t) = EL + (V0 - EL) exp(-t gL / C). tau = C/gL = 2/0.3 = 6.667 ms
        // here (C = 2 to check that C enters). After 20 ms the exact
        // deviation is 10 * exp(-3) = 0.4979 mV; a second-order method at
        // dt = 0.01 errs O(dt^2 / tau^2) relative, below 1e-6 mV.
        let hh = HhParams {
            g_na: 0.0,
            g_k: 0.0,
            c_m: 2.0,
            ..HhParams::default()
        };
        let net = single(0.0, hh);
        let mut st = State::at_rest(&net, &[hh.e_l_mv + 10.0]);
        let mut ws = Workspace::new(1);
        let dt = 0.01;
        for _ in 0..2000 {
            step1(&net, Method::ExpMidpoint, dt, &mut st, &QUIET, &mut ws);
        }
        let tau = hh.c_m / hh.g_l;
        let exact = hh.e_l_mv + 10.0 * (-20.0 / tau).exp();
        assert!((st.v_mv[0] - exact).abs() < 1e-6, "{} vs {exact}", st.v_mv[0]);
    }

    /// Draws `steps` white-noise increments (or OU currents) for `n` neurons.
    fn draws(noise: &mut Noise, rng: &mut Xoshiro256PlusPlus, n: usize, steps: usize) -> Vec<Vec<f64>> {
        let (mut dv, mut a, mut b) = (vec![0.0; n], vec![0.0; n], vec![0.0; n]);
        (0..steps)
            .map(|_| {
                noise.draw(rng, &mut dv, &mut a, &mut b);
                if matches!(noise, Noise::White { .. }) {
                    dv.clone()
                } else {
                    a.clone()
                }
            })
            .collect()
    }

    #[test]
    fn fully_shared_noise_is_identical_across_neurons() {
        for tau in [0.0, 5.0] {
            let mut rng = Xoshiro256PlusPlus::seed_from_u64(7);
            let mut noise = Noise::new(3.0, Some(1.0), tau, 1.0, 0.01, 5, &mut rng);
            for out in draws(&mut noise, &mut rng, 5, 100) {
                assert!(out.iter().all(|&x| x == out[0]), "tau {tau}: {out:?}");
                assert!(out[0] != 0.0);
            }
        }
    }

    /// Sample sd of each series and their correlation.
    fn sd_and_corr(samples: &[Vec<f64>]) -> (f64, f64) {
        let k = samples.len() as f64;
        let mean = |i: usize| samples.iter().map(|s| s[i]).sum::<f64>() / k;
        let (m0, m1) = (mean(0), mean(1));
        let (mut sxx, mut syy, mut sxy) = (0.0, 0.0, 0.0);
        for s in samples {
            sxx += (s[0] - m0).powi(2);
            syy += (s[1] - m1).powi(2);
            sxy += (s[0] - m0) * (s[1] - m1);
        }
        ((sxx / k).sqrt(), sxy / (sxx * syy).sqrt())
    }

    #[test]
    fn white_noise_increments_have_the_stated_variance_and_correlation() {
        // sigma = 2, C = 1, dt = 0.04: each increment has sd 2 * 0.2 = 0.4;
        // with c = 0.3 two neurons correlate at 0.3. With 200 000 draws the
        // standard error of the sd estimate is 0.4/sqrt(2*2e5) = 6e-4 and of
        // the correlation (1-c^2)/sqrt(2e5) = 2e-3: allow 5 standard errors.
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(11);
        let mut noise = Noise::new(2.0, Some(0.3), 0.0, 1.0, 0.04, 2, &mut rng);
        let (sd, corr) = sd_and_corr(&draws(&mut noise, &mut rng, 2, 200_000));
        assert!((sd - 0.4).abs() < 3e-3, "sd {sd}");
        assert!((corr - 0.3).abs() < 1e-2, "corr {corr}");
    }

    #[test]
    fn ou_current_has_stationary_sd_sigma_correlation_c_and_time_constant_tau() {
        // tau = 2 ms, dt = 0.1 ms, 400 000 steps = 20 000 correlation times:
        // the sd estimate has relative error about 1/sqrt(20 000) = 0.7 %
        // and the correlation about 0.01; allow about 4 of those.
        let (sigma, tau, dt, c) = (1.5, 2.0, 0.1, 0.4);
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(21);
        let mut noise = Noise::new(sigma, Some(c), tau, 1.0, dt, 2, &mut rng);
        let samples = draws(&mut noise, &mut rng, 2, 400_000);
        let (sd, corr) = sd_and_corr(&samples);
        assert!((sd / sigma - 1.0).abs() < 0.03, "sd {sd}");
        assert!((corr - c).abs() < 0.04, "corr {corr}");
        // Autocorrelation at lag tau is e^-1 = 0.368 for an OU process.
        let lag = (tau / dt) as usize;
        let k = (samples.len() - lag) as f64;
        let ac = samples.windows(lag + 1).map(|w| w[0][0] * w[lag][0]).sum::<f64>() / k / (sd * sd);
        assert!((ac - (-1.0f64).exp()).abs() < 0.03, "autocorrelation at tau: {ac}");
    }

    #[test]
    fn ou_statistics_do_not_depend_on_dt() {
        // The exact update: the same sd at dt = 0.01 and dt = 1 (an Euler
        // OU step would be off by a factor sqrt(1 - dt/2tau) at dt = 1).
        for dt in [0.01, 1.0] {
            let mut rng = Xoshiro256PlusPlus::seed_from_u64(5);
            let mut noise = Noise::new(2.0, None, 1.0, 1.0, dt, 2, &mut rng);
            let steps = (2000.0 / dt.min(0.1)) as usize;
            let (sd, _) = sd_and_corr(&draws(&mut noise, &mut rng, 2, steps.min(400_000)));
            assert!((sd / 2.0 - 1.0).abs() < 0.05, "dt {dt}: sd {sd}");
        }
    }

    #[test]
    fn silent_noise_draws_nothing() {
        // A deterministic run must cost no random numbers (the normals are
        // a large part of a noisy step's cost).
        let mut a = Xoshiro256PlusPlus::seed_from_u64(3);
        let b = a.clone();
        let mut noise = Noise::new(0.0, Some(0.5), 0.0, 1.0, 0.01, 3, &mut a);
        let mut out = [0.0; 3];
        noise.draw(&mut a, &mut out, &mut [0.0; 3], &mut [0.0; 3]);
        assert_eq!(out, [0.0; 3]);
        assert_eq!(a, b);
    }

    #[test]
    fn unshared_noise_that_draws_the_common_normal_keeps_in_step_with_shared_noise() {
        // c = 0 with the common normal drawn (a point of a sweep over c)
        // draws what c = 0.5 draws, so the two see the same private
        // normals xi_i: c = 0.5's differences between neurons are sqrt(0.5)
        // times c = 0's (the common part cancels; to rounding, 1e-12).
        // Without the draw, c = 0 falls out of step after the first draw.
        for tau in [0.0, 3.0] {
            let seeded = || Xoshiro256PlusPlus::seed_from_u64(9);
            let (mut a, mut b, mut c) = (seeded(), seeded(), seeded());
            let mut drawn = Noise::new(2.0, Some(0.0), tau, 1.0, 0.01, 3, &mut a);
            let mut plain = Noise::new(2.0, None, tau, 1.0, 0.01, 3, &mut b);
            let mut shared = Noise::new(2.0, Some(0.5), tau, 1.0, 0.01, 3, &mut c);
            for step in 0..3 {
                // This step's input: the increments, or the OU current.
                let input = |noise: &mut Noise, rng: &mut Xoshiro256PlusPlus| {
                    let (mut dv, mut i_start, mut i_mid) = ([0.0; 3], [0.0; 3], [0.0; 3]);
                    noise.draw(rng, &mut dv, &mut i_start, &mut i_mid);
                    if tau == 0.0 {
                        dv
                    } else {
                        i_mid
                    }
                };
                let (x, y) = (input(&mut drawn, &mut a), input(&mut shared, &mut c));
                assert_eq!(a, c, "tau {tau}, step {step}");
                for (i, j) in [(0, 1), (1, 2)] {
                    let (want, got) = (0.5f64.sqrt() * (x[i] - x[j]), y[i] - y[j]);
                    assert!(
                        (want - got).abs() < 1e-12 * want.abs(),
                        "tau {tau}, step {step}: {want} vs {got}"
                    );
                }
                input(&mut plain, &mut b);
                assert_ne!(b, c, "tau {tau}, step {step}");
            }
        }
    }

    #[test]
    fn gap_currents_sum_to_zero_and_pull_voltages_together() {
        use crate::model::Topology;
        let v = [-65.0, -20.0, 10.0, -70.0];
        for topology in [Topology::AllToAll, Topology::Ring] {
            let gap = Coupling::new(&topology, 4, 0.3);
            let mut i = [0.0; 4];
            gap.diffusive(&v, &mut i);
            // Charge conservation: exact up to rounding.
            assert!(i.iter().sum::<f64>().abs() < 1e-12, "{topology:?}: {i:?}");
            // The most depolarised neuron loses current, the most
            // hyperpolarised gains it.
            assert!(i[2] < 0.0 && i[3] > 0.0, "{i:?}");
        }
        // By hand: all-to-all, g = 0.3, neuron 0: 0.3 * (45 + 75 - 5) = 34.5.
        let mut i = [0.0; 4];
        Coupling::new(&Topology::AllToAll, 4, 0.3).diffusive(&v, &mut i);
        assert!((i[0] - 34.5).abs() < 1e-12, "{}", i[0]);
    }

    #[test]
    fn strong_order_one_on_a_linear_sde_with_known_solution() {
        // Passive membrane with white noise: C dV = -gL (V - EL) dt + sigma dW,
        // an OU process whose exact solution on a path is
        // V(t+h) = EL + (V - EL) e^(-h/tau) + sigma/C int e^(-(t+h-s)/tau) dW(s).
        // The reference integrates that exactly on a grid 64 times finer
        // than the finest step (its own error is ~1e-3 of the errors
        // measured); each method sees the same Brownian path, summed over
        // its steps. For additive noise every scheme here has strong
        // order 1: halving h halves E|V_h(T) - V(T)| (ratio 2; allowed 1.6-2.6
        // for the Monte Carlo error of 300 paths).
        let hh = HhParams {
            g_na: 0.0,
            g_k: 0.0,
            ..HhParams::default()
        };
        let net = single(0.0, hh);
        let tau = hh.c_m / hh.g_l;
        let (sigma, t_end, fine_per_coarsest) = (5.0, 12.8, 256usize);
        let steps_coarsest = 16usize; // h = 0.8 ms
        let h0 = t_end / steps_coarsest as f64;
        let delta = h0 / fine_per_coarsest as f64;
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(99);
        for method in [Method::ExpMidpoint, Method::Euler] {
            let mut err = [0.0f64; 3]; // h0, h0/2, h0/4
            let paths = 300;
            for _ in 0..paths {
                let dw: Vec<f64> = (0..steps_coarsest * fine_per_coarsest)
                    .map(|_| {
                        let z: f64 = StandardNormal.sample(&mut rng);
                        delta.sqrt() * z
                    })
                    .collect();
                // Exact reference on the fine grid.
                let mut x = 10.0; // V - EL
                for w in &dw {
                    x = x * (-delta / tau).exp() + sigma / hh.c_m * (-delta / (2.0 * tau)).exp() * w;
                }
                let exact = hh.e_l_mv + x;
                for (level, e) in err.iter_mut().enumerate() {
                    let per = fine_per_coarsest >> level;
                    let h = delta * per as f64;
                    let mut st = State::at_rest(&net, &[hh.e_l_mv + 10.0]);
                    let mut ws = Workspace::new(1);
                    for chunk in dw.chunks(per) {
                        let dv = [sigma / hh.c_m * chunk.iter().sum::<f64>()];
                        let input = StepInput {
                            noise_dv: &dv,
                            i_start: &[0.0],
                            i_mid: &[0.0],
                        };
                        step1(&net, method, h, &mut st, &input, &mut ws);
                    }
                    *e += (st.v_mv[0] - exact).abs() / paths as f64;
                }
            }
            for k in 0..2 {
                let ratio = err[k] / err[k + 1];
                assert!((1.6..2.6).contains(&ratio), "{method:?}: errors {err:?}, ratio {ratio}");
            }
        }
    }

    #[test]
    fn double_exponential_synapse_follows_its_analytic_step_response() {
        // With T(V) = 1 held (V far above v_half) and x = s = 0 at t = 0:
        // s(t) = 1 - (td e^(-t/td) - tr e^(-t/tr)) / (td - tr).
        // x is updated exactly; s with x at the midpoint, second order: at
        // dt = 0.01 the error stays below 1e-5 (it is O(dt^2 / tr^2)).
        let mut net = single(0.0, HhParams::default());
        let (tr, td) = (0.5, 5.0);
        net.rise_decay = Some(crate::model::RiseDecay {
            tau_rise_ms: tr,
            tau_decay_ms: td,
        });
        net.synapse.alpha_per_ms = 1.0;
        let (v, dt) = (1000.0, 0.01);
        let (mut x, mut s) = (0.0, 0.0);
        let mut worst = 0.0f64;
        for k in 1..=2000 {
            let (x_mid, _) = synapse_relax::<Libm>(&net.synapse, net.rise_decay, v, x, x, s, 0.5 * dt);
            (x, s) = synapse_relax::<Libm>(&net.synapse, net.rise_decay, v, x_mid, x, s, dt);
            let t = k as f64 * dt;
            let exact = 1.0 - (td * (-t / td).exp() - tr * (-t / tr).exp()) / (td - tr);
            worst = worst.max((s - exact).abs());
        }
        assert!(worst < 1e-5, "max error {worst}");
        assert!((0.0..=1.0).contains(&x) && (0.0..=1.0).contains(&s));
    }

    #[test]
    fn tabulated_gates_match_the_exact_update_closely() {
        // Linear interpolation on 0.05 mV bins: the error of x_inf and of
        // the decay factors is below h^2/8 * max|f''|; over -100..60 mV the
        // gate after one step differs from the exact one by < 1e-6.
        let syn = KineticSynapse::default();
        let table = GateTable::for_dt(0.01, Some(&syn));
        let mut worst = 0.0f64;
        let mut v = -100.0;
        while v < 60.0 {
            let r = gate_rates(v);
            let (half, full) = (
                table.lookup(v, Span::Half).unwrap(),
                table.lookup(v, Span::Full).unwrap(),
            );
            let rates = [
                (r.a_m, r.b_m),
                (r.a_h, r.b_h),
                (r.a_n, r.b_n),
                (syn.opening_rate(v), syn.beta_per_ms),
            ];
            for (j, (a, b)) in rates.into_iter().enumerate() {
                for x in [0.0, 0.5, 1.0] {
                    worst = worst.max((settle(x, full[j], full[4 + j]) - relax(x, a, b, 0.01)).abs());
                    worst = worst.max((settle(x, half[j], half[4 + j]) - relax(x, a, b, 0.005)).abs());
                }
            }
            v += 0.0137;
        }
        assert!(worst < 1e-6, "{worst}");
        assert!(table.lookup(-200.0, Span::Full).is_none() && table.lookup(150.0, Span::Half).is_none());
        assert!(
            std::sync::Arc::ptr_eq(&table, &GateTable::for_dt(0.01, Some(&syn))),
            "one table per dt"
        );
    }
}
