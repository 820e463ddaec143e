//! Tests of the whole loading path: file, environment, validation, errors.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::ExposeSecret;

use super::lenient::Scalar;
use super::raw::RawSettings;
use super::sources::{self, DEFAULT_FILE};
use super::*;

const EXAMPLE: &str = include_str!("../../config/ringside.example.toml");

fn example_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("config/ringside.example.toml")
}

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A settings file with `text` in it; it lives as long as the returned handle.
fn file(text: &str) -> tempfile::NamedTempFile {
    let mut file = tempfile::Builder::new()
        .suffix(".toml")
        .tempfile()
        .expect("temp file");
    file.write_all(text.as_bytes()).expect("write temp file");
    file
}

fn from_toml(text: &str) -> Result<Settings, ConfigError> {
    let file = file(text);
    Settings::from_sources(Some(file.path()), &[])
}

fn from_env(pairs: &[(&str, &str)]) -> Result<Settings, ConfigError> {
    Settings::from_sources(None, &env(pairs))
}

fn error_of(result: Result<Settings, ConfigError>) -> String {
    match result {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.to_string(),
    }
}

const RC_FULL: [(&str, &str); 4] = [
    ("RINGSIDE_RINGCENTRAL__CLIENT_ID", "id"),
    ("RINGSIDE_RINGCENTRAL__CLIENT_SECRET", "sekrit-client"),
    ("RINGSIDE_RINGCENTRAL__JWT", "sekrit-jwt"),
    (
        "RINGSIDE_SERVER__PUBLIC_URL",
        "https://ringside.example.com",
    ),
];

const DISCORD_FULL: [(&str, &str); 4] = [
    ("RINGSIDE_DISCORD__TOKEN", "sekrit-bot"),
    ("RINGSIDE_DISCORD__APPLICATION_ID", "11"),
    ("RINGSIDE_DISCORD__GUILD_ID", "22"),
    ("RINGSIDE_DISCORD__CHANNEL_ID", "33"),
];

// ----- defaults and sources -----

#[test]
fn defaults_without_file_or_environment() {
    let s = Settings::from_sources(None, &[]).expect("defaults load");
    assert_eq!(
        s.server.listen,
        "127.0.0.1:8080".parse::<SocketAddr>().unwrap()
    );
    assert_eq!(
        s.server.admin_listen,
        "127.0.0.1:9090".parse::<SocketAddr>().unwrap()
    );
    assert_eq!(s.server.public_url, None);
    assert_eq!(s.server.max_body_bytes, 65_536);
    assert!(s.server.api_token.is_none());

    assert_eq!(s.ringcentral.server_url, "https://platform.ringcentral.com");
    assert!(s.ringcentral.credentials.is_none());
    assert!(s.ringcentral.verification_token.is_none());
    assert!(s.ringcentral.event_filters.is_empty());
    assert!(s.ringcentral.host_extensions.is_empty());
    assert_eq!(s.ringcentral.subscription_expires_in, 604_800);
    assert_eq!(s.ringcentral.reconcile_interval_secs, 20);
    assert_eq!(s.ringcentral.watchdog_interval_secs, 300);
    assert_eq!(s.ringcentral.kick_confirm_secs, 15);
    assert_eq!(s.ringcentral.token_refresh_margin_secs, 60);

    assert!(s.discord.bot.is_none());
    assert_eq!(s.discord.public_key, None);
    assert_eq!(s.discord.api_url, "https://discord.com");
    assert_eq!(s.discord.confirm_secs, 60);

    assert_eq!(
        s.announce,
        Announce {
            coalesce_ms: 0,
            stale_after_secs: 600,
            thread_per_conference: false,
            roster_card: true,
            roster_edit_ms: 2000,
            feed: true,
            timeline: true,
        }
    );
    assert_eq!(s.privacy.phone_numbers, PhoneNumbers::Masked);
    assert_eq!(s.contacts, Contacts::default(), "no contacts file");
    assert_eq!(
        s.access,
        Access {
            list_roles: vec![],
            list_users: vec![],
            kick_roles: vec![],
            kick_users: vec![],
            kick_enabled: true,
            kick_limit_per_minute: 5,
        }
    );
    assert_eq!(
        s.store,
        StoreSettings {
            path: PathBuf::from("data/ringside.sqlite3"),
            retention_days: 30,
            audit_retention_days: 365,
        }
    );
}

#[test]
fn environment_overrides_file() {
    let f = file("[server]\nlisten = \"0.0.0.0:1\"\nmax_body_bytes = 2048\n");
    let s = Settings::from_sources(
        Some(f.path()),
        &env(&[("RINGSIDE_SERVER__LISTEN", "127.0.0.2:2")]),
    )
    .unwrap();
    assert_eq!(
        s.server.listen,
        "127.0.0.2:2".parse::<SocketAddr>().unwrap()
    );
    assert_eq!(s.server.max_body_bytes, 2048);
}

#[test]
fn empty_environment_value_unsets_a_file_value() {
    let f = file("[server]\npublic_url = \"https://a.example\"\n");
    let s = Settings::from_sources(Some(f.path()), &env(&[("RINGSIDE_SERVER__PUBLIC_URL", "")]))
        .unwrap();
    assert_eq!(s.server.public_url, None);
}

#[test]
fn environment_lists_replace_file_lists() {
    let f = file("[access]\nkick_roles = [1, 2, 3]\n");
    let s = Settings::from_sources(
        Some(f.path()),
        &env(&[("RINGSIDE_ACCESS__KICK_ROLES", "[4]")]),
    )
    .unwrap();
    assert_eq!(s.access.kick_roles, [4]);
}

#[test]
fn file_choice_order() {
    let none: &[(String, String)] = &[];
    let with_env = env(&[("RINGSIDE_CONFIG", "/etc/ringside.toml")]);
    let explicit = Path::new("/x.toml");
    assert_eq!(
        sources::choose_file(Some(explicit), &with_env, |_| true),
        Some(PathBuf::from("/x.toml"))
    );
    assert_eq!(
        sources::choose_file(None, &with_env, |_| true),
        Some(PathBuf::from("/etc/ringside.toml"))
    );
    assert_eq!(
        sources::choose_file(None, &env(&[("RINGSIDE_CONFIG", "")]), |_| true),
        Some(PathBuf::from(DEFAULT_FILE))
    );
    assert_eq!(
        sources::choose_file(None, none, |p| p == Path::new(DEFAULT_FILE)),
        Some(PathBuf::from("config/ringside.toml"))
    );
    assert_eq!(sources::choose_file(None, none, |_| false), None);
}

#[test]
fn non_setting_ringside_variables_are_ignored() {
    let s = from_env(&[
        ("RINGSIDE_CONFIG", "/nowhere.toml"),
        ("RINGSIDE_LOG", "debug"),
        ("PATH", "/bin"),
        ("DISCORD__TOKEN", "x"),
        ("RINGSIDE\u{e9}X", "x"),
        ("R\u{e9}", "x"),
    ]);
    assert!(s.is_ok(), "{:?}", s.err());
}

#[test]
fn environment_prefix_is_case_insensitive() {
    let s = from_env(&[("ringside_server__listen", "127.0.0.1:1")]).unwrap();
    assert_eq!(s.server.listen.port(), 1);
}

#[test]
fn single_underscore_variable_is_rejected() {
    let e = error_of(from_env(&[("RINGSIDE_DISCORD_TOKEN", "x")]));
    assert_eq!(
        e,
        "config: environment variable RINGSIDE_DISCORD_TOKEN: is not a setting name \
         (put a double underscore between section and key, e.g. RINGSIDE_DISCORD__TOKEN)"
    );
    assert!(!e.contains(": x"));
}

#[test]
fn malformed_variable_names_are_rejected() {
    for name in ["RINGSIDE___TOKEN", "RINGSIDE_DISCORD__", "RINGSIDE_A__B__C"] {
        let e = error_of(from_env(&[(name, "x")]));
        assert!(
            e.starts_with(&format!("config: environment variable {name}: ")),
            "{e}"
        );
    }
}

// ----- requirement 1: strings come out exactly as written -----

/// figment's own `Env` provider would read `0123` as the number 123 and
/// `true` as a boolean; this is why the config module has its own.
#[test]
fn figment_env_parsing_is_lossy_which_is_why_we_do_not_use_it() {
    use figment::value::Value;
    let parsed: Value = "0123".parse().unwrap();
    assert_eq!(parsed.to_u128(), Some(123));
    let parsed: Value = "true".parse().unwrap();
    assert_eq!(parsed.to_bool(), Some(true));
}

#[test]
fn env_client_id_0123_stays_a_string() {
    let mut vars = RC_FULL.to_vec();
    vars[0] = ("RINGSIDE_RINGCENTRAL__CLIENT_ID", "0123");
    let s = from_env(&vars).unwrap();
    assert_eq!(s.ringcentral.credentials.unwrap().client_id, "0123");
}

#[test]
fn env_token_true_stays_a_string() {
    let mut vars = DISCORD_FULL.to_vec();
    vars[0] = ("RINGSIDE_DISCORD__TOKEN", "true");
    let s = from_env(&vars).unwrap();
    assert_eq!(s.discord.bot.unwrap().token.expose_secret(), "true");
}

#[test]
fn env_strings_that_look_like_other_things_stay_strings() {
    let mut vars = RC_FULL.to_vec();
    vars[1] = ("RINGSIDE_RINGCENTRAL__CLIENT_SECRET", "1.50");
    vars[2] = ("RINGSIDE_RINGCENTRAL__JWT", "[a, b]");
    vars.push((
        "RINGSIDE_RINGCENTRAL__VERIFICATION_TOKEN",
        "0071234567890123",
    ));
    vars.push(("RINGSIDE_SERVER__API_TOKEN", "\"quoted-api-token\""));
    vars.push(("RINGSIDE_RINGCENTRAL__HOST_EXTENSIONS", "[0101, \"0102\"]"));
    let s = from_env(&vars).unwrap();
    let rc = s.ringcentral;
    let credentials = rc.credentials.unwrap();
    assert_eq!(credentials.client_secret.expose_secret(), "1.50");
    assert_eq!(credentials.jwt.expose_secret(), "[a, b]");
    assert_eq!(
        rc.verification_token.unwrap().expose_secret(),
        "0071234567890123"
    );
    assert_eq!(
        s.server.api_token.unwrap().expose_secret(),
        "\"quoted-api-token\""
    );
    assert_eq!(rc.host_extensions, ["0101", "0102"]);
}

#[test]
fn toml_numbers_and_booleans_for_string_keys_are_stringified() {
    let s = from_toml(
        "[server]\npublic_url = \"https://ringside.example.com\"\n\
         [ringcentral]\nclient_id = 123\nclient_secret = true\njwt = 1.5\n\
         verification_token = \"0071234567890123\"\nhost_extensions = [101, \"0102\"]\n",
    )
    .unwrap();
    let credentials = s.ringcentral.credentials.unwrap();
    assert_eq!(credentials.client_id, "123");
    assert_eq!(credentials.client_secret.expose_secret(), "true");
    assert_eq!(credentials.jwt.expose_secret(), "1.5");
    assert_eq!(
        s.ringcentral.verification_token.unwrap().expose_secret(),
        "0071234567890123"
    );
    assert_eq!(s.ringcentral.host_extensions, ["101", "0102"]);
}

#[test]
fn a_coalescing_wait_of_zero_is_valid_and_the_default() {
    assert_eq!(from_toml("").unwrap().announce.coalesce_ms, 0);
    let s = from_toml("[announce]\ncoalesce_ms = 0\n").unwrap();
    assert_eq!(s.announce.coalesce_ms, 0);
    let s = from_env(&[("RINGSIDE_ANNOUNCE__COALESCE_MS", "0")]).unwrap();
    assert_eq!(s.announce.coalesce_ms, 0);
}

#[test]
fn numbers_and_booleans_accept_strings() {
    let s = from_toml(
        "[server]\nmax_body_bytes = \"4096\"\n[announce]\nthread_per_conference = \"true\"\n\
         coalesce_ms = \"250\"\n",
    )
    .unwrap();
    assert_eq!(s.server.max_body_bytes, 4096);
    assert!(s.announce.thread_per_conference);
    assert_eq!(s.announce.coalesce_ms, 250);

    let s = from_env(&[
        ("RINGSIDE_ACCESS__KICK_ENABLED", "false"),
        ("RINGSIDE_STORE__RETENTION_DAYS", "0007"),
    ])
    .unwrap();
    assert!(!s.access.kick_enabled);
    assert_eq!(s.store.retention_days, 7);
}

#[test]
fn toml_dates_for_string_keys_are_kept_as_written() {
    let s = from_toml(
        "[server]\npublic_url = \"https://ringside.example.com\"\n\
         [ringcentral]\nclient_id = 1979-05-27\nclient_secret = 1\njwt = 07:32:00\n",
    )
    .unwrap();
    let credentials = s.ringcentral.credentials.unwrap();
    assert_eq!(credentials.client_id, "1979-05-27");
    assert_eq!(credentials.jwt.expose_secret(), "07:32:00");
    let e = error_of(from_toml("[server]\nlisten = { a = 1 }\n"));
    assert_eq!(
        e,
        "config: server.listen: expected a string, number or boolean, found a table"
    );
}

#[test]
fn event_filters_from_env_and_file() {
    let filter = "/restapi/v1.0/account/~/telephony/sessions";
    let s = from_env(&[("RINGSIDE_RINGCENTRAL__EVENT_FILTERS", filter)]).unwrap();
    assert_eq!(s.ringcentral.event_filters, [filter]);
    let s = from_toml(&format!("[ringcentral]\nevent_filters = [\"{filter}\"]\n")).unwrap();
    assert_eq!(s.ringcentral.event_filters, [filter]);
}

// ----- requirement 2: Discord ids -----

#[test]
fn discord_ids_as_numbers_or_strings_in_toml() {
    let s = from_toml(
        "[discord]\ntoken = \"t\"\napplication_id = 1\nguild_id = \"123\"\n\
         channel_id = \"18446744073709551615\"\n[access]\nlist_roles = [1, \"2\"]\n",
    )
    .unwrap();
    let bot = s.discord.bot.unwrap();
    assert_eq!(bot.application_id, 1);
    assert_eq!(bot.guild_id, 123);
    assert_eq!(bot.channel_id, u64::MAX);
    assert_eq!(s.access.list_roles, [1, 2]);
}

#[test]
fn discord_ids_in_environment() {
    let mut vars = DISCORD_FULL.to_vec();
    vars[2] = ("RINGSIDE_DISCORD__GUILD_ID", "123");
    vars.push(("RINGSIDE_ACCESS__KICK_ROLES", "[123,456]"));
    vars.push(("RINGSIDE_ACCESS__KICK_USERS", r#"["123","456"]"#));
    vars.push((
        "RINGSIDE_ACCESS__LIST_ROLES",
        "9223372036854775808, 18446744073709551615",
    ));
    vars.push(("RINGSIDE_ACCESS__LIST_USERS", "[]"));
    let s = from_env(&vars).unwrap();
    assert_eq!(s.discord.bot.unwrap().guild_id, 123);
    assert_eq!(s.access.kick_roles, [123, 456]);
    assert_eq!(s.access.kick_users, [123, 456]);
    assert_eq!(s.access.list_roles, [9_223_372_036_854_775_808, u64::MAX]);
    assert!(s.access.list_users.is_empty());
}

#[test]
fn bad_discord_ids_are_rejected() {
    for bad in ["0", "-5", "abc", "1.5", "18446744073709551616", " 12"] {
        let e = error_of(from_env(&[(
            "RINGSIDE_ACCESS__KICK_ROLES",
            &format!("[\"{bad}\"]"),
        )]));
        assert_eq!(
            e,
            format!(
                "config: access.kick_roles: {bad:?} is not a Discord id \
                 (a positive whole number such as 123456789012345678)"
            )
        );
    }
    let e = error_of(from_toml("[access]\nkick_users = [-5]\n"));
    assert!(
        e.starts_with("config: access.kick_users: \"-5\" is not a Discord id"),
        "{e}"
    );
    let mut vars = DISCORD_FULL.to_vec();
    vars[2] = ("RINGSIDE_DISCORD__GUILD_ID", "0");
    let e = error_of(from_env(&vars));
    assert!(
        e.starts_with("config: discord.guild_id: \"0\" is not a Discord id"),
        "{e}"
    );
}

#[test]
fn malformed_environment_list_names_the_key() {
    let e = error_of(from_env(&[("RINGSIDE_ACCESS__KICK_ROLES", "[1,2")]));
    assert_eq!(
        e,
        "config: access.kick_roles: the list starts with [ but does not end with ]"
    );
}

// ----- requirement 3: all-or-none groups -----

#[test]
fn partial_ringcentral_group_names_the_missing_key() {
    let e = error_of(from_env(&RC_FULL[..2]));
    assert_eq!(
        e,
        "config: ringcentral.jwt is missing \
         (ringcentral.client_id, client_secret and jwt go together)"
    );
    let e = error_of(from_env(&RC_FULL[2..]));
    assert!(
        e.starts_with("config: ringcentral.client_id is missing ("),
        "{e}"
    );
}

#[test]
fn partial_discord_group_names_the_missing_key() {
    let e = error_of(from_env(&DISCORD_FULL[..3]));
    assert_eq!(
        e,
        "config: discord.channel_id is missing \
         (discord.token, application_id, guild_id and channel_id go together)"
    );
    let e = error_of(from_env(&DISCORD_FULL[1..]));
    assert!(e.starts_with("config: discord.token is missing ("), "{e}");
}

#[test]
fn empty_strings_count_as_missing() {
    let mut vars = RC_FULL.to_vec();
    vars[1] = ("RINGSIDE_RINGCENTRAL__CLIENT_SECRET", "");
    let e = error_of(from_env(&vars));
    assert!(
        e.starts_with("config: ringcentral.client_secret is missing"),
        "{e}"
    );

    let s = from_toml(
        "[ringcentral]\nclient_id = \"\"\nclient_secret = \"\"\njwt = \"\"\n\
         [discord]\ntoken = \"\"\nguild_id = \"\"\n",
    )
    .unwrap();
    assert!(s.ringcentral.credentials.is_none());
    assert!(s.discord.bot.is_none());
}

#[test]
fn complete_groups_are_exposed() {
    let vars: Vec<_> = RC_FULL.iter().chain(DISCORD_FULL.iter()).copied().collect();
    let s = from_env(&vars).unwrap();
    let rc = s.ringcentral.credentials.unwrap();
    assert_eq!(rc.client_id, "id");
    assert_eq!(rc.client_secret.expose_secret(), "sekrit-client");
    assert_eq!(rc.jwt.expose_secret(), "sekrit-jwt");
    let bot = s.discord.bot.unwrap();
    assert_eq!(bot.token.expose_secret(), "sekrit-bot");
    assert_eq!(
        (bot.application_id, bot.guild_id, bot.channel_id),
        (11, 22, 33)
    );
}

// ----- requirement 4: invalid values, unknown keys, syntax, secrets -----

#[test]
fn bad_socket_address() {
    let e = error_of(from_env(&[("RINGSIDE_SERVER__LISTEN", "nope")]));
    assert_eq!(
        e,
        r#"config: server.listen: "nope" is not a socket address (e.g. 127.0.0.1:8080)"#
    );
    let e = error_of(from_toml("[server]\nadmin_listen = \"localhost\"\n"));
    assert_eq!(
        e,
        r#"config: server.admin_listen: "localhost" is not a socket address (e.g. 127.0.0.1:9090)"#
    );
}

#[test]
fn numeric_ranges_are_enforced() {
    let cases = [
        (
            "RINGSIDE_SERVER__MAX_BODY_BYTES",
            "1023",
            "server.max_body_bytes: \"1023\" is too small (at least 1024)",
        ),
        (
            "RINGSIDE_RINGCENTRAL__SUBSCRIPTION_EXPIRES_IN",
            "59",
            "ringcentral.subscription_expires_in: \"59\" is too small (at least 60)",
        ),
        (
            "RINGSIDE_RINGCENTRAL__SUBSCRIPTION_EXPIRES_IN",
            "4294967296",
            "ringcentral.subscription_expires_in: \"4294967296\" is too large (at most 4294967295)",
        ),
        (
            "RINGSIDE_RINGCENTRAL__RECONCILE_INTERVAL_SECS",
            "0",
            "ringcentral.reconcile_interval_secs: \"0\" is too small (at least 1)",
        ),
        (
            "RINGSIDE_RINGCENTRAL__WATCHDOG_INTERVAL_SECS",
            "0",
            "ringcentral.watchdog_interval_secs: \"0\" is too small (at least 1)",
        ),
        (
            "RINGSIDE_RINGCENTRAL__KICK_CONFIRM_SECS",
            "0",
            "ringcentral.kick_confirm_secs: \"0\" is too small (at least 1)",
        ),
        (
            "RINGSIDE_RINGCENTRAL__TOKEN_REFRESH_MARGIN_SECS",
            "-1",
            "ringcentral.token_refresh_margin_secs: \"-1\" is negative (at least 0)",
        ),
        (
            "RINGSIDE_DISCORD__CONFIRM_SECS",
            "0",
            "discord.confirm_secs: \"0\" is too small (at least 1)",
        ),
        (
            "RINGSIDE_ANNOUNCE__COALESCE_MS",
            "1.5",
            "announce.coalesce_ms: \"1.5\" is not a whole number",
        ),
        (
            "RINGSIDE_ANNOUNCE__STALE_AFTER_SECS",
            "99999999999999999999",
            "announce.stale_after_secs: \"99999999999999999999\" is too large (at most 18446744073709551615)",
        ),
        (
            "RINGSIDE_ACCESS__KICK_LIMIT_PER_MINUTE",
            "0",
            "access.kick_limit_per_minute: \"0\" is too small (at least 1)",
        ),
        (
            "RINGSIDE_STORE__RETENTION_DAYS",
            "0",
            "store.retention_days: \"0\" is too small (at least 1)",
        ),
        (
            "RINGSIDE_STORE__AUDIT_RETENTION_DAYS",
            "ten",
            "store.audit_retention_days: \"ten\" is not a whole number",
        ),
        (
            "RINGSIDE_ANNOUNCE__THREAD_PER_CONFERENCE",
            "yes",
            "announce.thread_per_conference: \"yes\" is not true or false",
        ),
        (
            "RINGSIDE_ANNOUNCE__ROSTER_EDIT_MS",
            "299",
            "announce.roster_edit_ms: \"299\" is too small (at least 300)",
        ),
        (
            "RINGSIDE_ANNOUNCE__FEED",
            "no",
            "announce.feed: \"no\" is not true or false",
        ),
        (
            "RINGSIDE_ACCESS__KICK_ENABLED",
            "1",
            "access.kick_enabled: \"1\" is not true or false",
        ),
        (
            "RINGSIDE_PRIVACY__PHONE_NUMBERS",
            "Masked",
            "privacy.phone_numbers: \"Masked\" is not one of masked, full or hidden",
        ),
    ];
    for (name, value, expected) in cases {
        let e = error_of(from_env(&[(name, value)]));
        assert_eq!(e, format!("config: {expected}"), "{name}={value}");
    }
    let s = from_toml(
        "[announce]\nroster_card = false\nroster_edit_ms = 300\nfeed = false\ntimeline = false\n",
    )
    .unwrap();
    assert_eq!(
        (
            s.announce.roster_card,
            s.announce.roster_edit_ms,
            s.announce.feed,
            s.announce.timeline
        ),
        (false, 300, false, false),
        "the fastest card edits accepted, and every part can be turned off"
    );
    let e = error_of(from_toml("[announce]\ncoalesce_ms = 1e3\n"));
    assert_eq!(
        e,
        "config: announce.coalesce_ms: \"1000.0\" is not a whole number"
    );
}

#[test]
fn boundary_values_are_accepted() {
    let s = from_env(&[
        ("RINGSIDE_SERVER__MAX_BODY_BYTES", "1024"),
        ("RINGSIDE_RINGCENTRAL__SUBSCRIPTION_EXPIRES_IN", "60"),
        ("RINGSIDE_RINGCENTRAL__TOKEN_REFRESH_MARGIN_SECS", "0"),
        ("RINGSIDE_STORE__AUDIT_RETENTION_DAYS", "1"),
    ])
    .unwrap();
    assert_eq!(s.server.max_body_bytes, 1024);
    assert_eq!(s.ringcentral.subscription_expires_in, 60);
    assert_eq!(s.ringcentral.token_refresh_margin_secs, 0);
    assert_eq!(s.store.audit_retention_days, 1);
}

#[test]
fn phone_number_choices() {
    for choice in PhoneNumbers::ALL {
        let s = from_toml(&format!(
            "[privacy]\nphone_numbers = \"{}\"\n",
            choice.as_str()
        ))
        .unwrap();
        assert_eq!(s.privacy.phone_numbers, choice);
    }
}

#[test]
fn contacts_keys_from_the_file_and_the_environment() {
    let s = from_toml("[contacts]\npath = \"team.csv\"\ndefault_country_code = 44\n").unwrap();
    assert_eq!(s.contacts.path, Some(PathBuf::from("team.csv")));
    assert_eq!(s.contacts.default_country_code.as_deref(), Some("44"));
    let s = from_env(&[
        ("RINGSIDE_CONTACTS__PATH", "/etc/ringside/contacts.csv"),
        ("RINGSIDE_CONTACTS__DEFAULT_COUNTRY_CODE", "1"),
    ])
    .unwrap();
    assert_eq!(
        s.contacts.path,
        Some(PathBuf::from("/etc/ringside/contacts.csv"))
    );
    assert_eq!(s.contacts.default_country_code.as_deref(), Some("1"));
    let s = from_env(&[("RINGSIDE_CONTACTS__PATH", "")]).unwrap();
    assert_eq!(s.contacts.path, None, "empty counts as not set");
}

#[test]
fn a_country_code_that_is_not_one_to_three_digits_is_refused_naming_the_key() {
    for bad in ["+44", "0", "1234", "44a", " 1", "-1"] {
        let error = error_of(from_env(&[(
            "RINGSIDE_CONTACTS__DEFAULT_COUNTRY_CODE",
            bad,
        )]));
        assert!(
            error.starts_with("config: contacts.default_country_code: "),
            "{bad:?}: {error}"
        );
        assert!(!error.contains('\n'), "{error}");
    }
    for good in ["1", "44", "358"] {
        let s = from_env(&[("RINGSIDE_CONTACTS__DEFAULT_COUNTRY_CODE", good)]).unwrap();
        assert_eq!(s.contacts.default_country_code.as_deref(), Some(good));
    }
}

#[test]
fn the_watch_list_from_the_file_with_ids_as_strings_or_numbers() {
    let s = from_toml(
        "[watch]\nnumbers = [\"+1 (310) 555-0199\", \"+442071838750\"]\n\
         names = [\" Paco \", \"Whitfield\"]\nalert_roles = [\"123\", 456]\n",
    )
    .unwrap();
    assert_eq!(
        s.watch,
        Watch {
            numbers: vec!["+13105550199".into(), "+442071838750".into()],
            names: vec!["Paco".into(), "Whitfield".into()],
            alert_roles: vec![123, 456],
        }
    );
    assert!(!s.watch.is_empty());
    let defaults = Settings::from_sources(None, &[]).unwrap();
    assert_eq!(defaults.watch, Watch::default(), "nobody is watched");
    assert!(defaults.watch.is_empty());
}

#[test]
fn the_settings_remember_their_file_for_the_reload() {
    let f = file("[watch]\nnames = [\"Paco\"]\n");
    let s = Settings::from_sources(Some(f.path()), &[]).unwrap();
    assert_eq!(s.file.as_deref(), Some(f.path()));
    assert_eq!(Settings::from_sources(None, &[]).unwrap().file, None);
}

#[test]
fn the_watch_list_from_the_environment() {
    let s = from_env(&[
        ("RINGSIDE_WATCH__NUMBERS", r#"["+13105550199"]"#),
        ("RINGSIDE_WATCH__NAMES", "Paco,Dana"),
        ("RINGSIDE_WATCH__ALERT_ROLES", r#"["123"]"#),
    ])
    .unwrap();
    assert_eq!(s.watch.numbers, ["+13105550199"]);
    assert_eq!(s.watch.names, ["Paco", "Dana"]);
    assert_eq!(s.watch.alert_roles, [123]);
    let s = from_env(&[("RINGSIDE_WATCH__ALERT_ROLES", "[123, 456]")]).unwrap();
    assert_eq!(s.watch.alert_roles, [123, 456]);
}

#[test]
fn a_watched_number_not_in_e164_an_empty_name_or_a_bad_role_is_refused_naming_the_key() {
    for bad in [r#"["3105550199"]"#, r#"["+0123456789"]"#, r#"["call me"]"#] {
        let error = error_of(from_env(&[("RINGSIDE_WATCH__NUMBERS", bad)]));
        assert!(
            error.starts_with("config: watch.numbers: "),
            "{bad}: {error}"
        );
        assert!(error.contains("E.164"), "{error}");
    }
    let error = error_of(from_toml("[watch]\nnames = [\"Paco\", \"  \"]\n"));
    assert!(error.starts_with("config: watch.names: "), "{error}");
    for bad in [r#"["abc"]"#, "[0]", "[-5]"] {
        let error = error_of(from_env(&[("RINGSIDE_WATCH__ALERT_ROLES", bad)]));
        assert!(
            error.starts_with("config: watch.alert_roles: "),
            "{bad}: {error}"
        );
    }
}

#[test]
fn urls_are_checked_and_lose_their_trailing_slash() {
    let s = from_env(&[
        (
            "RINGSIDE_SERVER__PUBLIC_URL",
            "https://ringside.example.com/",
        ),
        (
            "RINGSIDE_RINGCENTRAL__SERVER_URL",
            "http://127.0.0.1:9000/rc/",
        ),
        ("RINGSIDE_DISCORD__API_URL", "https://discord.test"),
    ])
    .unwrap();
    assert_eq!(
        s.server.public_url.as_deref(),
        Some("https://ringside.example.com")
    );
    assert_eq!(s.ringcentral.server_url, "http://127.0.0.1:9000/rc");
    assert_eq!(s.discord.api_url, "https://discord.test");

    for bad in [
        "ringside.example.com",
        "ftp://x.example",
        "https://x.example/?a=1",
        "/relative",
        " https://x.example",
    ] {
        let e = error_of(from_env(&[("RINGSIDE_SERVER__PUBLIC_URL", bad)]));
        assert!(e.starts_with("config: server.public_url: is not "), "{e}");
        assert!(!e.contains(&format!("{bad:?}")), "the URL is echoed: {e}");
    }
    let e = error_of(from_env(&[(
        "RINGSIDE_DISCORD__API_URL",
        "https://user:sekrit@x.example",
    )]));
    assert_eq!(
        e,
        "config: discord.api_url: must not contain a user name or password"
    );
}

#[test]
fn discord_public_key_is_64_hex_characters() {
    let key = "0123456789abcdefABCDEF0123456789abcdef0123456789abcdef0123456789";
    let s = from_env(&[("RINGSIDE_DISCORD__PUBLIC_KEY", key)]).unwrap();
    assert_eq!(
        s.discord.public_key.map(|key| key.to_hex()).as_deref(),
        Some(key.to_ascii_lowercase()).as_deref()
    );
    let e = error_of(from_env(&[("RINGSIDE_DISCORD__PUBLIC_KEY", "abc")]));
    assert_eq!(
        e,
        r#"config: discord.public_key: "abc" is not 64 hexadecimal characters"#
    );
}

#[test]
fn verification_token_limits() {
    let longest = "x".repeat(64);
    let s = from_env(&[("RINGSIDE_RINGCENTRAL__VERIFICATION_TOKEN", &longest)]).unwrap();
    assert_eq!(
        s.ringcentral.verification_token.unwrap().expose_secret(),
        longest
    );

    let too_long = format!("sekrit{}", "y".repeat(59));
    let e = error_of(from_env(&[(
        "RINGSIDE_RINGCENTRAL__VERIFICATION_TOKEN",
        &too_long,
    )]));
    assert_eq!(
        e,
        "config: ringcentral.verification_token: is 65 characters long (at most 64)"
    );
    for bad in ["sekrit token", "sekrit\u{e9}", "sekrit\n"] {
        let e = error_of(from_env(&[(
            "RINGSIDE_RINGCENTRAL__VERIFICATION_TOKEN",
            bad,
        )]));
        assert_eq!(
            e,
            "config: ringcentral.verification_token: may contain only visible ASCII characters (no spaces)"
        );
        assert!(!e.contains("sekrit"));
    }
}

#[test]
fn unknown_keys_are_rejected_with_their_origin() {
    let f = file("[discord]\ntokn = \"x\"\n");
    let e = error_of(Settings::from_sources(Some(f.path()), &[]));
    assert_eq!(
        e,
        format!(
            "config: unknown key discord.tokn (in {})",
            f.path().display()
        )
    );

    let e = error_of(from_env(&[("RINGSIDE_DISCORD__TOKN", "x")]));
    assert_eq!(
        e,
        "config: unknown key discord.tokn (from environment variable RINGSIDE_DISCORD__TOKN)"
    );

    let e = error_of(from_toml("[discrod]\ntoken = \"x\"\n"));
    assert!(e.starts_with("config: unknown key discrod (in "), "{e}");
    let e = error_of(from_toml("listen = \"127.0.0.1:1\"\n"));
    assert!(e.starts_with("config: unknown key listen (in "), "{e}");
    let e = error_of(from_env(&[("RINGSIDE_DISCROD__TOKEN", "x")]));
    assert_eq!(
        e,
        "config: unknown key discrod (from environment variable RINGSIDE_DISCROD__TOKEN)"
    );
}

#[test]
fn wrong_shapes_name_the_key() {
    let e = error_of(from_toml("server = 5\n"));
    assert_eq!(
        e,
        "config: server: must be a table ([server]), not a number"
    );
    let e = error_of(from_toml("[discord]\ntoken = [\"sekrit\"]\n"));
    assert_eq!(
        e,
        "config: discord.token: expected a string, number or boolean, found a list"
    );
    let e = error_of(from_toml("[discord]\ntoken = { a = \"sekrit\" }\n"));
    assert_eq!(
        e,
        "config: discord.token: expected a string, number or boolean, found a table"
    );
    let e = error_of(from_toml("[access]\nkick_roles = [[1]]\n"));
    assert!(
        e.starts_with("config: access.kick_roles.0: expected a string"),
        "{e}"
    );
}

#[test]
fn toml_syntax_error_names_file_and_line() {
    let f = file("[server]\nlisten = \"127.0.0.1:8080\"\napi_token = \"sekrit\n");
    let e = error_of(Settings::from_sources(Some(f.path()), &[]));
    let prefix = format!(
        "config: {}: TOML syntax error at line 3, column ",
        f.path().display()
    );
    assert!(e.starts_with(&prefix), "{e}");
    assert!(!e.contains('\n'), "{e}");
    assert!(!e.contains("sekrit"), "{e}");
}

#[test]
fn toml_integers_beyond_i64_must_be_quoted() {
    let e = error_of(from_toml("[discord]\nguild_id = 18446744073709551615\n"));
    assert!(e.contains("TOML syntax error at line 2"), "{e}");
}

#[test]
fn load_reads_the_explicit_file() {
    let e = error_of(Settings::load(Some(Path::new(
        "/nonexistent/ringside-load.toml",
    ))));
    assert!(
        e.starts_with("config: cannot read /nonexistent/ringside-load.toml: "),
        "{e}"
    );
}

#[test]
fn unreadable_file_names_the_file() {
    let missing = Path::new("/nonexistent/ringside-test.toml");
    let e = error_of(Settings::from_sources(Some(missing), &[]));
    assert!(
        e.starts_with("config: cannot read /nonexistent/ringside-test.toml: "),
        "{e}"
    );
}

#[test]
fn secrets_do_not_appear_in_debug_output() {
    let mut vars: Vec<_> = RC_FULL.iter().chain(DISCORD_FULL.iter()).copied().collect();
    vars.push(("RINGSIDE_SERVER__API_TOKEN", "sekrit-api-token-1"));
    vars.push((
        "RINGSIDE_RINGCENTRAL__VERIFICATION_TOKEN",
        "sekrit-verify-token",
    ));
    let s = from_env(&vars).unwrap();
    let debug = format!("{s:?} {s:#?}");
    assert!(!debug.contains("sekrit"), "{debug}");
    assert!(debug.contains("REDACTED"));
    // The non-secret parts are still shown.
    assert!(debug.contains("client_id: \"id\""));
}

#[test]
fn secrets_do_not_appear_in_errors() {
    let secret = "sekrit-value-that-must-not-leak";
    let bad_token = format!("{secret} with spaces");
    let cases: Vec<Vec<(&str, &str)>> = vec![
        vec![("RINGSIDE_RINGCENTRAL__VERIFICATION_TOKEN", &bad_token)],
        vec![("RINGSIDE_DISCORD__TOKEN", secret)],
        vec![("RINGSIDE_RINGCENTRAL__JWT", secret)],
        vec![
            ("RINGSIDE_RINGCENTRAL__CLIENT_ID", "id"),
            ("RINGSIDE_RINGCENTRAL__CLIENT_SECRET", secret),
        ],
    ];
    for vars in cases {
        let err = from_env(&vars).expect_err("should fail");
        let shown = format!("{err} {err:?}");
        assert!(!shown.contains(secret), "{shown}");
    }
}

// ----- requirement 5: one line -----

#[test]
fn errors_are_one_line() {
    let mut errors = vec![
        from_env(&[("RINGSIDE_SERVER__LISTEN", "a\nb\r\nc")]).unwrap_err(),
        from_env(&[("RINGSIDE_ACCESS__KICK_ROLES", "[\"1\n2\"]")]).unwrap_err(),
        from_toml("[server\n").unwrap_err(),
        from_toml("[server]\nlisten = \n").unwrap_err(),
        from_toml("[a]\nb = 1\n[a]\nb = 2\n").unwrap_err(),
        from_env(&RC_FULL[..1]).unwrap_err(),
        from_env(&[("RINGSIDE_DISCORD__X\nY", "1")]).unwrap_err(),
    ];
    errors.push(ConfigError::Unreadable {
        file: "multi\nline.toml".into(),
        reason: "first\nsecond\n".into(),
    });
    errors.push(ConfigError::Syntax {
        file: "f.toml".into(),
        line: None,
        column: None,
        reason: "x\ty\n\nz".into(),
    });
    for error in errors {
        let shown = error.to_string();
        assert!(shown.starts_with("config: "), "{shown}");
        assert_eq!(shown.lines().count(), 1, "{shown:?}");
        assert!(!shown.chars().any(char::is_control), "{shown:?}");
    }
}

// ----- requirement 6: the example file -----

#[test]
fn example_file_loads() {
    let s = Settings::from_sources(Some(&example_path()), &[]).expect("example loads");
    assert_eq!(s.file, Some(example_path()));
    // Everything in it is commented out, so it means the defaults.
    let defaults = Settings {
        file: Some(example_path()),
        ..Settings::from_sources(None, &[]).unwrap()
    };
    assert_eq!(format!("{s:?}"), format!("{defaults:?}"));
}

/// A line of the example that sets a key, commented out or not:
/// `key = value` or `# key = value`. Returns the key.
fn key_line(line: &str) -> Option<&str> {
    let line = line.trim_start();
    let line = line
        .strip_prefix('#')
        .map_or(line, |l| l.strip_prefix(' ').unwrap_or(l));
    let (key, _) = line.split_once(" = ")?;
    (!key.is_empty() && key.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')).then_some(key)
}

/// The example with every commented-out key line turned on.
fn example_uncommented() -> String {
    EXAMPLE
        .lines()
        .map(|line| match key_line(line) {
            Some(_) => line.trim_start_matches(['#', ' ']).to_owned(),
            None => line.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn example_file_with_everything_uncommented_loads() {
    let uncommented = example_uncommented();
    let s = from_toml(&uncommented).expect("uncommented example loads");
    let defaults = Settings::from_sources(None, &[]).unwrap();
    // Where the example shows a value that has a default, it shows the default.
    assert_eq!(s.server.listen, defaults.server.listen);
    assert_eq!(s.server.admin_listen, defaults.server.admin_listen);
    assert_eq!(s.server.max_body_bytes, defaults.server.max_body_bytes);
    assert_eq!(s.ringcentral.server_url, defaults.ringcentral.server_url);
    assert_eq!(
        s.ringcentral.event_filters,
        defaults.ringcentral.event_filters
    );
    assert_eq!(
        format!(
            "{:?}",
            (
                s.ringcentral.subscription_expires_in,
                s.ringcentral.reconcile_interval_secs,
                s.ringcentral.watchdog_interval_secs,
                s.ringcentral.kick_confirm_secs,
                s.ringcentral.token_refresh_margin_secs,
            )
        ),
        format!(
            "{:?}",
            (
                defaults.ringcentral.subscription_expires_in,
                defaults.ringcentral.reconcile_interval_secs,
                defaults.ringcentral.watchdog_interval_secs,
                defaults.ringcentral.kick_confirm_secs,
                defaults.ringcentral.token_refresh_margin_secs,
            )
        )
    );
    assert_eq!(s.discord.api_url, defaults.discord.api_url);
    assert_eq!(s.discord.confirm_secs, defaults.discord.confirm_secs);
    assert_eq!(s.announce, defaults.announce);
    assert_eq!(s.privacy, defaults.privacy);
    assert_eq!(s.access, defaults.access);
    assert_eq!(
        s.contacts.default_country_code.as_deref(),
        Some("1"),
        "the example shows a country code (it has no default)"
    );
    assert_eq!(s.store, defaults.store);
}

/// Fails when a key of `Settings` (that is, of the raw settings the file is
/// read into) is not in the example: with every line uncommented, every key
/// must be set.
#[test]
fn example_file_documents_every_key() {
    let text = example_uncommented();
    let dict = sources::toml_layer("example", &text).expect("example parses");
    let raw: RawSettings = figment::Figment::from(figment::providers::Serialized::defaults(dict))
        .extract()
        .expect("example has only known keys");
    let missing: Vec<String> = keys_of(&raw)
        .into_iter()
        .filter(|(_, set)| !set)
        .map(|(key, _)| key)
        .collect();
    assert!(
        missing.is_empty(),
        "keys missing from the example: {missing:?}"
    );
}

/// Every key of the raw settings, dotted, with whether it is set.
fn keys_of(raw: &RawSettings) -> Vec<(String, bool)> {
    let tree = serde_json::to_value(raw).expect("raw settings serialize");
    let mut keys = Vec::new();
    for (section, section_keys) in tree.as_object().expect("sections") {
        for (key, value) in section_keys.as_object().expect("keys") {
            keys.push((format!("{section}.{key}"), !value.is_null()));
        }
    }
    keys
}

#[test]
fn example_file_comments_every_key() {
    let lines: Vec<&str> = EXAMPLE.lines().collect();
    let mut keys = 0;
    for (i, line) in lines.iter().enumerate() {
        if key_line(line).is_none() {
            continue;
        }
        keys += 1;
        let above = lines[..i]
            .iter()
            .rev()
            .find(|l| !l.trim().is_empty())
            .copied()
            .unwrap_or("");
        assert!(
            above.trim_start().starts_with('#') && key_line(above).is_none(),
            "example line {} ({line:?}) has no comment of its own above it",
            i + 1
        );
    }
    let known = keys_of(&RawSettings::default()).len();
    assert_eq!(
        keys, known,
        "the example has {keys} key lines for {known} keys"
    );
}

#[test]
fn scalar_keeps_text() {
    // Guards the assumption the env layer relies on: a string value comes
    // through figment untouched.
    let dict = sources::toml_layer("t", "a = \"0123\"\n").unwrap();
    let value: Scalar = figment::Figment::from(figment::providers::Serialized::defaults(dict))
        .extract_inner("a")
        .unwrap();
    assert_eq!(value.0, "0123");
}

// ----- exposure: limits of the listeners, and secrets that are too weak -----

#[test]
fn listener_limits_have_defaults_and_a_minimum_of_one() {
    let s = from_env(&[]).unwrap();
    assert_eq!(s.server.header_read_timeout, Duration::from_secs(10));
    assert_eq!(s.server.idle_timeout, Duration::from_secs(60));
    assert_eq!(s.server.max_connections, 512);
    assert_eq!(s.server.webhook_deadline, Duration::from_millis(2500));

    let s = from_toml(
        "[server]\nheader_read_timeout_secs = 1\nidle_timeout_secs = \"1\"\n\
         max_connections = 1\nwebhook_deadline_ms = 1\n",
    )
    .unwrap();
    assert_eq!(s.server.header_read_timeout, Duration::from_secs(1));
    assert_eq!(s.server.idle_timeout, Duration::from_secs(1));
    assert_eq!(s.server.max_connections, 1);
    assert_eq!(s.server.webhook_deadline, Duration::from_millis(1));

    for key in [
        "HEADER_READ_TIMEOUT_SECS",
        "IDLE_TIMEOUT_SECS",
        "MAX_CONNECTIONS",
        "WEBHOOK_DEADLINE_MS",
    ] {
        let e = error_of(from_env(&[(&format!("RINGSIDE_SERVER__{key}"), "0")]));
        assert_eq!(
            e,
            format!(
                "config: server.{}: \"0\" is too small (at least 1)",
                key.to_ascii_lowercase()
            )
        );
    }
}

#[test]
fn short_secret_tokens_are_refused_without_showing_them() {
    for (var, key) in [
        (
            "RINGSIDE_RINGCENTRAL__VERIFICATION_TOKEN",
            "ringcentral.verification_token",
        ),
        ("RINGSIDE_SERVER__API_TOKEN", "server.api_token"),
    ] {
        let e = error_of(from_env(&[(var, "x")]));
        assert_eq!(
            e,
            format!(
                "config: {key}: is 1 characters long (at least 16: a short token can be guessed)"
            )
        );
        let fifteen = "sekritsekrit123";
        let e = error_of(from_env(&[(var, fifteen)]));
        assert!(e.contains("is 15 characters long (at least 16"), "{e}");
        assert!(!e.contains(fifteen), "{e}");
        let sixteen = "sekritsekrit1234";
        assert!(from_env(&[(var, sixteen)]).is_ok());
    }
}

#[test]
fn urls_with_credentials_a_query_or_a_fragment_are_refused_and_never_echoed() {
    for (var, key) in [
        ("RINGSIDE_SERVER__PUBLIC_URL", "server.public_url"),
        ("RINGSIDE_RINGCENTRAL__SERVER_URL", "ringcentral.server_url"),
    ] {
        for bad in [
            "https://admin:hunter2@ringside.example.com",
            "https://ringside.example.com/?token=hunter2",
            "https://ringside.example.com/#hunter2",
            "https://hunter2@ringside.example.com",
            "not a url hunter2",
        ] {
            let e = error_of(from_env(&[(var, bad)]));
            assert!(e.starts_with(&format!("config: {key}: ")), "{e}");
            assert!(!e.contains("hunter2"), "{key} error shows the URL: {e}");
        }
    }
}

#[test]
fn delivery_is_the_webhook_with_a_public_url_and_the_websocket_without() {
    let s = from_env(&RC_FULL).unwrap();
    assert_eq!(s.ringcentral.delivery, Delivery::Webhook);
    let s = from_env(&RC_FULL[..3]).unwrap();
    assert_eq!(s.ringcentral.delivery, Delivery::WebSocket);
    assert!(
        s.ringcentral
            .delivery_reason
            .contains("no server.public_url")
    );
    let mut vars = RC_FULL.to_vec();
    vars.push(("RINGSIDE_RINGCENTRAL__DELIVERY", "WebSocket"));
    assert_eq!(
        from_env(&vars).unwrap().ringcentral.delivery,
        Delivery::WebSocket
    );
    let e = error_of(from_env(&[("RINGSIDE_RINGCENTRAL__DELIVERY", "pubnub")]));
    assert_eq!(
        e,
        "config: ringcentral.delivery: \"pubnub\" is not websocket or webhook"
    );
}

#[test]
fn webhook_delivery_without_a_public_url_names_both_keys() {
    let mut vars = RC_FULL[..3].to_vec();
    vars.push(("RINGSIDE_RINGCENTRAL__DELIVERY", "webhook"));
    let e = error_of(from_env(&vars));
    assert!(
        e.starts_with("config: server.public_url is missing ("),
        "{e}"
    );
    assert!(e.contains("ringcentral.delivery"), "{e}");
}
