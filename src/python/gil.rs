//! Which thread holds the GIL.

use super::layout::{require, require_symbol, Layout, MissingField};
use super::version::GilModel;
use crate::target::binary::Binary;
use crate::target::memory::{FieldReader, Memory, ReadError};

/// Reads the GIL holder with one version's layout.
#[derive(Debug, Clone)]
pub struct GilReader {
    location: Location,
    locked: u64,
    last_holder: u64,
}

#[derive(Debug, Clone, Copy)]
enum Location {
    /// The address of `_PyThreadState_Current`.
    CurrentThread(u64),
    /// The address of the GIL struct.
    Fixed(u64),
    /// The offset of the GIL pointer in the interpreter state.
    InterpreterPointer(u64),
}

impl GilReader {
    /// Set up from a layout. Free-threaded builds have no GIL to speak of: callers do not
    /// build a reader for them.
    pub fn new(
        layout: &Layout,
        model: GilModel,
        binary: &Binary,
    ) -> Result<GilReader, MissingField> {
        let symbol = |name| require_symbol(binary, name);
        let location = match model {
            GilModel::CurrentThreadSymbol => {
                Location::CurrentThread(symbol("_PyThreadState_Current")?)
            }
            GilModel::InRuntime => {
                Location::Fixed(symbol("_PyRuntime")? + require(layout.runtime.gil, "runtime.gil")?)
            }
            GilModel::InterpreterPointer => Location::InterpreterPointer(require(
                layout.interpreter.ceval_gil,
                "interpreter.ceval_gil",
            )?),
        };
        let (locked, last_holder) = match model {
            GilModel::CurrentThreadSymbol => (0, 0),
            _ => (
                require(layout.gil.locked, "gil.locked")?,
                require(layout.gil.last_holder, "gil.last_holder")?,
            ),
        };
        Ok(GilReader {
            location,
            locked,
            last_holder,
        })
    }

    /// The address of the thread state holding the GIL of interpreter `interp`, or
    /// `None` when it is free.
    pub fn holder(&self, mem: &impl Memory, interp: u64) -> Result<Option<u64>, ReadError> {
        let gil = match self.location {
            Location::CurrentThread(addr) => {
                return Ok(Some(mem.read_u64(addr)?).filter(|&t| t != 0));
            }
            Location::Fixed(addr) => addr,
            Location::InterpreterPointer(offset) => mem.read_u64(interp.wrapping_add(offset))?,
        };
        let len = self.locked.max(self.last_holder) + 8;
        let mut buf = [0u8; 64];
        let buf = &mut buf[..(len as usize).min(64)];
        let state = mem.read_lent(gil, buf)?;
        Ok((state.u32_at(self.locked) != 0)
            .then(|| state.u64_at(self.last_holder))
            .filter(|&t| t != 0))
    }
}
