//! Turning raw frames (code address, byte offset) into frames a person can read.
//!
//! Code objects are cached by address. Every lookup re-reads the code object's small
//! header and compares it with the cached one, so a freed code object whose memory now
//! holds a different function is never shown under the old name.

use std::sync::Arc;

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use crate::native::unwind::NativeFrame;
use crate::python::code::{CodeHeader, CodeInfo, CodeReader};
use crate::python::frames::{Position, RawFrame};
use crate::python::objects::ObjectError;
use crate::sampler::SamplerEvent;
use crate::target::memory::Memory;

/// A frame as shown to the user: a Python function's, a native function's
/// (`--native`), which has the file it is in as its `filename` and no lines, or the
/// garbage collector's, which has neither.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Frame {
    /// Function name (qualified on 3.11+).
    pub name: String,
    /// Source file.
    pub filename: String,
    /// Line being executed; 0 when the interpreter has no line for the instruction,
    /// or for a native frame whose module has no line information.
    pub line: u32,
    /// First line of the function (`co_firstlineno`); 0 for a native frame, which no
    /// Python code has (its lines count from 1).
    pub first_line: u32,
}

impl Frame {
    /// A native function's frame: its symbol (or address, where the file has none),
    /// marked ` [inlined]` for code the compiler inlined into the next frame's
    /// function (it has no stack frame of its own), and its source file and line
    /// where the module's DWARF gives them, else the module's name (e.g.
    /// `libc.so.6`) and line 0.
    pub fn native(frame: &NativeFrame) -> Frame {
        let (filename, line) = match &frame.source {
            Some(source) => (source.file.clone(), source.line),
            None => (frame.module.clone().unwrap_or_else(|| "?".to_string()), 0),
        };
        let function = match &frame.function {
            Some(function) => function.clone(),
            None => format!("{:#x}", frame.address),
        };
        Frame {
            name: match frame.inlined {
                true => format!("{function} [inlined]"),
                false => function,
            },
            filename,
            line,
            first_line: 0,
        }
    }

    /// The frame put on top of a thread's stack while it runs the cyclic garbage
    /// collector, above the Python code that set it off (or the finalizers it calls):
    /// `<GC>`, as CPython's own sampling profiler names it. It has no file.
    pub fn garbage_collection() -> Frame {
        Frame {
            name: "<GC>".to_string(),
            ..Frame::default()
        }
    }

    /// Whether this is a native function's frame (see [`Frame::native`]), or the
    /// garbage collector's: a frame with no Python code.
    pub fn is_native(&self) -> bool {
        self.first_line == 0
    }

    /// The frame's label in stack outputs, showing `line`: `name (file:line)`, for a
    /// native frame without a line `name (module)`, or the name alone for a frame with
    /// no file (`<GC>`).
    pub fn label(&self, line: u32) -> String {
        self.label_with_path(line, &self.filename)
    }

    /// The frame's label as [`Frame::label`], with its file shown as `path` (a
    /// shorter form of it).
    pub fn label_with_path(&self, line: u32, path: &str) -> String {
        match (path.is_empty(), self.is_native(), line) {
            (true, ..) => self.name.clone(),
            (false, true, 0) => format!("{} ({path})", self.name),
            (false, ..) => format!("{} ({path}:{line})", self.name),
        }
    }
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
    /// Frames that are not Python code's (native frames, `<GC>`) by what they show.
    other_ids: FxHashMap<Frame, FrameId>,
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

    /// The id of a frame that is not Python code's (a native one, `<GC>`), numbered
    /// with the Python ones; a frame seen for the first time is appended to
    /// `new_frames`.
    pub fn intern(&mut self, frame: Frame, new_frames: &mut Vec<(FrameId, Frame)>) -> FrameId {
        if let Some(&id) = self.other_ids.get(&frame) {
            return id;
        }
        let id = self.next_frame;
        self.next_frame += 1;
        self.other_ids.insert(frame.clone(), id);
        new_frames.push((id, frame));
        id
    }
}

/// One numbering of frames across processes. Each process's sampler numbers its own
/// frames from 0; this gives equal frames one id whichever process they come from
/// (forked workers run the same code), so that a profile of several processes has one
/// frame table.
#[derive(Debug, Default)]
pub struct FrameMerger {
    ids: FxHashMap<Frame, FrameId>,
    /// Per process, the merged id of each of its frame ids.
    by_process: FxHashMap<u32, Vec<FrameId>>,
}

impl FrameMerger {
    /// An empty numbering.
    pub fn new() -> FrameMerger {
        FrameMerger::default()
    }

    /// `event` through `merger` when there is one (several processes sampled), or as
    /// it is (one process's frame ids are already one numbering).
    pub fn merge_any(
        merger: Option<&mut FrameMerger>,
        event: SamplerEvent,
    ) -> Option<SamplerEvent> {
        match merger {
            Some(merger) => merger.merge(event),
            None => Some(event),
        }
    }

    /// `event` with its frame ids in the merged numbering. A new frame that equals one
    /// already known gives `None`, as does a sample with a frame never announced.
    pub fn merge(&mut self, event: SamplerEvent) -> Option<SamplerEvent> {
        match event {
            SamplerEvent::NewFrame { pid, id, frame } => {
                let next = self.ids.len() as FrameId;
                let merged = *self.ids.entry(frame.clone()).or_insert(next);
                let local = self.by_process.entry(pid).or_default();
                if local.len() <= id as usize {
                    local.resize(id as usize + 1, FrameId::MAX);
                }
                local[id as usize] = merged;
                (merged == next).then_some(SamplerEvent::NewFrame {
                    pid,
                    id: merged,
                    frame,
                })
            }
            SamplerEvent::Sample(mut sample) => {
                let local = self.by_process.get(&sample.thread.pid)?;
                for id in &mut sample.frames {
                    *id = *local.get(*id as usize).filter(|&&m| m != FrameId::MAX)?;
                }
                Some(SamplerEvent::Sample(sample))
            }
            other => Some(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sampler::{Sample, ThreadKey};

    fn new_frame(pid: u32, id: FrameId, name: &str) -> SamplerEvent {
        let frame = Frame {
            name: name.into(),
            ..Frame::default()
        };
        SamplerEvent::NewFrame { pid, id, frame }
    }

    fn sample(pid: u32, frames: Vec<FrameId>) -> SamplerEvent {
        SamplerEvent::Sample(Sample {
            elapsed: std::time::Duration::ZERO,
            thread: ThreadKey {
                pid,
                python_id: 1,
                os_id: Some(pid),
            },
            thread_state: 0,
            frames,
            idle: false,
            wait: None,
            holds_gil: false,
        })
    }

    fn frames_of(event: Option<SamplerEvent>) -> Vec<FrameId> {
        match event {
            Some(SamplerEvent::Sample(sample)) => sample.frames,
            other => panic!("not a sample: {other:?}"),
        }
    }

    #[test]
    fn labels_show_a_location_only_where_there_is_one() {
        let python = Frame {
            name: "work".into(),
            filename: "a.py".into(),
            line: 7,
            first_line: 5,
        };
        assert_eq!(python.label(7), "work (a.py:7)");
        let native = Frame {
            name: "memcpy".into(),
            filename: "libc.so.6".into(),
            ..Frame::default()
        };
        assert_eq!(native.label(0), "memcpy (libc.so.6)");
        assert_eq!(Frame::garbage_collection().label(0), "<GC>");
    }

    #[test]
    fn frames_without_code_are_interned_once() {
        let mut symbolizer = Symbolizer::new();
        let mut new_frames = Vec::new();
        let gc = symbolizer.intern(Frame::garbage_collection(), &mut new_frames);
        assert_eq!(
            symbolizer.intern(Frame::garbage_collection(), &mut new_frames),
            gc
        );
        assert_eq!(new_frames, vec![(gc, Frame::garbage_collection())]);
    }

    #[test]
    fn equal_frames_of_two_processes_get_one_id() {
        let mut merger = FrameMerger::new();
        assert!(merger.merge(new_frame(10, 0, "main")).is_some());
        assert!(merger.merge(new_frame(10, 1, "work")).is_some());
        // A forked worker numbers the same frames its own way.
        assert!(merger.merge(new_frame(20, 0, "work")).is_none());
        match merger.merge(new_frame(20, 1, "child")) {
            Some(SamplerEvent::NewFrame { id: 2, .. }) => {}
            other => panic!("{other:?}"),
        }
        assert_eq!(frames_of(merger.merge(sample(10, vec![1, 0]))), vec![1, 0]);
        assert_eq!(frames_of(merger.merge(sample(20, vec![1, 0]))), vec![2, 1]);
        // Frames never announced: the sample is dropped.
        assert!(merger.merge(sample(20, vec![7])).is_none());
        assert!(merger.merge(sample(30, vec![0])).is_none());
    }
}
