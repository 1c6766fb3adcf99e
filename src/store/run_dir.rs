//! One run directory: opening it (fresh, resumed or forced), committing
//! parts, checking them on resume, finishing the run. Every function takes
//! the directory's [`DirLock`]: only its holder writes.

use super::merge::{data_tables, new_staging, write_final_tables};
use super::verify::{check_file, check_final, checksum_bytes, ids_hash, trial_ids};
use super::{
    io_at, owned_ids, polars_at, read_manifest, read_record, write_record, DirLock, FileRecord, Manifest, Shard,
    StoreError, MANIFEST, PARTS_DIR, SET_ASIDE_DIR, STAGING_DIR,
};
use crate::output::{build_tables, metadata, write_atomic, SPEC_COPY};
use crate::plan::Plan;
use crate::run::TrialResult;
use polars::prelude::*;
use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};

const VERSION: &str = env!("CARGO_PKG_VERSION");

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

/// A part or table that failed its check and was moved aside.
#[derive(Debug, Clone, PartialEq)]
pub struct SetAside {
    /// The part (its stem, `DIR/parts/part-A-B`) or table that failed.
    pub path: PathBuf,
    /// Where its files now are.
    pub moved_to: PathBuf,
    /// What failed.
    pub check: String,
}

/// A run directory ready to take trials.
#[derive(Debug)]
pub struct OpenRun {
    /// Trial ids already committed in parts (checked), sorted.
    pub done: Vec<u32>,
    /// The directory already holds a complete run of this spec, its final
    /// tables checked against its manifest.
    pub complete: bool,
    /// Parts or final tables that failed their check: their trials are
    /// computed again.
    pub set_aside: Vec<SetAside>,
    /// Files of an earlier run deleted (`Existing::Overwrite`).
    pub removed: usize,
}

/// The files spikesweep writes into a run directory (not `shards/`, not
/// the lock file).
fn our_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = ["trials", "neurons", "spikes", "pairs", "summary"]
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

/// Prepares the locked directory for running `plan` (or its `shard`),
/// creating it, or checking and cleaning what an earlier run left there,
/// as `existing` says.
pub fn open_run(lock: &DirLock, plan: &Plan, shard: Option<Shard>, existing: Existing) -> Result<OpenRun, StoreError> {
    let dir = lock.dir();
    let parts = dir.join(PARTS_DIR);
    let files = our_files(dir);
    let started = parts.exists() || !files.is_empty();
    let mut removed = 0;
    if started && existing == Existing::Overwrite {
        // --force deletes first: the lock keeps everyone else out meanwhile.
        removed = files.len();
        for f in files {
            fs::remove_file(&f).map_err(io_at(&f))?;
        }
        for sub in [PARTS_DIR, SET_ASIDE_DIR, STAGING_DIR] {
            let path = dir.join(sub);
            if path.exists() {
                removed += fs::read_dir(&path).map(|e| e.count()).unwrap_or(0);
                fs::remove_dir_all(&path).map_err(io_at(&path))?;
            }
        }
    } else if started {
        return reopen(dir, plan, shard, existing);
    }
    fs::create_dir_all(&parts).map_err(io_at(&parts))?;
    write_atomic(&dir.join(SPEC_COPY), |f| {
        std::io::Write::write_all(f, plan.spec.text.as_bytes())
    })?;
    Ok(OpenRun {
        done: vec![],
        complete: false,
        set_aside: vec![],
        removed,
    })
}

/// Opens a directory that holds a run: refuses, or checks it for a resume.
fn reopen(dir: &Path, plan: &Plan, shard: Option<Shard>, existing: Existing) -> Result<OpenRun, StoreError> {
    let manifest = read_manifest(dir)?;
    if existing == Existing::Refuse {
        return Err(StoreError::refused(
            dir,
            match manifest {
                Some(_) => "already holds a complete run; pass --force to overwrite it".to_string(),
                None => format!(
                    "holds an interrupted run ({} trials written); pass --resume to continue it or --force to start over",
                    written_trials(dir)?
                ),
            },
        ));
    }
    let spec_path = dir.join(SPEC_COPY);
    let stored = fs::read_to_string(&spec_path).map_err(io_at(&spec_path))?;
    if stored != plan.spec.text {
        return Err(StoreError::refused(
            dir,
            "was started from a different spec (see its spec.toml); --resume needs the same spec, --force starts over",
        ));
    }
    let mut set_aside = Vec::new();
    if let Some(m) = manifest {
        if !m.same_spec(&plan.spec) {
            return Err(StoreError::refused(
                dir,
                "was finished with another neuron model (its model file changed since); --force starts over",
            ));
        }
        let mut tables: Vec<&str> = data_tables(plan).iter().map(|t| t.0).collect();
        if shard.is_none() {
            tables.push("summary");
        }
        let Some((table, check)) = check_final(dir, &m, &tables) else {
            return Ok(OpenRun {
                done: vec![],
                complete: true,
                set_aside,
                removed: 0,
            });
        };
        // Not complete after all: the failing table is set aside, the
        // manifest and the other tables removed, and the run recomputed.
        let path = dir.join(format!("{table}.parquet"));
        if path.exists() {
            set_aside.push(set_aside_files(dir, &path, std::slice::from_ref(&path), check)?);
        } else {
            set_aside.push(SetAside {
                path: path.clone(),
                moved_to: path,
                check,
            });
        }
        let manifest_path = dir.join(MANIFEST);
        fs::remove_file(&manifest_path).map_err(io_at(&manifest_path))?;
        for t in tables {
            let p = dir.join(format!("{t}.parquet"));
            if p.exists() {
                fs::remove_file(&p).map_err(io_at(&p))?;
            }
        }
    }
    let (done, bad) = check_parts(dir, plan, shard)?;
    set_aside.extend(bad);
    Ok(OpenRun {
        done,
        complete: false,
        set_aside,
        removed: 0,
    })
}

/// A committed part: `DIR/parts/part-A-B` and its files.
pub(crate) struct Part {
    stem: PathBuf,
}

impl Part {
    fn name(&self) -> String {
        self.stem.file_name().unwrap_or_default().to_string_lossy().into_owned()
    }

    /// `stem.<what>`: `trials.parquet`, `record.toml`, ...
    fn file(&self, what: &str) -> PathBuf {
        let mut p = self.stem.clone().into_os_string();
        p.push(format!(".{what}"));
        PathBuf::from(p)
    }

    pub(crate) fn table(&self, name: &str) -> PathBuf {
        self.file(&format!("{name}.parquet"))
    }

    /// Every file of the part present in its directory.
    fn files(&self) -> Vec<PathBuf> {
        let prefix = format!("{}.", self.name());
        let dir = self.stem.parent().unwrap_or(Path::new("."));
        fs::read_dir(dir)
            .map(|entries| {
                entries
                    .flatten()
                    .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
                    .map(|e| e.path())
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// Committed parts (those whose trials file exists), in name order.
pub(crate) fn committed_parts(dir: &Path) -> Result<Vec<Part>, StoreError> {
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
    Ok(stems.into_iter().map(|stem| Part { stem }).collect())
}

/// Trials in the committed parts of `dir` (rows of their trials files).
fn written_trials(dir: &Path) -> Result<usize, StoreError> {
    let mut n = 0;
    for part in committed_parts(dir)? {
        let path = part.table("trials");
        let file = fs::File::open(&path).map_err(io_at(&path))?;
        n += ParquetReader::new(file).num_rows().map_err(polars_at(&path))?;
    }
    Ok(n)
}

/// Why a part is not used.
enum PartCheck {
    /// It cannot be used, and the run must not go on (another version,
    /// another spec).
    Refuse(StoreError),
    /// It fails a check: set it aside and compute its trials again.
    Bad(String),
}

/// Checks a committed part against its record and the plan; its ids.
fn check_part(dir: &Path, part: &Part, plan: &Plan, mine: &[u32]) -> Result<Vec<u32>, PartCheck> {
    let record = match read_record(&part.file("record.toml")) {
        Ok(Some(r)) => r,
        Ok(None) => {
            // Parts of spikesweep 0.3.0 and before have no record.
            let path = part.table("trials");
            let meta = crate::output::read_metadata(&path).unwrap_or_default();
            let written_by = meta
                .iter()
                .find(|(k, _)| k == "spikesweep.version")
                .map(|(_, v)| v.as_str());
            if written_by != Some(VERSION) {
                return Err(PartCheck::Refuse(other_version(dir, written_by)));
            }
            return Err(PartCheck::Bad("it has no record (record.toml)".into()));
        }
        Err(e) => return Err(PartCheck::Bad(e.to_string())),
    };
    if record.spikesweep_version != VERSION {
        return Err(PartCheck::Refuse(other_version(
            dir,
            Some(record.spikesweep_version.as_str()),
        )));
    }
    if !record.same_spec(&plan.spec) {
        return Err(PartCheck::Refuse(StoreError::refused(
            &part.stem,
            "was written from another spec or neuron model (did the model file change since the run started?); --force starts over",
        )));
    }
    if record.part.as_deref() != Some(part.name().as_str()) {
        return Err(PartCheck::Bad(format!(
            "its record is that of part {} (a copied part?)",
            record.part.as_deref().unwrap_or("(none)")
        )));
    }
    for (table, _) in data_tables(plan) {
        check_file(&part.table(table), record.files.get(table)).map_err(PartCheck::Bad)?;
    }
    let ids = trial_ids(&part.table("trials")).map_err(|e| PartCheck::Bad(e.to_string()))?;
    if ids.len() as u64 != record.trials || ids_hash(&ids) != record.ids_hash {
        return Err(PartCheck::Bad("its trial ids differ from its record".into()));
    }
    if let Some(w) = ids.windows(2).find(|w| w[1] <= w[0]) {
        return Err(PartCheck::Bad(format!("trial {} appears twice or out of order", w[1])));
    }
    if let Some(id) = ids.iter().find(|id| mine.binary_search(id).is_err()) {
        return Err(PartCheck::Bad(format!("trial {id} is not one of this run's")));
    }
    Ok(ids)
}

fn other_version(dir: &Path, written_by: Option<&str>) -> StoreError {
    StoreError::refused(
        dir,
        format!(
            "its trials so far were written by spikesweep {}, this is {VERSION}, and results may differ between versions: finish it with that version, or --force to start over",
            written_by.unwrap_or("(unknown)"),
        ),
    )
}

/// Removes what a killed write left (temporary files, parts whose trials
/// file never landed), checks every committed part, sets aside those that
/// fail (or repeat trials of an earlier part) and returns the trial ids of
/// the others, sorted.
fn check_parts(dir: &Path, plan: &Plan, shard: Option<Shard>) -> Result<(Vec<u32>, Vec<SetAside>), StoreError> {
    let parts_dir = dir.join(PARTS_DIR);
    fs::create_dir_all(&parts_dir).map_err(io_at(&parts_dir))?;
    let parts = committed_parts(dir)?;
    let committed: HashSet<String> = parts.iter().map(Part::name).collect();
    for entry in fs::read_dir(&parts_dir).map_err(io_at(&parts_dir))?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let stem = name.split('.').next().unwrap_or_default();
        if name.ends_with(".tmp") || !committed.contains(stem) {
            fs::remove_file(entry.path()).map_err(io_at(&entry.path()))?;
        }
    }
    let mine = owned_ids(plan.n_trials(), shard);
    let (mut done, mut seen, mut set_aside) = (Vec::new(), HashSet::new(), Vec::new());
    for part in parts {
        let check = match check_part(dir, &part, plan, &mine) {
            Ok(ids) => match ids.iter().find(|id| seen.contains(*id)).copied() {
                Some(id) => format!("trial {id} is also in an earlier part (a copied part?)"),
                None => {
                    seen.extend(ids.iter().copied());
                    done.extend(ids);
                    continue;
                }
            },
            Err(PartCheck::Refuse(e)) => return Err(e),
            Err(PartCheck::Bad(check)) => check,
        };
        set_aside.push(set_aside_files(dir, &part.stem, &part.files(), check)?);
    }
    done.sort_unstable();
    Ok((done, set_aside))
}

/// Moves `files` (of the part or table `what`) into `DIR/set-aside/`.
fn set_aside_files(dir: &Path, what: &Path, files: &[PathBuf], check: String) -> Result<SetAside, StoreError> {
    let aside = dir.join(SET_ASIDE_DIR);
    fs::create_dir_all(&aside).map_err(io_at(&aside))?;
    for f in files {
        let name = f.file_name().unwrap_or_default().to_string_lossy().into_owned();
        // A name set aside before keeps its file: number the new one.
        let mut to = aside.join(format!("{name}.bad"));
        let mut k = 1;
        while to.exists() {
            to = aside.join(format!("{name}.bad{k}"));
            k += 1;
        }
        fs::rename(f, &to).map_err(io_at(f))?;
    }
    Ok(SetAside {
        path: what.to_path_buf(),
        moved_to: aside,
        check,
    })
}

/// Encodes a table as Parquet bytes (zstd, with metadata), as
/// [`crate::output::write_parquet`] writes it.
fn parquet_bytes(df: &mut DataFrame, meta: Vec<(String, String)>) -> PolarsResult<Vec<u8>> {
    let mut bytes = Vec::new();
    let meta = crate::output::key_value_metadata(df.schema(), meta);
    ParquetWriter::new(&mut bytes)
        .with_compression(ParquetCompression::Zstd(None))
        .with_key_value_metadata(Some(meta))
        .finish(df)?;
    Ok(bytes)
}

/// Commits a batch of finished trials (sorted by id) as one part: its
/// neurons and spikes files, its record (ids, rows, checksums of the very
/// bytes written), and last its trials file, whose presence commits it.
pub fn write_part(lock: &DirLock, plan: &Plan, results: &[TrialResult]) -> Result<(), StoreError> {
    let dir = lock.dir();
    let (Some(first), Some(last)) = (results.first(), results.last()) else {
        return Ok(());
    };
    let part = Part {
        stem: dir
            .join(PARTS_DIR)
            .join(format!("part-{:010}-{:010}", first.trial.id, last.trial.id)),
    };
    let tables = build_tables(plan, results).map_err(polars_at(&part.stem))?;
    let mut files = BTreeMap::new();
    let mut trials_bytes = Vec::new();
    // Trials last: their file is written last, after the record.
    let mut named = tables.into_named();
    named.rotate_left(1);
    for (name, mut df) in named {
        let path = part.table(name);
        let bytes = parquet_bytes(&mut df, metadata(&plan.spec, name)).map_err(polars_at(&path))?;
        let record = FileRecord {
            rows: df.height() as u64,
            xxh3: checksum_bytes(&bytes),
        };
        files.insert(name.to_string(), record);
        if name == "trials" {
            trials_bytes = bytes;
        } else {
            write_atomic(&path, |f| std::io::Write::write_all(f, &bytes))?;
        }
    }
    let mut ids: Vec<u32> = results.iter().map(|r| r.trial.id).collect();
    ids.sort_unstable();
    let mut record = Manifest::new(&plan.spec, ids.len() as u64, ids_hash(&ids), files);
    record.part = Some(part.name());
    write_record(&part.file("record.toml"), &record)?;
    // Trials last: its presence is what commits the part.
    write_atomic(&part.table("trials"), |f| std::io::Write::write_all(f, &trials_bytes))?;
    Ok(())
}

/// Merges the committed parts of the locked directory into its final
/// tables (and, for a whole run, summary.parquet) in a staging directory,
/// checks that they hold exactly the trials of the plan (or shard), switches
/// them in with the manifest written last, and removes the parts. Returns
/// the paths written.
pub fn finish_run(lock: &DirLock, plan: &Plan, shard: Option<Shard>) -> Result<Vec<PathBuf>, StoreError> {
    let dir = lock.dir();
    let parts = committed_parts(dir)?;
    let staging = new_staging(dir)?;
    let staged = write_final_tables(&staging, plan, shard.is_none(), |table| {
        parts.iter().map(|p| p.table(table)).collect()
    })?;
    let mine = owned_ids(plan.n_trials(), shard);
    if staged.trials != mine.len() as u64 || staged.ids_hash != ids_hash(&mine) {
        return Err(StoreError::refused(
            &dir.join(PARTS_DIR),
            format!(
                "the parts hold {} trials, not exactly the {} of this run: run again with --resume to check them",
                staged.trials,
                mine.len()
            ),
        ));
    }
    let mut manifest = Manifest::new(&plan.spec, staged.trials, staged.ids_hash.clone(), staged.files.clone());
    manifest.shard = shard.map(|s| s.label());
    let written = staged.switch_in(dir, &[], &manifest)?;
    let parts_dir = dir.join(PARTS_DIR);
    fs::remove_dir_all(&parts_dir).map_err(io_at(&parts_dir))?;
    Ok(written)
}
