//! The store's files on disk, private to ringside's user.
//!
//! The database holds the verification token, RingCentral's access and refresh tokens and
//! callers' names and numbers. SQLite creates a new file with the process's default mode
//! (usually `0644`) and gives `-wal` and `-shm` the main file's mode, so the main file is
//! created `0600` here, before SQLite opens it; directories ringside creates are `0700`.
//! Existing store files with a looser mode are tightened (one log line). A directory that
//! already existed — the working directory, a mounted volume — is never changed: ringside only
//! warns when others can enter it.

use super::OpenCause;
use std::path::{Path, PathBuf};

/// The mode of every store file.
#[cfg(unix)]
const FILE_MODE: u32 = 0o600;
/// The mode of every directory ringside creates for the store.
#[cfg(unix)]
const DIR_MODE: u32 = 0o700;

/// Creates the store's directory and an empty private file at `path` if they are missing, and
/// makes existing store files private.
pub(super) fn prepare(path: &Path) -> Result<(), OpenCause> {
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty());
    if let Some(parent) = parent {
        if parent.exists() {
            warn_if_shared(parent);
        } else {
            create_private_dirs(parent).map_err(OpenCause::CreateDir)?;
        }
    }
    create_private_file(path).map_err(OpenCause::Permissions)?;
    tighten(path).map_err(OpenCause::Permissions)
}

/// The store's files: the database and SQLite's companions.
fn companions(path: &Path) -> Vec<PathBuf> {
    let mut files = vec![path.to_owned()];
    for suffix in ["-wal", "-shm", "-journal"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        files.push(PathBuf::from(name));
    }
    files
}

/// Creates `dir` and its missing parents `0700` (`ringside init` makes the settings file's
/// directory the same way).
#[cfg(unix)]
pub(crate) fn create_private_dirs(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt as _;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(dir)
}

#[cfg(not(unix))]
pub(crate) fn create_private_dirs(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)
}

#[cfg(unix)]
fn create_private_file(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(error) => Err(error),
    }
}

#[cfg(not(unix))]
fn create_private_file(_path: &Path) -> std::io::Result<()> {
    Ok(())
}

/// Sets every existing store file that others may read to [`FILE_MODE`]; one line names them.
#[cfg(unix)]
fn tighten(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    let mut tightened = Vec::new();
    for file in companions(path) {
        let metadata = match std::fs::metadata(&file) {
            Ok(metadata) => metadata,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => continue,
            Err(error) => return Err(error),
        };
        let mode = metadata.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(FILE_MODE))?;
            tightened.push(format!("{} (was {mode:04o})", file.display()));
        }
    }
    if !tightened.is_empty() {
        tracing::warn!(
            files = %tightened.join(", "),
            "store files were readable by other users; made them private (0600)"
        );
    }
    Ok(())
}

#[cfg(not(unix))]
fn tighten(_path: &Path) -> std::io::Result<()> {
    Ok(())
}

#[cfg(unix)]
fn warn_if_shared(dir: &Path) {
    use std::os::unix::fs::PermissionsExt as _;
    if let Ok(metadata) = std::fs::metadata(dir) {
        let mode = metadata.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            tracing::warn!(
                directory = %dir.display(),
                mode = %format!("{mode:04o}"),
                "the store's directory is open to other users; ringside leaves a directory it did not create as it is (the store files are 0600)"
            );
        }
    }
}

#[cfg(not(unix))]
fn warn_if_shared(_dir: &Path) {}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn a_new_store_is_private_in_private_directories() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = dir.path().join("data/nested/ringside.sqlite3");
        prepare(&path).unwrap();
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&dir.path().join("data")), 0o700);
        assert_eq!(mode(&dir.path().join("data/nested")), 0o700);
        // The directory that was there already is left alone.
        assert_eq!(mode(dir.path()), 0o755);
    }

    #[test]
    fn loose_existing_files_are_tightened_and_a_foreign_directory_is_not() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = dir.path().join("ringside.sqlite3");
        for file in companions(&path).iter().take(3) {
            std::fs::write(file, b"").unwrap();
            std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
        prepare(&path).unwrap();
        for file in companions(&path).iter().take(3) {
            assert_eq!(mode(file), 0o600, "{}", file.display());
        }
        assert_eq!(mode(dir.path()), 0o755);
    }
}
