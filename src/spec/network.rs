//! The `[network]`, `[synapse]` and `[gap]` sections, and per-neuron values:
//! who is coupled to whom, through which synapse, with what drive.

use super::{check, finite, limits, non_negative, number, positive, schema, SpecError, MAX_NEURONS};
use crate::graph::{PerNeuron, TopologySpec};
use crate::model::{KineticSynapse, RiseDecay, Topology};
use schemars::JsonSchema;
use serde::Deserialize;
use std::path::Path;
use toml::Value;

#[derive(Deserialize, Default, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNetwork {
    /// Number of neurons.
    #[schemars(extend("default" = 1, "minimum" = 1, "maximum" = MAX_NEURONS))]
    pub(super) n: Option<u32>,
    /// Who is coupled to whom (A): a name, or an explicit matrix (row i = inputs of neuron i).
    #[schemars(schema_with = "schema::topology", extend("default" = "all-to-all"))]
    pub(super) topology: Option<Value>,
    /// Multiplies the adjacency: E = strength * A.
    #[schemars(extend("default" = 0.0, "minimum" = 0.0))]
    pub(super) strength: Option<f64>,
    /// Connection probability ("random") or rewiring probability ("small-world").
    #[schemars(extend("minimum" = 0.0, "maximum" = 1.0))]
    pub(super) p: Option<f64>,
    /// Neighbours per neuron of the small-world ring lattice (even).
    pub(super) k: Option<u32>,
    /// Divide each row of E by the neuron's in-degree.
    #[schemars(extend("default" = false))]
    pub(super) normalize: Option<bool>,
    /// Draw a new random graph and drive per trial instead of one per experiment.
    #[schemars(extend("default" = false))]
    pub(super) resample: Option<bool>,
}

#[derive(Deserialize, Default, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSynapse {
    /// "kinetic" (first-order transmitter kinetics) or "double-exp" (rise/decay).
    #[schemars(schema_with = "schema::synapse_kind")]
    pub(super) kind: Option<String>,
    /// Kinetic synapse: reversal potential (below rest: inhibitory).
    #[schemars(extend("default" = 20.0))]
    pub(super) v_rev_mv: Option<f64>,
    /// Kinetic synapse: divisor of the synaptic current.
    #[schemars(extend("default" = 1.0))]
    pub(super) w: Option<f64>,
    /// Kinetic synapse: opening rate of s.
    #[schemars(extend("default" = 5.0))]
    pub(super) alpha_per_ms: Option<f64>,
    /// Kinetic synapse: closing rate of s.
    #[schemars(extend("default" = 1.0))]
    pub(super) beta_per_ms: Option<f64>,
    /// Release sigmoid T(V) = 1 / (1 + exp(-(V - v_half) / k)): half-activation voltage.
    #[schemars(extend("default" = -3.0))]
    pub(super) v_half_mv: Option<f64>,
    /// Release sigmoid slope.
    #[schemars(extend("default" = 8.0))]
    pub(super) k_mv: Option<f64>,
    /// Double-exp only: rise time constant.
    #[schemars(extend("default" = 0.5))]
    pub(super) tau_rise_ms: Option<f64>,
    /// Double-exp only: decay time constant.
    #[schemars(extend("default" = 5.0))]
    pub(super) tau_decay_ms: Option<f64>,
    /// Double-exp only: reversal potential (0 excitatory, -80 inhibitory).
    #[schemars(extend("default" = 0.0))]
    pub(super) e_rev_mv: Option<f64>,
}

#[derive(Deserialize, Default, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RawGap {
    /// Gap-junction conductance.
    #[schemars(extend("default" = 0.0, "minimum" = 0.0))]
    pub(super) g: Option<f64>,
    /// Their own topology, same forms as network.topology [default: network.topology].
    #[schemars(schema_with = "schema::topology")]
    pub(super) topology: Option<Value>,
    /// As network.p, for gap.topology.
    #[schemars(extend("minimum" = 0.0, "maximum" = 1.0))]
    pub(super) p: Option<f64>,
    /// As network.k, for gap.topology.
    pub(super) k: Option<u32>,
}

/// A number (same for every neuron) or a list of one number per neuron.
pub(super) fn per_neuron(key: &str, v: Option<&Value>, default: f64, n: usize) -> Result<Vec<f64>, SpecError> {
    let Some(v) = v else {
        return Ok(vec![default; n]);
    };
    let values = match v {
        Value::Array(items) => items.iter().map(number).collect::<Option<Vec<f64>>>().ok_or_else(|| {
            SpecError::key(
                key,
                Some(v.to_string()),
                "must be a number or a list of numbers, one per neuron",
            )
        })?,
        _ => vec![
            number(v).ok_or_else(|| SpecError::key(
                key,
                Some(v.to_string()),
                "must be a number or a list of numbers, one per neuron"
            ))?;
            n
        ],
    };
    if values.len() != n {
        return Err(SpecError::key(
            key,
            Some(v.to_string()),
            format!(
                "has {} values but network.n = {n}: give one per neuron, or a single number for all",
                values.len()
            ),
        ));
    }
    for x in &values {
        finite(key, *x)?;
    }
    Ok(values)
}

/// The topology of `section` (`network` or `gap`), with its `p` and `k`;
/// a `p` or `k` the topology does not use is an error, not ignored.
pub(super) fn parse_topology(
    section: &str,
    v: &Value,
    n: usize,
    p: Option<f64>,
    k: Option<u32>,
) -> Result<TopologySpec, SpecError> {
    let topology = topology_with(section, v, n, p, k)?;
    let (uses_p, uses_k) = match topology {
        TopologySpec::Random { .. } => (true, false),
        TopologySpec::SmallWorld { .. } => (true, true),
        _ => (false, false),
    };
    // The topology as written, but a matrix only by its kind.
    let shown = match v {
        Value::Table(t) => format!("{{ {} = ... }}", t.keys().next().map_or("", |k| k.as_str())),
        _ => v.to_string(),
    };
    for (name, given, used) in [("p", p.is_some(), uses_p), ("k", k.is_some(), uses_k)] {
        if given && !used {
            return Err(SpecError::key(
                format!("{section}.{name}"),
                None,
                format!(
                    "is not used by {section}.topology = {shown}: p is for \"random\" and \"small-world\", k for \"small-world\"; remove it or change the topology"
                ),
            ));
        }
    }
    Ok(topology)
}

fn topology_with(
    section: &str,
    v: &Value,
    n: usize,
    p: Option<f64>,
    k: Option<u32>,
) -> Result<TopologySpec, SpecError> {
    const ALLOWED: &str =
        "must be \"all-to-all\", \"ring\", \"none\", \"random\" (with p), \"small-world\" (with k, p), \
         { matrix = [[...], ...] } or { matrix_file = \"path.csv\" } (row i = inputs of neuron i)";
    let key = format!("{section}.topology");
    let probability = || -> Result<f64, SpecError> {
        let key = format!("{section}.p");
        let p = p.ok_or_else(|| {
            SpecError::key(
                &key,
                None,
                "is required by this topology: the connection (or rewiring) probability, 0 to 1",
            )
        })?;
        check(&key, p, (0.0..=1.0).contains(&p), "must be between 0 and 1")
    };
    match v {
        Value::String(s) => match s.as_str() {
            "all-to-all" => Ok(TopologySpec::Fixed(Topology::AllToAll)),
            "ring" => Ok(TopologySpec::Fixed(Topology::Ring)),
            "none" => Ok(TopologySpec::Fixed(Topology::None)),
            "random" => Ok(TopologySpec::Random { p: probability()? }),
            "small-world" => {
                let kkey = format!("{section}.k");
                let k = k.ok_or_else(|| {
                    SpecError::key(&kkey, None, "is required by small-world: neighbours per neuron, even")
                })?;
                if k < 2 || k % 2 != 0 || k as usize >= n {
                    return Err(SpecError::key(
                        &kkey,
                        Some(k.to_string()),
                        format!("must be even, >= 2 and < network.n = {n}"),
                    ));
                }
                Ok(TopologySpec::SmallWorld {
                    k: k as usize,
                    p: probability()?,
                })
            }
            _ => Err(SpecError::key(&key, Some(format!("{s:?}")), ALLOWED)),
        },
        Value::Table(t) if t.len() == 1 => {
            let (kind, value) = t.iter().next().expect("one entry");
            let (rows, key) = match (kind.as_str(), value) {
                ("matrix", Value::Array(rows)) => {
                    (rows.iter().map(number_row).collect::<Vec<_>>(), format!("{key}.matrix"))
                }
                ("matrix_file", Value::String(path)) => (
                    read_matrix_file(&format!("{key}.matrix_file"), path)?,
                    format!("{key}.matrix_file"),
                ),
                _ => return Err(SpecError::key(&key, Some(v.to_string()), ALLOWED)),
            };
            let mut matrix = Vec::with_capacity(rows.len());
            for row in rows {
                let row = row.ok_or_else(|| SpecError::key(&key, None, "every row must be a list of numbers"))?;
                for x in &row {
                    check(
                        &key,
                        *x,
                        *x >= 0.0,
                        "entries must be finite and >= 0 (signs come from synapse.v_rev_mv)",
                    )?;
                }
                matrix.push(row);
            }
            if matrix.len() != n || matrix.iter().any(|r| r.len() != n) {
                return Err(SpecError::key(
                    &key,
                    None,
                    format!("must be n x n with network.n = {n}"),
                ));
            }
            Ok(TopologySpec::Fixed(Topology::Matrix(matrix)))
        }
        _ => Err(SpecError::key(&key, Some(v.to_string()), ALLOWED)),
    }
}

fn number_row(row: &Value) -> Option<Vec<f64>> {
    match row {
        Value::Array(r) => r.iter().map(number).collect(),
        _ => None,
    }
}

/// Reads an adjacency matrix from a CSV file (numbers separated by commas
/// or whitespace, one row per line; `#` starts a comment; a UTF-8
/// byte-order mark is skipped). A relative path is taken from the
/// directory spikesweep runs in. The file is read as
/// [`limits::read_text`] reads: a regular file of at most 64 MiB.
fn read_matrix_file(key: &str, path: &str) -> Result<Vec<Option<Vec<f64>>>, SpecError> {
    let text = limits::read_text(Path::new(path)).map_err(|e| {
        SpecError::key(
            key,
            Some(format!("{path:?}")),
            format!("cannot read it: {e} (relative paths start where spikesweep runs)"),
        )
    })?;
    Ok(text
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .map(|l| {
            l.split(|c: char| c == ',' || c.is_whitespace())
                .filter(|x| !x.is_empty())
                .map(|x| x.parse().ok())
                .collect()
        })
        .collect())
}

/// The synapse: the original question's kinetic one, or a double-exponential
/// (rise/decay) one. Keys of the other kind are errors, not silently unused.
pub(super) fn parse_synapse(s: &RawSynapse) -> Result<(KineticSynapse, Option<RiseDecay>), SpecError> {
    let ds = KineticSynapse::default();
    let v_half_mv = finite("synapse.v_half_mv", s.v_half_mv.unwrap_or(ds.v_half_mv))?;
    let k_mv = positive("synapse.k_mv", s.k_mv.unwrap_or(ds.k_mv))?;
    let not_for = |key: &str, given: bool, kind: &str, hint: &str| {
        if given {
            Err(SpecError::key(
                format!("synapse.{key}"),
                None,
                format!("does not apply to kind = \"{kind}\"; {hint}"),
            ))
        } else {
            Ok(())
        }
    };
    match s.kind.as_deref() {
        None | Some("kinetic") => {
            let hint = "it belongs to kind = \"double-exp\"";
            not_for("tau_rise_ms", s.tau_rise_ms.is_some(), "kinetic", hint)?;
            not_for("tau_decay_ms", s.tau_decay_ms.is_some(), "kinetic", hint)?;
            not_for(
                "e_rev_mv",
                s.e_rev_mv.is_some(),
                "kinetic",
                "the kinetic synapse reverses at synapse.v_rev_mv",
            )?;
            let synapse = KineticSynapse {
                v_rev_mv: finite("synapse.v_rev_mv", s.v_rev_mv.unwrap_or(ds.v_rev_mv))?,
                w: positive("synapse.w", s.w.unwrap_or(ds.w))?,
                alpha_per_ms: non_negative("synapse.alpha_per_ms", s.alpha_per_ms.unwrap_or(ds.alpha_per_ms))?,
                beta_per_ms: positive("synapse.beta_per_ms", s.beta_per_ms.unwrap_or(ds.beta_per_ms))?,
                v_half_mv,
                k_mv,
            };
            Ok((synapse, None))
        }
        Some("double-exp") => {
            let hint = "it belongs to kind = \"kinetic\" (the double-exp synapse reverses at synapse.e_rev_mv)";
            not_for("v_rev_mv", s.v_rev_mv.is_some(), "double-exp", hint)?;
            not_for("w", s.w.is_some(), "double-exp", hint)?;
            not_for("alpha_per_ms", s.alpha_per_ms.is_some(), "double-exp", hint)?;
            not_for("beta_per_ms", s.beta_per_ms.is_some(), "double-exp", hint)?;
            let tau_rise_ms = positive("synapse.tau_rise_ms", s.tau_rise_ms.unwrap_or(0.5))?;
            let tau_decay_ms = positive("synapse.tau_decay_ms", s.tau_decay_ms.unwrap_or(5.0))?;
            // The sigmoid T(V) is the kinetic synapse's opening rate with
            // alpha = 1; the current is (e_rev - V) * drive, i.e. w = 1.
            let synapse = KineticSynapse {
                v_rev_mv: finite("synapse.e_rev_mv", s.e_rev_mv.unwrap_or(0.0))?,
                w: 1.0,
                alpha_per_ms: 1.0,
                beta_per_ms: 1.0,
                v_half_mv,
                k_mv,
            };
            Ok((
                synapse,
                Some(RiseDecay {
                    tau_rise_ms,
                    tau_decay_ms,
                }),
            ))
        }
        Some(other) => Err(SpecError::key(
            "synapse.kind",
            Some(format!("{other:?}")),
            "must be \"kinetic\" (the original question's synapse) or \"double-exp\" (rise/decay)",
        )),
    }
}

/// `{ uniform = [lo, hi] }` or `{ normal = [mean, sd] }`.
pub(super) fn drawn_per_neuron(key: &str, t: &toml::Table) -> Result<PerNeuron, SpecError> {
    let bad = || {
        SpecError::key(
            key,
            Some(Value::Table(t.clone()).to_string()),
            "must be a number, a list with one number per neuron, { uniform = [lo, hi] } or { normal = [mean, sd] }",
        )
    };
    let (kind, args) = t.iter().next().filter(|_| t.len() == 1).ok_or_else(bad)?;
    let args: Vec<f64> = match args {
        Value::Array(a) if a.len() == 2 => a.iter().map(number).collect::<Option<Vec<f64>>>().ok_or_else(bad)?,
        _ => return Err(bad()),
    };
    let (a, b) = (finite(key, args[0])?, finite(key, args[1])?);
    let rule = |rule: &str| SpecError::key(key, Some(Value::Table(t.clone()).to_string()), rule);
    match kind.as_str() {
        "uniform" if a <= b => Ok(PerNeuron::Uniform { lo: a, hi: b }),
        "uniform" => Err(rule("uniform = [lo, hi] needs lo <= hi")),
        "normal" if b >= 0.0 => Ok(PerNeuron::Normal { mean: a, sd: b }),
        "normal" => Err(rule("normal = [mean, sd] needs sd >= 0")),
        _ => Err(bad()),
    }
}
