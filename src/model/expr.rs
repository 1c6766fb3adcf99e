//! Rate expressions of model files: text -> [`Expr`] -> [`Program`].
//!
//! The language is arithmetic of `v` (the membrane potential, mV) and the
//! model's parameters: numbers, `+ - * / ^`, unary minus, parentheses and
//! the functions `exp`, `expm1`, `log`, `sqrt`, `tanh`. `^` binds tighter
//! than unary minus (`-x^2` is `-(x^2)`) and groups to the right.
//!
//! Compiling for one set of parameter values ([`Expr::compile`]) writes the
//! values in, folds constants, and removes the removable singularities of
//! the classic rate shapes, so that a model author writes
//! `0.1 * (v + 40) / (1 - exp(-(v + 40) / 10))` as in the paper and gets a
//! rate that is finite and smooth at -40 mV:
//!
//! - `1 - exp(X)` and `exp(X) - 1` become `-expm1(X)` and `expm1(X)`
//!   (full precision near X = 0, where the difference cancels);
//! - `N / (c expm1(X))` with N and X linear in v and zero at the same
//!   voltage becomes `(N / X) / c * bern(X)`, where `bern(x) = x / expm1(x)`
//!   is 1 at 0 ([`super::vmath::bern`]).

use super::vmath;
use std::fmt;

/// A function of the expression language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Func {
    Exp,
    Expm1,
    Log,
    Sqrt,
    Tanh,
    /// `x / expm1(x)`: not written by authors, produced by the compiler.
    Bern,
}

impl Func {
    /// The functions a model file may call, by name.
    pub const WRITTEN: [(&'static str, Func); 5] = [
        ("exp", Func::Exp),
        ("expm1", Func::Expm1),
        ("log", Func::Log),
        ("sqrt", Func::Sqrt),
        ("tanh", Func::Tanh),
    ];

    pub fn name(self) -> &'static str {
        match self {
            Func::Exp => "exp",
            Func::Expm1 => "expm1",
            Func::Log => "log",
            Func::Sqrt => "sqrt",
            Func::Tanh => "tanh",
            Func::Bern => "bern",
        }
    }

    /// The function at one argument, as the vectorised evaluator computes
    /// it (so constant folding and run time agree bit for bit). `log` and
    /// `tanh` are libm's: the same function in every instruction-set build.
    #[inline(always)]
    pub fn apply(self, x: f64) -> f64 {
        match self {
            Func::Exp => vmath::exp(x),
            Func::Expm1 => vmath::expm1(x),
            Func::Log => x.ln(),
            Func::Sqrt => x.sqrt(),
            Func::Tanh => x.tanh(),
            Func::Bern => vmath::bern(x),
        }
    }

    /// `self(x)` given `ex = e^x` ([`Expr::FromExp`]): `expm1` and `bern`.
    #[inline(always)]
    pub fn apply_from_exp(self, x: f64, ex: f64) -> f64 {
        match self {
            Func::Expm1 => vmath::expm1_from_exp(x, ex),
            Func::Bern => vmath::bern_from_exp(x, ex),
            f => panic!("{} is not computed from a given exponential", f.name()),
        }
    }
}

/// A parsed expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Num(f64),
    /// The membrane potential (mV).
    V,
    /// A parameter, by name.
    Param(String),
    Neg(Box<Expr>),
    Add(Box<Expr>, Box<Expr>),
    Sub(Box<Expr>, Box<Expr>),
    Mul(Box<Expr>, Box<Expr>),
    Div(Box<Expr>, Box<Expr>),
    Pow(Box<Expr>, Box<Expr>),
    Call(Func, Box<Expr>),
    /// `f(x)` computed from `x` and a given `e^x` (`expm1` or `bern` whose
    /// exponential is shared with other rates: [`optimize`]).
    FromExp(Func, Box<Expr>, Box<Expr>),
}

/// Why a text is not an expression: what, and where (byte offset).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message} at character {}", at + 1)]
pub struct ParseError {
    pub at: usize,
    pub message: String,
}

impl Expr {
    /// Parses `text`; names other than `v` become [`Expr::Param`] (the
    /// model checks that they are its parameters).
    pub fn parse(text: &str) -> Result<Expr, ParseError> {
        let mut p = Parser {
            s: text.as_bytes(),
            at: 0,
        };
        let e = p.sum()?;
        p.skip_space();
        if p.at < p.s.len() {
            return Err(p.error(format!("unexpected `{}`", p.s[p.at] as char)));
        }
        Ok(e)
    }

    /// Every parameter name the expression uses, in order of appearance.
    pub fn params(&self) -> Vec<&str> {
        let mut out = Vec::new();
        self.visit(&mut |e| {
            if let Expr::Param(name) = e {
                if !out.contains(&name.as_str()) {
                    out.push(name.as_str());
                }
            }
        });
        out
    }

    fn visit<'a>(&'a self, f: &mut impl FnMut(&'a Expr)) {
        f(self);
        match self {
            Expr::Num(_) | Expr::V | Expr::Param(_) => {}
            Expr::Neg(a) | Expr::Call(_, a) => a.visit(f),
            Expr::Add(a, b)
            | Expr::Sub(a, b)
            | Expr::Mul(a, b)
            | Expr::Div(a, b)
            | Expr::Pow(a, b)
            | Expr::FromExp(_, a, b) => {
                a.visit(f);
                b.visit(f);
            }
        }
    }

    /// The expression with parameter values written in, constants folded
    /// and the removable singularities rewritten (module docs). `value`
    /// must know every parameter the expression uses.
    pub fn compile(&self, value: &dyn Fn(&str) -> f64) -> Expr {
        remove_singularities(fold(self, value))
    }

    /// The value at membrane potential `v_mv` (after [`Expr::compile`]:
    /// parameters must be gone). The scalar twin of [`Program::eval`], for
    /// tests and table checks.
    pub fn at(&self, v_mv: f64) -> f64 {
        match self {
            Expr::Num(x) => *x,
            Expr::V => v_mv,
            Expr::Param(p) => panic!("parameter {p} not compiled in"),
            Expr::Neg(a) => -a.at(v_mv),
            Expr::Add(a, b) => a.at(v_mv) + b.at(v_mv),
            Expr::Sub(a, b) => a.at(v_mv) - b.at(v_mv),
            Expr::Mul(a, b) => a.at(v_mv) * b.at(v_mv),
            Expr::Div(a, b) => a.at(v_mv) / b.at(v_mv),
            Expr::Pow(a, b) => pow(a.at(v_mv), b.at(v_mv)),
            Expr::Call(f, a) => f.apply(a.at(v_mv)),
            Expr::FromExp(f, x, ex) => f.apply_from_exp(x.at(v_mv), ex.at(v_mv)),
        }
    }
}

/// `x^y`: repeated multiplication for a whole exponent of at most 64 in
/// magnitude (exact order, so every build agrees), libm's `powf` otherwise.
#[inline(always)]
pub fn pow(x: f64, y: f64) -> f64 {
    match whole_exponent(y) {
        Some(n) => powi(x, n),
        None => x.powf(y),
    }
}

fn whole_exponent(y: f64) -> Option<i32> {
    (y.fract() == 0.0 && y.abs() <= 64.0).then_some(y as i32)
}

/// x^n by squaring, in a fixed order of multiplications.
#[inline(always)]
pub fn powi(x: f64, n: i32) -> f64 {
    let (mut base, mut e, mut acc) = (x, n.unsigned_abs(), 1.0);
    while e > 0 {
        if e & 1 == 1 {
            acc *= base;
        }
        base *= base;
        e >>= 1;
    }
    if n < 0 {
        1.0 / acc
    } else {
        acc
    }
}

impl fmt::Display for Expr {
    /// Fully parenthesised, so that it reads back as the same tree.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Num(x) => write!(f, "{x:?}"),
            Expr::V => write!(f, "v"),
            Expr::Param(p) => write!(f, "{p}"),
            Expr::Neg(a) => write!(f, "(-{a})"),
            Expr::Add(a, b) => write!(f, "({a} + {b})"),
            Expr::Sub(a, b) => write!(f, "({a} - {b})"),
            Expr::Mul(a, b) => write!(f, "({a} * {b})"),
            Expr::Div(a, b) => write!(f, "({a} / {b})"),
            Expr::Pow(a, b) => write!(f, "({a} ^ {b})"),
            Expr::Call(func, a) => write!(f, "{}({a})", func.name()),
            Expr::FromExp(func, x, ex) => write!(f, "{}_from_exp({x}, {ex})", func.name()),
        }
    }
}

// ------------------------------------------------------------------ parser

struct Parser<'a> {
    s: &'a [u8],
    at: usize,
}

impl Parser<'_> {
    fn error(&self, message: String) -> ParseError {
        ParseError { at: self.at, message }
    }

    fn skip_space(&mut self) {
        while self.s.get(self.at).is_some_and(|c| c.is_ascii_whitespace()) {
            self.at += 1;
        }
    }

    fn eat(&mut self, c: u8) -> bool {
        self.skip_space();
        if self.s.get(self.at) == Some(&c) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    /// sum := product (('+' | '-') product)*
    fn sum(&mut self) -> Result<Expr, ParseError> {
        let mut e = self.product()?;
        loop {
            if self.eat(b'+') {
                e = Expr::Add(Box::new(e), Box::new(self.product()?));
            } else if self.eat(b'-') {
                e = Expr::Sub(Box::new(e), Box::new(self.product()?));
            } else {
                return Ok(e);
            }
        }
    }

    /// product := unary (('*' | '/') unary)*
    fn product(&mut self) -> Result<Expr, ParseError> {
        let mut e = self.unary()?;
        loop {
            if self.eat(b'*') {
                e = Expr::Mul(Box::new(e), Box::new(self.unary()?));
            } else if self.eat(b'/') {
                e = Expr::Div(Box::new(e), Box::new(self.unary()?));
            } else {
                return Ok(e);
            }
        }
    }

    /// unary := '-' unary | '+' unary | power
    fn unary(&mut self) -> Result<Expr, ParseError> {
        if self.eat(b'-') {
            return Ok(Expr::Neg(Box::new(self.unary()?)));
        }
        if self.eat(b'+') {
            return self.unary();
        }
        self.power()
    }

    /// power := atom ('^' unary)?   (right-associative)
    fn power(&mut self) -> Result<Expr, ParseError> {
        let base = self.atom()?;
        if self.eat(b'^') {
            return Ok(Expr::Pow(Box::new(base), Box::new(self.unary()?)));
        }
        Ok(base)
    }

    /// atom := number | name | name '(' sum ')' | '(' sum ')'
    fn atom(&mut self) -> Result<Expr, ParseError> {
        self.skip_space();
        let start = self.at;
        match self.s.get(self.at) {
            None => Err(self.error("the expression ends where a number, name or `(` belongs".into())),
            Some(b'(') => {
                self.at += 1;
                let e = self.sum()?;
                if !self.eat(b')') {
                    return Err(self.error("missing `)`".into()));
                }
                Ok(e)
            }
            Some(c) if c.is_ascii_digit() || *c == b'.' => {
                self.number_end();
                let text = std::str::from_utf8(&self.s[start..self.at]).expect("ASCII");
                text.parse().map(Expr::Num).map_err(|_| ParseError {
                    at: start,
                    message: format!("`{text}` is not a number"),
                })
            }
            Some(c) if c.is_ascii_alphabetic() || *c == b'_' => {
                while self
                    .s
                    .get(self.at)
                    .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_')
                {
                    self.at += 1;
                }
                let name = std::str::from_utf8(&self.s[start..self.at]).expect("ASCII");
                if self.eat(b'(') {
                    let func = Func::WRITTEN
                        .iter()
                        .find(|(n, _)| *n == name)
                        .map(|(_, f)| *f)
                        .ok_or_else(|| ParseError {
                            at: start,
                            message: format!(
                                "unknown function `{name}` (allowed: {})",
                                Func::WRITTEN.map(|(n, _)| n).join(", ")
                            ),
                        })?;
                    let arg = self.sum()?;
                    if !self.eat(b')') {
                        return Err(self.error(format!("missing `)` after the argument of {name}")));
                    }
                    return Ok(Expr::Call(func, Box::new(arg)));
                }
                Ok(if name == "v" {
                    Expr::V
                } else {
                    Expr::Param(name.to_string())
                })
            }
            Some(&c) => Err(self.error(format!("unexpected `{}`", c as char))),
        }
    }

    /// Moves past digits, a point, and an exponent (`1.5e-3`).
    fn number_end(&mut self) {
        let digits = |p: &mut Self| {
            while p.s.get(p.at).is_some_and(u8::is_ascii_digit) {
                p.at += 1;
            }
        };
        digits(self);
        if self.s.get(self.at) == Some(&b'.') {
            self.at += 1;
            digits(self);
        }
        if matches!(self.s.get(self.at), Some(b'e' | b'E')) {
            let save = self.at;
            self.at += 1;
            if matches!(self.s.get(self.at), Some(b'+' | b'-')) {
                self.at += 1;
            }
            if self.s.get(self.at).is_some_and(u8::is_ascii_digit) {
                digits(self);
            } else {
                self.at = save;
            }
        }
    }
}

// ------------------------------------------------------ folding, rewriting

fn num(e: &Expr) -> Option<f64> {
    match e {
        Expr::Num(x) => Some(*x),
        _ => None,
    }
}

/// Parameters written in, and every subtree without `v` evaluated (with the
/// run-time functions, so the bits are the same either way).
fn fold(e: &Expr, value: &dyn Fn(&str) -> f64) -> Expr {
    use Expr::*;
    let bin = |a: &Expr, b: &Expr, op: fn(Box<Expr>, Box<Expr>) -> Expr, f: fn(f64, f64) -> f64| {
        let (a, b) = (fold(a, value), fold(b, value));
        match (num(&a), num(&b)) {
            (Some(x), Some(y)) => Num(f(x, y)),
            _ => op(Box::new(a), Box::new(b)),
        }
    };
    match e {
        Num(x) => Num(*x),
        V => V,
        Param(p) => Num(value(p)),
        Neg(a) => match fold(a, value) {
            Num(x) => Num(-x),
            a => Neg(Box::new(a)),
        },
        Call(f, a) => match fold(a, value) {
            Num(x) => Num(f.apply(x)),
            a => Call(*f, Box::new(a)),
        },
        FromExp(f, x, ex) => match (fold(x, value), fold(ex, value)) {
            (Num(x), Num(ex)) => Num(f.apply_from_exp(x, ex)),
            (x, ex) => FromExp(*f, Box::new(x), Box::new(ex)),
        },
        Add(a, b) => bin(a, b, Add, |x, y| x + y),
        Sub(a, b) => bin(a, b, Sub, |x, y| x - y),
        Mul(a, b) => bin(a, b, Mul, |x, y| x * y),
        Div(a, b) => bin(a, b, Div, |x, y| x / y),
        Pow(a, b) => bin(a, b, Pow, pow),
    }
}

/// `a v + b` if `e` is linear in v (after folding).
fn linear(e: &Expr) -> Option<(f64, f64)> {
    use Expr::*;
    Some(match e {
        Num(x) => (0.0, *x),
        V => (1.0, 0.0),
        Neg(a) => {
            let (p, q) = linear(a)?;
            (-p, -q)
        }
        Add(a, b) => {
            let ((p, q), (r, s)) = (linear(a)?, linear(b)?);
            (p + r, q + s)
        }
        Sub(a, b) => {
            let ((p, q), (r, s)) = (linear(a)?, linear(b)?);
            (p - r, q - s)
        }
        Mul(a, b) => match (num(a), num(b)) {
            (Some(c), _) => {
                let (p, q) = linear(b)?;
                (c * p, c * q)
            }
            (_, Some(c)) => {
                let (p, q) = linear(a)?;
                (c * p, c * q)
            }
            _ => return None,
        },
        Div(a, b) => {
            let c = num(b)?;
            let (p, q) = linear(a)?;
            (p / c, q / c)
        }
        _ => return None,
    })
}

/// `c expm1(X)` if `e` is one of the forms `exp(X) - 1`, `1 - exp(X)`,
/// `-1 + exp(X)`, `expm1(X)`, times or over a constant, or negated.
fn scaled_expm1(e: &Expr) -> Option<(f64, Expr)> {
    use Expr::*;
    match e {
        Call(Func::Expm1, x) => Some((1.0, (**x).clone())),
        Neg(a) => scaled_expm1(a).map(|(c, x)| (-c, x)),
        Mul(a, b) => match (num(a), num(b)) {
            (Some(k), _) => scaled_expm1(b).map(|(c, x)| (k * c, x)),
            (_, Some(k)) => scaled_expm1(a).map(|(c, x)| (k * c, x)),
            _ => None,
        },
        Div(a, b) => num(b).and_then(|k| scaled_expm1(a).map(|(c, x)| (c / k, x))),
        Sub(a, b) => match (num(a), num(b), &**a, &**b) {
            (_, Some(1.0), Call(Func::Exp, x), _) => Some((1.0, (**x).clone())),
            (Some(1.0), _, _, Call(Func::Exp, x)) => Some((-1.0, (**x).clone())),
            _ => None,
        },
        Add(a, b) => match (num(a), num(b), &**a, &**b) {
            (Some(m), _, _, Call(Func::Exp, x)) | (_, Some(m), Call(Func::Exp, x), _) if m == -1.0 => {
                Some((1.0, (**x).clone()))
            }
            _ => None,
        },
        _ => None,
    }
}

/// The rewrites of the module docs, bottom up.
fn remove_singularities(e: Expr) -> Expr {
    use Expr::*;
    let e = match e {
        Neg(a) => Neg(Box::new(remove_singularities(*a))),
        Call(f, a) => Call(f, Box::new(remove_singularities(*a))),
        Add(a, b) => Add(Box::new(remove_singularities(*a)), Box::new(remove_singularities(*b))),
        Sub(a, b) => Sub(Box::new(remove_singularities(*a)), Box::new(remove_singularities(*b))),
        Mul(a, b) => Mul(Box::new(remove_singularities(*a)), Box::new(remove_singularities(*b))),
        Div(a, b) => Div(Box::new(remove_singularities(*a)), Box::new(remove_singularities(*b))),
        Pow(a, b) => Pow(Box::new(remove_singularities(*a)), Box::new(remove_singularities(*b))),
        FromExp(f, x, ex) => FromExp(
            f,
            Box::new(remove_singularities(*x)),
            Box::new(remove_singularities(*ex)),
        ),
        leaf => leaf,
    };
    // exp(X) - 1 and its relatives -> c expm1(X).
    let e = match &e {
        Sub(..) | Add(..) => match scaled_expm1(&e) {
            Some((c, x)) => {
                let m = Call(Func::Expm1, Box::new(x));
                if c == 1.0 {
                    m
                } else {
                    Mul(Box::new(Num(c)), Box::new(m))
                }
            }
            None => e,
        },
        _ => e,
    };
    // N / (c expm1(X)) with N = r X: r / c * bern(X).
    if let Div(n, d) = &e {
        if let (Some((c, x)), Some((an, bn))) = (scaled_expm1(d), linear(n)) {
            if let Some((ax, bx)) = linear(&x) {
                let same_root = an != 0.0 && ax != 0.0 && {
                    let (rn, rx) = (-bn / an, -bx / ax);
                    (rn - rx).abs() <= 1e-9 * rx.abs().max(1.0)
                };
                if same_root {
                    let r = an / ax / c;
                    return Mul(Box::new(Num(r)), Box::new(Call(Func::Bern, Box::new(x))));
                }
            }
        }
    }
    e
}

mod optimize;
mod program;
pub use optimize::optimize;
pub use program::Program;

#[cfg(test)]
mod tests;
