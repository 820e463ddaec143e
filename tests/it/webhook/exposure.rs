//! Safe to expose (the README's Security section: the `server.*` limits): the listeners' limits over real sockets, the
//! webhook's order of checks, a store that cannot write, numeric ids, private store files, and
//! a core task that dies.

use super::{JOINED_LINE, NOTHING, seed_added_with_uuid};
use crate::support::{TestApp, TestConfig, fixture_json};
use serde_json::json;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// Small limits for the socket tests: `header` and `idle` seconds, `max` connections.
fn limited(header: u64, idle: u64, max: usize) -> TestConfig {
    let mut config = TestConfig::new();
    config.settings.server.header_read_timeout = Duration::from_secs(header);
    config.settings.server.idle_timeout = Duration::from_secs(idle);
    config.settings.server.max_connections = max;
    config
}

/// Reads until the server closes the connection (EOF or reset); answers how long that took, or
/// `None` when it was still open after `wait`.
async fn closed_within(stream: &mut TcpStream, wait: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut buffer = [0u8; 4096];
    let closed = tokio::time::timeout(wait, async {
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    closed.ok().map(|()| started.elapsed())
}

/// `count` connections to `addr` that send nothing, each accepted before the next is opened.
async fn idle_connections(addr: std::net::SocketAddr, count: usize) -> Vec<TcpStream> {
    let mut streams = Vec::new();
    for _ in 0..count {
        streams.push(TcpStream::connect(addr).await.expect("connect"));
        // Let the accept loop take it (and its slot) before the next one.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    streams
}

const HEALTHZ: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: ringside\r\n\r\n";

/// Sends `request` on `stream` and reads until a whole `200` head arrived or `wait` passed.
async fn answered_within(stream: &mut TcpStream, request: &[u8], wait: Duration) -> bool {
    stream.write_all(request).await.expect("write");
    let mut seen = Vec::new();
    let mut buffer = [0u8; 1024];
    tokio::time::timeout(wait, async {
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => return false,
                Ok(n) => {
                    seen.extend_from_slice(&buffer[..n]);
                    if seen.windows(4).any(|w| w == b"\r\n\r\n") {
                        return seen.starts_with(b"HTTP/1.1 200");
                    }
                }
            }
        }
    })
    .await
    .unwrap_or(false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_that_sends_half_a_head_is_closed_after_the_header_read_timeout() {
    let app = limited(1, 30, 16).start().await;
    let mut slow = TcpStream::connect(app.public_addr()).await.unwrap();
    slow.write_all(b"POST /webhooks/ringcentral HTTP/1.1\r\nHost: ringside\r\nContent-Le")
        .await
        .unwrap();
    let took = closed_within(&mut slow, Duration::from_secs(8))
        .await
        .expect("a half-sent head is not kept open");
    assert!(took >= Duration::from_millis(800), "closed after {took:?}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_connection_and_an_idle_keep_alive_are_closed_after_the_idle_timeout() {
    let app = limited(30, 1, 16).start().await;
    let mut silent = TcpStream::connect(app.public_addr()).await.unwrap();
    let took = closed_within(&mut silent, Duration::from_secs(8))
        .await
        .expect("a connection that sends nothing is closed");
    assert!(took >= Duration::from_millis(800), "closed after {took:?}");

    // A keep-alive connection that was answered once, then goes quiet.
    let mut kept = TcpStream::connect(app.public_addr()).await.unwrap();
    assert!(answered_within(&mut kept, HEALTHZ, Duration::from_secs(5)).await);
    closed_within(&mut kept, Duration::from_secs(8))
        .await
        .expect("an idle keep-alive connection is closed");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_beyond_the_cap_waits_for_a_slot_and_the_operator_listener_still_answers() {
    let app = limited(30, 30, 3).start().await;
    let mut held = idle_connections(app.public_addr(), 3).await;
    let mut waiting = TcpStream::connect(app.public_addr()).await.unwrap();
    assert!(
        !answered_within(&mut waiting, HEALTHZ, Duration::from_millis(700)).await,
        "a fourth connection was served while three held every slot"
    );
    // The operator listener has its own slots.
    let (status, body) = app.readyz().await;
    assert_eq!(status, 200, "{body}");
    let metrics = app.admin_get("/metrics", None).await;
    assert_eq!(metrics.status(), 200);

    // A slot frees: the waiting connection is served.
    drop(held.pop());
    let mut answer = Vec::new();
    let mut buffer = [0u8; 1024];
    let served = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let n = waiting.read(&mut buffer).await.unwrap_or(0);
            if n == 0 {
                return false;
            }
            answer.extend_from_slice(&buffer[..n]);
            if answer.windows(4).any(|w| w == b"\r\n\r\n") {
                return answer.starts_with(b"HTTP/1.1 200");
            }
        }
    })
    .await;
    assert_eq!(served, Ok(true), "{}", String::from_utf8_lossy(&answer));
    drop(held);
    app.stop().await;
}

/// Sends only the head of a request that declares a 70 KB body and answers what the server
/// says before a byte of that body was sent.
async fn answer_to_a_head(app: &TestApp, token_header: Option<(&str, &str)>) -> String {
    let mut head = String::from(
        "POST /webhooks/ringcentral HTTP/1.1\r\nHost: ringside\r\nContent-Type: application/json\r\nContent-Length: 71680\r\n",
    );
    if let Some((name, value)) = token_header {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let mut stream = TcpStream::connect(app.public_addr()).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut seen = Vec::new();
    let mut buffer = [0u8; 1024];
    let answered = tokio::time::timeout(Duration::from_secs(5), async {
        while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => seen.extend_from_slice(&buffer[..n]),
            }
        }
    })
    .await;
    assert!(answered.is_ok(), "no answer before the body was sent");
    String::from_utf8_lossy(&seen)
        .lines()
        .next()
        .unwrap_or("")
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_token_a_70_kb_body_is_refused_401_before_it_is_read() {
    let app = TestConfig::new().start().await;
    let token = app.token();
    for header in [
        None,
        Some(("Verification-Token", "not-the-token")),
        // A Validation-Token that is not the secret, on a request with a body: no handshake.
        Some(("Validation-Token", "abc")),
    ] {
        let status = answer_to_a_head(&app, header).await;
        assert_eq!(status, "HTTP/1.1 401 Unauthorized", "{header:?}");
    }
    // With the token, the declared size alone is refused.
    let status = answer_to_a_head(&app, Some(("Verification-Token", &token))).await;
    assert_eq!(status, "HTTP/1.1 413 Payload Too Large");
    assert_eq!(app.counts().await, NOTHING);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunked_handshake_is_read_only_up_to_one_kib() {
    let app = TestConfig::new().start().await;
    let head = "POST /webhooks/ringcentral HTTP/1.1\r\nHost: ringside\r\nValidation-Token: abc123\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
    let empty = app
        .raw_exchange(format!("{head}0\r\n\r\n").as_bytes())
        .await;
    assert_eq!(empty.status(), 200, "{}", empty.text());
    assert_eq!(empty.header("validation-token").as_deref(), Some("abc123"));

    let chunk = "x".repeat(2048);
    let big = app
        .raw_exchange(format!("{head}{:x}\r\n{chunk}\r\n0\r\n\r\n", chunk.len()).as_bytes())
        .await;
    assert_eq!(big.status(), 401, "{}", big.text());
    assert_eq!(app.counts().await, NOTHING);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_first_value_of_a_token_header_is_compared() {
    let app = TestConfig::new().start().await;
    let token = app.token();
    let body = serde_json::to_vec(&seed_added_with_uuid("first-value-only")).unwrap();
    let request = |first: &str, second: &str| {
        let mut head = format!(
            "POST /webhooks/ringcentral HTTP/1.1\r\nHost: ringside\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: {}\r\n",
            body.len()
        );
        head.push_str(&format!("Verification-Token: {first}\r\n"));
        head.push_str(&format!("Verification-Token: {second}\r\n\r\n"));
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(&body);
        bytes
    };
    let guesses = app.raw_exchange(&request("guess-1", &token)).await;
    assert_eq!(guesses.status(), 401, "{}", guesses.text());
    assert_eq!(app.counts().await, NOTHING);
    let right_first = app.raw_exchange(&request(&token, "guess-2")).await;
    assert_eq!(right_first.status(), 200, "{}", right_first.text());
    app.stop().await;
}

/// Holds SQLite's write lock on the app's store from another connection until dropped (the
/// store then fails every write after its busy timeout).
struct Lock(Option<rusqlite::Connection>);

impl Lock {
    async fn take(app: &TestApp) -> Lock {
        let path = app.config.settings.store.path.clone();
        let conn = tokio::task::spawn_blocking(move || {
            let conn = rusqlite::Connection::open(path).unwrap();
            conn.execute_batch("BEGIN EXCLUSIVE").unwrap();
            conn
        })
        .await
        .unwrap();
        Lock(Some(conn))
    }

    fn release(mut self) {
        if let Some(conn) = self.0.take() {
            conn.execute_batch("COMMIT").unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_cannot_write_answers_503_within_the_deadline_and_loses_nothing() {
    let mut config = TestConfig::new();
    config.settings.server.webhook_deadline = Duration::from_millis(400);
    let app = config.start().await;

    // A slow store: answered 503 at the deadline, but the commit that lands afterwards still
    // reaches the detector.
    let lock = Lock::take(&app).await;
    let started = Instant::now();
    let response = app.notify(&seed_added_with_uuid("late-commit")).await;
    let took = started.elapsed();
    assert_eq!(response.status(), 503);
    assert!(took < Duration::from_secs(2), "answered after {took:?}");
    let body = response.text().await.unwrap();
    assert_eq!(body, "ringside could not store the notification in time\n");
    lock.release();
    app.wait_for_line(JOINED_LINE).await;

    // A failing store: the commit fails (after SQLite's busy timeout). From then until a write
    // commits again, /readyz says so without a probe write of its own.
    let lock = Lock::take(&app).await;
    let mut leave = fixture_json(super::REMOVED);
    leave["uuid"] = json!("while-failing");
    assert_eq!(app.notify(&leave).await.status(), 503);
    crate::support::eventually(
        "the store reports failing",
        Duration::from_secs(15),
        async || app.running.store.failing(),
    )
    .await;
    let (status, text) = app.readyz().await;
    assert_eq!(status, 503, "{text}");
    assert!(text.starts_with("not ready: store not writable"), "{text}");
    lock.release();

    // RingCentral sends it again: accepted, announced once, and the store is healthy again.
    app.notify_ok(&leave).await;
    app.wait_for_line(super::LEFT_LINE).await;
    assert!(app.running.store.failing().is_none());
    let (status, text) = app.readyz().await;
    assert_eq!(status, 200, "{text}");
    let lines = app.settle().await;
    for line in [JOINED_LINE, super::LEFT_LINE] {
        assert_eq!(
            lines.iter().filter(|seen| *seen == line).count(),
            1,
            "{lines:#?}"
        );
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn numeric_owner_account_and_extension_ids_are_accepted_and_the_join_announced() {
    let app = TestConfig::new().start().await;
    let mut notification = fixture_json("seed/participant-added.json");
    notification["ownerId"] = json!(400_131_508_008u64);
    notification["body"]["accountId"] = json!(400_131_508_008u64);
    notification["body"]["extensionId"] = json!(400_131_508_008u64);
    for party in notification["body"]["parties"].as_array_mut().unwrap() {
        party["extensionId"] = json!(400_131_508_008u64);
        party["accountId"] = json!(400_131_508_008u64);
    }
    app.notify_ok(&notification).await;
    app.wait_for_line(JOINED_LINE).await;
    app.stop().await;
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_and_its_new_directories_are_private_after_start() {
    use std::os::unix::fs::PermissionsExt as _;
    let mode =
        |path: &std::path::Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    let mut config = TestConfig::new();
    let root = config.dir.path().to_owned();
    std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o755)).unwrap();
    config.settings.store.path = root.join("data/ringside.sqlite3");
    let app = config.start().await;
    app.notify_ok(&seed_added_with_uuid("private-files")).await;
    app.wait_processed().await;
    let path = app.config.settings.store.path.clone();
    for file in [
        "ringside.sqlite3",
        "ringside.sqlite3-wal",
        "ringside.sqlite3-shm",
    ] {
        let file = root.join("data").join(file);
        assert_eq!(mode(&file), 0o600, "{}", file.display());
    }
    assert_eq!(mode(&root.join("data")), 0o700);
    assert_eq!(
        mode(&root),
        0o755,
        "a directory ringside did not create is left alone"
    );

    // Loosened by someone else: tightened at the next start.
    let (config, _) = app.stop().await;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let app = config.start().await;
    assert_eq!(mode(&path), 0o600);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_core_task_that_dies_makes_readyz_name_it() {
    for task in ["pipeline", "announcer", "store"] {
        let app = TestConfig::new().start().await;
        assert_eq!(app.readyz().await.0, 200);
        assert!(app.running.end_task_for_test(task).await, "{task}");
        let died = tokio::time::timeout(Duration::from_secs(5), app.running.supervisor.died())
            .await
            .unwrap_or_else(|_| panic!("{task}: no death reported"));
        assert_eq!(died, task);
        let (status, body) = app.readyz().await;
        assert_eq!(status, 503, "{task}: {body}");
        assert_eq!(body, format!("not ready: core task {task} ended\n"));
        let _ = app.running.shutdown().await;
    }
}
