//! The `ringside` command: parses the command line, runs the chosen part, maps the outcome to
//! an exit status. Everything else lives in the library.

use clap::{CommandFactory as _, FromArgMatches as _, Parser, Subcommand};
use ringside::app::{self, logging::LogFormat, replay};
use ringside::config::Settings;
use std::io::Read as _;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "ringside",
    version,
    about = "Watches RingCentral conference calls and reports who joins and leaves"
)]
struct Cli {
    /// Settings file (default: $RINGSIDE_CONFIG, else config/ringside.toml if present).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Log format on standard error.
    #[arg(long, global = true, value_enum, default_value = "human")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Write a commented settings file, asking on the terminal (or --non-interactive).
    ///
    /// With --non-interactive every value comes from flags or RINGSIDE_* variables. Secrets
    /// come only from the environment or the hidden prompts, never from flags.
    Init(Box<app::init::InitArgs>),
    /// Every other command: they run on the loaded settings.
    #[command(flatten)]
    Configured(Configured),
}

#[derive(Subcommand)]
enum Configured {
    /// Run the service (the default).
    Run,
    /// Play a scripted conference through the whole pipeline, no accounts needed.
    Demo {
        /// Post the conference into the real Discord channel of the configured bot.
        #[arg(long)]
        discord: bool,
        /// Play it over a webhook subscription instead of RingCentral's WebSocket.
        #[arg(long)]
        webhook: bool,
    },
    /// Check the settings, the RingCentral credentials and permissions, and the subscription.
    Check,
    /// Exit 0 if the service on this machine answers its /healthz (a container's HEALTHCHECK).
    Healthcheck,
    /// Copy the store to FILE while the service runs (SQLite's online backup), mode 0600.
    Backup {
        /// Where to write the copy.
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// Replace FILE if it exists.
        #[arg(long)]
        force: bool,
    },
    /// List or delete RingCentral webhook subscriptions.
    Subscriptions {
        #[command(subcommand)]
        action: SubscriptionsAction,
    },
    /// Print the audit log of kicks and refusals.
    Audit {
        /// Only entries from this date (2026-11-25) or time (RFC 3339) on.
        #[arg(long, value_name = "DATE")]
        since: Option<String>,
    },
    /// List the announcements Discord refused for good, or send one again.
    Parked {
        /// List at most this many, newest first.
        #[arg(long, value_name = "N", default_value_t = app::parked::DEFAULT_LIMIT)]
        limit: usize,
        #[command(subcommand)]
        action: Option<ParkedAction>,
    },
    /// Feed recorded notifications through the detector and print the conference events.
    Replay {
        /// One JSON object per event instead of readable lines.
        #[arg(long)]
        json: bool,
        /// Files with a notification, an array of them, or JSON lines; `-` for standard input.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<String>,
    },
}

#[derive(Subcommand)]
enum SubscriptionsAction {
    /// One line per subscription: id, status, address.
    List,
    /// Delete a subscription: the given one, or the one ringside created.
    Delete {
        #[arg(value_name = "ID")]
        id: Option<String>,
    },
}

#[derive(Subcommand)]
enum ParkedAction {
    /// Have the service send parked announcement ID again (within seconds when it runs, else at
    /// its next start), with the same text and files.
    Resend {
        #[arg(value_name = "ID")]
        id: i64,
    },
}

/// Exit status for settings that cannot be used.
const EXIT_CONFIG: u8 = 2;

/// `ringside --version`: the version, and the git commit when the build was told it through
/// `GIT_COMMIT` (`.ci/run` and the Dockerfile's build argument set it). No build script
/// watches `.git`, so committing never makes a plain `cargo build` rebuild anything. (Not a
/// `RINGSIDE_*` name: those are settings, and an unknown one stops the service.)
fn version() -> &'static str {
    match option_env!("GIT_COMMIT") {
        Some(commit) if !commit.trim().is_empty() => Box::leak(
            format!("{} (commit {})", env!("CARGO_PKG_VERSION"), commit.trim()).into_boxed_str(),
        ),
        _ => env!("CARGO_PKG_VERSION"),
    }
}

fn main() -> ExitCode {
    let cli = match Cli::from_arg_matches(&Cli::command().version(version()).get_matches()) {
        Ok(cli) => cli,
        Err(error) => error.exit(),
    };
    let command = match cli.command {
        // Before the settings are loaded: a half-set environment or a broken old file must not
        // stop a newcomer from writing a fresh one.
        Some(Command::Init(args)) => return app::init::main(cli.config.as_deref(), *args),
        Some(Command::Configured(command)) => command,
        None => Configured::Run,
    };
    let quiet = !matches!(command, Configured::Run);
    app::logging::init(cli.log_format, if quiet { "warn" } else { "info" });
    let settings = match Settings::load(cli.config.as_deref()) {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("ringside: {error}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    match command {
        Configured::Replay { json, files } => run_replay(&settings, json, &files),
        Configured::Run => block_on(app::run(settings)),
        Configured::Check => block_on(async move {
            let lines = app::operator::check(&settings).await?;
            for line in &lines {
                println!("{line}");
            }
            if lines.iter().all(|line| line.ok) {
                Ok(())
            } else {
                Err(anyhow::anyhow!("check found problems"))
            }
        }),
        Configured::Healthcheck => block_on(async move {
            println!("{}", app::maintenance::healthcheck(&settings).await?);
            Ok(())
        }),
        Configured::Backup { file, force } => block_on(async move {
            println!(
                "{}",
                app::maintenance::backup(&settings, &file, force).await?
            );
            Ok(())
        }),
        Configured::Audit { since } => block_on(async move {
            for line in app::operator::audit(&settings, since.as_deref()).await? {
                println!("{line}");
            }
            Ok(())
        }),
        Configured::Parked { limit, action } => block_on(async move {
            match action {
                None => {
                    for line in app::parked::list(&settings, limit).await? {
                        println!("{line}");
                    }
                }
                Some(ParkedAction::Resend { id }) => {
                    println!("{}", app::parked::resend(&settings, id).await?);
                }
            }
            Ok(())
        }),
        Configured::Subscriptions { action } => block_on(async move {
            match action {
                SubscriptionsAction::List => {
                    for line in app::operator::list_subscriptions(&settings).await? {
                        println!("{line}");
                    }
                }
                SubscriptionsAction::Delete { id } => {
                    println!(
                        "{}",
                        app::operator::delete_subscription(&settings, id).await?
                    );
                }
            }
            Ok(())
        }),
        #[cfg(feature = "simulator")]
        Configured::Demo { discord, webhook } => {
            block_on(async move { app::demo::run(&settings, discord, webhook).await })
        }
        #[cfg(not(feature = "simulator"))]
        Configured::Demo { .. } => {
            eprintln!(
                "ringside: this build has no simulator (built without the `simulator` feature)"
            );
            ExitCode::FAILURE
        }
    }
}

fn block_on(work: impl std::future::Future<Output = anyhow::Result<()>>) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("ringside: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(work) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("ringside: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run_replay(settings: &Settings, json: bool, files: &[String]) -> ExitCode {
    let mut sources = Vec::new();
    let mut unreadable = false;
    for name in files {
        let text = if name == "-" {
            let mut text = String::new();
            std::io::stdin().read_to_string(&mut text).map(|_| text)
        } else {
            std::fs::read_to_string(name)
        };
        match text {
            Ok(text) => sources.push(replay::Source {
                name: name.clone(),
                text,
            }),
            Err(error) => {
                eprintln!("ringside: {name}: cannot read: {error}");
                unreadable = true;
            }
        }
    }
    let format = if json {
        replay::Format::Json
    } else {
        replay::Format::Text(settings.privacy.phone_numbers)
    };
    let mut contacts_problems = false;
    let contacts = match &settings.contacts.path {
        Some(path) => {
            let code = settings.contacts.default_country_code.as_deref();
            let loaded = app::contacts::load(path, code);
            for problem in &loaded.problems {
                eprintln!("{problem}");
            }
            contacts_problems = !loaded.problems.is_empty();
            loaded.names(code).unwrap_or_default()
        }
        None => Default::default(),
    };
    let output = replay::replay_with_contacts(&sources, format, contacts);
    for line in &output.lines {
        println!("{line}");
    }
    for problem in &output.problems {
        eprintln!("ringside: {problem}");
    }
    if unreadable || contacts_problems || !output.problems.is_empty() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
