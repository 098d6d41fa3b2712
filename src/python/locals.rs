//! A frame's local variables, for `dump --locals`: their names from the code object,
//! their values from the frame's slots.
//!
//! Up to 3.10 a `PyFrameObject` keeps its fast locals in `f_localsplus`, named by
//! `co_varnames`, followed by its cells (`co_cellvars`) and the cells it closes over
//! (`co_freevars`). From 3.11 `_PyInterpreterFrame.localsplus` holds them all, named by
//! `co_localsplusnames` with a `CO_FAST_*` kind byte each in `co_localspluskinds`;
//! from 3.14 each slot is a tagged `_PyStackRef`.

use super::frames::RawFrame;
use super::layout::{require, Layout, MissingField};
use super::objects::{ObjectError, ObjectReader};
use super::values::ValueReader;
use super::version::{FrameModel, Semantics};
use crate::target::binary::Binary;
use crate::target::memory::{FieldReader, Memory};

/// Most slots a frame is believed to have; more is a torn read.
const MAX_SLOTS: u64 = 4096;

/// One local variable of a frame.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Local {
    /// Its name.
    pub name: String,
    /// Whether it is one of the function's parameters.
    pub argument: bool,
    /// A one-line description of its value (see [`ValueReader::describe`]).
    pub value: String,
}

/// Where the names of a frame's slots are.
#[derive(Debug, Clone)]
enum Names {
    /// ≤3.10: `co_varnames`, then the cells of `co_cellvars` and `co_freevars`.
    Tuples {
        varnames: u64,
        cellvars: u64,
        freevars: u64,
    },
    /// 3.11+: `co_localsplusnames`, with kinds in `co_localspluskinds`.
    Kinds {
        names: u64,
        kinds: u64,
        /// `CO_FAST_HIDDEN`: an inlined comprehension's variable (3.12+), not shown.
        hidden: u8,
        /// `CO_FAST_CELL | CO_FAST_FREE`: the slot may hold a cell.
        celled: u8,
    },
}

/// Reads the local variables of frames.
#[derive(Debug, Clone)]
pub struct LocalsReader {
    names: Names,
    strings: ObjectReader,
    values: ValueReader,
    argcount: u64,
    kwonlyargcount: Option<u64>,
    localsplus: u64,
    tuple_items: u64,
    ob_size: u64,
    /// `PyCell_Type`, and where a cell keeps its value.
    cell_type: u64,
    cell_ref: u64,
    /// Low bits of a slot that are tags (3.14+), cleared to get the object.
    tag_mask: u64,
}

impl LocalsReader {
    /// Set up from a layout, the version's rules and the symbols of `binary`.
    pub fn new(
        layout: &Layout,
        semantics: &Semantics,
        strings: ObjectReader,
        binary: &Binary,
    ) -> Result<LocalsReader, MissingField> {
        let c = &layout.code;
        let (names, tag_mask) = match semantics.frame_model {
            FrameModel::FrameObjects { .. } => (
                Names::Tuples {
                    varnames: require(c.varnames, "code.varnames")?,
                    cellvars: require(c.cellvars, "code.cellvars")?,
                    freevars: require(c.freevars, "code.freevars")?,
                },
                !0,
            ),
            FrameModel::InterpreterFrames { code_tag_mask, .. } => {
                let kinds = &layout.local_kind;
                let bit = |value: Option<u64>, name| require(value, name).map(|v| v as u8);
                let names = Names::Kinds {
                    names: require(c.localsplusnames, "code.localsplusnames")?,
                    kinds: require(c.localspluskinds, "code.localspluskinds")?,
                    hidden: kinds.hidden.map_or(0, |v| v as u8),
                    celled: bit(kinds.cell, "local_kind.cell")?
                        | bit(kinds.free, "local_kind.free")?,
                };
                (names, code_tag_mask)
            }
        };
        let cell_type = binary
            .symbol("PyCell_Type")
            .map(|s| s.address)
            .ok_or(MissingField("PyCell_Type"))?;
        Ok(LocalsReader {
            names,
            values: ValueReader::new(layout, semantics, strings.clone(), binary)?,
            strings,
            argcount: require(c.argcount, "code.argcount")?,
            kwonlyargcount: c.kwonlyargcount,
            localsplus: require(layout.frame.localsplus, "frame.localsplus")?,
            tuple_items: require(layout.tuple.items, "tuple.items")?,
            ob_size: require(layout.object.ob_size, "object.ob_size")?,
            cell_type,
            cell_ref: require(layout.cell.value, "cell.ref")?,
            tag_mask,
        })
    }

    /// The local variables of `frame` that have a value, in the code's order.
    pub fn read(&self, mem: &impl Memory, frame: &RawFrame) -> Result<Vec<Local>, ObjectError> {
        let code = frame.code;
        let arguments = self.read_int(mem, code.wrapping_add(self.argcount))?
            + match self.kwonlyargcount {
                Some(offset) => self.read_int(mem, code.wrapping_add(offset))?,
                None => 0,
            };
        // Each slot's name (`None` for one not shown), and whether it may hold a cell.
        let mut slots: Vec<(Option<String>, bool)> = Vec::new();
        match &self.names {
            Names::Tuples {
                varnames,
                cellvars,
                freevars,
            } => {
                for (field, cells) in [(varnames, false), (cellvars, true), (freevars, true)] {
                    for name in self.read_names(mem, code.wrapping_add(*field))? {
                        slots.push((Some(name), cells));
                    }
                }
            }
            Names::Kinds {
                names,
                kinds,
                hidden,
                celled,
            } => {
                let names = self.read_names(mem, code.wrapping_add(*names))?;
                let kinds_object = mem.read_u64(code.wrapping_add(*kinds))?;
                let kinds = self.strings.read_bytes(mem, kinds_object)?;
                if kinds.len() != names.len() {
                    return Err(ObjectError::Corrupt(code));
                }
                for (name, kind) in names.into_iter().zip(kinds) {
                    let shown = (kind & hidden == 0).then_some(name);
                    slots.push((shown, kind & celled != 0));
                }
            }
        }
        let values = mem.read_vec(frame.address.wrapping_add(self.localsplus), slots.len() * 8)?;
        let mut locals = Vec::new();
        for (index, (name, celled)) in slots.into_iter().enumerate() {
            let raw = values.u64_at(index as u64 * 8);
            let Some(name) = name else {
                continue;
            };
            let Some(value) = self.describe_slot(mem, raw, celled)? else {
                continue;
            };
            locals.push(Local {
                name,
                argument: (index as u64) < arguments,
                value,
            });
        }
        Ok(locals)
    }

    /// The value in a slot, `None` when it has none (unbound, or an empty cell).
    fn describe_slot(
        &self,
        mem: &impl Memory,
        raw: u64,
        celled: bool,
    ) -> Result<Option<String>, ObjectError> {
        // 3.14+ tags small ints in both low bits of a stack reference.
        if self.tag_mask != !0 && raw & 3 == 3 {
            return Ok(Some(((raw as i64) >> 2).to_string()));
        }
        let mut object = raw & self.tag_mask;
        if object != 0 && celled && self.values.type_of(mem, object)? == self.cell_type {
            object = mem.read_u64(object.wrapping_add(self.cell_ref))?;
        }
        Ok((object != 0).then(|| self.values.describe(mem, object)))
    }

    /// The C `int` at `addr`, which must be a plausible count.
    fn read_int(&self, mem: &impl Memory, addr: u64) -> Result<u64, ObjectError> {
        let value = u64::from(mem.read_u32(addr)?);
        if value > MAX_SLOTS {
            return Err(ObjectError::Corrupt(addr));
        }
        Ok(value)
    }

    /// The strings of the tuple whose pointer is at `field`.
    fn read_names(&self, mem: &impl Memory, field: u64) -> Result<Vec<String>, ObjectError> {
        let tuple = mem.read_u64(field)?;
        let len = mem.read_u64(tuple.wrapping_add(self.ob_size))?;
        if len > MAX_SLOTS {
            return Err(ObjectError::Corrupt(tuple));
        }
        let items = mem.read_vec(tuple.wrapping_add(self.tuple_items), len as usize * 8)?;
        (0..len)
            .map(|i| self.strings.read_str(mem, items.u64_at(i * 8)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::python::layout::every_table;

    /// Every table has what locals need.
    #[test]
    fn every_table_has_what_locals_need() {
        for (name, layout, rules) in every_table() {
            let c = &layout.code;
            let needed = match rules.frame_model {
                FrameModel::FrameObjects { .. } => [c.varnames, c.cellvars, c.freevars],
                FrameModel::InterpreterFrames { .. } => {
                    [c.localsplusnames, c.localspluskinds, layout.local_kind.cell]
                }
            };
            let common = [
                c.argcount,
                layout.frame.localsplus,
                layout.tuple.items,
                layout.list.items,
                layout.cell.value,
                layout.float.value,
                layout.type_object.name,
            ];
            let complete = needed.iter().chain(&common).all(Option::is_some);
            assert!(complete, "{name}");
        }
    }
}
