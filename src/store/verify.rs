//! Checks that what a directory holds is what its records say: a part
//! against its record, final tables against the manifest, a shard against
//! its manifest and the plan (its ids are exactly those K mod N, each once,
//! in every file, from the same spec). A failed check is a sentence naming
//! the file and what differs.

use super::{polars_at, FileRecord, Manifest, Shard, StoreError};
use crate::plan::Plan;
use polars::prelude::*;
use std::fs::File;
use std::io::Read;
use std::path::Path;
use xxhash_rust::xxh3::{xxh3_64, Xxh3};

/// xxh3-64 of a file's bytes, as 16 hex digits.
pub fn checksum_file(path: &Path) -> std::io::Result<String> {
    let mut file = File::open(path)?;
    let mut hasher = Xxh3::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(format!("{:016x}", hasher.digest()))
}

/// xxh3-64 of bytes, as 16 hex digits.
pub fn checksum_bytes(bytes: &[u8]) -> String {
    format!("{:016x}", xxh3_64(bytes))
}

/// xxh3-64 of sorted trial ids (little-endian u32s), as 16 hex digits.
pub fn ids_hash(ids: &[u32]) -> String {
    let bytes: Vec<u8> = ids.iter().flat_map(|id| id.to_le_bytes()).collect();
    checksum_bytes(&bytes)
}

/// Checks one file against its record: present, same bytes.
pub fn check_file(path: &Path, record: Option<&FileRecord>) -> Result<(), String> {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let Some(record) = record else {
        return Err(format!("{name} is not in the record"));
    };
    match checksum_file(path) {
        Ok(sum) if sum == record.xxh3 => Ok(()),
        Ok(sum) => Err(format!(
            "{name}: checksum {sum} differs from the recorded {} (changed, truncated or replaced after it was written)",
            record.xxh3
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(format!("{name} is missing")),
        Err(e) => Err(format!("{name}: {e}")),
    }
}

/// Rows of the `trial` column read at a time by [`for_each_trial_chunk`].
const ID_CHUNK: usize = 1 << 20;

/// Calls `f` on the `trial` column of a Parquet file, a slice at a time
/// (memory stays bounded for any size).
pub fn for_each_trial_chunk(
    path: &Path,
    mut f: impl FnMut(&UInt32Chunked) -> Result<(), String>,
) -> Result<(), StoreError> {
    let open = || File::open(path).map_err(super::io_at(path));
    let rows = ParquetReader::new(open()?).num_rows().map_err(polars_at(path))?;
    let mut offset = 0;
    while offset < rows {
        let len = ID_CHUNK.min(rows - offset);
        let df = ParquetReader::new(open()?)
            .with_columns(Some(vec!["trial".into()]))
            .with_slice(Some((offset, len)))
            .finish()
            .map_err(polars_at(path))?;
        let ids = df
            .column("trial")
            .and_then(|c| c.u32().cloned())
            .map_err(polars_at(path))?;
        f(&ids).map_err(|check| StoreError::refused(path, check))?;
        offset += len;
    }
    Ok(())
}

/// The trial ids of a trials file, in row order.
pub fn trial_ids(path: &Path) -> Result<Vec<u32>, StoreError> {
    let mut ids = Vec::new();
    for_each_trial_chunk(path, |c| {
        ids.extend(c.iter().flatten());
        Ok(())
    })?;
    Ok(ids)
}

/// The ids `ids` must be: strictly increasing (each once) and equal to
/// `expected` (sorted). Names the first difference.
pub fn check_ids(ids: &[u32], expected: &[u32]) -> Result<(), String> {
    if let Some(w) = ids.windows(2).find(|w| w[1] <= w[0]) {
        return Err(if w[0] == w[1] {
            format!("trial {} appears more than once", w[0])
        } else {
            format!("trials are not sorted ({} after {})", w[1], w[0])
        });
    }
    if let Some(extra) = ids.iter().find(|id| expected.binary_search(id).is_err()) {
        return Err(format!("trial {extra} does not belong here"));
    }
    if ids.len() != expected.len() {
        let missing = expected.iter().find(|id| ids.binary_search(id).is_err());
        return Err(format!(
            "holds {} of its {} trials (trial {} is missing)",
            ids.len(),
            expected.len(),
            missing.copied().unwrap_or_default()
        ));
    }
    Ok(())
}

/// The metadata spec and model of a table equal the plan's, its version
/// the manifest's.
fn check_written_from(path: &Path, plan: &Plan, version: &str) -> Result<(), String> {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let meta = crate::output::read_metadata(path).map_err(|e| format!("{name}: {e}"))?;
    let get = |k: &str| meta.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
    if get("spikesweep.spec") != Some(plan.spec.text.as_str()) {
        return Err(format!("{name} was written from another spec"));
    }
    if get("spikesweep.model").is_some_and(|m| m != plan.spec.model.text) {
        return Err(format!("{name} was written with another neuron model"));
    }
    if get("spikesweep.version") != Some(version) {
        return Err(format!(
            "{name} was written by spikesweep {}, its manifest by {version}",
            get("spikesweep.version").unwrap_or("(unknown)")
        ));
    }
    Ok(())
}

/// Checks a finished shard `dir` (its manifest `m`) against the plan:
/// its manifest names it, every table is present with the recorded bytes
/// and written from the plan's spec, trials.parquet holds exactly the ids
/// K mod N of the plan, each once, and the other tables only those ids, in
/// order.
pub fn check_shard(dir: &Path, shard: Shard, m: &Manifest, plan: &Plan) -> Result<(), StoreError> {
    let bad = |check: String| StoreError::BadShard {
        dir: dir.to_path_buf(),
        shard: shard.dir_name(),
        check,
    };
    if m.shard.as_deref() != Some(shard.label().as_str()) {
        return Err(bad(format!(
            "its manifest.toml is that of shard {} (a copied directory?)",
            m.shard.as_deref().unwrap_or("(none: a whole run)")
        )));
    }
    let expected = super::owned_ids(plan.n_trials(), Some(shard));
    let tables = super::merge::data_tables(plan);
    for (table, _) in &tables {
        let path = dir.join(format!("{table}.parquet"));
        if !m.files.is_empty() {
            check_file(&path, m.files.get(*table)).map_err(bad)?;
        } else if !path.exists() {
            return Err(bad(format!("{table}.parquet is missing")));
        }
        check_written_from(&path, plan, &m.spikesweep_version).map_err(bad)?;
    }
    let ids = trial_ids(&dir.join("trials.parquet")).map_err(|e| bad(e.to_string()))?;
    check_ids(&ids, &expected).map_err(|e| bad(format!("trials.parquet: {e}")))?;
    if m.trials != ids.len() as u64 || (!m.ids_hash.is_empty() && m.ids_hash != ids_hash(&ids)) {
        return Err(bad("trials.parquet: its ids differ from the manifest's".into()));
    }
    for (table, _) in &tables[1..] {
        let path = dir.join(format!("{table}.parquet"));
        let mut last: Option<u32> = None;
        for_each_trial_chunk(&path, |c| {
            for id in c.iter() {
                let id = id.ok_or("a null trial id")?;
                if let Some(l) = last.filter(|&l| id < l) {
                    return Err(format!("not sorted by trial ({id} after {l})"));
                }
                if last != Some(id) && ids.binary_search(&id).is_err() {
                    return Err(format!("trial {id} is not among the shard's trials"));
                }
                last = Some(id);
            }
            Ok(())
        })
        .map_err(|e| bad(e.to_string()))?;
    }
    Ok(())
}

/// Checks the final tables of a complete run `dir` against its manifest;
/// the first table that fails and why.
pub fn check_final(dir: &Path, m: &Manifest, tables: &[&str]) -> Option<(String, String)> {
    for table in tables {
        let path = dir.join(format!("{table}.parquet"));
        let result = if m.files.is_empty() {
            // A manifest without checksums (before 0.3.1): present and
            // readable is all that can be asked.
            File::open(&path)
                .map_err(|e| e.to_string())
                .and_then(|f| ParquetReader::new(f).num_rows().map_err(|e| e.to_string()))
                .map(|_| ())
        } else {
            check_file(&path, m.files.get(*table))
        };
        if let Err(check) = result {
            return Some((table.to_string(), check));
        }
    }
    None
}
