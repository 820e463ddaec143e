//! `ringside init` from the outside: the file it writes (mode, contents read back by the
//! settings loader), what it refuses (an existing file, a wrong value, no terminal), and that
//! no secret reaches its output. Each child runs in a private working directory with no
//! inherited `RINGSIDE_*` variables.

use crate::support_cli::{Finished, Sandbox, run};
use ringside::config::Settings;
use secrecy::ExposeSecret as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_FILE: &str = "config/ringside.toml";

const APP: &str = "123456789012345678";
const GUILD: &str = "223456789012345678";
const CHANNEL: &str = "323456789012345678";
const ROLE: &str = "423456789012345678";
const BOT_TOKEN: &str = "MTIzNDU2.bot-token-from-the-environment";
const CLIENT_SECRET: &str = "client-secret-from-the-environment";
const JWT: &str = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJyaW5nc2lkZSJ9.c2lnbmF0dXJlLXNlY3JldA";

fn init(sandbox: &Sandbox, args: &[&str], env: &[(&str, &str)], stdin: Option<&[u8]>) -> Finished {
    let mut all = vec!["init"];
    all.extend_from_slice(args);
    let mut command = sandbox.command(all);
    command.envs(env.iter().copied());
    run(command, stdin, TIMEOUT)
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// The file as the service reads it: the file alone, not this process's environment.
fn load(path: &Path) -> Settings {
    Settings::from_sources(Some(path), &[]).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn assert_token_within_limits(token: Option<&secrecy::SecretString>) {
    let token = token.expect("a generated token").expose_secret();
    assert!(
        (16..=64).contains(&token.len()),
        "{} characters",
        token.len()
    );
    assert!(
        token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
        "URL-safe"
    );
}

#[test]
fn with_nothing_given_it_writes_a_private_local_mode_file_that_check_accepts() {
    let sandbox = Sandbox::new();
    let out = init(&sandbox, &["--non-interactive"], &[], None);
    assert_eq!(out.code(), Some(0), "{out:#?}");
    let path = sandbox.path().join(DEFAULT_FILE);
    assert_eq!(mode(&path), 0o600);
    assert_eq!(
        mode(path.parent().unwrap()),
        0o700,
        "the directory it created"
    );
    let settings = load(&path);
    assert!(settings.discord.bot.is_none() && settings.ringcentral.credentials.is_none());
    assert_token_within_limits(settings.ringcentral.verification_token.as_ref());
    assert_token_within_limits(settings.server.api_token.as_ref());
    for token in [
        settings.ringcentral.verification_token.unwrap(),
        settings.server.api_token.unwrap(),
    ] {
        assert!(!out.stdout.contains(token.expose_secret()), "{out:#?}");
    }
    assert!(
        out.stdout.contains("config/ringside.toml (mode 0600)"),
        "{out:#?}"
    );
    assert!(out.stdout.ends_with("Next: ringside check\n"), "{out:#?}");
    assert_eq!(out.stderr, "");

    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("config/ringside.example.toml"), "{text}");

    let check = run(
        sandbox.command(["--config", DEFAULT_FILE, "check"]),
        None,
        TIMEOUT,
    );
    assert_eq!(check.code(), Some(0), "{check:#?}");
}

#[test]
fn flags_and_variables_configure_both_sides_and_no_secret_is_printed() {
    let sandbox = Sandbox::new();
    let out = init(
        &sandbox,
        &[
            "--config",
            "private/settings.toml",
            "--non-interactive",
            "--discord-application-id",
            APP,
            "--discord-channel-id",
            CHANNEL,
            "--ringcentral-server-url",
            "https://platform.devtest.ringcentral.com/",
            "--ringcentral-client-id",
            "0123",
            "--kick-roles",
            &format!("{ROLE},{GUILD}"),
            "--store-path",
            "state/ringside.sqlite3",
        ],
        &[
            ("RINGSIDE_DISCORD__GUILD_ID", GUILD),
            ("RINGSIDE_DISCORD__TOKEN", BOT_TOKEN),
            ("RINGSIDE_RINGCENTRAL__CLIENT_SECRET", CLIENT_SECRET),
            ("RINGSIDE_RINGCENTRAL__JWT", JWT),
        ],
        None,
    );
    assert_eq!(out.code(), Some(0), "{out:#?}");
    for secret in [BOT_TOKEN, CLIENT_SECRET, JWT] {
        assert!(
            !out.stdout.contains(secret) && !out.stderr.contains(secret),
            "{out:#?}"
        );
    }
    assert!(
        out.stdout
            .ends_with("Next: ringside --config private/settings.toml check\n"),
        "{out:#?}"
    );
    let path = sandbox.path().join("private/settings.toml");
    assert_eq!(mode(&path), 0o600);
    let settings = load(&path);
    let bot = settings.discord.bot.expect("the Discord group");
    assert_eq!(
        (bot.application_id, bot.guild_id, bot.channel_id),
        (
            APP.parse().unwrap(),
            GUILD.parse().unwrap(),
            CHANNEL.parse().unwrap()
        )
    );
    assert_eq!(bot.token.expose_secret(), BOT_TOKEN);
    let rc = settings
        .ringcentral
        .credentials
        .expect("the RingCentral group");
    assert_eq!(rc.client_id, "0123", "taken exactly as written");
    assert_eq!(rc.client_secret.expose_secret(), CLIENT_SECRET);
    assert_eq!(rc.jwt.expose_secret(), JWT);
    assert_eq!(
        settings.ringcentral.server_url,
        "https://platform.devtest.ringcentral.com"
    );
    assert_eq!(settings.ringcentral.delivery.as_str(), "websocket");
    assert_eq!(
        settings.access.kick_roles,
        [ROLE.parse::<u64>().unwrap(), GUILD.parse().unwrap()]
    );
    assert_eq!(settings.store.path, PathBuf::from("state/ringside.sqlite3"));
}

#[test]
fn an_existing_file_is_kept_byte_for_byte_unless_forced() {
    let sandbox = Sandbox::new();
    let old = "# someone's settings, broken on purpose\n[discord\n";
    sandbox.write(DEFAULT_FILE, old);
    let path = sandbox.path().join(DEFAULT_FILE);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();

    let out = init(&sandbox, &["--non-interactive"], &[], None);
    assert_eq!(out.code(), Some(1), "{out:#?}");
    assert_eq!(out.stderr_lines().len(), 1, "{out:#?}");
    assert!(
        out.stderr.contains(DEFAULT_FILE) && out.stderr.contains("--force"),
        "{out:#?}"
    );
    assert_eq!(std::fs::read(&path).unwrap(), old.as_bytes());

    let out = init(&sandbox, &["--non-interactive", "--force"], &[], None);
    assert_eq!(out.code(), Some(0), "{out:#?}");
    assert_ne!(std::fs::read(&path).unwrap(), old.as_bytes());
    assert_eq!(mode(&path), 0o600);
    load(&path);
}

#[test]
fn without_a_terminal_it_says_how_to_run_it_and_writes_nothing() {
    let sandbox = Sandbox::new();
    let out = init(&sandbox, &[], &[], Some(b"y\n"));
    assert_eq!(out.code(), Some(2), "{out:#?}");
    assert_eq!(
        out.stderr,
        "ringside init: no terminal to ask on; run `ringside init --non-interactive` with flags or RINGSIDE_* variables (see docs/setup.md)\n"
    );
    assert!(!sandbox.path().join("config").exists(), "nothing written");
}

/// Flags, variables, and the words the one-line refusal must contain.
type Refused = (&'static [&'static str], Env, &'static [&'static str]);
type Env = &'static [(&'static str, &'static str)];

#[test]
fn a_wrong_value_or_a_partial_group_is_one_line_naming_it_and_nothing_is_written() {
    let cases: [Refused; 3] = [
        (
            &["--discord-guild-id", "abc"],
            &[],
            &["--discord-guild-id", "\"abc\""],
        ),
        (
            &["--discord-application-id", APP, "--discord-guild-id", GUILD],
            &[],
            &[
                "--discord-channel-id",
                "RINGSIDE_DISCORD__TOKEN",
                "incomplete",
            ],
        ),
        (
            &["--delivery", "webhook", "--ringcentral-client-id", "id"],
            &[
                ("RINGSIDE_RINGCENTRAL__CLIENT_SECRET", CLIENT_SECRET),
                ("RINGSIDE_RINGCENTRAL__JWT", JWT),
            ],
            &["--public-url", "webhook"],
        ),
    ];
    for (args, env, named) in cases {
        let sandbox = Sandbox::new();
        let mut all = vec!["--non-interactive"];
        all.extend_from_slice(args);
        let out = init(&sandbox, &all, env, None);
        assert_eq!(out.code(), Some(2), "{args:?}: {out:#?}");
        assert_eq!(out.stderr_lines().len(), 1, "{out:#?}");
        for name in named {
            assert!(out.stderr.contains(name), "{name} in {out:#?}");
        }
        for secret in [CLIENT_SECRET, JWT] {
            assert!(!out.stderr.contains(secret), "{out:#?}");
        }
        assert!(
            !sandbox.path().join("config").exists(),
            "{args:?}: nothing written"
        );
    }
}

#[test]
fn a_broken_environment_does_not_stop_init() {
    let sandbox = Sandbox::new();
    let out = init(
        &sandbox,
        &["--non-interactive"],
        &[
            ("RINGSIDE_SERVER__LISTEN", "not an address"),
            ("RINGSIDE_DISCORD_TOKEN", "x"),
        ],
        None,
    );
    assert_eq!(out.code(), Some(0), "{out:#?}");
    load(&sandbox.path().join(DEFAULT_FILE));
}
