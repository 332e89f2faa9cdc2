//! The one thread that writes segments. Deliveries that arrive while it writes and fsyncs
//! wait in its channel and are written and fsynced together next (group commit); each is
//! answered only after the fsync that covers it.

use chrono::{DateTime, Utc};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};

use super::{Position, Seg, Shared, SpoolError, create_segment, lock, segment};

/// Most deliveries written and fsynced together.
const MAX_BATCH: usize = 4096;
/// Most bytes written and fsynced together.
const MAX_BATCH_BYTES: usize = 8 << 20;

pub(super) struct Job {
    pub frame: Vec<u8>,
    pub received_at: DateTime<Utc>,
    pub reply: tokio::sync::oneshot::Sender<Result<(), SpoolError>>,
}

pub(super) struct Writer {
    pub dir: PathBuf,
    pub shared: Arc<Mutex<Shared>>,
    pub ready: Arc<tokio::sync::Notify>,
    pub alive: Arc<AtomicBool>,
    pub active: File,
    pub max_bytes: u64,
    pub segment_bytes: u64,
    pub buf: Vec<u8>,
}

impl Writer {
    pub fn run(mut self, jobs: mpsc::Receiver<Job>) {
        // Ends when the spool (the only sender) is dropped.
        while let Ok(first) = jobs.recv() {
            let mut size = first.frame.len();
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH && size < MAX_BATCH_BYTES {
                match jobs.try_recv() {
                    Ok(job) => {
                        size += job.frame.len();
                        batch.push(job);
                    }
                    Err(_) => break,
                }
            }
            let result = self.commit(&batch);
            match &result {
                Ok(()) => self.ready.notify_one(),
                Err(e) => {
                    tracing::error!(error = %e, deliveries = batch.len(), "spool write failed")
                }
            }
            for job in batch {
                let _ = job.reply.send(result.clone());
            }
        }
        self.alive.store(false, Ordering::Relaxed);
    }

    fn commit(&mut self, batch: &[Job]) -> Result<(), SpoolError> {
        let incoming: u64 = batch.iter().map(|j| j.frame.len() as u64).sum();
        let (active, rotate) = {
            let s = lock(&self.shared);
            let active = *s.segments.back().ok_or(SpoolError::Closed)?;
            // A full segment is closed; after a drain that read everything, writing starts
            // over in a fresh file so the drained ones can go.
            let rotate = active.len >= self.segment_bytes || (active.len > 0 && s.drained());
            (active, rotate)
        };
        let active = if rotate { self.rotate(active)? } else { active };
        {
            let s = lock(&self.shared);
            if s.bytes + incoming > self.max_bytes {
                return Err(SpoolError::Full {
                    used: s.bytes,
                    max: self.max_bytes,
                });
            }
        }

        self.buf.clear();
        for job in batch {
            self.buf.extend_from_slice(&job.frame);
        }
        let written = self
            .active
            .write_all_at(&self.buf, active.len)
            .and_then(|()| self.active.sync_data());
        if let Err(e) = written {
            // Whatever part landed is no frame anyone was promised: cut it off so the next
            // write starts on a frame boundary.
            let _ = self.active.set_len(active.len);
            return Err(e.into());
        }
        let mut s = lock(&self.shared);
        if s.records == 0 {
            s.oldest = batch.first().map(|j| j.received_at);
        }
        if let Some(seg) = s.segments.back_mut() {
            seg.len += self.buf.len() as u64;
        }
        s.records += batch.len() as u64;
        s.bytes += self.buf.len() as u64;
        Ok(())
    }

    /// Starts a new segment. When everything was drained, the old ones go at once.
    fn rotate(&mut self, old: Seg) -> Result<Seg, SpoolError> {
        let id = old.id + 1;
        self.active = create_segment(&self.dir, id)?;
        let fresh = Seg { id, len: 0 };
        let mut s = lock(&self.shared);
        s.segments.push_back(fresh);
        if s.drained() {
            while s.segments.len() > 1 {
                if let Some(drained) = s.segments.pop_front() {
                    s.bytes = s.bytes.saturating_sub(drained.len);
                    if let Err(e) = std::fs::remove_file(segment::path(&self.dir, drained.id)) {
                        tracing::warn!(error = %e, segment = drained.id, "cannot remove a drained spool segment");
                    }
                }
            }
            s.cursor = Position {
                segment: id,
                offset: 0,
            };
        }
        Ok(fresh)
    }
}
