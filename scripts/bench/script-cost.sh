#!/usr/bin/env bash
# What going through a Lua script costs Redis, in isolation: a private redis-server, then
# `redis-benchmark` (20,000 calls, 8 clients, one 4.8 KB field, the size of a canonical
# order event) sending a bare XADD, a script doing only that XADD, and a script shaped like
# the head of the gateway's append script (dedupe check, XADD, a fact mark and the delivery
# mark). Prints Redis's time inside each call (INFO commandstats) for each. A measurement, not a
# test. Needs redis-server and redis-benchmark (apt-get install redis-server).
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib.sh

PORT=$(free_port)
DIR=$(mktemp -d)
redis-server --port "$PORT" --bind 127.0.0.1 --dir "$DIR" --save '' --appendonly no \
  --logfile "$DIR/redis.log" &
PID=$!
trap 'kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; rm -rf "$DIR"' EXIT
for _ in $(seq 1 100); do redis-cli -p "$PORT" ping >/dev/null 2>&1 && break; sleep 0.05; done

FIELD=$(head -c 3600 /dev/urandom | base64 -w0)
N=20000
cli() { redis-cli -p "$PORT" "$@"; }
# per_call LABEL COMMAND STREAM: Redis's time inside COMMAND per call since the last reset
# (INFO commandstats: not reading requests or writing replies), then STREAM dropped.
per_call() {
  cli info commandstats | awk -F'[:,=]' -v c="cmdstat_$2" -v l="$1" \
    '$1 == c {printf "%-52s %8s µs per call (%s calls, %s failed)\n", l, $7, $3, $11}'
  cli del "$3" >/dev/null
  cli config resetstat >/dev/null
}

cli config resetstat >/dev/null
redis-benchmark -p "$PORT" -n "$N" -c 8 -q \
  XADD bare '*' id evt_1 tenant t1 type order.created json "$FIELD" >/dev/null
per_call "XADD" xadd bare

ONE=$(cli script load "return redis.call('XADD', KEYS[1], '*', 'id', ARGV[1], 'tenant', ARGV[2], 'type', ARGV[3], 'json', ARGV[4])")
redis-benchmark -p "$PORT" -n "$N" -c 8 -q \
  EVALSHA "$ONE" 1 one evt_1 t1 order.created "$FIELD" >/dev/null
per_call "a script doing only that XADD" evalsha one

HEAD=$(cli script load "if redis.call('EXISTS', KEYS[1]) == 1 then return false end
local id = redis.call('XADD', KEYS[2], '*', 'id', ARGV[1], 'tenant', ARGV[2], 'type', ARGV[3], 'json', ARGV[4])
redis.call('SET', KEYS[3], '1', 'PX', 60000)
redis.call('SET', KEYS[1], '1', 'PX', 60000)
return {0, {id}, {}, 0}")
# -r makes __rand_int__ a fresh number per call: new marks, as distinct deliveries have.
redis-benchmark -p "$PORT" -n "$N" -r 1000000000 -c 8 -q \
  EVALSHA "$HEAD" 3 seen:__rand_int__ head fact:__rand_int__ evt_1 t1 order.created "$FIELD" >/dev/null
per_call "dedupe check, XADD, fact mark, delivery mark" evalsha head
