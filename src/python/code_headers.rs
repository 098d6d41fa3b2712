//! The code headers of a stack, read from the target each time or, where the
//! interpreter counts its code objects (3.12+), remembered while the count stays put.
//!
//! A frame names its code object by address, and an address can be reused once the
//! object is freed: a header (name, file, line table pointers) read at an earlier tick
//! may describe another function now. Without more knowledge every stack's headers are
//! read again, after its frames. For another code object to take an address, the one
//! there must be freed and a new one made, and CPython counts one or the other:
//!
//! - 3.12 and 3.13 give each new code object a version (`co_version`) from a counter,
//!   bumped as the object is made, after the fields a header holds are set;
//! - 3.14 adds `_code_object_generation` to the interpreter state, bumped as each code
//!   object is freed, before its memory is.
//!
//! Either way, a header read after the count was `g` still describes the object at its
//! address as long as a later read of the count gives `g` again. The count is read once
//! per stack, after its frames: a stack's frames and headers are valid when the count
//! then is the one the headers were read under. Headers read during a tick are put
//! under the last count read in an earlier tick, which the tick's batch read cannot
//! have reordered with them (a count read in the same batch may come after them).

use rustc_hash::FxHashMap;

use super::code::{CodeHeader, CodeReader};
use super::layout::{require, require_symbol, Layout, MissingField};
use super::objects::ObjectError;
use super::version::CodeCountModel;
use crate::target::binary::Binary;
use crate::target::memory::{Memory, ReadError};

/// Where a version keeps its count of code objects (see the module's documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeCounter {
    /// A u64 at this offset in each interpreter state, bumped as a code object is freed.
    Freed { offset: u64 },
    /// A u32 at this offset in each interpreter state, bumped as a code object is made.
    Made { offset: u64 },
    /// A u32 at this address, bumped as a code object is made by any interpreter.
    MadeStatic { address: u64 },
}

impl CodeCounter {
    /// Set up from a layout and the version's model; `None` where the version counts
    /// nothing.
    pub fn new(
        layout: &Layout,
        model: CodeCountModel,
        binary: &Binary,
    ) -> Result<Option<CodeCounter>, MissingField> {
        let offsets = &layout.interpreter;
        Ok(Some(match model {
            CodeCountModel::Uncounted => return Ok(None),
            CodeCountModel::MadeStatic => CodeCounter::MadeStatic {
                address: require_symbol(binary, "_Py_next_func_version")?,
            },
            CodeCountModel::MadeInInterpreter => CodeCounter::Made {
                offset: require(offsets.code_next_version, "interpreter.code_next_version")?,
            },
            CodeCountModel::FreedInInterpreter => CodeCounter::Freed {
                offset: require(
                    offsets.code_object_generation,
                    "interpreter.code_object_generation",
                )?,
            },
        }))
    }
}

/// A count of made code objects at `address`, `None` once it has wrapped to 0.
fn made(mem: &impl Memory, address: u64) -> Result<Option<u64>, ReadError> {
    let count = mem.read_u32(address)?;
    Ok((count != 0).then_some(u64::from(count)))
}

/// The count that covers a stack: its interpreter's, as kept by the version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodeCount {
    /// Where the version keeps it.
    pub counter: CodeCounter,
    /// The interpreter state's address.
    pub interp: u64,
}

impl CodeCount {
    /// The count now; `None` if it no longer counts (the 32-bit count of made objects
    /// stays 0 once it wraps).
    pub fn read(&self, mem: &impl Memory) -> Result<Option<u64>, ReadError> {
        match self.counter {
            CodeCounter::Freed { offset } => {
                mem.read_u64(self.interp.wrapping_add(offset)).map(Some)
            }
            CodeCounter::Made { offset } => made(mem, self.interp.wrapping_add(offset)),
            CodeCounter::MadeStatic { address } => made(mem, address),
        }
    }
}

/// A count as read, with the interpreter it is of: counts of different interpreters say
/// nothing of each other's objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct CountRead {
    interp: u64,
    value: u64,
}

/// Code headers kept from one stack to the next while no code object is made or freed.
#[derive(Debug, Default)]
pub struct CodeHeaders {
    /// Headers read since the count was `known_under`, by code address.
    known: FxHashMap<u64, CodeHeader>,
    /// The count read before every header in `known`; `None` keeps nothing.
    known_under: Option<CountRead>,
    /// The last count read in this tick, and before it.
    this_tick: Option<CountRead>,
    before: Option<CountRead>,
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
    /// `count` is the count that covers the stack (`None` where there is none, or more
    /// than one interpreter). It is read now, after the frames: if it has not moved
    /// since the headers remembered were read, they are used; the others are read, all
    /// in one go.
    pub fn read(
        &mut self,
        reader: &CodeReader,
        mem: &impl Memory,
        codes: &[u64],
        count: Option<CodeCount>,
        out: &mut Vec<CodeHeader>,
    ) -> Result<(), ObjectError> {
        let now = match count {
            Some(count) => count.read(mem)?.map(|value| CountRead {
                interp: count.interp,
                value,
            }),
            None => None,
        };
        if now.is_none() || now != self.known_under {
            // Headers read from here on are read after the last count of an earlier tick.
            self.known.clear();
            self.known_under = self
                .before
                .filter(|before| now.is_some_and(|now| now.interp == before.interp));
        }
        if now.is_some() {
            self.this_tick = now;
        }
        if self.known_under.is_none() {
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

    /// Close a tick: the counts it read may cover the headers the next ticks read.
    pub fn end_tick(&mut self) {
        if let Some(count) = self.this_tick.take() {
            self.before = Some(count);
        }
    }
}
