//! Walking one thread's chain of Python frames.

use super::layout::{require, Layout, MissingField};
use super::running::{FramePage, RunMarkField};
use super::version::{FrameModel, RunMark};
use crate::target::memory::{FieldReader, Memory, ReadError};

/// Deepest stack we follow; deeper chains are treated as torn (a loop).
pub const MAX_DEPTH: usize = 8192;

/// One Python frame as found in memory: which code runs and where in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RawFrame {
    /// Address of the frame itself (`PyFrameObject` or `_PyInterpreterFrame`).
    pub address: u64,
    /// Address of the code object (not yet checked to be one).
    pub code: u64,
    /// Where in the code the frame is.
    pub position: Position,
    /// Where the frame stands in the C call of the interpreter's eval loop that runs
    /// it. Native stacks are merged with Python ones by this.
    pub eval_call: EvalCall,
}

/// Where a frame stands in the C call of the eval loop that runs it. Up to 3.10 each
/// frame has a call of its own; from 3.11 one call runs a Python frame and those it
/// calls in Python, until a call goes through C.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EvalCall {
    /// Inside a run of frames that ends further out.
    Within,
    /// The outermost frame of its call's run.
    Outermost,
    /// The outermost frame of its call's run, above the call's shim frame (3.12+),
    /// which is at this address: a local variable of the call, on its C stack (but
    /// for 3.15's outermost call, whose shim is the thread state's base frame).
    AboveShim(u64),
}

/// Where a frame is in its code, as the frame records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Position {
    /// Up to 3.10: the byte offset of the current instruction (`f_lasti`, scaled to
    /// bytes); negative when the frame has not started.
    ByteOffset(i64),
    /// 3.11+: a pointer into the bytecode. `copy` says which copy of the bytecode it
    /// points into: 0 is the code object's own; free-threaded 3.14+ gives threads their
    /// own copies (`tlbc_index`). Turning it into an offset needs the code object.
    Instruction {
        /// The instruction pointer.
        pointer: u64,
        /// Index of the bytecode copy.
        copy: u32,
    },
}

/// Why a stack could not be walked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WalkError {
    /// A read failed.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// The chain is longer than [`MAX_DEPTH`]: it loops, or changed while being read.
    #[error("frame chain too long (torn read)")]
    TooDeep,
}

/// Reads frame chains with one version's layout.
#[derive(Debug, Clone)]
pub struct FrameReader {
    model: FrameModel,
    previous: u64,
    code: u64,
    position: u64,
    owner: Option<u64>,
    /// `is_entry` (3.11, which marks eval-loop entries there rather than with shims).
    is_entry: Option<u64>,
    tlbc_index: Option<u64>,
    /// Where a frame says whether it still runs (3.11+).
    run_mark: Option<RunMarkField>,
    read_len: usize,
}

impl FrameReader {
    /// Set up from a layout and the version's frame model.
    pub fn new(layout: &Layout, model: FrameModel) -> Result<FrameReader, MissingField> {
        let f = &layout.frame;
        let previous = require(f.previous, "frame.previous")?;
        let code = require(f.code, "frame.code")?;
        let (position, owner, run_mark) = match model {
            FrameModel::FrameObjects { .. } => (require(f.lasti, "frame.lasti")?, None, None),
            FrameModel::InterpreterFrames {
                first_shim_owner,
                run_mark,
                ..
            } => (
                require(f.instr, "frame.instr")?,
                match first_shim_owner {
                    Some(_) => Some(require(f.owner, "frame.owner")?),
                    None => None,
                },
                Some(match run_mark {
                    RunMark::StacktopMinusOne => {
                        RunMarkField::Stacktop(require(f.stacktop, "frame.stacktop")?)
                    }
                    RunMark::FuncobjCleared => {
                        RunMarkField::Funcobj(require(f.funcobj, "frame.funcobj")?)
                    }
                }),
            ),
        };
        let tlbc_index = f.tlbc_index;
        let is_entry = match model {
            FrameModel::InterpreterFrames {
                first_shim_owner: None,
                ..
            } => Some(require(f.is_entry, "frame.is_entry")?),
            _ => None,
        };
        let read_len = [previous, code, position]
            .into_iter()
            .chain(owner)
            .chain(is_entry)
            .chain(tlbc_index)
            .chain(run_mark.map(RunMarkField::offset))
            .max()
            .unwrap_or(0)
            + 8;
        Ok(FrameReader {
            model,
            previous,
            code,
            position,
            owner,
            is_entry,
            tlbc_index,
            run_mark,
            read_len: read_len as usize,
        })
    }

    /// Whether frames sit in per-thread stacks that grow upwards (3.11+), so that a new
    /// call's frame lands just above its caller's, rather than anywhere in the heap.
    pub fn stacked(&self) -> bool {
        matches!(self.model, FrameModel::InterpreterFrames { .. })
    }

    /// Walk from `innermost` outwards, appending the Python frames to `out` (innermost
    /// first). Shim frames that run no Python code are skipped; the frame above each
    /// says where it is ([`EvalCall::AboveShim`]). When the frames are in a
    /// copy taken at one instant (a tick's batch), the walk starts from the frame that
    /// ran then, which may differ from `innermost` if that was read a little earlier
    /// (see [`super::running`]).
    pub fn walk(
        &self,
        mem: &impl Memory,
        innermost: u64,
        out: &mut Vec<RawFrame>,
    ) -> Result<(), WalkError> {
        let mut scratch = [0u8; 128];
        let len = self.read_len.min(128);
        let scratch = &mut scratch[..len];
        // The region the memory lent for the last frame, `(start address, bytes)`:
        // frames next to it are decoded from there.
        let mut lent: (u64, &[u8]) = (0, &[]);
        let mut address = innermost;
        if let Some(mark) = self.run_mark {
            if let Some(region) = mem.lend_around(innermost, len) {
                lent = region;
                address = FramePage {
                    start: region.0,
                    bytes: region.1,
                    frame_len: len,
                    previous: self.previous,
                    mark,
                }
                .running_frame(innermost);
            }
        }
        let mut steps = 0;
        let first = out.len();
        while address != 0 {
            steps += 1;
            if steps > MAX_DEPTH {
                return Err(WalkError::TooDeep);
            }
            let in_lent = address
                .checked_sub(lent.0)
                .and_then(|skip| usize::try_from(skip).ok())
                .filter(|&skip| skip.saturating_add(len) <= lent.1.len());
            let frame = match in_lent {
                Some(skip) => &lent.1[skip..skip + len],
                None => match mem.lend_around(address, len) {
                    Some(region) => {
                        lent = region;
                        let skip = (address - region.0) as usize;
                        &region.1[skip..skip + len]
                    }
                    None => mem.read_lent(address, scratch)?,
                },
            };
            match self.decode(address, frame) {
                Some(decoded) => out.push(decoded),
                None => {
                    if let Some(inner) = out[first..].last_mut() {
                        inner.eval_call = EvalCall::AboveShim(address);
                    }
                }
            }
            address = frame.u64_at(self.previous);
        }
        Ok(())
    }

    /// The Python frame of the frame struct at `address` alone, or `None` for a shim
    /// frame: a generator's or coroutine's, which is linked to no other while it is
    /// suspended.
    pub fn frame_at(&self, mem: &impl Memory, address: u64) -> Result<Option<RawFrame>, ReadError> {
        let mut scratch = [0u8; 128];
        let len = self.read_len.min(128);
        let frame = mem.read_lent(address, &mut scratch[..len])?;
        Ok(self.decode(address, frame))
    }

    /// The Python frame described by the frame struct at `address`, read into `buf`,
    /// or `None` for a shim frame.
    fn decode(&self, address: u64, buf: &[u8]) -> Option<RawFrame> {
        match self.model {
            FrameModel::FrameObjects { lasti_unit } => Some(RawFrame {
                address,
                code: buf.u64_at(self.code),
                position: Position::ByteOffset(
                    i64::from(buf.u32_at(self.position) as i32) * lasti_unit,
                ),
                // Up to 3.10 each frame runs in a call of the eval loop of its own.
                eval_call: EvalCall::Outermost,
            }),
            FrameModel::InterpreterFrames {
                code_tag_mask,
                first_shim_owner,
                ..
            } => {
                if let (Some(offset), Some(first_shim)) = (self.owner, first_shim_owner) {
                    if buf.u8_at(offset) >= first_shim {
                        return None;
                    }
                }
                Some(RawFrame {
                    address,
                    code: buf.u64_at(self.code) & code_tag_mask,
                    position: Position::Instruction {
                        pointer: buf.u64_at(self.position),
                        copy: self.tlbc_index.map_or(0, |o| buf.u32_at(o)),
                    },
                    // 3.12+ mark entries with shim frames, see `walk`.
                    eval_call: match self.is_entry.is_some_and(|o| buf.u8_at(o) != 0) {
                        true => EvalCall::Outermost,
                        false => EvalCall::Within,
                    },
                })
            }
        }
    }
}
