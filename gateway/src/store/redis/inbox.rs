//! Plugin inboxes (consumer group `plugin`) and their dead letters, which share the
//! plugin's hash slot so a delivery moves between them in one script.

use async_trait::async_trait;
use redis::{Script, Value};
use std::collections::BTreeMap;
use std::sync::LazyLock;
use std::time::Duration;

use super::{CONSUMER, GROUP, RedisStore, corrupt, entries, field, group_entries, text};
use crate::store::{
    DeadLetter, Delivered, EndpointHealth, InboxDepth, InboxEntry, Inboxes, Nack, PullOptions,
    Pushed, StoreError, StoreResult, StreamId,
};

/// What a dead letter holds, said once for the scripts that bury (KEYS as theirs: the
/// inbox, its dead letters, its failures, its due times; ARGV[1] the consumer group): entry `id`'s fields,
/// its attempts and the failures kept for it; it leaves the inbox in the same step.
const BURY_LUA: &str = r#"
local function bury(id, fields, attempts)
  local letter = {}
  for j = 1, #fields do letter[j] = fields[j] end
  letter[#letter + 1] = 'attempts'
  letter[#letter + 1] = attempts
  local failures = redis.call('HGET', KEYS[3], id)
  if failures then
    letter[#letter + 1] = 'failures'
    letter[#letter + 1] = failures
  end
  redis.call('XADD', KEYS[2], '*', unpack(letter))
  redis.call('XACK', KEYS[1], ARGV[1], id)
  redis.call('XDEL', KEYS[1], id)
  redis.call('HDEL', KEYS[3], id)
  redis.call('HDEL', KEYS[4], id)
end
"#;

/// KEYS[1] a plugin inbox, KEYS[2] its dead letters, KEYS[3] its failures, KEYS[4] its due
/// times, KEYS[5] where the claim scan goes on (one hash tag); ARGV: the consumer group, the consumer, the visibility (ms), how
/// many to claim, the most attempts, the dead-letter cap (0 = none), now (Unix ms). Claims
/// the deliveries whose visibility ran out with their delivery counts; one handed back for
/// longer than the visibility is put back, its count unchanged, until it is due; one past
/// its last attempt is moved to the dead letters (acknowledged and deleted in the inbox)
/// instead of handed out. One step, one round trip. Returns {{{id, attempt, fields}…},
/// moved, trimmed}.
const CLAIM_LUA: &str = r#"
local claimed = {}
-- Redis 6.2 lists an entry deleted while pending as nil; 7 leaves it out.
-- The scan goes on where the last one stopped (XAUTOCLAIM looks at COUNT x 10 pending
-- entries at most), so entries waiting far into the future at the front cannot hide due
-- ones behind them.
local scan = redis.call('XAUTOCLAIM', KEYS[1], ARGV[1], ARGV[2], ARGV[3], redis.call('GET', KEYS[5]) or '0-0', 'COUNT', ARGV[4])
redis.call('SET', KEYS[5], scan[1])
for _, entry in ipairs(scan[2]) do
  if type(entry) == 'table' then claimed[#claimed + 1] = entry end
end
local out, moved, trimmed = {}, 0, 0
if #claimed == 0 then return {out, moved, trimmed} end
local counts = {}
local lo, hi = claimed[1][1], claimed[#claimed][1]
for _, row in ipairs(redis.call('XPENDING', KEYS[1], ARGV[1], lo, hi, 10000)) do
  counts[row[1]] = row[4]
end
local max_attempts = tonumber(ARGV[5])
local visibility, now = tonumber(ARGV[3]), tonumber(ARGV[7])
for _, entry in ipairs(claimed) do
  local id, fields = entry[1], entry[2]
  local attempt = counts[id] or 2
  local due = tonumber(redis.call('HGET', KEYS[4], id) or '0')
  if due > now then
    -- Not due yet: back for another visibility period at most, as if never claimed.
    local idle = visibility - math.min(due - now, visibility)
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, id, 'IDLE', idle,
      'RETRYCOUNT', math.max(attempt - 1, 0), 'JUSTID')
  elseif attempt > max_attempts then
    bury(id, fields, attempt - 1)
    moved = moved + 1
  else
    if due > 0 then redis.call('HDEL', KEYS[4], id) end
    out[#out + 1] = {id, attempt, fields}
  end
end
local cap = tonumber(ARGV[6])
if cap > 0 and moved > 0 then trimmed = redis.call('XTRIM', KEYS[2], 'MAXLEN', cap) end
return {out, moved, trimmed}
"#;
static CLAIM: LazyLock<Script> = LazyLock::new(|| Script::new(&[BURY_LUA, CLAIM_LUA].concat()));

/// KEYS[1] a plugin inbox, KEYS[2] its dead letters (one hash tag); ARGV: the inbox cap
/// (0 = none), then `oldest` and how many, or `ids` and the dead letters' stream ids. Each
/// letter is added to the inbox (without its attempt count) and deleted from the dead
/// letters in the same step, so a crash can neither lose one nor leave it in both; the
/// inbox is capped after. Returns {trimmed, {new inbox ids}}.
const UNBURY_LUA: &str = r#"
local letters
if ARGV[2] == 'oldest' then
  letters = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', ARGV[3])
else
  letters = {}
  for i = 3, #ARGV do
    local found = redis.call('XRANGE', KEYS[2], ARGV[i], ARGV[i])
    if #found > 0 then letters[#letters + 1] = found[1] end
  end
end
local ids = {}
for _, letter in ipairs(letters) do
  local fields = {}
  local f = letter[2]
  for j = 1, #f, 2 do
    if f[j] ~= 'attempts' and f[j] ~= 'failures' then
      fields[#fields + 1] = f[j]
      fields[#fields + 1] = f[j + 1]
    end
  end
  ids[#ids + 1] = redis.call('XADD', KEYS[1], '*', unpack(fields))
  redis.call('XDEL', KEYS[2], letter[1])
end
local trimmed = 0
local cap = tonumber(ARGV[1])
if cap > 0 and #ids > 0 then trimmed = redis.call('XTRIM', KEYS[1], 'MAXLEN', cap) end
return {trimmed, ids}
"#;
static UNBURY: LazyLock<Script> = LazyLock::new(|| Script::new(UNBURY_LUA));

/// KEYS[1] a plugin inbox, KEYS[2] its failures, KEYS[3] its due times; ARGV: the consumer
/// group, then receipts. Acknowledges each
/// receipt and deletes its entry, so an inbox holds only what is unfinished. A receipt
/// whose `XACK` finds nothing pending is deleted only when the group was handed it before
/// (its id is at or below the group's last-delivered id): an earlier acknowledgement whose
/// answer was lost, not a delivery nobody has seen yet. Returns how many were acknowledged
/// now.
/// KEYS[1] a plugin inbox, KEYS[2] its dead letters; ARGV[1] the consumer group. Returns
/// {entries in the inbox, of which handed out and not acknowledged, dead letters}, read at
/// one instant.
const DEPTH_LUA: &str = r#"
local pending = 0
local ok, summary = pcall(redis.call, 'XPENDING', KEYS[1], ARGV[1])
if ok then pending = summary[1] end
return {redis.call('XLEN', KEYS[1]), pending, redis.call('XLEN', KEYS[2])}
"#;
static DEPTH: LazyLock<Script> = LazyLock::new(|| Script::new(DEPTH_LUA));

const ACK_LUA: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local function parse(id)
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  return tonumber(ms), tonumber(seq)
end
local last_ms, last_seq
local acked = 0
for i = 2, #ARGV do
  local id = ARGV[i]
  if redis.call('XACK', KEYS[1], ARGV[1], id) == 1 then
    redis.call('XDEL', KEYS[1], id)
    redis.call('HDEL', KEYS[2], id)
    redis.call('HDEL', KEYS[3], id)
    acked = acked + 1
  else
    if last_ms == nil then
      last_ms, last_seq = -1, -1
      for _, g in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
        local name, delivered
        for j = 1, #g, 2 do
          if g[j] == 'name' then name = g[j + 1] end
          if g[j] == 'last-delivered-id' then delivered = g[j + 1] end
        end
        if name == ARGV[1] and delivered then last_ms, last_seq = parse(delivered) end
      end
    end
    local ms, seq = parse(id)
    if ms and (ms < last_ms or (ms == last_ms and seq <= last_seq)) then
      redis.call('XDEL', KEYS[1], id)
      redis.call('HDEL', KEYS[2], id)
      redis.call('HDEL', KEYS[3], id)
    end
  end
end
return acked
"#;
static ACK: LazyLock<Script> = LazyLock::new(|| Script::new(ACK_LUA));

/// KEYS[1] a plugin inbox, KEYS[2] its dead letters, KEYS[3] its failures, KEYS[4] its due
/// times (one hash tag); ARGV: the consumer group, the consumer, the idle time (ms) that
/// makes a delivery due after its retry delay (0 when the delay is longer than the
/// visibility), '1' to bury instead ('2' to defer: made due with its delivery count taken
/// back, no reason kept), the reason ('' for none), its time, the dead-letter cap (0 =
/// none), when it falls due (Unix ms, '0' at once), then receipts. Per pending receipt:
/// the reason is added to its failures (the last 10), its due time recorded, then it is
/// made due (XCLAIM … IDLE) or moved to the dead letters with its attempts and failures.
/// Failures and due times of entries gone some other way (the inbox cap) are dropped when
/// a hash has more fields than the inbox has entries (an O(1) test; the sweep runs only
/// then). Returns how many were pending.
const NACK_LUA: &str = r#"
local settled, buried = 0, 0
for i = 9, #ARGV do
  local id = ARGV[i]
  local pending = redis.call('XPENDING', KEYS[1], ARGV[1], id, id, 1)
  if #pending > 0 then
    settled = settled + 1
    local attempt = pending[1][4]
    if ARGV[8] ~= '0' and ARGV[4] ~= '1' then
      redis.call('HSET', KEYS[4], id, ARGV[8])
    else
      redis.call('HDEL', KEYS[4], id)
    end
    if ARGV[4] == '2' then
      -- Not tried: the next hand-out counts this attempt again.
      redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, id, 'IDLE', ARGV[3],
        'RETRYCOUNT', math.max(attempt - 1, 0), 'JUSTID')
    elseif ARGV[5] ~= '' then
      local failures = {}
      local kept = redis.call('HGET', KEYS[3], id)
      if kept then failures = cjson.decode(kept) end
      failures[#failures + 1] = {attempt = attempt, reason = ARGV[5], at = ARGV[6]}
      while #failures > 10 do table.remove(failures, 1) end
      redis.call('HSET', KEYS[3], id, cjson.encode(failures))
    end
    if ARGV[4] == '2' then
      -- made due above
    elseif ARGV[4] == '1' then
      local found = redis.call('XRANGE', KEYS[1], id, id)
      if #found > 0 then
        bury(id, found[1][2], attempt)
        buried = buried + 1
      else
        redis.call('XACK', KEYS[1], ARGV[1], id)
        redis.call('HDEL', KEYS[3], id)
      end
    else
      redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, id, 'IDLE', ARGV[3], 'JUSTID')
    end
  end
end
local cap = tonumber(ARGV[7])
if cap > 0 and buried > 0 then redis.call('XTRIM', KEYS[2], 'MAXLEN', cap) end
local len = redis.call('XLEN', KEYS[1])
for k = 3, 4 do
  if redis.call('HLEN', KEYS[k]) > len then
    for _, id in ipairs(redis.call('HKEYS', KEYS[k])) do
      if #redis.call('XRANGE', KEYS[1], id, id) == 0 then redis.call('HDEL', KEYS[k], id) end
    end
  end
end
return settled
"#;
static NACK: LazyLock<Script> = LazyLock::new(|| Script::new(&[BURY_LUA, NACK_LUA].concat()));

/// KEYS[1] a plugin inbox, KEYS[2] its subject holds, KEYS[3] its due times (one hash tag);
/// ARGV: now (Unix ms), then subject and entry id pairs. A subject's field names the entry
/// holding it; its field + "\1" the earliest entry refused it, which goes next. Per pair:
/// the subject is taken for the entry (-1) when its holder is absent, the entry itself or
/// no longer in the inbox, and no earlier entry waits for it; else the entry is remembered
/// as waiting if it is the earliest, and the answer is the ms until the one in its way is
/// due again (0: out now). Holds of entries gone another way are swept when there are many
/// more holds than entries. Returns the answers in order.
const HOLD_LUA: &str = r#"
local now, out = tonumber(ARGV[1]), {}
local function present(id)
  return id and #redis.call('XRANGE', KEYS[1], id, id) > 0
end
local function before(a, b)
  local am, as = string.match(a, '^(%d+)-(%d+)$')
  local bm, bs = string.match(b, '^(%d+)-(%d+)$')
  am, as, bm, bs = tonumber(am), tonumber(as), tonumber(bm), tonumber(bs)
  return am < bm or (am == bm and as < bs)
end
local function wait_for(id)
  local due = tonumber(redis.call('HGET', KEYS[3], id) or '0')
  return math.max(due - now, 0)
end
for i = 2, #ARGV, 2 do
  local subject, id = ARGV[i], ARGV[i + 1]
  local next_key = subject .. '\1'
  local holder = redis.call('HGET', KEYS[2], subject)
  local waiter = redis.call('HGET', KEYS[2], next_key)
  if waiter and waiter ~= id and not present(waiter) then
    redis.call('HDEL', KEYS[2], next_key)
    waiter = nil
  end
  if holder and holder ~= id and present(holder) then
    if not waiter or before(id, waiter) then redis.call('HSET', KEYS[2], next_key, id) end
    out[#out + 1] = wait_for(holder)
  elseif holder ~= id and waiter and waiter ~= id and before(waiter, id) then
    out[#out + 1] = wait_for(waiter)
  else
    redis.call('HSET', KEYS[2], subject, id)
    if waiter == id then redis.call('HDEL', KEYS[2], next_key) end
    out[#out + 1] = -1
  end
end
if redis.call('HLEN', KEYS[2]) > 2 * redis.call('XLEN', KEYS[1]) + 100 then
  local fields = redis.call('HGETALL', KEYS[2])
  for j = 1, #fields, 2 do
    if not present(fields[j + 1]) then redis.call('HDEL', KEYS[2], fields[j]) end
  end
end
return out
"#;
static HOLD: LazyLock<Script> = LazyLock::new(|| Script::new(HOLD_LUA));

/// KEYS[1] a plugin's subject holds; ARGV: subject and entry id pairs. Frees each subject
/// the entry named with it holds.
const RELEASE_LUA: &str = r#"
for i = 1, #ARGV, 2 do
  if redis.call('HGET', KEYS[1], ARGV[i]) == ARGV[i + 1] then redis.call('HDEL', KEYS[1], ARGV[i]) end
end
return 0
"#;
static RELEASE: LazyLock<Script> = LazyLock::new(|| Script::new(RELEASE_LUA));

/// Now, in Unix milliseconds, for due times shared by every gateway process.
fn now_ms() -> u64 {
    chrono::Utc::now().timestamp_millis().max(0) as u64
}

/// Dead letters moved per script call: a replay of thousands never blocks Redis for long.
const REPLAY_BATCH: usize = 500;

#[async_trait]
impl Inboxes for RedisStore {
    async fn inbox_push(&self, plugin_id: &str, entries: &[InboxEntry]) -> StoreResult<Pushed> {
        let key = self.keys.inbox(plugin_id);
        let mut pipe = redis::pipe();
        for e in entries {
            let cmd = pipe.cmd("XADD").arg(&key).arg("*");
            for (k, v) in inbox_fields(e) {
                cmd.arg(k).arg(v);
            }
        }
        // Exact trimming: the cap is a promise about memory, and XTRIM counts what it took.
        let cap = self.retention.inbox_maxlen;
        if cap > 0 {
            pipe.cmd("XTRIM").arg(&key).arg("MAXLEN").arg(cap);
        }
        let mut conn = self.conn.clone();
        let mut replies: Vec<Value> = self.run(pipe.query_async(&mut conn)).await?;
        let trimmed = if cap > 0 {
            match replies.pop() {
                Some(Value::Int(n)) => n.max(0) as u64,
                _ => return Err(corrupt("XTRIM reply is not a count")),
            }
        } else {
            0
        };
        let ids = replies
            .iter()
            .map(|id| text(id)?.parse().map_err(|_| corrupt("bad stream id")))
            .collect::<StoreResult<Vec<StreamId>>>()?;
        Ok(Pushed { ids, trimmed })
    }

    async fn inbox_pull(&self, plugin_id: &str, o: PullOptions) -> StoreResult<Vec<Delivered>> {
        let key = self.keys.inbox(plugin_id);
        let mut out = Vec::new();

        // Deliveries whose visibility ran out come back first; those past their last
        // attempt move to the dead letters in the same step.
        let mut inv = CLAIM.prepare_invoke();
        inv.key(&key)
            .key(self.keys.dead_letters(plugin_id))
            .key(self.keys.inbox_failures(plugin_id))
            .key(self.keys.inbox_due(plugin_id))
            .key(self.keys.claim_cursor(plugin_id))
            .arg(GROUP)
            .arg(CONSUMER)
            .arg(o.visibility.as_millis() as u64)
            .arg(o.max)
            .arg(o.max_attempts)
            .arg(self.retention.dead_maxlen)
            .arg(now_ms());
        let reply: Value = match self.invoke(&inv).await {
            Err(StoreError::Unavailable(msg)) if msg.contains("NOGROUP") => {
                self.create_group(&key, GROUP).await?;
                self.invoke(&inv).await?
            }
            other => other?,
        };
        let Value::Array(mut parts) = reply else {
            return Err(corrupt("inbox claim reply is not an array"));
        };
        let (Some(Value::Int(trimmed)), Some(Value::Int(buried)), Some(claimed)) =
            (parts.pop(), parts.pop(), parts.pop())
        else {
            return Err(corrupt("inbox claim reply lacks its parts"));
        };
        if buried > 0 {
            tracing::warn!(
                plugin_id,
                deliveries = buried,
                max_attempts = o.max_attempts,
                "deliveries moved to dead letters"
            );
        }
        if trimmed > 0 {
            tracing::warn!(
                plugin_id,
                trimmed,
                "dead letters over their cap: the oldest were removed"
            );
        }
        let Value::Array(claimed) = claimed else {
            return Err(corrupt("inbox claim reply lacks the claimed entries"));
        };
        for item in claimed {
            let Value::Array(mut item) = item else {
                return Err(corrupt("a claimed entry is not an array"));
            };
            let (Some(fields), Some(Value::Int(attempt)), Some(id)) =
                (item.pop(), item.pop(), item.pop())
            else {
                return Err(corrupt("a claimed entry lacks its parts"));
            };
            let receipt: StreamId = text(&id)?.parse().map_err(|_| corrupt("bad stream id"))?;
            let map = match entries(Value::Array(vec![Value::Array(vec![id, fields])]))?.pop() {
                Some((_, map)) => map,
                None => return Err(corrupt("a claimed entry has no fields")),
            };
            out.push(Delivered {
                receipt,
                attempt: attempt.max(1) as u64,
                entry: inbox_entry(&map)?,
            });
        }

        if out.len() < o.max {
            let wait = if out.is_empty() {
                o.wait
            } else {
                Duration::ZERO
            };
            let reply = self
                .read_group(&key, (GROUP, CONSUMER), o.max - out.len(), wait)
                .await?;
            for (id, map) in group_entries(reply)? {
                out.push(Delivered {
                    receipt: id,
                    attempt: 1,
                    entry: inbox_entry(&map)?,
                });
            }
        }
        Ok(out)
    }

    async fn inbox_ack(&self, plugin_id: &str, receipts: &[StreamId]) -> StoreResult<u64> {
        if receipts.is_empty() {
            return Ok(0);
        }
        let mut inv = ACK.prepare_invoke();
        inv.key(self.keys.inbox(plugin_id))
            .key(self.keys.inbox_failures(plugin_id))
            .key(self.keys.inbox_due(plugin_id))
            .arg(GROUP);
        for r in receipts {
            inv.arg(r.to_string());
        }
        let acked: i64 = self.invoke(&inv).await?;
        Ok(acked.max(0) as u64)
    }

    async fn inbox_nack(
        &self,
        plugin_id: &str,
        receipts: &[StreamId],
        nack: &Nack,
    ) -> StoreResult<u64> {
        if receipts.is_empty() {
            return Ok(0);
        }
        let key = self.keys.inbox(plugin_id);
        // Pretend they have been idle long enough to come back after `retry_after`.
        let idle = nack.visibility.saturating_sub(nack.retry_after).as_millis() as u64;
        let mut inv = NACK.prepare_invoke();
        let due = if nack.retry_after.is_zero() {
            0
        } else {
            now_ms() + nack.retry_after.as_millis() as u64
        };
        inv.key(&key)
            .key(self.keys.dead_letters(plugin_id))
            .key(self.keys.inbox_failures(plugin_id))
            .key(self.keys.inbox_due(plugin_id))
            .arg(GROUP)
            .arg(CONSUMER)
            .arg(idle)
            .arg(match (nack.dead, nack.defer) {
                (true, _) => "1",
                (false, true) => "2",
                (false, false) => "0",
            })
            .arg(nack.reason.as_deref().unwrap_or(""))
            .arg(&nack.at)
            .arg(self.retention.dead_maxlen)
            .arg(due);
        for r in receipts {
            inv.arg(r.to_string());
        }
        let settled: i64 = match self.invoke(&inv).await {
            Err(StoreError::Unavailable(msg)) if msg.contains("NOGROUP") => {
                self.create_group(&key, GROUP).await?;
                self.invoke(&inv).await?
            }
            other => other?,
        };
        Ok(settled.max(0) as u64)
    }

    async fn inbox_depth(&self, plugin_id: &str) -> StoreResult<InboxDepth> {
        let mut inv = DEPTH.prepare_invoke();
        inv.key(self.keys.inbox(plugin_id))
            .key(self.keys.dead_letters(plugin_id))
            .arg(GROUP);
        let (len, in_flight, dead): (u64, u64, u64) = self.invoke(&inv).await?;
        Ok(InboxDepth {
            waiting: len.saturating_sub(in_flight),
            in_flight,
            dead,
        })
    }

    async fn dead_letters(
        &self,
        plugin_id: &str,
        after: Option<StreamId>,
        limit: usize,
    ) -> StoreResult<Vec<DeadLetter>> {
        let start = after.map_or_else(|| "-".to_string(), |a| format!("({a}"));
        self.xrange_from(self.keys.dead_letters(plugin_id), &start, limit)
            .await?
            .into_iter()
            .map(|(id, map)| {
                let failures = match map.get("failures") {
                    Some(_) => serde_json::from_str(&field(&map, "failures")?)
                        .map_err(|e| corrupt(format!("dead letter failures: {e}")))?,
                    None => Vec::new(),
                };
                Ok(DeadLetter {
                    id,
                    attempts: field(&map, "attempts")?.parse().unwrap_or(0),
                    entry: inbox_entry(&map)?,
                    failures,
                })
            })
            .collect()
    }

    async fn replay_dead(&self, plugin_id: &str, ids: Option<&[StreamId]>) -> StoreResult<Pushed> {
        let mut pushed = Pushed {
            ids: Vec::new(),
            trimmed: 0,
        };
        match ids {
            Some(ids) => {
                for chunk in ids.chunks(REPLAY_BATCH) {
                    let moved = self.unbury(plugin_id, Unbury::Ids(chunk)).await?;
                    pushed.ids.extend(moved.ids);
                    pushed.trimmed += moved.trimmed;
                }
            }
            None => loop {
                let moved = self.unbury(plugin_id, Unbury::Oldest(REPLAY_BATCH)).await?;
                let last = moved.ids.len() < REPLAY_BATCH;
                pushed.ids.extend(moved.ids);
                pushed.trimmed += moved.trimmed;
                if last {
                    break;
                }
            },
        }
        Ok(pushed)
    }

    async fn hold_subjects(
        &self,
        plugin_id: &str,
        items: &[(String, StreamId)],
    ) -> StoreResult<Vec<Option<Duration>>> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let mut inv = HOLD.prepare_invoke();
        inv.key(self.keys.inbox(plugin_id))
            .key(self.keys.subject_holds(plugin_id))
            .key(self.keys.inbox_due(plugin_id))
            .arg(now_ms());
        for (subject, id) in items {
            inv.arg(subject).arg(id.to_string());
        }
        let answers: Vec<i64> = self.invoke(&inv).await?;
        if answers.len() != items.len() {
            return Err(corrupt("subject hold reply has the wrong length"));
        }
        Ok(answers
            .into_iter()
            .map(|ms| (ms >= 0).then(|| Duration::from_millis(ms as u64)))
            .collect())
    }

    async fn inbox_touch(
        &self,
        plugin_id: &str,
        receipts: &[StreamId],
        _visibility: Duration,
    ) -> StoreResult<()> {
        if receipts.is_empty() {
            return Ok(());
        }
        // Idle time 0: the visibility timeout counts again from now. JUSTID keeps the
        // delivery count as it is.
        let mut cmd = redis::cmd("XCLAIM");
        cmd.arg(self.keys.inbox(plugin_id))
            .arg(GROUP)
            .arg(CONSUMER)
            .arg(0);
        for r in receipts {
            cmd.arg(r.to_string());
        }
        cmd.arg("JUSTID");
        let _: Value = self.query(&cmd).await?;
        Ok(())
    }

    async fn release_subjects(
        &self,
        plugin_id: &str,
        items: &[(String, StreamId)],
    ) -> StoreResult<()> {
        if items.is_empty() {
            return Ok(());
        }
        let mut inv = RELEASE.prepare_invoke();
        inv.key(self.keys.subject_holds(plugin_id));
        for (subject, id) in items {
            inv.arg(subject).arg(id.to_string());
        }
        let _: i64 = self.invoke(&inv).await?;
        Ok(())
    }

    async fn put_push_health(
        &self,
        plugin_id: &str,
        endpoint: &str,
        health: &EndpointHealth,
    ) -> StoreResult<()> {
        self.hset_json(self.keys.push_health(plugin_id), endpoint, health)
            .await
    }

    async fn push_health(&self, plugin_id: &str) -> StoreResult<Vec<(String, EndpointHealth)>> {
        let raw: Vec<(String, String)> = self
            .query(redis::cmd("HGETALL").arg(self.keys.push_health(plugin_id)))
            .await?;
        let mut out = raw
            .into_iter()
            .map(|(url, json)| {
                serde_json::from_str(&json)
                    .map(|h| (url, h))
                    .map_err(|e| corrupt(format!("push health of {plugin_id}: {e}")))
            })
            .collect::<StoreResult<Vec<_>>>()?;
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }
}

/// Which dead letters one [`UNBURY_LUA`] call moves.
enum Unbury<'a> {
    Oldest(usize),
    Ids(&'a [StreamId]),
}

impl RedisStore {
    async fn unbury(&self, plugin_id: &str, which: Unbury<'_>) -> StoreResult<Pushed> {
        let mut inv = UNBURY.prepare_invoke();
        inv.key(self.keys.inbox(plugin_id))
            .key(self.keys.dead_letters(plugin_id))
            .arg(self.retention.inbox_maxlen);
        match which {
            Unbury::Oldest(n) => {
                inv.arg("oldest").arg(n);
            }
            Unbury::Ids(ids) => {
                inv.arg("ids");
                for id in ids {
                    inv.arg(id.to_string());
                }
            }
        }
        let reply: Value = self.invoke(&inv).await?;
        let Value::Array(mut parts) = reply else {
            return Err(corrupt("dead-letter replay reply is not an array"));
        };
        // {trimmed, ids}: the ids come off the end first.
        let (Some(Value::Array(ids)), Some(Value::Int(trimmed))) = (parts.pop(), parts.pop())
        else {
            return Err(corrupt(
                "dead-letter replay reply lacks ids or the trim count",
            ));
        };
        let ids = ids
            .iter()
            .map(|id| text(id)?.parse().map_err(|_| corrupt("bad stream id")))
            .collect::<StoreResult<Vec<StreamId>>>()?;
        Ok(Pushed {
            ids,
            trimmed: trimmed.max(0) as u64,
        })
    }
}

fn inbox_fields(e: &InboxEntry) -> [(&'static str, &str); 4] {
    [
        ("id", e.event_id.as_str()),
        ("tenant", e.tenant.as_str()),
        ("type", e.event_type.as_str()),
        ("event", e.json.as_str()),
    ]
}

fn inbox_entry(map: &BTreeMap<String, Value>) -> StoreResult<InboxEntry> {
    Ok(InboxEntry {
        event_id: field(map, "id")?,
        tenant: field(map, "tenant")?,
        event_type: field(map, "type")?,
        json: field(map, "event")?,
    })
}
