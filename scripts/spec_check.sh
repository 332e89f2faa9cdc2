#!/usr/bin/env bash
# The OpenAPI document as integrators take it, checked by their own tools: the validators
# (openapi-spec-validator, @redocly/cli lint with every recommended rule as an error,
# swagger-parser) pass it with no error and no warning; openapi-python-client and
# openapi-typescript generate clients that type-check (mypy --strict on the generated
# package, tsc --strict on tests/spec/check.ts);
# and tests/spec/flow.py runs an integrator's flow with the generated Python client against
# a running gateway, without a hand-written request.
#
# Python tools go into the private virtual environment (target/checkers), npm tools into
# target/spec/node (pinned by tests/spec/package-lock.json, lockfile v3: npm 7 or later
# fetches each name@version from the configured registry and checks its integrity hash).
# When they cannot be installed (no registry), it says so loudly and exits 77;
# scripts/test.sh goes on without them (unless CI=true or OMNIGATE_REQUIRE_SPEC_TOOLS=1).
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/lib.sh

SPEC=openapi/openapi.json
OUT=target/spec
mkdir -p "$OUT"

unavailable() {
  printf '\n!!! %s\n!!! the OpenAPI document was NOT checked by the integrators'"'"' tools\n\n' "$*" >&2
  exit 77
}

for tool in "openapi-spec-validator==0.9.0" "openapi-python-client==0.29.1" "mypy==2.4.1" \
  "attrs==26.1.0" "httpx==0.28.1" "python-dateutil==4.0.0"; do
  checker_install "$tool" || unavailable "cannot install $tool with pip"
done
PY="$CHECKERS_VENV/bin"

command -v npm >/dev/null 2>&1 || unavailable "npm is not installed (Node.js 20 or later)"
NODE_DIR="$OUT/node"
mkdir -p "$NODE_DIR"
# Installed once per lockfile: the stamp is written only after `npm ci` succeeded.
if ! cmp -s tests/spec/package-lock.json "$NODE_DIR/installed.lock"; then
  rm -f "$NODE_DIR/installed.lock"
  cp tests/spec/package.json tests/spec/package-lock.json "$NODE_DIR/"
  log "installing the npm checkers into $NODE_DIR"
  (cd "$NODE_DIR" && npm ci --no-audit --no-fund --loglevel=error >/dev/null) ||
    unavailable "cannot install the npm checkers (npm ci in $NODE_DIR)"
  cp tests/spec/package-lock.json "$NODE_DIR/installed.lock"
fi
BIN="$NODE_DIR/node_modules/.bin"

log "openapi-spec-validator"
"$PY/openapi-spec-validator" "$SPEC"
log "redocly lint (every recommended rule an error; misreadings listed in tests/spec/.redocly.lint-ignore.yaml)"
"$BIN/redocly" lint "$SPEC" --config tests/spec/redocly.yaml --format=stylish
log "swagger-parser"
node -e '
  const parser = require(process.argv[1]);
  parser.validate(process.argv[2]).then(
    () => console.log("swagger-parser: valid"),
    (e) => { console.error("swagger-parser:", e.message); process.exit(1); });
' "$PWD/$NODE_DIR/node_modules/@apidevtools/swagger-parser" "$SPEC"

log "openapi-python-client, then mypy --strict on the generated package"
rm -rf "$OUT/python"
mkdir -p "$OUT/python"
# Any warning (a type it could not generate) is a defect of the document.
"$PY/openapi-python-client" generate --path "$SPEC" --output-path "$OUT/python/raw" --meta none \
  --config tests/spec/python-client.yaml --fail-on-warning
mv "$OUT/python/raw" "$OUT/python/omnigate_client"
(cd "$OUT/python" && "$OLDPWD/$PY/mypy" --strict --no-incremental omnigate_client)

log "openapi-typescript, then tsc --strict"
rm -rf "$OUT/ts"
mkdir -p "$OUT/ts"
"$BIN/openapi-typescript" "$SPEC" -o "$OUT/ts/api.d.ts" >/dev/null
cp tests/spec/check.ts "$OUT/ts/check.ts"
"$BIN/tsc" --strict --noEmit --target es2022 --module nodenext --moduleResolution nodenext "$OUT/ts/check.ts"

log "an integrator's flow with the generated Python client"
cargo build -q -p omnigate --locked
PORT=$(free_port)
ADMIN_TOKEN="spec-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
WORK=$(mktemp -d)
STORE_ARGS=()
if [ -n "${OMNIGATE_TEST_REDIS_URL:-}" ]; then
  STORE_ARGS=(--redis-url "$OMNIGATE_TEST_REDIS_URL" --redis-prefix "spec-$PORT-$$")
  export OMNIGATE_SECRET_KEY
  OMNIGATE_SECRET_KEY=$(head -c 32 /dev/urandom | base64)
fi
OMNIGATE_ADMIN_TOKEN="$ADMIN_TOKEN" OMNIGATE_LOG=warn \
  ./target/debug/omnigate serve --bind "127.0.0.1:$PORT" "${STORE_ARGS[@]}" > "$WORK/gateway.log" 2>&1 &
GATEWAY_PID=$!
cleanup() {
  kill "$GATEWAY_PID" 2>/dev/null || true
  wait "$GATEWAY_PID" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
up=""
for _ in $(seq 1 100); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then up=yes; break; fi
  kill -0 "$GATEWAY_PID" 2>/dev/null || break
  sleep 0.1
done
[ -n "$up" ] || { cat "$WORK/gateway.log" >&2; echo "the gateway did not start" >&2; exit 1; }
PYTHONPATH="$OUT/python" "$PY/python" tests/spec/flow.py "http://127.0.0.1:$PORT" "$ADMIN_TOKEN" \
  gateway/samples/shopify/orders-create.json || { cat "$WORK/gateway.log" >&2; exit 1; }
log "the integrators' tools take the OpenAPI document"
