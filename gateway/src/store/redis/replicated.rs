//! Writes a sender is answered for, confirmed by replicas when asked
//! (`OMNIGATE_REDIS_WAIT_REPLICAS`). Redis replication is asynchronous: a primary that dies
//! after answering can take the write with it when a replica is promoted (Sentinel,
//! Cluster). With `wait_replicas` set, the script is pipelined with `WAIT n timeout` on the
//! same connection, so the `WAIT` covers exactly this write (a `WAIT` sent on its own could
//! reach a new connection, or a newly promoted primary, that has written nothing and answer
//! at once). Fewer replicas than asked within the timeout is
//! [`StoreError::Unavailable`], as any outage: the delivery is spooled (or answered 503), and the drain
//! finds the write already there (a duplicate) if it did survive.

use redis::{Cmd, ErrorKind, Script, ServerErrorKind, ToRedisArgs, Value};

use super::RedisStore;
use crate::store::{StoreError, StoreResult};

/// One script call, built as `EVALSHA` so it can share a pipeline with `WAIT`.
pub(super) struct ScriptCall {
    script: &'static Script,
    keys: Vec<Vec<u8>>,
    args: Vec<Vec<u8>>,
}

impl ScriptCall {
    pub(super) fn new(script: &'static Script) -> Self {
        ScriptCall {
            script,
            keys: Vec::with_capacity(4),
            args: Vec::with_capacity(16),
        }
    }

    pub(super) fn key(&mut self, key: impl ToRedisArgs) -> &mut Self {
        key.write_redis_args(&mut self.keys);
        self
    }

    pub(super) fn arg(&mut self, arg: impl ToRedisArgs) -> &mut Self {
        arg.write_redis_args(&mut self.args);
        self
    }

    fn evalsha(&self) -> Cmd {
        let mut cmd = redis::cmd("EVALSHA");
        cmd.arg(self.script.get_hash()).arg(self.keys.len());
        for k in &self.keys {
            cmd.arg(k.as_slice());
        }
        for a in &self.args {
            cmd.arg(a.as_slice());
        }
        cmd
    }
}

impl RedisStore {
    /// Runs `call` (loading its script first where Redis lost it) and, with
    /// `wait_replicas`, waits in the same round trip for that many replicas to have it.
    pub(super) async fn call_acknowledged(&self, call: &ScriptCall) -> StoreResult<Value> {
        let mut pipe = redis::pipe();
        pipe.add_command(call.evalsha());
        if self.wait_replicas > 0 {
            // 0 would be "forever"; the request's own deadline bounds it anyway.
            let timeout_ms = self.timeout.as_millis().clamp(1, u128::from(u32::MAX)) as u64;
            pipe.cmd("WAIT").arg(self.wait_replicas).arg(timeout_ms);
        }
        let mut conn = self.conn.clone();
        let sent = async {
            match pipe.query_async::<Vec<Value>>(&mut conn).await {
                Err(e) if e.kind() == ErrorKind::Server(ServerErrorKind::NoScript) => {
                    call.script.load_async(&mut conn).await?;
                    pipe.query_async(&mut conn).await
                }
                other => other,
            }
        };
        let mut replies = self.run(sent).await?.into_iter();
        let reply = replies
            .next()
            .ok_or_else(|| StoreError::Corrupt("a script call answered nothing".into()))?;
        if self.wait_replicas == 0 {
            return Ok(reply);
        }
        let replicas = match replies.next() {
            Some(Value::Int(n)) => n,
            other => {
                return Err(StoreError::Corrupt(format!(
                    "WAIT answered {other:?} instead of a count"
                )));
            }
        };
        if replicas < i64::from(self.wait_replicas) {
            return Err(StoreError::Unavailable(format!(
                "written, but confirmed by {replicas} of {} replicas within {:?}",
                self.wait_replicas, self.timeout
            )));
        }
        Ok(reply)
    }
}
