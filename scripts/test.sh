#!/usr/bin/env bash
# The README's test command. On a new machine it installs redis-server (apt-get) when
# missing, starts it on a free port for the run, checks formatting and lints, runs the whole
# test suite against it, stops it again, and checks the API contract with schemathesis
# (installed with pip into target/checkers when missing). Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '==> %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

if ! command -v redis-server >/dev/null 2>&1; then
  log "redis-server not found: installing it with apt-get"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
fi
# The Debian package starts a system-wide server on 6379; this script does not use it.

free_port() {
  local port
  for _ in $(seq 1 50); do
    port=$((20000 + RANDOM % 30000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$port"
      return 0
    fi
  done
  echo "no free port found" >&2
  return 1
}

REDIS_PORT=$(free_port)
REDIS_DIR=$(mktemp -d)
log "starting redis-server $(redis-server --version | awk '{print $3}') on 127.0.0.1:$REDIS_PORT"
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$REDIS_DIR" --save '' --appendonly no \
  --daemonize no --logfile "$REDIS_DIR/redis.log" &
REDIS_PID=$!
cleanup() {
  kill "$REDIS_PID" 2>/dev/null || true
  wait "$REDIS_PID" 2>/dev/null || true
  rm -rf "$REDIS_DIR"
}
trap cleanup EXIT

for _ in $(seq 1 100); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$REDIS_PORT") 2>/dev/null; then break; fi
  sleep 0.1
done
if ! (exec 3<>"/dev/tcp/127.0.0.1/$REDIS_PORT") 2>/dev/null; then
  echo "redis-server did not start; its log:" >&2
  cat "$REDIS_DIR/redis.log" >&2 || true
  exit 1
fi
export OMNIGATE_TEST_REDIS_URL="redis://127.0.0.1:$REDIS_PORT"

log "cargo fmt --check"
cargo fmt --all -- --check
log "cargo clippy -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings
log "cargo test (Redis at $OMNIGATE_TEST_REDIS_URL)"
cargo test --workspace --locked
log "the API contract, checked by schemathesis"
bash scripts/schemathesis.sh
log "all checks passed"
