//! Code objects: a function's name, file, first line and line table.

use super::layout::{require, Layout, MissingField};
use super::linetable::{LineTable, LineTableFormat};
use super::objects::{ObjectError, ObjectReader};
use super::version::Semantics;
use crate::target::memory::{FieldReader, Memory};

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
        let header_len = [
            name,
            filename,
            linetable,
            firstlineno,
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
            header_len: header_len as usize,
        })
    }

    /// Read the identifying fields of the code object at `address`, checking that it is
    /// a code object at all.
    pub fn read_header(&self, mem: &impl Memory, address: u64) -> Result<CodeHeader, ObjectError> {
        let mut buf = [0u8; 256];
        let buf = &mut buf[..self.header_len.min(256)];
        mem.read_into(address, buf)?;
        self.parse_header(address, buf)
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
        })
    }

    /// Read the names and line table a header points to.
    pub fn read_info(
        &self,
        mem: &impl Memory,
        header: &CodeHeader,
    ) -> Result<CodeInfo, ObjectError> {
        let name = self.objects.read_str(mem, header.name)?;
        let filename = self.objects.read_str(mem, header.filename)?;
        let table = self.objects.read_bytes(mem, header.linetable)?;
        Ok(CodeInfo {
            name,
            filename,
            first_line: header.first_line,
            lines: LineTable::decode(self.line_format, header.first_line, &table),
        })
    }
}
