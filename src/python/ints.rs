//! Reading `int` objects: 2.7's C `long`, then digit arrays whose length and sign moved
//! from `ob_size` into a tag word in 3.12.

use super::layout::{require, Layout, MissingField};
use super::objects::ObjectError;
use crate::target::memory::{FieldReader, Memory};

/// How `int` objects store their value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntModel {
    /// 2.7: `int` is a C `long` in `ob_ival` (`PyInt_Type`).
    Py2Int,
    /// 3.0–3.11: `PyLongObject` digits; `ob_size` is the digit count, negative for
    /// negative numbers.
    SignedSize,
    /// 3.12+: `PyLongObject` digits; `lv_tag` holds the digit count above its
    /// non-size bits, and the sign in its sign bits (0 = positive, 1 = zero,
    /// 2 = negative).
    Tagged,
}

impl IntModel {
    /// The exported type object of these ints.
    pub fn type_symbol(self) -> &'static str {
        match self {
            IntModel::Py2Int => "PyInt_Type",
            IntModel::SignedSize | IntModel::Tagged => "PyLong_Type",
        }
    }
}

/// Reads `int` objects whose magnitude fits in 64 bits.
#[derive(Debug, Clone)]
pub struct IntReader {
    model: IntModel,
    int_type: u64,
    ob_type: u64,
    /// `ob_size`, `lv_tag` or `ob_ival`.
    size: u64,
    digits: u64,
    digit_bits: u32,
    tag_shift: u32,
    tag_sign_mask: u64,
}

impl IntReader {
    /// Set up from a layout; `int_type` is the address of the ints' type object.
    pub fn new(layout: &Layout, model: IntModel, int_type: u64) -> Result<IntReader, MissingField> {
        let l = &layout.long;
        let size = match model {
            IntModel::Py2Int => require(layout.int.ival, "int.ival")?,
            IntModel::SignedSize => require(layout.object.ob_size, "object.ob_size")?,
            IntModel::Tagged => require(l.tag, "long.tag")?,
        };
        let tagged = |value: Option<u64>, name| match model {
            IntModel::Tagged => require(value, name),
            _ => Ok(0),
        };
        let digit_bits = require(l.digit_bits, "long.digit_bits")?;
        Ok(IntReader {
            model,
            int_type,
            ob_type: require(layout.object.ob_type, "object.ob_type")?,
            size,
            digits: require(l.digits, "long.digits")?,
            digit_bits: u32::try_from(digit_bits).map_err(|_| MissingField("long.digit_bits"))?,
            tag_shift: tagged(l.tag_size_shift, "long.tag_size_shift")? as u32,
            tag_sign_mask: tagged(l.tag_sign_mask, "long.tag_sign_mask")?,
        })
    }

    /// The address of the type object these ints have.
    pub fn int_type(&self) -> u64 {
        self.int_type
    }

    /// The value of the `int` at `addr`, or `None` when its magnitude needs more than
    /// 64 bits.
    pub fn read(&self, mem: &impl Memory, addr: u64) -> Result<Option<i128>, ObjectError> {
        let width = digit_width(self.digit_bits);
        let len = match self.model {
            IntModel::Py2Int => self.size + 8,
            _ => self.digits + max_digits(self.digit_bits) * width,
        };
        let buf = mem.read_vec(addr, len as usize)?;
        if buf.u64_at(self.ob_type) != self.int_type {
            return Err(ObjectError::WrongType(addr));
        }
        let (negative, count) = match self.model {
            IntModel::Py2Int => return Ok(Some(i128::from(buf.u64_at(self.size) as i64))),
            IntModel::SignedSize => {
                let size = buf.u64_at(self.size) as i64;
                (size < 0, size.unsigned_abs())
            }
            IntModel::Tagged => {
                let tag = buf.u64_at(self.size);
                match tag & self.tag_sign_mask {
                    0 => (false, tag >> self.tag_shift),
                    1 => (false, 0),
                    2 => (true, tag >> self.tag_shift),
                    _ => return Err(ObjectError::Corrupt(addr)),
                }
            }
        };
        if count > max_digits(self.digit_bits) {
            return Ok(None);
        }
        let digits: Vec<u64> = (0..count)
            .map(|i| match width {
                2 => u64::from(u16::from_le_bytes([
                    buf.u8_at(self.digits + i * 2),
                    buf.u8_at(self.digits + i * 2 + 1),
                ])),
                _ => u64::from(buf.u32_at(self.digits + i * 4)),
            })
            .collect();
        let magnitude = combine_digits(&digits, self.digit_bits);
        Ok(magnitude.map(|m| {
            if negative {
                -i128::from(m)
            } else {
                i128::from(m)
            }
        }))
    }
}

/// Bytes per digit: `digit` is a 16-bit type for 15-bit digits, else 32-bit.
fn digit_width(bits: u32) -> u64 {
    if bits <= 16 {
        2
    } else {
        4
    }
}

/// Most digits a 64-bit value needs.
fn max_digits(bits: u32) -> u64 {
    u64::from(64_u32.div_ceil(bits.max(1)))
}

/// The value of little-endian `digits` of `bits` bits each, if it fits in 64 bits.
fn combine_digits(digits: &[u64], bits: u32) -> Option<u64> {
    if digits.len() as u64 > max_digits(bits) {
        return None;
    }
    digits.iter().rev().try_fold(0u64, |acc, &digit| {
        if digit >> bits != 0 || acc.checked_shl(bits)? >> bits != acc {
            return None;
        }
        Some((acc << bits) | digit)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::python::layout::{every_table, OFFSET_TABLES};

    #[test]
    fn combines_digits() {
        assert_eq!(combine_digits(&[], 30), Some(0));
        assert_eq!(combine_digits(&[5], 30), Some(5));
        let ident: u64 = 0x7f12_3456_7000;
        let mask = (1 << 30) - 1;
        let digits = [ident & mask, (ident >> 30) & mask, ident >> 60];
        assert_eq!(combine_digits(&digits, 30), Some(ident));
        assert_eq!(combine_digits(&[0, 0, 16], 30), None, "2^64 does not fit");
        assert_eq!(combine_digits(&[1 << 30], 30), None, "digit too wide");
        assert_eq!(combine_digits(&[1, 2, 3, 0], 30), None, "too many digits");
        assert_eq!(combine_digits(&[0x7fff, 1], 15), Some(0xffff));
    }

    #[test]
    fn sizes_digit_reads() {
        assert_eq!((digit_width(30), max_digits(30)), (4, 3));
        assert_eq!((digit_width(15), max_digits(15)), (2, 5));
    }

    /// A 3.12 int in memory: header, `lv_tag`, digits.
    fn tagged_int(tag: u64, digits: &[u32]) -> Vec<u8> {
        let mut bytes = vec![0u8; 24 + 4 * 3];
        bytes[8..16].copy_from_slice(&0x1000u64.to_le_bytes());
        bytes[16..24].copy_from_slice(&tag.to_le_bytes());
        for (i, d) in digits.iter().enumerate() {
            bytes[24 + 4 * i..28 + 4 * i].copy_from_slice(&d.to_le_bytes());
        }
        bytes
    }

    #[test]
    fn reads_signs_from_the_3_12_tag() {
        let table = OFFSET_TABLES.iter().find(|(n, _)| *n == "3.12").unwrap().1;
        let layout: Layout = toml::from_str(table).unwrap();
        let reader = IntReader::new(&layout, IntModel::Tagged, 0x1000).unwrap();
        let read = |bytes: Vec<u8>| {
            let mem = crate::target::memory::fake::Blocks::at(0x5000, bytes);
            reader.read(&mem, 0x5000).unwrap()
        };
        assert_eq!(read(tagged_int(1 << 3, &[7])), Some(7));
        assert_eq!(read(tagged_int(1, &[])), Some(0));
        assert_eq!(
            read(tagged_int((2 << 3) | 2, &[1, 1])),
            Some(-((1 << 30) + 1))
        );
        assert_eq!(read(tagged_int(9 << 3, &[])), None, "wider than 64 bits");
    }

    #[test]
    fn every_table_has_what_ints_need() {
        for (name, layout, rules) in every_table() {
            IntReader::new(&layout, rules.int_model, 1)
                .unwrap_or_else(|missing| panic!("{name}: {missing}"));
        }
    }
}
