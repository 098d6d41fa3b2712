//! Whether the cyclic garbage collector is running: samples taken meanwhile get a
//! `<GC>` frame (see [`crate::symbolize::Frame::garbage_collection`]).

use super::layout::{require, require_symbol, Layout, MissingField};
use super::version::GcModel;
use crate::target::binary::Binary;
use crate::target::memory::{Memory, ReadError};

/// Reads the collector's `collecting` flag with one version's layout.
#[derive(Debug, Clone)]
pub struct GcReader {
    flag: FlagLocation,
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
        Ok(GcReader { flag })
    }

    /// Whether the collector of interpreter `interp` is running.
    pub fn collecting(&self, mem: &impl Memory, interp: u64) -> Result<bool, ReadError> {
        let address = match self.flag {
            FlagLocation::Fixed(address) => address,
            FlagLocation::InInterpreter(offset) => interp.wrapping_add(offset),
        };
        Ok(mem.read_u32(address)? != 0)
    }
}
