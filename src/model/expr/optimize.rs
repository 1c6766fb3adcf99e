//! Rewrites of compiled expressions for evaluation speed, exact as
//! identities and a few ulp apart in rounding (bounds tested in
//! `model::expr::tests`):
//!
//! - linear subtrees become `a v + b` (two operations; `-(v + 40) / 10`
//!   took three, one a division);
//! - constant factors merge: `4 * (c * x)` becomes `(4 c) * x`;
//! - exponentials share a base, below.
//!
//! One exponential for several rates. Most rate expressions are
//! exponentials of linear functions of v, `exp(a v + b)`, and their slopes
//! are often whole multiples of one another (Hodgkin-Huxley's 1/80, 1/20
//! and 1/10 per mV). With `E = exp(s v)` for a base slope s,
//! `exp(a v + b) = e^b E^n` for a = n s: one exponential and a few
//! multiplications instead of several exponentials, the costliest part of
//! evaluating rates exactly. `expm1(X)` and `bern(X)` of such an X take
//! their `e^X` from the same base ([`Expr::FromExp`]).

use super::{linear, Expr, Func};
use crate::model::vmath;

/// Largest |a| (1/mV) and |b| of an `exp(a v + b)` that is shared: for
/// |v| <= 1000 mV (beyond, a trial is declared diverged) |a v| <= 500 and
/// e^|b| <= e^100, so every power and product stays finite and normal.
const MAX_SLOPE_PER_MV: f64 = 0.5;
const MAX_OFFSET: f64 = 100.0;
/// Highest power of a base. E^n carries about n times E's rounding error:
/// at most 16 ulp, 4e-15 relative.
const MAX_POWER: f64 = 16.0;

/// `exprs` (compiled) rewritten as the module docs say. Exponential bases
/// are the smallest slopes in magnitude; a slope joins a base when it is a
/// whole multiple of it (up to [`MAX_POWER`], to rounding of the slopes
/// themselves).
pub fn optimize(exprs: &[Expr]) -> Vec<Expr> {
    let mut slopes = Vec::new();
    for e in exprs {
        e.visit(&mut |node| slopes.extend(shareable(node).map(|(a, _)| a)));
    }
    slopes.sort_by(|x, y| x.abs().total_cmp(&y.abs()).then(x.total_cmp(y)));
    slopes.dedup();
    let mut bases: Vec<f64> = Vec::new();
    let mut powers: Vec<(f64, f64, f64)> = Vec::new();
    for a in slopes {
        match bases.iter().find_map(|&s| power_of(a, s).map(|n| (s, n))) {
            Some((s, n)) => powers.push((a, s, n)),
            None => {
                bases.push(a);
                powers.push((a, a, 1.0));
            }
        }
    }
    let power = |a: f64| {
        let &(_, s, n) = powers
            .iter()
            .find(|(slope, _, _)| *slope == a)
            .expect("every slope has a base");
        (s, n)
    };
    exprs.iter().map(|e| rewrite(e, &power)).collect()
}

/// `(a, b)` of `exp`, `expm1` or `bern` of `a v + b`, within the bounds.
fn shareable(e: &Expr) -> Option<(f64, f64)> {
    match e {
        Expr::Call(Func::Exp | Func::Expm1 | Func::Bern, x) => {
            linear(x).filter(|&(a, b)| a != 0.0 && a.abs() <= MAX_SLOPE_PER_MV && b.abs() <= MAX_OFFSET)
        }
        _ => None,
    }
}

/// n when `a = n s` for a whole n in 1..=[`MAX_POWER`] (the slopes are
/// rounded, so to a few ulp of a).
fn power_of(a: f64, s: f64) -> Option<f64> {
    let n = (a / s).round();
    ((1.0..=MAX_POWER).contains(&n) && (a - n * s).abs() <= 4.0 * f64::EPSILON * a.abs()).then_some(n)
}

fn rewrite(e: &Expr, power: &dyn Fn(f64) -> (f64, f64)) -> Expr {
    use Expr::*;
    if let (Some((a, b)), Call(f, _)) = (shareable(e), e) {
        let x = Box::new(affine(a, b));
        let (s, n) = power(a);
        let base = Call(Func::Exp, Box::new(affine(s, 0.0)));
        let e_av = if n == 1.0 {
            base
        } else {
            Pow(Box::new(base), Box::new(Num(n)))
        };
        let ex = if b == 0.0 {
            e_av
        } else {
            Mul(Box::new(Num(vmath::exp(b))), Box::new(e_av))
        };
        return match f {
            Func::Exp => ex,
            _ => FromExp(*f, x, Box::new(ex)),
        };
    }
    match linear(e) {
        Some((a, b)) if a != 0.0 && !matches!(e, V) => return affine(a, b),
        _ => {}
    }
    let r = |a: &Expr| Box::new(rewrite(a, power));
    match e {
        Num(_) | V | Param(_) => e.clone(),
        Neg(a) => Neg(r(a)),
        Add(a, b) => Add(r(a), r(b)),
        Sub(a, b) => Sub(r(a), r(b)),
        Mul(a, b) => match (*r(a), *r(b)) {
            (Num(c), Mul(d, x)) | (Mul(d, x), Num(c)) if super::num(&d).is_some() => {
                Mul(Box::new(Num(c * super::num(&d).unwrap_or(1.0))), x)
            }
            (a, b) => Mul(Box::new(a), Box::new(b)),
        },
        Div(a, b) => Div(r(a), r(b)),
        Pow(a, b) => Pow(r(a), r(b)),
        Call(f, a) => Call(*f, r(a)),
        FromExp(f, x, ex) => FromExp(*f, r(x), r(ex)),
    }
}

/// `a v + b` as a tree: `Mul(a, v)`, then `+ b` unless b is 0.
fn affine(a: f64, b: f64) -> Expr {
    use Expr::*;
    let av = if a == 1.0 {
        V
    } else {
        Mul(Box::new(Num(a)), Box::new(V))
    };
    if b == 0.0 {
        av
    } else {
        Add(Box::new(av), Box::new(Num(b)))
    }
}
