#!/usr/bin/env python3
"""The benchmark: resend under load on SQLite and PostgreSQL, as ratios to a bare dropshot
handler measured in the same run (this machine is shared and noisy; absolute numbers drift,
ratios much less).

    python3 scripts/bench.py                # the full run; writes BENCHMARKS.md
    python3 scripts/bench.py --smoke        # a few seconds, to keep it working (CI); writes nothing

What it does, per run:
1. builds the release server and the benchmark's programs (`bench/`; --smoke uses the debug
   build the tests already made);
2. measures `bench-bare` (one handler answering a small JSON: the floor of any handler) at 1 and
   32 connections with wrk (Debian's 4.1.0, pinned where .ci/run installs it);
3. for each store: a fresh store (a scratch SQLite file; a new PostgreSQL database, dropped
   afterwards) seeded by `bench-seed` through the application layer (BUSINESSES businesses,
   INVITATIONS invitations each, every seeded email delivered before measuring); first
   `bench-naive` on it (the resend a team would write instead: the same JWT check, one
   transaction, then the email written inline through the same file-drop transport; the
   reference), then the server with the default delivery wait, the file-drop transport and
   request logs at their default level, its start-up to first response timed; each measures
   resend at 1 and 32 connections for two workloads (random invitations of every business; every
   invitation of one hot business), and the server also the cheapest endpoint (a malformed
   acceptance token: 404);
4. after each resend workload, the store is checked: an outbox row for every 200 (up to the
   requests still in flight when wrk stopped), every row ended in exactly one final state once
   delivery is done, and one email file per delivered row;
5. reports requests/s, p50/p99 (wrk's, uncorrected), the ratio of each resend to the naive
   handler's on the same workload and to the bare handler at the same number of connections,
   non-2xx and peak RSS.

The cooldown is 0 and the daily cap and seat limit are off, so that every resend does all of
its work (a 429 is cheaper, and would flatter the numbers); every rule still runs.
"""
import argparse
import datetime
import os
import platform
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SECRET = "bench-secret-of-at-least-32-bytes-0123456789"
TOKEN_KEY = "bench-token-key-of-at-least-32-bytes-0123456"
# Where to create (and drop) the benchmark's PostgreSQL database.
PG_ADMIN = (os.environ.get("BENCH_POSTGRES_URL") or os.environ.get("TEST_DATABASE_URL")
            or "postgres://postgres@127.0.0.1:5432/postgres")


def log(msg):
    print(msg, flush=True)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_http(url, timeout=30.0):
    """Seconds until `url` first answers (any status), or raises."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        try:
            urllib.request.urlopen(url, timeout=1).read()
            return time.monotonic() - start
        except urllib.error.HTTPError:
            return time.monotonic() - start
        except OSError:
            time.sleep(0.002)
    raise RuntimeError(f"{url} did not answer within {timeout} s")


UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def wrk(url, connections, duration, script=None, env=None):
    """Runs wrk; returns requests/s, p50 and p99 in ms, requests, non-2xx."""
    threads = 1 if connections == 1 else 2
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency", url]
    if script:
        cmd[1:1] = ["-s", str(script)]
    out = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **(env or {})}, check=True).stdout

    def latency(pct):
        m = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        return float(m.group(1)) * UNITS[m.group(2)] if m else float("nan")

    requests = int(re.search(r"(\d+) requests in", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "p50": latency(50),
        "p99": latency(99),
        "requests": requests,
        "non2xx": int(non2xx.group(1)) if non2xx else 0,
        "errors": "Socket errors" in out,
    }


class Store:
    """A fresh store the benchmark owns, and the queries that check it."""

    def __init__(self, kind, data_dir):
        self.kind = kind
        if kind == "sqlite":
            self.url = f"sqlite://{data_dir}/leadping.db"
            self.path = data_dir / "leadping.db"
        else:
            self.db = f"bench_{os.getpid()}"
            self.psql(PG_ADMIN, f"CREATE DATABASE {self.db}")
            self.url = PG_ADMIN.rsplit("/", 1)[0] + f"/{self.db}"

    @staticmethod
    def psql(url, sql):
        return subprocess.run(["psql", "-X", "-q", "-At", url, "-c", sql], capture_output=True, text=True, check=True).stdout

    def query(self, sql):
        if self.kind == "sqlite":
            con = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=30)
            try:
                return con.execute(sql).fetchone()
            finally:
                con.close()
        return tuple(int(x) for x in self.psql(self.url, sql).strip().split("|"))

    def outbox(self):
        """(rows, resend rows, rows not yet final, delivered, failed, superseded)."""
        return self.query(
            "SELECT COUNT(*), "
            "COALESCE(SUM(CASE WHEN kind = 'resend' THEN 1 ELSE 0 END), 0), "
            "COALESCE(SUM(CASE WHEN delivered_at IS NULL AND failed_at IS NULL AND superseded_at IS NULL THEN 1 ELSE 0 END), 0), "
            "COALESCE(SUM(CASE WHEN delivered_at IS NOT NULL THEN 1 ELSE 0 END), 0), "
            "COALESCE(SUM(CASE WHEN failed_at IS NOT NULL THEN 1 ELSE 0 END), 0), "
            "COALESCE(SUM(CASE WHEN superseded_at IS NOT NULL THEN 1 ELSE 0 END), 0) "
            "FROM outbox"
        )

    def settle_all(self):
        """Marks every outbox row not yet final as delivered (the naive handler's, whose emails it
        wrote itself without recording them)."""
        sql = ("UPDATE outbox SET delivered_at = created_at "
               "WHERE delivered_at IS NULL AND failed_at IS NULL AND superseded_at IS NULL")
        if self.kind == "sqlite":
            con = sqlite3.connect(self.path, timeout=30)
            try:
                con.execute(sql)
                con.commit()
            finally:
                con.close()
        else:
            self.psql(self.url, sql)

    def drained(self, timeout=600.0):
        start = time.monotonic()
        while self.outbox()[2] > 0:
            if time.monotonic() - start > timeout:
                raise RuntimeError("the outbox did not drain")
            time.sleep(0.2)

    def drop(self):
        if self.kind == "postgres":
            self.psql(PG_ADMIN, f"DROP DATABASE IF EXISTS {self.db} WITH (FORCE)")


def measure_naive(bins, store, data, args, workloads, driver="sync"):
    """The naive handler on `store`: resend at 1 and 32 connections for each workload (on
    PostgreSQL with `driver` "async", through tokio-postgres instead of the server's driver)."""
    port = free_port()
    mail = data / "naive-mail"
    mail.mkdir(exist_ok=True)
    proc = subprocess.Popen([bins / "bench-naive", f"127.0.0.1:{port}", store.url, SECRET, TOKEN_KEY, str(mail)],
                            env={**os.environ, "BENCH_NAIVE_DRIVER": driver})
    results = {}
    try:
        base = f"http://127.0.0.1:{port}"
        wait_http(f"{base}/businesses/me/invitations/x/resend")
        for workload, file in workloads:
            for conns in (1, 32):
                results[f"resend, {workload}, {conns} conn"] = wrk(
                    base, conns, args.duration, script=ROOT / "scripts" / "bench.lua",
                    env={"BENCH_TARGETS": str(file)})
    finally:
        proc.terminate()
        proc.wait()
    return results


def pgbench_ceiling(duration):
    """What PostgreSQL itself sustains on this machine at 32 clients, one-row update commits per
    second: on one hot row (what one business's serialised changes can reach at best) and
    spread over 1,000 rows. None where pgbench is missing."""
    if subprocess.run(["which", "pgbench"], capture_output=True).returncode != 0:
        return None
    db = f"bench_pgbench_{os.getpid()}"
    Store.psql(PG_ADMIN, f"CREATE DATABASE {db}")
    url = PG_ADMIN.rsplit("/", 1)[0] + f"/{db}"
    try:
        Store.psql(url, "CREATE TABLE t (id INT PRIMARY KEY, n BIGINT NOT NULL); "
                        "INSERT INTO t SELECT g, 0 FROM generate_series(1, 1000) g")
        out = {}
        with tempfile.TemporaryDirectory() as tmp:
            for name, script in [("one hot row", "UPDATE t SET n = n + 1 WHERE id = 1;\n"),
                                 ("1,000 rows", "\\set id random(1, 1000)\nUPDATE t SET n = n + 1 WHERE id = :id;\n")]:
                path = Path(tmp) / "script.sql"
                path.write_text(script)
                run = subprocess.run(["pgbench", "-n", "-c", "32", "-j", "2", "-T", str(duration), "-f", str(path), url],
                                     capture_output=True, text=True, check=True).stdout
                out[name] = float(re.search(r"tps = ([\d.]+)", run).group(1))
        return out
    finally:
        Store.psql(PG_ADMIN, f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")


def peak_rss_mb(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def bench_store(kind, bins, args, bare, bare1, failures):
    rows = []
    with tempfile.TemporaryDirectory(prefix=f"bench-{kind}-") as tmp:
        data = Path(tmp)
        store = Store(kind, data)
        server = None
        try:
            log(f"--- {kind}: seeding {args.businesses} businesses x {args.invitations} invitations")
            started = time.monotonic()
            targets = data / "targets.txt"
            with open(targets, "w") as out:
                subprocess.run([bins / "bench-seed", store.url, SECRET, str(args.businesses), str(args.invitations)],
                               stdout=out, check=True)
            log(f"    seeded in {time.monotonic() - started:.1f} s")
            hot = data / "hot.txt"
            first = targets.read_text().splitlines()[: args.invitations]
            hot.write_text("\n".join(first) + "\n")

            workloads = [(f"{args.businesses} businesses", targets), ("one hot business", hot)]
            naive = measure_naive(bins, store, data, args, workloads)
            for what, result in naive.items():
                connections = 1 if what.endswith(" 1 conn") else 32
                ratio = result["rps"] / (bare if connections == 32 else bare1)["rps"]
                rows.append((kind, f"naive handler: {what}", result, ratio, None))
                log(f"    naive handler, {what}: {result['rps']:.0f} req/s (x{ratio:.3f} of bare), "
                    f"p50 {result['p50']:.2f} ms, p99 {result['p99']:.2f} ms, non-2xx {result['non2xx']}")
                if result["non2xx"]:
                    failures.append(f"{kind}, naive handler, {what}: {result['non2xx']} non-2xx")
            if kind == "postgres":
                # The same handler through an async driver: what one would give (item 3 of
                # issue 22), as a ratio to the synchronous driver the server uses.
                for what, result in measure_naive(bins, store, data, args, workloads, "async").items():
                    connections = 1 if what.endswith(" 1 conn") else 32
                    ratio = result["rps"] / (bare if connections == 32 else bare1)["rps"]
                    to_sync = result["rps"] / naive[what]["rps"]
                    rows.append((kind, f"naive handler, tokio-postgres (ratio: to the synchronous driver): {what}",
                                 result, ratio, to_sync))
                    log(f"    naive handler, tokio-postgres, {what}: {result['rps']:.0f} req/s "
                        f"(x{to_sync:.3f} of the synchronous driver), p50 {result['p50']:.2f} ms, "
                        f"p99 {result['p99']:.2f} ms, non-2xx {result['non2xx']}")
            # The naive handler records no outcome: its rows are set aside (as delivered, which the
            # file drop did) so that the server's loop does not send them again.
            store.settle_all()

            port = free_port()
            env = {
                **os.environ,
                "LEADPING_BIND": f"127.0.0.1:{port}",
                "LEADPING_DATA_DIR": str(data),
                "LEADPING_DATABASE_URL": store.url,
                "LEADPING_JWT_SECRET": SECRET,
                "LEADPING_TOKEN_KEY": TOKEN_KEY,
                "LEADPING_RESEND_COOLDOWN_SECS": "0",
                "LEADPING_DAILY_EMAIL_CAP": "4000000000",
                "LEADPING_SEAT_LIMIT": "0",
            }
            env.pop("LEADPING_SMTP_URL", None)
            err = open(data / "server.log", "w")
            spawned = time.monotonic()
            server = subprocess.Popen([bins / "leadping-invitations", "serve"], env=env,
                                      stdout=subprocess.DEVNULL, stderr=err)
            base = f"http://127.0.0.1:{port}"
            wait_http(f"{base}/openapi.json")
            startup_ms = (time.monotonic() - spawned) * 1e3
            log(f"    start-up to first response: {startup_ms:.1f} ms")
            store.drained()
            mail = data / "mail"

            def row(what, result, connections=32, reference=None):
                # Each against the bare handler at the same number of connections, and a resend
                # against the naive handler on the same workload.
                ratio = result["rps"] / (bare if connections == 32 else bare1)["rps"]
                to_naive = result["rps"] / reference["rps"] if reference else None
                rows.append((kind, what, result, ratio, to_naive))
                versus = f", x{to_naive:.3f} of naive (p50 {reference['p50']:.2f} ms)" if reference else ""
                log(f"    {what}: {result['rps']:.0f} req/s (x{ratio:.3f} of bare{versus}), p50 {result['p50']:.2f} ms, "
                    f"p99 {result['p99']:.2f} ms, non-2xx {result['non2xx']}")

            row("cheapest endpoint (a malformed token: 404), 32 conn",
                wrk(f"{base}/businesses/invitations/token/x", 32, args.duration))

            for workload, file in workloads:
                for conns in (1, 32):
                    before = store.outbox()
                    eml_before = len(list(mail.glob("*.eml"))) if mail.exists() else 0
                    result = wrk(base, conns, args.duration, script=ROOT / "scripts" / "bench.lua",
                                 env={"BENCH_TARGETS": str(file)})
                    row(f"resend, {workload}, {conns} conn", result, conns,
                        naive[f"resend, {workload}, {conns} conn"])
                    store.drained()
                    after = store.outbox()
                    ok = result["requests"] - result["non2xx"]
                    added = after[1] - before[1]
                    eml = len(list(mail.glob("*.eml"))) - eml_before
                    delivered = after[3] - before[3]
                    final = (after[3] + after[4] + after[5]) == after[0]
                    checks = [
                        (0 <= added - ok <= conns, f"{added} resend rows for {ok} 200s (up to {conns} in flight)"),
                        (final, "every outbox row ended in exactly one final state"),
                        (eml == delivered, f"{eml} email files for {delivered} delivered rows"),
                        (result["non2xx"] == 0, f"{result['non2xx']} non-2xx"),
                    ]
                    for good, what in checks:
                        if not good:
                            failures.append(f"{kind}, {workload}, {conns} conn: {what}")
            rss = peak_rss_mb(server.pid)
            log(f"    peak RSS: {rss:.1f} MB")
            return rows, startup_ms, rss
        finally:
            if server:
                server.send_signal(signal.SIGINT)
                try:
                    server.wait(10)
                except subprocess.TimeoutExpired:
                    server.kill()
            store.drop()


def fmt(ms):
    return f"{ms:.2f}" if ms == ms else "-"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--smoke", action="store_true", help="a few seconds with the debug build; writes no report")
    ap.add_argument("--duration", type=int, help="seconds per measurement (10; 1 with --smoke)")
    ap.add_argument("--businesses", type=int, help="businesses seeded (1000; 3 with --smoke)")
    ap.add_argument("--invitations", type=int, help="invitations per business (100; 4 with --smoke)")
    ap.add_argument("--stores", default="sqlite,postgres", help="which stores (sqlite,postgres)")
    args = ap.parse_args()
    args.duration = args.duration or (1 if args.smoke else 10)
    args.businesses = args.businesses or (3 if args.smoke else 1000)
    args.invitations = args.invitations or (4 if args.smoke else 100)

    profile = "debug" if args.smoke else "release"
    log(f"--- building ({profile})")
    cmd = ["cargo", "build", "--quiet", "-p", "leadping-invitations", "-p", "leadping-bench"]
    if not args.smoke:
        cmd.append("--release")
    subprocess.run(cmd, cwd=ROOT, check=True)
    bins = ROOT / "target" / profile

    failures = []
    port = free_port()
    bare_proc = subprocess.Popen([bins / "bench-bare", f"127.0.0.1:{port}"])
    try:
        wait_http(f"http://127.0.0.1:{port}/bare")
        bare = wrk(f"http://127.0.0.1:{port}/bare", 32, args.duration)
        bare1 = wrk(f"http://127.0.0.1:{port}/bare", 1, args.duration)
    finally:
        bare_proc.terminate()
        bare_proc.wait()
    log(f"--- bare dropshot handler: {bare['rps']:.0f} req/s at 32 conn (p50 {fmt(bare['p50'])} ms), "
        f"{bare1['rps']:.0f} at 1 conn (p50 {fmt(bare1['p50'])} ms)")

    results = []
    for kind in args.stores.split(","):
        rows, startup, rss = bench_store(kind, bins, args, bare, bare1, failures)
        results.append((kind, rows, startup, rss))
    ceiling = None
    if "postgres" in args.stores.split(",") and not args.smoke:
        ceiling = pgbench_ceiling(args.duration)
        if ceiling:
            log(f"--- pgbench, 32 clients, one-row update per transaction: "
                + ", ".join(f"{v:.0f} tps on {k}" for k, v in ceiling.items()))

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    cpu = next((l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines() if l.startswith("model name")), platform.processor())
    mem_gb = int(Path("/proc/meminfo").read_text().split()[1]) / 1024 / 1024
    lines = [
        f"Measured {datetime.date.today().isoformat()} at commit {commit} on {os.cpu_count()} cores ({cpu}), "
        f"{mem_gb:.0f} GiB, with `python3 scripts/bench.py` ({args.duration} s per measurement, "
        f"{args.businesses} businesses x {args.invitations} invitations; wrk -t1 -c1 and -t2 -c32).",
        "",
        f"Bare dropshot handler: {bare['rps']:.0f} requests/s at 32 connections, "
        f"p50 {fmt(bare['p50'])} ms; {bare1['rps']:.0f} requests/s at 1 connection, p50 {fmt(bare1['p50'])} ms.",
        "",
        "The naive handler (`bench/src/bin/naive.rs`) is the resend a team would write instead: the "
        "same JWT check, one transaction, then the email written inline. Each server resend is a "
        "ratio to it on the same workload; every row is also a ratio to the bare handler at the same "
        "number of connections.",
        "",
        "| store | what | requests/s | ratio to naive | ratio to bare | p50 ms | p99 ms | non-2xx |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for kind, rows, _, _ in results:
        for _, what, r, ratio, to_naive in rows:
            versus = f"{to_naive:.3f}" if to_naive is not None else "-"
            lines.append(f"| {kind} | {what} | {r['rps']:.0f} | {versus} | {ratio:.3f} | {fmt(r['p50'])} | "
                         f"{fmt(r['p99'])} | {r['non2xx']} |")
    lines.append("")
    for kind, _, startup, rss in results:
        lines.append(f"- {kind}: start-up to first response {startup:.1f} ms on the seeded store; peak RSS {rss:.1f} MB.")
    if ceiling:
        lines.append(
            "- postgres, the database's own ceiling on this machine (pgbench, 32 clients, a one-row update "
            "per transaction): " + ", ".join(f"{v:.0f} commits/s on {k}" for k, v in ceiling.items())
            + ". A resend of one hot business changes that business's daily email count, one row, so its "
            "resends cannot commit faster than the first figure.")
    lines.append("")
    lines.append("Checks after each resend workload: " + ("all held." if not failures else "; ".join(failures)))
    report = "\n".join(lines) + "\n"
    print()
    print(report)
    if not args.smoke:
        path = ROOT / "BENCHMARKS.md"
        text = path.read_text() if path.exists() else "# Benchmarks\n"
        marker = "<!-- latest run -->"
        head = text.split(marker)[0].rstrip() + "\n\n" if marker in text else text.rstrip() + "\n\n"
        path.write_text(head + marker + "\n\n" + report)
        log(f"wrote {path.relative_to(ROOT)}")
    if failures:
        log("benchmark checks failed:\n  " + "\n  ".join(failures))
        return 1
    log("benchmark: done, every check held")
    return 0


if __name__ == "__main__":
    sys.exit(main())
