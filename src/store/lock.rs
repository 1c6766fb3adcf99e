//! One writer per run directory: an advisory exclusive `flock` on
//! `DIR/.lock`, held for the life of the process that writes `DIR` (run,
//! merge, summarize, --force). The kernel drops the lock when the process
//! ends, however it ends, so a killed run never leaves a stale lock; the
//! file itself stays (removing it would let two processes lock two
//! different files of one name).

use super::{io_at, StoreError};
use fs4::{FileExt, TryLockError};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

/// The lock file in every run directory and shard directory.
pub const LOCK_FILE: &str = ".lock";

/// Holds `DIR/.lock` until dropped.
#[derive(Debug)]
pub struct DirLock {
    dir: PathBuf,
    _file: File,
}

impl DirLock {
    /// Creates `dir` if needed and locks it, or fails with
    /// [`StoreError::Locked`] naming the holder's pid and host.
    pub fn acquire(dir: &Path) -> Result<DirLock, StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| StoreError::Io {
            path: dir.to_path_buf(),
            source: std::io::Error::new(e.kind(), format!("cannot create the output directory: {e}")),
        })?;
        let path = dir.join(LOCK_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io_at(&path))?;
        match FileExt::try_lock(&file) {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = match holder.trim() {
                    "" => "pid and host not yet written".to_string(),
                    h => h.to_string(),
                };
                return Err(StoreError::Locked {
                    dir: dir.to_path_buf(),
                    holder,
                });
            }
            Err(TryLockError::Error(e)) => {
                return Err(StoreError::Io {
                    path: path.clone(),
                    source: std::io::Error::new(
                        e.kind(),
                        format!(
                            "cannot lock it ({e}); see README \"Running on a cluster\" for file systems without flock"
                        ),
                    ),
                })
            }
        }
        // Who holds it, for the message another process prints.
        let who = format!("pid {} on {}\n", std::process::id(), hostname());
        file.set_len(0)
            .and_then(|_| file.rewind())
            .and_then(|_| file.write_all(who.as_bytes()))
            .and_then(|_| file.flush())
            .map_err(io_at(&path))?;
        Ok(DirLock {
            dir: dir.to_path_buf(),
            _file: file,
        })
    }

    /// The locked directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// This machine's name (Linux: the kernel's; elsewhere $HOSTNAME).
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .map_or_else(|| "host unknown".into(), |h| format!("host {h}"))
}
