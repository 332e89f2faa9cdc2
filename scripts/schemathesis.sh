#!/usr/bin/env bash
# The API contract, checked by a tool no one here wrote: schemathesis generates requests
# from the served /openapi.json (valid and invalid ones) and runs every check it has
# against a running `omnigate serve`, with an admin token and a plugin key. It fails on a
# server error, an undocumented status, a response that does not match its schema, or
# invalid input that is accepted. Installs schemathesis into a private virtual environment
# (target/checkers) when missing. Called by scripts/test.sh; runs on its own too.
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/lib.sh

SCHEMATHESIS_VERSION=4.32.5
VENV=$CHECKERS_VENV
checker_install "schemathesis==$SCHEMATHESIS_VERSION"

cargo build -q -p omnigate --locked


PORT=$(free_port)
BASE="http://127.0.0.1:$PORT"
WORK=$(mktemp -d)
ADMIN_TOKEN="schemathesis-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
# On the suite's Redis when there is one (scripts/test.sh sets OMNIGATE_TEST_REDIS_URL), with
# sealed secrets and a key prefix of its own, else on the embedded store. Rate limits stay on
# (429 is part of the contract) but high enough not to starve the run.
STORE_ARGS=()
if [ -n "${OMNIGATE_TEST_REDIS_URL:-}" ]; then
  STORE_ARGS=(--redis-url "$OMNIGATE_TEST_REDIS_URL" --redis-prefix "schemathesis-$PORT-$$")
  export OMNIGATE_SECRET_KEY
  OMNIGATE_SECRET_KEY=$(head -c 32 /dev/urandom | base64)
fi
OMNIGATE_ADMIN_TOKEN="$ADMIN_TOKEN" OMNIGATE_LOG=warn OMNIGATE_PLUGIN_RATE=1000 \
  OMNIGATE_PLUGIN_BURST=1000 OMNIGATE_REPLAYS_PER_MINUTE=1000 \
  ./target/debug/omnigate serve --bind "127.0.0.1:$PORT" "${STORE_ARGS[@]}" \
  > "$WORK/gateway.log" 2>&1 &
GATEWAY_PID=$!
cleanup() {
  kill "$GATEWAY_PID" 2>/dev/null || true
  wait "$GATEWAY_PID" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

for _ in $(seq 1 100); do
  if curl -sf "$BASE/healthz" > /dev/null; then break; fi
  sleep 0.1
done
curl -sf "$BASE/healthz" > /dev/null || { cat "$WORK/gateway.log" >&2; exit 1; }

admin() { curl -sf -H "Authorization: Bearer $ADMIN_TOKEN" -H 'Content-Type: application/json' "$@"; }
field() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }

# Something to find: a shop, and a plugin installed in it with every scope.
admin -X POST "$BASE/v1/sources" \
  -d '{"tenant": "contract-shop", "provider": "shopify", "secret": "contract-shop-secret-0123"}' > /dev/null
PLUGIN=$(admin -X POST "$BASE/v1/plugins" -d '{"name": "Contract", "event_types": ["order.*"],
  "publishes": [{"type": "contract.checked", "schema": {"type": "object"}}]}')
PLUGIN_ID=$(echo "$PLUGIN" | field "['id']")
PLUGIN_KEY=$(echo "$PLUGIN" | field "['api_key']")
admin -X POST "$BASE/v1/plugins/$PLUGIN_ID/installations" \
  -d '{"tenant": "contract-shop", "scopes": ["events:read", "events:publish", "customer_pii"]}' > /dev/null

cat > "$WORK/schemathesis.toml" <<TOML
# A long-poll may take its full wait_ms (30 s at most) to answer.
request-timeout = 40.0

[auth.openapi.admin_token]
bearer = "$ADMIN_TOKEN"

[auth.openapi.plugin_key]
bearer = "$PLUGIN_KEY"

# Which fields a source needs depends on its provider (a secret for every HMAC scheme, keys
# for Saleor, key_encoding only for Standard Webhooks, expires_at only with a new secret,
# secrets of 16 bytes of decoded key material): rules a JSON Schema of the body can only
# approximate. Schema-valid bodies that break one are answered 422 naming the rule, which
# the positive-data check would count as a failure; every other check still runs here.
[[operations]]
include-path-regex = "^/v1/sources"
checks.positive_data_acceptance.expected-statuses = ["2XX", "401", "404", "409", "422", "429"]

# revoke_previous and previous_expires_at exclude each other (422 when both are given).
[[operations]]
include-path-regex = "^/v1/plugins/[^/]+/(keys|signing-secrets)$"
checks.positive_data_acceptance.expected-statuses = ["2XX", "401", "404", "409", "422"]

# A push_url must be https and public (422 otherwise): checked on the URL, not its shape.
[[operations]]
include-path-regex = "^/v1/plugins/[^/]+/installations$"
checks.positive_data_acceptance.expected-statuses = ["2XX", "401", "404", "409", "422"]

# Each subscription must match a type of the catalog or of some plugin's declarations
# (422 naming the closest known type otherwise): a rule about the registry's contents, not
# the body's shape, so a schema cannot say it.
[[operations]]
include-path-regex = "^/v1/plugins(/[^/]+)?$"
checks.positive_data_acceptance.expected-statuses = ["2XX", "401", "404", "409", "422"]

# dead (give up) and defer (not tried) exclude each other: 422 when both are true.
[[operations]]
include-path = "/v1/inbox/nack"
checks.positive_data_acceptance.expected-statuses = ["2XX", "401", "404", "409", "422", "429"]

# A long-poll answers when a delivery arrives or its wait_ms (up to 30 s) is over: slow by
# design, so it may take up to its longest wait.
[[operations]]
include-path = "/v1/inbox/pull"
checks.max_response_time = 35.0
TOML

log "schemathesis $SCHEMATHESIS_VERSION against $BASE/openapi.json (all checks)"
"$VENV/bin/schemathesis" --config-file "$WORK/schemathesis.toml" run "$BASE/openapi.json" \
  --checks all \
  --max-examples "${SCHEMATHESIS_MAX_EXAMPLES:-30}" \
  --seed "${SCHEMATHESIS_SEED:-20261130}" \
  --workers 2 \
  --report-dir "target/schemathesis-report"
