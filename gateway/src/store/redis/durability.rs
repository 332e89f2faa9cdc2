//! What Redis's persistence settings mean for acknowledged deliveries, said once at start.
//! A 2xx means Redis confirmed the write; whether that write survives a Redis crash is up
//! to `appendonly` and `appendfsync`, which the gateway cannot choose but must not hide.

/// Redis's persistence settings, as `CONFIG GET` answers them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Persistence {
    pub appendonly: String,
    pub appendfsync: String,
    /// RDB snapshot rules (`3600 1 300 100 60 10000`, or empty for none).
    pub save: String,
}

/// How much a Redis crash can take of what was acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Risk {
    /// Every acknowledged write was fsynced first.
    None,
    /// About the last second of acknowledged writes.
    LastSecond,
    /// Whatever the OS had not flushed yet (typically up to 30 s).
    OsFlush,
    /// Everything since the last RDB snapshot, or everything.
    SinceSnapshot,
}

impl Persistence {
    pub fn risk(&self) -> Risk {
        if self.appendonly != "yes" {
            return Risk::SinceSnapshot;
        }
        match self.appendfsync.as_str() {
            "always" => Risk::None,
            "everysec" => Risk::LastSecond,
            _ => Risk::OsFlush,
        }
    }

    /// One sentence for the start-up log.
    pub fn meaning(&self) -> String {
        match self.risk() {
            Risk::None => "appendonly yes, appendfsync always: every acknowledged delivery \
                           was fsynced by Redis and survives a Redis crash (a failover to a \
                           replica can still lose what was not replicated yet: replication \
                           is asynchronous)"
                .into(),
            Risk::LastSecond => "appendonly yes, appendfsync everysec: a Redis crash can lose \
                                 about the last second of acknowledged deliveries (set \
                                 appendfsync always to lose none, at some throughput)"
                .into(),
            Risk::OsFlush => format!(
                "appendonly yes, appendfsync {}: a Redis crash can lose whatever the OS had \
                 not flushed, typically up to 30 s of acknowledged deliveries (set appendfsync \
                 always or everysec)",
                self.appendfsync
            ),
            Risk::SinceSnapshot if self.save.trim().is_empty() => {
                "REDIS PERSISTS NOTHING (appendonly no, no save rules): a Redis restart loses \
                 every event, source and mark. Set appendonly yes and appendfsync always."
                    .into()
            }
            Risk::SinceSnapshot => format!(
                "appendonly no: a Redis crash loses everything acknowledged since the last \
                 RDB snapshot (save {:?}). Set appendonly yes and appendfsync always.",
                self.save
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(appendonly: &str, appendfsync: &str, save: &str) -> Persistence {
        Persistence {
            appendonly: appendonly.into(),
            appendfsync: appendfsync.into(),
            save: save.into(),
        }
    }

    #[test]
    fn each_setting_says_what_a_crash_can_take() {
        assert_eq!(p("yes", "always", "").risk(), Risk::None);
        assert_eq!(p("yes", "everysec", "").risk(), Risk::LastSecond);
        assert_eq!(p("yes", "no", "").risk(), Risk::OsFlush);
        assert_eq!(p("no", "always", "3600 1").risk(), Risk::SinceSnapshot);
        assert!(
            p("no", "everysec", "")
                .meaning()
                .contains("PERSISTS NOTHING")
        );
        assert!(
            p("no", "everysec", "3600 1")
                .meaning()
                .contains("since the last RDB snapshot")
        );
        assert!(p("yes", "everysec", "").meaning().contains("last second"));
    }
}
