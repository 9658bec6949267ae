#!/usr/bin/env bash
# Clients in other languages, generated from openapi.json during the run (nothing generated is
# committed) and each driven through the same smoke scenario (clients/*/smoke.*) against a fresh
# live demo server whose mail relay is down, so that "Failed to send" is reachable. Each talks to
# the server through `prism proxy --errors` (pinned in package.json), which checks every request
# and response against openapi.json and turns a violation into an error the scenario fails on.
#   - TypeScript: openapi-typescript + openapi-fetch (pinned in package.json), type-checked with
#     `tsc --noEmit`, then run with node;
#   - Python: openapi-python-client (pinned in scripts/requirements.txt);
#   - Java: openapi-generator's `java` generator, library `native` (its jar from the PyPI package
#     openapi-generator-cli, pinned in scripts/requirements.txt), compiled with javac against that
#     jar's Jackson and Debian's Jakarta annotations (libjakarta-annotation-api-java, which
#     .ci/run installs, pinned), since Maven Central is out of reach here.
#
#   bash scripts/clients_smoke.sh        # builds the server if needed; installs the pinned tools
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x node_modules/.bin/openapi-typescript ] || [ ! -x node_modules/.bin/prism ]; then
  npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
fi
venv=.ci-work/contract/venv
if [ ! -x "$venv/bin/python" ]; then python3 -m venv "$venv"; fi
"$venv/bin/pip" install --quiet --disable-pip-version-check -r scripts/requirements.txt
cargo build --quiet --bin leadping-invitations
work=.ci-work/clients
rm -rf "$work" && mkdir -p "$work"

. scripts/demo_server.sh
demo_pid=""
prism=""
trap 'kill "$demo_pid" "$prism" 2>/dev/null || true' EXIT

# start_demo: a fresh demo server whose relay is a closed local port, with one attempt per email,
# so that every email fails at once, behind a fresh prism proxy; sets $base (the proxy) and
# $token (the first business's Owner).
start_demo() {
  for p in "$demo_pid" "$prism"; do
    [ -z "$p" ] || { kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; }
  done
  local data port relay
  data=$(mktemp -d -p "$work")
  port=$(free_port)
  relay=$(free_port) # free a moment ago, and nothing listens on it: connections are refused
  start_demo_server "$data" "$port" LEADPING_SMTP_URL="smtp://127.0.0.1:$relay" \
    LEADPING_DELIVERY_MAX_ATTEMPTS=1 LEADPING_DELIVERY_WAIT_MS=3000
  token=$(owner_token "$data")
  local proxy_port
  proxy_port=$(free_port)
  node_modules/.bin/prism proxy openapi.json "http://127.0.0.1:$port" --errors \
    --host 127.0.0.1 --port "$proxy_port" > "$data/prism.log" 2>&1 &
  prism=$!
  for _ in $(seq 1 120); do
    grep -q "listening" "$data/prism.log" && break
    kill -0 "$prism" 2>/dev/null || { cat "$data/prism.log"; echo "prism exited" >&2; exit 1; }
    sleep 0.25
  done
  base="http://127.0.0.1:$proxy_port"
  prism_log="$data/prism.log"
  # The seeded invitations' emails fail first, as they would with a relay that is down.
  sleep 1
}

echo "--- TypeScript (openapi-typescript + openapi-fetch)"
mkdir -p "$work/ts"
node_modules/.bin/openapi-typescript openapi.json -o "$work/ts/schema.d.ts" --silent
cp clients/typescript/smoke.mts clients/typescript/tsconfig.json "$work/ts/"
node_modules/.bin/tsc -p "$work/ts" --noEmit
node_modules/.bin/tsc -p "$work/ts"
start_demo
node "$work/ts/out/smoke.mjs" "$base" "$token" || { grep -i violation "$prism_log"; exit 1; }

echo "--- Python (openapi-python-client)"
mkdir -p "$work/py"
printf 'package_name_override: leadping_client\npost_hooks: []\n' > "$work/py/config.yml"
"$venv/bin/openapi-python-client" generate --path openapi.json --config "$work/py/config.yml" \
  --meta none --output-path "$work/py/leadping_client" > /dev/null
start_demo
PYTHONPATH="$work/py" "$venv/bin/python" clients/python/smoke.py "$base" "$token" \
  || { grep -i violation "$prism_log"; exit 1; }

echo "--- Java (openapi-generator, java/native)"
mkdir -p "$work/java"
jar=$(find "$venv" -name openapi-generator.jar | head -n 1)
annotations=/usr/share/java/jakarta-annotation-api.jar
[ -f "$annotations" ] || { echo "missing $annotations: apt-get install libjakarta-annotation-api-java" >&2; exit 1; }
"$venv/bin/openapi-generator-cli" generate -g java --library native -i openapi.json -o "$work/java/gen" \
  --additional-properties=openApiNullable=false,useJakartaEe=true,hideGenerationTimestamp=true,annotationLibrary=none,useBeanValidation=false,invokerPackage=ai.leadping.client,apiPackage=ai.leadping.client.api,modelPackage=ai.leadping.client.model \
  > "$work/java/generate.log" 2>&1 || { cat "$work/java/generate.log"; exit 1; }
mkdir -p "$work/java/classes"
javac -nowarn -d "$work/java/classes" -cp "$jar:$annotations" $(find "$work/java/gen/src/main/java" -name '*.java')
javac -d "$work/java/classes" -cp "$jar:$annotations:$work/java/classes" clients/java/Smoke.java
start_demo
java -cp "$jar:$annotations:$work/java/classes" Smoke "$base" "$token" \
  || { grep -i violation "$prism_log"; exit 1; }
