//! Code objects: a function's name, file, first line and line table.

use super::layout::{require, Layout, MissingField};
use super::linetable::{LineTable, LineTableFormat};
use super::objects::{ObjectError, ObjectReader};
use super::version::Semantics;
use crate::target::memory::{FieldReader, Memory, ReadError, Regions};

/// The fields of a code object that identify it, read in one go.
///
/// Two code objects with equal headers describe the same function: the symbolizer uses
/// this to tell a cached code object from a new one that reuses a freed address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CodeHeader {
    /// Address of the code object.
    pub address: u64,
    /// `co_name` or, where it exists, `co_qualname` pointer.
    pub name: u64,
    /// `co_filename` pointer.
    pub filename: u64,
    /// `co_lnotab` / `co_linetable` pointer.
    pub linetable: u64,
    /// `co_firstlineno`.
    pub first_line: i32,
    /// `ob_size` of the code object: its length in code units on 3.11+, where the
    /// bytecode is inline; 0 before.
    pub inline_units: u64,
    /// `co_tlbc`, the per-thread bytecode copies of free-threaded 3.14+; 0 elsewhere.
    pub tlbc: u64,
}

/// What pyscry shows for a code object.
#[derive(Debug, Clone)]
pub struct CodeInfo {
    /// Function name; qualified (`Class.method`) on 3.11+.
    pub name: String,
    /// Source file name as the interpreter has it.
    pub filename: String,
    /// `co_firstlineno`.
    pub first_line: i32,
    /// Decoded line table.
    pub lines: LineTable,
    /// Length of the bytecode in bytes: an instruction offset at or past it means the
    /// frame was read while it changed.
    pub code_len: u64,
}

/// Where a code object's bytecode length is found.
#[derive(Debug, Clone, Copy)]
enum CodeLength {
    /// 3.11+: the code object is a variable-size object whose `ob_size` counts code units.
    InlineUnits,
    /// Up to 3.10: `co_code` points to a bytes object.
    BytesObject {
        /// Offset of `co_code`.
        co_code: u64,
    },
}

/// Reads code objects with one version's layout.
#[derive(Debug, Clone)]
pub struct CodeReader {
    objects: ObjectReader,
    line_format: LineTableFormat,
    name: u64,
    filename: u64,
    linetable: u64,
    firstlineno: u64,
    ob_size: u64,
    code_len: CodeLength,
    code_adaptive: Option<u64>,
    tlbc: Option<u64>,
    tlbc_entries: u64,
    header_len: usize,
}

impl CodeReader {
    /// Set up from a layout and the version's rules.
    pub fn new(
        layout: &Layout,
        semantics: &Semantics,
        objects: ObjectReader,
    ) -> Result<CodeReader, MissingField> {
        let code = &layout.code;
        let name = if semantics.has_qualname {
            require(code.qualname, "code.qualname")?
        } else {
            require(code.name, "code.name")?
        };
        let filename = require(code.filename, "code.filename")?;
        let linetable = require(code.linetable, "code.linetable")?;
        let firstlineno = require(code.firstlineno, "code.firstlineno")?;
        let ob_size = require(layout.object.ob_size, "object.ob_size")?;
        let code_len = match code.code {
            Some(co_code) => CodeLength::BytesObject { co_code },
            None => CodeLength::InlineUnits,
        };
        let co_code = code.code.unwrap_or(0);
        let tlbc_entries = match code.tlbc {
            Some(_) => require(layout.code_array.entries, "code_array.entries")?,
            None => 0,
        };
        let header_len = [
            name,
            filename,
            linetable,
            firstlineno,
            ob_size,
            co_code,
            code.tlbc.unwrap_or(0),
            objects.ob_type_offset(),
        ]
        .into_iter()
        .max()
        .unwrap_or(0)
            + 8;
        Ok(CodeReader {
            objects,
            line_format: semantics.line_table,
            name,
            filename,
            linetable,
            firstlineno,
            ob_size,
            code_len,
            code_adaptive: code.code_adaptive,
            tlbc: code.tlbc,
            tlbc_entries,
            header_len: header_len as usize,
        })
    }

    /// Read the headers of the code objects at `addresses` into `out`, checking that
    /// each is a code object. Headers the memory already holds (a tick's batch) are
    /// parsed where they lie; the rest are read in one go (one system call for a live
    /// process) into `scratch`, a buffer kept between calls.
    pub fn read_headers(
        &self,
        mem: &impl Memory,
        addresses: &[u64],
        scratch: &mut Vec<u8>,
        out: &mut Vec<CodeHeader>,
    ) -> Result<(), ObjectError> {
        let len = self.header_len.min(256);
        out.clear();
        for &address in addresses {
            let Some((start, region)) = mem.lend_around(address, len) else {
                break;
            };
            let skip = (address - start) as usize;
            out.push(self.parse_header(address, &region[skip..skip + len])?);
        }
        let rest = &addresses[out.len()..];
        if rest.is_empty() {
            return Ok(());
        }
        scratch.clear();
        scratch.resize(rest.len() * len, 0);
        let mut regions: Regions = rest.iter().copied().zip(scratch.chunks_mut(len)).collect();
        let read = mem.read_regions(&mut regions);
        drop(regions);
        if read < rest.len() {
            return Err(ObjectError::Read(ReadError::Unmapped(rest[read])));
        }
        for (&address, buf) in rest.iter().zip(scratch.chunks(len)) {
            out.push(self.parse_header(address, buf)?);
        }
        Ok(())
    }

    /// Parse a code object's header from bytes already read from `address`.
    pub fn parse_header(&self, address: u64, buf: &[u8]) -> Result<CodeHeader, ObjectError> {
        if buf.u64_at(self.objects.ob_type_offset()) != self.objects.types().code {
            return Err(ObjectError::WrongType(address));
        }
        Ok(CodeHeader {
            address,
            name: buf.u64_at(self.name),
            filename: buf.u64_at(self.filename),
            linetable: buf.u64_at(self.linetable),
            first_line: buf.u32_at(self.firstlineno) as i32,
            inline_units: match self.code_len {
                CodeLength::InlineUnits => buf.u64_at(self.ob_size),
                CodeLength::BytesObject { .. } => 0,
            },
            tlbc: self.tlbc.map_or(0, |o| buf.u64_at(o)),
        })
    }

    /// Where copy `copy` of the bytecode of the code object `header` starts (3.11+): the
    /// code object's inline bytecode for copy 0, else entry `copy` of its per-thread
    /// copies (free-threaded 3.14+).
    pub fn bytecode_start(
        &self,
        mem: &impl Memory,
        header: &CodeHeader,
        copy: u32,
    ) -> Result<u64, ObjectError> {
        let inline = self
            .code_adaptive
            .ok_or(ObjectError::Corrupt(header.address))?;
        if copy == 0 || header.tlbc == 0 {
            return Ok(header.address.wrapping_add(inline));
        }
        let size = mem.read_u64(header.tlbc)?;
        if u64::from(copy) >= size {
            return Err(ObjectError::Corrupt(header.address));
        }
        Ok(mem.read_u64(
            header
                .tlbc
                .wrapping_add(self.tlbc_entries + 8 * u64::from(copy)),
        )?)
    }

    /// Read the names and line table a header points to.
    pub fn read_info(
        &self,
        mem: &impl Memory,
        header: &CodeHeader,
    ) -> Result<CodeInfo, ObjectError> {
        let code_len = match self.code_len {
            CodeLength::InlineUnits => header.inline_units.saturating_mul(2),
            CodeLength::BytesObject { co_code } => {
                let bytes = mem.read_u64(header.address.wrapping_add(co_code))?;
                mem.read_u64(bytes.wrapping_add(self.ob_size))?
            }
        };
        let name = self.objects.read_str(mem, header.name)?;
        let filename = self.objects.read_str(mem, header.filename)?;
        let table = self.objects.read_bytes(mem, header.linetable)?;
        Ok(CodeInfo {
            name,
            filename,
            first_line: header.first_line,
            lines: LineTable::decode(self.line_format, header.first_line, &table),
            code_len,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::python::layout::every_table;
    use crate::python::objects::TypeAddresses;
    use crate::target::memory::fake::Blocks;

    /// Pointers read from the target are untrusted: one near the end of the address
    /// space makes the read fail, never the arithmetic overflow (a panic in the
    /// sampler's thread would end the recording).
    #[test]
    fn wild_pointers_fail_to_read_and_do_not_overflow() {
        let types = TypeAddresses {
            code: 0x10,
            str: 0x20,
            bytes: 0x30,
        };
        for (name, layout, rules) in every_table() {
            let objects = ObjectReader::new(&layout, rules.strings, types).unwrap();
            let reader = CodeReader::new(&layout, &rules, objects).unwrap();
            // Every word of the code object points near the top of the address space.
            let mem = Blocks::at(0x1000, u64::MAX.to_le_bytes().repeat(64));
            let header = CodeHeader {
                address: 0x1000,
                name: u64::MAX - 1,
                filename: u64::MAX - 1,
                linetable: u64::MAX - 1,
                first_line: 1,
                inline_units: u64::MAX,
                tlbc: u64::MAX - 4,
            };
            assert!(reader.read_info(&mem, &header).is_err(), "{name}");
            let wild = CodeHeader {
                address: u64::MAX - 8,
                ..header
            };
            let _ = reader.bytecode_start(&mem, &wild, 0);
            assert!(reader.bytecode_start(&mem, &wild, 1).is_err(), "{name}");
        }
    }
}
