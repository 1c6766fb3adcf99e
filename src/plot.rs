//! Figures from the tables: replicate summaries against a swept parameter,
//! single-trial voltage traces, and (in [`trial`]) a trial's raster and
//! population-rate spectrum. PNG or SVG by the file's extension; the
//! font (DejaVu Sans, assets/fonts) is compiled in, so no system fonts are
//! needed.

use crate::observe::measures;
use crate::output::{read_table, stored_spec, trace_spikes_path};
use crate::plan::Plan;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::Path;

mod trial;
pub use trial::{plot_psd, plot_raster};

const FONT: &[u8] = include_bytes!("../assets/fonts/DejaVuSans.ttf");

fn register_font() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // The bytes are a valid TTF compiled into the binary; a failure
        // here would show as missing text, not as a crash.
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT);
    });
}

/// Image size in pixels, parsed from "WIDTHxHEIGHT".
pub fn parse_size(text: &str) -> Result<(u32, u32), String> {
    let bad = || format!("--size {text:?}: expected WIDTHxHEIGHT in pixels, e.g. 800x600");
    let (w, h) = text.split_once('x').ok_or_else(bad)?;
    let (w, h): (u32, u32) = (
        w.trim().parse().map_err(|_| bad())?,
        h.trim().parse().map_err(|_| bad())?,
    );
    if !(64..=10_000).contains(&w) || !(64..=10_000).contains(&h) {
        return Err(format!("--size {text:?}: each side must be 64 to 10000 pixels"));
    }
    Ok((w, h))
}

/// Axis label of a swept key, with its units. `noise.sigma` has two: white
/// noise's is an intensity (uA/cm^2 ms^0.5), OU noise's its stationary sd
/// (uA/cm^2); `noise_taus_ms` are the run's OU time constants (0: white).
fn key_label(key: &str, noise_taus_ms: &[f64], units: impl Fn(&str) -> Option<String>) -> String {
    let coloured = |tau_ms: &f64| *tau_ms > 0.0;
    let unit = match key {
        "noise.sigma" if noise_taus_ms.iter().all(coloured) => Some("uA/cm^2".to_string()),
        "noise.sigma" if noise_taus_ms.iter().any(coloured) => {
            Some("uA/cm^2 ms^0.5 if white, uA/cm^2 if OU".to_string())
        }
        _ => units(key),
    };
    match unit {
        Some(u) => format!("{key} ({u})"),
        None => key.to_string(),
    }
}

/// Renders `draw` into `out`, PNG or SVG by extension.
fn render(
    out: &Path,
    size: (u32, u32),
    draw: impl Fn(DrawingArea<BitMapBackend, Shift>) -> Result<(), String>,
    draw_svg: impl Fn(DrawingArea<SVGBackend, Shift>) -> Result<(), String>,
) -> Result<(), String> {
    register_font();
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .map_err(|e| format!("{}: cannot create the directory: {e}", parent.display()))?;
    }
    // Open it here: plotters reports a file it cannot write in its debug
    // form, at the end.
    if matches!(out.extension().and_then(|e| e.to_str()), Some("png" | "svg")) {
        std::fs::File::create(out).map_err(|e| format!("{}: cannot write: {e}", out.display()))?;
    }
    match out.extension().and_then(|e| e.to_str()) {
        Some("png") => draw(BitMapBackend::new(out, size).into_drawing_area()),
        Some("svg") => draw_svg(SVGBackend::new(out, size).into_drawing_area()),
        _ => Err(format!("{}: the output must end in .png or .svg", out.display())),
    }
}

/// One line of a summary plot: (x, mean, sem) sorted by x.
struct Line {
    label: String,
    points: Vec<(f64, f64, f64)>,
}

/// `spikesweep plot`: `measure` (mean with sem error bars, from
/// summary.parquet in `dir`) against the swept key `x`, one line per value
/// of the swept key `by`.
pub fn plot_summary(
    dir: &Path,
    x: &str,
    measure: &str,
    by: Option<&str>,
    out: &Path,
    size: (u32, u32),
) -> Result<(), String> {
    let Some(y_label) = measures::find(measure).map(|m| m.label) else {
        return Err(format!("--y {measure}: must be one of {}", measures::column_list()));
    };
    let path = dir.join("summary.parquet");
    let spec = stored_spec(&path)?;
    let axis_keys: Vec<&str> = spec.axes.iter().map(|a| a.key.as_str()).collect();
    if axis_keys.is_empty() {
        return Err(format!(
            "{}: this run sweeps nothing (one parameter point), so there is no x axis; its trials are in trials.parquet, a trial's voltage is `spikesweep trace`",
            dir.display()
        ));
    }
    if by == Some(x) {
        return Err(format!("--by {x}: must be a different swept key than --x"));
    }
    for key in std::iter::once(x).chain(by) {
        if !axis_keys.contains(&key) {
            return Err(format!(
                "{key}: not a swept key of this run; swept: {}",
                axis_keys.join(", ")
            ));
        }
    }
    if let Some(other) = spec
        .axes
        .iter()
        .find(|a| a.key != x && Some(a.key.as_str()) != by && a.values.len() > 1)
    {
        return Err(format!(
            "{} is swept too, so each ({x}{}) has several points: pass it as --by, or plot a run that fixes it",
            other.key,
            by.map(|b| format!(", {b}")).unwrap_or_default()
        ));
    }
    let df = read_table(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let col = |name: &str| -> Result<Vec<Option<f64>>, String> {
        Ok(df
            .column(name)
            .and_then(|c| c.f64().cloned())
            .map_err(|e| format!("{}: column {name}: {e}", path.display()))?
            .iter()
            .collect())
    };
    let xs = col(&x.replace('.', "_"))?;
    let means = col(&format!("{measure}_mean"))?;
    let sems = col(&format!("{measure}_sem"))?;
    let groups = match by {
        Some(b) => col(&b.replace('.', "_"))?,
        None => vec![None; xs.len()],
    };
    let mut lines: Vec<(Option<f64>, Line)> = Vec::new();
    for i in 0..xs.len() {
        let (Some(xv), Some(mean)) = (xs[i], means[i]) else {
            continue;
        };
        let g = groups[i];
        let line = match lines.iter_mut().find(|(k, _)| *k == g) {
            Some((_, l)) => l,
            None => {
                let label = match (by, g) {
                    (Some(b), Some(v)) => format!("{b} = {v}"),
                    _ => measure.to_string(),
                };
                lines.push((g, Line { label, points: vec![] }));
                &mut lines.last_mut().expect("just pushed").1
            }
        };
        line.points.push((xv, mean, sems[i].unwrap_or(0.0)));
    }
    if lines.is_empty() {
        return Err(format!("{}: no point has a value of {measure}", path.display()));
    }
    lines.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(std::cmp::Ordering::Equal));
    let lines: Vec<Line> = lines
        .into_iter()
        .map(|(_, mut l)| {
            l.points.sort_by(|a, b| a.0.total_cmp(&b.0));
            l
        })
        .collect();
    let title = format!("{}: {} vs {}", spec.name, measure, x);
    // The noise's time constants: the swept ones, or the one every point has.
    let noise_taus_ms = match spec.axes.iter().find(|a| a.key == "noise.tau_ms") {
        Some(axis) => axis.values.clone(),
        None => {
            let first: Vec<f64> = spec.axes.iter().map(|a| a.values[0]).collect();
            let config = spec
                .resolve(&first)
                .map_err(|e| format!("{}: stored spec: {e}", path.display()))?;
            vec![config.noise_tau_ms]
        }
    };
    let labels = (key_label(x, &noise_taus_ms, |k| spec.units(k)), y_label.to_string());
    render(
        out,
        size,
        |a| draw_lines(a, &title, &labels, &lines),
        |a| draw_lines(a, &title, &labels, &lines),
    )
}

fn padded(lo: f64, hi: f64) -> (f64, f64) {
    let span = if hi > lo { hi - lo } else { lo.abs().max(1.0) };
    (lo - 0.05 * span, hi + 0.05 * span)
}

/// The legend goes in the corner that covers the fewest data points.
fn emptiest_corner(lines: &[Line], (x0, x1): (f64, f64), (y0, y1): (f64, f64)) -> SeriesLabelPosition {
    let corners = [
        (SeriesLabelPosition::UpperRight, true, true),
        (SeriesLabelPosition::UpperLeft, false, true),
        (SeriesLabelPosition::LowerRight, true, false),
        (SeriesLabelPosition::LowerLeft, false, false),
    ];
    let covered = |right: bool, upper: bool| {
        let points = lines.iter().flat_map(|l| &l.points);
        points
            .filter(|p| {
                let (u, v) = ((p.0 - x0) / (x1 - x0), (p.1 - y0) / (y1 - y0));
                (if right { u > 0.55 } else { u < 0.45 }) && (if upper { v > 0.6 } else { v < 0.4 })
            })
            .count()
    };
    let best = corners
        .into_iter()
        .min_by_key(|&(_, right, upper)| covered(right, upper));
    best.map_or(SeriesLabelPosition::UpperRight, |c| c.0)
}

fn draw_lines<DB: DrawingBackend>(
    area: DrawingArea<DB, Shift>,
    title: &str,
    labels: &(String, String),
    lines: &[Line],
) -> Result<(), String> {
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    area.fill(&WHITE).map_err(e)?;
    let all = lines.iter().flat_map(|l| &l.points);
    let (x0, x1) = all
        .clone()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| (a.min(p.0), b.max(p.0)));
    let (y0, y1) = all.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| {
        (a.min(p.1 - p.2), b.max(p.1 + p.2))
    });
    let (x0, x1) = padded(x0, x1);
    let (y0, y1) = padded(y0, y1);
    let mut chart = ChartBuilder::on(&area)
        .caption(title, ("sans-serif", 22))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(65)
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(e)?;
    chart
        .configure_mesh()
        .x_desc(labels.0.as_str())
        .y_desc(labels.1.as_str())
        .label_style(("sans-serif", 14))
        .axis_desc_style(("sans-serif", 16))
        .draw()
        .map_err(e)?;
    for (i, line) in lines.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        chart
            .draw_series(LineSeries::new(
                line.points.iter().map(|p| (p.0, p.1)),
                color.stroke_width(2),
            ))
            .map_err(e)?
            .label(line.label.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
        chart
            .draw_series(
                line.points
                    .iter()
                    .map(|&(x, m, s)| ErrorBar::new_vertical(x, m - s, m, m + s, color.filled(), 6)),
            )
            .map_err(e)?;
    }
    chart
        .configure_series_labels()
        .label_font(("sans-serif", 14))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(emptiest_corner(lines, (x0, x1), (y0, y1)))
        .draw()
        .map_err(e)?;
    area.present().map_err(e)
}

/// `spikesweep plot-trace`: the voltage of every recorded neuron of a trace
/// file (from `spikesweep trace`), one colour each, with its detected spikes
/// marked at the threshold, over `[from_ms, to_ms]`.
pub fn plot_trace(trace: &Path, out: &Path, size: (u32, u32), (from_ms, to_ms): (f64, f64)) -> Result<(), String> {
    let shown = |t: f64| (from_ms..=to_ms).contains(&t);
    let at = |e: &dyn std::fmt::Display| format!("{}: {e}", trace.display());
    if from_ms > to_ms {
        return Err(format!("--from-ms {from_ms} is after --to-ms {to_ms}"));
    }
    let df = read_table(trace).map_err(|e| at(&e))?;
    if !["t_ms", "neuron", "v_mv"].iter().all(|c| df.column(c).is_ok()) {
        return Err(at(
            &"not a trace (it has no t_ms, neuron, v_mv columns): `spikesweep trace` writes one",
        ));
    }
    let get = |name: &str| df.column(name).map_err(|e| at(&e));
    let t = get("t_ms")?.f64().map_err(|e| at(&e))?.clone();
    let neuron = get("neuron")?.u32().map_err(|e| at(&e))?.clone();
    let v = get("v_mv")?.f64().map_err(|e| at(&e))?.clone();
    let spikes_path = trace_spikes_path(trace);
    let spikes = read_table(&spikes_path).map_err(|e| format!("{}: {e}", spikes_path.display()))?;
    let threshold_mv = trace_threshold(trace)?;

    let (t_first, t_last) = t
        .iter()
        .flatten()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), t| (a.min(t), b.max(t)));
    if !t.iter().flatten().any(shown) {
        return Err(at(&format!(
            "no samples between --from-ms {from_ms} and --to-ms {to_ms}: the trace spans {t_first} to {t_last} ms"
        )));
    }
    let n = neuron.iter().flatten().max().map_or(0, |m| m as usize + 1);
    let mut traces: Vec<Vec<(f64, f64)>> = vec![vec![]; n];
    for ((t, i), v) in t.iter().zip(neuron.iter()).zip(v.iter()) {
        if let (Some(t), Some(i), Some(v)) = (t, i, v) {
            if shown(t) {
                traces[i as usize].push((t, v));
            }
        }
    }
    let mut marks: Vec<Vec<f64>> = vec![vec![]; n];
    let sn = spikes
        .column("neuron")
        .and_then(|c| c.u32().cloned())
        .map_err(|e| at(&e))?;
    let st = spikes
        .column("t_ms")
        .and_then(|c| c.f64().cloned())
        .map_err(|e| at(&e))?;
    for (i, t) in sn.iter().zip(st.iter()) {
        if let (Some(i), Some(t)) = (i, t) {
            if (i as usize) < n && shown(t) {
                marks[i as usize].push(t);
            }
        }
    }
    let title = format!(
        "{} (spikes marked at {threshold_mv} mV)",
        trace.file_name().unwrap_or_default().to_string_lossy()
    );
    render(
        out,
        size,
        |a| draw_trace(a, &title, &traces, &marks, threshold_mv),
        |a| draw_trace(a, &title, &traces, &marks, threshold_mv),
    )
}

/// The spike threshold the traced trial used (it may be swept).
fn trace_threshold(trace: &Path) -> Result<f64, String> {
    let meta = crate::output::read_metadata(trace).map_err(|e| format!("{}: {e}", trace.display()))?;
    let trial: u32 = meta
        .iter()
        .find(|(k, _)| k == "spikesweep.trial")
        .and_then(|(_, v)| v.parse().ok())
        .ok_or_else(|| {
            format!(
                "{}: no spikesweep.trial in its metadata: not written by `spikesweep trace`?",
                trace.display()
            )
        })?;
    let spec = stored_spec(trace)?;
    let plan = Plan::new(spec).map_err(|e| format!("{}: stored spec: {e}", trace.display()))?;
    let point = plan.trial(trial).point as usize;
    Ok(plan.points[point].config.threshold_mv)
}

fn draw_trace<DB: DrawingBackend>(
    area: DrawingArea<DB, Shift>,
    title: &str,
    traces: &[Vec<(f64, f64)>],
    marks: &[Vec<f64>],
    threshold_mv: f64,
) -> Result<(), String> {
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    area.fill(&WHITE).map_err(e)?;
    let all = traces.iter().flatten();
    let (t0, t1) = all
        .clone()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| (a.min(p.0), b.max(p.0)));
    let (v0, v1) = all.fold((threshold_mv, threshold_mv), |(a, b), p| (a.min(p.1), b.max(p.1)));
    if !t0.is_finite() {
        return Err("the trace has no samples".into());
    }
    let (v0, v1) = padded(v0, v1);
    let mut chart = ChartBuilder::on(&area)
        .caption(title, ("sans-serif", 20))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(60)
        .build_cartesian_2d(t0..t1.max(t0 + 1e-9), v0..v1)
        .map_err(e)?;
    chart
        .configure_mesh()
        .x_desc("t (ms)")
        .y_desc("V (mV)")
        .label_style(("sans-serif", 14))
        .axis_desc_style(("sans-serif", 16))
        .draw()
        .map_err(e)?;
    for (i, (trace, spikes)) in traces.iter().zip(marks).enumerate() {
        let color = Palette99::pick(i).to_rgba();
        chart
            .draw_series(LineSeries::new(trace.iter().copied(), color.stroke_width(1)))
            .map_err(e)?
            .label(format!("neuron {i} ({} spikes)", spikes.len()))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
        chart
            .draw_series(
                spikes
                    .iter()
                    .map(|&t| TriangleMarker::new((t, threshold_mv), 6, color.filled())),
            )
            .map_err(e)?;
    }
    chart
        .configure_series_labels()
        .label_font(("sans-serif", 14))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(e)?;
    area.present().map_err(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn units_of(key: &str) -> Option<String> {
        crate::spec::units(key).map(str::to_string)
    }

    #[test]
    fn sigma_is_labelled_with_the_units_of_the_noise_it_scales() {
        assert_eq!(
            key_label("noise.sigma", &[0.0], units_of),
            "noise.sigma (uA/cm^2 ms^0.5)"
        );
        assert_eq!(key_label("noise.sigma", &[2.0, 5.0], units_of), "noise.sigma (uA/cm^2)");
        assert_eq!(
            key_label("noise.sigma", &[0.0, 2.0], units_of),
            "noise.sigma (uA/cm^2 ms^0.5 if white, uA/cm^2 if OU)"
        );
        assert_eq!(key_label("noise.tau_ms", &[0.0, 2.0], units_of), "noise.tau_ms (ms)");
    }
}
