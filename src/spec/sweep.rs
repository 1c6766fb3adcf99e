//! The `[sweep]` table: swept keys and their values (lists, `linspace`,
//! `logspace`). The size of the grid the axes span, and of the trials it
//! gives with `replicates`, is checked against [`Limits`] from the axes'
//! lengths alone, before a generator makes its values: an axis of 2^63 - 1
//! values is an error, not an allocation.

use super::limits::{first_repeat, Limits};
use super::{number, Axis, SpecError, SWEEPABLE_SECTIONS};
use toml::{Table, Value};

/// The axes of `[sweep]` in the order written.
pub(super) fn parse_axes(sweep: &Table, replicates: u32, limits: &Limits) -> Result<Vec<Axis>, SpecError> {
    let mut forms = Vec::with_capacity(sweep.len());
    for (key, spec) in sweep {
        let path = format!("sweep.{key:?}");
        let (section, field) = key.split_once('.').unwrap_or(("", ""));
        // Known keys that are not numbers of the model: say so, rather
        // than how a swept key is spelled.
        if section == "integrator"
            || ["seed", "replicates", "seed_mode", "name", "neuron.model"].contains(&key.as_str())
        {
            return Err(SpecError::key(
                path,
                None,
                format!(
                    "{key} cannot be swept: sweeps vary the model's numbers (sections {}); run one spec per value instead",
                    SWEEPABLE_SECTIONS.join(", ")
                ),
            ));
        }
        if !SWEEPABLE_SECTIONS.contains(&section) || field.is_empty() || field.contains('.') {
            return Err(SpecError::key(
                path,
                None,
                format!(
                    "a swept key is \"section.key\" with section one of {}, e.g. \"noise.sigma\"",
                    SWEEPABLE_SECTIONS.join(", ")
                ),
            ));
        }
        let form = axis_form(&path, spec)?;
        forms.push((key, path, spec, form));
    }
    let lengths: Vec<(&str, u64)> = forms.iter().map(|(key, _, _, f)| (key.as_str(), f.len())).collect();
    limits.check_grid(&lengths, replicates)?;
    let mut axes = Vec::with_capacity(forms.len());
    for (key, path, spec, form) in forms {
        let values = form.values();
        if let Some(x) = values.iter().find(|x| !x.is_finite()) {
            return Err(bad(&path, spec, &format!("value {x} is not finite")));
        }
        if let Some(x) = first_repeat(&values) {
            return Err(SpecError::key(
                path,
                Some(shown(spec)),
                format!("{x} appears twice: each value is one point (more samples of a point are replicates)"),
            ));
        }
        axes.push(Axis {
            key: key.clone(),
            values,
        });
    }
    Ok(axes)
}

/// An axis as written: its values, or the generator that makes them.
enum Form {
    Values(Vec<f64>),
    Linspace(f64, f64, u64),
    Logspace(f64, f64, u64),
}

impl Form {
    fn len(&self) -> u64 {
        match self {
            Form::Values(v) => v.len() as u64,
            Form::Linspace(.., n) | Form::Logspace(.., n) => *n,
        }
    }

    /// The values; only called once the length has passed the limits.
    fn values(self) -> Vec<f64> {
        match self {
            Form::Values(v) => v,
            Form::Linspace(a, b, n) => linspace(a, b, n as usize),
            Form::Logspace(a, b, n) => logspace(a, b, n as usize),
        }
    }
}

/// A value as written, shortened: a list of a million values is not
/// repeated in full in an error message.
fn shown(spec: &Value) -> String {
    const MAX: usize = 120;
    let text = spec.to_string();
    if text.len() <= MAX {
        return text;
    }
    let cut = (0..=MAX).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0);
    format!("{} ... ({} bytes)", &text[..cut], text.len())
}

fn bad(path: &str, spec: &Value, msg: &str) -> SpecError {
    SpecError::key(
        path,
        Some(shown(spec)),
        format!(
            "{msg}; write a list [a, b, ...], {{ linspace = [start, stop, n] }} or {{ logspace = [start, stop, n] }}"
        ),
    )
}

fn axis_form(path: &str, spec: &Value) -> Result<Form, SpecError> {
    let bad = |msg: &str| bad(path, spec, msg);
    let form = match spec {
        Value::Integer(_) | Value::Float(_) => Form::Values(vec![number(spec).expect("numeric")]),
        Value::Array(items) => Form::Values(
            items
                .iter()
                .map(number)
                .collect::<Option<Vec<f64>>>()
                .ok_or_else(|| bad("every value must be a number"))?,
        ),
        Value::Table(t) if t.len() == 1 => {
            let (kind, args) = t.iter().next().expect("one entry");
            let args = match args {
                Value::Array(a) if a.len() == 3 => a,
                _ => return Err(bad(&format!("{kind} takes three numbers"))),
            };
            let (start, stop) = match (number(&args[0]), number(&args[1])) {
                (Some(a), Some(b)) => (a, b),
                _ => return Err(bad("start and stop must be numbers")),
            };
            let n = match &args[2] {
                Value::Integer(n) if *n >= 1 => *n as u64,
                _ => return Err(bad("n must be a whole number >= 1")),
            };
            match kind.as_str() {
                "linspace" => Form::Linspace(start, stop, n),
                "logspace" => {
                    if !(start > 0.0 && stop > 0.0) {
                        return Err(bad(
                            "logspace needs start > 0 and stop > 0 (it takes values, not exponents)",
                        ));
                    }
                    Form::Logspace(start, stop, n)
                }
                _ => return Err(bad(&format!("unknown generator `{kind}`"))),
            }
        }
        _ => return Err(bad("not a list of values")),
    };
    if form.len() == 0 {
        return Err(bad("needs at least one value"));
    }
    Ok(form)
}

/// `n` evenly spaced values from `start` to `stop` inclusive (numpy's linspace).
pub fn linspace(start: f64, stop: f64, n: usize) -> Vec<f64> {
    if n == 1 {
        return vec![start];
    }
    let step = (stop - start) / (n - 1) as f64;
    // The end point is set exactly rather than accumulated.
    (0..n)
        .map(|k| if k == n - 1 { stop } else { start + step * k as f64 })
        .collect()
}

/// `n` geometrically spaced values from `start` to `stop` inclusive
/// (numpy's geomspace: values, not exponents).
pub fn logspace(start: f64, stop: f64, n: usize) -> Vec<f64> {
    linspace(start.ln(), stop.ln(), n)
        .into_iter()
        .enumerate()
        .map(|(k, x)| {
            if k == 0 {
                start
            } else if k == n - 1 {
                stop
            } else {
                x.exp()
            }
        })
        .collect()
}
