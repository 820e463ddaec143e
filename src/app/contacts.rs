//! The contacts file on disk (`contacts.path`): read at start, read again when it changes, and
//! handed to the roster, which names callers with it ([`Roster::set_contacts`]).
//!
//! A missing, unreadable or oversized file is one warning and no contacts (or, on a reload, the
//! last good ones): the contacts only name callers, so they never stop ringside. Every problem
//! is one line, `contacts: FILE:LINE: problem`, the same in the log, in `ringside check` and in
//! `ringside replay`; it never carries a number or a name (the file is personal data). The
//! parsing is `crate::conference::contacts`'s.

use crate::conference::contacts::{self, MAX_FILE_BYTES, Parsed};
use crate::conference::{Names, Roster};
use crate::config::Settings;
use crate::util::shutdown::Shutdown;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};
use tokio::task::JoinHandle;

/// How often the file's modification time and size are looked at. A stat every two seconds
/// costs nothing, and an edit shows within the time it takes to switch to the channel; a file
/// watcher would add a dependency and miss edits on network file systems.
pub const POLL_INTERVAL: Duration = Duration::from_secs(2);

/// A contacts file, read: what was usable and one line per problem.
#[derive(Debug)]
pub struct Loaded {
    /// `None` when the file itself could not be read (nothing in it was used).
    pub parsed: Option<Parsed>,
    /// `contacts: FILE:LINE: problem` (or `contacts: FILE: problem` for the whole file).
    pub problems: Vec<String>,
}

impl Loaded {
    /// How many names were read.
    pub fn len(&self) -> usize {
        self.parsed
            .as_ref()
            .map_or(0, |parsed| parsed.entries.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The names to hand to the roster, or `None` when the file could not be read.
    pub fn names(&self, default_country_code: Option<&str>) -> Option<Names> {
        let parsed = self.parsed.as_ref()?;
        Some(Names::with_contacts(
            parsed.entries.iter().cloned(),
            default_country_code.map(str::to_owned),
        ))
    }
}

/// Reads and parses the contacts file; never fails (see [`Loaded`]). Blocking.
pub fn load(path: &Path, default_country_code: Option<&str>) -> Loaded {
    let file = path.display();
    let text = match read_bounded(path) {
        Ok(text) => text,
        Err(problem) => {
            return Loaded {
                parsed: None,
                problems: vec![format!("contacts: {file}: {problem}")],
            };
        }
    };
    let parsed = contacts::parse(&text, default_country_code);
    let problems = parsed
        .problems
        .iter()
        .map(|problem| format!("contacts: {file}:{}: {}", problem.line, problem.problem))
        .collect();
    Loaded {
        parsed: Some(parsed),
        problems,
    }
}

/// The file's text, refusing files over [`MAX_FILE_BYTES`] before reading them, and not
/// reading past it if the file grows meanwhile.
fn read_bounded(path: &Path) -> Result<String, String> {
    let file = std::fs::File::open(path).map_err(|error| format!("cannot read: {error}"))?;
    let too_large = || format!("is larger than {MAX_FILE_BYTES} bytes; not read");
    let length = file
        .metadata()
        .map_err(|error| format!("cannot read: {error}"))?
        .len();
    if length > MAX_FILE_BYTES {
        return Err(too_large());
    }
    let mut bytes = Vec::with_capacity(usize::try_from(length).unwrap_or(0));
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|error| format!("cannot read: {error}"))?;
    if u64::try_from(bytes.len()).unwrap_or(u64::MAX) > MAX_FILE_BYTES {
        return Err(too_large());
    }
    String::from_utf8(bytes).map_err(|error| {
        let valid = error.utf8_error().valid_up_to();
        let line = 1 + error.as_bytes()[..valid]
            .iter()
            .filter(|b| **b == b'\n')
            .count();
        format!("line {line} is not UTF-8 text (save the file as UTF-8); not read")
    })
}

/// Logs a load: each problem at warn, then how many names were read.
fn log(loaded: &Loaded, file: &Path, reloaded: bool) {
    for problem in &loaded.problems {
        tracing::warn!("{problem}");
    }
    metrics::counter!("ringside_contacts_problems_total").increment(loaded.problems.len() as u64);
    if loaded.parsed.is_none() {
        return;
    }
    metrics::gauge!("ringside_contacts_loaded").set(loaded.len() as f64);
    if reloaded {
        tracing::info!("contacts reloaded: {} names", loaded.len());
    } else {
        tracing::info!("contacts: {} names from {}", loaded.len(), file.display());
    }
}

/// What identifies a version of the file: its modification time and size.
pub(super) type Stamp = (Option<SystemTime>, u64);

pub(super) fn stamp(metadata: &std::fs::Metadata) -> Stamp {
    (metadata.modified().ok(), metadata.len())
}

/// At start: reads `contacts.path` (when set) into the roster, and starts the task that reads
/// it again when it changes, until the stop. `None` when no file is configured.
pub fn start(settings: &Settings, roster: &Roster, shutdown: Shutdown) -> Option<JoinHandle<()>> {
    let path = settings.contacts.path.clone()?;
    let code = settings.contacts.default_country_code.clone();
    let first = std::fs::metadata(&path)
        .ok()
        .map(|metadata| stamp(&metadata));
    let loaded = load(&path, code.as_deref());
    log(&loaded, &path, false);
    if let Some(names) = loaded.names(code.as_deref()) {
        roster.set_contacts(names);
    }
    Some(tokio::spawn(watch(
        path,
        code,
        roster.clone(),
        first,
        shutdown,
    )))
}

/// Re-reads the file whenever its stamp changes. A file that goes keeps the last good
/// contacts, with one warning until it is back.
async fn watch(
    path: PathBuf,
    code: Option<String>,
    roster: Roster,
    mut last: Option<Stamp>,
    mut shutdown: Shutdown,
) {
    let mut gone_warned = last.is_none();
    while !shutdown.sleep(POLL_INTERVAL).await {
        let now = match tokio::fs::metadata(&path).await {
            Ok(metadata) => stamp(&metadata),
            Err(error) => {
                if !gone_warned {
                    tracing::warn!(
                        "contacts: {}: cannot read: {error}; the last names read are kept until it is back",
                        path.display()
                    );
                    metrics::counter!("ringside_contacts_problems_total").increment(1);
                    gone_warned = true;
                }
                last = None;
                continue;
            }
        };
        if last == Some(now) {
            continue;
        }
        last = Some(now);
        gone_warned = false;
        let (file, code_for_load) = (path.clone(), code.clone());
        let loaded = match tokio::task::spawn_blocking(move || {
            load(&file, code_for_load.as_deref())
        })
        .await
        {
            Ok(loaded) => loaded,
            Err(error) => {
                tracing::warn!(%error, "contacts: reading the file failed");
                continue;
            }
        };
        log(&loaded, &path, true);
        match loaded.names(code.as_deref()) {
            Some(names) => roster.set_contacts(names),
            None => tracing::warn!("contacts: {}: the last names read are kept", path.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conference::Identity;
    use std::io::Write as _;

    fn caller(number: &str) -> Identity {
        Identity {
            name: Some("WIRELESS CALLER".into()),
            phone_number: Some(number.into()),
            extension_id: None,
        }
    }

    #[test]
    fn problems_name_the_file_and_line_and_good_lines_still_count() {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(b"number,name\n+14155550142,Paco\n4155550177,Bo\n")
            .unwrap();
        let loaded = load(file.path(), None);
        assert_eq!(loaded.len(), 1);
        assert_eq!(loaded.problems.len(), 1);
        let expected = format!("contacts: {}:3: the number is not", file.path().display());
        assert!(loaded.problems[0].starts_with(&expected), "{loaded:?}");
    }

    #[test]
    fn a_missing_file_is_one_problem_naming_it_and_no_names() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("absent.csv");
        let loaded = load(&path, None);
        assert!(loaded.names(None).is_none());
        assert_eq!(loaded.problems.len(), 1);
        assert!(
            loaded.problems[0].starts_with(&format!("contacts: {}: cannot read: ", path.display())),
            "{loaded:?}"
        );
    }

    #[test]
    fn a_file_over_the_limit_is_refused_without_being_read() {
        let file = tempfile::NamedTempFile::new().unwrap();
        file.as_file().set_len(MAX_FILE_BYTES + 1).unwrap();
        let loaded = load(file.path(), None);
        assert!(loaded.parsed.is_none());
        assert!(loaded.problems[0].ends_with("; not read"), "{loaded:?}");
    }

    #[test]
    fn a_file_that_is_not_utf8_is_refused_naming_the_line() {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(b"+14155550142,Paco\n+14155550177,B\xffo\n")
            .unwrap();
        let loaded = load(file.path(), None);
        assert!(loaded.parsed.is_none());
        assert!(
            loaded.problems[0].contains(": line 2 is not UTF-8"),
            "{loaded:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_changed_file_replaces_the_names_and_a_removed_one_keeps_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("contacts.csv");
        std::fs::write(&path, "+14155550142,Paco\n").unwrap();
        let mut settings = Settings::from_sources(None, &[]).unwrap();
        settings.contacts.path = Some(path.clone());
        let roster = Roster::new();
        let (stop, shutdown) = crate::util::shutdown::channel();
        let task = start(&settings, &roster, shutdown).expect("a path is set");
        let named = |roster: &Roster| roster.named(&caller("+14155550142")).name;
        assert_eq!(named(&roster).as_deref(), Some("Paco"));

        std::fs::write(&path, "+14155550142,Paco Vu (vendor)\n").unwrap();
        tokio::time::sleep(POLL_INTERVAL * 2).await;
        // The blocking read runs on a real thread: let it finish.
        for _ in 0..100 {
            if named(&roster).as_deref() != Some("Paco") {
                break;
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
        assert_eq!(named(&roster).as_deref(), Some("Paco Vu (vendor)"));

        std::fs::remove_file(&path).unwrap();
        tokio::time::sleep(POLL_INTERVAL * 3).await;
        assert_eq!(named(&roster).as_deref(), Some("Paco Vu (vendor)"));

        stop.stop();
        task.await.unwrap();
    }
}
