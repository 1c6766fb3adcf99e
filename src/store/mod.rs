//! Run directories: trials stream into committed *parts* as they finish; a
//! finished run merges its parts into the final, sorted tables; an
//! interrupted run resumes where it stopped; the shards of one spec merge
//! into the very tables an unsharded run writes.
//!
//! Layout of a run directory `DIR` (or of a shard, `OUT/shards/K-of-N/`):
//!
//! ```text
//! .lock                  flock'ed by the one process writing DIR (pid and host inside)
//! spec.toml              the spec, written first: a resume must match it
//! parts/part-A-B.*.parquet  committed batches of trials A..=B (while running)
//! parts/part-A-B.record.toml  what the part holds: ids, rows, checksums
//! set-aside/             parts or tables that failed their check (kept to look at)
//! trials.parquet ...     the final tables, sorted (after the last trial)
//! manifest.toml          written last: the directory is complete (ids, rows, checksums)
//! ```
//!
//! Every file is written to a temporary name, fsynced and renamed (see
//! [`crate::output::write_atomic`]); a part is committed when its trials file
//! exists, which is written after its neurons and spikes files and its
//! record. So a kill at any instant (SIGKILL included) leaves only complete
//! files under final names, and a resume recomputes exactly the trials no
//! committed part holds. Nothing is trusted unread: a resume checks every
//! part against its record, a merge every shard against its manifest and
//! the plan ([`verify`]), and final tables are switched in with the
//! manifest removed first and written last ([`merge`]).

mod campaign;
mod lock;
mod merge;
mod run_dir;
mod verify;

#[cfg(test)]
mod tests;

pub use campaign::{Campaign, CampaignStats};
pub use lock::{DirLock, LOCK_FILE};
pub use merge::{merge_shards, summarize_dir};
pub use run_dir::{finish_run, open_run, write_part, Existing, OpenRun, SetAside};
pub use verify::{checksum_file, ids_hash};

use crate::output::{read_table, OutputError};
use crate::spec::ExperimentSpec;
use polars::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

pub const PARTS_DIR: &str = "parts";
pub const MANIFEST: &str = "manifest.toml";
pub const SHARDS_DIR: &str = "shards";
/// Where parts and tables that failed their check are moved.
pub const SET_ASIDE_DIR: &str = "set-aside";
/// Where final tables are written before they are switched in.
pub const STAGING_DIR: &str = ".staging";

/// Why a run directory could not be opened, written, resumed or merged.
/// Every variant names the path it concerns: the part, shard or table at
/// fault, or the directory.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{}: {source}", .path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{}: {source}", .path.display())]
    Polars { path: PathBuf, source: PolarsError },
    #[error(transparent)]
    Output(#[from] OutputError),
    /// Another process holds the directory's lock.
    #[error(
        "{}: in use by another spikesweep process ({holder}); one process writes a run directory at a time: wait for it to end or stop it",
        .dir.display()
    )]
    Locked { dir: PathBuf, holder: String },
    /// The directory holds something this command must not touch or use
    /// (another spec, another version, a complete run): the message says
    /// what and how to go on.
    #[error("{}: {message}", .path.display())]
    Refused { path: PathBuf, message: String },
    /// A shard failed a check; `check` says which.
    #[error("{}: shard {shard} fails a check: {check}; nothing was merged (delete the shard and run it again)", .dir.display())]
    BadShard { dir: PathBuf, shard: String, check: String },
}

impl StoreError {
    pub(crate) fn refused(path: &Path, message: impl Into<String>) -> StoreError {
        StoreError::Refused {
            path: path.to_path_buf(),
            message: message.into(),
        }
    }
}

/// An `io::Error` about `path`.
pub(crate) fn io_at(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A `PolarsError` about `path`.
pub(crate) fn polars_at(path: &Path) -> impl FnOnce(PolarsError) -> StoreError + '_ {
    move |source| StoreError::Polars {
        path: path.to_path_buf(),
        source,
    }
}

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

    /// "K/N", as manifests record it.
    pub fn label(&self) -> String {
        format!("{}/{}", self.index, self.count)
    }

    pub fn owns(&self, trial: u32) -> bool {
        trial % self.count == self.index
    }
}

/// The trial ids of `n_trials` that `shard` (or a whole run) computes.
pub fn owned_ids(n_trials: u32, shard: Option<Shard>) -> Vec<u32> {
    (0..n_trials).filter(|&id| shard.is_none_or(|s| s.owns(id))).collect()
}

/// One file as a manifest or part record knows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileRecord {
    pub rows: u64,
    /// xxh3-64 of the file's bytes, 16 hex digits.
    pub xxh3: String,
}

/// Written last into a complete run directory (`manifest.toml`), and
/// beside every committed part (`part-A-B.record.toml`, with `part` set):
/// what it holds and how to check it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub spikesweep_version: String,
    pub schema_version: String,
    /// [`spec_hash`] of the spec text: the shards of one run must agree.
    pub spec_hash: String,
    /// [`spec_hash`] of the neuron model's text (a model file's contents,
    /// or the built-in model's): the spec's other half. Absent before 0.3.1.
    #[serde(default)]
    pub model_hash: String,
    /// "K/N" for a shard; absent for a whole run.
    pub shard: Option<String>,
    /// The part's name (`part-A-B`) in a part record; absent in a manifest.
    pub part: Option<String>,
    /// Rows of trials.parquet: the number of trials.
    pub trials: u64,
    /// [`ids_hash`] of the sorted trial ids.
    #[serde(default)]
    pub ids_hash: String,
    /// Per table (`trials`, `neurons`, ...): rows and checksum.
    #[serde(default)]
    pub files: BTreeMap<String, FileRecord>,
}

impl Manifest {
    /// A manifest of `spec`'s run (or part) holding `trials` trials whose
    /// sorted ids hash to `ids_hash`.
    pub fn new(spec: &ExperimentSpec, trials: u64, ids_hash: String, files: BTreeMap<String, FileRecord>) -> Manifest {
        let (spec_hash, model_hash) = identity(spec);
        Manifest {
            spikesweep_version: env!("CARGO_PKG_VERSION").into(),
            schema_version: crate::output::SCHEMA_VERSION.into(),
            spec_hash,
            model_hash,
            shard: None,
            part: None,
            trials,
            ids_hash,
            files,
        }
    }

    /// Same spec text and, where recorded, same model text as `spec`.
    pub fn same_spec(&self, spec: &ExperimentSpec) -> bool {
        let (s, m) = identity(spec);
        self.spec_hash == s && (self.model_hash.is_empty() || self.model_hash == m)
    }

    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("a manifest serializes")
    }
}

/// FNV-1a (64 bit) of a text, as 16 hex digits: an identity check for
/// shards and resumes, not a security measure.
pub fn spec_hash(text: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h = (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// A spec's identity: the hashes of its text and of its neuron model's
/// text (a user model file can change while the spec text does not).
pub fn identity(spec: &ExperimentSpec) -> (String, String) {
    (spec_hash(&spec.text), spec_hash(&spec.model.text))
}

/// Reads a manifest or part record; None when the file does not exist.
pub fn read_record(path: &Path) -> Result<Option<Manifest>, StoreError> {
    match fs::read_to_string(path) {
        Ok(text) => toml::from_str(&text)
            .map(Some)
            .map_err(|e| StoreError::refused(path, format!("unreadable: {e}"))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_at(path)(e)),
    }
}

/// The manifest of a run directory; None when the run is not complete.
pub fn read_manifest(dir: &Path) -> Result<Option<Manifest>, StoreError> {
    read_record(&dir.join(MANIFEST))
}

/// Writes a manifest or record atomically.
pub(crate) fn write_record(path: &Path, record: &Manifest) -> Result<(), StoreError> {
    let text = record.to_toml();
    crate::output::write_atomic(path, |f| std::io::Write::write_all(f, text.as_bytes()))?;
    Ok(())
}

/// The spec stored in a table's metadata (with its model's text).
pub(crate) fn stored_spec(path: &Path) -> Result<ExperimentSpec, StoreError> {
    crate::output::stored_spec(path).map_err(|e| {
        let prefix = format!("{}: ", path.display());
        StoreError::refused(path, e.strip_prefix(&prefix).unwrap_or(&e))
    })
}

/// Reads one final table of a run directory (tests, tools).
pub fn read_final(dir: &Path, table: &str) -> PolarsResult<DataFrame> {
    read_table(&dir.join(format!("{table}.parquet")))
}
