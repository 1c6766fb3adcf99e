//! The rates of every voltage-gated variable (the model's gates and the
//! synapse's presynaptic gate), as steady states and decay factors over a
//! span of time: evaluated exactly from the model's expressions, or
//! interpolated from a table on a voltage grid (the default).
//!
//! Every variable x obeys `dx/dt = (x_inf(V) - x) / tau(V)`; written with
//! rates, `x_inf = alpha / (alpha + beta)` and `1/tau = alpha + beta`.
//! Over a span h with V frozen its exact solution is
//! `x_inf + (x - x_inf) exp(-h / tau)` (Rush & Larsen 1978, IEEE Trans.
//! Biomed. Eng. 25:389), so a step needs, per variable, x_inf and the
//! decay factor `exp(-h / tau)` at the stage's voltage: [`Values::Decay`].
//! Forward Euler needs x_inf and `1/tau`: [`Values::Rate`].

use crate::model::expr::{Expr, Program};
use crate::model::neuron::{Kinetics, CHECKED_STEP_MV, CHECKED_V_MV};
use crate::model::vmath;
use crate::simd::Simd;
use std::mem::MaybeUninit;
use std::sync::Arc;

/// What a span's second number is, per variable.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Values {
    /// `exp(-h / tau)` over a span of `h` ms.
    Decay(f64),
    /// `1 / tau` (1/ms).
    Rate,
}

/// How a variable's two expressions read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    AlphaBeta,
    InfTau,
}

/// How rates are evaluated (`integrator.rates`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RatesMode {
    /// Interpolated on a voltage grid, exact off the grid (the default).
    Table,
    /// The expressions evaluated at every stage.
    Exact,
}

impl RatesMode {
    pub const ALL: [(&'static str, RatesMode); 2] = [("table", RatesMode::Table), ("exact", RatesMode::Exact)];

    pub fn name(self) -> &'static str {
        RatesMode::ALL
            .iter()
            .find(|(_, m)| *m == self)
            .map(|(n, _)| *n)
            .expect("listed")
    }
}

/// The rate program of one configuration and, in table mode, its table.
#[derive(Debug, PartialEq)]
pub struct Rates {
    /// Outputs 2j and 2j + 1 are variable j's two expressions.
    program: Program,
    forms: Vec<Form>,
    /// The spans a step uses, in the order the stepper asks for them.
    spans: Vec<Values>,
    table: Option<RateTable>,
}

/// Grid of a [`RateTable`]: the voltages the model checks guarantee.
const GRID_MIN_MV: f64 = CHECKED_V_MV.0;
const GRID_MAX_MV: f64 = CHECKED_V_MV.1;
/// Grid points per mV: 1 / [`CHECKED_STEP_MV`].
const GRID_PER_MV: f64 = 20.0;
/// 2^52: adding it to an integer-valued f64 below 2^52 puts the integer in
/// the low bits of the sum.
const TWO_52: f64 = 4_503_599_627_370_496.0;

/// Tabulated rates, as NEURON's `usetable` (Hines & Carnevale 1997, Neural
/// Comput. 9:1179): per span and grid voltage, every variable's x_inf and
/// second value, then their differences to the next grid point, in one
/// row, so that a lookup reads one row and interpolating is one
/// multiply-add per value. Off the grid the exact rates are used, so
/// variables stay in [0, 1] for any V.
#[derive(Debug, PartialEq)]
struct RateTable {
    /// Per span: rows of `4 jp` numbers (x_inf, second values, then their
    /// differences to the next row; J of each, padded to jp, the next
    /// multiple of 4, so that a row's parts load as whole registers).
    rows: Vec<CacheAligned>,
    jp: usize,
    /// The last grid point's index: positions must stay below it.
    last_row: f64,
}

impl Rates {
    /// The rates of `vars` (compiled: the cell's gates, then the
    /// synapse's) for the given spans; tabulated in mode Table.
    pub fn new(vars: &[Kinetics], spans: Vec<Values>, mode: RatesMode) -> Rates {
        let forms = vars
            .iter()
            .map(|k| match k {
                Kinetics::AlphaBeta { .. } => Form::AlphaBeta,
                Kinetics::InfTau { .. } => Form::InfTau,
            })
            .collect();
        let exprs: Vec<Expr> = vars.iter().flat_map(|k| k.exprs().map(|(_, e)| e.clone())).collect();
        let mut rates = Rates {
            program: Program::new(&exprs),
            forms,
            spans,
            table: None,
        };
        if mode == RatesMode::Table {
            rates.table = Some(rates.build_table());
        }
        rates
    }

    /// Variables: the model's gates and the synapse's gate.
    pub fn n_vars(&self) -> usize {
        self.forms.len()
    }

    pub fn program(&self) -> &Program {
        &self.program
    }

    pub fn mode(&self) -> RatesMode {
        if self.table.is_some() {
            RatesMode::Table
        } else {
            RatesMode::Exact
        }
    }

    /// Scratch rows a chunk of [`Rates::eval`] needs, per entry: the
    /// program's registers, then x_inf and second values of
    /// [`Rates::padded_vars`] variables each.
    pub fn scratch_rows(&self) -> usize {
        self.program.n_registers() + 2 * self.padded_vars()
    }

    /// The variables rounded up to a multiple of 4 (the table's row parts).
    pub fn padded_vars(&self) -> usize {
        self.n_vars().div_ceil(4) * 4
    }

    /// The table, computed by the exact path itself (in chunks, compiled
    /// for the widest instruction set: the same bits, faster).
    fn build_table(&self) -> RateTable {
        let points = ((GRID_MAX_MV - GRID_MIN_MV) / CHECKED_STEP_MV).round() as usize + 1;
        let rows = crate::simd::run_widest(
            #[inline(always)]
            |_| {
                let mut rows = Vec::new();
                for span in 0..self.spans.len() {
                    rows.push(CacheAligned::new(&self.span_rows(span, points)));
                }
                rows
            },
        );
        RateTable {
            rows,
            jp: self.padded_vars(),
            last_row: (points - 1) as f64,
        }
    }

    /// Span `span`'s rows of the table over `points` grid voltages: per
    /// point, J x_inf, J second values, then their differences to the next
    /// point, each padded to [`Rates::padded_vars`]. Inlined into the
    /// widest build (out of line, `mul_add` would be a call).
    #[inline(always)]
    fn span_rows(&self, span: usize, points: usize) -> Vec<f64> {
        const C: usize = 16;
        let j = self.n_vars();
        let mut regs = vec![[0.0; C]; self.program.n_registers()];
        let (mut inf, mut second) = (vec![[0.0; C]; j], vec![[0.0; C]; j]);
        // values[k]: J x_inf then J second values at grid point k.
        let mut values = vec![0.0; points * 2 * j];
        for start in (0..points).step_by(C) {
            let v: [f64; C] =
                std::array::from_fn(|l| GRID_MIN_MV + (start + l).min(points - 1) as f64 * CHECKED_STEP_MV);
            self.exact(&v, span, &mut regs, &mut inf, &mut second);
            for l in 0..C.min(points - start) {
                let at = (start + l) * 2 * j;
                for q in 0..j {
                    values[at + q] = inf[q][l];
                    values[at + j + q] = second[q][l];
                }
            }
        }
        let jp = self.padded_vars();
        let mut flat = Vec::with_capacity(points * 4 * jp);
        for k in 0..points {
            let (this, next) = (
                &values[k * 2 * j..(k + 1) * 2 * j],
                &values[(k + 1).min(points - 1) * 2 * j..],
            );
            let diff: Vec<f64> = this.iter().zip(next).map(|(a, b)| b - a).collect();
            for part in [&this[..j], &this[j..], &diff[..j], &diff[j..]] {
                flat.extend_from_slice(part);
                flat.extend(std::iter::repeat_n(0.0, jp - j));
            }
        }
        flat
    }

    /// x_inf and the second value of span `span` ([`Values`]) of every
    /// variable at the C voltages `v`, into `inf[q]` and `second[q]` (each
    /// [`Rates::padded_vars`] rows; those past the variables are scratch);
    /// `regs` is scratch of [`Program::n_registers`] rows. `level` is the
    /// instruction set the caller is compiled for.
    #[inline(always)]
    pub fn eval<const C: usize>(
        &self,
        v: &[f64; C],
        span: usize,
        level: Simd,
        regs: &mut [[f64; C]],
        inf: &mut [[f64; C]],
        second: &mut [[f64; C]],
    ) {
        let Some(table) = &self.table else {
            return self.exact(v, span, regs, inf, second);
        };
        // Positions in one pass (it vectorises), then the rows. The arrays
        // start uninitialised: the compiler kept a zeroing store per
        // register before the pass that writes every entry.
        let (mut row, mut weight, mut outside) = (
            MaybeUninit::<[usize; C]>::uninit(),
            MaybeUninit::<[f64; C]>::uninit(),
            false,
        );
        let (row_at, weight_at) = (row.as_mut_ptr().cast::<usize>(), weight.as_mut_ptr().cast::<f64>());
        for (l, &v_l) in v.iter().enumerate() {
            let (inside, k, w) = table.position(v_l);
            // SAFETY: l < C, inside both arrays.
            unsafe { (row_at.add(l).write(k), weight_at.add(l).write(w)) };
            outside |= !inside;
        }
        // SAFETY: the loop wrote every entry of both.
        let (row, weight) = unsafe { (row.assume_init_ref(), weight.assume_init_ref()) };
        let rows = table.rows[span].get();
        match table.jp {
            // SAFETY (both): the level is one the CPU runs (crate::simd::run_at),
            // and positions are below the last grid row (`position`).
            #[cfg(target_arch = "x86_64")]
            4 if level >= Simd::Avx2 && C.is_multiple_of(4) => unsafe {
                crate::simd::avx2::interpolate::<C, 4>(grid_rows(rows), row, weight, inf, second)
            },
            #[cfg(target_arch = "x86_64")]
            8 if level >= Simd::Avx2 && C.is_multiple_of(4) => unsafe {
                crate::simd::avx2::interpolate::<C, 8>(grid_rows(rows), row, weight, inf, second)
            },
            // The row width known at compile time: the loops unroll.
            4 => interpolate::<C, 4>(grid_rows(rows), row, weight, inf, second),
            8 => interpolate::<C, 8>(grid_rows(rows), row, weight, inf, second),
            jp => interpolate_any(jp, rows, row, weight, inf, second),
        }
        if outside {
            self.patch_off_grid(v, span, regs, inf, second);
        }
    }

    /// The exact values for the entries of `v` off the table's grid (rare:
    /// V beyond [-150, 100] mV), leaving the others as looked up, so that an
    /// entry's values depend on its own voltage only.
    #[cold]
    #[inline(never)]
    fn patch_off_grid<const C: usize>(
        &self,
        v: &[f64; C],
        span: usize,
        regs: &mut [[f64; C]],
        inf: &mut [[f64; C]],
        second: &mut [[f64; C]],
    ) {
        let table = self.table.as_ref().expect("table mode");
        let j = self.n_vars();
        let (mut x_inf, mut x_second) = (vec![[0.0; C]; j], vec![[0.0; C]; j]);
        self.exact(v, span, regs, &mut x_inf, &mut x_second);
        for (l, &vl) in v.iter().enumerate() {
            if !table.position(vl).0 {
                for q in 0..j {
                    inf[q][l] = x_inf[q][l];
                    second[q][l] = x_second[q][l];
                }
            }
        }
    }

    /// The rates from the expressions ([`Rates::eval`] without the table).
    #[inline(always)]
    fn exact<const C: usize>(
        &self,
        v: &[f64; C],
        span: usize,
        regs: &mut [[f64; C]],
        inf: &mut [[f64; C]],
        second: &mut [[f64; C]],
    ) {
        self.exact_rate(v, regs, inf, second);
        if let Values::Decay(h) = self.spans[span] {
            // The variables' rows only: those past them are padding.
            for row in second[..self.n_vars()].iter_mut() {
                for k in row.iter_mut() {
                    *k = vmath::exp(-*k * h);
                }
            }
        }
    }

    /// Every variable's x_inf and `1/tau` at the C voltages `v`, from the
    /// expressions (channel noise needs the rates themselves).
    #[inline(always)]
    pub fn exact_rate<const C: usize>(
        &self,
        v: &[f64; C],
        regs: &mut [[f64; C]],
        inf: &mut [[f64; C]],
        rate: &mut [[f64; C]],
    ) {
        assert!(inf.len().min(rate.len()) >= self.n_vars(), "a row per variable");
        self.program.eval(v, regs);
        let rows = inf.iter_mut().zip(rate.iter_mut());
        for (((inf, rate), (a, b)), form) in rows.zip(self.program.output_pairs(regs)).zip(&self.forms) {
            match form {
                Form::AlphaBeta => from_alpha_beta(inf, rate, a, b),
                Form::InfTau => from_inf_tau(inf, rate, a, b),
            }
        }
    }
}

/// x_inf = alpha / (alpha + beta), 1/tau = alpha + beta; the quotient by
/// [`vmath::recip`], or a division for the rare sums beyond its range
/// (entry by entry: the bits never depend on the chunk).
#[inline(always)]
fn from_alpha_beta<const C: usize>(inf: &mut [f64; C], rate: &mut [f64; C], alpha: &[f64; C], beta: &[f64; C]) {
    let mut all_ok = true;
    for l in 0..C {
        let k = alpha[l] + beta[l];
        let (r, ok) = vmath::recip(k);
        (inf[l], rate[l]) = (alpha[l] * r, k);
        all_ok &= ok;
    }
    if !all_ok {
        redo_quotients(inf, alpha, rate);
    }
}

/// x_inf as given, 1/tau from tau (as [`from_alpha_beta`]'s quotient).
#[inline(always)]
fn from_inf_tau<const C: usize>(inf: &mut [f64; C], rate: &mut [f64; C], x_inf: &[f64; C], tau: &[f64; C]) {
    let mut all_ok = true;
    for l in 0..C {
        let ok;
        (inf[l], (rate[l], ok)) = (x_inf[l], vmath::recip(tau[l]));
        all_ok &= ok;
    }
    if !all_ok {
        redo_quotients(rate, &[1.0; C], tau);
    }
}

/// `q = n / d` by division where `d` is beyond [`vmath::recip`]'s range.
#[cold]
#[inline(never)]
fn redo_quotients<const C: usize>(q: &mut [f64; C], n: &[f64; C], d: &[f64; C]) {
    for l in 0..C {
        if !vmath::recip(d[l]).1 {
            q[l] = n[l] / d[l];
        }
    }
}

/// Row `row[l]` of a table of `JP` (padded) variables interpolated towards
/// the next with weight `weight[l]`, into `inf[q][l]` and `second[q][l]`.
#[inline(always)]
fn interpolate<const C: usize, const JP: usize>(
    rows: &[[[f64; JP]; 4]],
    row: &[usize; C],
    weight: &[f64; C],
    inf: &mut [[f64; C]],
    second: &mut [[f64; C]],
) {
    for l in 0..C {
        let [x, s, dx, ds] = &rows[row[l]];
        let w = weight[l];
        for q in 0..JP {
            inf[q][l] = w.mul_add(dx[q], x[q]);
            second[q][l] = w.mul_add(ds[q], s[q]);
        }
    }
}

/// A table's rows of `4 JP` numbers (x_inf, second values, then their
/// differences to the next row) as one element per grid row, so that
/// looking a row up is a single bounds check.
#[inline(always)]
fn grid_rows<const JP: usize>(rows: &[f64]) -> &[[[f64; JP]; 4]] {
    rows.as_chunks::<JP>().0.as_chunks::<4>().0
}

/// [`interpolate`] for a row width known only at run time.
#[inline(always)]
fn interpolate_any<const C: usize>(
    jp: usize,
    rows: &[f64],
    row: &[usize; C],
    weight: &[f64; C],
    inf: &mut [[f64; C]],
    second: &mut [[f64; C]],
) {
    for l in 0..C {
        let r = &rows[4 * jp * row[l]..4 * jp * (row[l] + 1)];
        let w = weight[l];
        for q in 0..jp {
            inf[q][l] = w.mul_add(r[2 * jp + q], r[q]);
            second[q][l] = w.mul_add(r[3 * jp + q], r[jp + q]);
        }
    }
}

/// Numbers starting on a 64-byte boundary, so that a table row of 4 jp
/// numbers (a multiple of 64 bytes) spans whole cache lines: unaligned, a
/// 128-byte row touched three lines instead of two.
#[derive(Debug, PartialEq)]
struct CacheAligned {
    buf: Vec<f64>,
    start: usize,
    len: usize,
}

impl CacheAligned {
    fn new(xs: &[f64]) -> CacheAligned {
        let mut buf = vec![0.0; xs.len() + 8];
        // Elements are 8-aligned, so the boundary is at most 7 away.
        let start = buf.as_ptr().align_offset(64).min(7);
        buf[start..start + xs.len()].copy_from_slice(xs);
        CacheAligned {
            buf,
            start,
            len: xs.len(),
        }
    }

    fn get(&self) -> &[f64] {
        &self.buf[self.start..self.start + self.len]
    }
}

impl RateTable {
    /// Where `v_mv` falls on the grid: whether inside it, the row below (0
    /// outside) and the weight of the row above. No branch, so that a loop
    /// of positions vectorises.
    #[inline(always)]
    fn position(&self, v_mv: f64) -> (bool, usize, f64) {
        // A multiplication, not a division by the step (several times
        // slower in SIMD); 1 / 0.05 = 20 exactly.
        let u = (v_mv - GRID_MIN_MV) * GRID_PER_MV;
        let inside = (u >= 0.0) & (u < self.last_row);
        // floor(u) as an integer by the 2^52 trick (exact for 0 <= k <
        // 2^52): plain arithmetic, where `as usize` (saturating) is not.
        let k = if inside { u.floor() } else { 0.0 };
        let row = ((k + TWO_52).to_bits() - TWO_52.to_bits()) as usize;
        (inside, row, u - k)
    }
}

/// A shared [`Rates`] per distinct configuration: built once per process
/// (a sweep over a conductance reuses the table of its first point).
pub fn shared(key: String, build: impl FnOnce() -> Rates) -> Arc<Rates> {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    static CACHE: OnceLock<Mutex<HashMap<String, Arc<Rates>>>> = OnceLock::new();
    let mut cache = CACHE
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    cache.entry(key).or_insert_with(|| Arc::new(build())).clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotients_beyond_the_reciprocals_range_are_divided_entry_by_entry() {
        // Sums of rates and time constants beyond f32's range (where the
        // reciprocal's seed fails) take a division, exactly: 1e-40 / 1e-40
        // and 1e300 / 1e300 are 1, 1 / 1e300 is 1e-300, 1 / 0 is infinite.
        let (alpha, beta) = ([1e-40, 0.3, 1e300, 0.3], [0.0, 0.7, 0.0, 0.7]);
        let (mut inf, mut rate) = ([0.0; 4], [0.0; 4]);
        from_alpha_beta(&mut inf, &mut rate, &alpha, &beta);
        assert_eq!([inf[0], inf[2]], [1.0, 1.0]);
        // A valid entry keeps its bits whatever its company: as alone.
        let (mut inf_alone, mut rate_alone) = ([0.0; 1], [0.0; 1]);
        from_alpha_beta(&mut inf_alone, &mut rate_alone, &[0.3], &[0.7]);
        assert_eq!(inf[1].to_bits(), inf_alone[0].to_bits());
        assert_eq!(inf[1].to_bits(), inf[3].to_bits());
        // 0.3 / (0.3 + 0.7): within recip's 1 ulp and the product's rounding.
        assert!((inf[1] - 0.3).abs() <= 2.0 * f64::EPSILON * 0.3, "{}", inf[1]);

        let tau_ms = [1e300, 2.0, 0.0, 4.0];
        let (mut inf, mut rate) = ([0.0; 4], [0.0; 4]);
        from_inf_tau(&mut inf, &mut rate, &[0.5; 4], &tau_ms);
        assert_eq!(rate, [1e-300, 0.5, f64::INFINITY, 0.25]);
        assert_eq!(inf, [0.5; 4]);
    }
}
