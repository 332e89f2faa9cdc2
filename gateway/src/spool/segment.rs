//! The on-disk framing of spool segments: `length (u32 LE) | CRC-32 of the payload (u32 LE) |
//! payload`, back to back. A frame is only acknowledged after it was fsynced, so a frame
//! that does not check out at the end of the newest segment is a write the crash cut short
//! and that nobody was told had landed.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Bytes before each payload.
pub const FRAME_HEADER: u64 = 8;
/// No payload is larger (a body is capped far below this); a larger length is garbage.
pub const MAX_PAYLOAD: u32 = 64 * 1024 * 1024;

/// Appends the frame of `payload` to `out`.
pub fn frame(payload: &[u8], out: &mut Vec<u8>) {
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    out.extend_from_slice(payload);
}

/// What is at an offset of a segment.
#[derive(Debug, PartialEq, Eq)]
pub enum Read {
    /// A whole frame whose checksum matches; the next frame starts at `next`.
    Record { payload: Vec<u8>, next: u64 },
    /// Exactly the end of what may be read.
    End,
    /// Bytes that are no whole, intact frame: a torn write, or damage.
    Bad { why: &'static str },
}

/// Reads the frame at `offset`, reading nothing at or past `limit`.
pub fn read_at(file: &File, offset: u64, limit: u64) -> io::Result<Read> {
    if offset >= limit {
        return Ok(Read::End);
    }
    if limit - offset < FRAME_HEADER {
        return Ok(Read::Bad {
            why: "a frame header cut short",
        });
    }
    let mut header = [0u8; FRAME_HEADER as usize];
    file.read_exact_at(&mut header, offset)?;
    let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
    let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    if len > MAX_PAYLOAD {
        return Ok(Read::Bad {
            why: "a frame length out of range",
        });
    }
    let next = offset + FRAME_HEADER + u64::from(len);
    if next > limit {
        return Ok(Read::Bad {
            why: "a frame cut short",
        });
    }
    let mut payload = vec![0u8; len as usize];
    file.read_exact_at(&mut payload, offset + FRAME_HEADER)?;
    if crc32fast::hash(&payload) != crc {
        return Ok(Read::Bad {
            why: "a checksum mismatch",
        });
    }
    Ok(Read::Record { payload, next })
}

/// What a segment holds from an offset on.
#[derive(Debug, PartialEq, Eq)]
pub struct Scan {
    /// Intact frames from the offset.
    pub records: u64,
    /// Where the intact frames end.
    pub good_end: u64,
    /// The file's length.
    pub len: u64,
    /// Why the bytes past `good_end` are not frames, when there are any.
    pub bad: Option<&'static str>,
}

/// Walks the frames of `path` from `from` to the end of the file.
pub fn scan(path: &Path, from: u64) -> io::Result<Scan> {
    let file = File::open(path)?;
    let len = file.metadata()?.len();
    let (mut offset, mut records) = (from.min(len), 0);
    loop {
        match read_at(&file, offset, len)? {
            Read::Record { next, .. } => {
                records += 1;
                offset = next;
            }
            Read::End => {
                return Ok(Scan {
                    records,
                    good_end: offset,
                    len,
                    bad: None,
                });
            }
            Read::Bad { why } => {
                return Ok(Scan {
                    records,
                    good_end: offset,
                    len,
                    bad: Some(why),
                });
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
        assert_eq!((payload.as_slice(), next), (&b"first"[..], 13));
        assert!(
            matches!(read_at(&f, 13, whole).unwrap(), Read::Record { payload, .. } if payload.is_empty())
        );
        assert_eq!(read_at(&f, whole, whole).unwrap(), Read::End);
        assert_eq!(
            scan(&p, 0).unwrap(),
            Scan {
                records: 3,
                good_end: whole,
                len: bytes.len() as u64,
                bad: Some("a frame cut short")
            }
        );
        assert_eq!(scan(&p, 13).unwrap().records, 2);
    }

    #[test]
    fn a_flipped_bit_fails_the_checksum() {
        let mut bytes = Vec::new();
        frame(b"an order", &mut bytes);
        let last = bytes.len() - 1;
        bytes[last] ^= 0x01;
        let (p, f) = temp_file(&bytes);
        assert_eq!(
            read_at(&f, 0, bytes.len() as u64).unwrap(),
            Read::Bad {
                why: "a checksum mismatch"
            }
        );
        assert_eq!(scan(&p, 0).unwrap().records, 0);
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
