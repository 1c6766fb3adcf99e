//! One step of the stacked lanes: the stages of every method, over chunks
//! of C entries so that each pass is a loop the compiler vectorises.
//!
//! The kernel knows nothing of a particular neuron: it sees J
//! voltage-gated variables with their rates ([`Rates`]) and a list of
//! currents `g prod x^p (V - E)`. A model file becomes this data in
//! [`Kernel::new`].

use super::rates::{Rates, Values};
use super::state::{Lanes, State};
use super::{Method, StepInput, Workspace};
use crate::model::expr::powi;
use crate::model::Network;
use crate::simd::{Current, Simd};

/// Widest chunk: two AVX-512 registers (four AVX2 ones) of f64 per value,
/// so the CPU has independent chains to overlap. Rests of a stacked state
/// go through chunks of 8, 4, 2 and 1 entries.
pub const CHUNK: usize = 32;

/// What a step needs of a configuration, gathered once per batch.
#[derive(Debug, Clone)]
pub struct Kernel<'a> {
    pub rates: &'a Rates,
    /// The instruction set the step is compiled for (see [`crate::simd`]).
    pub level: Simd,
    pub method: Method,
    pub dt_ms: f64,
    /// 1 / c_m.
    per_c_m: f64,
    currents: Vec<Current>,
    /// Per rate-driven variable: x = x_inf(V) at every instant.
    instantaneous: Vec<bool>,
    v_rev_mv: f64,
    /// 1 / w of the synaptic current.
    per_w: f64,
    /// Double-exponential synapse: the index of its rise variable and the
    /// decay factor of s over each span of the method (`exp(-h /
    /// tau_decay)`, or `1 / tau_decay` for Euler).
    decay_s: Option<(usize, Vec<f64>)>,
}

impl<'a> Kernel<'a> {
    pub fn new(net: &Network, rates: &'a Rates, method: Method, dt_ms: f64, level: Simd) -> Kernel<'a> {
        let cell = &net.cell;
        let currents = cell
            .model
            .currents
            .iter()
            .map(|c| Current {
                g: cell.values[c.g],
                e_mv: cell.values[c.e],
                gates: c.gates.clone(),
            })
            .collect();
        let mut instantaneous: Vec<bool> = cell.model.gates.iter().map(|g| g.instantaneous).collect();
        instantaneous.push(false);
        let decay_s = net.rise_decay.map(|rd| {
            let per_span = spans(method, dt_ms)
                .iter()
                .map(|v| match v {
                    Values::Decay(h) => crate::model::vmath::exp(-h / rd.tau_decay_ms),
                    Values::Rate => 1.0 / rd.tau_decay_ms,
                })
                .collect();
            (cell.model.gates.len(), per_span)
        });
        debug_assert_eq!(instantaneous.len(), rates.n_vars());
        Kernel {
            rates,
            level,
            method,
            dt_ms,
            per_c_m: 1.0 / cell.c_m(),
            currents,
            instantaneous,
            v_rev_mv: net.synapse.v_rev_mv,
            per_w: 1.0 / net.synapse.w,
            decay_s,
        }
    }
}

/// The spans a method's stages use, in order (see [`Values`]).
pub fn spans(method: Method, dt_ms: f64) -> Vec<Values> {
    match method {
        Method::ExpMidpoint => vec![Values::Decay(0.5 * dt_ms), Values::Decay(dt_ms)],
        Method::ExpEuler => vec![Values::Decay(dt_ms)],
        Method::Euler => vec![Values::Rate],
    }
}

/// The per-entry inputs of a stage besides the state.
#[derive(Clone, Copy)]
struct Drives<'a> {
    i_inj: &'a [f64],
    drive: &'a [f64],
    gap: &'a [f64],
    /// Coloured-noise current at this stage.
    i_ext: &'a [f64],
    dv: &'a [f64],
}

impl<'a> Drives<'a> {
    fn new(lanes: &'a Lanes, drive: &'a [f64], gap: &'a [f64], i_ext: &'a [f64], dv: &'a [f64]) -> Drives<'a> {
        Drives {
            i_inj: &lanes.i_inj,
            drive,
            gap,
            i_ext,
            dv,
        }
    }
}

/// Runs `$body` once per chunk of `$len` entries, with `$at` its first
/// entry and `$c` its width as a constant: full chunks of [`CHUNK`], then
/// one each of 8, 4, 2 and 1 as the rest requires.
macro_rules! by_chunks {
    ($len:expr, |$at:ident, $c:ident| $body:expr) => {{
        let len = $len;
        let mut $at = 0;
        while $at + CHUNK <= len {
            {
                const $c: usize = CHUNK;
                $body;
            }
            $at += CHUNK;
        }
        if len - $at >= 16 {
            const $c: usize = 16;
            $body;
            $at += 16;
        }
        if len - $at >= 8 {
            const $c: usize = 8;
            $body;
            $at += 8;
        }
        if len - $at >= 4 {
            const $c: usize = 4;
            $body;
            $at += 4;
        }
        if len - $at >= 2 {
            const $c: usize = 2;
            $body;
            $at += 2;
        }
        if len - $at >= 1 {
            const $c: usize = 1;
            $body;
        }
    }};
}

/// Advances every lane by one step and returns how many variables had to be
/// clamped into [0, 1] (only `euler` clamps). See [`super::step`].
#[inline(always)]
pub fn step(k: &Kernel, lanes: &Lanes, st: &mut State, input: &StepInput, ws: &mut Workspace) -> u32 {
    let clamped = step_at(k.level, k, lanes, st, input, ws);
    std::mem::swap(st, &mut ws.next);
    clamped
}

// A step in a function of its own per level, called once per step. Inlined
// into the trial loop (once per kind of observer), every stage's six chunk
// widths made it one function that took most of the release build.
crate::simd::per_level! {
    fn step_at(k: &Kernel, lanes: &Lanes, st: &State, input: &StepInput, ws: &mut Workspace) -> u32 = step_body;
}

/// The stages of `k`'s method, from `st` into `ws.next`.
#[inline(always)]
fn step_body(k: &Kernel, lanes: &Lanes, st: &State, input: &StepInput, ws: &mut Workspace) -> u32 {
    let len = lanes.len();
    let dt = k.dt_ms;
    let Workspace {
        drive,
        gap,
        mid,
        next,
        scratch,
    } = ws;
    lanes.couple(&st.v_mv, st.s(), drive, gap);
    let d = Drives::new(lanes, drive, gap, input.i_start, input.noise_dv);
    let mut clamped = 0;
    match k.method {
        Method::ExpMidpoint => {
            by_chunks!(len, |at, C| relax_stage::<C>(
                k,
                0,
                true,
                0.5 * dt,
                at,
                st,
                st,
                mid,
                d,
                scratch
            ));
            lanes.couple(&mid.v_mv, mid.s(), drive, gap);
            let d = Drives::new(lanes, drive, gap, input.i_mid, input.noise_dv);
            by_chunks!(len, |at, C| relax_stage::<C>(
                k, 1, false, dt, at, mid, st, next, d, scratch
            ));
        }
        Method::ExpEuler => {
            by_chunks!(len, |at, C| relax_stage::<C>(
                k, 0, false, dt, at, st, st, next, d, scratch
            ));
        }
        Method::Euler => {
            by_chunks!(len, |at, C| clamped += euler_stage::<C>(k, at, st, next, d, scratch));
        }
    }
    clamped
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

/// The rates of span `span` at the voltages of `rate`'s chunk, and dV/dt
/// there (mV/ms, without white noise), into the scratch rows; returns
/// (x_inf, second values, dV/dt).
#[inline(always)]
fn rates_and_drift<'s, const C: usize>(
    k: &Kernel,
    span: usize,
    at: usize,
    rate: &State,
    d: Drives,
    scratch: &'s mut [f64],
) -> (&'s [[f64; C]], &'s [[f64; C]], [f64; C]) {
    let (j, jp) = (k.rates.n_vars(), k.rates.padded_vars());
    let (regs, rest) = scratch.split_at_mut(k.rates.program().n_registers() * C);
    let (inf, second) = rest[..2 * jp * C].split_at_mut(jp * C);
    let (regs, inf, second) = (
        regs.as_chunks_mut::<C>().0,
        inf.as_chunks_mut::<C>().0,
        second.as_chunks_mut::<C>().0,
    );
    let v: &[f64; C] = full(&rate.v_mv, at);
    k.rates.eval(v, span, k.level, regs, inf, second);
    let (inf, second) = (&inf[..j], &second[..j]);
    let mut ion = [0.0; C];
    ionic_current(&mut ion, v, k, inf, &rate.vars, at);
    let mut f = [0.0; C];
    let inputs = [full(d.i_inj, at), full(d.gap, at), full(d.i_ext, at), full(d.drive, at)];
    drift(&mut f, v, &ion, inputs, k);
    (inf, second, f)
}

/// The ionic current, outward positive, added into `ion`: `ion += sum_c
/// g_c prod x^p (V - E_c)`, with instantaneous gates at x_inf(V) (`inf`)
/// and the others from `vars` at `at`.
#[inline(always)]
fn ionic_current<const C: usize>(
    ion: &mut [f64; C],
    v: &[f64; C],
    k: &Kernel,
    inf: &[[f64; C]],
    vars: &[Vec<f64>],
    at: usize,
) {
    #[cfg(target_arch = "x86_64")]
    if k.level == Simd::Avx512 && C.is_multiple_of(8) {
        // SAFETY: the level is one the CPU runs (crate::simd::run_at).
        unsafe { crate::simd::avx512::ionic_current(ion, v, &k.currents, &k.instantaneous, inf, vars, at) };
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if k.level >= Simd::Avx2 && C.is_multiple_of(4) {
        // SAFETY: the level is one the CPU runs (crate::simd::run_at).
        unsafe { crate::simd::avx2::ionic_current(ion, v, &k.currents, &k.instantaneous, inf, vars, at) };
        return;
    }
    ionic_current_generic(ion, v, &k.currents, &k.instantaneous, inf, vars, at);
}

/// [`ionic_current`] in plain loops (the portable build, and the order of
/// operations the per-level versions follow).
#[inline(always)]
pub(super) fn ionic_current_generic<const C: usize>(
    ion: &mut [f64; C],
    v: &[f64; C],
    currents: &[Current],
    instantaneous: &[bool],
    inf: &[[f64; C]],
    vars: &[Vec<f64>],
    at: usize,
) {
    let mut t = [0.0; C];
    for cur in currents {
        affine(&mut t, v, cur.g, cur.e_mv);
        for &(q, p) in &cur.gates {
            let x: &[f64; C] = if instantaneous[q] { &inf[q] } else { full(&vars[q], at) };
            times_power(&mut t, x, p);
        }
        add_into(ion, &t);
    }
}

// The loops of a stage, each a function of its own: its `&mut` and `&`
// arguments tell the compiler that they do not overlap, which it cannot
// see once they are slices of one workspace, and without which it leaves
// them scalar.

/// `t = g (v - e)`.
#[inline(always)]
fn affine<const C: usize>(t: &mut [f64; C], v: &[f64; C], g: f64, e: f64) {
    for l in 0..C {
        t[l] = g * (v[l] - e);
    }
}

#[inline(always)]
fn add_into<const C: usize>(sum: &mut [f64; C], t: &[f64; C]) {
    for l in 0..C {
        sum[l] += t[l];
    }
}

/// `t *= x^p`, with the power's multiplications in the order of
/// [`powi`] (the same bits), the common powers written out so the loop
/// vectorises. Three cases and a default, not more: with four the
/// compiler makes a jump table, whose target changes from gate to gate
/// and was mispredicted at every one (cachegrind: 3 per stage).
#[inline(always)]
fn times_power<const C: usize>(t: &mut [f64; C], x: &[f64; C], p: u32) {
    match p {
        1 => (0..C).for_each(|l| t[l] *= x[l]),
        3 => (0..C).for_each(|l| t[l] *= x[l] * (x[l] * x[l])),
        4 => (0..C).for_each(|l| t[l] *= (x[l] * x[l]) * (x[l] * x[l])),
        _ => (0..C).for_each(|l| t[l] *= powi(x[l], p as i32)),
    }
}

/// dV/dt = (I_inj + (I_gap + I_ext) - I_ion + I_syn) / c_m, with
/// `I_syn = (v_rev - V) / w * drive`; `inputs` are I_inj, I_gap, I_ext and
/// the synaptic drive.
#[inline(always)]
fn drift<const C: usize>(f: &mut [f64; C], v: &[f64; C], ion: &[f64; C], inputs: [&[f64; C]; 4], k: &Kernel) {
    let [i_inj, gap, i_ext, drive] = inputs;
    for l in 0..C {
        let syn = (k.v_rev_mv - v[l]) * k.per_w * drive[l];
        f[l] = (i_inj[l] + (gap[l] + i_ext[l]) - ion[l] + syn) * k.per_c_m;
    }
}

/// `o = x_inf + (x - x_inf) e`, clamped into [0, 1]: for x and x_inf in
/// [0, 1] and e in [0, 1] a convex combination, so the clamp only removes
/// the last ulp rounding may add.
#[inline(always)]
fn relax_into<const C: usize>(o: &mut [f64; C], x: &[f64; C], x_inf: &[f64; C], e: &[f64; C]) {
    for l in 0..C {
        o[l] = unit(x_inf[l] + (x[l] - x_inf[l]) * e[l]);
    }
}

/// V after a stage: `base + h f + c dv`. Computed into a local array and
/// then stored: `o` and `base` are rows of two states' heap buffers, which
/// the compiler cannot tell apart, and it left the loop scalar.
#[inline(always)]
fn advance_v<const C: usize>(o: &mut [f64; C], base: &[f64; C], h: f64, f: &[f64; C], c: f64, dv: &[f64; C]) {
    let mut v = [0.0; C];
    for l in 0..C {
        v[l] = base[l] + h * f[l] + c * dv[l];
    }
    *o = v;
}

/// One exponential stage on the chunk at `at`: rates and dV/dt at `rate`,
/// every variable relaxed from `from` over the stage's span, into `out`.
/// The exponential midpoint's half step (`first`) moves V from `rate`'s
/// by `h f` and half the noise increment; its full step (and exponential
/// Euler's only step) moves `from`'s V by `h f` and all of it.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn relax_stage<const C: usize>(
    k: &Kernel,
    span: usize,
    first: bool,
    h: f64,
    at: usize,
    rate: &State,
    from: &State,
    out: &mut State,
    d: Drives,
    scratch: &mut [f64],
) {
    let (inf, decay, f) = rates_and_drift::<C>(k, span, at, rate, d, scratch);
    // Zipped rather than indexed by gate: no bounds checks on the rows.
    let gates = out.vars.iter_mut().zip(&from.vars).zip(&k.instantaneous);
    for (((o, x), &instant), (x_inf, e)) in gates.zip(inf.iter().zip(decay)) {
        let o: &mut [f64; C] = full_mut(o, at);
        if instant {
            *o = *x_inf;
        } else {
            relax_into(o, full(x, at), x_inf, e);
        }
    }
    if let Some((rise, per_span)) = &k.decay_s {
        // s relaxes towards the rise variable at the stage's rate point.
        let e = [per_span[span]; C];
        relax_into(
            full_mut(&mut out.vars[rise + 1], at),
            full(&from.vars[rise + 1], at),
            full(&rate.vars[*rise], at),
            &e,
        );
    }
    let (base, c) = if first { (&rate.v_mv, 0.5) } else { (&from.v_mv, 1.0) };
    advance_v(full_mut(&mut out.v_mv, at), full(base, at), h, &f, c, full(d.dv, at));
}

/// `y` clamped into [0, 1] (NaN to 0: a NaN can only come with a NaN
/// voltage, which ends the trial anyway). Two comparisons that compile to
/// one `max` and one `min` instruction each.
#[inline(always)]
fn unit(y: f64) -> f64 {
    let y = if y > 0.0 { y } else { 0.0 };
    if y < 1.0 {
        y
    } else {
        1.0
    }
}

/// Forward Euler on the chunk at `at`: every variable moves by
/// `dt (x_inf - x) / tau` and is clamped into [0, 1] if it left it;
/// returns the clamps.
#[inline(always)]
fn euler_stage<const C: usize>(
    k: &Kernel,
    at: usize,
    st: &State,
    out: &mut State,
    d: Drives,
    scratch: &mut [f64],
) -> u32 {
    let dt = k.dt_ms;
    let (inf, rate, f) = rates_and_drift::<C>(k, 0, at, st, d, scratch);
    let mut clamped = 0;
    let mut euler = |o: &mut [f64; C], x: &[f64; C], target: &[f64; C], r: &[f64; C]| {
        for l in 0..C {
            let y = x[l] + dt * r[l] * (target[l] - x[l]);
            o[l] = y.clamp(0.0, 1.0);
            clamped += u32::from(o[l] != y);
        }
    };
    for (q, (x_inf, r)) in inf.iter().zip(rate).enumerate() {
        let o: &mut [f64; C] = full_mut(&mut out.vars[q], at);
        if k.instantaneous[q] {
            *o = *x_inf;
        } else {
            euler(o, full(&st.vars[q], at), x_inf, r);
        }
    }
    if let Some((rise, per_span)) = &k.decay_s {
        let r = [per_span[0]; C];
        euler(
            full_mut(&mut out.vars[rise + 1], at),
            full(&st.vars[rise + 1], at),
            full(&st.vars[*rise], at),
            &r,
        );
    }
    advance_v(
        full_mut(&mut out.v_mv, at),
        full(&st.v_mv, at),
        dt,
        &f,
        1.0,
        full(d.dv, at),
    );
    clamped
}
