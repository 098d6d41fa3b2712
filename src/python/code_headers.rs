//! The code headers of a stack, read from the target each time or, where the
//! interpreter counts the code objects it frees (3.14+), remembered while it frees none.
//!
//! A frame names its code object by address, and an address can be reused once the
//! object is freed: a header (name, file, line table pointers) read at an earlier tick
//! may describe another function now. Without more knowledge every stack's headers are
//! read again, after its frames. CPython 3.14 adds `_code_object_generation` to the
//! interpreter state, bumped as each code object is freed, before its memory is. A
//! header read after the count was `g` still describes the object at its address as
//! long as a later read of the count gives `g` again: nothing was freed in between.

use rustc_hash::FxHashMap;

use super::code::{CodeHeader, CodeReader};
use super::objects::ObjectError;
use crate::target::memory::Memory;

/// An interpreter and its count of freed code objects, read at the start of a tick,
/// before the stacks it reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodeEpoch {
    /// The interpreter state's address.
    pub interp: u64,
    /// Its `_code_object_generation` then.
    pub generation: u64,
}

/// Code headers kept from one stack to the next while no code object is freed.
#[derive(Debug, Default)]
pub struct CodeHeaders {
    /// Headers read since `epoch`, by code address.
    known: FxHashMap<u64, CodeHeader>,
    /// The epoch read before every header in `known`; `None` keeps nothing.
    epoch: Option<CodeEpoch>,
    /// Addresses of a stack's code objects not in `known`, and their headers.
    missing: Vec<u64>,
    fresh: Vec<CodeHeader>,
    scratch: Vec<u8>,
}

impl CodeHeaders {
    /// Headers with nothing remembered.
    pub fn new() -> CodeHeaders {
        CodeHeaders::default()
    }

    /// Put in `out` the headers of the code objects at `codes`, in order, for a stack
    /// whose frames were just read through `mem`.
    ///
    /// `epoch` is the interpreter's count as read before those frames (`None` where
    /// there is none, or more than one interpreter). Headers remembered since an
    /// earlier epoch are used only if the count, read now (after the frames), has not
    /// moved; the others are read, all in one go.
    pub fn read(
        &mut self,
        reader: &CodeReader,
        mem: &impl Memory,
        codes: &[u64],
        epoch: Option<CodeEpoch>,
        out: &mut Vec<CodeHeader>,
    ) -> Result<(), ObjectError> {
        let still_valid = match (epoch, self.epoch) {
            (Some(now), Some(then)) if now == then => {
                reader.generation(mem, now.interp)? == Some(then.generation)
            }
            _ => false,
        };
        if !still_valid {
            // Headers read from here on were read after `epoch` was.
            self.known.clear();
            self.epoch = epoch;
        }
        if self.epoch.is_none() {
            return reader.read_headers(mem, codes, &mut self.scratch, out);
        }
        self.missing.clear();
        self.missing
            .extend(codes.iter().filter(|code| !self.known.contains_key(code)));
        if !self.missing.is_empty() {
            reader.read_headers(mem, &self.missing, &mut self.scratch, &mut self.fresh)?;
            self.known
                .extend(self.fresh.iter().map(|header| (header.address, *header)));
        }
        out.clear();
        out.extend(codes.iter().map(|code| self.known[code]));
        Ok(())
    }
}
