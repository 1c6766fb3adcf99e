//! Parquet tables of a run (DESIGN.md §6). Column names carry units.
//!
//! Every file is written under a temporary name, fsynced, then renamed, so a
//! table that exists under its final name is complete. Each table's Parquet
//! key-value metadata holds the spec text, the program version and the
//! schema version.

use crate::plan::Plan;
use crate::run::{Status, TrialResult};
use polars::prelude::*;
use std::fs::{self, File};
use std::path::{Path, PathBuf};

/// Version of the table layout below; bump on any incompatible change.
pub const SCHEMA_VERSION: &str = "1";

/// Names of the files a run writes, in the order they are written.
pub const TABLES: [&str; 3] = ["trials.parquet", "neurons.parquet", "spikes.parquet"];

/// The copy of the spec written beside the tables.
pub const SPEC_COPY: &str = "spec.toml";

/// Why the output could not be written.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("{}: already holds results ({}); pass --force to overwrite them", .dir.display(), .found)]
    NotEmpty { dir: PathBuf, found: String },
    #[error("{}: {source}", .path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
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
    let mut diverged_at_ms = Vec::with_capacity(n_rows);
    let mut wall_ms = Vec::with_capacity(n_rows);

    let (mut nt, mut nn, mut nspk, mut nrate, mut ncv) = (vec![], vec![], vec![], vec![], vec![]);
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
                }
            }
            Status::Ok => {
                let neurons = &r.outcome.neurons;
                n_spikes.push(Some(neurons.iter().map(|s| s.n_spikes).sum::<u32>()));
                rate_hz.push(Some(
                    neurons.iter().map(|s| s.rate_hz).sum::<f64>() / n as f64,
                ));
                let cvs: Vec<f64> = neurons.iter().filter_map(|s| s.cv_isi).collect();
                cv_isi.push((!cvs.is_empty()).then(|| cvs.iter().sum::<f64>() / cvs.len() as f64));
                diverged_at_ms.push(None);
                for (i, s) in neurons.iter().enumerate() {
                    nt.push(t.id);
                    nn.push(i as u32);
                    nspk.push(Some(s.n_spikes));
                    nrate.push(Some(s.rate_hz));
                    ncv.push(s.cv_isi);
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

/// Key-value metadata stored in every table of a run.
pub fn metadata(plan: &Plan, table: &str) -> Vec<(String, String)> {
    vec![
        ("spikesweep.table".into(), table.into()),
        (
            "spikesweep.version".into(),
            env!("CARGO_PKG_VERSION").into(),
        ),
        ("spikesweep.schema_version".into(), SCHEMA_VERSION.into()),
        ("spikesweep.spec".into(), plan.spec.text.clone()),
    ]
}

/// Writes the tables and the spec copy into `dir` (already prepared) and
/// returns the paths written.
pub fn write_run(
    dir: &Path,
    plan: &Plan,
    results: &[TrialResult],
) -> Result<Vec<PathBuf>, OutputError> {
    let tables = build_tables(plan, results).map_err(|source| OutputError::Polars {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut written = Vec::new();
    for (file, mut df) in TABLES
        .iter()
        .zip([tables.trials, tables.neurons, tables.spikes])
    {
        let path = dir.join(file);
        let meta = metadata(plan, file.trim_end_matches(".parquet"));
        write_atomic(&path, |f| {
            ParquetWriter::new(f)
                .with_compression(ParquetCompression::Zstd(None))
                .with_key_value_metadata(Some(KeyValueMetadata::from_static(meta)))
                .finish(&mut df)
                .map(|_| ())
                .map_err(|e| std::io::Error::other(e.to_string()))
        })?;
        written.push(path);
    }
    let spec_path = dir.join(SPEC_COPY);
    write_atomic(&spec_path, |f| {
        std::io::Write::write_all(f, plan.spec.text.as_bytes())
    })?;
    written.push(spec_path);
    Ok(written)
}

/// Writes through `fill` into `path` + ".tmp", fsyncs, then renames over
/// `path`: readers never see a half-written file under the final name.
pub fn write_atomic(
    path: &Path,
    fill: impl FnOnce(&mut File) -> std::io::Result<()>,
) -> Result<(), OutputError> {
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
