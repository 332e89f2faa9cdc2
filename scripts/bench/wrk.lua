-- Sends the deliveries `omnigate-presign` wrote, each once: thread i of n takes lines i,
-- i+n, i+2n, … and stops when its share is answered. Environment:
--   BENCH_FILE     the presigned file (path TAB header-count TAB (name TAB value)* TAB body)
--   BENCH_THREADS  wrk's -t (how the file is shared out)
--   BENCH_RATE     optional: requests per second over all connections, paced on a fixed
--                  schedule per thread (a request is not held back by slow answers to
--                  earlier ones while connections are free)
--   BENCH_PASSES   optional: send the share this many times (for the bare baseline, which
--                  keeps nothing, so a delivery sent twice costs it the same)
-- Prints one line `BENCH key=value …` for scripts/bench.sh.
--
-- wrk runs for its whole -d unless interrupted: the last thread to finish its share sends
-- wrk SIGINT (through LuaJIT's FFI), which ends the run and prints the summary at once.

local ffi = require("ffi")
ffi.cdef [[
  int kill(int pid, int sig);
  int getpid(void);
  typedef struct { long tv_sec; long tv_nsec; } timespec;
  int clock_gettime(int clock, timespec *ts);
]]
local ts = ffi.new("timespec")
local function now_ms()
  ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
end

local counter = 0
local all_threads = {}

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  all_threads[#all_threads + 1] = thread
end

local function split(line)
  local fields, from = {}, 1
  while true do
    local at = string.find(line, "\t", from, true)
    if not at then
      fields[#fields + 1] = string.sub(line, from)
      return fields
    end
    fields[#fields + 1] = string.sub(line, from, at - 1)
    from = at + 1
  end
end

function init(args)
  file = os.getenv("BENCH_FILE")
  threads = tonumber(os.getenv("BENCH_THREADS") or "1")
  local rate = tonumber(os.getenv("BENCH_RATE") or "0")
  interval_ms = 0
  if rate > 0 then
    interval_ms = threads * 1000 / rate
  end
  next_ms = nil
  prepared = {}
  local i = 0
  for line in io.lines(file) do
    if i % threads == id then
      local f = split(line)
      local count = tonumber(f[2])
      local headers = {}
      for h = 0, count - 1 do
        headers[f[3 + 2 * h]] = f[4 + 2 * h]
      end
      prepared[#prepared + 1] = wrk.format("POST", f[1], headers, f[3 + 2 * count])
    end
    i = i + 1
  end
  local passes = tonumber(os.getenv("BENCH_PASSES") or "1")
  local once = #prepared
  for p = 2, passes do
    for k = 1, once do
      prepared[#prepared + 1] = prepared[k]
    end
  end
  sent, answered, duplicates = 0, 0, 0
end

-- Marks this thread's share as answered; the last thread to do so ends the run.
local function finished()
  local mark = io.open(file .. ".done." .. id, "w")
  mark:close()
  local n = 0
  for t = 0, threads - 1 do
    local other = io.open(file .. ".done." .. t, "r")
    if other then
      n = n + 1
      other:close()
    end
  end
  if n == threads then
    ffi.C.kill(ffi.C.getpid(), 2)
  end
end

-- With a rate, the k-th request of this thread is due k intervals after its first.
function delay()
  if interval_ms == 0 then
    return 0
  end
  local now = now_ms()
  if next_ms == nil then
    next_ms = now
  end
  local wait = next_ms - now
  next_ms = next_ms + interval_ms
  if wait <= 0 then
    return 0
  end
  return math.floor(wait)
end

function request()
  sent = sent + 1
  -- Past the end, connections still open repeat the last delivery (answered as a
  -- duplicate) until the thread stops: at most one per connection.
  return prepared[math.min(sent, #prepared)]
end

function response(status, headers, body)
  answered = answered + 1
  if status == 200 then
    -- 200 is the gateway's answer to a delivery it already has.
    duplicates = duplicates + 1
  end
  if answered == #prepared then
    wrk.thread:stop()
    finished()
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  local dups = 0
  for _, t in ipairs(all_threads) do
    dups = dups + (t:get("duplicates") or 0)
  end
  io.write(string.format(
    "BENCH requests=%d duration_us=%d p50_us=%d p99_us=%d max_us=%d non2xx=%d socket_errors=%d duplicates=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    latency.max, e.status, e.connect + e.read + e.write + e.timeout, dups))
end
