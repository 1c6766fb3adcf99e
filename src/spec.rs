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

use crate::graph::{graph_seed, GraphSpec, PerNeuron};
use crate::integrate::{ChannelNoise, Method, Rates};
use crate::model::neuron::ModelError;
use crate::model::{Cell, ModelDef, Network};
use crate::observe::measures::MeasureParams;
use schemars::JsonSchema;
use serde::Deserialize;
use std::path::Path;
use std::sync::Arc;
use toml::{Table, Value};

pub mod limits;
mod measures;
mod model;
mod network;
mod schema;
mod sweep;
mod time;
pub use limits::Limits;
pub use model::ModelLoader;
use network::{drawn_per_neuron, parse_synapse, parse_topology, per_neuron, RawGap, RawNetwork, RawSynapse};
pub use schema::spec_schema;
pub use sweep::{linspace, logspace};
use time::{RawIntegrator, RawTime};

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

fn validate(raw: &RawSpec, def: &Arc<ModelDef>) -> Result<TrialConfig, SpecError> {
    let (dt_ms, duration_ms, transient_ms, n_steps) = time::validate(&raw.time)?;
    let (method, rates_mode) = time::integrator(&raw.integrator)?;

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

    let (noise_sigma, noise_shared, noise_tau_ms, channel_noise) = noise(&raw.noise, &cell)?;

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
        n_steps,
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

/// `[noise]`: (sigma, shared, tau_ms, channel noise of the cell's patch).
fn noise(raw: &RawNoise, cell: &Cell) -> Result<(f64, f64, f64, Option<ChannelNoise>), SpecError> {
    let noise_sigma = non_negative("noise.sigma", raw.sigma.unwrap_or(0.0))?;
    let noise_shared = raw.shared.unwrap_or(0.0);
    check(
        "noise.shared",
        noise_shared,
        (0.0..=1.0).contains(&noise_shared),
        "must be between 0 and 1",
    )?;
    let noise_tau_ms = non_negative("noise.tau_ms", raw.tau_ms.unwrap_or(0.0))?;
    for (key, given) in [
        ("na_channels_per_um2", raw.na_channels_per_um2),
        ("k_channels_per_um2", raw.k_channels_per_um2),
    ] {
        if let Some(x) = given {
            return Err(SpecError::key(
                format!("noise.{key}"),
                Some(x.to_string()),
                format!("moved in spikesweep 0.3: channel densities are parameters of the model; write neuron.{key}"),
            ));
        }
    }
    let area = non_negative("noise.channel_area_um2", raw.channel_area_um2.unwrap_or(0.0))?;
    let channel_noise = (area > 0.0).then(|| model::channel_noise(cell, area));
    Ok((noise_sigma, noise_shared, noise_tau_ms, channel_noise))
}

#[cfg(test)]
mod tests;
