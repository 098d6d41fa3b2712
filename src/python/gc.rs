//! Which thread runs the cyclic garbage collector, if it runs: its samples get a
//! `<GC>` frame on top (see [`crate::symbolize::Frame::garbage_collection`]).
//!
//! The interpreter says whether a collection runs, not who runs it. With a GIL it is
//! the GIL holder: a collection holds the GIL throughout. Free-threaded builds stop the
//! other threads for most of a collection, and while they are stopped the interpreter
//! names the thread that stopped them.

use super::layout::{require, require_symbol, Layout, MissingField};
use super::version::GcModel;
use crate::target::binary::Binary;
use crate::target::memory::{Memory, ReadError};

/// Finds the collecting thread with one version's layout.
#[derive(Debug, Clone)]
pub struct GcReader {
    flag: FlagLocation,
    /// Offset of `stoptheworld.requester` in the interpreter state (free-threaded
    /// builds); `None` where the GIL holder collects.
    requester: Option<u64>,
    /// Offset of `gc.frame` in the interpreter state (3.15+): the frame that started
    /// the collection.
    started_in: Option<u64>,
}

/// A collection running, as read at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Collection {
    /// The thread state running it.
    pub thread: u64,
    /// The frame that started it (3.15+): frames that thread runs inside that one run
    /// for the collector (finalizers, weakref callbacks). `None` where the interpreter
    /// does not say, or no Python frame started it.
    pub started_in: Option<u64>,
}

/// Where the `collecting` int is.
#[derive(Debug, Clone, Copy)]
enum FlagLocation {
    /// At this address, for the whole process.
    Fixed(u64),
    /// At this offset in each interpreter state.
    InInterpreter(u64),
}

impl GcReader {
    /// Set up from a layout; a missing symbol or offset makes no reader (no `<GC>`
    /// frames), not an unsupported interpreter.
    pub fn new(layout: &Layout, model: GcModel, binary: &Binary) -> Result<GcReader, MissingField> {
        let collecting = || require(layout.gc.collecting, "gc.collecting");
        let flag = match model {
            GcModel::StaticSymbol => FlagLocation::Fixed(require_symbol(binary, "collecting")?),
            GcModel::InRuntime => FlagLocation::Fixed(
                require_symbol(binary, "_PyRuntime")?
                    + require(layout.runtime.gc, "runtime.gc")?
                    + collecting()?,
            ),
            GcModel::InInterpreter => FlagLocation::InInterpreter(
                require(layout.interpreter.gc, "interpreter.gc")? + collecting()?,
            ),
        };
        let started_in = match (model, layout.interpreter.gc, layout.gc.frame) {
            (GcModel::InInterpreter, Some(gc), Some(frame)) => Some(gc + frame),
            _ => None,
        };
        Ok(GcReader {
            flag,
            requester: layout.interpreter.stoptheworld_requester,
            started_in,
        })
    }

    /// The collection running in interpreter `interp`, whose GIL `gil_holder` holds;
    /// `None` when no collection runs, or in a free-threaded build while the collector
    /// lets the other threads run (its finalizers, say).
    pub fn collection(
        &self,
        mem: &impl Memory,
        interp: u64,
        gil_holder: Option<u64>,
    ) -> Result<Option<Collection>, ReadError> {
        let flag = match self.flag {
            FlagLocation::Fixed(address) => address,
            FlagLocation::InInterpreter(offset) => interp.wrapping_add(offset),
        };
        if mem.read_u32(flag)? == 0 {
            return Ok(None);
        }
        let thread = match self.requester {
            Some(offset) => Some(mem.read_u64(interp.wrapping_add(offset))?).filter(|&t| t != 0),
            None => gil_holder,
        };
        let Some(thread) = thread else {
            return Ok(None);
        };
        let started_in = match self.started_in {
            Some(offset) => Some(mem.read_u64(interp.wrapping_add(offset))?).filter(|&f| f != 0),
            None => None,
        };
        Ok(Some(Collection { thread, started_in }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::memory::fake::Blocks;

    const INTERP: u64 = 0x1000;
    const FLAG: u64 = 0x20;
    const REQUESTER: u64 = 0x40;

    /// An interpreter state whose `collecting` flag is `collecting` and whose
    /// stop-the-world requester is `requester`.
    fn interpreter(collecting: u32, requester: u64) -> Blocks {
        let mut bytes = vec![0u8; 0x80];
        bytes[FLAG as usize..][..4].copy_from_slice(&collecting.to_le_bytes());
        bytes[REQUESTER as usize..][..8].copy_from_slice(&requester.to_le_bytes());
        Blocks::at(INTERP, bytes)
    }

    const STARTED_IN: u64 = 0x48;

    fn reader(requester: Option<u64>) -> GcReader {
        GcReader {
            flag: FlagLocation::InInterpreter(FLAG),
            requester,
            started_in: None,
        }
    }

    /// The thread state `thread` collecting, with no frame named.
    fn by(thread: u64) -> Option<Collection> {
        Some(Collection {
            thread,
            started_in: None,
        })
    }

    #[test]
    fn with_a_gil_the_holder_collects_while_the_flag_is_set() {
        let gil = reader(None);
        let holder = Some(0x5000);
        assert_eq!(gil.collection(&interpreter(0, 0), INTERP, holder), Ok(None));
        assert_eq!(
            gil.collection(&interpreter(1, 0), INTERP, holder),
            Ok(by(0x5000))
        );
        assert_eq!(gil.collection(&interpreter(1, 0), INTERP, None), Ok(None));
    }

    #[test]
    fn the_frame_that_started_a_collection_is_named_where_kept() {
        let reader = GcReader {
            started_in: Some(STARTED_IN),
            ..reader(None)
        };
        let mut bytes = vec![0u8; 0x80];
        bytes[FLAG as usize..][..4].copy_from_slice(&1u32.to_le_bytes());
        bytes[STARTED_IN as usize..][..8].copy_from_slice(&0x7000u64.to_le_bytes());
        let memory = Blocks::at(INTERP, bytes);
        let holder = Some(0x5000);
        let collection = reader.collection(&memory, INTERP, holder);
        let started = Collection {
            thread: 0x5000,
            started_in: Some(0x7000),
        };
        assert_eq!(collection, Ok(Some(started)));
        // Started with no Python frame running: none is named.
        assert_eq!(
            reader.collection(&interpreter(1, 0), INTERP, holder),
            Ok(by(0x5000))
        );
    }

    #[test]
    fn without_a_gil_the_thread_that_stopped_the_others_collects() {
        let free_threaded = reader(Some(REQUESTER));
        let memory = interpreter(1, 0x6000);
        assert_eq!(
            free_threaded.collection(&memory, INTERP, None),
            Ok(by(0x6000))
        );
        // Finalizers run with the other threads going again: nobody is named.
        assert_eq!(
            free_threaded.collection(&interpreter(1, 0), INTERP, None),
            Ok(None)
        );
        // Stopping the world for anything but a collection is not one.
        let stopped = interpreter(0, 0x6000);
        assert_eq!(free_threaded.collection(&stopped, INTERP, None), Ok(None));
    }
}
