//! One-line descriptions of Python objects, for `dump --locals`: the value of the
//! small built-in ones (`None`, `bool`, `int`, `float`, `str`, `bytes`), the first
//! items of tuples, lists and dicts, and the type of anything else.
//!
//! Objects are recognised by their type object's address, never by a name a class
//! could also have; every read is bounded, so a torn or freed object shows as
//! `<unreadable …>` at worst.

use super::dict::DictReader;
use super::ints::{IntModel, IntReader};
use super::layout::{require, Layout, MissingField};
use super::objects::{ObjectError, ObjectReader};
use super::version::Semantics;
use crate::target::binary::Binary;
use crate::target::memory::{FieldReader, Memory};

/// Longest `str` or `bytes` shown, in characters; longer ones end in `...`.
const MAX_SHOWN: usize = 80;
/// Longest type name read.
const MAX_TYPE_NAME: usize = 64;
/// Most items of one tuple, list or dict read.
const MAX_ITEMS: u64 = 32;
/// Containers nested deeper than this in the one shown are shown as `[...]`, `(...)`
/// or `{...}`, as `reprlib` shows them (which also stops at a container that holds
/// itself).
const MAX_DEPTH: usize = 3;

/// The built-in containers whose items are shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Container {
    Tuple,
    List,
    Dict,
}

impl Container {
    fn name(self) -> &'static str {
        match self {
            Container::Tuple => "tuple",
            Container::List => "list",
            Container::Dict => "dict",
        }
    }

    fn brackets(self) -> (char, char) {
        match self {
            Container::Tuple => ('(', ')'),
            Container::List => ('[', ']'),
            Container::Dict => ('{', '}'),
        }
    }
}

/// The singletons and type objects recognised, by address (`None` when the binary does
/// not export the symbol: such objects are then described by their type's name).
#[derive(Debug, Clone, Default)]
struct KnownObjects {
    none: Option<u64>,
    true_: Option<u64>,
    false_: Option<u64>,
    float_type: Option<u64>,
    tuple_type: Option<u64>,
    list_type: Option<u64>,
    dict_type: Option<u64>,
}

/// Describes objects of one interpreter.
#[derive(Debug, Clone)]
pub struct ValueReader {
    strings: ObjectReader,
    ints: IntReader,
    /// Python 2's `long` (its `int` is [`ValueReader::ints`]).
    longs: Option<IntReader>,
    known: KnownObjects,
    ob_type: u64,
    ob_size: u64,
    type_name: u64,
    float_value: u64,
    dict_used: u64,
    tuple_items: u64,
    list_items: u64,
    /// Reads a dict's items; `None` when the layout lacks a field it needs (dicts are
    /// then shown by size).
    dicts: Option<DictReader>,
}

impl ValueReader {
    /// Set up from a layout, the version's rules and the symbols of `binary`.
    pub fn new(
        layout: &Layout,
        semantics: &Semantics,
        strings: ObjectReader,
        binary: &Binary,
    ) -> Result<ValueReader, MissingField> {
        let symbol = |name: &str| binary.symbol(name).map(|s| s.address);
        let int_type = symbol(semantics.int_model.type_symbol()).ok_or(MissingField("int type"))?;
        let longs = match (semantics.int_model, symbol("PyLong_Type")) {
            (IntModel::Py2Int, Some(long_type)) => {
                Some(IntReader::new(layout, IntModel::SignedSize, long_type)?)
            }
            _ => None,
        };
        let dict_type = symbol("PyDict_Type");
        let false_symbol = match semantics.int_model {
            IntModel::Py2Int => "_Py_ZeroStruct",
            _ => "_Py_FalseStruct",
        };
        Ok(ValueReader {
            strings,
            ints: IntReader::new(layout, semantics.int_model, int_type)?,
            longs,
            known: KnownObjects {
                none: symbol("_Py_NoneStruct"),
                true_: symbol("_Py_TrueStruct"),
                false_: symbol(false_symbol),
                float_type: symbol("PyFloat_Type"),
                tuple_type: symbol("PyTuple_Type"),
                list_type: symbol("PyList_Type"),
                dict_type,
            },
            ob_type: require(layout.object.ob_type, "object.ob_type")?,
            ob_size: require(layout.object.ob_size, "object.ob_size")?,
            type_name: require(layout.type_object.name, "type.name")?,
            float_value: require(layout.float.value, "float.value")?,
            dict_used: require(layout.dict.used, "dict.used")?,
            tuple_items: require(layout.tuple.items, "tuple.items")?,
            list_items: require(layout.list.items, "list.items")?,
            dicts: dict_type.and_then(|ty| DictReader::new(layout, semantics.dict_model, ty).ok()),
        })
    }

    /// The type object of the object at `addr`.
    pub fn type_of(&self, mem: &impl Memory, addr: u64) -> Result<u64, ObjectError> {
        Ok(mem.read_u64(addr.wrapping_add(self.ob_type))?)
    }

    /// A one-line description of the object at `addr`, much like its `repr()`.
    pub fn describe(&self, mem: &impl Memory, addr: u64) -> String {
        self.describe_nested(mem, addr, 0)
    }

    /// [`ValueReader::describe`] of an object inside `depth` containers.
    fn describe_nested(&self, mem: &impl Memory, addr: u64, depth: usize) -> String {
        self.try_describe(mem, addr, depth)
            .unwrap_or_else(|_| format!("<unreadable object at {addr:#x}>"))
    }

    fn try_describe(
        &self,
        mem: &impl Memory,
        addr: u64,
        depth: usize,
    ) -> Result<String, ObjectError> {
        let k = &self.known;
        let is = |known: Option<u64>, value: u64| known == Some(value);
        if is(k.none, addr) {
            return Ok("None".into());
        }
        if is(k.true_, addr) {
            return Ok("True".into());
        }
        if is(k.false_, addr) {
            return Ok("False".into());
        }
        let ty = self.type_of(mem, addr)?;
        let types = self.strings.types();
        let int_text = |reader: &IntReader, suffix: &str| -> Result<String, ObjectError> {
            Ok(match reader.read(mem, addr)? {
                Some(value) => format!("{value}{suffix}"),
                None => "<int wider than 64 bits>".into(),
            })
        };
        if ty == self.ints.int_type() {
            return int_text(&self.ints, "");
        }
        if let Some(longs) = self.longs.as_ref().filter(|l| l.int_type() == ty) {
            return int_text(longs, "L");
        }
        if is(k.float_type, ty) {
            let value = f64::from_bits(mem.read_u64(addr.wrapping_add(self.float_value))?);
            return Ok(float_repr(value));
        }
        if ty == types.str {
            return Ok(quoted(&self.strings.read_str(mem, addr)?, ""));
        }
        if ty == types.bytes {
            let bytes = self
                .strings
                .read_bytes_capped(mem, addr, MAX_SHOWN as u64 + 1)?;
            return Ok(quoted(&bytes_text(&bytes), "b"));
        }
        let container = [
            (k.tuple_type, Container::Tuple),
            (k.list_type, Container::List),
            (k.dict_type, Container::Dict),
        ]
        .into_iter()
        .find(|&(known, _)| is(known, ty));
        if let Some((_, container)) = container {
            let size_field = match container {
                Container::Dict => self.dict_used,
                _ => self.ob_size,
            };
            let size = mem.read_u64(addr.wrapping_add(size_field))?;
            if size > isize::MAX as u64 {
                return Err(ObjectError::Corrupt(addr));
            }
            return Ok(self
                .items_text(mem, addr, container, size, depth)
                .unwrap_or_else(|_| {
                    let items = if size == 1 { "item" } else { "items" };
                    format!("<{} of {size} {items}>", container.name())
                }));
        }
        let name = self.type_name(mem, ty)?;
        Ok(format!("<{name} at {addr:#x}>"))
    }

    /// A container of `size` items shown as Python shows it, `(1, 'a')`, `[1, 2]`,
    /// `{'a': 1}`, its items after the first [`MAX_SHOWN`] characters left out as
    /// `...`, its nested containers beyond [`MAX_DEPTH`] as `[...]`.
    fn items_text(
        &self,
        mem: &impl Memory,
        addr: u64,
        container: Container,
        size: u64,
        depth: usize,
    ) -> Result<String, ObjectError> {
        let (open, close) = container.brackets();
        if size == 0 {
            return Ok(format!("{open}{close}"));
        }
        if depth >= MAX_DEPTH {
            return Ok(format!("{open}...{close}"));
        }
        let read = size.min(MAX_ITEMS);
        let pointers = |array: u64| -> Result<Vec<(Option<u64>, u64)>, ObjectError> {
            let raw = mem.read_vec(array, read as usize * 8)?;
            Ok((0..read).map(|i| (None, raw.u64_at(i * 8))).collect())
        };
        // (key, value) of each item read; only a dict's have keys.
        let items = match container {
            Container::Tuple => pointers(addr.wrapping_add(self.tuple_items))?,
            Container::List => pointers(mem.read_u64(addr.wrapping_add(self.list_items))?)?,
            Container::Dict => {
                let dicts = self.dicts.as_ref().ok_or(ObjectError::Corrupt(addr))?;
                let items = dicts.items(mem, addr)?.into_iter().take(read as usize);
                items.map(|(key, value)| (Some(key), value)).collect()
            }
        };
        let nested = |item: u64| self.describe_nested(mem, item, depth + 1);
        let mut text = String::from(open);
        let mut shown = 0;
        // Items are described one at a time, and no further than the text shows: the
        // process may be paused meanwhile.
        for &(key, value) in &items {
            if shown > 0 {
                text.push_str(", ");
            }
            let mut item = key.map(|key| nested(key) + ": ").unwrap_or_default();
            if shown == 0 || text.chars().count() + item.chars().count() <= MAX_SHOWN {
                item.push_str(&nested(value));
            }
            if shown > 0 && text.chars().count() + item.chars().count() > MAX_SHOWN {
                break;
            }
            text.push_str(&item);
            shown += 1;
        }
        if shown < size as usize {
            if shown == items.len() {
                text.push_str(", ");
            }
            text.push_str("...");
        } else if container == Container::Tuple && size == 1 {
            text.push(',');
        }
        text.push(close);
        Ok(text)
    }

    /// `tp_name` of the type object at `ty`.
    fn type_name(&self, mem: &impl Memory, ty: u64) -> Result<String, ObjectError> {
        let pointer = mem.read_u64(ty.wrapping_add(self.type_name))?;
        let raw = mem.read_vec(pointer, MAX_TYPE_NAME)?;
        let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
        let name = String::from_utf8_lossy(&raw[..end]).into_owned();
        if name.is_empty() || name.chars().any(char::is_control) {
            return Err(ObjectError::Corrupt(ty));
        }
        Ok(name)
    }
}

/// A float as Python shows it: `1.0`, `0.1`, `inf`, `nan`.
fn float_repr(value: f64) -> String {
    if value.is_nan() {
        "nan".into()
    } else if value.is_infinite() {
        if value > 0.0 { "inf" } else { "-inf" }.into()
    } else {
        format!("{value:?}")
    }
}

/// Bytes as text: printable ASCII as is (a backslash doubled), the rest as `\xNN`.
fn bytes_text(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|&b| match b {
            b'\\' => "\\\\".to_string(),
            b' '..=b'~' => char::from(b).to_string(),
            _ => format!("\\x{b:02x}"),
        })
        .collect()
}

/// `text` quoted after `prefix` as Python's `repr` quotes it (single quotes, double
/// when the text has a single quote and no double one), with the quote, backslashes and
/// control characters escaped (escapes that `bytes_text` made are kept), cut at
/// [`MAX_SHOWN`] characters.
fn quoted(text: &str, prefix: &str) -> String {
    let quote = if text.contains('\'') && !text.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = format!("{prefix}{quote}");
    for (shown, c) in text.chars().enumerate() {
        if shown == MAX_SHOWN {
            out.push(quote);
            out.push_str("...");
            return out;
        }
        match c {
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            '\\' if prefix.is_empty() => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_and_floats_look_like_their_repr() {
        assert_eq!(quoted("it's\n", ""), "\"it's\\n\"");
        assert_eq!(quoted("'\"", ""), "'\\'\"'");
        assert_eq!(quoted("a\\b", ""), "'a\\\\b'");
        assert_eq!(quoted(&bytes_text(b"a\x00'"), "b"), "b\"a\\x00'\"");
        assert_eq!(quoted(&bytes_text(b"\\"), "b"), "b'\\\\'");
        let long = "x".repeat(200);
        assert_eq!(quoted(&long, ""), format!("'{}'...", "x".repeat(MAX_SHOWN)));
        assert_eq!(float_repr(1.0), "1.0");
        assert_eq!(float_repr(0.1), "0.1");
        assert_eq!(float_repr(-f64::INFINITY), "-inf");
        assert_eq!(float_repr(f64::NAN), "nan");
    }
}
