//! Figures of one trial of a run, from its `spikes.parquet`: the spike
//! raster with the population rate below it, and the population-rate
//! spectrum with its peak (recomputed by the registry's own function).

use super::{padded, render};
use crate::observe::in_window;
use crate::observe::spectrum::{population_psd, spectral_peak};
use crate::output::{read_table, stored_spec};
use crate::plan::Plan;
use crate::spec::TrialConfig;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::Path;

/// One trial of a run directory: its configuration and spike trains.
struct TrialSpikes {
    config: TrialConfig,
    trains: Vec<Vec<f64>>,
}

fn load_trial(dir: &Path, trial: u32) -> Result<TrialSpikes, String> {
    let path = dir.join("spikes.parquet");
    let at = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
    let spec = stored_spec(&path)?;
    let plan = Plan::new(spec).map_err(|e| at(&format!("stored spec: {e}")))?;
    if trial >= plan.n_trials() {
        return Err(format!(
            "--trial {trial}: this run has trials 0 to {}",
            plan.n_trials() - 1
        ));
    }
    let config = plan.points[plan.trial(trial).point as usize].config.clone();
    let df = read_table(&path).map_err(|e| at(&e))?;
    let column = |name: &str| df.column(name).map_err(|e| at(&e));
    let ids = column("trial")?.u32().map_err(|e| at(&e))?.clone();
    let neurons = column("neuron")?.u32().map_err(|e| at(&e))?.clone();
    let times = column("t_ms")?.f64().map_err(|e| at(&e))?.clone();
    let mut trains = vec![vec![]; config.network.n()];
    for ((id, i), t) in ids.iter().zip(neurons.iter()).zip(times.iter()) {
        if let (Some(id), Some(i), Some(t)) = (id, i, t) {
            if id == trial && (i as usize) < trains.len() {
                trains[i as usize].push(t);
            }
        }
    }
    Ok(TrialSpikes { config, trains })
}

/// `spikesweep plot-raster`: every spike of a trial over `[from_ms, to_ms]`
/// (the whole trial by default), the population rate in bins of
/// `measures.bin_ms` below it.
pub fn plot_raster(
    dir: &Path,
    trial: u32,
    out: &Path,
    size: (u32, u32),
    (from_ms, to_ms): (f64, f64),
) -> Result<(), String> {
    let t = load_trial(dir, trial)?;
    let from_ms = from_ms.max(0.0);
    let to_ms = to_ms.min(t.config.duration_ms);
    if from_ms >= to_ms {
        return Err(format!(
            "--from-ms {from_ms} to --to-ms {to_ms}: an empty stretch of a {} ms trial",
            t.config.duration_ms
        ));
    }
    let bin_ms = t.config.measures.bin_ms;
    let n = t.trains.len();
    let bins = ((to_ms - from_ms) / bin_ms).ceil().max(1.0) as usize;
    let mut rate_hz = vec![0.0; bins];
    let mut dots = vec![];
    for (i, train) in t.trains.iter().enumerate() {
        for &s in train.iter().filter(|&&s| (from_ms..=to_ms).contains(&s)) {
            dots.push((s, i as f64));
            let k = (((s - from_ms) / bin_ms) as usize).min(bins - 1);
            rate_hz[k] += 1000.0 / (bin_ms * n as f64);
        }
    }
    let rate: Vec<(f64, f64)> = rate_hz
        .iter()
        .enumerate()
        .map(|(k, &r)| (from_ms + (k as f64 + 0.5) * bin_ms, r))
        .collect();
    let title = format!("trial {trial}: {} spikes of {n} neurons", dots.len());
    let span = (from_ms, to_ms);
    render(
        out,
        size,
        |a| draw_raster(a, &title, span, n, &dots, &rate, bin_ms),
        |a| draw_raster(a, &title, span, n, &dots, &rate, bin_ms),
    )
}

fn draw_raster<DB: DrawingBackend>(
    area: DrawingArea<DB, Shift>,
    title: &str,
    (t0, t1): (f64, f64),
    n: usize,
    dots: &[(f64, f64)],
    rate: &[(f64, f64)],
    bin_ms: f64,
) -> Result<(), String> {
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    area.fill(&WHITE).map_err(e)?;
    let area = area.titled(title, ("sans-serif", 20)).map_err(e)?;
    let (top, bottom) = area.split_vertically((area.dim_in_pixel().1 as f64 * 0.68) as u32);
    let mut raster = ChartBuilder::on(&top)
        .margin(10)
        .x_label_area_size(25)
        .y_label_area_size(60)
        .build_cartesian_2d(t0..t1, -0.5..(n as f64 - 0.5))
        .map_err(e)?;
    raster
        .configure_mesh()
        .y_desc("neuron")
        .label_style(("sans-serif", 14))
        .axis_desc_style(("sans-serif", 16))
        .draw()
        .map_err(e)?;
    let radius = if n > 50 { 1 } else { 2 };
    raster
        .draw_series(dots.iter().map(|&p| Circle::new(p, radius, BLACK.filled())))
        .map_err(e)?;
    let peak = rate.iter().fold(0.0f64, |m, p| m.max(p.1));
    let mut pop = ChartBuilder::on(&bottom)
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(t0..t1, 0.0..(peak * 1.1).max(1.0))
        .map_err(e)?;
    pop.configure_mesh()
        .x_desc("t (ms)")
        .y_desc(format!("rate (Hz, {bin_ms} ms bins)"))
        .label_style(("sans-serif", 14))
        .axis_desc_style(("sans-serif", 16))
        .draw()
        .map_err(e)?;
    pop.draw_series(LineSeries::new(rate.iter().copied(), BLUE.stroke_width(2)))
        .map_err(e)?;
    area.present().map_err(e)
}

/// `spikesweep plot-psd`: the Welch spectrum of a trial's population spike
/// count over its analysis window (the `pop_peak_hz` and `pop_peak_q`
/// measures' own computation), the peak marked.
pub fn plot_psd(dir: &Path, trial: u32, out: &Path, size: (u32, u32)) -> Result<(), String> {
    let t = load_trial(dir, trial)?;
    let (t0, t1) = (t.config.transient_ms, t.config.duration_ms);
    let m = t.config.measures;
    let windows: Vec<&[f64]> = t.trains.iter().map(|s| in_window(s, t0, t1)).collect();
    let (freqs_hz, power) = population_psd(&windows, t0, t1, m.psd_bin_ms, m.psd_segment_ms).ok_or_else(|| {
        format!(
            "trial {trial}: its window holds fewer than 4 bins of {} ms",
            m.psd_bin_ms
        )
    })?;
    let peak = spectral_peak(&freqs_hz, &power);
    let title = match peak {
        Some((f, Some(q))) => format!("trial {trial}: peak {f:.1} Hz, Q = {q:.2}"),
        Some((f, None)) => format!("trial {trial}: peak {f:.1} Hz (no half-maximum width)"),
        None => format!("trial {trial}: no spikes in the window, no peak"),
    };
    let line: Vec<(f64, f64)> = freqs_hz.iter().copied().zip(power.iter().copied()).collect();
    let peak_hz = peak.map(|p| p.0);
    render(
        out,
        size,
        |a| draw_psd(a, &title, &line, peak_hz),
        |a| draw_psd(a, &title, &line, peak_hz),
    )
}

fn draw_psd<DB: DrawingBackend>(
    area: DrawingArea<DB, Shift>,
    title: &str,
    line: &[(f64, f64)],
    peak_hz: Option<f64>,
) -> Result<(), String> {
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    area.fill(&WHITE).map_err(e)?;
    let f_max = line.last().map_or(1.0, |p| p.0);
    let p_max = line.iter().fold(0.0f64, |m, p| m.max(p.1));
    let (_, y1) = padded(0.0, p_max.max(1e-12));
    let mut chart = ChartBuilder::on(&area)
        .caption(title, ("sans-serif", 20))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(80)
        .build_cartesian_2d(0.0..f_max, 0.0..y1)
        .map_err(e)?;
    chart
        .configure_mesh()
        .x_desc("frequency (Hz)")
        .y_desc("power (spikes^2 / Hz)")
        .label_style(("sans-serif", 14))
        .axis_desc_style(("sans-serif", 16))
        .draw()
        .map_err(e)?;
    chart
        .draw_series(LineSeries::new(line.iter().copied(), BLUE.stroke_width(2)))
        .map_err(e)?;
    if let Some(f) = peak_hz {
        let p = line.iter().find(|q| q.0 == f).map_or(0.0, |q| q.1);
        chart
            .draw_series(std::iter::once(Circle::new((f, p), 6, RED.stroke_width(2))))
            .map_err(e)?;
    }
    area.present().map_err(e)
}
