//! Run directories: trials stream into committed *parts* as they finish; a
//! finished run merges its parts into the final, sorted tables; an
//! interrupted run resumes where it stopped; the shards of one spec merge
//! into the very tables an unsharded run writes.
//!
//! Layout of a run directory `DIR` (or of a shard, `OUT/shards/K-of-N/`):
//!
//! ```text
//! spec.toml              the spec, written first: a resume must match it
//! parts/part-A-B.*.parquet  committed batches of trials A..=B (while running)
//! trials.parquet ...     the final tables, sorted (after the last trial)
//! manifest.toml          written last: the directory is complete
//! ```
//!
//! Every file is written to a temporary name, fsynced and renamed (see
//! [`crate::output::write_atomic`]); a part is committed when its trials file
//! exists, which is written after its neurons and spikes files. So a kill at
//! any instant (SIGKILL included) leaves only complete files under final
//! names, and a resume recomputes exactly the trials no committed part holds.

use crate::output::{build_tables, metadata, read_table, write_atomic, write_parquet, SummaryBuilder, SPEC_COPY};
use crate::plan::Plan;
use crate::run::TrialResult;
use crate::spec::ExperimentSpec;
use polars::prelude::*;
use serde::{Deserialize, Serialize};
use std::fs::{self, File};
use std::path::{Path, PathBuf};

pub const PARTS_DIR: &str = "parts";
pub const MANIFEST: &str = "manifest.toml";
pub const SHARDS_DIR: &str = "shards";

/// The final tables and the columns they are sorted by.
const SORTED_TABLES: [(&str, &[&str]); 3] = [
    ("trials", &["trial"]),
    ("neurons", &["trial", "neuron"]),
    ("spikes", &["trial", "neuron", "t_ms"]),
];

/// Shard K of N: the trials whose id is K modulo N. Taking every N-th trial
/// (rather than a contiguous block) gives every shard the same mix of cheap
/// and expensive parameter points.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl Shard {
    /// Parses "K/N" with 0 <= K < N.
    pub fn parse(text: &str) -> Result<Shard, String> {
        let bad =
            || format!("--shard {text:?}: expected K/N with 0 <= K < N, e.g. 0/8 (SLURM: $SLURM_ARRAY_TASK_ID/N)");
        let (k, n) = text.split_once('/').ok_or_else(bad)?;
        let (index, count): (u32, u32) = (
            k.trim().parse().map_err(|_| bad())?,
            n.trim().parse().map_err(|_| bad())?,
        );
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }

    /// Directory name under `OUT/shards/`: `K-of-N`.
    pub fn dir_name(&self) -> String {
        format!("{}-of-{}", self.index, self.count)
    }

    pub fn owns(&self, trial: u32) -> bool {
        trial % self.count == self.index
    }
}

/// Written last into a complete run directory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub spikesweep_version: String,
    pub schema_version: String,
    /// [`spec_hash`] of the spec text: the shards of one run must agree.
    pub spec_hash: String,
    /// "K/N" for a shard; absent for a whole run.
    pub shard: Option<String>,
    /// Rows of trials.parquet.
    pub trials: u64,
}

/// FNV-1a (64 bit) of the spec text, as 16 hex digits: an identity check
/// for shards and resumes, not a security measure.
pub fn spec_hash(text: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h = (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{h:016x}")
}

pub fn read_manifest(dir: &Path) -> Result<Option<Manifest>, String> {
    let path = dir.join(MANIFEST);
    match fs::read_to_string(&path) {
        Ok(text) => toml::from_str(&text)
            .map(Some)
            .map_err(|e| format!("{}: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

fn write_manifest(dir: &Path, spec_text: &str, shard: Option<Shard>, trials: u64) -> Result<PathBuf, String> {
    let manifest = Manifest {
        spikesweep_version: env!("CARGO_PKG_VERSION").into(),
        schema_version: crate::output::SCHEMA_VERSION.into(),
        spec_hash: spec_hash(spec_text),
        shard: shard.map(|s| format!("{}/{}", s.index, s.count)),
        trials,
    };
    let text = toml::to_string(&manifest).map_err(|e| e.to_string())?;
    let path = dir.join(MANIFEST);
    write_atomic(&path, |f| std::io::Write::write_all(f, text.as_bytes())).map_err(|e| e.to_string())?;
    Ok(path)
}

/// What to do with a directory that already holds a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Existing {
    /// Stop with an error (the default: nothing is overwritten silently).
    Refuse,
    /// Continue an interrupted run of the same spec.
    Resume,
    /// Delete the earlier run's files and start over.
    Overwrite,
}

/// A run directory ready to take trials.
#[derive(Debug)]
pub struct OpenRun {
    /// Trial ids already committed in parts, sorted.
    pub done: Vec<u32>,
    /// The directory already holds a complete run of this spec.
    pub complete: bool,
}

/// The files spikesweep writes into a run directory (not `shards/`).
fn our_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = ["trials", "neurons", "spikes", "summary"]
        .iter()
        .map(|t| dir.join(format!("{t}.parquet")))
        .chain([dir.join(MANIFEST), dir.join(SPEC_COPY)])
        .filter(|p| p.exists())
        .collect();
    if let Ok(entries) = fs::read_dir(dir) {
        files.extend(
            entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "tmp")),
        );
    }
    files
}

/// Prepares `dir` for running `plan` (creating it, or checking and
/// cleaning what an earlier run left there, as `existing` says).
pub fn open_run(dir: &Path, plan: &Plan, existing: Existing) -> Result<OpenRun, String> {
    let at = |e: &dyn std::fmt::Display| format!("{}: {e}", dir.display());
    let parts = dir.join(PARTS_DIR);
    let files = our_files(dir);
    let started = parts.exists() || !files.is_empty();
    if started && existing == Existing::Overwrite {
        for f in files {
            fs::remove_file(&f).map_err(|e| at(&e))?;
        }
        if parts.exists() {
            fs::remove_dir_all(&parts).map_err(|e| at(&e))?;
        }
    } else if started {
        let complete = read_manifest(dir)?.is_some();
        if existing == Existing::Refuse {
            return Err(if complete {
                format!(
                    "{}: already holds a complete run; pass --force to overwrite it",
                    dir.display()
                )
            } else {
                format!(
                    "{}: holds an interrupted run ({} trials written); pass --resume to continue it or --force to start over",
                    dir.display(),
                    committed_parts(dir)?.iter().map(|p| p.trials).sum::<u64>()
                )
            });
        }
        let stored =
            fs::read_to_string(dir.join(SPEC_COPY)).map_err(|e| format!("{}: {e}", dir.join(SPEC_COPY).display()))?;
        if stored != plan.spec.text {
            return Err(format!(
                "{}: was started from a different spec (see its spec.toml); --resume needs the same spec, --force starts over",
                dir.display()
            ));
        }
        if complete {
            return Ok(OpenRun {
                done: vec![],
                complete: true,
            });
        }
        // Results may change between versions (a fix of the draws, say):
        // one run's trials come from one version.
        if let Some(part) = committed_parts(dir)?.first() {
            let path = part.table("trials");
            let meta = crate::output::read_metadata(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            let written_by = meta
                .iter()
                .find(|(k, _)| k == "spikesweep.version")
                .map(|(_, v)| v.as_str());
            if written_by != Some(env!("CARGO_PKG_VERSION")) {
                return Err(format!(
                    "{}: its trials so far were written by spikesweep {}, this is {}, and results may differ between versions: finish it with that version, or --force to start over",
                    dir.display(),
                    written_by.unwrap_or("(unknown)"),
                    env!("CARGO_PKG_VERSION")
                ));
            }
        }
        return Ok(OpenRun {
            done: clean_and_list_done(dir)?,
            complete: false,
        });
    }
    fs::create_dir_all(&parts).map_err(|e| format!("{}: cannot create the output directory: {e}", dir.display()))?;
    write_atomic(&dir.join(SPEC_COPY), |f| {
        std::io::Write::write_all(f, plan.spec.text.as_bytes())
    })
    .map_err(|e| e.to_string())?;
    Ok(OpenRun {
        done: vec![],
        complete: false,
    })
}

/// A committed part: its files and how many trials it holds.
struct Part {
    stem: PathBuf,
    trials: u64,
}

impl Part {
    fn table(&self, name: &str) -> PathBuf {
        let mut p = self.stem.clone().into_os_string();
        p.push(format!(".{name}.parquet"));
        PathBuf::from(p)
    }
}

/// Committed parts (those whose trials file exists), in name order.
fn committed_parts(dir: &Path) -> Result<Vec<Part>, String> {
    let parts = dir.join(PARTS_DIR);
    let Ok(entries) = fs::read_dir(&parts) else {
        return Ok(vec![]);
    };
    let mut stems: Vec<PathBuf> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.strip_suffix(".trials.parquet").map(|stem| parts.join(stem))
        })
        .collect();
    stems.sort();
    stems
        .into_iter()
        .map(|stem| {
            let mut part = Part { stem, trials: 0 };
            let path = part.table("trials");
            let mut reader = ParquetReader::new(File::open(&path).map_err(|e| format!("{}: {e}", path.display()))?);
            part.trials = reader.num_rows().map_err(|e| format!("{}: {e}", path.display()))? as u64;
            Ok(part)
        })
        .collect()
}

/// Removes what a killed write left (temporary files, parts whose trials
/// file never landed) and returns the trial ids of the committed parts.
fn clean_and_list_done(dir: &Path) -> Result<Vec<u32>, String> {
    let parts_dir = dir.join(PARTS_DIR);
    fs::create_dir_all(&parts_dir).map_err(|e| format!("{}: {e}", parts_dir.display()))?;
    let committed: Vec<String> = committed_parts(dir)?
        .iter()
        .map(|p| p.stem.file_name().unwrap_or_default().to_string_lossy().into_owned())
        .collect();
    for entry in fs::read_dir(&parts_dir)
        .map_err(|e| format!("{}: {e}", parts_dir.display()))?
        .flatten()
    {
        let name = entry.file_name().to_string_lossy().into_owned();
        let stem = name.split('.').next().unwrap_or_default();
        if name.ends_with(".tmp") || !committed.iter().any(|c| c == stem) {
            fs::remove_file(entry.path()).map_err(|e| format!("{}: {e}", entry.path().display()))?;
        }
    }
    let mut done = Vec::new();
    for part in committed_parts(dir)? {
        let path = part.table("trials");
        let df = ParquetReader::new(File::open(&path).map_err(|e| format!("{}: {e}", path.display()))?)
            .with_columns(Some(vec!["trial".into()]))
            .finish()
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let ids = df
            .column("trial")
            .and_then(|c| c.u32().cloned())
            .map_err(|e| format!("{}: {e}", path.display()))?;
        done.extend(ids.iter().flatten());
    }
    done.sort_unstable();
    Ok(done)
}

/// Commits a batch of finished trials (sorted by id) as one part.
pub fn write_part(dir: &Path, plan: &Plan, results: &[TrialResult]) -> Result<(), String> {
    let (Some(first), Some(last)) = (results.first(), results.last()) else {
        return Ok(());
    };
    let stem = dir
        .join(PARTS_DIR)
        .join(format!("part-{:010}-{:010}", first.trial.id, last.trial.id));
    let part = Part { stem, trials: 0 };
    let tables = build_tables(plan, results).map_err(|e| format!("{}: {e}", dir.display()))?;
    // Trials last: its presence is what commits the part.
    for (name, mut df) in [
        ("neurons", tables.neurons),
        ("spikes", tables.spikes),
        ("trials", tables.trials),
    ] {
        write_parquet(&part.table(name), &mut df, metadata(&plan.spec, name)).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Merges the committed parts of `dir` into its final tables (and, for a
/// whole run, summary.parquet), writes the manifest and removes the parts.
/// Returns the paths written.
pub fn finish_run(dir: &Path, plan: &Plan, shard: Option<Shard>) -> Result<Vec<PathBuf>, String> {
    let parts = committed_parts(dir)?;
    let sources = |table: &str| parts.iter().map(|p| p.table(table)).collect::<Vec<_>>();
    let written = write_final_tables(dir, plan, shard.is_none(), sources)?;
    let trials = parts.iter().map(|p| p.trials).sum();
    let mut written = written;
    written.push(write_manifest(dir, &plan.spec.text, shard, trials)?);
    let parts_dir = dir.join(PARTS_DIR);
    fs::remove_dir_all(&parts_dir).map_err(|e| format!("{}: {e}", parts_dir.display()))?;
    Ok(written)
}

/// Merges sorted `sources(table)` into `dir/<table>.parquet` for every
/// table, plus summary.parquet when `with_summary`.
fn write_final_tables(
    dir: &Path,
    plan: &Plan,
    with_summary: bool,
    sources: impl Fn(&str) -> Vec<PathBuf>,
) -> Result<Vec<PathBuf>, String> {
    let empty = build_tables(plan, &[]).map_err(|e| e.to_string())?;
    let axes: Vec<String> = plan.spec.axes.iter().map(|a| a.column()).collect();
    let mut summary = SummaryBuilder::new(axes);
    let mut written = Vec::new();
    for ((name, keys), schema) in
        SORTED_TABLES
            .iter()
            .zip([empty.trials.schema(), empty.neurons.schema(), empty.spikes.schema()])
    {
        let path = dir.join(format!("{name}.parquet"));
        let on_batch = |df: &DataFrame| {
            if *name == "trials" && with_summary {
                summary.add(df)
            } else {
                Ok(())
            }
        };
        merge_sorted(
            &sources(name),
            &path,
            keys,
            schema,
            metadata(&plan.spec, name),
            on_batch,
        )?;
        written.push(path);
    }
    if with_summary {
        let path = dir.join("summary.parquet");
        let mut df = summary.finish().map_err(|e| e.to_string())?;
        write_parquet(&path, &mut df, metadata(&plan.spec, "summary")).map_err(|e| e.to_string())?;
        written.push(path);
    }
    Ok(written)
}

/// Reads a Parquet file sorted by `trial` a slice at a time.
struct Cursor {
    path: PathBuf,
    read_rows: usize,
    rows: usize,
    offset: usize,
    buf: Option<DataFrame>,
}

/// Rows buffered over all sources of a merge: each source reads
/// `MERGE_BUFFER_ROWS / sources` rows at a time (at least 1024), so memory
/// stays bounded however many parts or shards are merged.
const MERGE_BUFFER_ROWS: usize = 1 << 17;

impl Cursor {
    fn open(path: &Path, read_rows: usize) -> PolarsResult<Cursor> {
        let rows = ParquetReader::new(File::open(path)?).num_rows()?;
        Ok(Cursor {
            path: path.to_path_buf(),
            read_rows,
            rows,
            offset: 0,
            buf: None,
        })
    }

    /// Fills the buffer if it is empty; false when the source is exhausted.
    fn fill(&mut self) -> PolarsResult<bool> {
        if self.buf.as_ref().is_some_and(|b| b.height() > 0) {
            return Ok(true);
        }
        if self.offset >= self.rows {
            return Ok(false);
        }
        let len = self.read_rows.min(self.rows - self.offset);
        let df = ParquetReader::new(File::open(&self.path)?)
            .with_slice(Some((self.offset, len)))
            .finish()?;
        self.offset += len;
        self.buf = Some(df);
        Ok(true)
    }

    /// The trial id of the next unread row.
    fn peek(&mut self) -> PolarsResult<Option<u32>> {
        if !self.fill()? {
            return Ok(None);
        }
        Ok(self
            .buf
            .as_ref()
            .and_then(|b| b.column("trial").ok()?.u32().ok()?.get(0)))
    }

    /// Removes and returns the rows with trial < `hi`.
    fn take_below(&mut self, hi: u32, out: &mut Vec<DataFrame>) -> PolarsResult<()> {
        while self.fill()? {
            let buf = self.buf.take().expect("filled");
            let trial = buf.column("trial")?.u32()?.clone();
            // Sorted by trial: binary search for the first row >= hi.
            let (mut lo, mut up) = (0usize, buf.height());
            while lo < up {
                let mid = (lo + up) / 2;
                if trial.get(mid).unwrap_or(u32::MAX) < hi {
                    lo = mid + 1;
                } else {
                    up = mid;
                }
            }
            if lo > 0 {
                out.push(buf.slice(0, lo));
            }
            let rest = buf.slice(lo as i64, buf.height() - lo);
            let more = rest.height() == 0;
            self.buf = Some(rest);
            if !more {
                break;
            }
        }
        Ok(())
    }
}

/// K-way merge of Parquet files, each sorted by `trial`, into one file
/// sorted by `keys`, in windows of trial ids so that memory stays bounded
/// whatever the total size. `on_batch` sees every batch written.
fn merge_sorted(
    sources: &[PathBuf],
    out: &Path,
    keys: &[&str],
    schema: &Schema,
    meta: Vec<(String, String)>,
    mut on_batch: impl FnMut(&DataFrame) -> PolarsResult<()>,
) -> Result<u64, String> {
    let at = |e: &dyn std::fmt::Display| format!("{}: {e}", out.display());
    let read_rows = (MERGE_BUFFER_ROWS / sources.len().max(1)).max(1024);
    let mut cursors = sources
        .iter()
        .map(|p| Cursor::open(p, read_rows))
        .collect::<PolarsResult<Vec<_>>>()
        .map_err(|e| at(&e))?;
    let mut rows = 0u64;
    write_atomic(out, |file| {
        let other = |e: PolarsError| std::io::Error::other(e.to_string());
        let mut writer = ParquetWriter::new(file)
            .with_compression(ParquetCompression::Zstd(None))
            .with_key_value_metadata(Some(crate::output::key_value_metadata(schema, meta)))
            .batched(schema)
            .map_err(other)?;
        // Window width in trials, adapted to keep 2^15 to 2^17 rows per batch.
        let mut width: u32 = 1024;
        loop {
            let mut lo = None;
            for c in cursors.iter_mut() {
                if let Some(t) = c.peek().map_err(other)? {
                    lo = Some(lo.map_or(t, |l: u32| l.min(t)));
                }
            }
            let Some(lo) = lo else { break };
            let hi = lo.saturating_add(width).max(lo + 1);
            let mut pieces = Vec::new();
            for c in cursors.iter_mut() {
                c.take_below(hi, &mut pieces).map_err(other)?;
            }
            let mut batch = DataFrame::empty_with_schema(schema);
            for piece in pieces {
                batch.vstack_mut_owned(piece).map_err(other)?;
            }
            let batch = batch
                .sort(
                    keys.iter().copied(),
                    SortMultipleOptions::new().with_maintain_order(true),
                )
                .map_err(other)?;
            let n = batch.height();
            if n > 0 {
                writer.write_batch(&batch).map_err(other)?;
                on_batch(&batch).map_err(other)?;
                rows += n as u64;
            }
            if n > 1 << 17 {
                width = (width / 2).max(1);
            } else if n < 1 << 15 {
                width = width.saturating_mul(2).min(1 << 24);
            }
        }
        writer.finish().map_err(other)?;
        Ok(())
    })
    .map_err(|e| e.to_string())?;
    Ok(rows)
}

/// `spikesweep merge OUT`: checks that `OUT/shards/` holds all N complete
/// shards of one spec and writes the tables of the whole run into `OUT`.
/// Returns the paths written and the number of trials.
pub fn merge_shards(out: &Path) -> Result<(Vec<PathBuf>, u64), String> {
    let shards_dir = out.join(SHARDS_DIR);
    let entries = fs::read_dir(&shards_dir).map_err(|e| {
        format!(
            "{}: {e} (no shards to merge: run `spikesweep run SPEC --shard K/N --out {}` first)",
            shards_dir.display(),
            out.display()
        )
    })?;
    let mut found: Vec<(Shard, PathBuf)> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().replace("-of-", "/");
            Shard::parse(&name).ok().map(|s| (s, e.path()))
        })
        .collect();
    found.sort_by_key(|(s, _)| (s.count, s.index));
    let counts: std::collections::BTreeSet<u32> = found.iter().map(|(s, _)| s.count).collect();
    let count = match counts.len() {
        0 => return Err(format!("{}: holds no shard directories (K-of-N)", shards_dir.display())),
        1 => *counts.iter().next().expect("one"),
        _ => {
            return Err(format!(
                "{}: holds shards of different counts N ({counts:?}): keep one sharding",
                shards_dir.display()
            ))
        }
    };
    let mut missing = Vec::new();
    let mut incomplete = Vec::new();
    let mut manifests = Vec::new();
    for k in 0..count {
        let shard = Shard { index: k, count };
        match found.iter().find(|(s, _)| *s == shard) {
            None => missing.push(shard.dir_name()),
            Some((_, dir)) => match read_manifest(dir)? {
                None => incomplete.push(shard.dir_name()),
                Some(m) => manifests.push((shard, dir.clone(), m)),
            },
        }
    }
    if !missing.is_empty() || !incomplete.is_empty() {
        let mut why = Vec::new();
        if !missing.is_empty() {
            why.push(format!("missing: {}", missing.join(", ")));
        }
        if !incomplete.is_empty() {
            why.push(format!(
                "not finished (no manifest.toml; resume them with --resume): {}",
                incomplete.join(", ")
            ));
        }
        return Err(format!(
            "{}: cannot merge {count} shards; {}",
            shards_dir.display(),
            why.join("; ")
        ));
    }
    // Every shard must come from the first one's spec and version.
    let first = &manifests[0];
    for (field, what, why, fix) in [
        (
            (|m: &Manifest| m.spec_hash.clone()) as fn(&Manifest) -> String,
            "from a different spec",
            "spec hashes differ",
            "the same spec",
        ),
        (
            |m: &Manifest| m.spikesweep_version.clone(),
            "by another spikesweep version",
            "results may differ between versions",
            "one version",
        ),
    ] {
        let odd: Vec<String> = manifests
            .iter()
            .filter(|m| field(&m.2) != field(&first.2))
            .map(|m| m.0.dir_name())
            .collect();
        if !odd.is_empty() {
            return Err(format!(
                "{}: shards {} were run {what} than {} ({why}); rerun them with {fix}",
                shards_dir.display(),
                odd.join(", "),
                first.0.dir_name()
            ));
        }
    }
    let spec_path = manifests[0].1.join(SPEC_COPY);
    let text = fs::read_to_string(&spec_path).map_err(|e| format!("{}: {e}", spec_path.display()))?;
    let spec = ExperimentSpec::parse(&text).map_err(|e| format!("{}: {e}", spec_path.display()))?;
    let plan = Plan::new(spec).map_err(|e| format!("{}: {e}", spec_path.display()))?;
    let dirs: Vec<PathBuf> = manifests.iter().map(|m| m.1.clone()).collect();
    let mut written = write_final_tables(out, &plan, true, |table| {
        dirs.iter().map(|d| d.join(format!("{table}.parquet"))).collect()
    })?;
    let trials = manifests.iter().map(|m| m.2.trials).sum();
    write_atomic(&out.join(SPEC_COPY), |f| std::io::Write::write_all(f, text.as_bytes())).map_err(|e| e.to_string())?;
    written.push(out.join(SPEC_COPY));
    written.push(write_manifest(out, &text, None, trials)?);
    Ok((written, trials))
}

/// Rebuilds `summary.parquet` in `dir` from its `trials.parquet`, streaming
/// (after a merge, or from an older run). The swept columns come from the
/// spec stored in the table's metadata. Returns the path written.
pub fn summarize_dir(dir: &Path) -> Result<PathBuf, String> {
    let trials_path = dir.join("trials.parquet");
    let at = |e: &dyn std::fmt::Display| format!("{}: {e}", trials_path.display());
    let spec = crate::output::stored_spec(&trials_path)?;
    let mut summary = SummaryBuilder::new(spec.axes.iter().map(|a| a.column()).collect());
    let mut cursor = Cursor::open(&trials_path, MERGE_BUFFER_ROWS).map_err(|e| at(&e))?;
    while cursor.fill().map_err(|e| at(&e))? {
        let batch = cursor.buf.take().expect("filled");
        summary.add(&batch).map_err(|e| at(&e))?;
    }
    let mut df = summary.finish().map_err(|e| at(&e))?;
    let path = dir.join("summary.parquet");
    write_parquet(&path, &mut df, metadata(&spec, "summary")).map_err(|e| e.to_string())?;
    Ok(path)
}

/// Reads one final table of a run directory (tests, tools).
pub fn read_final(dir: &Path, table: &str) -> PolarsResult<DataFrame> {
    read_table(&dir.join(format!("{table}.parquet")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_parsing_and_ownership() {
        let s = Shard::parse("2/5").unwrap();
        assert_eq!(s.dir_name(), "2-of-5");
        assert!(s.owns(7) && !s.owns(8));
        for bad in ["5/5", "1", "a/2", "0/0", "-1/3"] {
            assert!(Shard::parse(bad).is_err(), "{bad}");
        }
        // Every trial belongs to exactly one shard.
        for id in 0..100 {
            assert_eq!((0..7).filter(|&k| Shard { index: k, count: 7 }.owns(id)).count(), 1);
        }
    }

    #[test]
    fn a_run_is_resumed_only_by_the_version_that_started_it() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("run");
        let text = "name = \"v\"\nreplicates = 2\n[time]\nduration_ms = 5.0\n";
        let plan = Plan::new(ExperimentSpec::parse(text).unwrap()).unwrap();
        open_run(&dir, &plan, Existing::Refuse).unwrap();
        let trial = plan.trial(0);
        let outcome = crate::run::simulate_trial(&plan.points[0].config, trial.seed);
        write_part(
            &dir,
            &plan,
            &[TrialResult {
                trial,
                outcome,
                wall_ms: 1.0,
            }],
        )
        .unwrap();
        // The same version resumes it, the one trial left to do.
        assert_eq!(open_run(&dir, &plan, Existing::Resume).unwrap().done, vec![0]);
        // A part written by another version: refused, naming both.
        let part = &committed_parts(&dir).unwrap()[0];
        let path = part.table("trials");
        let mut df = read_table(&path).unwrap();
        let mut meta = metadata(&plan.spec, "trials");
        meta.iter_mut().find(|(k, _)| k == "spikesweep.version").unwrap().1 = "0.0.1".into();
        write_parquet(&path, &mut df, meta).unwrap();
        let e = open_run(&dir, &plan, Existing::Resume).map(|_| ()).unwrap_err();
        assert!(
            e.contains(&format!(
                "written by spikesweep 0.0.1, this is {}",
                env!("CARGO_PKG_VERSION")
            )),
            "{e}"
        );
    }

    #[test]
    fn spec_hash_is_fnv1a() {
        // FNV-1a 64 of "" and of "a" (published test vectors).
        assert_eq!(spec_hash(""), "cbf29ce484222325");
        assert_eq!(spec_hash("a"), "af63dc4c8601ec8c");
    }
}
