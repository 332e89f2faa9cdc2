#!/usr/bin/env bash
# Fault drills with figures (not a test: the test suite runs the same faults as assertions in
# tests/tests/e2e/spool.rs and gateway/tests/spool_restart.rs). Each drill starts a fresh
# redis-server (append-only file, `appendfsync` as asked) and the release `omnigate serve`,
# lets `omnigate-drill` post distinct signed Shopify orders from several senders for a few
# seconds, causes one fault meanwhile, then has the drill read the tenant's log back and
# print: deliveries sent, answered 2xx (of them spooled), 5xx, no answer (gateway down),
# acknowledged but missing from the log, written twice, and the time the spool took to
# drain once Redis was back.
#
# Drills (DRILLS, default all):
#   redis-kill          Redis SIGKILLed 2 s in, restarted on its files 1.5 s later (spool on)
#   redis-kill-nospool  the same without a spool: the outage is answered 503
#   gateway-kill        Redis SIGKILLed, the gateway SIGKILLed with deliveries spooled, both
#                       restarted (the gateway on the same spool directory)
#   redis-pause         Redis paused for 3 s (CLIENT PAUSE ALL), past the 2 s store timeout
#   cluster-failover    a Redis Cluster (3 primaries, 3 replicas): the primary holding the
#                       shop's partition SIGKILLed, its replica promoted, the old primary
#                       restarted (it rejoins as a replica); the gateway with
#                       --redis-wait-replicas 1 (every 2xx confirmed by a replica) and a spool
#   cluster-failover-nowait  the same with the default: the primary's answer is enough
# Knobs: DRILL_FSYNC ("always everysec"), DRILL_SECONDS (8), DRILL_SENDERS (8).
# Needs apt-get for redis-server when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

DRILLS=${DRILLS:-"redis-kill redis-kill-nospool gateway-kill redis-pause cluster-failover cluster-failover-nowait"}
FSYNCS=${DRILL_FSYNC:-"always everysec"}
SECONDS_EACH=${DRILL_SECONDS:-8}
SENDERS=${DRILL_SENDERS:-8}
ADMIN_TOKEN="drill-admin-token-$RANDOM$RANDOM"
SECRET="shpss_drill_$RANDOM$RANDOM"
SEALING_KEY=$(head -c 32 /dev/urandom | base64)

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}
if ! command -v redis-server >/dev/null 2>&1; then
  log "redis-server not found: installing it with apt-get"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
fi
# CLIENT PAUSE … ALL, XAUTOCLAIM and XTRIM MINID need Redis 6.2 or later.
version=$(redis-server --version | sed -E 's/.*v=([0-9]+)\.([0-9]+).*/\1 \2/')
read -r major minor <<<"$version"
if [ "$major" -lt 6 ] || { [ "$major" -eq 6 ] && [ "$minor" -lt 2 ]; }; then
  echo "redis-server $major.$minor is too old: the gateway needs 6.2 or later" >&2
  exit 1
fi

log "building the release binaries"
cargo build --release --locked -p omnigate -p omnigate-bench --bins >&2
BIN=target/release

WORK=$(mktemp -d)
REDIS_PID=""
GATEWAY_PID=""
declare -A CLUSTER_PIDS=()
cleanup() {
  [ "$BASHPID" = "$$" ] || return 0
  for pid in $REDIS_PID $GATEWAY_PID ${CLUSTER_PIDS[@]+"${CLUSTER_PIDS[@]}"}; do kill -9 "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

wait_port() {
  for _ in $(seq 1 400); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  echo "nothing listens on $1" >&2
  return 1
}

# redis_up PORT DIR FSYNC: (re)starts Redis on its files.
redis_up() {
  redis-server --port "$1" --bind 127.0.0.1 --dir "$2" --save '' --appendonly yes \
    --appendfsync "$3" --maxmemory-policy noeviction --logfile "$2/redis.log" >/dev/null &
  REDIS_PID=$!
  wait_port "$1"
}

# cluster_node PORT DIR FSYNC: (re)starts one cluster node on its files.
cluster_node() {
  mkdir -p "$2"
  redis-server --port "$1" --bind 127.0.0.1 --dir "$2" --save '' --appendonly yes \
    --appendfsync "$3" --maxmemory-policy noeviction --cluster-enabled yes \
    --cluster-config-file nodes.conf --cluster-node-timeout 1000 --logfile "$2/redis.log" \
    >/dev/null &
  CLUSTER_PIDS[$1]=$!
  wait_port "$1"
}

# cluster_up DIR FSYNC: six nodes, three primaries with a replica each, all in sync; sets
# CLUSTER_PORTS.
cluster_up() {
  CLUSTER_PORTS=()
  for _ in 1 2 3 4 5 6; do
    local port
    port=$(free_port)
    cluster_node "$port" "$1/node-$port" "$2"
    CLUSTER_PORTS+=("$port")
  done
  redis-cli --cluster create "${CLUSTER_PORTS[@]/#/127.0.0.1:}" --cluster-replicas 1 \
    --cluster-yes >/dev/null
  for port in "${CLUSTER_PORTS[@]}"; do
    for _ in $(seq 1 200); do
      if redis-cli -p "$port" cluster info | grep -q cluster_state:ok &&
        redis-cli -p "$port" info replication | grep -Eq 'role:master|master_link_status:up'; then
        continue 2
      fi
      sleep 0.1
    done
    echo "cluster node $port never became ready" >&2
    return 1
  done
}

# primary_of ASK_PORT TENANT: the port of the primary serving the tenant's partition. The
# partition is the first 8 bytes of SHA-256(tenant) mod 16 (the default partition count):
# the 16th hex digit; its hash tag `{p}` alone decides the slot.
primary_of() {
  local hex partition slot
  hex=$(printf %s "$2" | sha256sum)
  partition=$((16#${hex:15:1}))
  slot=$(redis-cli -p "$1" cluster keyslot "x{$partition}")
  redis-cli -p "$1" cluster nodes | awk -v slot="$slot" '
    $3 ~ /master/ && $3 !~ /fail/ {
      for (i = 9; i <= NF; i++) {
        n = split($i, r, "-"); lo = r[1]; hi = (n == 2) ? r[2] : r[1]
        if (slot >= lo && slot <= hi) { split($2, a, "[:@]"); print a[2]; exit }
      }
    }'
}

# gateway_up PORT REDIS_URL SPOOL_DIR (empty: no spool) [more serve flags]
gateway_up() {
  local spool=()
  [ -n "$3" ] && spool=(--spool-dir "$3")
  OMNIGATE_ADMIN_TOKEN=$ADMIN_TOKEN OMNIGATE_SECRET_KEY=$SEALING_KEY OMNIGATE_WEBHOOK_RATE=0 \
    OMNIGATE_LOG=warn "$BIN/omnigate" serve --bind "127.0.0.1:$1" \
    --redis-url "$2" --redis-prefix drill ${spool[@]+"${spool[@]}"} "${@:4}" \
    >>"$WORK/gateway-$1.log" 2>&1 &
  GATEWAY_PID=$!
  wait_port "$1"
}

kill9() { kill -9 "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }

# Stops whatever the drill started (the gateway, Redis or the cluster's nodes).
teardown() {
  local pid
  for pid in $GATEWAY_PID $REDIS_PID ${CLUSTER_PIDS[@]+"${CLUSTER_PIDS[@]}"}; do kill9 "$pid"; done
  GATEWAY_PID=""
  REDIS_PID=""
  CLUSTER_PIDS=()
}

printf '\n%-20s %-9s %7s %7s %8s %6s %10s %8s %6s %8s\n' \
  "drill" "fsync" "sent" "2xx" "spooled" "5xx" "no answer" "missing" "twice" "drain s"

for fsync in $FSYNCS; do
  for drill in $DRILLS; do
    dir="$WORK/$drill-$fsync"
    mkdir -p "$dir/redis"
    redis_port=$(free_port)
    port=$(free_port)
    spool="$dir/spool"
    [ "$drill" = "redis-kill-nospool" ] && spool=""
    tenant="drill-$drill-$fsync"
    case $drill in
      cluster-*)
        cluster_up "$dir/cluster" "$fsync"
        nodes=$(printf '127.0.0.1:%s,' "${CLUSTER_PORTS[@]}")
        redis_url="redis+cluster://${nodes%,}"
        wait_flags=()
        [ "$drill" = "cluster-failover" ] && wait_flags=(--redis-wait-replicas 1)
        gateway_up "$port" "$redis_url" "$spool" ${wait_flags[@]+"${wait_flags[@]}"}
        ;;
      *)
        redis_url="redis://127.0.0.1:$redis_port"
        redis_up "$redis_port" "$dir/redis" "$fsync"
        gateway_up "$port" "$redis_url" "$spool"
        ;;
    esac
    source=$(curl -sf -X POST "http://127.0.0.1:$port/v1/sources" \
      -H "Authorization: Bearer $ADMIN_TOKEN" -H 'Content-Type: application/json' \
      -d "{\"tenant\":\"$tenant\",\"provider\":\"shopify\",\"secret\":\"$SECRET\"}" |
      sed -E 's/.*"id":"([^"]+)".*/\1/')
    OMNIGATE_ADMIN_TOKEN=$ADMIN_TOKEN "$BIN/omnigate-drill" --url "http://127.0.0.1:$port" \
      --source "$source" --secret "$SECRET" --tenant "$tenant" \
      --senders "$SENDERS" --seconds "$SECONDS_EACH" >"$dir/result" 2>"$dir/drill.err" &
    driver=$!
    sleep 2
    case $drill in
      redis-kill | redis-kill-nospool)
        kill9 "$REDIS_PID"
        sleep 1.5
        redis_up "$redis_port" "$dir/redis" "$fsync"
        ;;
      gateway-kill)
        kill9 "$REDIS_PID"
        sleep 1
        kill9 "$GATEWAY_PID"
        sleep 0.5
        redis_up "$redis_port" "$dir/redis" "$fsync"
        gateway_up "$port" "$redis_url" "$spool"
        ;;
      redis-pause)
        redis-cli -p "$redis_port" CLIENT PAUSE 3000 ALL >/dev/null
        ;;
      cluster-*)
        victim=$(primary_of "${CLUSTER_PORTS[0]}" "$tenant")
        if [ -z "$victim" ]; then
          log "$drill: no primary serves $tenant's partition"
          teardown
          exit 1
        fi
        for p in "${CLUSTER_PORTS[@]}"; do [ "$p" != "$victim" ] && ask=$p && break; done
        kill9 "${CLUSTER_PIDS[$victim]}"
        promoted=""
        for _ in $(seq 1 300); do
          promoted=$(primary_of "$ask" "$tenant")
          [ -n "$promoted" ] && [ "$promoted" != "$victim" ] && break
          promoted=""
          sleep 0.1
        done
        if [ -z "$promoted" ]; then
          log "$drill: no replica was promoted within 30 s"
          teardown
          exit 1
        fi
        [ -n "${DRILL_DEBUG:-}" ] && log "primary $victim killed; $promoted promoted"
        cluster_node "$victim" "$dir/cluster/node-$victim" "$fsync"
        ;;
    esac
    if ! wait "$driver"; then
      log "$drill: the drill failed"
      cat "$dir/drill.err" >&2
      tail -n 20 "$WORK/gateway-$port.log" >&2 || true
      teardown
      continue
    fi
    [ -n "${DRILL_DEBUG:-}" ] && cat "$dir/drill.err" >&2
    line=$(cat "$dir/result")
    field() { sed -E "s/.*(^| )$1=([^ ]*).*/\2/" <<<"$line"; }
    printf '%-20s %-9s %7s %7s %8s %6s %10s %8s %6s %8s\n' "$drill" "$fsync" \
      "$(field sent)" "$(field ok2xx)" "$(field spooled)" "$(field err5xx)" \
      "$(field no_answer)" "$(field missing)" "$(field twice)" "$(field drain_s)"
    teardown
  done
done
