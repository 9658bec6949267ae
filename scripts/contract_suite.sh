#!/usr/bin/env bash
# The contract suite. First the lint (Redocly and Spectral, pinned in package.json, configured in
# redocly.yaml and .spectral.yaml: zero errors and zero warnings), then the breaking-change gate
# (scripts/breaking_changes.sh: openapi.json against the previous commit and the last tag, and
# its self-test). Then, against the live server: the docs page opened in headless Chromium
# (scripts/docs_check.mjs; Chromium is Debian's, which .ci/run installs), clients in TypeScript,
# Python and Java generated from openapi.json and driven through a smoke scenario against their
# own demo servers (scripts/clients_smoke.sh), and schemathesis (pinned), which generates
# requests from openapi.json and checks every response against it (status codes, bodies,
# headers, content types, 5xx). The server runs on its
# embedded defaults with the demo data, on a free port, in a scratch data directory; the Owner
# token of the first demo business authenticates. Last, its self-test
# (scripts/breakage_self_test.py): a proxy that breaks the contract in the server's responses (a
# field renamed, an undeclared status, a 429 without Retry-After) must make schemathesis fail.
#
#   bash scripts/contract_suite.sh          # builds the server if needed
set -euo pipefail
cd "$(dirname "$0")/.."

echo "--- npm ci (the suite's pinned tools)"
npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
export REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true SCARF_ANALYTICS=false

echo "--- lint: redocly (recommended-strict) and spectral (spectral:oas), warnings fail"
node_modules/.bin/redocly lint openapi.json
node_modules/.bin/spectral lint openapi.json --fail-severity=warn

echo "--- breaking-change gate"
bash scripts/breaking_changes.sh --self-test
bash scripts/breaking_changes.sh

# Pinned in scripts/requirements.txt; checked here so that the two cannot part.
SCHEMATHESIS_VERSION=4.32.5
work=.ci-work/contract
mkdir -p "$work"

[ -x "$work/venv/bin/python" ] || python3 -m venv "$work/venv"
"$work/venv/bin/pip" install --quiet --disable-pip-version-check -r scripts/requirements.txt
"$work/venv/bin/schemathesis" --version | grep -q "$SCHEMATHESIS_VERSION"
"$work/venv/bin/schemathesis" --version

cargo build --quiet
. scripts/demo_server.sh
data=$(mktemp -d)
port=$(free_port)
trap 'kill "${demo_pid:-}" 2>/dev/null || true; rm -rf "$data"' EXIT
start_demo_server "$data" "$port" LEADPING_DELIVERY_WAIT_MS=200
token=$(owner_token "$data")
# The second business's acceptance tokens, for look-up and accept (scripts/schemathesis.toml): the
# first business's invitations are for resend and revoke.
python3 - "$data/demo.json" > "$work/demo-tokens.dict" <<'PY'
import json, sys
for token in json.load(open(sys.argv[1]))["businesses"][1]["acceptanceTokens"].values():
    print(json.dumps(token))
PY

echo "--- docs page in headless Chromium"
node scripts/docs_check.mjs "http://127.0.0.1:$port"

echo "--- clients in other languages, generated now and driven through the smoke scenario"
bash scripts/clients_smoke.sh

# --seed makes the run repeatable; the bounded example count keeps it well under a minute.
"$work/venv/bin/schemathesis" --config-file scripts/schemathesis.toml run openapi.json \
  --url "http://127.0.0.1:$port" \
  -H "Authorization: Bearer $token" \
  --seed 1 --max-examples 50 --continue-on-failure --no-color

echo "--- self-test: a server that breaks the contract fails schemathesis"
python3 scripts/breakage_self_test.py "$work/venv/bin/schemathesis" "http://127.0.0.1:$port" "$token"
