#!/usr/bin/env python3
"""A bounded flood of hostile requests against a demo server: it must keep answering, never with a
5xx, and leave the store exactly as it was (every table's row count and a hash of its rows).

    python3 scripts/flood.py [--seconds 5] [--threads 4]

Run from the repository root after `cargo build` (it uses target/debug/leadping-invitations).
Every request is one a real attacker or a broken client could send, and none is allowed to change
anything: forged, expired, not-yet-valid, `alg: none` and cut-off bearer tokens; another
business's ids; an Agent trying what it may not, also by replaying the Owner's Idempotency-Key;
bodies too large, not JSON, not UTF-8, of the wrong shape or with unknown fields; odd and huge path ids, encoded NULs and dot segments;
acceptance tokens that are not; malformed HTTP (garbage, a 64 KiB header, a 32 KiB URI, a
body cut short); and, all the while, slow clients: bodies and request heads sent a byte at a
time, each of which must be cut at its deadline (2 s here), a body with a 408. Only the loopback
address is used; the flood stops by itself.
"""
import argparse
import base64
import collections
import hashlib
import hmac
import json
import os
import random
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BINARY = ROOT / "target" / "debug" / "leadping-invitations"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwt(claims: dict, secret: str, alg: str = "HS256") -> str:
    head = b64url(json.dumps({"alg": alg, "typ": "JWT"}).encode())
    body = b64url(json.dumps(claims).encode())
    if alg == "none":
        return f"{head}.{body}."
    sig = hmac.new(secret.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64url(sig)}"


def snapshot(db: Path) -> dict:
    """Every table's row count and a hash of its rows, sorted (a read-only connection)."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        tables = [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")]
        out = {}
        for t in tables:
            rows = sorted(repr(r) for r in conn.execute(f'SELECT * FROM "{t}"'))
            out[t] = (len(rows), hashlib.sha256("\n".join(rows).encode()).hexdigest())
        return out
    finally:
        conn.close()


def outbox_settled(db: Path) -> bool:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        (waiting,) = conn.execute(
            "SELECT COUNT(*) FROM outbox WHERE delivered_at IS NULL AND failed_at IS NULL "
            "AND superseded_at IS NULL").fetchone()
        return waiting == 0
    finally:
        conn.close()


def raw(port: int, data: bytes, timeout: float = 2.0) -> str:
    """Sends bytes as they are; returns the status line's code, or what happened instead."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
            reply = s.recv(64)
            if not reply:
                return "closed"
            parts = reply.split(b" ", 2)
            return parts[1].decode(errors="replace") if len(parts) > 1 else "garbage"
    except (ConnectionError, socket.timeout, OSError) as e:
        return type(e).__name__


# The head and body deadlines the flood's server runs with, in seconds.
SLOW_DEADLINE = 2


def trickle(port: int, head: bytes, limit: float) -> tuple:
    """Sends `head`, then a byte every 0.3 s until the server closes the connection (or `limit`
    seconds pass); returns (the status the server answered, or "none", seconds until closed, or
    None if it never was)."""
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=limit)
    except OSError as e:
        return (type(e).__name__, 0.0)
    reply = b""
    with s:
        s.sendall(head)
        sent = time.monotonic()
        s.settimeout(0.3)
        while time.monotonic() - sent < limit:
            try:
                chunk = s.recv(1024)
                if not chunk:
                    break
                reply += chunk
            except socket.timeout:
                try:
                    s.sendall(b"a")
                except OSError:
                    break
            except OSError:
                break
        else:
            return ("never closed", None)
    parts = reply.split(b" ", 2)
    status = parts[1].decode(errors="replace") if len(parts) > 1 else "none"
    return (status, time.monotonic() - sent)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--threads", type=int, default=4)
    args = ap.parse_args()
    if not BINARY.exists():
        sys.exit(f"{BINARY} is missing: run `cargo build` first")

    data = Path(tempfile.mkdtemp(prefix="leadping-flood-"))
    port = free_port()
    # Info: every request's line is written, so that the log can be searched for secrets after.
    env = dict(os.environ, LEADPING_DATA_DIR=str(data), LEADPING_LOG_LEVEL="info",
               LEADPING_DELIVERY_WAIT_MS="0", LEADPING_REQUEST_HEAD_TIMEOUT_SECS=str(SLOW_DEADLINE),
               LEADPING_REQUEST_BODY_TIMEOUT_SECS=str(SLOW_DEADLINE))
    server = subprocess.Popen(
        [str(BINARY), "serve", "--bind", f"127.0.0.1:{port}", "--demo", "--demo-out", str(data / "demo.json")],
        env=env, stdout=subprocess.DEVNULL, stderr=open(data / "server.err", "wb"))
    failures = []
    try:
        for _ in range(100):
            if (data / "demo.json").exists() and (data / "demo.json").stat().st_size > 0:
                break
            if server.poll() is not None:
                sys.exit("the server exited:\n" + (data / "server.err").read_text())
            time.sleep(0.1)
        demo = json.loads((data / "demo.json").read_text())
        base = f"http://127.0.0.1:{port}"
        db = data / "leadping.db"
        secret = (data / "jwt-secret").read_text().strip()
        (a, b) = demo["businesses"][:2]
        owner_a = next(m for m in a["members"] if m["role"] == "Owner")
        agent_a = next(m for m in a["members"] if m["role"] == "Agent")
        b_invitation = b["invitationIds"][0]
        a_invitation = a["invitationIds"][0]
        # The Owner resends with an Idempotency-Key: a replay of it by anyone else must be refused.
        owner = owner_a["token"]
        replay_key = {"Idempotency-Key": "flood-owner-key"}
        with urllib.request.urlopen(urllib.request.Request(
                f"{base}/businesses/me/invitations/{a_invitation}/resend", method="POST",
                headers={"Authorization": f"Bearer {owner}", **replay_key}), timeout=10) as r:
            if r.status != 200:
                sys.exit(f"the Owner's resend before the flood answered {r.status}")
        owner_b = next(m for m in b["members"] if m["role"] == "Owner")
        # The demo's emails go out first; from then on nothing may change.
        for _ in range(100):
            if outbox_settled(db):
                break
            time.sleep(0.1)
        before = snapshot(db)

        now = int(time.time())
        claims = {"sub": owner_a["userId"], "org_id": a["id"], "role": "Owner"}
        tokens = {
            "forged": jwt({**claims, "exp": now + 3600}, "not-the-secret-0123456789abcdef-xyz"),
            "expired": jwt({**claims, "exp": now - 3600}, secret),
            "not-yet-valid": jwt({**claims, "exp": now + 3600, "nbf": now + 86400}, secret),
            "alg-none": jwt({**claims, "exp": now + 3600}, secret, alg="none"),
            "cut-off": owner_a["token"][:-5],
            "no-sub": jwt({"org_id": a["id"], "exp": now + 3600}, secret),
            "control-chars": jwt({**claims, "sub": "usr\u0000x", "exp": now + 3600}, secret),
        }
        owner = owner_a["token"]
        agent = agent_a["token"]
        acceptance = a["acceptanceTokens"][a_invitation]
        inv = f"{base}/businesses/me/invitations"
        requests = []  # (name, method, url, headers, body)
        for name, t in tokens.items():
            requests.append((f"token {name}: list", "GET", inv, {"Authorization": f"Bearer {t}"}, None))
            requests.append((f"token {name}: resend", "POST", f"{inv}/{a_invitation}/resend",
                             {"Authorization": f"Bearer {t}"}, None))
        requests += [
            ("another business's invitation: resend", "POST", f"{inv}/{b_invitation}/resend",
             {"Authorization": f"Bearer {owner}"}, None),
            ("another business's invitation: revoke", "DELETE", f"{inv}/{b_invitation}",
             {"Authorization": f"Bearer {owner}"}, None),
            ("an Agent resends", "POST", f"{inv}/{a_invitation}/resend", {"Authorization": f"Bearer {agent}"}, None),
            ("an Agent replays the Owner's Idempotency-Key", "POST", f"{inv}/{a_invitation}/resend",
             {"Authorization": f"Bearer {agent}", **replay_key}, None),
            ("another business replays the Owner's Idempotency-Key", "POST", f"{inv}/{a_invitation}/resend",
             {"Authorization": f"Bearer {owner_b['token']}", **replay_key}, None),
            ("an Agent revokes", "DELETE", f"{inv}/{a_invitation}", {"Authorization": f"Bearer {agent}"}, None),
            ("an Agent invites, with unknown fields", "POST", inv,
             {"Authorization": f"Bearer {agent}", "Content-Type": "application/json"},
             json.dumps({"email": "new.person@example.com", "admin": True, "role": "Owner"}).encode()),
            ("body too large", "POST", inv, {"Authorization": f"Bearer {owner}", "Content-Type": "application/json"},
             json.dumps({"email": "x" * 100_000 + "@example.com"}).encode()),
            ("body not JSON", "POST", inv, {"Authorization": f"Bearer {owner}", "Content-Type": "text/plain"},
             b'{"email":"new.person@example.com"}'),
            ("body not UTF-8", "POST", inv, {"Authorization": f"Bearer {owner}", "Content-Type": "application/json"},
             b'{"email":"\xff\xfe@example.com"}'),
            ("body of the wrong shape", "POST", inv, {"Authorization": f"Bearer {owner}", "Content-Type": "application/json"},
             b'[{"email": 5}]'),
            ("invisible character in an address", "POST", inv,
             {"Authorization": f"Bearer {owner}", "Content-Type": "application/json"},
             json.dumps({"email": "new\u200bperson@example.com"}).encode()),
            ("IP-literal domain", "POST", inv, {"Authorization": f"Bearer {owner}", "Content-Type": "application/json"},
             json.dumps({"email": "new.person@[127.0.0.1]"}).encode()),
            ("an Idempotency-Key too long", "POST", inv,
             {"Authorization": f"Bearer {owner}", "Content-Type": "application/json", "Idempotency-Key": "k" * 300},
             json.dumps({"email": "new.person@example.com"}).encode()),
            ("a huge path id", "POST", f"{inv}/{'i' * 5000}/resend", {"Authorization": f"Bearer {owner}"}, None),
            ("an encoded NUL in a path id", "POST", f"{inv}/inv_%00/resend", {"Authorization": f"Bearer {owner}"}, None),
            ("dot segments", "GET", f"{base}/businesses/me/invitations/%2e%2e/%2e%2e/openapi.json",
             {"Authorization": f"Bearer {owner}"}, None),
            ("invalid UTF-8 in a path", "POST", f"{inv}/inv_%ff%fe/resend", {"Authorization": f"Bearer {owner}"}, None),
            ("an acceptance token that is not", "GET", f"{base}/businesses/invitations/token/{acceptance}0", {}, None),
            ("an acceptance token for another invitation", "GET",
             f"{base}/businesses/invitations/token/{b_invitation}.{acceptance.split('.')[1]}", {}, None),
            ("accept with a forged token", "POST", f"{base}/businesses/invitations/accept",
             {"Content-Type": "application/json"},
             json.dumps({"token": f"{a_invitation}.{'0' * 64}", "email": "x@example.com"}).encode()),
            ("accept with a wrong email", "POST", f"{base}/businesses/invitations/accept",
             {"Content-Type": "application/json"},
             json.dumps({"token": acceptance, "email": "someone.else@example.com"}).encode()),
            ("accept with a control character in a name", "POST", f"{base}/businesses/invitations/accept",
             {"Content-Type": "application/json"},
             json.dumps({"token": acceptance, "firstName": "a\u0007b"}).encode()),
            ("an unsupported method", "PATCH", inv, {"Authorization": f"Bearer {owner}"}, None),
            # Secrets percent-encoded in a path: the log must not show them, decoded or not.
            ("an address percent-encoded in a path", "GET",
             f"{base}/nowhere/{owner_a['email'].replace('@', '%40')}", {}, None),
            ("an address twice encoded in a path", "GET",
             f"{base}/nowhere/{owner_a['email'].replace('@', '%2540').replace('.', '%252E')}", {}, None),
            ("an acceptance token percent-encoded in a path", "GET",
             f"{base}/nowhere/{acceptance.replace('.', '%2E')}", {}, None),
            ("an acceptance token under an encoded token segment", "GET",
             f"{base}/businesses/invitations/%74oken/{acceptance}0", {}, None),
            ("a bearer token percent-encoded in a path", "GET",
             f"{base}/nowhere/{owner.replace('.', '%2e')}", {}, None),
        ]
        raws = [
            ("garbage", b"\x00\x01\x02 not http at all\r\n\r\n"),
            ("a 64 KiB header", b"GET /health/live HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 65536 + b"\r\n\r\n"),
            ("a 32 KiB URI", b"GET /" + b"a" * 32768 + b" HTTP/1.1\r\nHost: x\r\n\r\n"),
            ("a body cut short", b"POST /businesses/invitations/accept HTTP/1.1\r\nHost: x\r\n"
             b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"token\":"),
            ("a bad Content-Length", b"POST /businesses/invitations/accept HTTP/1.1\r\nHost: x\r\n"
             b"Content-Length: -5\r\n\r\n"),
        ]

        statuses = collections.Counter()
        lock = threading.Lock()
        deadline = time.monotonic() + args.seconds
        sent = [0]

        def worker(seed: int):
            rng = random.Random(seed)
            while time.monotonic() < deadline:
                api = rng.random() >= 0.1
                if not api:
                    name, payload = rng.choice(raws)
                    outcome = raw(port, payload)
                else:
                    name, method, url, headers, body = rng.choice(requests)
                    req = urllib.request.Request(url, data=body, method=method, headers=headers)
                    try:
                        with urllib.request.urlopen(req, timeout=5) as r:
                            outcome = str(r.status)
                    except urllib.error.HTTPError as e:
                        outcome = str(e.code)
                        e.read()
                    except (urllib.error.URLError, ConnectionError, socket.timeout, OSError) as e:
                        outcome = type(e).__name__
                with lock:
                    sent[0] += 1
                    statuses[(name, outcome)] += 1
                    # A 5xx is a bug; a hostile API request that succeeds is one too.
                    if outcome.startswith("5") or (api and outcome.startswith("2")):
                        failures.append(f"{name}: {outcome}")

        slow_heads = [
            ("a body a byte at a time", b"POST /businesses/invitations/accept HTTP/1.1\r\nHost: x\r\n"
             b"Content-Type: application/json\r\nContent-Length: 16000\r\n\r\n{"),
            ("a request head a byte at a time", b"GET /businesses/me/invitations HTTP/1.1\r\nHost: x\r\n"),
        ]

        def slow_worker(seed: int):
            rng = random.Random(seed)
            while time.monotonic() < deadline:
                name, head = rng.choice(slow_heads)
                status, closed = trickle(port, head, SLOW_DEADLINE + 3)
                with lock:
                    sent[0] += 1
                    statuses[(name, status)] += 1
                    if closed is None:
                        failures.append(f"{name}: still open {SLOW_DEADLINE + 3} s after its head")
                    elif status == "503":
                        pass  # refused at the connection limit: fine
                    elif closed < SLOW_DEADLINE - 0.2:
                        failures.append(f"{name}: cut after {closed:.1f} s, before its deadline")
                    elif "body" in name and status != "408":
                        failures.append(f"{name}: answered {status}, not 408")

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(args.threads)]
        threads += [threading.Thread(target=slow_worker, args=(100 + i,)) for i in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

        # Still answering, as it should.
        with urllib.request.urlopen(f"{base}/health/live", timeout=5) as r:
            if r.status != 200:
                failures.append(f"liveness after the flood: {r.status}")
        listing = urllib.request.Request(inv, headers={"Authorization": f"Bearer {owner}"})
        with urllib.request.urlopen(listing, timeout=5) as r:
            if r.status != 200:
                failures.append(f"a real request after the flood: {r.status}")
        after = snapshot(db)
        # The log, as a reader would decode it, shows no credential or address.
        log = (data / "server.err").read_text(errors="replace")
        for _ in range(4):
            log = urllib.parse.unquote(log)
        secrets = {
            "the Owner's address": owner_a["email"],
            "an acceptance token's MAC": acceptance.split(".")[1],
            "the Owner's bearer token": owner.split(".")[2],
        }
        for what, secret in secrets.items():
            if secret.lower() in log.lower():
                failures.append(f"the log shows {what}")
        for table in sorted(set(before) | set(after)):
            if before.get(table) != after.get(table):
                failures.append(f"table {table} changed: {before.get(table)} -> {after.get(table)}")
        if server.poll() is not None:
            failures.append(f"the server exited with {server.returncode}")

        print(f"flood: {sent[0]} requests in {args.seconds:.0f} s with {args.threads} threads")
        for (name, outcome), n in sorted(statuses.items()):
            print(f"  {outcome:>18}  x{n:<6} {name}")
        print(f"store: {len(before)} tables, row counts and hashes {'unchanged' if before == after else 'CHANGED'}")
        if failures:
            print("FAILED:", *sorted(set(failures)), sep="\n  ")
            # A 5xx is a bug: its cause is in the server's log.
            print((data / "server.err").read_text()[-4000:])
        print(f"flood: {0 if failures else 1} passed, {1 if failures else 0} failed")
        if failures:
            print(f"the server's data and log are kept in {data}")
        sys.exit(1 if failures else 0)
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        if not failures:
            shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
