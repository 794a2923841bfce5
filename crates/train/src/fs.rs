//! Files that must never be seen half-written: write a temporary file beside the target,
//! flush it to disk, then rename it over the target (atomic on POSIX file systems).

use std::io::Write;
use std::path::Path;

use crate::error::TrainError;

/// The error of a failed write at `path`, for `map_err`.
pub(crate) fn write_error(path: &Path) -> impl Fn(std::io::Error) -> TrainError + '_ {
    move |source| TrainError::Write {
        path: path.to_path_buf(),
        source,
    }
}

/// Makes a rename or link in `dir` durable. Best effort: not every platform can open a
/// directory.
pub(crate) fn sync_dir(dir: &Path) {
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), TrainError> {
    let io = write_error(path);
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(&io)?;
    tmp.write_all(bytes).map_err(&io)?;
    tmp.as_file().sync_all().map_err(&io)?;
    tmp.persist(path).map_err(|e| io(e.error))?;
    // The rename is durable only once the directory entry is.
    sync_dir(dir);
    Ok(())
}

/// Makes `dir` (and parents) and checks that files can be created in it, so an unwritable run
/// directory fails before any training time is spent.
pub fn ensure_writable_dir(dir: &Path) -> Result<(), TrainError> {
    let io = write_error(dir);
    std::fs::create_dir_all(dir).map_err(&io)?;
    tempfile::Builder::new()
        .prefix(".convnet-write-test.")
        .tempfile_in(dir)
        .map_err(&io)?;
    Ok(())
}
