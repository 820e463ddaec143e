//! The commands an operator runs beside the service: `ringside healthcheck` (the container's
//! HEALTHCHECK), `ringside backup FILE` (an online copy of the store) and `ringside --version`.
//! Each child runs the real binary in a sandbox whose `config/ringside.toml` the service and the
//! command share, as they would on a server.

use crate::support_cli::{self, Finished, Sandbox, Service, fixture, free_ports, run};
use std::time::Duration;

const START_TIMEOUT: Duration = Duration::from_secs(30);
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);
const ADDED: &str = "seed/participant-added.json";
const JOINED: &str = "Paco Vu (•••1119) joined the conference hosted by Agent 122 — 1 on the call";

/// A local-mode ringside on fresh ports, configured by the sandbox's default settings file.
fn service(sandbox: &Sandbox) -> (Service, u16) {
    let [public, admin] = free_ports();
    sandbox.write(
        "config/ringside.toml",
        &format!(
            "[server]\nlisten = \"127.0.0.1:{public}\"\nadmin_listen = \"127.0.0.1:{admin}\"\n\n\
             [store]\npath = \"data/ringside.sqlite3\"\n"
        ),
    );
    (Service::start(sandbox.command(["run"])), public)
}

fn ringside(sandbox: &Sandbox, args: &[&str]) -> Finished {
    run(sandbox.command(args), None, COMMAND_TIMEOUT)
}

#[test]
fn healthcheck_is_ok_while_ringside_runs_and_fails_with_a_reason_when_it_does_not() {
    let sandbox = Sandbox::new();
    let (mut service, public) = service(&sandbox);
    service.banner(START_TIMEOUT);

    let alive = ringside(&sandbox, &["healthcheck"]);
    assert_eq!(alive.code(), Some(0), "{alive:?}");
    assert_eq!(
        alive.stdout_lines(),
        [format!(
            "ok: http://127.0.0.1:{public}/healthz answered 200"
        )]
    );

    assert_eq!(service.terminate(STOP_TIMEOUT).code(), Some(0));
    let down = ringside(&sandbox, &["healthcheck"]);
    assert_eq!(down.code(), Some(1), "{down:?}");
    let said = down.stderr_lines().join("\n");
    assert!(
        said.contains(&format!("http://127.0.0.1:{public}/healthz did not answer")),
        "{said}"
    );
    assert!(!said.contains("panicked"), "{said}");
}

#[test]
fn a_backup_taken_beside_the_running_service_holds_what_it_accepted_and_is_private() {
    let sandbox = Sandbox::new();
    let (mut service, _) = service(&sandbox);
    let banner = service.banner(START_TIMEOUT);
    let token = banner
        .token
        .clone()
        .expect("local mode shows its generated token");
    let status = support_cli::post_notification(&banner.webhook, &token, &fixture(ADDED));
    assert_eq!(status, 200);
    // Announced: the notification is committed and processed.
    assert_eq!(service.stdout_lines(2, Duration::from_secs(15))[1], JOINED);

    let done = ringside(&sandbox, &["backup", "backups/first.sqlite3"]);
    assert_eq!(
        done.code(),
        Some(1),
        "the backups folder does not exist yet: {done:?}"
    );
    std::fs::create_dir(sandbox.path().join("backups")).unwrap();
    let done = ringside(&sandbox, &["backup", "backups/first.sqlite3"]);
    assert_eq!(done.code(), Some(0), "{done:?}");
    assert!(
        done.stdout_lines()[0].starts_with("backed up the store to backups/first.sqlite3 ("),
        "{done:?}"
    );
    let copy = sandbox.path().join("backups/first.sqlite3");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&copy).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    // A second backup to the same file is refused, and the first is left as it was.
    let before = std::fs::read(&copy).unwrap();
    let again = ringside(&sandbox, &["backup", "backups/first.sqlite3"]);
    assert_eq!(again.code(), Some(1), "{again:?}");
    assert!(
        again.stderr_lines().join("\n").contains("--force"),
        "{again:?}"
    );
    assert_eq!(std::fs::read(&copy).unwrap(), before);

    // The service never noticed: it still answers and stops cleanly.
    assert_eq!(ringside(&sandbox, &["healthcheck"]).code(), Some(0));
    assert_eq!(service.terminate(STOP_TIMEOUT).code(), Some(0));

    // The copy is a whole store: the accepted notification is in it, processed.
    let conn = rusqlite::Connection::open(&copy).unwrap();
    let (uuid, processed): (String, bool) = conn
        .query_row(
            "SELECT uuid, processed_at_ms IS NOT NULL FROM inbox",
            [],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .unwrap();
    let sent: serde_json::Value = serde_json::from_str(&fixture(ADDED)).unwrap();
    assert_eq!(uuid, sent["uuid"].as_str().unwrap());
    assert!(processed);
}

#[test]
fn version_prints_the_version_and_the_commit_the_build_was_given() {
    let sandbox = Sandbox::new();
    let out = ringside(&sandbox, &["--version"]);
    assert_eq!(out.code(), Some(0), "{out:?}");
    let expected = match option_env!("GIT_COMMIT").map(str::trim) {
        Some(commit) if !commit.is_empty() => {
            format!("ringside {} (commit {commit})", env!("CARGO_PKG_VERSION"))
        }
        _ => format!("ringside {}", env!("CARGO_PKG_VERSION")),
    };
    assert_eq!(out.stdout_lines(), [expected]);
}
