//! Files that hold secrets, private from their first byte: `ringside init`'s settings file and
//! `ringside backup`'s copy of the store. Each is written as a `0600` temporary file beside its
//! destination and put in place in one step once complete, so an error or a crash never leaves
//! a half-written file at the destination, and a file that must not be replaced is refused even
//! if it appeared while the new one was being written.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

/// Tells apart the temporary files one process makes (with its pid, across processes).
static NEXT: AtomicU32 = AtomicU32::new(0);

/// A private temporary file beside its destination, removed unless [`Staged::place`] put it
/// there.
pub struct Staged {
    path: PathBuf,
    placed: bool,
}

impl Staged {
    /// Creates an empty `0600` file in `destination`'s directory, hidden and named after it and
    /// `tag` (`.ringside.toml.init-1234-0`).
    pub fn beside(destination: &Path, tag: &str) -> io::Result<Staged> {
        let name = destination.file_name().ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "the path does not name a file")
        })?;
        let directory = destination
            .parent()
            .filter(|parent| !parent.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = directory.join(format!(
            ".{}.{tag}-{}-{n}",
            name.to_string_lossy(),
            std::process::id()
        ));
        create_new_private(&path)?;
        Ok(Staged {
            path,
            placed: false,
        })
    }

    /// Where to write the contents.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Flushes the file to disk and puts it at `destination`: replacing what is there when
    /// `replace`, else failing with [`io::ErrorKind::AlreadyExists`] if the name is taken (a
    /// hard link, so there is no window between the check and the write).
    pub fn place(mut self, destination: &Path, replace: bool) -> io::Result<()> {
        std::fs::File::open(&self.path)?.sync_all()?;
        if replace {
            std::fs::rename(&self.path, destination)?;
        } else {
            std::fs::hard_link(&self.path, destination)?;
            let _ = std::fs::remove_file(&self.path);
        }
        self.placed = true;
        // The new name survives a crash only once its directory is synced too.
        let directory = destination
            .parent()
            .filter(|parent| !parent.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        if let Ok(directory) = std::fs::File::open(directory) {
            let _ = directory.sync_all();
        }
        Ok(())
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.placed {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[cfg(unix)]
fn create_new_private(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map(drop)
}

#[cfg(not(unix))]
fn create_new_private(path: &Path) -> io::Result<()> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_placed_file_is_private_and_nothing_else_is_left() {
        let dir = tempfile::tempdir().unwrap();
        let destination = dir.path().join("secret.toml");
        let staged = Staged::beside(&destination, "test").unwrap();
        std::fs::write(staged.path(), "token = \"x\"").unwrap();
        staged.place(&destination, false).unwrap();
        assert_eq!(
            std::fs::read_to_string(&destination).unwrap(),
            "token = \"x\""
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&destination)
                .unwrap()
                .permissions()
                .mode()
                & 0o777;
            assert_eq!(mode, 0o600);
        }
        assert_eq!(names(dir.path()), ["secret.toml"]);
    }

    #[test]
    fn a_taken_name_is_refused_unless_replacing_and_a_dropped_file_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let destination = dir.path().join("secret.toml");
        std::fs::write(&destination, "old").unwrap();
        let staged = Staged::beside(&destination, "test").unwrap();
        std::fs::write(staged.path(), "new").unwrap();
        let refused = staged.place(&destination, false).unwrap_err();
        assert_eq!(refused.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read_to_string(&destination).unwrap(), "old");
        assert_eq!(
            names(dir.path()),
            ["secret.toml"],
            "the refused file is removed"
        );

        let staged = Staged::beside(&destination, "test").unwrap();
        std::fs::write(staged.path(), "new").unwrap();
        staged.place(&destination, true).unwrap();
        assert_eq!(std::fs::read_to_string(&destination).unwrap(), "new");

        drop(Staged::beside(&destination, "test").unwrap());
        assert_eq!(names(dir.path()), ["secret.toml"]);
    }
}
