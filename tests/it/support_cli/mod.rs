//! Running the real `ringside` binary from tests: a private working directory, a clean
//! environment (no `RINGSIDE_*`, no `RUST_LOG`), and a deadline on everything, so a hung child
//! fails its test instead of hanging the run.

pub mod crash;

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_ringside");

/// The RingCentral fixtures (`seed/`, `captured/`, …).
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ringcentral")
}

/// A fixture's text.
pub fn fixture(relative: &str) -> String {
    let path = fixtures().join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// A fixture as one compact JSON line (for JSON-lines files).
pub fn fixture_line(relative: &str) -> String {
    let value: serde_json::Value = serde_json::from_str(&fixture(relative)).unwrap();
    value.to_string()
}

/// A temporary working directory with no `config/ringside.toml` in it.
pub struct Sandbox {
    dir: tempfile::TempDir,
}

impl Sandbox {
    pub fn new() -> Self {
        Sandbox {
            dir: tempfile::Builder::new()
                .prefix("ringside-cli-")
                .tempdir()
                .expect("creating a temporary directory"),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `text` at `relative` (creating folders) and returns `relative`, for use as an argument.
    pub fn write(&self, relative: &str, text: &str) -> String {
        let path = self.dir.path().join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&path, text).unwrap();
        relative.to_owned()
    }

    /// Copies a fixture to the same relative path in the sandbox and returns that path.
    pub fn fixture(&self, relative: &str) -> String {
        self.write(relative, &fixture(relative))
    }

    /// `ringside ARGS` run in the sandbox with a clean environment.
    pub fn command<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let mut command = Command::new(BIN);
        command
            .args(args)
            .current_dir(self.dir.path())
            .env_clear()
            .env("TMPDIR", self.dir.path());
        if let Some(path) = std::env::var_os("PATH") {
            command.env("PATH", path);
        }
        command
    }
}

/// What a finished child printed.
#[derive(Debug)]
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Finished {
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    pub fn stdout_lines(&self) -> Vec<&str> {
        self.stdout.lines().collect()
    }

    pub fn stderr_lines(&self) -> Vec<&str> {
        self.stderr.lines().collect()
    }
}

fn read_all(mut pipe: impl std::io::Read + Send + 'static) -> JoinHandle<String> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// Runs `command` to the end with `stdin` as its input; kills it and panics if it takes longer
/// than `timeout`.
pub fn run(mut command: Command, stdin: Option<&[u8]>, timeout: Duration) -> Finished {
    command
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("starting ringside");
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().unwrap();
        let input = input.to_vec();
        std::thread::spawn(move || {
            let _ = pipe.write_all(&input);
        });
    }
    let stdout = read_all(child.stdout.take().unwrap());
    let stderr = read_all(child.stderr.take().unwrap());
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for ringside") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            let (stdout, stderr) = (stdout.join().unwrap(), stderr.join().unwrap());
            panic!(
                "ringside did not finish within {timeout:?}; killed it\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Finished {
        status,
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    }
}

fn lines_of(pipe: impl std::io::Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// A long-running `ringside` whose output is read line by line as it comes. Killed on drop.
pub struct Service {
    child: Child,
    stdout: Receiver<String>,
    stderr: Receiver<String>,
    /// Every stdout line read so far.
    pub stdout_seen: Vec<String>,
    /// Every stderr line read so far.
    pub stderr_seen: Vec<String>,
}

impl Service {
    pub fn start(mut command: Command) -> Self {
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("starting ringside");
        let stdout = lines_of(child.stdout.take().unwrap());
        let stderr = lines_of(child.stderr.take().unwrap());
        Service {
            child,
            stdout,
            stderr,
            stdout_seen: Vec::new(),
            stderr_seen: Vec::new(),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The exit status, once the child has exited; then everything left in its pipes is read.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        let status = self.child.try_wait().expect("waiting for ringside")?;
        self.drain();
        Some(status)
    }

    fn context(&self) -> String {
        format!(
            "--- stdout so far\n{}\n--- stderr so far\n{}",
            self.stdout_seen.join("\n"),
            self.stderr_seen.join("\n")
        )
    }

    /// Reads stderr until a line satisfies `wanted` and returns it; panics at the deadline or
    /// if stderr closes first.
    pub fn stderr_until(&mut self, timeout: Duration, wanted: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stderr.recv_timeout(left) {
                Ok(line) => {
                    self.stderr_seen.push(line.clone());
                    if wanted(&line) {
                        return line;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    panic!(
                        "no expected line on stderr within {timeout:?}\n{}",
                        self.context()
                    )
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let status = self.child.try_wait();
                    panic!(
                        "stderr closed before the expected line (exit: {status:?})\n{}",
                        self.context()
                    )
                }
            }
        }
    }

    /// Reads the start-up banner: the lines from `ringside is listening` through its last
    /// line, `RingCentral: …`.
    pub fn banner(&mut self, timeout: Duration) -> Banner {
        self.stderr_until(timeout, |line| {
            line.starts_with("ringside is listening on ")
        });
        let start = self.stderr_seen.len() - 1;
        self.stderr_until(timeout, |line| {
            line.trim_start().starts_with("RingCentral:")
        });
        let lines = self.stderr_seen[start..].to_vec();
        let webhook = lines
            .iter()
            .find_map(|line| line.trim_start().strip_prefix("webhook: "))
            .unwrap_or_else(|| panic!("no webhook line in the banner:\n{}", lines.join("\n")))
            .to_owned();
        let token = lines
            .iter()
            .find(|line| line.contains("verification token"))
            .map(|line| line.rsplit(": ").next().unwrap().trim().to_owned());
        Banner {
            lines,
            webhook,
            token,
        }
    }

    /// Reads `count` more stdout lines; panics at the deadline.
    pub fn stdout_lines(&mut self, count: usize, timeout: Duration) -> Vec<String> {
        let deadline = Instant::now() + timeout;
        let mut lines = Vec::new();
        while lines.len() < count {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stdout.recv_timeout(left) {
                Ok(line) => {
                    self.stdout_seen.push(line.clone());
                    lines.push(line);
                }
                Err(error) => panic!(
                    "wanted {count} stdout lines within {timeout:?}, got {lines:?} ({error:?})\n{}",
                    self.context()
                ),
            }
        }
        lines
    }

    /// Sends SIGTERM and waits for the exit, then reads what is left of both pipes. Kills the
    /// child and panics if it has not exited within `timeout`.
    pub fn terminate(&mut self, timeout: Duration) -> ExitStatus {
        self.signal_and_wait("TERM", timeout, Duration::from_millis(20))
    }

    /// Sends SIGKILL (`kill -KILL`) and waits for the death, then reads what is left of both
    /// pipes. Panics if the child is still there after `timeout`.
    pub fn kill_hard(&mut self, timeout: Duration) -> ExitStatus {
        self.signal_and_wait("KILL", timeout, Duration::from_millis(2))
    }

    fn signal_and_wait(&mut self, signal: &str, timeout: Duration, poll: Duration) -> ExitStatus {
        let sent = Command::new("kill")
            .args([&format!("-{signal}"), &self.pid().to_string()])
            .status()
            .expect("running kill");
        assert!(sent.success(), "kill -{signal} failed: {sent}");
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "ringside did not exit within {timeout:?} of SIG{signal}\n{}",
                    self.context()
                );
            }
            std::thread::sleep(poll);
        };
        self.drain();
        status
    }

    /// Reads stdout and stderr as they come until neither has said anything for `quiet`, or
    /// until `timeout` has passed; answers whether it went quiet. Panics if a pipe closes
    /// (the child died).
    pub fn settle(&mut self, quiet: Duration, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut last = Instant::now();
        loop {
            let now = Instant::now();
            if now.duration_since(last) >= quiet {
                return true;
            }
            if now >= deadline {
                return false;
            }
            let mut heard = false;
            let mut closed = false;
            for (rx, seen) in [
                (&self.stdout, &mut self.stdout_seen),
                (&self.stderr, &mut self.stderr_seen),
            ] {
                loop {
                    match rx.try_recv() {
                        Ok(line) => {
                            seen.push(line);
                            heard = true;
                        }
                        Err(mpsc::TryRecvError::Empty) => break,
                        Err(mpsc::TryRecvError::Disconnected) => {
                            closed = true;
                            break;
                        }
                    }
                }
            }
            if closed {
                let status = self.child.try_wait();
                panic!(
                    "ringside closed its output while settling (exit: {status:?})\n{}",
                    self.context()
                );
            }
            if heard {
                last = Instant::now();
            } else {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }

    /// After the exit: everything still in the pipes (the reader threads end at EOF).
    fn drain(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(5);
        for (rx, seen) in [
            (&self.stdout, &mut self.stdout_seen),
            (&self.stderr, &mut self.stderr_seen),
        ] {
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                match rx.recv_timeout(left) {
                    Ok(line) => seen.push(line),
                    Err(_) => break,
                }
            }
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The start-up banner of `ringside run`.
#[derive(Debug)]
pub struct Banner {
    pub lines: Vec<String>,
    /// The `webhook:` URL.
    pub webhook: String,
    /// The generated verification token, when the banner shows one.
    pub token: Option<String>,
}

/// A port nobody listens on right now (bound and released; good enough on 127.0.0.1).
pub fn free_ports<const N: usize>() -> [u16; N] {
    let listeners: Vec<_> = (0..N)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("binding 127.0.0.1:0"))
        .collect();
    std::array::from_fn(|i| listeners[i].local_addr().unwrap().port())
}

/// POSTs `body` to `url` with a `Verification-Token`, directly (no proxy); returns the status.
pub fn post_notification(url: &str, token: &str, body: &str) -> u16 {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap();
        let response = client
            .post(url)
            .header("Verification-Token", token)
            .header("Content-Type", "application/json")
            .body(body.to_owned())
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {url}: {e}"));
        response.status().as_u16()
    })
}
