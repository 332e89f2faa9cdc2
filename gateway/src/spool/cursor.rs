//! The drain cursor on disk: `cursor` holds `<segment> <offset>`, how far the drain got.
//! It is written by renaming a complete file over it, so it is the old cursor or the new
//! one, never a mix. It is not fsynced, and is written every few records: an update lost
//! to a crash only means records drained again, duplicates that dedupe absorbs.

use std::path::Path;

use super::{Position, SpoolError};

pub fn write(dir: &Path, at: Position) -> Result<(), SpoolError> {
    let tmp = dir.join("cursor.tmp");
    std::fs::write(&tmp, format!("{} {}\n", at.segment, at.offset))?;
    std::fs::rename(&tmp, dir.join("cursor"))?;
    Ok(())
}

/// The cursor, if one was written and reads as one.
pub fn read(dir: &Path) -> Option<Position> {
    let text = std::fs::read_to_string(dir.join("cursor")).ok()?;
    let (segment, offset) = text.trim().split_once(' ')?;
    Some(Position {
        segment: segment.parse().ok()?,
        offset: offset.parse().ok()?,
    })
}
