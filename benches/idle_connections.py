#!/usr/bin/env python3
"""What idle and slow connections cost a running ringside (the Security section's limits).

Starts the given ringside binary in local mode in a temporary directory, then opens N
connections to the public listener that each send a partial request head of HEAD_BYTES and
stop. It prints the process's RSS before and with them, whether a valid webhook POST and
GET /readyz on the operator listener are still answered (and how fast), and how many of the
connections the server has closed after WAIT seconds.

    cargo build --release
    python3 benches/idle_connections.py target/release/ringside [N] [HEAD_BYTES] [WAIT]

Defaults: 500 connections, 8000-byte partial heads, 15 s. `RINGSIDE_SERVER__*` variables in the
environment (a smaller `MAX_CONNECTIONS`, say) are passed on; run it under `ulimit -n 128` to see
what happens when file descriptors run out. Run it against two builds (for
example a checkout of an older commit) to compare them; the figures are the machine's, not a
pass/fail test.
"""

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

TOKEN = "idle-probe-verification-token"


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


def timed(request, timeout=10):
    started = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            status = answer.status
    except urllib.error.HTTPError as error:
        status = error.code
    except Exception as error:  # a timeout or a refused connection is the finding
        status = f"failed ({error.__class__.__name__})"
    return status, time.monotonic() - started


def main():
    binary = sys.argv[1]
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 500
    head_bytes = int(sys.argv[3]) if len(sys.argv) > 3 else 8000
    wait = float(sys.argv[4]) if len(sys.argv) > 4 else 15.0
    public, admin = free_port(), free_port()
    workdir = tempfile.mkdtemp(prefix="ringside-idle-")
    env = {
        "PATH": os.environ.get("PATH", ""),
        "RINGSIDE_SERVER__LISTEN": f"127.0.0.1:{public}",
        "RINGSIDE_SERVER__ADMIN_LISTEN": f"127.0.0.1:{admin}",
        "RINGSIDE_STORE__PATH": os.path.join(workdir, "ringside.sqlite3"),
        "RINGSIDE_RINGCENTRAL__VERIFICATION_TOKEN": TOKEN,
        "RUST_LOG": "warn",
    }
    # Limits to try (RINGSIDE_SERVER__MAX_CONNECTIONS=…, …) pass through from the caller.
    env.update({k: v for k, v in os.environ.items() if k.startswith("RINGSIDE_SERVER__")})
    service = subprocess.Popen(
        [os.path.abspath(binary), "run"],
        cwd=workdir,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", public), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        time.sleep(0.5)
        before = rss_kib(service.pid)

        held = []
        partial = b"POST /webhooks/ringcentral HTTP/1.1\r\nHost: ringside\r\nX-Padding: "
        partial += b"a" * max(0, head_bytes - len(partial))
        for _ in range(count):
            try:
                conn = socket.create_connection(("127.0.0.1", public), timeout=2)
                conn.setblocking(False)
                try:
                    conn.sendall(partial) if len(partial) <= 65536 else conn.send(partial)
                except (BlockingIOError, OSError):
                    pass
                held.append(conn)
            except OSError:
                break
        time.sleep(1.0)
        with_them = rss_kib(service.pid)

        with open(os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures",
                               "ringcentral", "seed", "participant-added.json"), "rb") as seed:
            notification = json.loads(seed.read())
        notification["uuid"] = "idle-probe-1"
        post = urllib.request.Request(
            f"http://127.0.0.1:{public}/webhooks/ringcentral",
            data=json.dumps(notification).encode(),
            headers={"Content-Type": "application/json", "Verification-Token": TOKEN},
            method="POST",
        )
        post_status, post_seconds = timed(post)
        ready_status, ready_seconds = timed(f"http://127.0.0.1:{admin}/readyz")

        time.sleep(wait)
        closed = 0
        for conn in held:
            # Closed: the server's end is gone (EOF after whatever it answered, or a reset).
            while True:
                try:
                    data = conn.recv(65536)
                except BlockingIOError:
                    break
                except OSError:
                    closed += 1
                    break
                if data == b"":
                    closed += 1
                    break
        print(f"binary: {binary}")
        print(f"connections opened: {len(held)} with {head_bytes}-byte partial heads")
        print(f"RSS idle: {before / 1024:.1f} MiB; with the connections: {with_them / 1024:.1f} MiB")
        print(f"webhook POST while held: {post_status} in {post_seconds * 1000:.0f} ms")
        print(f"GET /readyz while held: {ready_status} in {ready_seconds * 1000:.0f} ms")
        print(f"closed by the server after {wait:.0f} s: {closed} of {len(held)}")
        for conn in held:
            conn.close()
    finally:
        service.terminate()
        service.wait(timeout=15)


if __name__ == "__main__":
    main()
