//! Parquet tables of a run (README "Output schema"). Column names carry
//! units, but for the swept columns (`noise_sigma`, named after their
//! keys): their units are in the key-value metadata (`spikesweep.units`)
//! and in the field metadata (`unit`) of the Arrow schema stored beside
//! the Parquet one.
//!
//! That Arrow schema (`ARROW:schema`) is ours, not polars': polars 0.55's
//! `ParquetWriter` always stores its newest types, Arrow `string_view`
//! for strings, and writes no field metadata; [`key_value_metadata`]
//! stores plain `utf8` (the Parquet column is a `BYTE_ARRAY` with the
//! `String` logical type either way) and the units.
//!
//! Every file is written under a temporary name, fsynced, then renamed, so a
//! table that exists under its final name is complete. Each table's Parquet
//! key-value metadata holds the spec text, the program version and the
//! schema version.

use crate::observe::measures::{MEASURES, PAIR_COLUMNS};
use crate::plan::Plan;
use crate::run::{Status, Trace, TrialOutcome, TrialResult};
use crate::spec::ExperimentSpec;
use polars::prelude::*;
use std::fs::{self, File};
use std::path::{Path, PathBuf};

/// Version of the table layout below; bump on any incompatible change.
pub const SCHEMA_VERSION: &str = "2";

/// Names of the files a run writes, in the order they are written.
pub const TABLES: [&str; 4] = ["trials.parquet", "neurons.parquet", "spikes.parquet", "summary.parquet"];

/// The copy of the spec written beside the tables.
pub const SPEC_COPY: &str = "spec.toml";

/// Why the output could not be written.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
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

/// The data tables of a run, built from results in trial order.
pub struct Tables {
    pub trials: DataFrame,
    pub neurons: DataFrame,
    pub spikes: DataFrame,
    /// With `measures.pairs`: one row per (trial, i, j), i < j.
    pub pairs: Option<DataFrame>,
}

impl Tables {
    /// The tables by name (`trials`, `neurons`, `spikes`, `pairs` if any).
    pub fn into_named(self) -> Vec<(&'static str, DataFrame)> {
        let mut named = vec![
            ("trials", self.trials),
            ("neurons", self.neurons),
            ("spikes", self.spikes),
        ];
        named.extend(self.pairs.map(|p| ("pairs", p)));
        named
    }
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
    let mut measures: Vec<Vec<Option<f64>>> = vec![Vec::with_capacity(n_rows); MEASURES.len()];
    let mut diverged_at_ms = Vec::with_capacity(n_rows);
    let mut n_clamped = Vec::with_capacity(n_rows);
    let mut wall_ms = Vec::with_capacity(n_rows);

    let (mut nt, mut nn, mut nspk, mut nrate, mut ncv, mut nisi) = (vec![], vec![], vec![], vec![], vec![], vec![]);
    let (mut nfano, mut nlv, mut ncv2) = (vec![], vec![], vec![]);
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
        n_clamped.push(r.outcome.n_clamped);
        wall_ms.push(r.wall_ms);
        let n = plan.points[t.point as usize].config.network.n();
        for (column, &value) in measures.iter_mut().zip(&r.outcome.measures) {
            column.push(value);
        }
        match r.outcome.status {
            Status::Diverged { at_ms } => {
                n_spikes.push(None);
                diverged_at_ms.push(Some(at_ms));
                for i in 0..n {
                    nt.push(t.id);
                    nn.push(i as u32);
                    nspk.push(None);
                    nrate.push(None);
                    ncv.push(None);
                    nisi.push(None);
                    nfano.push(None);
                    nlv.push(None);
                    ncv2.push(None);
                }
            }
            Status::Ok => {
                let neurons = &r.outcome.neurons;
                n_spikes.push(Some(neurons.iter().map(|s| s.n_spikes).sum::<u32>()));
                diverged_at_ms.push(None);
                for (i, s) in neurons.iter().enumerate() {
                    nt.push(t.id);
                    nn.push(i as u32);
                    nspk.push(Some(s.n_spikes));
                    nrate.push(Some(s.rate_hz));
                    ncv.push(s.cv_isi);
                    nisi.push(s.mean_isi_ms);
                    nfano.push(s.fano);
                    nlv.push(s.lv);
                    ncv2.push(s.cv2);
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
    columns.push(Column::new("status".into(), status));
    columns.push(Column::new("n_spikes".into(), n_spikes));
    for (m, values) in MEASURES.iter().zip(measures) {
        columns.push(Column::new(m.column.into(), values));
    }
    columns.extend([
        Column::new("diverged_at_ms".into(), diverged_at_ms),
        Column::new("n_clamped".into(), n_clamped),
        Column::new("wall_ms".into(), wall_ms),
    ]);
    Ok(Tables {
        pairs: plan.writes_pairs().then(|| pairs_table(plan, results)).transpose()?,
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
                Column::new("fano".into(), nfano),
                Column::new("lv".into(), nlv),
                Column::new("cv2".into(), ncv2),
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

/// `pairs.parquet`: a diverged trial's pairs are rows of nulls.
fn pairs_table(plan: &Plan, results: &[TrialResult]) -> PolarsResult<DataFrame> {
    let (mut trial, mut first, mut second) = (vec![], vec![], vec![]);
    let mut values: Vec<Vec<Option<f64>>> = vec![vec![]; PAIR_COLUMNS.len()];
    for r in results {
        let n = plan.points[r.trial.point as usize].config.network.n() as u32;
        let mut computed = r.outcome.pairs.iter();
        for i in 0..n {
            for j in i + 1..n {
                trial.push(r.trial.id);
                first.push(i);
                second.push(j);
                let row = computed.next().copied().unwrap_or_default();
                for (column, v) in values.iter_mut().zip(row) {
                    column.push(v);
                }
            }
        }
    }
    let mut columns = vec![
        Column::new("trial".into(), trial),
        Column::new("i".into(), first),
        Column::new("j".into(), second),
    ];
    for (name, column) in PAIR_COLUMNS.iter().zip(values) {
        columns.push(Column::new((*name).into(), column));
    }
    DataFrame::new(columns[0].len(), columns)
}

/// Key-value metadata stored in every table: which table (`file` without
/// its extension), program and schema version, the spec text, the model
/// file's text (a run is reproduced from its tables alone) and the units
/// of the swept columns ([`units_json`]).
pub fn metadata(spec: &ExperimentSpec, file: &str) -> Vec<(String, String)> {
    vec![
        ("spikesweep.table".into(), file.trim_end_matches(".parquet").into()),
        ("spikesweep.version".into(), env!("CARGO_PKG_VERSION").into()),
        ("spikesweep.schema_version".into(), SCHEMA_VERSION.into()),
        ("spikesweep.spec".into(), spec.text.clone()),
        ("spikesweep.model".into(), spec.model.text.clone()),
        (UNITS_KEY.into(), units_json(spec)),
    ]
}

/// What a swept column without a unit is given in [`units_json`].
pub const NO_UNIT: &str = "dimensionless";

/// The unit of each swept column as a JSON object in axis order, e.g.
/// `{"noise_sigma": "uA/cm^2 ms^0.5", "network_strength": "dimensionless"}`
/// (`{}` without a sweep); [`key_value_metadata`] also puts each in its
/// column's Arrow field metadata.
pub fn units_json(spec: &ExperimentSpec) -> String {
    let pairs: Vec<String> = spec
        .axes
        .iter()
        .map(|a| {
            let unit = spec.units(&a.key).unwrap_or_else(|| NO_UNIT.to_string());
            format!("{}: {}", json_string(&a.column()), json_string(&unit))
        })
        .collect();
    format!("{{{}}}", pairs.join(", "))
}

/// A JSON string literal.
fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Key of the swept columns' units in the key-value metadata.
pub const UNITS_KEY: &str = "spikesweep.units";

/// The key-value metadata of a table of this schema: `meta`, preceded by
/// an Arrow schema of our own (`ARROW:schema`, which polars then stores
/// instead of its own) in which strings are plain `utf8` rather than
/// `string_view`, and each swept column carries its unit as field
/// metadata (`unit`, from `meta`'s [`UNITS_KEY`]).
pub fn key_value_metadata(schema: &Schema, meta: Vec<(String, String)>) -> KeyValueMetadata {
    let units: std::collections::BTreeMap<String, String> = meta
        .iter()
        .find(|(k, _)| k == UNITS_KEY)
        .and_then(|(_, v)| serde_json::from_str(v).ok())
        .unwrap_or_default();
    let mut arrow = schema.to_arrow(CompatLevel::newest());
    for (name, field) in arrow.iter_mut() {
        if field.dtype == ArrowDataType::Utf8View {
            field.dtype = ArrowDataType::Utf8;
        }
        if let Some(unit) = units.get(name.as_str()) {
            let mut m = std::collections::BTreeMap::new();
            m.insert(PlSmallStr::from("unit"), PlSmallStr::from(unit.as_str()));
            field.metadata = Some(std::sync::Arc::new(m));
        }
    }
    let arrow_schema = polars_parquet::write::schema_to_metadata_key(&arrow);
    let mut kv = vec![(arrow_schema.key, arrow_schema.value.unwrap_or_default())];
    kv.extend(meta);
    KeyValueMetadata::from_static(kv)
}

/// Writes one table atomically (zstd-compressed) with key-value metadata
/// ([`key_value_metadata`]).
pub fn write_parquet(path: &Path, df: &mut DataFrame, meta: Vec<(String, String)>) -> Result<(), OutputError> {
    let kv = key_value_metadata(df.schema(), meta);
    write_atomic(path, |f| {
        ParquetWriter::new(f)
            .with_compression(ParquetCompression::Zstd(None))
            .with_key_value_metadata(Some(kv))
            .finish(df)
            .map(|_| ())
            .map_err(|e| std::io::Error::other(e.to_string()))
    })
}

/// Replicate statistics per parameter point, accumulated over batches of
/// trials rows so that a summary of any size streams in bounded memory
/// (O(points)). The table it builds has one row per point, sorted by
/// `point`: the swept columns, `n_trials`, `n_ok`, and for each measure in
/// [`MEASURES`]: `_mean`, `_std` (sample sd, ddof = 1), `_sem`
/// (`std / sqrt(n)`) and `_n` (non-null values; nulls, from diverged trials
/// or undefined measures, are left out). `_std` and `_sem` are null below
/// two values, `_mean` below one.
pub struct SummaryBuilder {
    axis_columns: Vec<String>,
    points: std::collections::BTreeMap<u32, PointStats>,
}

struct PointStats {
    values: Vec<Option<f64>>,
    n_trials: u32,
    n_ok: u32,
    measures: Vec<Welford>,
}

/// Count, mean and sum of squared deviations (Welford 1962).
#[derive(Default, Clone, Copy)]
struct Welford {
    n: u32,
    mean: f64,
    m2: f64,
}

impl Welford {
    fn push(&mut self, x: f64) {
        self.n += 1;
        let d = x - self.mean;
        self.mean += d / self.n as f64;
        self.m2 += d * (x - self.mean);
    }

    fn mean(&self) -> Option<f64> {
        (self.n >= 1).then_some(self.mean)
    }

    fn std(&self) -> Option<f64> {
        (self.n >= 2).then(|| (self.m2 / (self.n - 1) as f64).sqrt())
    }

    fn sem(&self) -> Option<f64> {
        self.std().map(|s| s / (self.n as f64).sqrt())
    }
}

impl SummaryBuilder {
    /// `axis_columns`: the swept columns of the trials table.
    pub fn new(axis_columns: Vec<String>) -> SummaryBuilder {
        SummaryBuilder {
            axis_columns,
            points: Default::default(),
        }
    }

    /// Adds a batch of trials rows.
    pub fn add(&mut self, trials: &DataFrame) -> PolarsResult<()> {
        let point = trials.column("point")?.u32()?;
        let status = trials.column("status")?.str()?;
        let axes = self
            .axis_columns
            .iter()
            .map(|c| trials.column(c)?.f64().cloned())
            .collect::<PolarsResult<Vec<_>>>()?;
        let measures = MEASURES
            .iter()
            .map(|m| trials.column(m.column)?.f64().cloned())
            .collect::<PolarsResult<Vec<_>>>()?;
        for row in 0..trials.height() {
            let p = point
                .get(row)
                .ok_or_else(|| polars_err!(ComputeError: "null point id in trials"))?;
            let stats = self.points.entry(p).or_insert_with(|| PointStats {
                values: axes.iter().map(|a| a.get(row)).collect(),
                n_trials: 0,
                n_ok: 0,
                measures: vec![Welford::default(); MEASURES.len()],
            });
            stats.n_trials += 1;
            stats.n_ok += u32::from(status.get(row) == Some("ok"));
            for (acc, column) in stats.measures.iter_mut().zip(&measures) {
                if let Some(x) = column.get(row) {
                    acc.push(x);
                }
            }
        }
        Ok(())
    }

    /// The summary table.
    pub fn finish(self) -> PolarsResult<DataFrame> {
        let points: Vec<(&u32, &PointStats)> = self.points.iter().collect();
        let mut columns = vec![Column::new(
            "point".into(),
            points.iter().map(|p| *p.0).collect::<Vec<u32>>(),
        )];
        for (k, name) in self.axis_columns.iter().enumerate() {
            let values: Vec<Option<f64>> = points.iter().map(|p| p.1.values[k]).collect();
            columns.push(Column::new(name.into(), values));
        }
        columns.push(Column::new(
            "n_trials".into(),
            points.iter().map(|p| p.1.n_trials).collect::<Vec<u32>>(),
        ));
        columns.push(Column::new(
            "n_ok".into(),
            points.iter().map(|p| p.1.n_ok).collect::<Vec<u32>>(),
        ));
        for (m, measure) in MEASURES.iter().map(|m| m.column).enumerate() {
            let col = |suffix: &str, f: fn(&Welford) -> Option<f64>| {
                let values: Vec<Option<f64>> = points.iter().map(|p| f(&p.1.measures[m])).collect();
                Column::new(format!("{measure}_{suffix}").into(), values)
            };
            columns.push(col("mean", Welford::mean));
            columns.push(col("std", Welford::std));
            columns.push(col("sem", Welford::sem));
            let counts: Vec<u32> = points.iter().map(|p| p.1.measures[m].n).collect();
            columns.push(Column::new(format!("{measure}_n").into(), counts));
        }
        DataFrame::new(points.len(), columns)
    }
}

/// The spec stored in a table's metadata, with its model.
pub fn stored_spec(path: &Path) -> Result<ExperimentSpec, String> {
    let meta = read_metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let find = |key: &str| meta.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
    let text = find("spikesweep.spec").ok_or_else(|| {
        format!(
            "{}: no spikesweep.spec in its metadata: not written by spikesweep?",
            path.display()
        )
    })?;
    let parsed = match find("spikesweep.model") {
        Some(model) => ExperimentSpec::parse_stored(text, model),
        None => ExperimentSpec::parse(text),
    };
    parsed.map_err(|e| format!("{}: stored spec: {e}", path.display()))
}

/// Path of the spike table written beside a trace: `X.parquet` ->
/// `X.spikes.parquet`.
pub fn trace_spikes_path(trace_path: &Path) -> PathBuf {
    let stem = trace_path.file_stem().unwrap_or_default().to_string_lossy();
    trace_path.with_file_name(format!("{stem}.spikes.parquet"))
}

/// Writes a trace (`t_ms`, `neuron`, `v_mv`, one column per gate of the
/// model, `s`) to `path`
/// and the trial's spikes (`trial`, `neuron`, `t_ms`, as in spikes.parquet)
/// beside it. Returns both paths.
pub fn write_trace(
    path: &Path,
    spec: &ExperimentSpec,
    trial: u32,
    outcome: &TrialOutcome,
    trace: Trace,
) -> Result<[PathBuf; 2], OutputError> {
    let polars_err = |source| OutputError::Polars {
        path: path.to_path_buf(),
        source,
    };
    let rows = trace.t_ms.len();
    let mut columns = vec![
        Column::new("t_ms".into(), trace.t_ms),
        Column::new("neuron".into(), trace.neuron),
        Column::new("v_mv".into(), trace.v_mv),
    ];
    columns.extend(
        trace
            .vars
            .into_iter()
            .map(|(name, values)| Column::new(name.into(), values)),
    );
    let mut df = DataFrame::new(rows, columns).map_err(polars_err)?;
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
    let mut meta = metadata(spec, "trace.parquet");
    meta.push(("spikesweep.trial".into(), trial.to_string()));
    meta.push(("spikesweep.status".into(), outcome.status.name().into()));
    write_parquet(path, &mut df, meta.clone())?;
    let spikes_path = trace_spikes_path(path);
    meta[0].1 = "trace.spikes".into();
    write_parquet(&spikes_path, &mut spikes, meta)?;
    Ok([path.to_path_buf(), spikes_path])
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
