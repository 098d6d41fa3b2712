//! Turning raw frames (code address, byte offset) into frames a person can read.
//!
//! Code objects are cached by address. Every lookup re-reads the code object's small
//! header and compares it with the cached one, so a freed code object whose memory now
//! holds a different function is never shown under the old name.

use std::sync::Arc;

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use crate::python::code::{CodeHeader, CodeInfo, CodeReader};
use crate::python::frames::{Position, RawFrame};
use crate::python::objects::ObjectError;
use crate::target::memory::Memory;

/// A frame as shown to the user.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Frame {
    /// Function name (qualified on 3.11+).
    pub name: String,
    /// Source file.
    pub filename: String,
    /// Line being executed; 0 when the interpreter has no line for the instruction.
    pub line: u32,
    /// First line of the function (`co_firstlineno`).
    pub first_line: u32,
}

/// A small integer standing for an interned [`Frame`].
pub type FrameId = u32;

struct CachedCode {
    header: CodeHeader,
    info: Arc<CodeInfo>,
    /// Distinguishes successive code objects at the same address.
    serial: u64,
    /// Start of each bytecode copy seen so far, by copy index (3.11+).
    bytecode_starts: Vec<(u32, u64)>,
}

/// Why a raw frame could not be symbolized.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SymbolizeError {
    /// The code object (or its names) could not be read or is not a code object.
    #[error(transparent)]
    Object(#[from] ObjectError),
    /// The instruction offset lies outside the code: the frame changed while read.
    #[error("instruction offset {offset} outside code of {len} bytes (torn read)")]
    OffsetOutsideCode {
        /// The offset read.
        offset: i64,
        /// The code's length.
        len: u64,
    },
}

/// Resolves raw frames to interned frame ids, remembering code objects and frames.
#[derive(Default)]
pub struct Symbolizer {
    codes: FxHashMap<u64, CachedCode>,
    frame_ids: FxHashMap<(u64, u32), FrameId>,
    next_serial: u64,
    next_frame: FrameId,
}

impl Symbolizer {
    /// An empty symbolizer.
    pub fn new() -> Symbolizer {
        Symbolizer::default()
    }

    /// The id of `raw`'s frame, whose code object's header (read from the target for
    /// this sample) is `header`. A frame seen for the first time is appended to
    /// `new_frames`, so that consumers can build their own id → frame table.
    pub fn symbolize(
        &mut self,
        mem: &impl Memory,
        reader: &CodeReader,
        raw: RawFrame,
        header: CodeHeader,
        new_frames: &mut Vec<(FrameId, Frame)>,
    ) -> Result<FrameId, SymbolizeError> {
        let cached = match self.codes.get_mut(&raw.code) {
            Some(cached) if cached.header == header => cached,
            _ => {
                let info = Arc::new(reader.read_info(mem, &header)?);
                self.next_serial += 1;
                self.codes.insert(
                    raw.code,
                    CachedCode {
                        header,
                        info,
                        serial: self.next_serial,
                        bytecode_starts: Vec::new(),
                    },
                );
                self.codes.get_mut(&raw.code).expect("just inserted")
            }
        };
        let offset = match raw.position {
            Position::ByteOffset(offset) => offset,
            Position::Instruction { pointer, copy } => {
                let known = cached.bytecode_starts.iter().find(|(c, _)| *c == copy);
                let start = match known {
                    Some(&(_, start)) => start,
                    None => {
                        let start = reader.bytecode_start(mem, &cached.header, copy)?;
                        cached.bytecode_starts.push((copy, start));
                        start
                    }
                };
                pointer.wrapping_sub(start) as i64
            }
        };
        let len = cached.info.code_len;
        // -2 is a 3.10-3.12 frame that has not started (lasti -1 in code units).
        if !(-2..len as i64).contains(&offset) {
            return Err(SymbolizeError::OffsetOutsideCode { offset, len });
        }
        let line = cached.info.lines.line_at(offset).unwrap_or(0);
        let key = (cached.serial, line);
        if let Some(&id) = self.frame_ids.get(&key) {
            return Ok(id);
        }
        let id = self.next_frame;
        self.next_frame += 1;
        self.frame_ids.insert(key, id);
        new_frames.push((
            id,
            Frame {
                name: cached.info.name.clone(),
                filename: cached.info.filename.clone(),
                line,
                first_line: cached.info.first_line.max(0) as u32,
            },
        ));
        Ok(id)
    }
}
