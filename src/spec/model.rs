//! The spec's neuron: which model (`neuron.model`), its parameter values
//! (`neuron.<parameter>`), and the rates a point integrates with.

use super::{finite, number, SpecError};
use crate::integrate::{spans, ChannelNoise, Method, Rates, RatesMode};
use crate::model::neuron::{Kinetics, ModelDef};
use crate::model::{Cell, KineticSynapse, RiseDecay};
use std::path::Path;
use std::sync::Arc;
use toml::{Table, Value};

/// The model's file text and how it was named, given `neuron.model`.
pub type ModelLoader<'a> = dyn Fn(&str) -> Result<(String, String), String> + 'a;

/// Loads `neuron.model` (default `hh`): a built-in name, or a file path
/// read by `read` (relative to the spec's directory).
pub fn load_model(parsed: &Table, read: &ModelLoader) -> Result<Arc<ModelDef>, SpecError> {
    let given = match parsed.get("neuron").and_then(|n| n.get("model")) {
        None => "hh".to_string(),
        Some(Value::String(s)) => s.clone(),
        Some(v) => return Err(SpecError::key("neuron.model", Some(v.to_string()), model_hint())),
    };
    if let Some(model) = ModelDef::built_in(&given) {
        return Ok(Arc::new(model));
    }
    if !given.ends_with(".toml") {
        return Err(SpecError::key("neuron.model", Some(format!("{given:?}")), model_hint()));
    }
    let (text, source) = read(&given).map_err(|e| {
        SpecError::key(
            "neuron.model",
            Some(format!("{given:?}")),
            format!("cannot read the model file: {e}"),
        )
    })?;
    ModelDef::parse(&text, &source).map(Arc::new).map_err(SpecError::Model)
}

fn model_hint() -> String {
    let names: Vec<String> = crate::model::neuron::BUILT_IN
        .iter()
        .map(|(n, _)| format!("{n:?}"))
        .collect();
    format!(
        "must be a built-in model ({}) or the path of a model file ending in .toml, relative to the spec",
        names.join(", ")
    )
}

/// Reads a model file relative to `dir` (the spec's directory).
pub fn read_relative_to(dir: &Path) -> impl Fn(&str) -> Result<(String, String), String> + '_ {
    move |given: &str| {
        let path = dir.join(given);
        super::limits::read_text(&path)
            .map(|text| (text, path.display().to_string()))
            .map_err(|e| format!("{}: {e}", path.display()))
    }
}

/// The `[neuron]` keys that are not parameters of the model.
const OWN_KEYS: [&str; 3] = ["model", "i_inj", "v0_mv"];

/// The model with the spec's parameter values: each `neuron.<name>`
/// overrides the model file's default. Unknown keys name the parameters.
pub fn cell(neuron: Option<&Table>, model: &Arc<ModelDef>) -> Result<Cell, SpecError> {
    let mut cell = Cell::defaults(Arc::clone(model));
    for (key, v) in neuron.into_iter().flatten() {
        if OWN_KEYS.contains(&key.as_str()) {
            continue;
        }
        let path = format!("neuron.{key}");
        let Some(k) = model.param(key) else {
            let names: Vec<&str> = model.params.iter().map(|p| p.name.as_str()).collect();
            return Err(SpecError::key(
                path,
                None,
                format!(
                    "is not a key of [neuron] nor a parameter of model {:?}; the keys are model, i_inj, v0_mv and its parameters: {}",
                    model.name,
                    names.join(", ")
                ),
            ));
        };
        let x = number(v).ok_or_else(|| {
            let mut message = format!("must be a number ({})", model.params[k].units);
            if matches!(v, Value::Array(_)) {
                message += &format!("; to sweep it, list its values under [sweep]: \"{path}\" = [...]");
            }
            SpecError::key(&path, Some(v.to_string()), message)
        })?;
        cell.values[k] = finite(&path, x)?;
    }
    model.check_params(&cell.values).map_err(|(key, value, message)| {
        // check_params names `parameters.<name>`: in a spec that is `neuron.<name>`.
        let key = key.replace("parameters.", "neuron.");
        SpecError::key(key, value, message)
    })?;
    Ok(cell)
}

/// The rates of one point: the cell's gates and the synapse's, for the
/// method's spans, tabulated or exact; checked on the model's voltage
/// range (a swept parameter can make a rate negative). Shared between
/// points that compile to the same expressions.
pub fn rates(
    cell: &Cell,
    synapse: &KineticSynapse,
    rise_decay: Option<RiseDecay>,
    method: Method,
    dt_ms: f64,
    mode: RatesMode,
) -> Result<Arc<Rates>, SpecError> {
    let gates = cell.kinetics();
    cell.model.check_rates(&gates).map_err(|(key, value, message)| {
        let given = cell
            .model
            .rate_params()
            .iter()
            .map(|&k| cell.model.params[k].name.clone())
            .collect::<Vec<_>>();
        SpecError::key(
            "neuron",
            None,
            format!(
                "with these values of its parameters ({}), model {:?} breaks a rule at {key} = {}: {message}",
                given.join(", "),
                cell.model.name,
                value.unwrap_or_default()
            ),
        )
    })?;
    let mut vars: Vec<Kinetics> = gates;
    vars.push(match rise_decay {
        None => synapse.gate(),
        Some(rd) => rd.gate(synapse),
    });
    let spans = spans(method, dt_ms);
    let key = format!("{vars:?}|{spans:?}|{mode:?}");
    Ok(crate::integrate::rates::shared(key, || Rates::new(&vars, spans, mode)))
}

/// Channel noise of a patch of `area_um2`: each gate of a current with a
/// channel density gets `density * area` channels (the first such current
/// that lists it); instantaneous gates get none.
pub fn channel_noise(cell: &Cell, area_um2: f64) -> ChannelNoise {
    let model = &cell.model;
    let counts = (0..model.gates.len())
        .map(|g| {
            if model.gates[g].instantaneous {
                return None;
            }
            model
                .currents
                .iter()
                .find(|c| c.channels_per_um2.is_some() && c.gates.iter().any(|(k, _)| *k == g))
                .and_then(|c| c.channels_per_um2)
                .map(|d| cell.values[d] * area_um2)
        })
        .collect();
    ChannelNoise { counts }
}

/// Units of a `neuron.*` key of `model` (`None` for a key it does not have).
pub fn neuron_units(model: &ModelDef, field: &str) -> Option<String> {
    match field {
        "i_inj" => Some("uA/cm^2".into()),
        "v0_mv" => Some("mV".into()),
        _ => model.param(field).map(|k| model.params[k].units.clone()),
    }
}
