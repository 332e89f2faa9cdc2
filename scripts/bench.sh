#!/usr/bin/env bash
# A benchmark, not a test: it prints figures and never fails on them. It measures the
# release `omnigate serve` binary from outside, with `wrk`, side by side with a bare
# actix-web handler that only XADDs the body (`omnigate-bare`), in alternating rounds on a
# private redis-server, and reports for each round: requests/s, p50/p99 latency, non-2xx
# answers, server CPU per request (from /proc/<pid>/stat), RSS, and the CPU per request
# Redis spent in the same round (the machine's two cores are shared by both). `dups` counts
# answers of 200 (a delivery the gateway already had): only the few requests connections
# still had in flight when their thread's share ran out.
#
# Profiles (BENCH_PROFILES, default "shopify mixed rate fsync plugin push"):
#   shopify  distinct signed 8 KB Shopify orders/create, each order sent once per round; beside
#            the bare handler, the naive pipeline of issue #10 (`omnigate-naive`: HMAC, parse
#            to a Value, the order schema, a mapping, XADD) runs the same deliveries
#   mixed    order stories of Shopify, WooCommerce, Stripe, Saleor, Standard Webhooks
#   rate     the gateway at half its measured peak (paced client): latency off the limit;
#            BENCH_PEAK=<req/s> takes that peak as given (for rate and soak), even when the
#            shopify profile measured one
#   fsync    the shopify profile on a Redis with appendonly + appendfsync always
#   plugin   webhook → plugin handler latency through the SDK runtime at BENCH_PLUGIN_RATE/s
#   push     webhook → push endpoint latency (the SDK push server) at BENCH_PLUGIN_RATE/s, then
#            how fast a burst of BENCH_PUSH_BURST unpaced webhooks is pushed
#   soak     (opt-in) half the peak rate for BENCH_SOAK_SECS, RSS sampled every round
#
# Knobs: BENCH_REQUESTS (40000 per round), BENCH_ROUNDS (3), BENCH_WARMUP (2000 deliveries
# sent unmeasured to each process before a profile's rounds), BENCH_CONNECTIONS (64),
# BENCH_THREADS (2), BENCH_PLUGIN_RATE (1000), BENCH_PLUGIN_EVENTS (10000), BENCH_PUSH_BURST
# (20000), BENCH_SOAK_SECS (600), BENCH_PERF (a directory: the gateway's first round on each
# presigned file is recorded there with `perf record`, for `perf report -i`, and the naive
# pipeline's first as FILE.naive.data — the rate and soak profiles reuse the shopify file,
# so profile them alone, with BENCH_PEAK; a recorded round is slower and still counts in the medians;
# BENCH_PERF_CALLGRAPH picks the call graphs, "fp" by default, "dwarf,8192" for inclusive
# shares of a release build without frame pointers),
# BENCH_GATEWAY_BIN (another `omnigate` binary to measure instead), BENCH_COMPARE_BIN (a
# second `omnigate` binary, e.g. the previous commit's, measured in the same run by the
# shopify and mixed profiles: its rounds alternate with the others, so a before/after on a
# shared machine compares like with like; with BENCH_PERF its first round is recorded too,
# as FILE.cmp.data). Needs apt-get for wrk and redis-server when they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

PROFILES=${BENCH_PROFILES:-"shopify mixed rate fsync plugin push"}
REQUESTS=${BENCH_REQUESTS:-40000}
ROUNDS=${BENCH_ROUNDS:-3}
CONNECTIONS=${BENCH_CONNECTIONS:-64}
THREADS=${BENCH_THREADS:-2}
PLUGIN_RATE=${BENCH_PLUGIN_RATE:-1000}
PLUGIN_EVENTS=${BENCH_PLUGIN_EVENTS:-10000}
PUSH_BURST=${BENCH_PUSH_BURST:-20000}
SOAK_SECS=${BENCH_SOAK_SECS:-600}
BARE_PASSES=${BENCH_BARE_PASSES:-4}
WARMUP=${BENCH_WARMUP:-2000}
PERF_DIR=${BENCH_PERF:-}
GIVEN_PEAK=${BENCH_PEAK:-}
# Half of it is a pace: 0 would mean unpaced to wrk.lua, a leading 0 octal to bash.
if [ -n "$GIVEN_PEAK" ] && { ! [[ $GIVEN_PEAK =~ ^[1-9][0-9]*$ ]] || [ "$GIVEN_PEAK" -lt 2 ]; }; then
  echo "BENCH_PEAK must be a whole number of requests/s, 2 or more, not '$GIVEN_PEAK'" >&2
  exit 2
fi
ADMIN_TOKEN="bench-admin-token-$RANDOM$RANDOM"
export OMNIGATE_ADMIN_TOKEN=$ADMIN_TOKEN

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}
for tool in wrk redis-server; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    log "$tool not found: installing it with apt-get"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$tool" >/dev/null
  fi
done
if [ -n "$PERF_DIR" ] && ! command -v perf >/dev/null 2>&1; then
  log "perf not found: installing linux-perf with apt-get"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq linux-perf >/dev/null
fi

log "building the release binaries"
cargo build --release --locked -p omnigate -p omnigate-bench --bins >&2
BIN=target/release
# Another build of the gateway to measure instead (a before/after comparison: build the
# other commit with its own CARGO_TARGET_DIR and point this at its binary).
GATEWAY_BIN=${BENCH_GATEWAY_BIN:-$BIN/omnigate}
COMPARE_BIN=${BENCH_COMPARE_BIN:-}
SECRET_KEY=$(head -c 32 /dev/urandom | base64)

WORK=$(mktemp -d)
PIDS=()
cleanup() {
  # Subshells ($(…)) inherit the trap; only the script itself cleans up.
  [ "$BASHPID" = "$$" ] || return 0
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

wait_port() {
  for _ in $(seq 1 200); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  echo "nothing listens on $1" >&2
  return 1
}

# The start_* functions run in this shell (not in $(…), whose exit would run the cleanup)
# and leave the new process's port and pid in PORT and PID.
PORT=""
PID=""

# start_redis NAME [redis args…]
start_redis() {
  local name=$1
  shift
  PORT=$(free_port)
  mkdir -p "$WORK/$name"
  redis-server --port "$PORT" --bind 127.0.0.1 --dir "$WORK/$name" --save '' \
    --maxmemory-policy noeviction --logfile "$WORK/$name/redis.log" "$@" >/dev/null &
  PID=$!
  PIDS+=("$PID")
  # The rounds that follow count this Redis's CPU.
  REDIS_PID=$PID
  wait_port "$PORT"
}

# start_gateway REDIS_PORT [VAR=value…]
start_gateway() {
  local redis=$1
  shift
  PORT=$(free_port)
  env OMNIGATE_SECRET_KEY="$SECRET_KEY" OMNIGATE_WEBHOOK_RATE=0 \
    OMNIGATE_LOG=warn "$@" "${START_BIN:-$GATEWAY_BIN}" serve --bind "127.0.0.1:$PORT" \
    --redis-url "redis://127.0.0.1:$redis" --redis-prefix "${START_PREFIX:-bench}" >"$WORK/gateway-$PORT.log" 2>&1 &
  PID=$!
  PIDS+=("$PID")
  wait_port "$PORT"
}

# start_bare REDIS_PORT
start_bare() {
  PORT=$(free_port)
  "$BIN/omnigate-bare" --bind "127.0.0.1:$PORT" --redis-url "redis://127.0.0.1:$1" \
    >"$WORK/bare-$PORT.log" 2>&1 &
  PID=$!
  PIDS+=("$PID")
  wait_port "$PORT"
}

# start_naive REDIS_PORT
start_naive() {
  PORT=$(free_port)
  # The secret omnigate-presign gives every Shopify source it connects.
  "$BIN/omnigate-naive" --bind "127.0.0.1:$PORT" --redis-url "redis://127.0.0.1:$1" \
    --secret bench-secret-shopify-0123456789abcdef >"$WORK/naive-$PORT.log" 2>&1 &
  PID=$!
  PIDS+=("$PID")
  wait_port "$PORT"
}

# reset_marks REDIS_PORT [PREFIX]: forgets what a gateway remembers of deliveries, so a
# file can be sent again as new.
reset_marks() {
  local prefix=${2:-bench}
  for pattern in "$prefix:seen:*" "$prefix:snapshot:*"; do
    redis-cli -p "$1" --scan --pattern "$pattern" | xargs -r -n 1000 redis-cli -p "$1" del >/dev/null
  done
}

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rss_mb() { awk '/VmRSS/ {printf "%.0f", $2 / 1024}' "/proc/$1/status"; }
CLK_TCK=$(getconf CLK_TCK)
# us_per_request TICKS REQUESTS: CPU ticks spread over requests, in µs each.
us_per_request() { awk -v t="$1" -v c="$CLK_TCK" -v r="$2" 'BEGIN {printf "%.1f", t * 1e6 / c / r}'; }

header() {
  printf '\n%s\n' "$1"
  printf '%-34s %9s %8s %8s %7s %6s %11s %7s %13s\n' "round" "req/s" "p50 ms" "p99 ms" "non-2xx" "dups" "CPU µs/req" "RSS MB" "Redis µs/req"
}

# round LABEL PORT PID FILE [RATE] [PASSES]: one wrk run; prints a row and sets LAST_RPS,
# LAST_P50, LAST_P99, LAST_CPU, LAST_REDIS (Redis's CPU per request) and LAST_NON2XX.
round() {
  local label=$1 port=$2 pid=$3 file=$4 rate=${5:-0} passes=${6:-1} before after out line
  local redis_before redis_after
  rm -f "$file".done.*
  local perf_pid=""
  # The naive pipeline's profile is kept beside the gateway's, as FILE.naive.data.
  local data=$PERF_DIR/$(basename "$file")
  [ "$pid" = "${NAIVE_PID:-}" ] && data=$data.naive
  if [ -n "$PERF_DIR" ] && [ "$pid" != "${BARE_PID:-}" ] && [ ! -e "$data.data" ]; then
    mkdir -p "$PERF_DIR"
    perf record -F 999 --call-graph "${BENCH_PERF_CALLGRAPH:-fp}" -p "$pid" \
      -o "$data.data" >/dev/null 2>"$WORK/perf-$(basename "$data").log" &
    perf_pid=$!
  fi
  before=$(cpu_ticks "$pid")
  redis_before=$(cpu_ticks "$REDIS_PID")
  out=$(BENCH_FILE=$file BENCH_THREADS=$THREADS BENCH_CONNECTIONS=$CONNECTIONS BENCH_RATE=$rate \
    BENCH_PASSES=$passes \
    wrk -t"$THREADS" -c"$CONNECTIONS" -d3600s --timeout 10s -s scripts/bench/wrk.lua \
    "http://127.0.0.1:$port/")
  # The work a round leaves behind (the router draining what it wrote) is the round's: wait
  # until the process is idle (its CPU time still for 0.3 s, 3 s at most) before reading it.
  after=$(cpu_ticks "$pid")
  for _ in $(seq 1 10); do
    sleep 0.3
    local now
    now=$(cpu_ticks "$pid")
    [ "$now" = "$after" ] && break
    after=$now
  done
  redis_after=$(cpu_ticks "$REDIS_PID")
  if [ -n "$perf_pid" ]; then
    # perf may have ended on its own (an unsupported call-graph mode): say why, go on.
    kill -INT "$perf_pid" 2>/dev/null || sed 's/^/perf: /' "$WORK/perf-$(basename "$data").log" >&2
    wait "$perf_pid" || true
  fi
  line=$(grep '^BENCH ' <<<"$out") || { echo "$out" >&2; return 1; }
  eval "$(sed 's/^BENCH //' <<<"$line")"
  # shellcheck disable=SC2154 # set by the eval above
  LAST_RPS=$(awk -v r="$requests" -v d="$duration_us" 'BEGIN {printf "%.0f", r * 1e6 / d}')
  LAST_P99=$(awk -v v="$p99_us" 'BEGIN {printf "%.2f", v / 1000}')
  LAST_P50=$(awk -v v="$p50_us" 'BEGIN {printf "%.2f", v / 1000}')
  LAST_CPU=$(us_per_request $((after - before)) "$requests")
  LAST_NON2XX=$((non2xx + socket_errors))
  LAST_REDIS=$(us_per_request $((redis_after - redis_before)) "$requests")
  printf '%-34s %9s %8.2f %8s %7d %6d %11.1f %7s %13.1f\n' "$label" "$LAST_RPS" \
    "$LAST_P50" "$LAST_P99" "$LAST_NON2XX" \
    "$duplicates" \
    "$LAST_CPU" \
    "$(rss_mb "$pid")" "$LAST_REDIS"
}

# median_of NUMBER…: their median; of an even count, the mean of the middle two.
median_of() {
  printf '%s\n' "$@" | sort -n | awk '{v[NR] = $1} END {
    if (NR % 2) print v[(NR + 1) / 2]; else printf "%.1f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2
  }'
}

# percent PART WHOLE: PART as a percentage of WHOLE, one decimal.
percent() { awk -v p="$1" -v w="$2" 'BEGIN {printf "%.1f", 100 * p / w}'; }

log "machine: $(nproc) cores, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo);" \
  "$(redis-server --version | awk '{print $1, $3}'); $(wrk --version 2>&1 | head -1 | awk '{print $1, $2}')"

start_redis main --appendonly no
REDIS=$PORT
MAIN_REDIS_PID=$PID
start_gateway "$REDIS"
GW_PORT=$PORT GW_PID=$PID
start_bare "$REDIS"
BARE_PORT=$PORT BARE_PID=$PID
start_naive "$REDIS"
NAIVE_PORT=$PORT NAIVE_PID=$PID
log "gateway on $GW_PORT (pid $GW_PID), bare baseline on $BARE_PORT (pid $BARE_PID)," \
  "naive pipeline on $NAIVE_PORT (pid $NAIVE_PID), redis on $REDIS"
if [ -n "$COMPARE_BIN" ]; then
  # Its own keys in the same Redis: its router drains only its own log, so neither
  # process does the other's routing on its CPU.
  START_BIN=$COMPARE_BIN START_PREFIX=benchcmp start_gateway "$REDIS"
  CMP_PORT=$PORT CMP_PID=$PID
  log "compared build $COMPARE_BIN on $CMP_PORT (pid $CMP_PID), same Redis, prefix benchcmp"
fi

presign() { # PROFILE COUNT GATEWAY_PORT FILE
  "$BIN/omnigate-presign" --profile "$1" --count "$2" --gateway "http://127.0.0.1:$3" --out "$4" >&2
  if [ -n "$COMPARE_BIN" ] && [ "$3" = "$GW_PORT" ]; then
    "$BIN/omnigate-presign" --profile "$1" --count "$2" --gateway "http://127.0.0.1:$CMP_PORT" \
      --out "$4.cmp" >&2
  fi
}

# naive_refusals COUNT: refusals are fast, so a naive pipeline that refused any (its secret
# not the one its deliveries are signed with) has figures that flatter it: say so loudly.
naive_refusals() {
  if [ "$1" -gt 0 ]; then
    echo "WARNING: the naive pipeline answered $1 requests with non-2xx or a socket error: its figures are not comparable" | tee /dev/stderr
  fi
}

# compared_round I FILE: a round of the compared build (on FILE.cmp, the same deliveries
# signed for its own source), into side_by_side's cmp arrays.
compared_round() {
  reset_marks "$REDIS" benchcmp
  round "compared build #$1" "$CMP_PORT" "$CMP_PID" "$2.cmp"
  cmp+=("$LAST_RPS")
  cmp_cpu+=("$LAST_CPU")
}

# warm PORT FILE: an unmeasured run of FILE's first WARMUP deliveries.
warm() {
  head -n "$WARMUP" "$2" >"$2.warm"
  rm -f "$2.warm".done.*
  BENCH_FILE=$2.warm BENCH_THREADS=$THREADS BENCH_CONNECTIONS=$CONNECTIONS BENCH_RATE=0 \
    BENCH_PASSES=1 wrk -t"$THREADS" -c"$CONNECTIONS" -d3600s --timeout 10s \
    -s scripts/bench/wrk.lua "http://127.0.0.1:$1/" >/dev/null
}

# side_by_side NAME FILE [naive]: ROUNDS alternating rounds; prints medians and the ratio.
# With "naive", the naive pipeline runs the same file after the bare handler each round.
PEAK_RPS=""
side_by_side() {
  local name=$1 file=$2 with_naive=${3:-} bare=() gw=() cmp=() gw_cpu=() cmp_cpu=() i
  local naive_failed=0 naive=() naive_cpu=() bare_cpu=() gw_redis=() bare_redis=() naive_redis=() gw_p50=() gw_p99=()
  # A process's first traffic meets cold caches, fresh connections and an empty source
  # cache: each one gets a short unmeasured run first, so round 1 is not the slow one.
  warm "$BARE_PORT" "$file"
  if [ -n "$with_naive" ]; then warm "$NAIVE_PORT" "$file"; fi
  reset_marks "$REDIS"
  warm "$GW_PORT" "$file"
  if [ -n "$COMPARE_BIN" ]; then
    reset_marks "$REDIS" benchcmp
    warm "$CMP_PORT" "$file.cmp"
  fi
  header "$name: $CONNECTIONS connections, $THREADS wrk threads, $(wc -l <"$file") deliveries per round"
  for i in $(seq 1 "$ROUNDS"); do
    # The baseline is several times faster: it gets the file BARE_PASSES times, so that
    # both rounds last seconds.
    round "bare actix-web + XADD #$i" "$BARE_PORT" "$BARE_PID" "$file" 0 "$BARE_PASSES"
    bare+=("$LAST_RPS")
    bare_cpu+=("$LAST_CPU")
    bare_redis+=("$LAST_REDIS")
    if [ -n "$with_naive" ]; then
      # It keeps nothing either: two passes, so its rounds too last seconds.
      round "naive pipeline #$i" "$NAIVE_PORT" "$NAIVE_PID" "$file" 0 2
      naive+=("$LAST_RPS")
      naive_cpu+=("$LAST_CPU")
      naive_redis+=("$LAST_REDIS")
      naive_failed=$((naive_failed + LAST_NON2XX))
    fi
    # With a compared build, every other round measures it first: neither build always
    # follows the other into a Redis the previous round just filled.
    if [ -n "$COMPARE_BIN" ] && [ $((i % 2)) -eq 0 ]; then
      compared_round "$i" "$file"
    fi
    reset_marks "$REDIS"
    round "omnigate serve #$i" "$GW_PORT" "$GW_PID" "$file"
    gw+=("$LAST_RPS")
    gw_cpu+=("$LAST_CPU")
    gw_redis+=("$LAST_REDIS")
    gw_p50+=("$LAST_P50")
    gw_p99+=("$LAST_P99")
    if [ -n "$COMPARE_BIN" ] && [ $((i % 2)) -eq 1 ]; then
      compared_round "$i" "$file"
    fi
  done
  local b g
  b=$(median_of "${bare[@]}")
  g=$(median_of "${gw[@]}")
  PEAK_RPS=${g%.*}
  # Kept for the summary of the targets at the end.
  SUM_RPS=$g SUM_BARE=$b SUM_RATIO=$(percent "$g" "$b")
  SUM_CPU=$(median_of "${gw_cpu[@]}")
  SUM_BARE_CPU=$(median_of "${bare_cpu[@]}")
  SUM_P50=$(median_of "${gw_p50[@]}")
  SUM_P99=$(median_of "${gw_p99[@]}")
  printf '%s: median %s req/s for omnigate, %s for the bare handler: %s %% of it\n' \
    "$name" "$g" "$b" "$SUM_RATIO"
  printf '%s: median CPU per request %s µs for omnigate (and %s µs of Redis), %s µs for the bare handler (and %s µs of Redis)\n' \
    "$name" "$SUM_CPU" "$(median_of "${gw_redis[@]}")" "$SUM_BARE_CPU" "$(median_of "${bare_redis[@]}")"
  if [ -n "$with_naive" ]; then
    local n
    n=$(median_of "${naive[@]}")
    printf '%s: median %s req/s for the naive pipeline (%s %% of the bare handler), %s µs of CPU per request (and %s µs of Redis)\n' \
      "$name" "$n" "$(percent "$n" "$b")" "$(median_of "${naive_cpu[@]}")" "$(median_of "${naive_redis[@]}")"
    naive_refusals "$naive_failed"
  fi
  if [ -n "$COMPARE_BIN" ]; then
    local c
    c=$(median_of "${cmp[@]}")
    printf '%s: median CPU per request %s µs for omnigate, %s µs for the compared build, whose median is %s req/s (%s %% of the bare handler)\n' \
      "$name" "$SUM_CPU" "$(median_of "${cmp_cpu[@]}")" "$c" "$(percent "$c" "$b")"
  fi
  outcomes "$GW_PORT"
  if [ -n "$COMPARE_BIN" ]; then outcomes "$CMP_PORT" | sed 's/^/compared build: /'; fi
}

# What the gateway did with the deliveries so far (from its metrics), so a profile that
# quarantines or rejects is seen, not just counted as fast.
outcomes() {
  curl -s "http://127.0.0.1:$1/metrics" | awk '/^omnigate_webhooks_total\{/ {
    match($0, /outcome="[^"]*"/); o = substr($0, RSTART + 9, RLENGTH - 10); n[o] += $NF
  } END {
    printf "outcomes so far:"; for (o in n) printf " %s %d", o, n[o]; printf "\n"
  }'
}

for profile in $PROFILES; do
  # A profile with a Redis of its own counts that one's CPU (start_redis sets it).
  REDIS_PID=$MAIN_REDIS_PID
  case $profile in
    shopify)
      presign shopify "$REQUESTS" "$GW_PORT" "$WORK/shopify.tsv"
      side_by_side "shopify orders/create" "$WORK/shopify.tsv" naive
      SHOPIFY_PEAK=$PEAK_RPS
      SUM_SHOPIFY="$SUM_RPS req/s, $SUM_RATIO % of the bare handler's $SUM_BARE; $SUM_CPU µs of CPU per request (bare: $SUM_BARE_CPU); p50 $SUM_P50 ms, p99 $SUM_P99 ms"
      ;;
    mixed)
      presign mixed "$REQUESTS" "$GW_PORT" "$WORK/mixed.tsv"
      side_by_side "mixed providers" "$WORK/mixed.tsv"
      SUM_MIXED="$SUM_RPS req/s, $SUM_RATIO % of the bare handler's $SUM_BARE; $SUM_CPU µs of CPU per request; p99 $SUM_P99 ms"
      ;;
    rate)
      [ -f "$WORK/shopify.tsv" ] || presign shopify "$REQUESTS" "$GW_PORT" "$WORK/shopify.tsv"
      SHOPIFY_PEAK=${GIVEN_PEAK:-${SHOPIFY_PEAK:-}}
      if [ -z "$SHOPIFY_PEAK" ]; then
        reset_marks "$REDIS"
        header "peak (for the half-rate run)"
        round "omnigate serve, unpaced" "$GW_PORT" "$GW_PID" "$WORK/shopify.tsv"
        SHOPIFY_PEAK=$LAST_RPS
      fi
      half=$((SHOPIFY_PEAK / 2))
      header "shopify at half the peak: $half req/s offered"
      reset_marks "$REDIS"
      round "omnigate serve @ $half/s" "$GW_PORT" "$GW_PID" "$WORK/shopify.tsv" "$half"
      SUM_HALF="p50 $LAST_P50 ms, p99 $LAST_P99 ms at $half req/s offered ($LAST_RPS answered)"
      # The same paced load on the baseline: what this machine and wrk add to any p99; and
      # on the naive pipeline: what a pipeline of that shape adds.
      round "bare actix-web + XADD @ $half/s" "$BARE_PORT" "$BARE_PID" "$WORK/shopify.tsv" "$half"
      round "naive pipeline @ $half/s" "$NAIVE_PORT" "$NAIVE_PID" "$WORK/shopify.tsv" "$half"
      naive_refusals "$LAST_NON2XX"
      ;;
    fsync)
      start_redis fsync --appendonly yes --appendfsync always
      start_gateway "$PORT"
      FS_PORT=$PORT FS_PID=$PID
      presign shopify "$REQUESTS" "$FS_PORT" "$WORK/fsync.tsv"
      header "shopify on Redis with appendfsync always (beside the default above)"
      round "omnigate serve, fsync always" "$FS_PORT" "$FS_PID" "$WORK/fsync.tsv"
      SUM_FSYNC="$LAST_RPS req/s, p50 $LAST_P50 ms, p99 $LAST_P99 ms, $LAST_CPU µs of CPU per request"
      ;;
    plugin)
      start_redis plugin --appendonly no
      start_gateway "$PORT"
      P_PORT=$PORT P_PID=$PID
      presign shopify "$((PLUGIN_EVENTS + 1500))" "$P_PORT" "$WORK/plugin.tsv"
      "$BIN/omnigate-plugin-probe" --gateway "http://127.0.0.1:$P_PORT" \
        --warmup 1000 --ready-file "$WORK/probe.ready" >"$WORK/probe.out" 2>"$WORK/probe.log" &
      PROBE_PID=$!
      PIDS+=("$PROBE_PID")
      for _ in $(seq 1 100); do [ -f "$WORK/probe.ready" ] && break; sleep 0.1; done
      header "webhook → plugin handler (SDK runtime), $PLUGIN_RATE webhooks/s offered"
      round "omnigate serve + plugin @ $PLUGIN_RATE/s" "$P_PORT" "$P_PID" "$WORK/plugin.tsv" "$PLUGIN_RATE"
      if wait "$PROBE_PID"; then
        sed 's/^PROBE /handler latency: /' "$WORK/probe.out"
        SUM_PLUGIN=$(grep -m 1 '^PROBE ' "$WORK/probe.out" | sed 's/^PROBE //')
      else
        SUM_PLUGIN="the probe failed"
        echo "the probe failed:" >&2
        cat "$WORK/probe.log" >&2
      fi
      ;;
    push)
      start_redis push --appendonly no
      # The SDK push server listens on 127.0.0.1, over plain http.
      start_gateway "$PORT" OMNIGATE_PUSH_ALLOW_PRIVATE=true
      PU_PORT=$PORT PU_PID=$PID
      paced=$((PLUGIN_EVENTS + 1500))
      presign shopify "$((paced + PUSH_BURST))" "$PU_PORT" "$WORK/push-all.tsv"
      head -n "$paced" "$WORK/push-all.tsv" >"$WORK/push-paced.tsv"
      tail -n +"$((paced + 1))" "$WORK/push-all.tsv" >"$WORK/push-burst.tsv"
      # One PROBE line per burst of events (a burst ends after 2 s without one); the
      # probe stops 8 s after the last event.
      "$BIN/omnigate-plugin-probe" --gateway "http://127.0.0.1:$PU_PORT" --push "127.0.0.1:$(free_port)" \
        --bursts 0 --gap-ms 2000 --idle-secs 8 --warmup 1000 --ready-file "$WORK/push.ready" \
        >"$WORK/push.out" 2>"$WORK/push.log" &
      PUSH_PID=$!
      PIDS+=("$PUSH_PID")
      for _ in $(seq 1 100); do [ -f "$WORK/push.ready" ] && break; sleep 0.1; done
      # Every gateway process looks for new push plugins every 2 s.
      sleep 3
      header "webhook → push endpoint (SDK push server), $PLUGIN_RATE webhooks/s offered"
      round "omnigate serve + push @ $PLUGIN_RATE/s" "$PU_PORT" "$PU_PID" "$WORK/push-paced.tsv" "$PLUGIN_RATE"
      for _ in $(seq 1 100); do [ "$(wc -l <"$WORK/push.out")" -ge 1 ] && break; sleep 0.1; done
      sleep 2.5
      paced_lines=$(wc -l <"$WORK/push.out")
      sed -n "1,${paced_lines}s/^PROBE /pushed, handler latency: /p" "$WORK/push.out"
      header "a burst of $PUSH_BURST webhooks, unpaced: how fast they are pushed"
      round "omnigate serve + push, unpaced" "$PU_PORT" "$PU_PID" "$WORK/push-burst.tsv"
      if wait "$PUSH_PID"; then
        sed -n "$((paced_lines + 1)),\$s/^PROBE /pushed (per_s: events pushed per second): /p" "$WORK/push.out"
      else
        echo "the push probe failed:" >&2
        cat "$WORK/push.log" >&2
      fi
      ;;
    soak)
      [ -f "$WORK/shopify.tsv" ] || presign shopify "$REQUESTS" "$GW_PORT" "$WORK/shopify.tsv"
      rate=$(( ${GIVEN_PEAK:-${SHOPIFY_PEAK:-4000}} / 2 ))
      header "soak: $rate req/s offered for $SOAK_SECS s, RSS after each round"
      start=$(date +%s)
      first_rss=$(rss_mb "$GW_PID")
      rss_min="" rss_max=""
      n=0
      while [ $(( $(date +%s) - start )) -lt "$SOAK_SECS" ]; do
        n=$((n + 1))
        reset_marks "$REDIS"
        round "soak #$n" "$GW_PORT" "$GW_PID" "$WORK/shopify.tsv" "$rate"
        now_rss=$(rss_mb "$GW_PID")
        if [ -z "$rss_min" ] || [ "$now_rss" -lt "$rss_min" ]; then rss_min=$now_rss; fi
        if [ -z "$rss_max" ] || [ "$now_rss" -gt "$rss_max" ]; then rss_max=$now_rss; fi
      done
      last_rss=$(rss_mb "$GW_PID")
      printf 'RSS: %s MB before the soak, %s MB at the end, %s–%s MB after its %s rounds\n' \
        "$first_rss" "$last_rss" "$rss_min" "$rss_max" "$n"
      SUM_SOAK="$rate req/s for $SOAK_SECS s ($n rounds): RSS $first_rss MB before, $last_rss MB at the end, $rss_min–$rss_max MB after each round"
      ;;
    *)
      echo "unknown profile $profile" >&2
      exit 2
      ;;
  esac
done

# The targets of the hot-path work (issue #10) beside what this run measured: figures, not
# a verdict (the benchmark never fails on them).
printf '\n%s\n' "targets, and what this run measured:"
printf '  %s\n      %s\n' \
  "Shopify: ≥ 60 % of the bare handler, ≤ 60 µs of CPU, p99 ≤ 10 ms at 64 connections (this run: $CONNECTIONS)" \
  "${SUM_SHOPIFY:-(shopify profile not run)}" \
  "mixed providers, the same targets" "${SUM_MIXED:-(mixed profile not run)}" \
  "p99 ≤ 5 ms at half the peak" "${SUM_HALF:-(rate profile not run)}" \
  "webhook → plugin handler p50 ≤ 5 ms, p99 ≤ 25 ms" "${SUM_PLUGIN:-(plugin profile not run)}" \
  "RSS flat (± 10 %) over the soak" "${SUM_SOAK:-(soak profile not run)}" \
  "Redis with appendfsync always, beside the default" "${SUM_FSYNC:-(fsync profile not run)}"
