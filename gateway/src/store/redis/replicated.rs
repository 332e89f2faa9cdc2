//! Writes a sender is answered for, confirmed by replicas when asked
//! (`OMNIGATE_REDIS_WAIT_REPLICAS`). Redis replication is asynchronous: a primary that dies
//! after answering can take the write with it when a replica is promoted (Sentinel,
//! Cluster). With `wait_replicas` set, the script is pipelined with an `INCR` of the
//! partition's fence key and `WAIT n timeout`, on the same connection:
//! - `WAIT` covers what *this connection* wrote, so a `WAIT` sent on its own could reach a
//!   new connection, or a newly promoted primary, that has written nothing, and answer at
//!   once; in one pipeline it cannot.
//! - The fence write makes a duplicate (which writes nothing) wait too: replication is in
//!   order, so once a replica has the fence it has the partition's earlier writes,
//!   whichever process or connection made them.
//! - `WAIT` blocks its connection until a replica answers, so these writes go over a small
//!   pool of connections of their own ([`POOL`]), never the one reads and pulls share.
//!
//! Fewer replicas than asked within half the store timeout is
//! [`StoreError::Unavailable`], as any outage: the delivery is spooled (or answered 503), and
//! the drain finds the write already there (a duplicate) if it did survive.

use redis::{Cmd, ErrorKind, Script, ServerErrorKind, ToRedisArgs, Value};
use std::sync::atomic::Ordering;

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

/// Connections per store for writes that wait for replicas.
pub(super) const POOL: usize = 4;

impl RedisStore {
    /// Runs `call` (loading its script first where Redis lost it) and, with
    /// `wait_replicas`, waits in the same round trip for that many replicas to have it and
    /// everything written before it in `partition`.
    pub(super) async fn call_acknowledged(
        &self,
        partition: u32,
        call: &ScriptCall,
    ) -> StoreResult<Value> {
        let mut pipe = redis::pipe();
        pipe.add_command(call.evalsha());
        let mut conn = if self.wait_replicas > 0 {
            // Half the store timeout: Redis answers with its count before the client gives
            // up, so the log says how many replicas confirmed rather than "no answer".
            let wait_ms = (self.timeout.as_millis() / 2).clamp(1, u128::from(u32::MAX)) as u64;
            pipe.cmd("INCR")
                .arg(self.keys.replication_fence(partition))
                .ignore()
                .cmd("WAIT")
                .arg(self.wait_replicas)
                .arg(wait_ms);
            let next = self.acked_next.fetch_add(1, Ordering::Relaxed);
            self.acked[next % self.acked.len()].clone()
        } else {
            self.conn.clone()
        };
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
                "written, but confirmed by {replicas} of {} replicas within {} ms",
                self.wait_replicas,
                self.timeout.as_millis() / 2
            )));
        }
        Ok(reply)
    }

    /// At start, with `wait_replicas`: `WAIT` must be allowed (an ACL or a renamed command
    /// would make every delivery an outage), and the replicas there now are logged.
    pub async fn check_replicas(&self) -> StoreResult<()> {
        if self.wait_replicas == 0 {
            return Ok(());
        }
        // WAIT 0 0 returns at once: how many replicas have this connection's writes (all
        // connected ones, as it wrote nothing). On a cluster, the fewest of any primary.
        let mut conn = self.acked[0].clone();
        let mut wait = redis::cmd("WAIT");
        wait.arg(0).arg(0);
        let connected: i64 = self.run(wait.query_async(&mut conn)).await.map_err(|e| {
            StoreError::Config(format!(
                "OMNIGATE_REDIS_WAIT_REPLICAS is set but Redis refuses WAIT ({e}): allow \
                     the command to the gateway's user, or set it to 0"
            ))
        })?;
        if connected < i64::from(self.wait_replicas) {
            tracing::warn!(
                connected,
                wanted = self.wait_replicas,
                "fewer Redis replicas than OMNIGATE_REDIS_WAIT_REPLICAS: deliveries are \
                 spooled (or answered 503) until enough replicas are connected"
            );
        } else {
            tracing::info!(
                connected,
                wanted = self.wait_replicas,
                "each delivery waits for Redis replicas to confirm it"
            );
        }
        Ok(())
    }
}
