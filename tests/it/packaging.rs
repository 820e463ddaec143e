//! The packaging files against what ringside really is: the `RINGSIDE_*` settings they set
//! exist and hold valid values, the Dockerfile builds the profile CI builds and knows every
//! bench target (its dependency-caching step fakes them), and the promises docs/setup.md
//! makes about each file hold (operator port on loopback, stop grace above the 10 s graceful
//! shutdown, no restart loop on a settings error). No container engine or systemd runs here:
//! `.ci/run` runs the Dockerfile's build command and `systemd-analyze verify` on the unit.

use ringside::config::Settings;
use std::path::Path;

fn read(relative: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `NAME=value` pairs for `RINGSIDE_*` names set outside comments in `text`, values unquoted.
fn ringside_variables(text: &str) -> Vec<(String, String)> {
    let mut found = Vec::new();
    let code = text
        .lines()
        .filter(|line| !line.trim_start().starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n");
    for word in code.split(|c: char| c.is_whitespace() || c == '"' || c == '\'') {
        let word = word
            .trim_start_matches("Environment=")
            .trim_start_matches('-');
        if let Some((name, value)) = word.split_once('=')
            && name.starts_with("RINGSIDE_")
        {
            found.push((name.to_owned(), value.trim_end_matches('\\').to_owned()));
        }
    }
    found
}

/// The settings a packaging file sets by environment load as settings (a typo such as a
/// single underscore, an unknown key or a bad address would stop ringside at start).
fn assert_settings_load(file: &str, expected: usize) {
    let text = read(file);
    let variables: Vec<(String, String)> = ringside_variables(&text)
        .into_iter()
        .filter(|(name, _)| name != "RINGSIDE_CONFIG")
        .collect();
    assert_eq!(variables.len(), expected, "{file}: {variables:?}");
    if let Err(error) = Settings::from_sources(None, &variables) {
        panic!("{file}: {error}");
    }
}

fn line_value<'a>(text: &'a str, key: &str) -> Vec<&'a str> {
    text.lines()
        .filter_map(|line| line.trim().strip_prefix(key))
        .map(str::trim)
        .collect()
}

#[test]
fn the_dockerfile_builds_the_dist_profile_as_non_root_with_the_store_on_data() {
    let dockerfile = read("Dockerfile");
    assert_settings_load("Dockerfile", 3);
    assert!(dockerfile.contains("cargo build --profile dist --locked"));
    assert!(
        dockerfile.contains("COPY --from=build /src/target/dist/ringside /usr/local/bin/ringside")
    );
    assert!(dockerfile.contains("RINGSIDE_STORE__PATH=/data/ringside.sqlite3"));
    assert_eq!(line_value(&dockerfile, "VOLUME"), [r#"["/data"]"#]);
    let users = line_value(&dockerfile, "USER ");
    assert_eq!(
        users,
        ["ringside:ringside"],
        "the runtime runs as its own user"
    );
    assert!(
        dockerfile.contains(r#"CMD ["/usr/local/bin/ringside", "healthcheck"]"#),
        "the HEALTHCHECK runs ringside's own check"
    );
    assert_eq!(line_value(&dockerfile, "STOPSIGNAL"), ["SIGTERM"]);
    assert!(
        dockerfile.contains("ARG GIT_COMMIT"),
        "the commit reaches --version"
    );
    // The build context leaves out the build outputs and any settings file with secrets, so
    // neither is copied into an image layer by `COPY . .`.
    let ignored: Vec<String> = read(".dockerignore")
        .lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .map(str::to_owned)
        .collect();
    for entry in ["target/", "config/ringside.toml", "*.sqlite3*"] {
        assert!(
            ignored.iter().any(|line| line == entry),
            "{entry} is not in .dockerignore"
        );
    }

    // The dependency-caching step writes a placeholder for every bench target Cargo.toml
    // declares (cargo refuses a manifest whose targets are missing).
    let manifest = read("Cargo.toml");
    let benches: Vec<&str> = manifest
        .split("[[bench]]")
        .skip(1)
        .filter_map(|section| line_value(section, "name =").first().copied())
        .map(|name| name.trim_matches('"'))
        .collect();
    assert_eq!(benches.len(), 6, "{benches:?}");
    let placeholders = dockerfile
        .lines()
        .find(|line| line.contains("for bench in"))
        .expect("the placeholder loop");
    for bench in benches {
        assert!(
            placeholders.contains(&format!(" {bench}")),
            "{bench} missing from the Dockerfile's placeholders"
        );
    }
}

#[test]
fn compose_publishes_the_operator_port_on_loopback_and_stops_gracefully() {
    let compose = read("compose.yaml");
    let published: Vec<&str> = compose
        .lines()
        .map(str::trim)
        .filter_map(|line| line.strip_prefix("- \""))
        .filter_map(|line| line.strip_suffix('"'))
        .filter(|line| {
            line.matches(':').count() >= 1
                && line.chars().next().is_some_and(|c| c.is_ascii_digit())
        })
        .collect();
    assert!(published.contains(&"127.0.0.1:9090:9090"), "{published:?}");
    for port in &published {
        assert!(
            port.starts_with("127.0.0.1:"),
            "{port} is published beyond this host"
        );
    }
    let grace = line_value(&compose, "stop_grace_period:");
    let seconds: u64 = grace[0].trim_end_matches('s').parse().unwrap();
    assert!(
        seconds > 10,
        "stop_grace_period {seconds}s must exceed the 10 s graceful stop"
    );
    assert!(compose.contains("/app/config/ringside.toml:ro"));
    assert!(compose.contains("ringside-data:/data"));
}

#[test]
fn the_systemd_unit_restarts_a_dead_task_but_not_a_settings_error() {
    let unit = read("deploy/ringside.service");
    assert_settings_load("deploy/ringside.service", 1);
    let one = |key: &str| -> String {
        let values = line_value(&unit, key);
        assert_eq!(values.len(), 1, "{key} {values:?}");
        values[0].to_owned()
    };
    assert_eq!(one("ExecStart="), "/usr/local/bin/ringside run");
    assert_eq!(one("Restart="), "on-failure");
    assert_eq!(one("RestartSec="), "5");
    // Exit 2 is ringside's settings error (src/main.rs); 1 a dead task.
    assert_eq!(one("RestartPreventExitStatus="), "2");
    let stop: u64 = one("TimeoutStopSec=").parse().unwrap();
    assert!(stop > 10);
    assert_eq!(one("StateDirectory="), "ringside");
    assert_eq!(one("StateDirectoryMode="), "0700");
    for setting in [
        "NoNewPrivileges=yes",
        "PrivateTmp=yes",
        "ProtectSystem=strict",
    ] {
        assert!(unit.lines().any(|line| line == setting), "{setting}");
    }
    assert_eq!(
        one("Environment=RINGSIDE_STORE__PATH="),
        "/var/lib/ringside/ringside.sqlite3",
        "the store is in the StateDirectory"
    );
}
