//! Final tables: a windowed k-way merge of sorted sources (the parts of a
//! run, or the shards of a sharded run) into a staging directory, then
//! switched into the run directory with the manifest removed first and
//! written last, so that a failed or killed merge leaves the previous
//! complete run or a directory without a manifest (incomplete), never a
//! complete-looking mix. `merge_shards` checks every shard before it
//! writes anything.

use super::verify::{check_shard, checksum_file};
use super::{
    io_at, polars_at, read_manifest, write_record, DirLock, FileRecord, Manifest, Shard, StoreError, MANIFEST,
    SHARDS_DIR, STAGING_DIR,
};
use crate::output::{metadata, write_atomic, write_parquet, SummaryBuilder, SPEC_COPY};
use crate::plan::Plan;
use polars::prelude::*;
use std::collections::BTreeMap;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use xxhash_rust::xxh3::Xxh3;

/// The data tables of a run and the columns they are sorted by, trials
/// first: `pairs` too where the spec asks for it (`measures.pairs`).
pub(crate) fn data_tables(plan: &Plan) -> Vec<(&'static str, &'static [&'static str])> {
    let mut tables: Vec<(&str, &[&str])> = vec![
        ("trials", &["trial"]),
        ("neurons", &["trial", "neuron"]),
        ("spikes", &["trial", "neuron", "t_ms"]),
    ];
    if plan.writes_pairs() {
        tables.push(("pairs", &["trial", "i", "j"]));
    }
    tables
}

/// The final tables of a run, as written into the staging directory.
pub(crate) struct Staged {
    pub staging: PathBuf,
    /// Table names (`trials`, ...), in writing order.
    pub tables: Vec<String>,
    pub files: BTreeMap<String, FileRecord>,
    /// ids_hash of the trial ids of trials.parquet, and their number.
    pub ids_hash: String,
    pub trials: u64,
}

/// A fresh, empty staging directory in `dir`.
pub(crate) fn new_staging(dir: &Path) -> Result<PathBuf, StoreError> {
    let staging = dir.join(STAGING_DIR);
    if staging.exists() {
        fs::remove_dir_all(&staging).map_err(io_at(&staging))?;
    }
    fs::create_dir_all(&staging).map_err(io_at(&staging))?;
    Ok(staging)
}

/// Merges sorted `sources(table)` into `staging/<table>.parquet` for every
/// table, plus summary.parquet when `with_summary`, recording rows,
/// checksums and the trial ids.
pub(crate) fn write_final_tables(
    staging: &Path,
    plan: &Plan,
    with_summary: bool,
    sources: impl Fn(&str) -> Vec<PathBuf>,
) -> Result<Staged, StoreError> {
    let empty = crate::output::build_tables(plan, &[]).map_err(polars_at(staging))?;
    let axes: Vec<String> = plan.spec.axes.iter().map(|a| a.column()).collect();
    let mut summary = SummaryBuilder::new(axes);
    let (mut ids, mut trials) = (Xxh3::new(), 0u64);
    let mut staged = Staged {
        staging: staging.to_path_buf(),
        tables: vec![],
        files: BTreeMap::new(),
        ids_hash: String::new(),
        trials: 0,
    };
    let schemas: Vec<_> = empty
        .into_named()
        .into_iter()
        .map(|(name, df)| (name, df.schema().clone()))
        .collect();
    for ((name, keys), (_, schema)) in data_tables(plan).iter().zip(&schemas) {
        let path = staging.join(format!("{name}.parquet"));
        let on_batch = |df: &DataFrame| -> PolarsResult<()> {
            if *name == "trials" {
                for id in df.column("trial")?.u32()?.iter().flatten() {
                    ids.update(&id.to_le_bytes());
                    trials += 1;
                }
                if with_summary {
                    summary.add(df)?;
                }
            }
            Ok(())
        };
        let rows = merge_sorted(
            &sources(name),
            &path,
            keys,
            schema,
            metadata(&plan.spec, name),
            on_batch,
        )?;
        staged.record(name, rows)?;
    }
    if with_summary {
        let path = staging.join("summary.parquet");
        let mut df = summary.finish().map_err(polars_at(&path))?;
        write_parquet(&path, &mut df, metadata(&plan.spec, "summary"))?;
        staged.record("summary", df.height() as u64)?;
    }
    staged.ids_hash = format!("{:016x}", ids.digest());
    staged.trials = trials;
    Ok(staged)
}

impl Staged {
    fn record(&mut self, table: &str, rows: u64) -> Result<(), StoreError> {
        let path = self.staging.join(format!("{table}.parquet"));
        let xxh3 = checksum_file(&path).map_err(io_at(&path))?;
        self.files.insert(table.to_string(), FileRecord { rows, xxh3 });
        self.tables.push(table.to_string());
        Ok(())
    }

    /// Switches the staged tables (and `extra` staged files, e.g. the spec
    /// copy) into `dir`: the old manifest is removed first (from then on the
    /// directory says it is incomplete), the tables renamed in, and
    /// `manifest` written last. Returns the paths now in `dir`.
    pub fn switch_in(self, dir: &Path, extra: &[&str], manifest: &Manifest) -> Result<Vec<PathBuf>, StoreError> {
        let old = dir.join(MANIFEST);
        match fs::remove_file(&old) {
            Ok(()) => sync_dir(dir),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_at(&old)(e)),
        }
        let mut written = Vec::new();
        let names = self.tables.iter().map(|t| format!("{t}.parquet"));
        for name in names.chain(extra.iter().map(|s| s.to_string())) {
            let (from, to) = (self.staging.join(&name), dir.join(&name));
            fs::rename(&from, &to).map_err(io_at(&to))?;
            written.push(to);
        }
        sync_dir(dir);
        write_record(&old, manifest)?;
        written.push(old);
        fs::remove_dir_all(&self.staging).map_err(io_at(&self.staging))?;
        Ok(written)
    }
}

/// Persists renames and removals in `dir` (best effort: not every file
/// system lets a directory be opened).
fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
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

    /// A read error, naming the source (a part or shard file).
    fn error(&self, e: PolarsError) -> std::io::Error {
        std::io::Error::other(format!("reading {}: {e}", self.path.display()))
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
) -> Result<u64, StoreError> {
    let read_rows = (MERGE_BUFFER_ROWS / sources.len().max(1)).max(1024);
    let mut cursors = sources
        .iter()
        .map(|p| Cursor::open(p, read_rows).map_err(polars_at(p)))
        .collect::<Result<Vec<_>, _>>()?;
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
                if let Some(t) = c.peek().map_err(|e| c.error(e))? {
                    lo = Some(lo.map_or(t, |l: u32| l.min(t)));
                }
            }
            let Some(lo) = lo else { break };
            let hi = lo.saturating_add(width).max(lo + 1);
            let mut pieces = Vec::new();
            for c in cursors.iter_mut() {
                c.take_below(hi, &mut pieces).map_err(|e| c.error(e))?;
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
    })?;
    Ok(rows)
}

/// The plan of a shard, from the spec and model stored in its trials table
/// (a model file need not be where it was when the shard ran).
fn plan_of(dir: &Path) -> Option<Plan> {
    let spec = super::stored_spec(&dir.join("trials.parquet")).ok()?;
    Plan::new(spec).ok()
}

/// The shard directories `OUT/shards/K-of-N` of one count N, sorted by K.
fn find_shards(shards_dir: &Path, out: &Path) -> Result<(u32, Vec<(Shard, PathBuf)>), StoreError> {
    let entries = fs::read_dir(shards_dir).map_err(|e| {
        StoreError::refused(
            shards_dir,
            format!(
                "{e} (no shards to merge: run `spikesweep run SPEC --shard K/N --out {}` first)",
                out.display()
            ),
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
    match counts.len() {
        0 => Err(StoreError::refused(shards_dir, "holds no shard directories (K-of-N)")),
        1 => Ok((*counts.iter().next().expect("one"), found)),
        _ => Err(StoreError::refused(
            shards_dir,
            format!("holds shards of different counts N ({counts:?}): keep one sharding"),
        )),
    }
}

/// Every shard must come from the first one's spec (and model) and version.
fn check_same_origin(shards_dir: &Path, manifests: &[(Shard, PathBuf, Manifest)]) -> Result<(), StoreError> {
    let first = &manifests[0];
    for (field, what, why, fix) in [
        (
            (|m: &Manifest| format!("{} {}", m.spec_hash, m.model_hash)) as fn(&Manifest) -> String,
            "from a different spec",
            "spec or model hashes differ",
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
            return Err(StoreError::refused(
                shards_dir,
                format!(
                    "shards {} were run {what} than {} ({why}); rerun them with {fix}",
                    odd.join(", "),
                    first.0.dir_name()
                ),
            ));
        }
    }
    Ok(())
}

/// `spikesweep merge OUT`: checks that `OUT/shards/` holds all N complete
/// shards of one spec, each exactly its trials (see [`check_shard`]), and
/// writes the tables of the whole run into `OUT`, all or nothing. A
/// complete run of another spec in `OUT` is replaced only with `force`.
/// Holds the locks of `OUT` and of every shard throughout. Returns the
/// paths written and the number of trials.
pub fn merge_shards(out: &Path, force: bool) -> Result<(Vec<PathBuf>, u64), StoreError> {
    let shards_dir = out.join(SHARDS_DIR);
    let (count, found) = find_shards(&shards_dir, out)?;
    let _lock = DirLock::acquire(out)?;
    let (mut missing, mut incomplete, mut manifests, mut shard_locks) = (vec![], vec![], vec![], vec![]);
    for k in 0..count {
        let shard = Shard { index: k, count };
        let Some((_, dir)) = found.iter().find(|(s, _)| *s == shard) else {
            missing.push(shard.dir_name());
            continue;
        };
        // A shard still being written (a requeued job, say) is not merged.
        shard_locks.push(DirLock::acquire(dir)?);
        match read_manifest(dir)? {
            None => incomplete.push(shard.dir_name()),
            Some(m) => manifests.push((shard, dir.clone(), m)),
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
        return Err(StoreError::refused(
            &shards_dir,
            format!("cannot merge {count} shards; {}", why.join("; ")),
        ));
    }
    check_same_origin(&shards_dir, &manifests)?;
    let (first, first_dir) = (manifests[0].0, &manifests[0].1);
    let plan = plan_of(first_dir)
        .filter(|p| manifests[0].2.same_spec(&p.spec))
        .ok_or_else(|| StoreError::BadShard {
            dir: first_dir.clone(),
            shard: first.dir_name(),
            check: "trials.parquet does not hold the spec its manifest names".into(),
        })?;
    for (shard, dir, m) in &manifests {
        check_shard(dir, *shard, m, &plan)?;
    }
    if let Some(old) = read_manifest(out)? {
        if !old.same_spec(&plan.spec) && !force {
            return Err(StoreError::refused(
                out,
                "already holds a complete run of another spec (see its spec.toml); pass --force to replace it with the merge of these shards",
            ));
        }
    }
    let staging = new_staging(out)?;
    let dirs: Vec<PathBuf> = manifests.iter().map(|m| m.1.clone()).collect();
    let staged = write_final_tables(&staging, &plan, true, |table| {
        dirs.iter().map(|d| d.join(format!("{table}.parquet"))).collect()
    })?;
    let all = super::owned_ids(plan.n_trials(), None);
    if staged.trials != all.len() as u64 || staged.ids_hash != super::ids_hash(&all) {
        return Err(StoreError::refused(
            out,
            format!(
                "the merged tables hold {} trials, not the plan's {}: nothing was switched in",
                staged.trials,
                all.len()
            ),
        ));
    }
    let text = plan.spec.text.as_bytes();
    write_atomic(&staging.join(SPEC_COPY), |f| std::io::Write::write_all(f, text))?;
    let manifest = Manifest::new(&plan.spec, staged.trials, staged.ids_hash.clone(), staged.files.clone());
    let trials = staged.trials;
    let written = staged.switch_in(out, &[SPEC_COPY], &manifest)?;
    Ok((written, trials))
}

/// Rebuilds `summary.parquet` in `dir` from its `trials.parquet`, streaming
/// (after a merge, or from an older run), and updates the manifest's record
/// of it. The swept columns come from the spec stored in the table's
/// metadata. Holds the directory's lock. Returns the path written.
pub fn summarize_dir(dir: &Path) -> Result<PathBuf, StoreError> {
    let trials_path = dir.join("trials.parquet");
    if !trials_path.exists() {
        return Err(StoreError::refused(
            &trials_path,
            "not found: no trials table to summarize",
        ));
    }
    let _lock = DirLock::acquire(dir)?;
    let spec = super::stored_spec(&trials_path)?;
    let mut summary = SummaryBuilder::new(spec.axes.iter().map(|a| a.column()).collect());
    let mut cursor = Cursor::open(&trials_path, MERGE_BUFFER_ROWS).map_err(polars_at(&trials_path))?;
    while cursor.fill().map_err(polars_at(&trials_path))? {
        let batch = cursor.buf.take().expect("filled");
        summary.add(&batch).map_err(polars_at(&trials_path))?;
    }
    let path = dir.join("summary.parquet");
    let mut df = summary.finish().map_err(polars_at(&path))?;
    write_parquet(&path, &mut df, metadata(&spec, "summary"))?;
    if let Some(mut m) = read_manifest(dir)? {
        if !m.files.is_empty() {
            let xxh3 = checksum_file(&path).map_err(io_at(&path))?;
            let rows = df.height() as u64;
            m.files.insert("summary".into(), FileRecord { rows, xxh3 });
            write_record(&dir.join(MANIFEST), &m)?;
        }
    }
    Ok(path)
}
