//! The experiment spec: TOML text -> validated [`ExperimentSpec`].
//!
//! Two types, as in ripgrep's args: the serde mirror of the file (`Raw*`,
//! private, unknown keys rejected) and the validated configuration the rest
//! of the program uses ([`ExperimentSpec`], [`TrialConfig`]). Every error
//! names the key path, the value, and what is allowed, e.g.
//! `time.dt_ms = -0.01: must be > 0`.
//!
//! A parameter point is resolved by writing the swept values into a copy of
//! the parsed TOML and validating that copy, so any numeric key can be swept
//! and a swept value passes exactly the checks a written one does.

use crate::graph::{graph_seed, GraphSpec, PerNeuron, TopologySpec};
use crate::integrate::{ChannelNoise, Method, Rates, RatesMode};
use crate::model::neuron::ModelError;
use crate::model::{KineticSynapse, ModelDef, Network, RiseDecay, Topology};
use crate::observe::measures::MeasureParams;
use schemars::JsonSchema;
use serde::Deserialize;
use std::path::Path;
use std::sync::Arc;
use toml::{Table, Value};

pub mod limits;
mod measures;
mod model;
mod schema;
mod sweep;
pub use limits::Limits;
pub use model::ModelLoader;
pub use schema::spec_schema;
pub use sweep::{linspace, logspace};

/// A spec that cannot be run, and why.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SpecError {
    /// The file is not TOML at all.
    #[error("not valid TOML: {0}")]
    Syntax(String),
    /// A key is missing, unknown, mistyped or out of range.
    #[error("{context}{key}{}: {message}", value.as_ref().map(|v| format!(" = {v}")).unwrap_or_default())]
    Key {
        /// Where the error arose, e.g. `at sweep point noise.sigma = 2: `.
        context: String,
        /// Dotted key path, e.g. `time.dt_ms`.
        key: String,
        /// The offending value as written, if there is one.
        value: Option<String>,
        /// What is wrong and what is allowed.
        message: String,
    },
    /// The model file `neuron.model` names is not a valid model.
    #[error("{0}")]
    Model(ModelError),
}

impl SpecError {
    fn key(key: impl Into<String>, value: Option<String>, message: impl Into<String>) -> SpecError {
        SpecError::Key {
            context: String::new(),
            key: key.into(),
            value,
            message: message.into(),
        }
    }

    fn with_context(self, ctx: String) -> SpecError {
        match self {
            SpecError::Key {
                key, value, message, ..
            } => SpecError::Key {
                context: ctx,
                key,
                value,
                message,
            },
            other => other,
        }
    }
}

/// How trial seeds relate across parameter points.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeedMode {
    /// Every trial has its own noise stream.
    Independent,
    /// Replicate r uses the same noise stream at every parameter point
    /// (common random numbers): differences between points are then not
    /// blurred by different noise realisations.
    Common,
}

impl SeedMode {
    /// Every mode with its spec name, the default first.
    pub const ALL: [(&'static str, SeedMode); 2] =
        [("independent", SeedMode::Independent), ("common", SeedMode::Common)];

    /// The name used in specs.
    pub fn name(self) -> &'static str {
        SeedMode::ALL
            .iter()
            .find(|(_, m)| *m == self)
            .map(|(name, _)| *name)
            .expect("every mode is listed")
    }
}

/// One swept key and its values, in the order written.
#[derive(Debug, Clone, PartialEq)]
pub struct Axis {
    /// Dotted key, e.g. `noise.sigma`.
    pub key: String,
    pub values: Vec<f64>,
}

impl Axis {
    /// Column name in the output tables: dots become underscores.
    pub fn column(&self) -> String {
        self.key.replace('.', "_")
    }
}

/// A validated experiment: what to sweep and how to seed it.
#[derive(Debug, Clone)]
pub struct ExperimentSpec {
    pub name: String,
    pub seed: u64,
    pub replicates: u32,
    pub seed_mode: SeedMode,
    /// Swept keys in the order written; the grid is their product.
    pub axes: Vec<Axis>,
    /// The spec file as given, stored in every output table.
    pub text: String,
    /// The neuron model `neuron.model` names (its text is stored in every
    /// output table too).
    pub model: Arc<ModelDef>,
    parsed: Table,
}

/// Everything one trial needs, validated: the model and how to run it.
#[derive(Debug, Clone, PartialEq)]
pub struct TrialConfig {
    pub dt_ms: f64,
    pub duration_ms: f64,
    pub transient_ms: f64,
    /// `duration_ms / dt_ms`, checked to be a whole number.
    pub n_steps: u64,
    pub method: Method,
    pub network: Network,
    /// Initial voltage per neuron; gates and s start at steady state there.
    pub v0_mv: Vec<f64>,
    /// Noise intensity: uA/cm^2 * ms^0.5 for white noise, the stationary sd
    /// in uA/cm^2 for OU noise.
    pub noise_sigma: f64,
    /// OU correlation time (ms); 0 = white noise.
    pub noise_tau_ms: f64,
    /// Channel noise of a membrane patch, if any.
    pub channel_noise: Option<ChannelNoise>,
    /// The rates of the gates and the synapse (`integrator.rates`:
    /// tabulated or exact), shared between points with the same rates.
    pub rates: Arc<Rates>,
    /// Fraction of the noise variance common to all neurons, in [0, 1].
    pub noise_shared: f64,
    /// Whether each step draws the common normal: where `noise_shared > 0`
    /// at any point of the spec, so at its c = 0 points too. Every point
    /// then draws the same normals per step, and common random numbers
    /// (`seed_mode = "common"`) give a sweep over c the same private noise
    /// at every c, 0 included.
    pub noise_draws_common: bool,
    pub threshold_mv: f64,
    pub rearm_mv: f64,
    /// Bins and windows of the per-trial measures.
    pub measures: MeasureParams,
    /// How `network` was drawn; with `graph.resample` each trial draws its
    /// own from its seed (see [`crate::graph`]).
    pub graph: GraphSpec,
}

// ---------------------------------------------------------------- raw mirror

// The doc comments below are the descriptions of `spikesweep schema`
// (see `schema`); units are added there from `units`.

/// An experiment spec: a model, how to drive and couple it, what to sweep.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "spikesweep experiment spec")]
struct RawSpec {
    /// Output directory name results/<name>: letters, digits, -, _ and . only.
    name: String,
    /// Experiment seed: every trial's seed is a hash of (seed, point, replicate).
    #[schemars(extend("default" = DEFAULT_SEED))]
    seed: Option<u64>,
    /// Noise realisations per parameter point.
    #[schemars(extend("default" = 1))]
    replicates: Option<u32>,
    /// "common": replicate r uses the same noise stream at every point (common random numbers).
    #[schemars(schema_with = "schema::seed_mode")]
    seed_mode: Option<String>,
    /// Simulated time and step.
    #[serde(default)]
    time: RawTime,
    /// Integration method and how rates are evaluated.
    #[serde(default)]
    integrator: RawIntegrator,
    /// The neuron model and its parameter values (read as a table: its keys are the model's parameters).
    #[schemars(schema_with = "schema::neuron")]
    neuron: Option<Table>,
    /// Number of neurons and the chemical coupling between them: E = strength * A.
    #[serde(default)]
    network: RawNetwork,
    /// The chemical synapse.
    #[serde(default)]
    synapse: RawSynapse,
    /// Current noise (white or Ornstein-Uhlenbeck, private and shared) and channel noise.
    #[serde(default)]
    noise: RawNoise,
    /// Gap junctions: I_gap_i = g * sum_j A_ij (V_j - V_i).
    #[serde(default)]
    gap: RawGap,
    /// Spike detection.
    #[serde(default)]
    spikes: RawSpikes,
    /// Parameters of the per-trial measures (bins and windows).
    #[serde(default)]
    measures: measures::RawMeasures,
    /// Swept keys ("section.key") and their values; the grid is the product of the axes.
    #[allow(dead_code)] // read from the TOML table directly, kept so it is a known key
    #[schemars(schema_with = "schema::sweep")]
    sweep: Option<Table>,
}

#[derive(Deserialize, Default, JsonSchema)]
#[serde(deny_unknown_fields)]
struct RawTime {
    /// Time step.
    #[schemars(extend("default" = 0.01))]
    dt_ms: Option<f64>,
    /// Simulated time (required), a whole number of steps.
    duration_ms: Option<f64>,
    /// Start of the analysis window [transient_ms, duration_ms).
    #[schemars(extend("default" = 0.0))]
    transient_ms: Option<f64>,
}

#[derive(Deserialize, Default, JsonSchema)]
#[serde(deny_unknown_fields)]
struct RawIntegrator {
    /// Integration method (README "Model and numerics").
    #[schemars(schema_with = "schema::method")]
    method: Option<String>,
    /// "table": rates interpolated on a 0.05 mV grid over [-150, 100] mV; "exact": the expressions every step.
    #[schemars(schema_with = "schema::rates")]
    rates: Option<String>,
    /// Keys of 0.2, kept to say what replaced them.
    #[schemars(skip)]
    tables: Option<Value>,
    #[schemars(skip)]
    fast: Option<Value>,
}

#[derive(Deserialize, Default, JsonSchema)]
#[serde(deny_unknown_fields)]
struct RawNetwork {
    /// Number of neurons.
    #[schemars(extend("default" = 1, "minimum" = 1, "maximum" = MAX_NEURONS))]
    n: Option<u32>,
    /// Who is coupled to whom (A): a name, or an explicit matrix (row i = inputs of neuron i).
    #[schemars(schema_with = "schema::topology", extend("default" = "all-to-all"))]
    topology: Option<Value>,
    /// Multiplies the adjacency: E = strength * A.
    #[schemars(extend("default" = 0.0, "minimum" = 0.0))]
    strength: Option<f64>,
    /// Connection probability ("random") or rewiring probability ("small-world").
    #[schemars(extend("minimum" = 0.0, "maximum" = 1.0))]
    p: Option<f64>,
    /// Neighbours per neuron of the small-world ring lattice (even).
    k: Option<u32>,
    /// Divide each row of E by the neuron's in-degree.
    #[schemars(extend("default" = false))]
    normalize: Option<bool>,
    /// Draw a new random graph and drive per trial instead of one per experiment.
    #[schemars(extend("default" = false))]
    resample: Option<bool>,
}

#[derive(Deserialize, Default, JsonSchema)]
#[serde(deny_unknown_fields)]
struct RawSynapse {
    /// "kinetic" (first-order transmitter kinetics) or "double-exp" (rise/decay).
    #[schemars(schema_with = "schema::synapse_kind")]
    kind: Option<String>,
    /// Kinetic synapse: reversal potential (below rest: inhibitory).
    #[schemars(extend("default" = 20.0))]
    v_rev_mv: Option<f64>,
    /// Kinetic synapse: divisor of the synaptic current.
    #[schemars(extend("default" = 1.0))]
    w: Option<f64>,
    /// Kinetic synapse: opening rate of s.
    #[schemars(extend("default" = 5.0))]
    alpha_per_ms: Option<f64>,
    /// Kinetic synapse: closing rate of s.
    #[schemars(extend("default" = 1.0))]
    beta_per_ms: Option<f64>,
    /// Release sigmoid T(V) = 1 / (1 + exp(-(V - v_half) / k)): half-activation voltage.
    #[schemars(extend("default" = -3.0))]
    v_half_mv: Option<f64>,
    /// Release sigmoid slope.
    #[schemars(extend("default" = 8.0))]
    k_mv: Option<f64>,
    /// Double-exp only: rise time constant.
    #[schemars(extend("default" = 0.5))]
    tau_rise_ms: Option<f64>,
    /// Double-exp only: decay time constant.
    #[schemars(extend("default" = 5.0))]
    tau_decay_ms: Option<f64>,
    /// Double-exp only: reversal potential (0 excitatory, -80 inhibitory).
    #[schemars(extend("default" = 0.0))]
    e_rev_mv: Option<f64>,
}

#[derive(Deserialize, Default, JsonSchema)]
#[serde(deny_unknown_fields)]
struct RawNoise {
    /// White: dV += sigma / c_m * sqrt(dt) * N(0, 1) per step; OU (tau_ms > 0): the current's stationary sd in uA/cm^2.
    #[schemars(extend("default" = 0.0, "minimum" = 0.0))]
    sigma: Option<f64>,
    /// Fraction c of the noise common to all neurons: sqrt(1-c) private + sqrt(c) common.
    #[schemars(extend("default" = 0.0, "minimum" = 0.0, "maximum" = 1.0))]
    shared: Option<f64>,
    /// 0 = white noise; > 0 = Ornstein-Uhlenbeck current with this correlation time.
    #[schemars(extend("default" = 0.0, "minimum" = 0.0))]
    tau_ms: Option<f64>,
    /// Channel noise of a membrane patch this size (0 = off).
    #[schemars(extend("default" = 0.0, "minimum" = 0.0))]
    channel_area_um2: Option<f64>,
    /// Keys of 0.2, kept to say where they moved.
    #[schemars(skip)]
    na_channels_per_um2: Option<f64>,
    #[schemars(skip)]
    k_channels_per_um2: Option<f64>,
}

#[derive(Deserialize, Default, JsonSchema)]
#[serde(deny_unknown_fields)]
struct RawGap {
    /// Gap-junction conductance.
    #[schemars(extend("default" = 0.0, "minimum" = 0.0))]
    g: Option<f64>,
    /// Their own topology, same forms as network.topology [default: network.topology].
    #[schemars(schema_with = "schema::topology")]
    topology: Option<Value>,
    /// As network.p, for gap.topology.
    #[schemars(extend("minimum" = 0.0, "maximum" = 1.0))]
    p: Option<f64>,
    /// As network.k, for gap.topology.
    k: Option<u32>,
}

#[derive(Deserialize, Default, JsonSchema)]
#[serde(deny_unknown_fields)]
struct RawSpikes {
    /// A spike is an upward crossing of this voltage.
    #[schemars(extend("default" = 0.0))]
    threshold_mv: Option<f64>,
    /// A neuron counts its next spike only after V falls below this.
    #[schemars(extend("default" = -20.0))]
    rearm_mv: Option<f64>,
}

/// Units of a numeric spec key outside `[neuron]`, for axis labels
/// (`None`: dimensionless); [`ExperimentSpec::units`] knows the model's too.
pub fn units(key: &str) -> Option<&'static str> {
    let field = key.rsplit('.').next().unwrap_or(key);
    match field {
        "i_inj" => Some("uA/cm^2"),
        "g_na" | "g_k" | "g_l" | "g" => Some("mS/cm^2"),
        "c_m" => Some("uF/cm^2"),
        "sigma" => Some("uA/cm^2 ms^0.5"),
        "n" => Some("neurons"),
        f if f.ends_with("_per_ms") => Some("1/ms"),
        f if f.ends_with("_mv") => Some("mV"),
        f if f.ends_with("_ms") => Some("ms"),
        _ => None,
    }
}

/// Sections whose numeric keys may be swept.
const SWEEPABLE_SECTIONS: [&str; 8] = [
    "time", "neuron", "network", "synapse", "noise", "spikes", "gap", "measures",
];

/// Experiment seed when the spec gives none.
const DEFAULT_SEED: u64 = 1;

/// Most time steps per trial accepted: 1e12 steps of a pair take about a
/// day at the default kernel's speed; more is a unit slip in dt_ms or
/// duration_ms, not an experiment.
const MAX_STEPS: f64 = 1e12;

/// Largest network accepted: the dense coupling of an explicit matrix is n^2.
const MAX_NEURONS: u32 = 100_000;

// ------------------------------------------------------------------ parsing

impl ExperimentSpec {
    /// Parses and validates a spec; a model file it names is read relative
    /// to the current directory. Resolves the first parameter point, so
    /// that a spec whose every point is broken fails here; [`crate::plan`]
    /// resolves the others.
    pub fn parse(text: &str) -> Result<ExperimentSpec, SpecError> {
        ExperimentSpec::parse_in(text, Path::new("."))
    }

    /// [`ExperimentSpec::parse`] with model files read relative to `dir`
    /// (the spec file's directory).
    pub fn parse_in(text: &str, dir: &Path) -> Result<ExperimentSpec, SpecError> {
        ExperimentSpec::parse_with(text, &model::read_relative_to(dir))
    }

    /// A spec stored in a run's tables, with the model text stored beside
    /// it (whatever file `neuron.model` named): a run is reproduced from
    /// its tables alone.
    pub fn parse_stored(text: &str, model_text: &str) -> Result<ExperimentSpec, SpecError> {
        ExperimentSpec::parse_with(text, &|given: &str| {
            Ok((model_text.to_string(), format!("{given} (as stored)")))
        })
    }

    /// [`ExperimentSpec::parse`] with model files read by `read`, and only
    /// the limits trial ids impose ([`Limits::HUGE`]).
    pub fn parse_with(text: &str, read: &ModelLoader) -> Result<ExperimentSpec, SpecError> {
        ExperimentSpec::parse_limited(text, read, &Limits::HUGE)
    }

    /// [`ExperimentSpec::parse_in`] with the size of the sweep checked
    /// against `limits` (what `plan` and `run` do).
    pub fn parse_file_text(text: &str, dir: &Path, limits: &Limits) -> Result<ExperimentSpec, SpecError> {
        ExperimentSpec::parse_limited(text, &model::read_relative_to(dir), limits)
    }

    /// [`ExperimentSpec::parse_with`] with the size of the sweep checked
    /// against `limits` before its values are made. A UTF-8 byte-order
    /// mark is dropped (and is not part of [`ExperimentSpec::text`]).
    pub fn parse_limited(text: &str, read: &ModelLoader, limits: &Limits) -> Result<ExperimentSpec, SpecError> {
        let text = limits::strip_bom(text);
        let parsed: Table = text
            .parse()
            .map_err(|e: toml::de::Error| SpecError::Syntax(e.to_string()))?;
        let raw: RawSpec = deserialize(&parsed)?;
        let model = model::load_model(&parsed, read)?;
        let name = raw.name.trim().to_string();
        if name.is_empty()
            || !name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            || name.starts_with('.')
        {
            return Err(SpecError::key(
                "name",
                Some(format!("{:?}", raw.name)),
                "must be a plain directory name: letters, digits, '-', '_' and '.', not starting with '.'",
            ));
        }
        if name.len() > limits::MAX_NAME_BYTES {
            return Err(SpecError::key(
                "name",
                Some(format!("\"{}...\" ({} bytes)", &name[..40], name.len())),
                format!(
                    "is longer than {} bytes: it names the output directory; shorten it",
                    limits::MAX_NAME_BYTES
                ),
            ));
        }
        let replicates = raw.replicates.unwrap_or(1);
        if replicates == 0 {
            return Err(SpecError::key("replicates", Some("0".into()), "must be >= 1"));
        }
        let seed_mode = match raw.seed_mode.as_deref() {
            None => SeedMode::Independent,
            Some(name) => SeedMode::ALL
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, mode)| *mode)
                .ok_or_else(|| {
                    SpecError::key(
                        "seed_mode",
                        Some(format!("{name:?}")),
                        "must be \"independent\" or \"common\"",
                    )
                })?,
        };
        let axes = match parsed.get("sweep") {
            Some(Value::Table(t)) => sweep::parse_axes(t, replicates, limits)?,
            Some(_) => {
                return Err(SpecError::key(
                    "sweep",
                    None,
                    "must be a table of `\"section.key\" = values`",
                ))
            }
            None => {
                limits.check_grid(&[], replicates)?;
                vec![]
            }
        };
        let spec = ExperimentSpec {
            name,
            seed: raw.seed.unwrap_or(DEFAULT_SEED),
            replicates,
            seed_mode,
            axes,
            text: text.to_string(),
            model,
            parsed,
        };
        let first: Vec<f64> = spec.axes.iter().map(|a| a.values[0]).collect();
        spec.resolve(&first)?;
        let points = spec.axes.iter().map(|a| a.values.len() as u64).product::<u64>();
        if points.saturating_mul(replicates as u64) > u32::MAX as u64 {
            return Err(SpecError::key(
                "sweep",
                None,
                format!("{points} points x {replicates} replicates is more than 2^32 - 1 trials: split the sweep into several specs"),
            ));
        }
        Ok(spec)
    }

    /// Units of a numeric spec key (`None`: dimensionless), the model's
    /// parameters included.
    pub fn units(&self, key: &str) -> Option<String> {
        match key.split_once('.') {
            Some(("neuron", field)) => model::neuron_units(&self.model, field),
            _ => units(key).map(str::to_string),
        }
    }

    /// Number of parameter points: the product of the axis lengths.
    pub fn n_points(&self) -> u64 {
        self.axes.iter().map(|a| a.values.len() as u64).product()
    }

    /// The trial configuration at one parameter point; `values[k]` is the
    /// value of `axes[k]`.
    pub fn resolve(&self, values: &[f64]) -> Result<TrialConfig, SpecError> {
        assert_eq!(values.len(), self.axes.len(), "one value per axis");
        let mut table = self.parsed.clone();
        for (axis, &x) in self.axes.iter().zip(values) {
            let (section, field) = axis.key.split_once('.').expect("checked in parse_axes");
            let sec = table.entry(section).or_insert_with(|| Value::Table(Table::new()));
            let Value::Table(sec) = sec else {
                return Err(SpecError::key(section, None, "must be a table"));
            };
            // Whole numbers go in as integers so that integer keys
            // (network.n) can be swept; float keys accept integers too.
            let v = if x.fract() == 0.0 && x.abs() < 9.0e15 {
                Value::Integer(x as i64)
            } else {
                Value::Float(x)
            };
            sec.insert(field.to_string(), v);
        }
        let context = if self.axes.is_empty() {
            String::new()
        } else {
            let at: Vec<String> = self
                .axes
                .iter()
                .zip(values)
                .map(|(a, x)| format!("{} = {x}", a.key))
                .collect();
            format!("at sweep point {}: ", at.join(", "))
        };
        let mut config = deserialize(&table)
            .and_then(|raw: RawSpec| validate(&raw, &self.model))
            .map_err(|e| e.with_context(context))?;
        config.noise_draws_common |= self
            .axes
            .iter()
            .any(|a| a.key == "noise.shared" && a.values.iter().any(|&c| c > 0.0));
        Ok(config)
    }
}

fn deserialize<T: for<'de> Deserialize<'de>>(table: &Table) -> Result<T, SpecError> {
    serde_path_to_error::deserialize(Value::Table(table.clone())).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        // toml's messages can carry a trailing newline; keep one line.
        let mut message = inner.trim().replace('\n', " ");
        // A list where one number belongs is most likely meant as a sweep
        // (sweeps take numbers only).
        let sweepable = path
            .split_once('.')
            .is_some_and(|(s, _)| SWEEPABLE_SECTIONS.contains(&s));
        let number = ["f64", "u32", "u64"]
            .iter()
            .any(|t| message.starts_with(&format!("invalid type: sequence, expected {t}")));
        if sweepable && number {
            message += &format!("; to sweep it, list its values under [sweep]: \"{path}\" = [...]");
        }
        SpecError::key(if path == "." { "spec".to_string() } else { path }, None, message)
    })
}

fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Integer(i) => Some(*i as f64),
        Value::Float(x) => Some(*x),
        _ => None,
    }
}

// --------------------------------------------------------------- validation

fn check(key: &str, x: f64, ok: bool, allowed: &str) -> Result<f64, SpecError> {
    if ok && x.is_finite() {
        Ok(x)
    } else {
        Err(SpecError::key(key, Some(x.to_string()), allowed))
    }
}

fn positive(key: &str, x: f64) -> Result<f64, SpecError> {
    check(key, x, x > 0.0, "must be > 0")
}

fn non_negative(key: &str, x: f64) -> Result<f64, SpecError> {
    check(key, x, x >= 0.0, "must be >= 0")
}

fn finite(key: &str, x: f64) -> Result<f64, SpecError> {
    check(key, x, true, "must be a finite number")
}

/// A number (same for every neuron) or a list of one number per neuron.
fn per_neuron(key: &str, v: Option<&Value>, default: f64, n: usize) -> Result<Vec<f64>, SpecError> {
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
fn parse_topology(
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
fn parse_synapse(s: &RawSynapse) -> Result<(KineticSynapse, Option<RiseDecay>), SpecError> {
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
fn drawn_per_neuron(key: &str, t: &toml::Table) -> Result<PerNeuron, SpecError> {
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

fn validate(raw: &RawSpec, def: &Arc<ModelDef>) -> Result<TrialConfig, SpecError> {
    // time
    let dt_ms = positive("time.dt_ms", raw.time.dt_ms.unwrap_or(0.01))?;
    let duration_ms = raw.time.duration_ms.ok_or_else(|| {
        SpecError::key(
            "time.duration_ms",
            None,
            "is required: the simulated time in ms, e.g. duration_ms = 1000.0",
        )
    })?;
    let duration_ms = positive("time.duration_ms", duration_ms)?;
    let transient_ms = raw.time.transient_ms.unwrap_or(0.0);
    check(
        "time.transient_ms",
        transient_ms,
        (0.0..duration_ms).contains(&transient_ms),
        &format!("must be >= 0 and < time.duration_ms = {duration_ms}"),
    )?;
    let steps = duration_ms / dt_ms;
    let n_steps = steps.round();
    if n_steps > MAX_STEPS {
        return Err(SpecError::key(
            "time.dt_ms",
            // 1e-300, not 300 digits.
            Some(if dt_ms < 1e-4 { format!("{dt_ms:e}") } else { dt_ms.to_string() }),
            format!(
                "gives {steps:.3e} steps of time.duration_ms = {duration_ms}, more than {MAX_STEPS:.0e} (a day or more per trial): raise time.dt_ms or shorten time.duration_ms"
            ),
        ));
    }
    if (steps - n_steps).abs() > 1e-6 * n_steps.max(1.0) || n_steps < 1.0 {
        return Err(SpecError::key(
            "time.duration_ms",
            Some(duration_ms.to_string()),
            format!("must be a whole number of steps of time.dt_ms = {dt_ms} (it is {steps} steps)"),
        ));
    }

    let method = match raw.integrator.method.as_deref() {
        None => Method::ALL[0].1,
        Some(name) => Method::from_name(name).ok_or_else(|| {
            let names: Vec<String> = Method::ALL.iter().map(|(n, _)| format!("{n:?}")).collect();
            SpecError::key(
                "integrator.method",
                Some(format!("{name:?}")),
                format!("must be one of {}", names.join(", ")),
            )
        })?,
    };

    for (key, given) in [("tables", &raw.integrator.tables), ("fast", &raw.integrator.fast)] {
        if let Some(v) = given {
            return Err(SpecError::key(
                format!("integrator.{key}"),
                Some(v.to_string()),
                "was removed in spikesweep 0.3: rates are tabulated by default; write integrator.rates = \"table\" (the default) or \"exact\"",
            ));
        }
    }
    let rates_mode = match raw.integrator.rates.as_deref() {
        None => RatesMode::Table,
        Some(name) => RatesMode::ALL
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, m)| *m)
            .ok_or_else(|| {
                SpecError::key(
                    "integrator.rates",
                    Some(format!("{name:?}")),
                    "must be \"table\" (rates interpolated on a 0.05 mV grid, the default) or \"exact\" (the expressions at every step)",
                )
            })?,
    };

    // network size first: per-neuron lists are checked against it
    let n = raw.network.n.unwrap_or(1);
    if n == 0 || n > MAX_NEURONS {
        return Err(SpecError::key(
            "network.n",
            Some(n.to_string()),
            format!("must be between 1 and {MAX_NEURONS}"),
        ));
    }
    let n = n as usize;

    let nr = raw.neuron.as_ref();
    let cell = model::cell(nr, def)?;
    let i_inj = match nr.and_then(|t| t.get("i_inj")) {
        Some(Value::Table(t)) => drawn_per_neuron("neuron.i_inj", t)?,
        v => PerNeuron::Values(per_neuron("neuron.i_inj", v, 10.0, n)?),
    };
    let v0_mv = per_neuron("neuron.v0_mv", nr.and_then(|t| t.get("v0_mv")), -65.0, n)?;

    let net = &raw.network;
    let topology = match &net.topology {
        Some(v) => parse_topology("network", v, n, net.p, net.k)?,
        None => parse_topology("network", &Value::String("all-to-all".into()), n, net.p, net.k)?,
    };
    // Gap junctions sit on the network's topology unless given their own.
    let gap_g = non_negative("gap.g", raw.gap.g.unwrap_or(0.0))?;
    let gap_topology = match &raw.gap.topology {
        Some(v) => parse_topology("gap", v, n, raw.gap.p, raw.gap.k)?,
        None if raw.gap.p.is_some() || raw.gap.k.is_some() => {
            return Err(SpecError::key(
                if raw.gap.p.is_some() { "gap.p" } else { "gap.k" },
                None,
                "is used only with gap.topology (without it, gap junctions sit on network.topology)",
            ))
        }
        None => topology.clone(),
    };
    let strength = raw.network.strength.unwrap_or(0.0);
    check(
        "network.strength",
        strength,
        strength >= 0.0,
        "must be >= 0 (an inhibitory synapse is a synapse.v_rev_mv below rest)",
    )?;

    let (synapse, rise_decay) = parse_synapse(&raw.synapse)?;

    let noise_sigma = non_negative("noise.sigma", raw.noise.sigma.unwrap_or(0.0))?;
    let noise_shared = raw.noise.shared.unwrap_or(0.0);
    check(
        "noise.shared",
        noise_shared,
        (0.0..=1.0).contains(&noise_shared),
        "must be between 0 and 1",
    )?;
    let noise_tau_ms = non_negative("noise.tau_ms", raw.noise.tau_ms.unwrap_or(0.0))?;
    for (key, given) in [
        ("na_channels_per_um2", raw.noise.na_channels_per_um2),
        ("k_channels_per_um2", raw.noise.k_channels_per_um2),
    ] {
        if let Some(x) = given {
            return Err(SpecError::key(
                format!("noise.{key}"),
                Some(x.to_string()),
                format!("moved in spikesweep 0.3: channel densities are parameters of the model; write neuron.{key}"),
            ));
        }
    }
    let area = non_negative("noise.channel_area_um2", raw.noise.channel_area_um2.unwrap_or(0.0))?;
    let channel_noise = (area > 0.0).then(|| model::channel_noise(&cell, area));

    let threshold_mv = finite("spikes.threshold_mv", raw.spikes.threshold_mv.unwrap_or(0.0))?;
    let rearm_mv = raw.spikes.rearm_mv.unwrap_or(-20.0);
    check(
        "spikes.rearm_mv",
        rearm_mv,
        rearm_mv < threshold_mv,
        &format!("must be below spikes.threshold_mv = {threshold_mv}"),
    )?;

    let measures = measures::validate(&raw.measures)?;
    let rates = model::rates(&cell, &synapse, rise_decay, method, dt_ms, rates_mode)?;
    let graph = GraphSpec {
        n,
        topology,
        strength,
        normalize: net.normalize.unwrap_or(false),
        gap_topology,
        gap_g,
        i_inj,
        resample: net.resample.unwrap_or(false),
    };
    let realized = graph.realize(graph_seed(raw.seed.unwrap_or(DEFAULT_SEED)));
    Ok(TrialConfig {
        dt_ms,
        duration_ms,
        transient_ms,
        n_steps: n_steps as u64,
        method,
        network: Network {
            cell,
            i_inj: realized.i_inj,
            synapse,
            coupling: realized.coupling,
            gap: realized.gap,
            rise_decay,
        },
        graph,
        v0_mv,
        noise_sigma,
        noise_shared,
        noise_draws_common: noise_shared > 0.0,
        noise_tau_ms,
        channel_noise,
        rates,
        threshold_mv,
        rearm_mv,
        measures,
    })
}

#[cfg(test)]
mod tests;
