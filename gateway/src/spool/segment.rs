//! The on-disk framing of spool segments: `length (u32 LE) | CRC-32 of the length bytes |
//! CRC-32 of the payload | payload`, back to back. A frame is only acknowledged after it
//! was fsynced, so a frame cut short at the end of the newest segment is a write the crash
//! interrupted and that nobody was told had landed. The length has a checksum of its own:
//! a frame whose payload was damaged can be stepped over, because where the next frame
//! starts is still known.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Bytes before each payload.
pub const FRAME_HEADER: u64 = 12;
/// No payload is larger (the gateway refuses to start with a body limit near it).
pub const MAX_PAYLOAD: u32 = 1 << 30;

/// Appends the frame of `payload` to `out`.
pub fn frame(payload: &[u8], out: &mut Vec<u8>) {
    let len = u32::try_from(payload.len())
        .unwrap_or(u32::MAX)
        .to_le_bytes();
    out.extend_from_slice(&len);
    out.extend_from_slice(&crc32fast::hash(&len).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    out.extend_from_slice(payload);
}

/// What is at an offset of a segment.
#[derive(Debug, PartialEq, Eq)]
pub enum Read {
    /// A whole frame whose checksums match; the next frame starts at `next`.
    Record { payload: Vec<u8>, next: u64 },
    /// A frame whose length checks out but whose payload does not: damaged, and skippable.
    Damaged { next: u64 },
    /// Exactly the end of what may be read.
    End,
    /// No frame can be read from here on: a header cut short or damaged, or a frame longer
    /// than what is there. Where a next frame would start is not known.
    Broken { why: &'static str },
}

fn le(bytes: &[u8]) -> u32 {
    u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
}

/// Reads the frame at `offset`, reading nothing at or past `limit`.
pub fn read_at(file: &File, offset: u64, limit: u64) -> io::Result<Read> {
    if offset >= limit {
        return Ok(Read::End);
    }
    if limit - offset < FRAME_HEADER {
        return Ok(Read::Broken {
            why: "a frame header cut short",
        });
    }
    let mut header = [0u8; FRAME_HEADER as usize];
    file.read_exact_at(&mut header, offset)?;
    let (len, len_crc, crc) = (le(&header[0..4]), le(&header[4..8]), le(&header[8..12]));
    if crc32fast::hash(&header[0..4]) != len_crc || len > MAX_PAYLOAD {
        return Ok(Read::Broken {
            why: "a damaged frame header",
        });
    }
    let next = offset + FRAME_HEADER + u64::from(len);
    if next > limit {
        return Ok(Read::Broken {
            why: "a frame cut short",
        });
    }
    let mut payload = vec![0u8; len as usize];
    file.read_exact_at(&mut payload, offset + FRAME_HEADER)?;
    if crc32fast::hash(&payload) != crc {
        return Ok(Read::Damaged { next });
    }
    Ok(Read::Record { payload, next })
}

/// What a segment holds from an offset on.
#[derive(Debug, PartialEq, Eq)]
pub struct Scan {
    /// Frames from the offset (intact or with a damaged payload: both take a drain step).
    pub frames: u64,
    /// Of them, frames whose payload is damaged.
    pub damaged: u64,
    /// Where readable frames end.
    pub good_end: u64,
    /// The file's length.
    pub len: u64,
    /// Why the bytes past `good_end` are no frames, when there are any.
    pub broken: Option<&'static str>,
}

/// Walks the frames of `path` from `from` to the end of the file.
pub fn scan(path: &Path, from: u64) -> io::Result<Scan> {
    let file = File::open(path)?;
    let len = file.metadata()?.len();
    let mut scan = Scan {
        frames: 0,
        damaged: 0,
        good_end: from.min(len),
        len,
        broken: None,
    };
    loop {
        match read_at(&file, scan.good_end, len)? {
            Read::Record { next, .. } => {
                scan.frames += 1;
                scan.good_end = next;
            }
            Read::Damaged { next } => {
                scan.frames += 1;
                scan.damaged += 1;
                scan.good_end = next;
            }
            Read::End => return Ok(scan),
            Read::Broken { why } => {
                scan.broken = Some(why);
                return Ok(scan);
            }
        }
    }
}

/// The file of segment `id` in `dir`; names sort in id order.
pub fn path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("{id:020}.seg"))
}

/// The id of a segment file name, if it is one.
pub fn id_of(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".seg")?;
    (digits.len() == 20 && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.parse().ok())
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn temp_file(bytes: &[u8]) -> (PathBuf, File) {
        let dir = std::env::temp_dir().join(format!("og-seg-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = path(&dir, 1);
        let mut f = File::create(&p).unwrap();
        f.write_all(bytes).unwrap();
        (p.clone(), File::open(p).unwrap())
    }

    #[test]
    fn frames_read_back_and_a_torn_tail_is_found() {
        let mut bytes = Vec::new();
        frame(b"first", &mut bytes);
        frame(b"", &mut bytes);
        frame(b"third", &mut bytes);
        let whole = bytes.len() as u64;
        // A crash in the middle of writing a fourth frame.
        let mut torn = Vec::new();
        frame(b"fourth, cut short", &mut torn);
        bytes.extend_from_slice(&torn[..torn.len() - 3]);
        let (p, f) = temp_file(&bytes);

        let Read::Record { payload, next } = read_at(&f, 0, whole).unwrap() else {
            panic!("first frame")
        };
        assert_eq!((payload.as_slice(), next), (&b"first"[..], 17));
        assert!(
            matches!(read_at(&f, 17, whole).unwrap(), Read::Record { payload, .. } if payload.is_empty())
        );
        assert_eq!(read_at(&f, whole, whole).unwrap(), Read::End);
        assert_eq!(
            scan(&p, 0).unwrap(),
            Scan {
                frames: 3,
                damaged: 0,
                good_end: whole,
                len: bytes.len() as u64,
                broken: Some("a frame cut short")
            }
        );
        assert_eq!(scan(&p, 17).unwrap().frames, 2);
    }

    #[test]
    fn a_damaged_payload_is_stepped_over_and_a_damaged_length_stops_the_walk() {
        let mut bytes = Vec::new();
        frame(b"an order", &mut bytes);
        let second = bytes.len();
        frame(b"another order", &mut bytes);
        frame(b"a third", &mut bytes);
        let last = bytes.len() - 1;
        let mut flipped = bytes.clone();
        flipped[second + FRAME_HEADER as usize + 2] ^= 0x01;
        let (p, f) = temp_file(&flipped);
        assert!(matches!(
            read_at(&f, second as u64, flipped.len() as u64).unwrap(),
            Read::Damaged { .. }
        ));
        let s = scan(&p, 0).unwrap();
        assert_eq!((s.frames, s.damaged, s.broken), (3, 1, None));

        let mut header = bytes.clone();
        header[second] ^= 0x10;
        header[last] ^= 0x01;
        let (p, f) = temp_file(&header);
        assert_eq!(
            read_at(&f, second as u64, header.len() as u64).unwrap(),
            Read::Broken {
                why: "a damaged frame header"
            }
        );
        let s = scan(&p, 0).unwrap();
        assert_eq!((s.frames, s.good_end), (1, second as u64));
    }

    #[test]
    fn segment_names_sort_by_id() {
        let dir = Path::new("/spool");
        assert_eq!(
            path(dir, 42),
            PathBuf::from("/spool/00000000000000000042.seg")
        );
        assert_eq!(id_of("00000000000000000042.seg"), Some(42));
        assert_eq!(id_of("42.seg"), None);
        assert_eq!(id_of("00000000000000000042.seg.corrupt"), None);
        assert_eq!(id_of("cursor"), None);
    }
}
