//! Conductance-based point neurons as data: a model file (TOML) ->
//! [`ModelDef`] -> [`Cell`] for one set of parameter values.
//!
//! A model is a membrane capacitance `c_m`, named parameters with units,
//! gates and currents:
//!
//! ```text
//! c_m dV/dt = I_inj - sum_c g_c prod_x x^p_cx (V - E_c) + I_syn + I_noise
//! dx/dt = alpha_x(V) (1 - x) - beta_x(V) x = (x_inf(V) - x) / tau_x(V)
//! ```
//!
//! Each gate gives `alpha`/`beta` or `inf`/`tau_ms` as expressions of `v`
//! and the parameters ([`super::expr`]); an `instantaneous` gate is
//! `x = x_inf(V)` at every instant (Wang & Buzsaki's m). The README's
//! "Models" section documents the file format with a worked example; the
//! built-in models are the files under `models/`, compiled into the binary.

use super::expr::{Expr, Program};
use std::fmt;
use std::sync::Arc;
use toml::{Table, Value};

/// The built-in models: name and file text.
pub const BUILT_IN: [(&str, &str); 4] = [
    ("hh", include_str!("../../models/hh.toml")),
    ("wang-buzsaki", include_str!("../../models/wang-buzsaki.toml")),
    ("traub-miles", include_str!("../../models/traub-miles.toml")),
    ("pospischil-rs", include_str!("../../models/pospischil-rs.toml")),
];

/// The voltage range over which every rate must be finite and
/// non-negative (and over which the rates are tabulated), mV.
pub const CHECKED_V_MV: (f64, f64) = (-150.0, 100.0);
/// Spacing of the voltages checked (and of the rate tables' grid), mV.
pub const CHECKED_STEP_MV: f64 = 0.05;

/// Names a model may not give a parameter: the `[neuron]` keys of a spec
/// that are not parameters, `v`, and the functions.
const RESERVED_PARAMS: [&str; 9] = ["model", "i_inj", "v0_mv", "v", "exp", "expm1", "log", "sqrt", "tanh"];
/// Names a gate may not have: the other columns of a trace.
const RESERVED_GATES: [&str; 5] = ["t_ms", "neuron", "v_mv", "s", "trial"];

/// What is wrong with a model file: the file, the key, the value and the rule.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub struct ModelError {
    /// The file as the spec names it (a path, or `built-in model hh`).
    pub file: String,
    /// Dotted key in the file, e.g. `gates.m.alpha`.
    pub key: String,
    pub value: Option<String>,
    pub message: String,
}

impl fmt::Display for ModelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "model file {}: {}", self.file, self.key)?;
        if let Some(v) = &self.value {
            write!(f, " = {v}")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// A parameter: default value, units and a description.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamDef {
    pub name: String,
    pub value: f64,
    pub units: String,
    pub doc: String,
}

/// How a gate's kinetics are written.
#[derive(Debug, Clone, PartialEq)]
pub enum Kinetics {
    AlphaBeta { alpha: Expr, beta: Expr },
    InfTau { inf: Expr, tau_ms: Expr },
}

impl Kinetics {
    /// x_inf at `v_mv` (compiled expressions: no parameters left).
    pub fn x_inf(&self, v_mv: f64) -> f64 {
        match self {
            Kinetics::AlphaBeta { alpha, beta } => {
                let (a, b) = (alpha.at(v_mv), beta.at(v_mv));
                a / (a + b)
            }
            Kinetics::InfTau { inf, .. } => inf.at(v_mv),
        }
    }

    /// The two expressions with their keys: (alpha, beta) or (inf, tau_ms).
    pub fn exprs(&self) -> [(&'static str, &Expr); 2] {
        match self {
            Kinetics::AlphaBeta { alpha, beta } => [("alpha", alpha), ("beta", beta)],
            Kinetics::InfTau { inf, tau_ms } => [("inf", inf), ("tau_ms", tau_ms)],
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct GateDef {
    pub name: String,
    pub kinetics: Kinetics,
    pub instantaneous: bool,
    /// The two expressions as written in the file.
    pub written: [String; 2],
}

/// `g prod x^p (v - e)`, with g, e and the channel density named parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct CurrentDef {
    pub name: String,
    pub g: usize,
    pub e: usize,
    /// (gate index, power), in the order written.
    pub gates: Vec<(usize, u32)>,
    /// Channels per um^2 of membrane, for channel noise.
    pub channels_per_um2: Option<usize>,
}

/// A parsed and checked model file.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelDef {
    pub name: String,
    pub title: String,
    pub citation: String,
    /// The file's text, stored in every output table.
    pub text: String,
    /// How the spec named it: a built-in name or the path given.
    pub source: String,
    pub params: Vec<ParamDef>,
    pub gates: Vec<GateDef>,
    pub currents: Vec<CurrentDef>,
}

impl ModelDef {
    /// Parses and checks a model file's text; `source` names it in errors.
    pub fn parse(text: &str, source: &str) -> Result<ModelDef, ModelError> {
        let err = |key: &str, value: Option<String>, message: String| ModelError {
            file: source.to_string(),
            key: key.to_string(),
            value,
            message,
        };
        let table: Table = text.parse().map_err(|e: toml::de::Error| {
            err(
                "(file)",
                None,
                format!("not valid TOML: {}", e.to_string().trim().replace('\n', " ")),
            )
        })?;
        for key in table.keys() {
            if !["name", "title", "citation", "parameters", "gates", "currents"].contains(&key.as_str()) {
                return Err(err(
                    key,
                    None,
                    "unknown key; a model file has name, title, citation, [parameters], [gates.*] and [currents.*]"
                        .into(),
                ));
            }
        }
        let string = |key: &str, required: bool| -> Result<String, ModelError> {
            match table.get(key) {
                Some(Value::String(s)) => Ok(s.clone()),
                None if !required => Ok(String::new()),
                None => Err(err(
                    key,
                    None,
                    "is required: a short name, e.g. name = \"my-cell\"".into(),
                )),
                Some(v) => Err(err(key, Some(v.to_string()), "must be a string".into())),
            }
        };
        let name = string("name", true)?;
        let (title, citation) = (string("title", false)?, string("citation", false)?);
        let params = parse_params(section(&table, "parameters", source)?, &err)?;
        let gates = parse_gates(section(&table, "gates", source)?, &params, &err)?;
        let currents = parse_currents(section(&table, "currents", source)?, &params, &gates, &err)?;
        let model = ModelDef {
            name,
            title,
            citation,
            text: text.to_string(),
            source: source.to_string(),
            params,
            gates,
            currents,
        };
        let cell = Cell::defaults(Arc::new(model.clone()));
        model
            .check_params(&cell.values)
            .and_then(|()| model.check_rates(&cell.kinetics()))
            .map_err(|(key, value, message)| err(&key, value, message))?;
        Ok(model)
    }

    /// A built-in model by name.
    pub fn built_in(name: &str) -> Option<ModelDef> {
        BUILT_IN.iter().find(|(n, _)| *n == name).map(|(n, text)| {
            ModelDef::parse(text, &format!("built-in model {n}")).expect("built-in models are valid (tested)")
        })
    }

    pub fn param(&self, name: &str) -> Option<usize> {
        self.params.iter().position(|p| p.name == name)
    }

    /// Checks parameter values (the defaults, or a spec's): conductances
    /// at least 0, c_m and channel densities above 0, every value finite.
    /// Errors name the parameter (`parameters.x`), the value and the rule.
    pub fn check_params(&self, values: &[f64]) -> Result<(), (String, Option<String>, String)> {
        for (p, &x) in self.params.iter().zip(values) {
            let named = |k: usize| self.params[k].name == p.name;
            let is_g = self.currents.iter().any(|c| named(c.g));
            let is_density = self.currents.iter().any(|c| c.channels_per_um2.is_some_and(named));
            let rule = if !x.is_finite() {
                Some("must be a finite number")
            } else if p.name == "c_m" && x <= 0.0 {
                Some("the membrane capacitance must be > 0")
            } else if is_g && x < 0.0 {
                Some("is a conductance (the g of a current): must be >= 0")
            } else if is_density && x <= 0.0 {
                Some("is a channel density: must be > 0")
            } else {
                None
            };
            if let Some(rule) = rule {
                return Err((format!("parameters.{}", p.name), Some(x.to_string()), rule.into()));
            }
        }
        Ok(())
    }

    /// Checks the gates' compiled kinetics (in the model's order) on every
    /// voltage of [`CHECKED_V_MV`] in steps of [`CHECKED_STEP_MV`]: rates
    /// finite and >= 0 with alpha + beta > 0, or x_inf in [0, 1] and tau
    /// finite and > 0. Errors name the gate's expression (`gates.h.alpha`),
    /// its text and the voltage where the rule breaks.
    pub fn check_rates(&self, compiled: &[Kinetics]) -> Result<(), (String, Option<String>, String)> {
        crate::simd::run_widest(
            #[inline(always)]
            |_| self.check_rates_on(compiled),
        )
    }

    #[inline(always)]
    fn check_rates_on(&self, compiled: &[Kinetics]) -> Result<(), (String, Option<String>, String)> {
        const C: usize = 16;
        let exprs: Vec<Expr> = compiled
            .iter()
            .flat_map(|k| k.exprs().map(|(_, e)| e.clone()))
            .collect();
        let program = Program::new(&exprs);
        let mut regs = vec![[0.0; C]; program.n_registers()];
        let points = ((CHECKED_V_MV.1 - CHECKED_V_MV.0) / CHECKED_STEP_MV).round() as usize + 1;
        for start in (0..points).step_by(C) {
            let v: [f64; C] =
                std::array::from_fn(|l| CHECKED_V_MV.0 + (start + l).min(points - 1) as f64 * CHECKED_STEP_MV);
            program.eval(&v, &mut regs);
            for ((x, y), gate) in program.output_pairs(&regs).zip(&self.gates) {
                let [(ka, _), (kb, _)] = gate.kinetics.exprs();
                for l in 0..C {
                    let broken = match gate.kinetics {
                        Kinetics::AlphaBeta { .. } if !(x[l].is_finite() && x[l] >= 0.0) => {
                            Some((ka, x[l], "a rate must be finite and >= 0"))
                        }
                        Kinetics::AlphaBeta { .. } if !(y[l].is_finite() && y[l] >= 0.0) => {
                            Some((kb, y[l], "a rate must be finite and >= 0"))
                        }
                        Kinetics::AlphaBeta { .. } if x[l] + y[l] <= 0.0 => {
                            Some((ka, x[l], "alpha + beta must be > 0 (else the gate never moves)"))
                        }
                        Kinetics::InfTau { .. } if !(0.0..=1.0).contains(&x[l]) => {
                            Some((ka, x[l], "a steady state must lie in [0, 1]"))
                        }
                        Kinetics::InfTau { .. } if !(y[l].is_finite() && y[l] > 0.0) => {
                            Some((kb, y[l], "a time constant must be finite and > 0"))
                        }
                        _ => None,
                    };
                    if let Some((key, got, rule)) = broken {
                        let written = &gate.written[usize::from(key == kb)];
                        return Err((
                            format!("gates.{}.{key}", gate.name),
                            Some(format!("{written:?}")),
                            format!(
                                "{rule}, but it is {got} at V = {} mV; rates must hold on [{}, {}] mV",
                                v[l], CHECKED_V_MV.0, CHECKED_V_MV.1
                            ),
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// Names of the parameters some gate's rates use: the values a rate
    /// table depends on.
    pub fn rate_params(&self) -> Vec<usize> {
        let mut out: Vec<usize> = self
            .gates
            .iter()
            .flat_map(|g| g.kinetics.exprs().into_iter().flat_map(|(_, e)| e.params()))
            .filter_map(|name| self.param(name))
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }
}

fn section<'a>(table: &'a Table, key: &str, source: &str) -> Result<&'a Table, ModelError> {
    match table.get(key) {
        Some(Value::Table(t)) => Ok(t),
        None if key == "gates" => Ok(empty()),
        other => Err(ModelError {
            file: source.to_string(),
            key: key.to_string(),
            value: other.map(|v| v.to_string()),
            message: format!(
                "{}: a table [{key}] is required",
                if other.is_some() {
                    "is not a table"
                } else {
                    "is missing"
                }
            ),
        }),
    }
}

fn empty() -> &'static Table {
    static EMPTY: std::sync::OnceLock<Table> = std::sync::OnceLock::new();
    EMPTY.get_or_init(Table::new)
}

type Err<'a> = dyn Fn(&str, Option<String>, String) -> ModelError + 'a;

fn identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn parse_params(t: &Table, err: &Err) -> Result<Vec<ParamDef>, ModelError> {
    let mut params = Vec::new();
    for (name, v) in t {
        let key = format!("parameters.{name}");
        if !identifier(name) || RESERVED_PARAMS.contains(&name.as_str()) {
            return Err(err(
                &key,
                None,
                format!(
                    "a parameter name is letters, digits and '_', and not one of {}",
                    RESERVED_PARAMS.join(", ")
                ),
            ));
        }
        let Value::Table(entry) = v else {
            return Err(err(
                &key,
                Some(v.to_string()),
                "must be { value = ..., units = \"...\", doc = \"...\" }".into(),
            ));
        };
        for k in entry.keys() {
            if !["value", "units", "doc"].contains(&k.as_str()) {
                return Err(err(
                    &format!("{key}.{k}"),
                    None,
                    "unknown key; a parameter has value, units and doc".into(),
                ));
            }
        }
        let value = match entry.get("value") {
            Some(Value::Float(x)) => *x,
            Some(Value::Integer(i)) => *i as f64,
            other => {
                return Err(err(
                    &format!("{key}.value"),
                    other.map(|v| v.to_string()),
                    "is required: a number".into(),
                ))
            }
        };
        let units = match entry.get("units") {
            Some(Value::String(s)) => s.clone(),
            other => {
                return Err(err(
                    &format!("{key}.units"),
                    other.map(|v| v.to_string()),
                    "is required: a string such as \"mS/cm^2\", \"mV\" or \"1\" for a pure number".into(),
                ))
            }
        };
        let doc = match entry.get("doc") {
            Some(Value::String(s)) => s.clone(),
            None => String::new(),
            Some(v) => {
                return Err(err(
                    &format!("{key}.doc"),
                    Some(v.to_string()),
                    "must be a string".into(),
                ))
            }
        };
        params.push(ParamDef {
            name: name.clone(),
            value,
            units,
            doc,
        });
    }
    if !params.iter().any(|p| p.name == "c_m") {
        return Err(err(
            "parameters.c_m",
            None,
            "is required: the membrane capacitance, e.g. c_m = { value = 1.0, units = \"uF/cm^2\" }".into(),
        ));
    }
    Ok(params)
}

/// An expression of a gate, checked to use only `v` and parameters.
fn gate_expr(key: &str, v: Option<&Value>, params: &[ParamDef], err: &Err) -> Result<Expr, ModelError> {
    let text = match v {
        Some(Value::String(s)) => s,
        Some(Value::Float(_) | Value::Integer(_)) => return Ok(Expr::Num(number(v.expect("some")))),
        other => {
            return Err(err(
                key,
                other.map(|v| v.to_string()),
                "is required: an expression of v and the parameters, as a string".into(),
            ))
        }
    };
    let e = Expr::parse(text).map_err(|e| err(key, Some(format!("{text:?}")), e.to_string()))?;
    if let Some(unknown) = e.params().into_iter().find(|n| !params.iter().any(|p| p.name == *n)) {
        let names: Vec<&str> = params.iter().map(|p| p.name.as_str()).collect();
        return Err(err(
            key,
            Some(format!("{text:?}")),
            format!(
                "unknown name `{unknown}`: an expression may use v and the parameters ({})",
                names.join(", ")
            ),
        ));
    }
    Ok(e)
}

fn number(v: &Value) -> f64 {
    match v {
        Value::Float(x) => *x,
        Value::Integer(i) => *i as f64,
        _ => f64::NAN,
    }
}

fn parse_gates(t: &Table, params: &[ParamDef], err: &Err) -> Result<Vec<GateDef>, ModelError> {
    let mut gates = Vec::new();
    for (name, v) in t {
        let key = format!("gates.{name}");
        if !identifier(name) || RESERVED_GATES.contains(&name.as_str()) || params.iter().any(|p| &p.name == name) {
            return Err(err(
                &key,
                None,
                format!(
                    "a gate name is letters, digits and '_', not a parameter's name and not one of {}",
                    RESERVED_GATES.join(", ")
                ),
            ));
        }
        let Value::Table(g) = v else {
            return Err(err(
                &key,
                Some(v.to_string()),
                "must be a table with alpha and beta, or inf and tau_ms".into(),
            ));
        };
        for k in g.keys() {
            if !["alpha", "beta", "inf", "tau_ms", "instantaneous"].contains(&k.as_str()) {
                return Err(err(
                    &format!("{key}.{k}"),
                    None,
                    "unknown key; a gate has alpha and beta, or inf and tau_ms, and optionally instantaneous".into(),
                ));
            }
        }
        let kinetics = match (
            g.contains_key("alpha") || g.contains_key("beta"),
            g.contains_key("inf") || g.contains_key("tau_ms"),
        ) {
            (true, false) => Kinetics::AlphaBeta {
                alpha: gate_expr(&format!("{key}.alpha"), g.get("alpha"), params, err)?,
                beta: gate_expr(&format!("{key}.beta"), g.get("beta"), params, err)?,
            },
            (false, true) => Kinetics::InfTau {
                inf: gate_expr(&format!("{key}.inf"), g.get("inf"), params, err)?,
                tau_ms: gate_expr(&format!("{key}.tau_ms"), g.get("tau_ms"), params, err)?,
            },
            _ => {
                return Err(err(
                    &key,
                    None,
                    "give either alpha and beta (1/ms) or inf and tau_ms (ms)".into(),
                ))
            }
        };
        let instantaneous = match g.get("instantaneous") {
            None => false,
            Some(Value::Boolean(b)) => *b,
            Some(v) => {
                return Err(err(
                    &format!("{key}.instantaneous"),
                    Some(v.to_string()),
                    "must be true or false".into(),
                ))
            }
        };
        let written = kinetics.exprs().map(|(k, _)| match g.get(k) {
            Some(Value::String(text)) => text.clone(),
            Some(other) => other.to_string(),
            None => String::new(),
        });
        gates.push(GateDef {
            name: name.clone(),
            kinetics,
            instantaneous,
            written,
        });
    }
    Ok(gates)
}

fn parse_currents(t: &Table, params: &[ParamDef], gates: &[GateDef], err: &Err) -> Result<Vec<CurrentDef>, ModelError> {
    let names: Vec<&str> = params.iter().map(|p| p.name.as_str()).collect();
    let param = |key: &str, v: Option<&Value>, what: &str| -> Result<usize, ModelError> {
        match v {
            Some(Value::String(s)) => params.iter().position(|p| p.name == *s).ok_or_else(|| {
                err(
                    key,
                    Some(format!("{s:?}")),
                    format!("names no parameter (the parameters: {})", names.join(", ")),
                )
            }),
            other => Err(err(
                key,
                other.map(|v| v.to_string()),
                format!("is required: the name of the parameter that holds the {what}"),
            )),
        }
    };
    let mut currents = Vec::new();
    for (name, v) in t {
        let key = format!("currents.{name}");
        let Value::Table(c) = v else {
            return Err(err(
                &key,
                Some(v.to_string()),
                "must be a table with g, e and gates".into(),
            ));
        };
        for k in c.keys() {
            if !["g", "e", "gates", "channels_per_um2"].contains(&k.as_str()) {
                return Err(err(
                    &format!("{key}.{k}"),
                    None,
                    "unknown key; a current has g, e, gates and optionally channels_per_um2".into(),
                ));
            }
        }
        let g = param(&format!("{key}.g"), c.get("g"), "maximal conductance (mS/cm^2)")?;
        let e = param(&format!("{key}.e"), c.get("e"), "reversal potential (mV)")?;
        let channels_per_um2 = match c.get("channels_per_um2") {
            None => None,
            v => Some(param(
                &format!("{key}.channels_per_um2"),
                v,
                "channel density (1/um^2)",
            )?),
        };
        let mut powers = Vec::new();
        match c.get("gates") {
            None => {}
            Some(Value::Table(gt)) => {
                for (gname, p) in gt {
                    let gkey = format!("{key}.gates.{gname}");
                    let gate = gates.iter().position(|g| &g.name == gname).ok_or_else(|| {
                        let known: Vec<&str> = gates.iter().map(|g| g.name.as_str()).collect();
                        err(
                            &gkey,
                            None,
                            format!(
                                "names no gate (the gates: {})",
                                if known.is_empty() {
                                    "none".into()
                                } else {
                                    known.join(", ")
                                }
                            ),
                        )
                    })?;
                    match p {
                        Value::Integer(k) if (1..=8).contains(k) => powers.push((gate, *k as u32)),
                        _ => {
                            return Err(err(
                                &gkey,
                                Some(p.to_string()),
                                "the power of a gate is a whole number from 1 to 8".into(),
                            ))
                        }
                    }
                }
            }
            Some(v) => {
                return Err(err(
                    &format!("{key}.gates"),
                    Some(v.to_string()),
                    "must be a table of gate = power, e.g. gates = { m = 3, h = 1 }".into(),
                ))
            }
        }
        currents.push(CurrentDef {
            name: name.clone(),
            g,
            e,
            gates: powers,
            channels_per_um2,
        });
    }
    if let Some(unused) = (0..gates.len()).find(|k| !currents.iter().any(|c| c.gates.iter().any(|(g, _)| g == k))) {
        return Err(err(
            &format!("gates.{}", gates[unused].name),
            None,
            "is used by no current: add it to a current's gates, or remove it".into(),
        ));
    }
    Ok(currents)
}

/// A model with values for its parameters: what a trial integrates.
#[derive(Debug, Clone, PartialEq)]
pub struct Cell {
    pub model: Arc<ModelDef>,
    /// One value per parameter of `model`, in its order.
    pub values: Vec<f64>,
}

impl Cell {
    /// The model at its default values.
    pub fn defaults(model: Arc<ModelDef>) -> Cell {
        let values = model.params.iter().map(|p| p.value).collect();
        Cell { model, values }
    }

    pub fn value(&self, name: &str) -> f64 {
        self.values[self.model.param(name).expect("a parameter of this model")]
    }

    pub fn c_m(&self) -> f64 {
        self.value("c_m")
    }

    /// Each gate's kinetics compiled at these values (see
    /// [`super::expr::Expr::compile`]).
    pub fn kinetics(&self) -> Vec<Kinetics> {
        let value = |name: &str| self.value(name);
        self.model
            .gates
            .iter()
            .map(|g| match &g.kinetics {
                Kinetics::AlphaBeta { alpha, beta } => Kinetics::AlphaBeta {
                    alpha: alpha.compile(&value),
                    beta: beta.compile(&value),
                },
                Kinetics::InfTau { inf, tau_ms } => Kinetics::InfTau {
                    inf: inf.compile(&value),
                    tau_ms: tau_ms.compile(&value),
                },
            })
            .collect()
    }

    /// Ionic current of the cell, outward positive (uA/cm^2), at `v_mv`
    /// with gate values `x` (in the model's gate order).
    pub fn ionic_current(&self, v_mv: f64, x: &[f64]) -> f64 {
        self.model
            .currents
            .iter()
            .map(|c| {
                let mut t = self.values[c.g] * (v_mv - self.values[c.e]);
                for &(k, p) in &c.gates {
                    t *= super::expr::powi(x[k], p as i32);
                }
                t
            })
            .sum()
    }

    /// Steady-state gate values at a clamped voltage.
    pub fn gates_at_rest(&self, v_mv: f64) -> Vec<f64> {
        self.kinetics().iter().map(|k| k.x_inf(v_mv)).collect()
    }
}

#[cfg(test)]
mod tests;
