//! A local, durable spool for verified deliveries the store cannot take in time (Redis down,
//! paused, out of memory, failing over), so a sender that never retries is still answered
//! 2xx and nothing it sent is lost.
//!
//! The spool is a directory of segment files (`<id>.seg`, see [`segment`]) written by one
//! thread: deliveries that arrive while it writes wait and are written and fsynced
//! together (group commit), and each is answered only after its fsync. A drainer reads
//! them back in arrival order ([`Spool::next`]) and records how far it got in `cursor`
//! ([`Spool::done`]); a segment is deleted once drained. After a crash the segments are
//! scanned again from the cursor: a record drained but not yet past the cursor is drained
//! again, which dedupe turns into a duplicate, never a second event. One gateway process
//! owns a spool directory at a time (`lock`, an advisory file lock).

pub mod record;
pub mod segment;

pub use record::SpooledDelivery;

use chrono::{DateTime, Utc};
use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, mpsc};
use std::time::{Duration, Instant};

use segment::Read;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpoolError {
    #[error("the spool is full ({used} of {max} bytes in use)")]
    Full { used: u64, max: u64 },
    #[error("spool I/O: {0}")]
    Io(String),
    #[error("spool directory {0} is in use by another gateway process")]
    Locked(String),
    #[error("{0}")]
    Corrupt(String),
    #[error("the spool writer has stopped")]
    Closed,
}

impl From<io::Error> for SpoolError {
    fn from(e: io::Error) -> Self {
        SpoolError::Io(e.to_string())
    }
}

/// Where the spool lives and how large it may grow.
#[derive(Debug, Clone)]
pub struct SpoolOptions {
    pub dir: PathBuf,
    /// Past this many bytes on disk a delivery is refused (503), never dropped.
    pub max_bytes: u64,
    /// A segment this large is closed and a new one started.
    pub segment_bytes: u64,
}

/// What the spool holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// Deliveries not drained yet.
    pub records: u64,
    /// Bytes of segment files on disk.
    pub bytes: u64,
    /// When the oldest of them was received, once the drainer has looked at it.
    pub oldest: Option<DateTime<Utc>>,
}

/// A place in the spool: a segment and a byte offset in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub segment: u64,
    pub offset: u64,
}

/// The oldest delivery not drained yet.
#[derive(Debug)]
pub struct Next {
    /// Where the record after it starts: give it to [`Spool::done`] once it is handled.
    pub next: Position,
    /// The delivery, or why its bytes cannot be read as one.
    pub delivery: Result<SpooledDelivery, SpoolError>,
}

#[derive(Debug, Clone, Copy)]
struct Seg {
    id: u64,
    /// Bytes acknowledged (fsynced) so far; nothing past this is read.
    len: u64,
    /// Of them, records not drained yet.
    records: u64,
}

struct Shared {
    /// Oldest first; the last is the one being written.
    segments: VecDeque<Seg>,
    cursor: Position,
    records: u64,
    bytes: u64,
    oldest: Option<DateTime<Utc>>,
}

struct Job {
    frame: Vec<u8>,
    received_at: DateTime<Utc>,
    reply: tokio::sync::oneshot::Sender<Result<(), SpoolError>>,
}

pub struct Spool {
    dir: PathBuf,
    shared: Arc<Mutex<Shared>>,
    jobs: mpsc::Sender<Job>,
    ready: Arc<tokio::sync::Notify>,
    /// The segment the drainer reads, kept open between records.
    reader: Mutex<Option<(u64, File)>>,
    /// Until when (ms since `epoch`) the store counts as down: deliveries go straight to
    /// the spool instead of each waiting out the store's timeout.
    down_until_ms: AtomicU64,
    epoch: Instant,
    _lock: File,
}

/// Most deliveries written and fsynced together.
const MAX_BATCH: usize = 4096;
/// Most bytes written and fsynced together.
const MAX_BATCH_BYTES: usize = 8 << 20;

fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    shared.lock().unwrap_or_else(|p| p.into_inner())
}

impl Spool {
    /// Opens (or creates) the spool in `options.dir`, taking it over from a process that
    /// died: what it holds is counted again from the drain cursor, and a write a crash cut
    /// short (never acknowledged) is cut off.
    pub fn open(options: &SpoolOptions) -> Result<Spool, SpoolError> {
        let dir = options.dir.clone();
        std::fs::create_dir_all(&dir)?;
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
        }
        let lock_file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join("lock"))?;
        lock_file.try_lock().map_err(|e| match e {
            std::fs::TryLockError::WouldBlock => SpoolError::Locked(dir.display().to_string()),
            std::fs::TryLockError::Error(e) => e.into(),
        })?;

        let mut ids: Vec<u64> = std::fs::read_dir(&dir)?
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().to_str().and_then(segment::id_of))
            .collect();
        ids.sort_unstable();
        let cursor = read_cursor(&dir)
            .filter(|c| ids.contains(&c.segment))
            .unwrap_or(Position {
                segment: ids.first().copied().unwrap_or(1),
                offset: 0,
            });
        let mut segments = VecDeque::new();
        let (mut records, mut bytes) = (0, 0);
        for (i, &id) in ids.iter().enumerate() {
            let path = segment::path(&dir, id);
            if id < cursor.segment {
                std::fs::remove_file(&path)?;
                continue;
            }
            let from = if id == cursor.segment {
                cursor.offset
            } else {
                0
            };
            let scan = segment::scan(&path, from)?;
            let mut len = scan.len;
            if let Some(why) = scan.bad {
                if i + 1 == ids.len() {
                    // The newest segment was being written when the process died: its tail
                    // was never fsynced, so never acknowledged.
                    tracing::warn!(
                        segment = id,
                        bytes = scan.len - scan.good_end,
                        why,
                        "spool: cutting off a write the crash cut short (it was never acknowledged)"
                    );
                    OpenOptions::new()
                        .write(true)
                        .open(&path)?
                        .set_len(scan.good_end)?;
                    len = scan.good_end;
                } else {
                    let aside = copy_aside(&dir, id, scan.good_end, scan.len)?;
                    tracing::error!(
                        segment = id,
                        bytes = scan.len - scan.good_end,
                        why,
                        copy = %aside.display(),
                        "spool: a segment is damaged past this point; the deliveries after \
                         it cannot be read and were copied aside for inspection"
                    );
                }
            }
            segments.push_back(Seg {
                id,
                len: scan.good_end,
                records: scan.records,
            });
            records += scan.records;
            bytes += len;
        }
        if records == 0 {
            // Everything was drained before the restart: start clean.
            for seg in segments.drain(..) {
                std::fs::remove_file(segment::path(&dir, seg.id))?;
            }
            bytes = 0;
        }
        // Writing always starts a new segment, so recovered ones are only ever read.
        let active = ids.last().map_or(1, |id| id + 1);
        let file = create_segment(&dir, active)?;
        segments.push_back(Seg {
            id: active,
            len: 0,
            records: 0,
        });
        let cursor = if records == 0 {
            Position {
                segment: active,
                offset: 0,
            }
        } else {
            cursor
        };
        let shared = Arc::new(Mutex::new(Shared {
            segments,
            cursor,
            records,
            bytes,
            oldest: None,
        }));
        if records > 0 {
            tracing::info!(
                records,
                bytes,
                dir = %dir.display(),
                "spool opened with deliveries waiting to be drained"
            );
        } else {
            tracing::info!(dir = %dir.display(), "spool opened (empty)");
        }

        let (jobs, rx) = mpsc::channel();
        let ready = Arc::new(tokio::sync::Notify::new());
        let writer = Writer {
            dir: dir.clone(),
            shared: shared.clone(),
            ready: ready.clone(),
            active: file,
            max_bytes: options.max_bytes,
            segment_bytes: options.segment_bytes.max(1),
            buf: Vec::new(),
        };
        std::thread::Builder::new()
            .name("omnigate-spool".into())
            .spawn(move || writer.run(rx))?;
        let spool = Spool {
            dir,
            shared,
            jobs,
            ready,
            reader: Mutex::new(None),
            down_until_ms: AtomicU64::new(0),
            epoch: Instant::now(),
            _lock: lock_file,
        };
        if records > 0 {
            spool.ready.notify_one();
        }
        Ok(spool)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes `delivery` durably; returns once it is fsynced.
    pub async fn append(&self, delivery: &SpooledDelivery) -> Result<(), SpoolError> {
        let mut frame = Vec::new();
        segment::frame(&delivery.encode(), &mut frame);
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.jobs
            .send(Job {
                frame,
                received_at: delivery.received_at,
                reply,
            })
            .map_err(|_| SpoolError::Closed)?;
        answer.await.map_err(|_| SpoolError::Closed)?
    }

    pub fn stats(&self) -> Stats {
        let s = lock(&self.shared);
        Stats {
            records: s.records,
            bytes: s.bytes,
            oldest: s.oldest,
        }
    }

    /// Waits until something was written since the last call (or was waiting at open).
    pub async fn written(&self) {
        self.ready.notified().await
    }

    /// The oldest delivery not drained yet, if any.
    pub fn next(&self) -> Result<Option<Next>, SpoolError> {
        loop {
            let (cursor, seg, last) = {
                let s = lock(&self.shared);
                if s.records == 0 {
                    return Ok(None);
                }
                let Some(i) = s.segments.iter().position(|g| g.id == s.cursor.segment) else {
                    return Err(SpoolError::Corrupt(format!(
                        "the drain cursor names segment {}, which the spool does not hold",
                        s.cursor.segment
                    )));
                };
                (s.cursor, s.segments[i], i + 1 == s.segments.len())
            };
            if cursor.offset >= seg.len {
                if last {
                    return Ok(None);
                }
                self.finish_segment(seg.id)?;
                continue;
            }
            let read = {
                let mut reader = self.reader.lock().unwrap_or_else(|p| p.into_inner());
                if reader.as_ref().is_none_or(|(id, _)| *id != seg.id) {
                    *reader = Some((seg.id, File::open(segment::path(&self.dir, seg.id))?));
                }
                let (_, file) = reader.as_ref().ok_or(SpoolError::Closed)?;
                segment::read_at(file, cursor.offset, seg.len)?
            };
            match read {
                Read::Record { payload, next } => {
                    let delivery = SpooledDelivery::decode(&payload);
                    if let Ok(d) = &delivery {
                        lock(&self.shared).oldest = Some(d.received_at);
                    }
                    return Ok(Some(Next {
                        next: Position {
                            segment: seg.id,
                            offset: next,
                        },
                        delivery,
                    }));
                }
                Read::End => return Ok(None),
                Read::Bad { why } => self.skip_damaged(seg, cursor, why)?,
            }
        }
    }

    /// Records that everything before `next` was handled.
    pub fn done(&self, next: Position) -> Result<(), SpoolError> {
        {
            let mut s = lock(&self.shared);
            s.cursor = next;
            s.records = s.records.saturating_sub(1);
            s.oldest = None;
            if let Some(seg) = s.segments.iter_mut().find(|g| g.id == next.segment) {
                seg.records = seg.records.saturating_sub(1);
            }
        }
        write_cursor(&self.dir, next)
    }

    /// Drops a drained segment that is no longer written to.
    fn finish_segment(&self, id: u64) -> Result<(), SpoolError> {
        let len = {
            let mut s = lock(&self.shared);
            let Some(i) = s.segments.iter().position(|g| g.id == id) else {
                return Ok(());
            };
            if i + 1 == s.segments.len() || s.segments[i].records > 0 {
                return Ok(());
            }
            let Some(seg) = s.segments.remove(i) else {
                return Ok(());
            };
            s.bytes = s.bytes.saturating_sub(seg.len);
            if let Some(following) = s.segments.get(i) {
                s.cursor = Position {
                    segment: following.id,
                    offset: 0,
                };
            }
            seg.len
        };
        *self.reader.lock().unwrap_or_else(|p| p.into_inner()) = None;
        let path = segment::path(&self.dir, id);
        // Its actual size may exceed what was acknowledged (a cut-off tail): remove it all.
        std::fs::remove_file(&path)?;
        tracing::debug!(
            segment = id,
            bytes = len,
            "spool segment drained and removed"
        );
        Ok(())
    }

    /// Bytes that were acknowledged but no longer check out (the disk damaged them): copied
    /// aside for inspection and skipped, loudly.
    fn skip_damaged(&self, seg: Seg, cursor: Position, why: &str) -> Result<(), SpoolError> {
        let aside = copy_aside(&self.dir, seg.id, cursor.offset, seg.len)?;
        let lost = {
            let mut s = lock(&self.shared);
            let lost = s
                .segments
                .iter()
                .find(|g| g.id == seg.id)
                .map_or(0, |g| g.records);
            if let Some(g) = s.segments.iter_mut().find(|g| g.id == seg.id) {
                g.records = 0;
            }
            s.records = s.records.saturating_sub(lost);
            s.cursor = Position {
                segment: seg.id,
                offset: seg.len,
            };
            lost
        };
        tracing::error!(
            segment = seg.id,
            offset = cursor.offset,
            records = lost,
            why,
            copy = %aside.display(),
            "spool: acknowledged deliveries no longer read back (disk damage); their bytes \
             were copied aside and skipped"
        );
        write_cursor(
            &self.dir,
            Position {
                segment: seg.id,
                offset: seg.len,
            },
        )
    }

    /// Marks the store down for `for_`: deliveries meanwhile go straight to the spool.
    pub fn note_store_down(&self, for_: Duration) {
        let until = self.epoch.elapsed() + for_;
        self.down_until_ms
            .store(until.as_millis() as u64, Ordering::Relaxed);
    }

    /// The store took a write again.
    pub fn note_store_up(&self) {
        self.down_until_ms.store(0, Ordering::Relaxed);
    }

    /// Whether the store failed so recently that a delivery should not wait for it.
    pub fn store_known_down(&self) -> bool {
        let until = self.down_until_ms.load(Ordering::Relaxed);
        until != 0 && (self.epoch.elapsed().as_millis() as u64) < until
    }
}

/// The one thread that writes segments.
struct Writer {
    dir: PathBuf,
    shared: Arc<Mutex<Shared>>,
    ready: Arc<tokio::sync::Notify>,
    active: File,
    max_bytes: u64,
    segment_bytes: u64,
    buf: Vec<u8>,
}

impl Writer {
    fn run(mut self, jobs: mpsc::Receiver<Job>) {
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
            if let Err(e) = &result {
                tracing::error!(error = %e, deliveries = batch.len(), "spool write failed");
            }
            if result.is_ok() {
                self.ready.notify_one();
            }
            for job in batch {
                let _ = job.reply.send(result.clone());
            }
        }
    }

    fn commit(&mut self, batch: &[Job]) -> Result<(), SpoolError> {
        let incoming: u64 = batch.iter().map(|j| j.frame.len() as u64).sum();
        let (active, rotate) = {
            let s = lock(&self.shared);
            let active = *s.segments.back().ok_or(SpoolError::Closed)?;
            let rotate = active.len >= self.segment_bytes || (s.records == 0 && active.len > 0);
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
        let was_empty = s.records == 0;
        if let Some(seg) = s.segments.back_mut() {
            seg.len += self.buf.len() as u64;
            seg.records += batch.len() as u64;
        }
        s.records += batch.len() as u64;
        s.bytes += self.buf.len() as u64;
        if was_empty {
            s.oldest = batch.first().map(|j| j.received_at);
        }
        Ok(())
    }

    /// Starts a new segment. When everything was drained, the old ones go at once.
    fn rotate(&mut self, old: Seg) -> Result<Seg, SpoolError> {
        let id = old.id + 1;
        self.active = create_segment(&self.dir, id)?;
        let fresh = Seg {
            id,
            len: 0,
            records: 0,
        };
        let mut s = lock(&self.shared);
        s.segments.push_back(fresh);
        if s.records == 0 {
            while s.segments.len() > 1 {
                if let Some(drained) = s.segments.pop_front() {
                    s.bytes = s.bytes.saturating_sub(drained.len);
                    let _ = std::fs::remove_file(segment::path(&self.dir, drained.id));
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

fn create_segment(dir: &Path, id: u64) -> Result<File, SpoolError> {
    let file = OpenOptions::new()
        .create_new(true)
        .read(true)
        .write(true)
        .open(segment::path(dir, id))?;
    // The new name must survive a crash as surely as the bytes written under it.
    File::open(dir)?.sync_all()?;
    Ok(file)
}

/// Copies bytes `from..to` of a segment to `damaged-<segment>-<offset>.bin` beside it.
fn copy_aside(dir: &Path, id: u64, from: u64, to: u64) -> Result<PathBuf, SpoolError> {
    let aside = dir.join(format!("damaged-{id:020}-{from}.bin"));
    let file = File::open(segment::path(dir, id))?;
    let mut bytes = vec![0u8; to.saturating_sub(from) as usize];
    file.read_exact_at(&mut bytes, from)?;
    std::fs::write(&aside, &bytes)?;
    Ok(aside)
}

/// `cursor`: `<segment> <offset>`. Written by renaming a complete file over it, so it is
/// the old cursor or the new one, never a mix; a lost update only means a record drained
/// again (a duplicate dedupe absorbs).
fn write_cursor(dir: &Path, at: Position) -> Result<(), SpoolError> {
    let tmp = dir.join("cursor.tmp");
    std::fs::write(&tmp, format!("{} {}\n", at.segment, at.offset))?;
    std::fs::rename(&tmp, dir.join("cursor"))?;
    Ok(())
}

fn read_cursor(dir: &Path) -> Option<Position> {
    let text = std::fs::read_to_string(dir.join("cursor")).ok()?;
    let (segment, offset) = text.trim().split_once(' ')?;
    Some(Position {
        segment: segment.parse().ok()?,
        offset: offset.parse().ok()?,
    })
}

#[cfg(test)]
mod tests;
