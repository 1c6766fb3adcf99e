//! `spikesweep schema`: the JSON Schema (draft 07) of a spec, so that an
//! editor (taplo, Even Better TOML in VS Code) completes keys and flags
//! mistakes as one types. Generated from what the parser itself reads: the
//! serde mirror `RawSpec` (its doc comments are the descriptions, unknown
//! keys are rejected as there), the name lists the parser accepts, the
//! units of `units`, and the built-in model files for `[neuron]`.

use super::{units, RawSpec, SeedMode, SWEEPABLE_SECTIONS};
use crate::integrate::{Method, RatesMode};
use crate::model::neuron::{ModelDef, BUILT_IN};
use schemars::generate::SchemaSettings;
use schemars::{json_schema, Schema, SchemaGenerator};
use serde_json::{json, Map, Value};

/// The schema as pretty JSON text, as `spikesweep schema` prints it and
/// `spikesweep.schema.json` holds it.
pub fn spec_schema() -> String {
    let generator = SchemaSettings::draft07()
        .with(|s| s.inline_subschemas = true)
        .into_generator();
    let mut schema = generator.into_root_schema_for::<RawSpec>().to_value();
    finish(&mut schema);
    serde_json::to_string_pretty(&schema).expect("a JSON value serialises") + "\n"
}

/// What the derive cannot know: TOML has no null, every key but two has a
/// default (the derive takes a `schema_with` key for a required one; the
/// two are checked in `validate`), and each numeric key's units.
fn finish(root: &mut Value) {
    if let Some(sections) = root["properties"].as_object_mut() {
        for (section, schema) in sections.iter_mut() {
            each_key(section, schema);
        }
    }
    root["required"] = json!(["name", "time"]);
    root["properties"]["time"]["required"] = json!(["duration_ms"]);
}

/// One top-level key or section: no nulls, no required keys, units.
fn each_key(section: &str, schema: &mut Value) {
    drop_null(schema);
    if let Some(object) = schema.as_object_mut() {
        object.remove("required");
    }
    let Some(keys) = schema.get_mut("properties").and_then(Value::as_object_mut) else {
        return;
    };
    if section == "neuron" {
        return; // units come from the model files
    }
    for (key, schema) in keys.iter_mut() {
        drop_null(schema);
        let numeric = matches!(schema["type"].as_str(), Some("number" | "integer"));
        if let (true, Some(unit)) = (numeric, units(&format!("{section}.{key}"))) {
            add_units(schema, unit);
        }
    }
}

/// `Option<f64>` is `["number", "null"]` to schemars; a TOML key is absent instead.
fn drop_null(schema: &mut Value) {
    if let Some(types) = schema.get("type").and_then(Value::as_array) {
        let kept: Vec<Value> = types.iter().filter(|t| *t != "null").cloned().collect();
        schema["type"] = if kept.len() == 1 {
            kept[0].clone()
        } else {
            Value::Array(kept)
        };
    }
}

fn add_units(schema: &mut Value, unit: &str) {
    let text = schema["description"].as_str().unwrap_or("");
    let text = text.strip_suffix('.').unwrap_or(text);
    schema["description"] = json!(format!("{text} [{unit}]."));
    schema["x-units"] = json!(unit);
}

/// A string key whose values are a list of names, the first the default.
fn names(names: Vec<&str>) -> Schema {
    json_schema!({ "type": "string", "enum": names.clone(), "default": names[0] })
}

pub(super) fn seed_mode(_: &mut SchemaGenerator) -> Schema {
    names(SeedMode::ALL.iter().map(|(n, _)| *n).collect())
}

pub(super) fn method(_: &mut SchemaGenerator) -> Schema {
    names(Method::ALL.iter().map(|(n, _)| *n).collect())
}

pub(super) fn rates(_: &mut SchemaGenerator) -> Schema {
    names(RatesMode::ALL.iter().map(|(n, _)| *n).collect())
}

pub(super) fn synapse_kind(_: &mut SchemaGenerator) -> Schema {
    names(vec!["kinetic", "double-exp"])
}

fn numbers() -> Value {
    json!({ "type": "array", "items": { "type": "number" }, "minItems": 1 })
}

/// `{ name = [a, b] }` (a per-neuron distribution) or `{ name = [start, stop, n] }`.
fn call(name: &str, args: &[&str]) -> Value {
    let items: Vec<Value> = args.iter().map(|t| json!({ "type": t })).collect();
    json!({
        "type": "object",
        "properties": { name: { "type": "array", "items": items, "minItems": args.len(), "maxItems": args.len() } },
        "required": [name],
        "additionalProperties": false,
    })
}

pub(super) fn topology(_: &mut SchemaGenerator) -> Schema {
    let file = json!({
        "type": "object",
        "properties": { "matrix_file": { "type": "string", "description": "CSV of numbers, row i = inputs of neuron i" } },
        "required": ["matrix_file"],
        "additionalProperties": false,
    });
    let matrix = json!({
        "type": "object",
        "properties": { "matrix": { "type": "array", "items": numbers() } },
        "required": ["matrix"],
        "additionalProperties": false,
    });
    json_schema!({
        "anyOf": [
            { "type": "string", "enum": ["all-to-all", "ring", "none", "random", "small-world"] },
            matrix,
            file,
        ],
    })
}

pub(super) fn sweep(_: &mut SchemaGenerator) -> Schema {
    let generator = |name| call(name, &["number", "number", "integer"]);
    json_schema!({
        "type": "object",
        "propertyNames": {
            "pattern": format!("^({})\\.[A-Za-z0-9_]+$", SWEEPABLE_SECTIONS.join("|")),
            "not": { "const": "neuron.model" },
        },
        "additionalProperties": {
            "anyOf": [
                { "type": "number" },
                numbers(),
                generator("linspace"),
                generator("logspace"),
            ],
        },
    })
}

/// `[neuron]`: the model, the drive, the initial voltage, and every
/// parameter of the built-in models with each model's default (another
/// model file may name others: any number is allowed).
pub(super) fn neuron(_: &mut SchemaGenerator) -> Schema {
    let models: Vec<ModelDef> = BUILT_IN
        .iter()
        .map(|(name, _)| ModelDef::built_in(name).expect("built-in models parse"))
        .collect();
    let names: Vec<&str> = BUILT_IN.iter().map(|(n, _)| *n).collect();
    let mut keys = Map::new();
    keys.insert(
        "model".into(),
        json!({
            "description": "A built-in model or the path of a model file (.toml), relative to the spec",
            "default": "hh",
            "anyOf": [{ "type": "string", "enum": names }, { "type": "string", "pattern": "\\.toml$" }],
        }),
    );
    let per_neuron = json!([{ "type": "number" }, numbers()]);
    let mut drive = per_neuron.as_array().expect("a list").clone();
    drive.push(call("uniform", &["number", "number"]));
    drive.push(call("normal", &["number", "number"]));
    keys.insert(
        "i_inj".into(),
        json!({
            "description": "Injected current: a number, one value per neuron, or drawn per neuron with the graph seed [uA/cm^2]",
            "x-units": "uA/cm^2", "default": 10.0, "anyOf": drive,
        }),
    );
    keys.insert(
        "v0_mv".into(),
        json!({
            "description": "Initial voltage (number or one per neuron); gates and s start at steady state there [mV]",
            "x-units": "mV", "default": -65.0, "anyOf": per_neuron,
        }),
    );
    for model in &models {
        for p in &model.params {
            let defaults: Vec<String> = models
                .iter()
                .filter_map(|m| m.param(&p.name).map(|k| format!("{} {}", m.name, m.params[k].value)))
                .collect();
            keys.entry(p.name.clone()).or_insert_with(|| {
                json!({
                    "type": "number",
                    "description": format!("{} [{}]; defaults: {}", p.doc, p.units, defaults.join(", ")),
                    "x-units": p.units,
                })
            });
        }
    }
    json_schema!({ "type": "object", "properties": keys, "additionalProperties": { "type": "number" } })
}

#[cfg(test)]
mod tests {
    use super::super::ExperimentSpec;
    use super::*;

    fn schema() -> Value {
        serde_json::from_str(&spec_schema()).expect("the schema is JSON")
    }

    const MINIMAL: &str = "name = \"t\"\n[time]\nduration_ms = 10.0\n";

    /// A spec with `key = value` written into it (a section key or a top-level one).
    fn with(key: &str, value: &Value) -> String {
        let toml_value = match value {
            Value::String(s) => format!("{s:?}"),
            v => v.to_string(),
        };
        match key.split_once('.') {
            Some(("time", field)) => format!("{MINIMAL}{field} = {toml_value}\n"),
            Some((section, field)) => format!("{MINIMAL}[{section}]\n{field} = {toml_value}\n"),
            None => format!("{key} = {toml_value}\n{MINIMAL}"),
        }
    }

    /// Every key with a default in the schema, and each of its names.
    fn keys_with_defaults(schema: &Value) -> Vec<(String, Value, Vec<Value>)> {
        let mut out = Vec::new();
        let mut visit = |key: String, s: &Value| {
            let names = s["enum"].as_array().cloned().unwrap_or_default();
            if let Some(d) = s.get("default") {
                out.push((key, d.clone(), names));
            }
        };
        for (section, s) in schema["properties"].as_object().expect("properties") {
            match s["properties"].as_object() {
                Some(keys) => keys.iter().for_each(|(k, s)| visit(format!("{section}.{k}"), s)),
                None => visit(section.clone(), s),
            }
        }
        out
    }

    #[test]
    fn writing_a_keys_schema_default_changes_nothing() {
        // The defaults in the schema are written by hand beside the fields;
        // this ties each one to the default `validate` applies.
        let schema = schema();
        let base = ExperimentSpec::parse(MINIMAL).expect("minimal spec");
        let keys = keys_with_defaults(&schema);
        assert!(keys.len() >= 25, "{} keys with defaults", keys.len());
        for (key, default, _) in keys {
            if ["synapse.tau_rise_ms", "synapse.tau_decay_ms", "synapse.e_rev_mv"].contains(&key.as_str()) {
                continue; // keys of kind = "double-exp" only: an error with the default kind
            }
            let text = with(&key, &default);
            let spec = ExperimentSpec::parse(&text).unwrap_or_else(|e| panic!("{key} = {default}: {e}"));
            assert_eq!(
                (spec.seed, spec.replicates, spec.seed_mode),
                (base.seed, base.replicates, base.seed_mode),
                "{key}"
            );
            assert_eq!(spec.resolve(&[]).ok(), base.resolve(&[]).ok(), "{key} = {default}");
        }
    }

    #[test]
    fn every_name_the_schema_offers_parses() {
        for (key, _, names) in keys_with_defaults(&schema()) {
            for name in names {
                let text = match (key.as_str(), name.as_str()) {
                    // Kinds and topologies that need keys of their own.
                    (_, Some("double-exp")) => with(&key, &name) + "tau_rise_ms = 0.5\n",
                    ("network.topology", Some("random" | "small-world")) => {
                        format!("{MINIMAL}[network]\nn = 6\ntopology = {name}\np = 0.5\nk = 2\n")
                    }
                    ("gap.topology", Some("random" | "small-world")) => {
                        format!("{MINIMAL}[network]\nn = 6\n[gap]\ntopology = {name}\np = 0.5\nk = 2\n")
                    }
                    _ => with(&key, &name),
                };
                let text = text.replace(
                    "p = 0.5\nk = 2\n",
                    if name == "random" {
                        "p = 0.5\n"
                    } else {
                        "p = 0.5\nk = 2\n"
                    },
                );
                ExperimentSpec::parse(&text).unwrap_or_else(|e| panic!("{key} = {name}: {e}\n{text}"));
            }
        }
    }

    #[test]
    fn the_schema_knows_every_section_and_the_units_of_its_keys() {
        let schema = schema();
        let mut sections: Vec<&str> = schema["properties"]
            .as_object()
            .expect("properties")
            .keys()
            .map(String::as_str)
            .collect();
        sections.sort_unstable();
        let mut expected = [
            "name",
            "seed",
            "replicates",
            "seed_mode",
            "time",
            "integrator",
            "neuron",
            "network",
            "synapse",
            "noise",
            "gap",
            "spikes",
            "measures",
            "sweep",
        ];
        expected.sort_unstable();
        assert_eq!(sections, expected);
        assert_eq!(schema["additionalProperties"], json!(false));
        assert_eq!(schema["properties"]["time"]["properties"]["dt_ms"]["x-units"], "ms");
        assert_eq!(schema["properties"]["gap"]["properties"]["g"]["x-units"], "mS/cm^2");
        assert_eq!(
            schema["properties"]["neuron"]["properties"]["g_na"]["x-units"],
            "mS/cm^2"
        );
        // Keys of 0.2 are not offered: the parser explains what replaced them.
        assert!(schema["properties"]["integrator"]["properties"].get("fast").is_none());
    }
}
