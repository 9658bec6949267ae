#!/usr/bin/env python3
"""The contract suite's self-test: a server that breaks the contract must fail schemathesis.

Each case puts a proxy between schemathesis and the live demo server that breaks one promise
of the contract in the responses, the way a server bug would, and runs schemathesis (same
configuration as the suite, fewer examples) through it. The case passes when schemathesis
fails and names the check that caught the break:

- a field serialised with the wrong name (`email` written as `emailAddress` in every success
  body): response_schema_conformance;
- an undeclared status returned through a back door (every 404 answered as 418):
  status_code_conformance;
- a 429 without its Retry-After header: response_headers_conformance.

The proxy is the standard library's; it forwards everything else unchanged. Run by
scripts/contract_suite.sh:

    python3 scripts/breakage_self_test.py SCHEMATHESIS BASE_URL TOKEN

Prints one line per case and a closing 'N passed, N failed' line; exits 1 if any case
misbehaves.
"""
import http.client
import http.server
import json
import subprocess
import sys
import threading
import urllib.parse


def rename_email(status, headers, body):
    """`email` written as `emailAddress` in every JSON success body."""
    if 200 <= status < 300 and headers.get("content-type", "").startswith("application/json"):
        def walk(v):
            if isinstance(v, dict):
                return {("emailAddress" if k == "email" else k): walk(x) for k, x in v.items()}
            if isinstance(v, list):
                return [walk(x) for x in v]
            return v
        body = json.dumps(walk(json.loads(body))).encode()
    return status, headers, body


def not_found_as_teapot(status, headers, body):
    """Every 404 answered as a 418, a status no operation declares."""
    return (418 if status == 404 else status), headers, body


def drop_retry_after(status, headers, body):
    """Retry-After left off every 429."""
    if status == 429:
        headers = {k: v for k, v in headers.items() if k != "retry-after"}
    return status, headers, body


# name, break, the code of the failure schemathesis must report
CASES = [
    ("field-renamed", rename_email, "ST108 Response violates schema"),
    ("undeclared-status", not_found_as_teapot, "ST103 Undocumented status code"),
    ("retry-after-missing", drop_retry_after, "ST107 Missing required response headers"),
]


def proxy(upstream, breakage):
    """A proxy on a free port of 127.0.0.1 that sends every request to `upstream` and applies
    `breakage` to the response; returns the server (call shutdown() when done)."""
    target = urllib.parse.urlsplit(upstream)

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def forward(self):
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else None
            conn = http.client.HTTPConnection(target.hostname, target.port, timeout=30)
            headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
            conn.request(self.command, self.path, body=body, headers=headers)
            r = conn.getresponse()
            data = r.read()
            out = {k.lower(): v for k, v in r.getheaders() if k.lower() not in ("transfer-encoding", "connection", "content-length")}
            conn.close()
            status, out, data = breakage(r.status, out, data)
            self.send_response(status)
            for k, v in out.items():
                self.send_header(k, v)
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = forward

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main():
    schemathesis, upstream, token = sys.argv[1:4]
    passed = failed = 0
    for name, breakage, expected in CASES:
        server = proxy(upstream, breakage)
        url = f"http://127.0.0.1:{server.server_address[1]}"
        r = subprocess.run(
            [schemathesis, "--config-file", "scripts/schemathesis.toml", "run", "openapi.json",
             "--url", url, "-H", f"Authorization: Bearer {token}",
             "--seed", "1", "--max-examples", "10", "--continue-on-failure", "--no-color"],
            capture_output=True, text=True,
        )
        server.shutdown()
        out = r.stdout + r.stderr
        if r.returncode != 0 and expected in out:
            passed += 1
            print(f"ok    {name}: {breakage.__doc__} -> schemathesis fails: {expected}")
        else:
            failed += 1
            print(f"FAIL  {name}: {breakage.__doc__} -> schemathesis exited {r.returncode} without {expected!r}")
            print(out[-3000:])
    print(f"contract suite self-test: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
