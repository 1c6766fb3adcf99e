//! The `[time]` and `[integrator]` sections: the step, the duration, the
//! analysis window and how the equations are stepped.

use super::{check, positive, schema, SpecError, MAX_STEPS};
use crate::integrate::{Method, RatesMode};
use schemars::JsonSchema;
use serde::Deserialize;
use toml::Value;

#[derive(Deserialize, Default, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTime {
    /// Time step.
    #[schemars(extend("default" = 0.01))]
    pub(super) dt_ms: Option<f64>,
    /// Simulated time (required), a whole number of steps.
    pub(super) duration_ms: Option<f64>,
    /// Start of the analysis window [transient_ms, duration_ms).
    #[schemars(extend("default" = 0.0))]
    pub(super) transient_ms: Option<f64>,
}

#[derive(Deserialize, Default, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RawIntegrator {
    /// Integration method (README "Model and numerics").
    #[schemars(schema_with = "schema::method")]
    pub(super) method: Option<String>,
    /// "table": rates interpolated on a 0.05 mV grid over [-150, 100] mV; "exact": the expressions every step.
    #[schemars(schema_with = "schema::rates")]
    pub(super) rates: Option<String>,
    /// Keys of 0.2, kept to say what replaced them.
    #[schemars(skip)]
    pub(super) tables: Option<Value>,
    #[schemars(skip)]
    pub(super) fast: Option<Value>,
}

/// `(dt_ms, duration_ms, transient_ms, n_steps)`; the duration must be a
/// whole number of steps.
pub(super) fn validate(raw: &RawTime) -> Result<(f64, f64, f64, u64), SpecError> {
    let dt_ms = positive("time.dt_ms", raw.dt_ms.unwrap_or(0.01))?;
    let duration_ms = raw.duration_ms.ok_or_else(|| {
        SpecError::key(
            "time.duration_ms",
            None,
            "is required: the simulated time in ms, e.g. duration_ms = 1000.0",
        )
    })?;
    let duration_ms = positive("time.duration_ms", duration_ms)?;
    let transient_ms = raw.transient_ms.unwrap_or(0.0);
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
    Ok((dt_ms, duration_ms, transient_ms, n_steps as u64))
}

/// The integration method and how rates are evaluated.
pub(super) fn integrator(raw: &RawIntegrator) -> Result<(Method, RatesMode), SpecError> {
    let method = match raw.method.as_deref() {
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

    for (key, given) in [("tables", &raw.tables), ("fast", &raw.fast)] {
        if let Some(v) = given {
            return Err(SpecError::key(
                format!("integrator.{key}"),
                Some(v.to_string()),
                "was removed in spikesweep 0.3: rates are tabulated by default; write integrator.rates = \"table\" (the default) or \"exact\"",
            ));
        }
    }
    let rates_mode = match raw.rates.as_deref() {
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
    Ok((method, rates_mode))
}
