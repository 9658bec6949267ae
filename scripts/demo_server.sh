# Sourced by the contract suite's scripts: a demo server on a free port, and what they read from
# its --demo-out file. Run from the repository root, after `cargo build`.

# free_port: a port on 127.0.0.1 that was free a moment ago.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_demo_server DATA PORT [VAR=VALUE ...]: `serve --demo` on 127.0.0.1:PORT with its state,
# logs and demo.json in DATA and the given settings; returns once the demo is seeded, with the
# process id in $demo_pid.
start_demo_server() {
  local data=$1 port=$2
  shift 2
  env LEADPING_DATA_DIR="$data" LEADPING_LOG_LEVEL=warn "$@" \
    ./target/debug/leadping-invitations serve --bind "127.0.0.1:$port" --demo --demo-out "$data/demo.json" \
    > "$data/server.out" 2> "$data/server.err" &
  demo_pid=$!
  for _ in $(seq 1 100); do
    [ -s "$data/demo.json" ] && return 0
    kill -0 "$demo_pid" 2>/dev/null || { cat "$data/server.err"; echo "the server exited" >&2; return 1; }
    sleep 0.1
  done
  echo "the demo server did not report its data in time" >&2
  return 1
}

# owner_token DATA: the bearer token of the first demo business's Owner.
owner_token() {
  python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["businesses"][0]["members"][0]["token"])' "$1/demo.json"
}
