//! Compiled expressions as straight-line code over chunks of voltages.

use super::{num, optimize, whole_exponent, Expr, Func};
use crate::model::vmath;
use std::collections::HashMap;

/// One instruction: writes register `dst`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Op {
    Const(f64),
    V,
    Neg(usize),
    Add(usize, usize),
    Sub(usize, usize),
    Mul(usize, usize),
    Div(usize, usize),
    /// `x + c`, `x * c`, `c - x`, `x / c` and `c / x` for a constant c:
    /// the same IEEE operations as with a register of c's, without one.
    AddC(usize, f64),
    MulC(usize, f64),
    CSub(usize, f64),
    DivC(usize, f64),
    CDiv(usize, f64),
    Powf(usize, usize),
    /// `x * a + b`, rounded as MulC then AddC (the same bits): one
    /// instruction for the affine forms `optimize` writes, where two cost a
    /// second pass over the chunk and its dispatch.
    Affine(usize, f64, f64),
    /// `exp(x * a + b) * m`, rounded as Affine, exp, then MulC (m = 1: no
    /// multiplication): a rate's `m exp(a v + b)`.
    ExpAffine(usize, f64, f64, f64),
    /// `n / (x * a + b) * m`, rounded as Affine, CDiv, then MulC: a
    /// sigmoid's `m / (1 + c E)`.
    CDivAffine(usize, f64, f64, f64, f64),
    Call(Func, usize),
    /// [`Expr::FromExp`]: the function, x and e^x.
    CallFromExp(Func, usize, usize),
    /// [`Expr::FromExp`] with e^x = `y * s` for a constant s, times m,
    /// rounded as MulC, CallFromExp, then MulC (m = 1: no multiplication):
    /// `m bern(x)` with e^x = `e^b E^n` of a shared exponential base.
    CallFromScaledExp(Func, usize, usize, f64, f64),
}

impl Op {
    /// The instruction reading register `new_index[a]` for each operand a.
    fn renumbered(self, new_index: &[usize]) -> Op {
        let n = |a: usize| new_index[a];
        match self {
            Op::Const(_) | Op::V => self,
            Op::Neg(a) => Op::Neg(n(a)),
            Op::Add(a, b) => Op::Add(n(a), n(b)),
            Op::Sub(a, b) => Op::Sub(n(a), n(b)),
            Op::Mul(a, b) => Op::Mul(n(a), n(b)),
            Op::Div(a, b) => Op::Div(n(a), n(b)),
            Op::AddC(a, c) => Op::AddC(n(a), c),
            Op::MulC(a, c) => Op::MulC(n(a), c),
            Op::CSub(a, c) => Op::CSub(n(a), c),
            Op::DivC(a, c) => Op::DivC(n(a), c),
            Op::CDiv(a, c) => Op::CDiv(n(a), c),
            Op::Powf(a, b) => Op::Powf(n(a), n(b)),
            Op::Affine(a, s, c) => Op::Affine(n(a), s, c),
            Op::ExpAffine(a, s, c, m) => Op::ExpAffine(n(a), s, c, m),
            Op::CDivAffine(a, s, c, d, m) => Op::CDivAffine(n(a), s, c, d, m),
            Op::Call(f, a) => Op::Call(f, n(a)),
            Op::CallFromExp(f, a, e) => Op::CallFromExp(f, n(a), n(e)),
            Op::CallFromScaledExp(f, a, e, s, m) => Op::CallFromScaledExp(f, n(a), n(e), s, m),
        }
    }

    /// The registers the instruction reads.
    fn operands(self) -> [Option<usize>; 2] {
        match self {
            Op::Const(_) | Op::V => [None, None],
            Op::Neg(a)
            | Op::AddC(a, _)
            | Op::MulC(a, _)
            | Op::CSub(a, _)
            | Op::DivC(a, _)
            | Op::CDiv(a, _)
            | Op::Affine(a, ..)
            | Op::ExpAffine(a, ..)
            | Op::CDivAffine(a, ..)
            | Op::Call(_, a) => [Some(a), None],
            Op::Add(a, b)
            | Op::Sub(a, b)
            | Op::Mul(a, b)
            | Op::Div(a, b)
            | Op::Powf(a, b)
            | Op::CallFromExp(_, a, b)
            | Op::CallFromScaledExp(_, a, b, ..) => [Some(a), Some(b)],
        }
    }
}

/// `r[l] = body` for every entry l, `x` (and `y`) bound to the operands'
/// entries ([`each1`], [`each2`]). The body becomes a closure marked
/// `#[inline(always)]`: passed as a function item (`vmath::exp`), chunks
/// under 32 entries called it out of line, outside the AVX-512/AVX2 build,
/// through a software `fma`, 8 times slower.
macro_rules! each {
    ($r:expr, $a:expr, |$x:ident| $body:expr) => {
        each1(
            $r,
            $a,
            #[inline(always)]
            |$x: f64| $body,
        )
    };
    ($r:expr, $a:expr, $b:expr, |$x:ident, $y:ident| $body:expr) => {
        each2(
            $r,
            $a,
            $b,
            #[inline(always)]
            |$x: f64, $y: f64| $body,
        )
    };
}

/// Compiled expressions (several at once, sharing common subexpressions)
/// as straight-line code over registers; register k holds the result of
/// instruction k. [`Program::eval`] runs every instruction over a chunk of
/// C voltages at once, so the interpretation costs once per chunk and each
/// instruction's loop vectorises.
#[derive(Debug, Clone, PartialEq)]
pub struct Program {
    pub(super) ops: Vec<Op>,
    /// The register of each compiled expression, in the order given.
    outputs: Vec<usize>,
}

impl Program {
    /// The program computing `exprs` (compiled: no parameters left),
    /// rewritten for speed ([`optimize`]: shared exponentials, affine
    /// forms).
    pub fn new(exprs: &[Expr]) -> Program {
        let mut b = Builder::default();
        let outputs = optimize(exprs).iter().map(|e| b.lower(e)).collect();
        let (ops, outputs) = fuse(b.ops, outputs);
        // What `eval`'s unchecked reads rest on (the builder pushes an
        // instruction after its operands; fusing keeps the order).
        for (k, op) in ops.iter().enumerate() {
            assert!(op.operands().into_iter().flatten().all(|a| a < k), "{op:?} at {k}");
        }
        assert!(outputs.iter().all(|&k| k < ops.len()), "outputs are registers");
        Program { ops, outputs }
    }

    pub fn n_outputs(&self) -> usize {
        self.outputs.len()
    }

    /// Registers a chunk needs (see [`Program::eval`]).
    pub fn n_registers(&self) -> usize {
        self.ops.len()
    }

    /// Evaluates every expression at the C voltages `v`; `regs` is scratch
    /// of at least [`Program::n_registers`] rows. Output k is then
    /// `regs[self.output(k)]`.
    #[inline(always)]
    pub fn eval<const C: usize>(&self, v: &[f64; C], regs: &mut [[f64; C]]) {
        // Each instruction reads earlier registers only: split there, so
        // the loops see their output apart from their inputs (see `each`).
        // Unchecked: the bounds checks were about a third of the ~25 scalar
        // instructions each instruction costs per chunk (docs/performance.md).
        assert!(regs.len() >= self.ops.len(), "a scratch row per register");
        for (k, op) in self.ops.iter().enumerate() {
            // SAFETY: k < ops.len() <= regs.len(), asserted above.
            let (done, rest) = unsafe { regs.split_at_mut_unchecked(k) };
            let r = unsafe { rest.get_unchecked_mut(0) };
            // SAFETY: instruction k reads registers below k only, as
            // `Program::new` checks.
            let done = |a: usize| unsafe { done.get_unchecked(a) };
            match *op {
                Op::Const(c) => *r = [c; C],
                Op::V => *r = *v,
                Op::Neg(a) => each!(r, done(a), |x| -x),
                Op::Add(a, b) => each!(r, done(a), done(b), |x, y| x + y),
                Op::Sub(a, b) => each!(r, done(a), done(b), |x, y| x - y),
                Op::Mul(a, b) => each!(r, done(a), done(b), |x, y| x * y),
                Op::Div(a, b) => each!(r, done(a), done(b), |x, y| x / y),
                Op::AddC(a, c) => each!(r, done(a), |x| x + c),
                Op::MulC(a, c) => each!(r, done(a), |x| x * c),
                Op::CSub(a, c) => each!(r, done(a), |x| c - x),
                Op::DivC(a, c) => each!(r, done(a), |x| x / c),
                Op::CDiv(a, c) => each!(r, done(a), |x| c / x),
                Op::Powf(a, b) => each!(r, done(a), done(b), |x, y| x.powf(y)),
                Op::Affine(a, s, c) => each!(r, done(a), |x| x * s + c),
                // A multiplication by 1 is exact: leaving it out keeps the bits.
                Op::ExpAffine(a, s, c, 1.0) => each!(r, done(a), |x| vmath::exp(x * s + c)),
                Op::ExpAffine(a, s, c, m) => each!(r, done(a), |x| vmath::exp(x * s + c) * m),
                Op::CDivAffine(a, s, c, n, 1.0) => each!(r, done(a), |x| n / (x * s + c)),
                Op::CDivAffine(a, s, c, n, m) => each!(r, done(a), |x| n / (x * s + c) * m),
                Op::Call(Func::Exp, a) => each!(r, done(a), |x| vmath::exp(x)),
                Op::Call(Func::Expm1, a) => each!(r, done(a), |x| vmath::expm1(x)),
                Op::Call(Func::Bern, a) => each!(r, done(a), |x| vmath::bern(x)),
                Op::Call(Func::Sqrt, a) => each!(r, done(a), |x| x.sqrt()),
                Op::Call(f, a) => each!(r, done(a), |x| f.apply(x)),
                Op::CallFromExp(Func::Expm1, a, e) => {
                    each!(r, done(a), done(e), |x, ex| vmath::expm1_from_exp(x, ex))
                }
                Op::CallFromExp(Func::Bern, a, e) => each!(r, done(a), done(e), |x, ex| vmath::bern_from_exp(x, ex)),
                Op::CallFromExp(f, a, e) => each!(r, done(a), done(e), |x, ex| f.apply_from_exp(x, ex)),
                Op::CallFromScaledExp(Func::Bern, a, e, s, 1.0) => {
                    each!(r, done(a), done(e), |x, y| vmath::bern_from_exp(x, y * s))
                }
                Op::CallFromScaledExp(Func::Bern, a, e, s, m) => {
                    each!(r, done(a), done(e), |x, y| vmath::bern_from_exp(x, y * s) * m)
                }
                Op::CallFromScaledExp(Func::Expm1, a, e, s, m) => {
                    each!(r, done(a), done(e), |x, y| vmath::expm1_from_exp(x, y * s) * m)
                }
                Op::CallFromScaledExp(f, a, e, s, m) => {
                    each!(r, done(a), done(e), |x, y| f.apply_from_exp(x, y * s) * m)
                }
            }
        }
    }

    /// Outputs 2q and 2q + 1 after [`Program::eval`] into `regs`, for each
    /// q in turn (a rate variable's two expressions), read without bounds
    /// checks as `eval`'s registers are (two checked lookups per variable
    /// and chunk cost about as much as a short instruction).
    #[inline(always)]
    pub fn output_pairs<'r, const C: usize>(
        &'r self,
        regs: &'r [[f64; C]],
    ) -> impl Iterator<Item = (&'r [f64; C], &'r [f64; C])> + 'r {
        assert!(regs.len() >= self.ops.len(), "a scratch row per register");
        // SAFETY: every output is below ops.len() (asserted in `new`).
        let row = move |k: usize| unsafe { regs.get_unchecked(k) };
        self.outputs
            .as_chunks::<2>()
            .0
            .iter()
            .map(move |&[a, b]| (row(a), row(b)))
    }

    /// The register holding output `k` after [`Program::eval`].
    #[inline(always)]
    pub fn output(&self, k: usize) -> usize {
        self.outputs[k]
    }

    /// The value of output `k` at one voltage (tests, table checks).
    pub fn at(&self, k: usize, v_mv: f64) -> f64 {
        let mut regs = vec![[0.0; 1]; self.n_registers()];
        self.eval::<1>(&[v_mv], &mut regs);
        regs[self.output(k)][0]
    }

    /// The program as C statements (`double r<k> = ...;`), for code
    /// generation; `funcs` names the C function of each [`Func`].
    pub fn to_c(&self, v: &str, funcs: &dyn Fn(Func) -> String) -> Vec<String> {
        self.ops
            .iter()
            .enumerate()
            .map(|(k, op)| {
                let rhs = match *op {
                    Op::Const(c) => format!("{c:?}"),
                    Op::V => v.to_string(),
                    Op::Neg(a) => format!("-r{a}"),
                    Op::Add(a, b) => format!("r{a} + r{b}"),
                    Op::Sub(a, b) => format!("r{a} - r{b}"),
                    Op::Mul(a, b) => format!("r{a} * r{b}"),
                    Op::Div(a, b) => format!("r{a} / r{b}"),
                    Op::AddC(a, c) => format!("r{a} + {c:?}"),
                    Op::MulC(a, c) => format!("r{a} * {c:?}"),
                    Op::CSub(a, c) => format!("{c:?} - r{a}"),
                    Op::DivC(a, c) => format!("r{a} / {c:?}"),
                    Op::CDiv(a, c) => format!("{c:?} / r{a}"),
                    Op::Powf(a, b) => format!("pow(r{a}, r{b})"),
                    Op::Affine(a, s, c) => format!("(r{a} * {s:?}) + {c:?}"),
                    Op::ExpAffine(a, s, c, m) => format!("{}((r{a} * {s:?}) + {c:?}) * {m:?}", funcs(Func::Exp)),
                    Op::CDivAffine(a, s, c, n, m) => format!("({n:?} / ((r{a} * {s:?}) + {c:?})) * {m:?}"),
                    Op::Call(f, a) => format!("{}(r{a})", funcs(f)),
                    Op::CallFromExp(f, a, e) => format!("{}_from_exp(r{a}, r{e})", funcs(f)),
                    Op::CallFromScaledExp(f, a, e, s, m) => {
                        format!("{}_from_exp(r{a}, r{e} * {s:?}) * {m:?}", funcs(f))
                    }
                };
                format!("double r{k} = {rhs};")
            })
            .collect()
    }
}

/// `r = f(x)` entry by entry. A function of its own so that the compiler
/// knows `r` and `x` apart (`&mut` and `&` arguments do not overlap) and
/// vectorises the loop; written as plain indexing, since the array helpers
/// (`map`, `from_fn`) are not always inlined, and out of line their
/// `mul_add`s lose the caller's FMA. Called through [`each!`].
#[inline(always)]
fn each1<const C: usize>(r: &mut [f64; C], x: &[f64; C], f: impl Fn(f64) -> f64) {
    for l in 0..C {
        r[l] = f(x[l]);
    }
}

/// `r = f(x, y)` entry by entry (see [`each1`]).
#[inline(always)]
fn each2<const C: usize>(r: &mut [f64; C], x: &[f64; C], y: &[f64; C], f: impl Fn(f64, f64) -> f64) {
    for l in 0..C {
        r[l] = f(x[l], y[l]);
    }
}

/// The instructions with each `MulC` of an exponential (and `CDiv` of an
/// `Affine`, and `MulC` of that) folded into one instruction, where the
/// folded one has no other reader and is no output: the fused instruction
/// rounds as the two did (the same bits) and saves a pass over the chunk
/// and its dispatch. Dead instructions are then dropped and the registers
/// renumbered.
fn fuse(mut ops: Vec<Op>, outputs: Vec<usize>) -> (Vec<Op>, Vec<usize>) {
    let mut readers = vec![0; ops.len()];
    let read = ops.iter().flat_map(|op| op.operands().into_iter().flatten());
    for k in read.chain(outputs.iter().copied()) {
        readers[k] += 1;
    }
    let mut dead = vec![false; ops.len()];
    for i in 0..ops.len() {
        let folded = match ops[i] {
            Op::MulC(k, m) if readers[k] == 1 => match ops[k] {
                Op::ExpAffine(y, s, c, 1.0) => Some((k, Op::ExpAffine(y, s, c, m))),
                Op::CallFromScaledExp(f, y, e, s, 1.0) => Some((k, Op::CallFromScaledExp(f, y, e, s, m))),
                Op::CDivAffine(y, s, c, n, 1.0) => Some((k, Op::CDivAffine(y, s, c, n, m))),
                _ => None,
            },
            Op::CDiv(k, n) if readers[k] == 1 => match ops[k] {
                Op::Affine(y, s, c) => Some((k, Op::CDivAffine(y, s, c, n, 1.0))),
                _ => None,
            },
            _ => None,
        };
        if let Some((k, op)) = folded {
            (ops[i], dead[k]) = (op, true);
        }
    }
    let mut new_index = vec![usize::MAX; ops.len()];
    let mut kept = Vec::new();
    for (k, op) in ops.into_iter().enumerate() {
        if !dead[k] {
            new_index[k] = kept.len();
            kept.push(op.renumbered(&new_index));
        }
    }
    let outputs = outputs.iter().map(|&k| new_index[k]).collect();
    (kept, outputs)
}

/// `(s, y)` when `e` is `s * y` or `y * s` for a constant s other than 1.
fn scaled(e: &Expr) -> Option<(f64, &Expr)> {
    match e {
        Expr::Mul(a, b) => match (num(a), num(b)) {
            (Some(s), _) if s != 1.0 => Some((s, b)),
            (_, Some(s)) if s != 1.0 => Some((s, a)),
            _ => None,
        },
        _ => None,
    }
}

/// `(y, s, c)` when `e` is `s * y + c` (either order, or `s * y - c`) or
/// `s * y` (c = 0: `+ 0` changes only the sign of a zero, which no
/// exponential sees).
fn affine_parts(e: &Expr) -> Option<(&Expr, f64, f64)> {
    let (x, c) = match e {
        Expr::Add(a, b) => match (num(a), num(b)) {
            (Some(c), _) => (&**b, c),
            (_, Some(c)) => (&**a, c),
            _ => return None,
        },
        Expr::Sub(a, b) => (&**a, -num(b)?),
        _ => (e, 0.0),
    };
    let (s, y) = scaled(x)?;
    Some((y, s, c))
}

/// Lowers trees to [`Op`]s, each distinct instruction once (hash-consing),
/// so that `(v + 65)` written in three rates is computed once.
#[derive(Default)]
struct Builder {
    ops: Vec<Op>,
    seen: HashMap<OpKey, usize>,
}

/// An [`Op`] with its constant as bits, so that it can be a map key.
#[derive(PartialEq, Eq, Hash)]
enum OpKey {
    Const(u64),
    Other(String),
}

impl Builder {
    fn push(&mut self, op: Op) -> usize {
        let key = match op {
            Op::Const(c) => OpKey::Const(c.to_bits()),
            other => OpKey::Other(format!("{other:?}")),
        };
        if let Some(&r) = self.seen.get(&key) {
            return r;
        }
        self.ops.push(op);
        self.seen.insert(key, self.ops.len() - 1);
        self.ops.len() - 1
    }

    /// `x^n` as the multiplications of [`super::powi`], in its order (same bits),
    /// so that they vectorise as any other instruction and `x^4` and `x^8`
    /// of one `x` share their squarings.
    fn powi(&mut self, x: usize, n: i32) -> usize {
        let (mut base, mut e, mut acc) = (x, n.unsigned_abs(), None);
        while e > 0 {
            if e & 1 == 1 {
                acc = Some(match acc {
                    None => base,
                    Some(a) => self.push(Op::Mul(a, base)),
                });
            }
            e >>= 1;
            if e > 0 {
                base = self.push(Op::Mul(base, base));
            }
        }
        match (acc, n < 0) {
            (Some(acc), false) => acc,
            (acc, _) => {
                let one = self.push(Op::Const(1.0));
                match acc {
                    Some(acc) => self.push(Op::Div(one, acc)),
                    None => one,
                }
            }
        }
    }

    /// `x + c`: one [`Op::Affine`] where x is `s * y` for a constant s.
    fn add_const(&mut self, x: &Expr, c: f64) -> Op {
        match scaled(x) {
            Some((s, y)) => Op::Affine(self.lower(y), s, c),
            None => Op::AddC(self.lower(x), c),
        }
    }

    fn lower(&mut self, e: &Expr) -> usize {
        let op = match e {
            Expr::Num(x) => Op::Const(*x),
            Expr::V => Op::V,
            Expr::Param(p) => panic!("parameter {p} not compiled in"),
            Expr::Neg(a) => Op::Neg(self.lower(a)),
            // A constant operand goes into the instruction (+ and * commute
            // exactly in IEEE arithmetic; x - c is x + (-c); 1 * x is x).
            Expr::Add(a, b) => match (num(a), num(b)) {
                (Some(c), _) => self.add_const(b, c),
                (_, Some(c)) => self.add_const(a, c),
                _ => Op::Add(self.lower(a), self.lower(b)),
            },
            Expr::Sub(a, b) => match (num(a), num(b)) {
                (Some(c), _) => Op::CSub(self.lower(b), c),
                (_, Some(c)) => self.add_const(a, -c),
                _ => Op::Sub(self.lower(a), self.lower(b)),
            },
            Expr::Mul(a, b) => match (num(a), num(b)) {
                (Some(c), _) | (_, Some(c)) if c == 1.0 => {
                    return self.lower(if num(a).is_some() { b } else { a });
                }
                (Some(c), _) => Op::MulC(self.lower(b), c),
                (_, Some(c)) => Op::MulC(self.lower(a), c),
                _ => Op::Mul(self.lower(a), self.lower(b)),
            },
            Expr::Div(a, b) => match (num(a), num(b)) {
                (Some(c), _) => Op::CDiv(self.lower(b), c),
                (_, Some(c)) => Op::DivC(self.lower(a), c),
                _ => Op::Div(self.lower(a), self.lower(b)),
            },
            Expr::Pow(a, b) => match num(b).and_then(whole_exponent) {
                Some(n) => {
                    let x = self.lower(a);
                    return self.powi(x, n);
                }
                None => Op::Powf(self.lower(a), self.lower(b)),
            },
            Expr::Call(Func::Exp, a) => match affine_parts(a) {
                Some((y, s, c)) => Op::ExpAffine(self.lower(y), s, c, 1.0),
                None => Op::Call(Func::Exp, self.lower(a)),
            },
            Expr::Call(f, a) => Op::Call(*f, self.lower(a)),
            Expr::FromExp(f, x, ex) => match scaled(ex) {
                Some((s, y)) => Op::CallFromScaledExp(*f, self.lower(x), self.lower(y), s, 1.0),
                None => Op::CallFromExp(*f, self.lower(x), self.lower(ex)),
            },
        };
        self.push(op)
    }
}
