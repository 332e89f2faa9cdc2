//! A local, durable spool for verified deliveries the store cannot take in time (Redis down,
//! paused, out of memory, failing over), so a sender that never retries is still answered
//! 2xx and nothing it sent is lost.
//!
//! The spool is a directory of segment files (`<id>.seg`, framing in [`segment`]) written by
//! one thread with group commit ([`writer`]); each delivery is answered only after its
//! fsync. A drainer reads them back in arrival order ([`Spool::next`]) and records how far
//! it got ([`Spool::done`], persisted in [`cursor`]); a segment is deleted once the cursor
//! has passed its end. Whether everything was drained is decided by that position alone,
//! never by a counter. After a crash the segments are scanned again from the cursor: a
//! record drained but not yet past the persisted cursor is drained again, which dedupe turns
//! into a duplicate, never a second event. One gateway process owns a spool directory at a
//! time (`lock`, an advisory file lock).

mod cursor;
pub mod record;
pub mod segment;
mod writer;

pub use record::SpooledDelivery;

use chrono::{DateTime, Utc};
use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
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
    /// Records that could not be read back since the spool was opened (damaged on disk;
    /// their bytes were copied to `damaged-*.bin`).
    pub unreadable: u64,
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
}

struct Shared {
    /// Oldest first; the last is the one being written.
    segments: VecDeque<Seg>,
    cursor: Position,
    /// Deliveries not drained yet: a figure for metrics, never a reason to delete.
    records: u64,
    bytes: u64,
    oldest: Option<DateTime<Utc>>,
    /// `done` calls since the cursor was last written to disk.
    unpersisted: u32,
}

impl Shared {
    /// Whether the cursor has passed every acknowledged byte.
    fn drained(&self) -> bool {
        let Some(i) = self
            .segments
            .iter()
            .position(|g| g.id == self.cursor.segment)
        else {
            return self.segments.iter().all(|g| g.len == 0);
        };
        self.cursor.offset >= self.segments[i].len
            && self.segments.iter().skip(i + 1).all(|g| g.len == 0)
    }
}

pub struct Spool {
    dir: PathBuf,
    shared: Arc<Mutex<Shared>>,
    jobs: mpsc::Sender<writer::Job>,
    ready: Arc<tokio::sync::Notify>,
    writer_alive: Arc<AtomicBool>,
    max_bytes: u64,
    /// The segment the drainer reads, kept open between records.
    reader: Mutex<Option<(u64, File)>>,
    unreadable: AtomicU64,
    /// Until when (ms since `epoch`) the store counts as down: deliveries go straight to
    /// the spool instead of each waiting out the store's timeout.
    down_until_ms: AtomicU64,
    epoch: Instant,
    _lock: File,
}

/// The drain cursor is written to disk after this many records (and whenever the drain
/// runs dry): a crash drains at most this many again, as duplicates.
const PERSIST_EVERY: u32 = 64;

fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    shared.lock().unwrap_or_else(|p| p.into_inner())
}

impl Spool {
    /// Opens (or creates) the spool in `options.dir`, taking it over from a process that
    /// died: what it holds is counted again from the drain cursor; bytes that are no frame
    /// (a write a crash cut short, or damage) are copied aside and cut off.
    pub fn open(options: &SpoolOptions) -> Result<Spool, SpoolError> {
        let dir = options.dir.clone();
        if !dir.exists() {
            std::fs::create_dir_all(&dir)?;
            // Deliveries hold personal data: only this user reads them. An existing
            // directory (a volume's root) keeps the permissions its owner gave it.
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
        let saved = cursor::read(&dir);
        let start = saved
            .filter(|c| ids.contains(&c.segment))
            .unwrap_or(Position {
                segment: ids.first().copied().unwrap_or(0),
                offset: 0,
            });
        let mut segments = VecDeque::new();
        let (mut records, mut bytes) = (0, 0);
        for (i, &id) in ids.iter().enumerate() {
            let path = segment::path(&dir, id);
            if id < start.segment {
                // Drained before the restart.
                std::fs::remove_file(&path)?;
                continue;
            }
            let from = if id == start.segment { start.offset } else { 0 };
            let scan = segment::scan(&path, from)?;
            if let Some(why) = scan.broken {
                let aside = copy_aside(&dir, id, scan.good_end, scan.len)?;
                let newest = i + 1 == ids.len();
                tracing::error!(
                    segment = id,
                    bytes = scan.len - scan.good_end,
                    why,
                    copy = %aside.display(),
                    "spool: bytes that are no frame were copied aside and cut off{}",
                    if newest {
                        " (at the end of the newest segment: most likely a write the crash cut short, never acknowledged)"
                    } else {
                        ""
                    }
                );
                OpenOptions::new()
                    .write(true)
                    .open(&path)?
                    .set_len(scan.good_end)?;
            }
            segments.push_back(Seg {
                id,
                len: scan.good_end,
            });
            records += scan.frames;
            bytes += scan.good_end;
        }
        if records == 0 {
            // Everything was drained before the restart: start clean.
            for seg in segments.drain(..) {
                std::fs::remove_file(segment::path(&dir, seg.id))?;
            }
            bytes = 0;
        }
        // Writing always starts a new segment, numbered past every id the cursor or a file
        // ever used, so a cursor can never name a segment written later.
        let active = ids
            .last()
            .copied()
            .max(saved.map(|c| c.segment))
            .unwrap_or(0)
            + 1;
        let file = create_segment(&dir, active)?;
        segments.push_back(Seg { id: active, len: 0 });
        let start = if records == 0 {
            Position {
                segment: active,
                offset: 0,
            }
        } else {
            start
        };
        cursor::write(&dir, start)?;
        let shared = Arc::new(Mutex::new(Shared {
            segments,
            cursor: start,
            records,
            bytes,
            oldest: None,
            unpersisted: 0,
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
        let writer_alive = Arc::new(AtomicBool::new(true));
        let writer = writer::Writer {
            dir: dir.clone(),
            shared: shared.clone(),
            ready: ready.clone(),
            alive: writer_alive.clone(),
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
            writer_alive,
            max_bytes: options.max_bytes,
            reader: Mutex::new(None),
            unreadable: AtomicU64::new(0),
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
            .send(writer::Job {
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
            unreadable: self.unreadable.load(Ordering::Relaxed),
        }
    }

    /// Counts a record that was read but is no delivery this gateway can decode.
    pub fn count_unreadable(&self) {
        self.unreadable.fetch_add(1, Ordering::Relaxed);
    }

    /// Whether a delivery could be written now (below the size cap, the writer running).
    pub fn accepting(&self) -> bool {
        self.writer_alive.load(Ordering::Relaxed) && lock(&self.shared).bytes < self.max_bytes
    }

    /// Waits until something was written since the last call (or was waiting at open).
    pub async fn written(&self) {
        self.ready.notified().await
    }

    /// The oldest delivery not drained yet, if any. Blocking file I/O: call it off the
    /// async workers.
    pub fn next(&self) -> Result<Option<Next>, SpoolError> {
        loop {
            let (cursor, seg, last) = {
                let mut s = lock(&self.shared);
                let i = match s.segments.iter().position(|g| g.id == s.cursor.segment) {
                    Some(i) => i,
                    None => {
                        // Only a drained segment is ever removed: go on with the oldest.
                        let first = s.segments.front().map_or(0, |g| g.id);
                        s.cursor = Position {
                            segment: first,
                            offset: 0,
                        };
                        0
                    }
                };
                let Some(seg) = s.segments.get(i).copied() else {
                    return Ok(None);
                };
                (s.cursor, seg, i + 1 == s.segments.len())
            };
            if cursor.offset >= seg.len {
                if last {
                    let mut s = lock(&self.shared);
                    if s.drained() {
                        s.records = 0;
                        s.oldest = None;
                    }
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
                Read::Damaged { next } => {
                    self.set_aside(seg.id, cursor.offset, next, "a checksum mismatch", 1)?;
                }
                Read::Broken { why } => {
                    // Where the next frame starts is not known: the rest of what was
                    // acknowledged in this segment is set aside whole.
                    self.set_aside(seg.id, cursor.offset, seg.len, why, 0)?;
                }
                Read::End => return Ok(None),
            }
        }
    }

    /// Records that everything before `next` was handled.
    pub fn done(&self, next: Position) -> Result<(), SpoolError> {
        let persist = {
            let mut s = lock(&self.shared);
            s.cursor = next;
            s.records = s.records.saturating_sub(1);
            s.oldest = None;
            s.unpersisted += 1;
            s.unpersisted >= PERSIST_EVERY
        };
        if persist { self.persist() } else { Ok(()) }
    }

    /// Writes the drain cursor to disk, if it moved since it last was.
    pub fn persist(&self) -> Result<(), SpoolError> {
        let at = {
            let mut s = lock(&self.shared);
            if s.unpersisted == 0 {
                return Ok(());
            }
            s.unpersisted = 0;
            s.cursor
        };
        cursor::write(&self.dir, at)
    }

    /// Drops a segment the cursor has passed that is no longer written to.
    fn finish_segment(&self, id: u64) -> Result<(), SpoolError> {
        let (len, next) = {
            let mut s = lock(&self.shared);
            let Some(i) = s.segments.iter().position(|g| g.id == id) else {
                return Ok(());
            };
            let passed = s.cursor.segment == id && s.cursor.offset >= s.segments[i].len;
            if i + 1 == s.segments.len() || !passed {
                return Ok(());
            }
            let Some(seg) = s.segments.remove(i) else {
                return Ok(());
            };
            s.bytes = s.bytes.saturating_sub(seg.len);
            let next = s.segments.get(i).map_or(id + 1, |g| g.id);
            s.cursor = Position {
                segment: next,
                offset: 0,
            };
            s.unpersisted += 1;
            (seg.len, next)
        };
        *self.reader.lock().unwrap_or_else(|p| p.into_inner()) = None;
        // The cursor leaves the file before the file goes.
        self.persist()?;
        std::fs::remove_file(segment::path(&self.dir, id))?;
        tracing::debug!(
            segment = id,
            bytes = len,
            next,
            "spool segment drained and removed"
        );
        Ok(())
    }

    /// Acknowledged bytes that no longer read back (the disk damaged them): copied aside
    /// for inspection, skipped, counted and logged loudly. `frames` is how many records they
    /// are known to hold (0 when unknown).
    fn set_aside(
        &self,
        id: u64,
        from: u64,
        to: u64,
        why: &str,
        frames: u64,
    ) -> Result<(), SpoolError> {
        let aside = copy_aside(&self.dir, id, from, to)?;
        self.unreadable.fetch_add(frames.max(1), Ordering::Relaxed);
        {
            let mut s = lock(&self.shared);
            s.cursor = Position {
                segment: id,
                offset: to,
            };
            s.records = s.records.saturating_sub(frames.max(1));
            s.unpersisted += 1;
        }
        tracing::error!(
            segment = id,
            offset = from,
            bytes = to - from,
            why,
            copy = %aside.display(),
            "spool: acknowledged deliveries no longer read back (disk damage); their bytes \
             were copied aside and skipped"
        );
        self.persist()
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

impl Drop for Spool {
    /// A gateway that stops leaves the exact cursor behind.
    fn drop(&mut self) {
        if let Err(e) = self.persist() {
            tracing::warn!(error = %e, "spool cursor not written at close");
        }
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

/// Copies bytes `from..to` of a segment to `damaged-<segment>-<offset>.bin` beside it,
/// in pieces (a damaged stretch can be a whole segment).
fn copy_aside(dir: &Path, id: u64, from: u64, to: u64) -> Result<PathBuf, SpoolError> {
    let aside = dir.join(format!("damaged-{id:020}-{from}.bin"));
    let file = File::open(segment::path(dir, id))?;
    let out = File::create(&aside)?;
    let mut buf = vec![0u8; 1 << 20];
    let mut at = from;
    while at < to {
        let n = ((to - at) as usize).min(buf.len());
        file.read_exact_at(&mut buf[..n], at)?;
        out.write_all_at(&buf[..n], at - from)?;
        at += n as u64;
    }
    out.sync_all()?;
    Ok(aside)
}

#[cfg(test)]
mod tests;
