//! Parquet tables of a run (DESIGN.md §6). Column names carry units.
//!
//! Every file is written under a temporary name, fsynced, then renamed, so a
//! table that exists under its final name is complete. Each table's Parquet
//! key-value metadata holds the spec text, the program version and the
//! schema version.

use crate::plan::Plan;
use crate::run::{Status, Trace, TrialOutcome, TrialResult};
use polars::prelude::*;
use std::fs::{self, File};
use std::path::{Path, PathBuf};

/// Version of the table layout below; bump on any incompatible change.
pub const SCHEMA_VERSION: &str = "1";

/// Names of the files a run writes, in the order they are written.
pub const TABLES: [&str; 4] = ["trials.parquet", "neurons.parquet", "spikes.parquet", "summary.parquet"];

/// Per-trial measures that `summary.parquet` averages over replicates.
pub const SUMMARISED: [&str; 5] = ["rate_hz", "cv_isi", "chi", "kuramoto_r", "spike_sync"];

/// The copy of the spec written beside the tables.
pub const SPEC_COPY: &str = "spec.toml";

/// Why the output could not be written.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("{}: already holds results ({}); pass --force to overwrite them", .dir.display(), .found)]
    NotEmpty { dir: PathBuf, found: String },
    #[error("{}: {source}", .path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{}: {source}", .path.display())]
    Polars { path: PathBuf, source: PolarsError },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> OutputError + '_ {
    move |source| OutputError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Creates `dir` (and its parents). Refuses, unless `force`, a directory
/// that already holds a run's files.
pub fn prepare_dir(dir: &Path, force: bool) -> Result<(), OutputError> {
    let found: Vec<&str> = TABLES
        .iter()
        .chain([&SPEC_COPY])
        .copied()
        .filter(|f| dir.join(f).exists())
        .collect();
    if !found.is_empty() && !force {
        return Err(OutputError::NotEmpty {
            dir: dir.to_path_buf(),
            found: found.join(", "),
        });
    }
    fs::create_dir_all(dir).map_err(io_err(dir))
}

/// The three tables of a run, built from results in trial order.
pub struct Tables {
    pub trials: DataFrame,
    pub neurons: DataFrame,
    pub spikes: DataFrame,
}

/// Builds the tables. `results` must be sorted by trial id (as
/// [`crate::run::run_ensemble`] returns them).
pub fn build_tables(plan: &Plan, results: &[TrialResult]) -> PolarsResult<Tables> {
    let n_rows = results.len();
    let mut trial = Vec::with_capacity(n_rows);
    let mut point = Vec::with_capacity(n_rows);
    let mut replicate = Vec::with_capacity(n_rows);
    let mut seed = Vec::with_capacity(n_rows);
    let mut swept: Vec<Vec<f64>> = vec![Vec::with_capacity(n_rows); plan.spec.axes.len()];
    let mut status = Vec::with_capacity(n_rows);
    let mut n_spikes = Vec::with_capacity(n_rows);
    let mut rate_hz = Vec::with_capacity(n_rows);
    let mut cv_isi = Vec::with_capacity(n_rows);
    let mut chi = Vec::with_capacity(n_rows);
    let mut kuramoto_r = Vec::with_capacity(n_rows);
    let mut spike_sync = Vec::with_capacity(n_rows);
    let mut diverged_at_ms = Vec::with_capacity(n_rows);
    let mut wall_ms = Vec::with_capacity(n_rows);

    let (mut nt, mut nn, mut nspk, mut nrate, mut ncv, mut nisi) = (vec![], vec![], vec![], vec![], vec![], vec![]);
    let (mut st, mut sn, mut stime) = (vec![], vec![], vec![]);

    for r in results {
        let t = r.trial;
        trial.push(t.id);
        point.push(t.point);
        replicate.push(t.replicate);
        seed.push(t.seed);
        for (col, &x) in swept.iter_mut().zip(&plan.points[t.point as usize].values) {
            col.push(x);
        }
        status.push(r.outcome.status.name());
        wall_ms.push(r.wall_ms);
        let n = plan.points[t.point as usize].config.network.n();
        let sync = &r.outcome.sync;
        chi.push(sync.chi);
        kuramoto_r.push(sync.kuramoto_r);
        spike_sync.push(sync.spike_sync);
        match r.outcome.status {
            Status::Diverged { at_ms } => {
                n_spikes.push(None);
                rate_hz.push(None);
                cv_isi.push(None);
                diverged_at_ms.push(Some(at_ms));
                for i in 0..n {
                    nt.push(t.id);
                    nn.push(i as u32);
                    nspk.push(None);
                    nrate.push(None);
                    ncv.push(None);
                    nisi.push(None);
                }
            }
            Status::Ok => {
                let neurons = &r.outcome.neurons;
                n_spikes.push(Some(neurons.iter().map(|s| s.n_spikes).sum::<u32>()));
                rate_hz.push(Some(neurons.iter().map(|s| s.rate_hz).sum::<f64>() / n as f64));
                let cvs: Vec<f64> = neurons.iter().filter_map(|s| s.cv_isi).collect();
                cv_isi.push((!cvs.is_empty()).then(|| cvs.iter().sum::<f64>() / cvs.len() as f64));
                diverged_at_ms.push(None);
                for (i, s) in neurons.iter().enumerate() {
                    nt.push(t.id);
                    nn.push(i as u32);
                    nspk.push(Some(s.n_spikes));
                    nrate.push(Some(s.rate_hz));
                    ncv.push(s.cv_isi);
                    nisi.push(s.mean_isi_ms);
                }
                for (i, train) in r.outcome.spikes_ms.iter().enumerate() {
                    for &time in train {
                        st.push(t.id);
                        sn.push(i as u32);
                        stime.push(time);
                    }
                }
            }
        }
    }

    let mut columns = vec![
        Column::new("trial".into(), trial),
        Column::new("point".into(), point),
        Column::new("replicate".into(), replicate),
        Column::new("seed".into(), seed),
    ];
    for (axis, values) in plan.spec.axes.iter().zip(swept) {
        columns.push(Column::new(axis.column().into(), values));
    }
    columns.extend([
        Column::new("status".into(), status),
        Column::new("n_spikes".into(), n_spikes),
        Column::new("rate_hz".into(), rate_hz),
        Column::new("cv_isi".into(), cv_isi),
        Column::new("chi".into(), chi),
        Column::new("kuramoto_r".into(), kuramoto_r),
        Column::new("spike_sync".into(), spike_sync),
        Column::new("diverged_at_ms".into(), diverged_at_ms),
        Column::new("wall_ms".into(), wall_ms),
    ]);
    Ok(Tables {
        trials: DataFrame::new(n_rows, columns)?,
        neurons: DataFrame::new(
            nt.len(),
            vec![
                Column::new("trial".into(), nt),
                Column::new("neuron".into(), nn),
                Column::new("n_spikes".into(), nspk),
                Column::new("rate_hz".into(), nrate),
                Column::new("cv_isi".into(), ncv),
                Column::new("mean_isi_ms".into(), nisi),
            ],
        )?,
        spikes: DataFrame::new(
            st.len(),
            vec![
                Column::new("trial".into(), st),
                Column::new("neuron".into(), sn),
                Column::new("t_ms".into(), stime),
            ],
        )?,
    })
}

/// Key-value metadata stored in every table: which table (`file` without
/// its extension), program and schema version, and the spec text.
pub fn metadata(spec_text: &str, file: &str) -> Vec<(String, String)> {
    vec![
        ("spikesweep.table".into(), file.trim_end_matches(".parquet").into()),
        ("spikesweep.version".into(), env!("CARGO_PKG_VERSION").into()),
        ("spikesweep.schema_version".into(), SCHEMA_VERSION.into()),
        ("spikesweep.spec".into(), spec_text.into()),
    ]
}

/// Writes one table atomically (zstd-compressed) with key-value metadata.
pub fn write_parquet(path: &Path, df: &mut DataFrame, meta: Vec<(String, String)>) -> Result<(), OutputError> {
    write_atomic(path, |f| {
        ParquetWriter::new(f)
            .with_compression(ParquetCompression::Zstd(None))
            .with_key_value_metadata(Some(KeyValueMetadata::from_static(meta)))
            .finish(df)
            .map(|_| ())
            .map_err(|e| std::io::Error::other(e.to_string()))
    })
}

/// One row per parameter point from the trials table: the swept columns
/// (`axis_columns`), `n_trials`, `n_ok`, and for each measure in
/// [`SUMMARISED`]: `_mean`, `_std` (sample sd, ddof = 1), `_sem`
/// (`std / sqrt(n)`) and `_n` (non-null values; nulls, from diverged trials
/// or undefined measures, are left out). `_std` and `_sem` are null below two
/// values, `_mean` below one.
pub fn summarize(trials: &DataFrame, axis_columns: &[String]) -> PolarsResult<DataFrame> {
    let point = trials.column("point")?.u32()?;
    let status = trials.column("status")?.str()?;
    // Rows of each point, points in increasing order.
    let mut rows: std::collections::BTreeMap<u32, Vec<usize>> = Default::default();
    for (i, p) in point.iter().enumerate() {
        let p = p.ok_or_else(|| polars_err!(ComputeError: "null point id in trials"))?;
        rows.entry(p).or_default().push(i);
    }
    let groups: Vec<&Vec<usize>> = rows.values().collect();
    let ids: Vec<u32> = rows.keys().copied().collect();
    let mut columns = vec![Column::new("point".into(), ids)];
    for name in axis_columns {
        let values = trials.column(name)?.f64()?;
        let first: Vec<Option<f64>> = groups.iter().map(|g| values.get(g[0])).collect();
        columns.push(Column::new(name.into(), first));
    }
    let n_trials: Vec<u32> = groups.iter().map(|g| g.len() as u32).collect();
    let n_ok: Vec<u32> = groups
        .iter()
        .map(|g| g.iter().filter(|&&i| status.get(i) == Some("ok")).count() as u32)
        .collect();
    columns.push(Column::new("n_trials".into(), n_trials));
    columns.push(Column::new("n_ok".into(), n_ok));
    for measure in SUMMARISED {
        let values = trials.column(measure)?.f64()?;
        let stats: Vec<Moments> = groups
            .iter()
            .map(|g| moments(g.iter().filter_map(|&i| values.get(i))))
            .collect();
        let col = |suffix: &str, f: fn(&Moments) -> Option<f64>| {
            Column::new(
                format!("{measure}_{suffix}").into(),
                stats.iter().map(f).collect::<Vec<_>>(),
            )
        };
        columns.push(col("mean", |m| m.mean));
        columns.push(col("std", |m| m.std));
        columns.push(col("sem", |m| m.sem));
        columns.push(Column::new(
            format!("{measure}_n").into(),
            stats.iter().map(|m| m.n).collect::<Vec<u32>>(),
        ));
    }
    DataFrame::new(groups.len(), columns)
}

struct Moments {
    n: u32,
    mean: Option<f64>,
    std: Option<f64>,
    sem: Option<f64>,
}

/// Mean, sample sd and standard error, by Welford's update.
fn moments(values: impl Iterator<Item = f64>) -> Moments {
    let (mut n, mut mean, mut m2) = (0u32, 0.0, 0.0);
    for x in values {
        n += 1;
        let d = x - mean;
        mean += d / n as f64;
        m2 += d * (x - mean);
    }
    let std = (n >= 2).then(|| (m2 / (n - 1) as f64).sqrt());
    Moments {
        n,
        mean: (n >= 1).then_some(mean),
        std,
        sem: std.map(|s| s / (n as f64).sqrt()),
    }
}

/// Rebuilds `summary.parquet` in `dir` from its `trials.parquet` (after a
/// merge, or from an older run). The swept columns are read from the spec
/// stored in the trials table's metadata. Returns the path written.
pub fn summarize_dir(dir: &Path) -> Result<PathBuf, String> {
    let trials_path = dir.join("trials.parquet");
    let at = |e: &dyn std::fmt::Display| format!("{}: {e}", trials_path.display());
    let trials = read_table(&trials_path).map_err(|e| at(&e))?;
    let spec_text = stored_spec(&trials_path)?;
    let spec = crate::spec::ExperimentSpec::parse(&spec_text).map_err(|e| at(&format!("stored spec: {e}")))?;
    let axes: Vec<String> = spec.axes.iter().map(|a| a.column()).collect();
    let mut summary = summarize(&trials, &axes).map_err(|e| at(&e))?;
    let path = dir.join("summary.parquet");
    write_parquet(&path, &mut summary, metadata(&spec_text, "summary.parquet")).map_err(|e| e.to_string())?;
    Ok(path)
}

/// The spec text stored in a table's metadata.
pub fn stored_spec(path: &Path) -> Result<String, String> {
    let meta = read_metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    meta.into_iter()
        .find(|(k, _)| k == "spikesweep.spec")
        .map(|(_, v)| v)
        .ok_or_else(|| {
            format!(
                "{}: no spikesweep.spec in its metadata: not written by spikesweep?",
                path.display()
            )
        })
}

/// Path of the spike table written beside a trace: `X.parquet` ->
/// `X.spikes.parquet`.
pub fn trace_spikes_path(trace_path: &Path) -> PathBuf {
    let stem = trace_path.file_stem().unwrap_or_default().to_string_lossy();
    trace_path.with_file_name(format!("{stem}.spikes.parquet"))
}

/// Writes a trace (`t_ms`, `neuron`, `v_mv`, `m`, `h`, `n`, `s`) to `path`
/// and the trial's spikes (`trial`, `neuron`, `t_ms`, as in spikes.parquet)
/// beside it. Returns both paths.
pub fn write_trace(
    path: &Path,
    spec_text: &str,
    trial: u32,
    outcome: &TrialOutcome,
    trace: Trace,
) -> Result<[PathBuf; 2], OutputError> {
    let polars_err = |source| OutputError::Polars {
        path: path.to_path_buf(),
        source,
    };
    let rows = trace.t_ms.len();
    let mut df = DataFrame::new(
        rows,
        vec![
            Column::new("t_ms".into(), trace.t_ms),
            Column::new("neuron".into(), trace.neuron),
            Column::new("v_mv".into(), trace.v_mv),
            Column::new("m".into(), trace.m),
            Column::new("h".into(), trace.h),
            Column::new("n".into(), trace.n),
            Column::new("s".into(), trace.s),
        ],
    )
    .map_err(polars_err)?;
    let (mut sn, mut stime) = (vec![], vec![]);
    for (i, train) in outcome.spikes_ms.iter().enumerate() {
        sn.extend(std::iter::repeat_n(i as u32, train.len()));
        stime.extend_from_slice(train);
    }
    let mut spikes = DataFrame::new(
        sn.len(),
        vec![
            Column::new("trial".into(), vec![trial; sn.len()]),
            Column::new("neuron".into(), sn),
            Column::new("t_ms".into(), stime),
        ],
    )
    .map_err(polars_err)?;
    let mut meta = metadata(spec_text, "trace.parquet");
    meta.push(("spikesweep.trial".into(), trial.to_string()));
    meta.push(("spikesweep.status".into(), outcome.status.name().into()));
    write_parquet(path, &mut df, meta.clone())?;
    let spikes_path = trace_spikes_path(path);
    meta[0].1 = "trace.spikes".into();
    write_parquet(&spikes_path, &mut spikes, meta)?;
    Ok([path.to_path_buf(), spikes_path])
}

/// Writes the tables and the spec copy into `dir` (already prepared) and
/// returns the paths written.
pub fn write_run(dir: &Path, plan: &Plan, results: &[TrialResult]) -> Result<Vec<PathBuf>, OutputError> {
    let polars_err = |source| OutputError::Polars {
        path: dir.to_path_buf(),
        source,
    };
    let tables = build_tables(plan, results).map_err(polars_err)?;
    let axes: Vec<String> = plan.spec.axes.iter().map(|a| a.column()).collect();
    let summary = summarize(&tables.trials, &axes).map_err(polars_err)?;
    let mut written = Vec::new();
    let frames = [tables.trials, tables.neurons, tables.spikes, summary];
    for (file, mut df) in TABLES.iter().zip(frames) {
        let path = dir.join(file);
        write_parquet(&path, &mut df, metadata(&plan.spec.text, file))?;
        written.push(path);
    }
    let spec_path = dir.join(SPEC_COPY);
    write_atomic(&spec_path, |f| std::io::Write::write_all(f, plan.spec.text.as_bytes()))?;
    written.push(spec_path);
    Ok(written)
}

/// Writes through `fill` into `path` + ".tmp", fsyncs, then renames over
/// `path`: readers never see a half-written file under the final name.
pub fn write_atomic(path: &Path, fill: impl FnOnce(&mut File) -> std::io::Result<()>) -> Result<(), OutputError> {
    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(".tmp");
    let tmp = path.with_file_name(tmp_name);
    let result = (|| {
        let mut f = File::create(&tmp)?;
        fill(&mut f)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        if let Some(parent) = path.parent() {
            // Persist the rename itself; not every filesystem allows
            // opening a directory, so a failure here is not fatal.
            if let Ok(d) = File::open(parent) {
                let _ = d.sync_all();
            }
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.map_err(io_err(path))
}

/// Reads a table back (for tests and later summaries).
pub fn read_table(path: &Path) -> PolarsResult<DataFrame> {
    ParquetReader::new(File::open(path)?).finish()
}

/// Reads a table's key-value metadata.
pub fn read_metadata(path: &Path) -> PolarsResult<Vec<(String, String)>> {
    let mut reader = ParquetReader::new(File::open(path)?);
    let meta = reader.get_metadata()?;
    Ok(meta
        .key_value_metadata
        .iter()
        .flatten()
        .map(|kv| (kv.key.clone(), kv.value.clone().unwrap_or_default()))
        .collect())
}
