//! Thread names: `threading.Thread.name` of every thread the `threading` module knows.
//!
//! The way there is `sys.modules["threading"].__dict__["_active"]`, a dict from
//! `threading.get_ident()` (equal to `PyThreadState.thread_id`) to the `Thread` object,
//! whose name is its instance attribute `_name` (2.7: `_Thread__name`). The `_active`
//! dict is found once per interpreter and remembered; a refresh then reads only that
//! dict, its keys, and one attribute of each `Thread`.

use std::collections::HashMap;

use super::dict::{AttributeReader, DictReader, StrKey};
use super::layout::{require, require_symbol, Layout, MissingField};
use super::objects::{ObjectError, ObjectReader};
use super::version::Semantics;
use crate::target::binary::Binary;
use crate::target::memory::{FieldReader, Memory, ReadError};

/// How `int` objects store their value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntModel {
    /// 2.7: `int` is a C `long` in `ob_ival` (`PyInt_Type`).
    Py2Int,
    /// 3.0–3.11: `PyLongObject` digits; `ob_size` is the digit count, negative for
    /// negative numbers.
    SignedSize,
    /// 3.12+: `PyLongObject` digits; `lv_tag` holds the digit count above its
    /// non-size bits, and the sign in its sign bits (0 = positive, 1 = zero).
    Tagged,
}

impl IntModel {
    /// The exported type object of these ints.
    fn type_symbol(self) -> &'static str {
        match self {
            IntModel::Py2Int => "PyInt_Type",
            IntModel::SignedSize | IntModel::Tagged => "PyLong_Type",
        }
    }
}

/// Reads non-negative `int` objects that fit in 64 bits.
#[derive(Debug, Clone)]
struct IntReader {
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
    fn new(layout: &Layout, model: IntModel, int_type: u64) -> Result<IntReader, MissingField> {
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

    /// Read the `int` at `addr`; negative or wider than 64 bits is an error.
    fn read(&self, mem: &impl Memory, addr: u64) -> Result<u64, ObjectError> {
        let width = digit_width(self.digit_bits);
        let len = match self.model {
            IntModel::Py2Int => self.size + 8,
            _ => self.digits + max_digits(self.digit_bits) * width,
        };
        let buf = mem.read_vec(addr, len as usize)?;
        if buf.u64_at(self.ob_type) != self.int_type {
            return Err(ObjectError::WrongType(addr));
        }
        let count = match self.model {
            IntModel::Py2Int => {
                return u64::try_from(buf.u64_at(self.size) as i64)
                    .map_err(|_| ObjectError::Corrupt(addr))
            }
            IntModel::SignedSize => u64::try_from(buf.u64_at(self.size) as i64).ok(),
            IntModel::Tagged => {
                tagged_digit_count(buf.u64_at(self.size), self.tag_shift, self.tag_sign_mask)
            }
        };
        let digits: Vec<u64> = (0..count.ok_or(ObjectError::Corrupt(addr))?)
            .map(|i| match width {
                2 => u64::from(u16::from_le_bytes([
                    buf.u8_at(self.digits + i * 2),
                    buf.u8_at(self.digits + i * 2 + 1),
                ])),
                _ => u64::from(buf.u32_at(self.digits + i * 4)),
            })
            .collect();
        combine_digits(&digits, self.digit_bits).ok_or(ObjectError::Corrupt(addr))
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

/// Digit count of a 3.12+ `lv_tag`; `None` for negative numbers.
fn tagged_digit_count(tag: u64, shift: u32, sign_mask: u64) -> Option<u64> {
    match tag & sign_mask {
        0 => Some(tag >> shift),
        1 => Some(0),
        _ => None,
    }
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

/// What is known about one interpreter's `threading` module.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Lookup {
    /// The address of `threading._active`.
    Active(u64),
    /// `threading` was not in `sys.modules`, whose keys were these: search again only
    /// once they change.
    NotImported(Vec<u64>),
}

/// Reads thread names, remembering where each interpreter's `_active` dict is.
#[derive(Debug, Clone)]
pub struct ThreadNameReader {
    strings: ObjectReader,
    dicts: DictReader,
    attributes: AttributeReader,
    ints: IntReader,
    /// `PyModule_Type`.
    module_type: u64,
    /// `sys.modules` in `PyInterpreterState`.
    modules: u64,
    /// `md_dict` in module objects.
    module_dict: u64,
    threading: StrKey,
    active: StrKey,
    name: StrKey,
    found: HashMap<u64, Lookup>,
}

impl ThreadNameReader {
    /// Set up from a layout and the version's rules; `strings` reads `str` objects and
    /// `binary` (the file holding the runtime) supplies the type objects to check.
    pub fn new(
        layout: &Layout,
        semantics: &Semantics,
        strings: ObjectReader,
        binary: &Binary,
    ) -> Result<ThreadNameReader, MissingField> {
        let symbol = |name| require_symbol(binary, name);
        let int_type = symbol(semantics.int_model.type_symbol())?;
        Ok(ThreadNameReader {
            strings,
            dicts: DictReader::new(layout, semantics.dict_model, symbol("PyDict_Type")?)?,
            attributes: AttributeReader::new(layout, semantics.instance_dict)?,
            ints: IntReader::new(layout, semantics.int_model, int_type)?,
            module_type: symbol("PyModule_Type")?,
            modules: require(layout.interpreter.modules, "interpreter.modules")?,
            module_dict: require(layout.module.dict, "module.dict")?,
            threading: StrKey::new("threading"),
            active: StrKey::new("_active"),
            name: StrKey::new(semantics.thread_name_attribute),
            found: HashMap::new(),
        })
    }

    /// The name of every thread of interpreter `interp` that `threading` knows, by
    /// `thread_id` (`threading.get_ident()`). Threads not (yet) in `threading._active`,
    /// and any whose name cannot be read consistently, are left out; only a failure to
    /// read the process at all is an error.
    pub fn read(
        &mut self,
        mem: &impl Memory,
        interp: u64,
    ) -> Result<HashMap<u64, String>, ReadError> {
        let items = match self.active_items(mem, interp) {
            Ok(items) => items,
            Err(ObjectError::Read(e @ (ReadError::Exited | ReadError::PermissionDenied))) => {
                return Err(e)
            }
            Err(_) => Vec::new(),
        };
        self.name.revalidate(mem, &self.strings);
        let threads: Vec<u64> = items.iter().map(|&(_, thread)| thread).collect();
        let names =
            self.attributes
                .read_each(mem, &self.dicts, &self.strings, &threads, &mut self.name);
        Ok(items
            .iter()
            .zip(names)
            .filter_map(|(&(ident, _), name)| {
                let ident = self.ints.read(mem, ident).ok()?;
                let name = self.strings.read_str(mem, name?).ok()?;
                Some((ident, name))
            })
            .collect())
    }

    /// The (ident, Thread) pairs of `interp`'s `_active` dict: the remembered dict while
    /// it is still a dict, else a new search.
    fn active_items(
        &mut self,
        mem: &impl Memory,
        interp: u64,
    ) -> Result<Vec<(u64, u64)>, ObjectError> {
        if let Some(Lookup::Active(active)) = self.found.get(&interp) {
            if let Ok(items) = self.dicts.items(mem, *active) {
                return Ok(items);
            }
        }
        match self.find_active(mem, interp)? {
            Lookup::Active(active) => {
                self.found.insert(interp, Lookup::Active(active));
                self.dicts.items(mem, active)
            }
            not_imported => {
                self.found.insert(interp, not_imported);
                Ok(Vec::new())
            }
        }
    }

    /// Search `sys.modules["threading"].__dict__["_active"]`.
    fn find_active(&mut self, mem: &impl Memory, interp: u64) -> Result<Lookup, ObjectError> {
        let modules = mem.read_u64(interp + self.modules)?;
        let items = self.dicts.items(mem, modules)?;
        let keys: Vec<u64> = items.iter().map(|&(k, _)| k).collect();
        if self.found.get(&interp) == Some(&Lookup::NotImported(keys.clone())) {
            return Ok(Lookup::NotImported(keys));
        }
        self.threading.revalidate(mem, &self.strings);
        let Some(index) = self.threading.find(mem, &self.strings, &keys) else {
            return Ok(Lookup::NotImported(keys));
        };
        let module = mem.read_vec(items[index].1, (self.module_dict + 8) as usize)?;
        if module.u64_at(self.strings.ob_type_offset()) != self.module_type {
            return Err(ObjectError::WrongType(items[index].1));
        }
        self.active.revalidate(mem, &self.strings);
        let globals = module.u64_at(self.module_dict);
        match self
            .dicts
            .lookup(mem, globals, &mut self.active, &self.strings)?
        {
            Some(active) => Ok(Lookup::Active(active)),
            // Being imported: `_active` is not set yet. Search again next time.
            None => Err(ObjectError::Corrupt(globals)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::python::layout::OFFSET_TABLES;
    use crate::python::version::PythonVersion;

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
    fn decodes_lv_tag() {
        // 3.12: two digits, positive; zero; negative.
        assert_eq!(tagged_digit_count(2 << 3, 3, 3), Some(2));
        assert_eq!(tagged_digit_count(1, 3, 3), Some(0));
        assert_eq!(tagged_digit_count((1 << 3) | 2, 3, 3), None);
    }

    #[test]
    fn every_table_has_what_names_need() {
        for (name, text) in OFFSET_TABLES {
            let layout: Layout = toml::from_str(text).unwrap();
            let version = PythonVersion::from_hex(layout.python.version_hex).unwrap();
            let rules = Semantics::for_version(version).unwrap();
            let check = |result: Result<(), MissingField>| {
                result.unwrap_or_else(|missing| panic!("{name}: {missing}"))
            };
            check(DictReader::new(&layout, rules.dict_model, 1).map(drop));
            check(AttributeReader::new(&layout, rules.instance_dict).map(drop));
            check(IntReader::new(&layout, rules.int_model, 1).map(drop));
            check(require(layout.interpreter.modules, "interpreter.modules").map(drop));
            check(require(layout.module.dict, "module.dict").map(drop));
        }
    }

    #[test]
    fn sizes_digit_reads() {
        assert_eq!((digit_width(30), max_digits(30)), (4, 3));
        assert_eq!((digit_width(15), max_digits(15)), (2, 5));
    }
}
