//! Durable file writes and free-space checks, behind a trait so tests can fill the disk or break a write.
//!
//! A file is written to `name.tmp`, fsynced, renamed over its final name and the directory is
//! fsynced: after a crash either the old file or the whole new one is there, never half of it.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;

/// What the outbox needs from the file system.
pub trait Disk: Send + Sync {
    /// Bytes available to this process in the file system holding `dir`.
    fn available(&self, dir: &Path) -> io::Result<u64>;
    /// Writes `bytes` to `path` atomically and durably.
    fn write_atomic(&self, path: &Path, bytes: &[u8]) -> io::Result<()>;
}

/// The real file system.
pub struct RealDisk;

impl Disk for RealDisk {
    fn available(&self, dir: &Path) -> io::Result<u64> {
        fs4::available_space(dir)
    }

    fn write_atomic(&self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        write_atomic_with(path, |f| f.write_all(bytes))
    }
}

/// The atomic-write protocol around any way of filling the temp file.
pub fn write_atomic_with(
    path: &Path,
    fill: impl FnOnce(&mut File) -> io::Result<()>,
) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    let result = (|| {
        let mut f = File::create(&tmp)?;
        fill(&mut f)?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, path)?;
        sync_dir(path.parent().unwrap_or(Path::new(".")))
    })();
    if result.is_err() {
        // A failed write leaves nothing behind; a crash may leave the .tmp, which open() sweeps.
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Makes a rename or create in `dir` durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

/// Creates `dir` and any missing parents so that they survive a power cut: each new directory's
/// entry is made durable by fsyncing its parent. The parent of `dir` is fsynced even when `dir`
/// already existed, since another process (or `create_dir_all` elsewhere) may have made it
/// without doing so.
pub fn create_dir_durable(dir: &Path) -> io::Result<()> {
    let mut missing = Vec::new();
    let mut cur = Some(dir);
    while let Some(d) = cur {
        if d.as_os_str().is_empty() || d.is_dir() {
            break;
        }
        missing.push(d);
        cur = d.parent();
    }
    for d in missing.iter().rev() {
        match fs::create_dir(d) {
            Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(e),
            _ => {}
        }
    }
    let made: Vec<&Path> = if missing.is_empty() {
        vec![dir]
    } else {
        missing.into_iter().rev().collect()
    };
    for d in made {
        if let Some(parent) = d.parent().filter(|p| !p.as_os_str().is_empty()) {
            sync_dir(parent)?;
        }
    }
    Ok(())
}

/// Whether an I/O error means the disk is full.
pub fn is_disk_full(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::StorageFull || e.raw_os_error() == Some(28) // ENOSPC
}
