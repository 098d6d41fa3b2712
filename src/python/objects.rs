//! Reading Python `str` and `bytes` objects out of the target.

use super::layout::{require, Layout, MissingField};
use super::version::StringModel;
use crate::target::memory::{FieldReader, Memory, ReadError};

/// Longest name or file name we read; longer ones are cut (a torn read can claim any
/// length).
pub const MAX_STRING_BYTES: u64 = 4096;
/// Largest bytes object we read (line tables of very long functions stay well below).
pub const MAX_BYTES_LEN: u64 = 16 << 20;

/// Why an object could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ObjectError {
    /// The memory read failed.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// The object's type pointer is not the expected type: a torn read or freed memory.
    #[error("object at {0:#x} is not of the expected type")]
    WrongType(u64),
    /// The object's header is implausible (negative or huge length, unknown kind).
    #[error("object at {0:#x} has an implausible header")]
    Corrupt(u64),
}

/// Where type objects live in the target, for checking `ob_type` pointers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TypeAddresses {
    /// `PyCode_Type`.
    pub code: u64,
    /// `PyUnicode_Type` (Python 3) or `PyString_Type` (Python 2).
    pub str: u64,
    /// `PyBytes_Type` (Python 3) or `PyString_Type` (Python 2).
    pub bytes: u64,
}

/// Reads strings and bytes objects with one version's layout.
#[derive(Debug, Clone)]
pub struct ObjectReader {
    types: TypeAddresses,
    ob_type: u64,
    ob_size: u64,
    ob_sval: u64,
    unicode: Option<UnicodeLayout>,
}

#[derive(Debug, Clone, Copy)]
struct UnicodeLayout {
    length: u64,
    state: u64,
    ascii_data: u64,
    compact_data: u64,
    legacy_data: u64,
    kind_shift: u64,
    compact_bit: u64,
    ascii_bit: u64,
}

impl ObjectReader {
    /// Set up from a layout; fails if a needed offset is missing.
    pub fn new(
        layout: &Layout,
        model: StringModel,
        types: TypeAddresses,
    ) -> Result<ObjectReader, MissingField> {
        let unicode = match model {
            StringModel::Bytes => None,
            StringModel::Pep393 => {
                let u = &layout.unicode;
                Some(UnicodeLayout {
                    length: require(u.length, "unicode.length")?,
                    state: require(u.state, "unicode.state")?,
                    ascii_data: require(u.ascii_data, "unicode.ascii_data")?,
                    compact_data: require(u.compact_data, "unicode.compact_data")?,
                    legacy_data: require(u.legacy_data, "unicode.legacy_data")?,
                    kind_shift: require(u.kind_shift, "unicode.kind_shift")?,
                    compact_bit: require(u.compact_bit, "unicode.compact_bit")?,
                    ascii_bit: require(u.ascii_bit, "unicode.ascii_bit")?,
                })
            }
        };
        Ok(ObjectReader {
            types,
            ob_type: require(layout.object.ob_type, "object.ob_type")?,
            ob_size: require(layout.object.ob_size, "object.ob_size")?,
            ob_sval: require(layout.bytes.ob_sval, "bytes.ob_sval")?,
            unicode,
        })
    }

    /// The type addresses this reader checks against.
    pub fn types(&self) -> TypeAddresses {
        self.types
    }

    /// The offset of `ob_type` in every object.
    pub fn ob_type_offset(&self) -> u64 {
        self.ob_type
    }

    /// Read a name (`str`, or `str`/bytes in Python 2) as UTF-8, replacing what does
    /// not decode.
    pub fn read_str(&self, mem: &impl Memory, addr: u64) -> Result<String, ObjectError> {
        match self.unicode {
            None => {
                let bytes = self.read_sized(mem, addr, self.types.str, MAX_STRING_BYTES)?;
                Ok(String::from_utf8_lossy(&bytes).into_owned())
            }
            Some(u) => self.read_unicode(mem, addr, u),
        }
    }

    /// Read a `bytes` object's contents (Python 2: a `str`).
    pub fn read_bytes(&self, mem: &impl Memory, addr: u64) -> Result<Vec<u8>, ObjectError> {
        self.read_sized(mem, addr, self.types.bytes, MAX_BYTES_LEN)
    }

    /// Read at most the first `cap` bytes of a `bytes` object.
    pub fn read_bytes_capped(
        &self,
        mem: &impl Memory,
        addr: u64,
        cap: u64,
    ) -> Result<Vec<u8>, ObjectError> {
        self.read_sized(mem, addr, self.types.bytes, cap)
    }

    fn read_sized(
        &self,
        mem: &impl Memory,
        addr: u64,
        expected_type: u64,
        cap: u64,
    ) -> Result<Vec<u8>, ObjectError> {
        let header = mem.read_vec(addr, self.ob_sval as usize)?;
        if header.u64_at(self.ob_type) != expected_type {
            return Err(ObjectError::WrongType(addr));
        }
        let len = header.u64_at(self.ob_size);
        if len > MAX_BYTES_LEN {
            return Err(ObjectError::Corrupt(addr));
        }
        Ok(mem.read_vec(addr.wrapping_add(self.ob_sval), len.min(cap) as usize)?)
    }

    fn read_unicode(
        &self,
        mem: &impl Memory,
        addr: u64,
        u: UnicodeLayout,
    ) -> Result<String, ObjectError> {
        let header = mem.read_vec(addr, u.compact_data.max(u.legacy_data + 8) as usize)?;
        if header.u64_at(self.ob_type) != self.types.str {
            return Err(ObjectError::WrongType(addr));
        }
        let length = header.u64_at(u.length);
        let state = header.u32_at(u.state);
        let kind = u64::from((state >> u.kind_shift) & 7);
        let compact = (state >> u.compact_bit) & 1 == 1;
        let ascii = (state >> u.ascii_bit) & 1 == 1;
        if !matches!(kind, 1 | 2 | 4) || length > MAX_STRING_BYTES * 4 {
            return Err(ObjectError::Corrupt(addr));
        }
        let data = match (compact, ascii) {
            (true, true) => addr.wrapping_add(u.ascii_data),
            (true, false) => addr.wrapping_add(u.compact_data),
            (false, _) => header.u64_at(u.legacy_data),
        };
        let chars = length.min(MAX_STRING_BYTES);
        let raw = mem.read_vec(data, (chars * kind) as usize)?;
        Ok(decode_pep393(&raw, kind))
    }
}

/// Decode PEP 393 character data of `kind` bytes per character.
fn decode_pep393(raw: &[u8], kind: u64) -> String {
    match kind {
        1 => raw.iter().map(|&b| char::from(b)).collect(),
        2 => char::decode_utf16(
            raw.chunks_exact(2)
                .map(|c| u16::from_le_bytes([c[0], c[1]])),
        )
        .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
        .collect(),
        _ => raw
            .chunks_exact(4)
            .map(|c| {
                char::from_u32(u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .unwrap_or(char::REPLACEMENT_CHARACTER)
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_each_kind() {
        assert_eq!(decode_pep393(b"caf\xe9", 1), "café");
        let utf16: Vec<u8> = "ĀΩ".encode_utf16().flat_map(|u| u.to_le_bytes()).collect();
        assert_eq!(decode_pep393(&utf16, 2), "ĀΩ");
        let utf32: Vec<u8> = "😀x"
            .chars()
            .flat_map(|c| (c as u32).to_le_bytes())
            .collect();
        assert_eq!(decode_pep393(&utf32, 4), "😀x");
        assert_eq!(decode_pep393(&[0xff, 0xff, 0xff, 0xff], 4), "\u{fffd}");
    }
}
