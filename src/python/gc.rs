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
        Ok(GcReader {
            flag,
            requester: layout.interpreter.stoptheworld_requester,
        })
    }

    /// The thread state running a collection in interpreter `interp`, whose GIL
    /// `gil_holder` holds; `None` when no collection runs, or in a free-threaded build
    /// while the collector lets the other threads run (its finalizers, say).
    pub fn collector(
        &self,
        mem: &impl Memory,
        interp: u64,
        gil_holder: Option<u64>,
    ) -> Result<Option<u64>, ReadError> {
        let flag = match self.flag {
            FlagLocation::Fixed(address) => address,
            FlagLocation::InInterpreter(offset) => interp.wrapping_add(offset),
        };
        if mem.read_u32(flag)? == 0 {
            return Ok(None);
        }
        match self.requester {
            Some(offset) => {
                Ok(Some(mem.read_u64(interp.wrapping_add(offset))?).filter(|&t| t != 0))
            }
            None => Ok(gil_holder),
        }
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

    fn reader(requester: Option<u64>) -> GcReader {
        GcReader {
            flag: FlagLocation::InInterpreter(FLAG),
            requester,
        }
    }

    #[test]
    fn with_a_gil_the_holder_collects_while_the_flag_is_set() {
        let gil = reader(None);
        let holder = Some(0x5000);
        assert_eq!(gil.collector(&interpreter(0, 0), INTERP, holder), Ok(None));
        assert_eq!(
            gil.collector(&interpreter(1, 0), INTERP, holder),
            Ok(holder)
        );
        assert_eq!(gil.collector(&interpreter(1, 0), INTERP, None), Ok(None));
    }

    #[test]
    fn without_a_gil_the_thread_that_stopped_the_others_collects() {
        let free_threaded = reader(Some(REQUESTER));
        let memory = interpreter(1, 0x6000);
        assert_eq!(
            free_threaded.collector(&memory, INTERP, None),
            Ok(Some(0x6000))
        );
        // Finalizers run with the other threads going again: nobody is named.
        assert_eq!(
            free_threaded.collector(&interpreter(1, 0), INTERP, None),
            Ok(None)
        );
        // Stopping the world for anything but a collection is not one.
        let stopped = interpreter(0, 0x6000);
        assert_eq!(free_threaded.collector(&stopped, INTERP, None), Ok(None));
    }
}
