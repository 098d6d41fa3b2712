//! Reading `dict` objects and instance attributes out of the target.
//!
//! Only pointers are taken from a dict: its (key, value) pairs, or the value stored under
//! a `str` key. Lookups do not hash (the target's string hashes are randomised); they
//! scan the entries, matching the key first by address and then by contents.

use std::collections::HashMap;

use super::layout::{require, Layout, MissingField};
use super::objects::{ObjectError, ObjectReader};
use crate::target::memory::{FieldReader, Memory};

/// Most entries a dict may claim before it is taken for garbage (a torn read).
const MAX_ENTRIES: u64 = 1 << 16;

/// How a version stores dicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DictModel {
    /// 2.7: an open-addressing table of `{hash, key, value}` entries (`ma_table`,
    /// `ma_mask`).
    Table,
    /// 3.6–3.10: a compact keys object sized by `dk_size`; the width of its indices
    /// follows from the size.
    CompactSized,
    /// 3.11+: a compact keys object with `dk_log2_size` and `dk_log2_index_bytes`, whose
    /// `dk_kind` chooses `{hash, key, value}` or `{key, value}` entries.
    CompactLog2,
}

/// Where an instance of a Python class keeps its attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstanceDictModel {
    /// ≤3.10: a dict pointer at `tp_dictoffset` from the object's start.
    DictOffset,
    /// 3.11: a managed dict pointer and a values pointer in front of the object; the
    /// values' keys are the type's `ht_cached_keys`.
    ManagedPointers,
    /// 3.12: one word in front of the object, a dict pointer or, when bit 0 is set, the
    /// values pointer minus one.
    DictOrValues,
    /// 3.13+: values inline at `tp_basicsize` while their `valid` flag is set, else the
    /// managed dict pointer in front of the object.
    InlineValues,
}

/// A `str` key looked up in dicts, remembering the string object it was last found as.
///
/// Attribute and global names are interned, so after the first match by contents
/// later lookups usually match by address alone, without reading any key.
#[derive(Debug, Clone)]
pub struct StrKey {
    text: &'static str,
    known: Option<u64>,
}

impl StrKey {
    /// A key with the given text.
    pub fn new(text: &'static str) -> StrKey {
        StrKey { text, known: None }
    }

    /// Forget the remembered string object unless it still holds this text (freed
    /// memory is reused). Call once before a round of lookups.
    pub fn revalidate(&mut self, mem: &impl Memory, strings: &ObjectReader) {
        if let Some(addr) = self.known {
            if !self.has_text(mem, strings, addr) {
                self.known = None;
            }
        }
    }

    /// The position of this key among `keys` (string object addresses).
    pub fn find(
        &mut self,
        mem: &impl Memory,
        strings: &ObjectReader,
        keys: &[u64],
    ) -> Option<usize> {
        if let Some(pos) = self.known.and_then(|k| keys.iter().position(|&a| a == k)) {
            return Some(pos);
        }
        let pos = keys
            .iter()
            .position(|&addr| self.has_text(mem, strings, addr))?;
        self.known = Some(keys[pos]);
        Some(pos)
    }

    fn has_text(&self, mem: &impl Memory, strings: &ObjectReader, addr: u64) -> bool {
        strings
            .read_str(mem, addr)
            .is_ok_and(|text| text == self.text)
    }
}

/// One kind of dict entry: where its key and value are, and its size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct EntryLayout {
    key: u64,
    value: u64,
    size: u64,
}

/// Where the entries of one keys object are, once its header is decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct EntryTable {
    /// Offset of the first entry from the keys object.
    offset: u64,
    /// Number of entries in use (`dk_nentries`).
    count: u64,
    entry: EntryLayout,
}

/// The keys-object header fields of a compact dict.
#[derive(Debug, Clone, Copy)]
struct KeysLayout {
    /// `dk_size` (3.6–3.10) or `dk_log2_size` (3.11+).
    size: u64,
    /// `dk_log2_index_bytes` and `dk_kind` with the `DICT_KEYS_GENERAL` value (3.11+).
    log2: Option<Log2Keys>,
    nentries: u64,
    indices: u64,
}

#[derive(Debug, Clone, Copy)]
struct Log2Keys {
    index_bytes: u64,
    kind: u64,
    general_kind: u64,
    unicode_entry: EntryLayout,
}

/// Where a dict's storage pointers are.
#[derive(Debug, Clone, Copy)]
enum DictLayout {
    /// 2.7: `ma_mask` and `ma_table`.
    Table { mask: u64, table: u64 },
    /// 3.6+: `ma_keys` and `ma_values`, and the keys object's layout.
    Compact {
        keys: u64,
        values: u64,
        keys_layout: KeysLayout,
    },
}

/// A dict's contents, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Storage {
    /// Keys and values together: (key, value) pairs, empty slots left out.
    Combined(Vec<(u64, u64)>),
    /// A split table: keys from a shared keys object, values in a separate block, and
    /// `used` of them set.
    Split {
        keys: Vec<u64>,
        values: u64,
        used: u64,
    },
}

/// The split-table value block layout (`PyDictValues`).
#[derive(Debug, Clone, Copy)]
struct ValuesLayout {
    /// Where the value array starts in the block.
    start: u64,
    /// `capacity` and `valid` bytes (3.13+).
    capacity: Option<u64>,
    valid: Option<u64>,
}

/// Reads dicts with one version's layout.
#[derive(Debug, Clone)]
pub struct DictReader {
    dict_type: u64,
    ob_type: u64,
    /// `ma_used`, checked against the entries read (a torn read disagrees).
    used: u64,
    layout: DictLayout,
    entry: EntryLayout,
    values: ValuesLayout,
    header_len: usize,
}

impl DictReader {
    /// Set up from a layout; `dict_type` is the address of `PyDict_Type`.
    pub fn new(
        layout: &Layout,
        model: DictModel,
        dict_type: u64,
    ) -> Result<DictReader, MissingField> {
        let d = &layout.dict;
        let e = &layout.dict_entry;
        let entry = EntryLayout {
            key: require(e.key, "dict_entry.key")?,
            value: require(e.value, "dict_entry.value")?,
            size: require(e.size, "dict_entry.size")?,
        };
        let dict_layout = match model {
            DictModel::Table => DictLayout::Table {
                mask: require(d.mask, "dict.mask")?,
                table: require(d.table, "dict.table")?,
            },
            DictModel::CompactSized | DictModel::CompactLog2 => DictLayout::Compact {
                keys: require(d.keys, "dict.keys")?,
                values: require(d.values, "dict.values")?,
                keys_layout: keys_layout(layout, model)?,
            },
        };
        let ob_type = require(layout.object.ob_type, "object.ob_type")?;
        let used = require(d.used, "dict.used")?;
        let header_len = match dict_layout {
            DictLayout::Table { mask, table } => mask.max(table),
            DictLayout::Compact { keys, values, .. } => keys.max(values),
        }
        .max(ob_type)
        .max(used)
            + 8;
        let v = &layout.dict_values;
        Ok(DictReader {
            dict_type,
            ob_type,
            used,
            layout: dict_layout,
            entry,
            values: ValuesLayout {
                start: match model {
                    DictModel::Table => 0,
                    _ => require(v.values, "dict_values.values")?,
                },
                capacity: v.capacity,
                valid: v.valid,
            },
            header_len: header_len as usize,
        })
    }

    /// Every (key, value) pair of the dict at `dict`, in storage order.
    pub fn items(&self, mem: &impl Memory, dict: u64) -> Result<Vec<(u64, u64)>, ObjectError> {
        Ok(match self.storage(mem, dict)? {
            Storage::Combined(pairs) => pairs,
            Storage::Split { keys, values, used } => {
                let values = self.read_values(mem, values, keys.len() as u64, false)?;
                let pairs = keys.into_iter().zip(values).collect();
                live_items(pairs, used).ok_or(ObjectError::Corrupt(dict))?
            }
        })
    }

    /// The value stored under `key` in the dict at `dict`, if there is one.
    pub fn lookup(
        &self,
        mem: &impl Memory,
        dict: u64,
        key: &mut StrKey,
        strings: &ObjectReader,
    ) -> Result<Option<u64>, ObjectError> {
        match self.storage(mem, dict)? {
            Storage::Combined(pairs) => {
                let keys: Vec<u64> = pairs.iter().map(|&(k, _)| k).collect();
                Ok(key.find(mem, strings, &keys).map(|i| pairs[i].1))
            }
            Storage::Split { keys, values, .. } => match key.find(mem, strings, &keys) {
                Some(index) => self.value_at(mem, values, index as u64, false),
                None => Ok(None),
            },
        }
    }

    /// The position of `key` among the entries of the keys object at `keys` (a split
    /// table's shared keys).
    pub fn key_index(
        &self,
        mem: &impl Memory,
        keys: u64,
        key: &mut StrKey,
        strings: &ObjectReader,
    ) -> Result<Option<u64>, ObjectError> {
        let entries = self.key_entries(mem, keys)?;
        let keys: Vec<u64> = entries.iter().map(|&(k, _)| k).collect();
        Ok(key.find(mem, strings, &keys).map(|i| i as u64))
    }

    /// Value `index` of the split-table value block at `block`; `None` if the slot is
    /// empty, beyond the block's capacity, or (with `require_valid`, for 3.13+ inline
    /// values) the block is no longer in use.
    pub fn value_at(
        &self,
        mem: &impl Memory,
        block: u64,
        index: u64,
        require_valid: bool,
    ) -> Result<Option<u64>, ObjectError> {
        let values = self.read_values(mem, block, index + 1, require_valid)?;
        Ok(values.get(index as usize).copied().filter(|&v| v != 0))
    }

    /// Read up to `count` values of the block at `block`, fewer if its capacity is
    /// smaller, none if `require_valid` and the block is not valid.
    fn read_values(
        &self,
        mem: &impl Memory,
        block: u64,
        count: u64,
        require_valid: bool,
    ) -> Result<Vec<u64>, ObjectError> {
        if count > MAX_ENTRIES {
            return Err(ObjectError::Corrupt(block));
        }
        let v = self.values;
        let buf = mem.read_vec(block, (v.start + count * 8) as usize)?;
        if require_valid && v.valid.is_some_and(|o| buf.u8_at(o) == 0) {
            return Ok(Vec::new());
        }
        let count = v
            .capacity
            .map_or(count, |o| count.min(u64::from(buf.u8_at(o))));
        Ok((0..count).map(|i| buf.u64_at(v.start + i * 8)).collect())
    }

    fn storage(&self, mem: &impl Memory, dict: u64) -> Result<Storage, ObjectError> {
        let header = mem.read_vec(dict, self.header_len)?;
        if header.u64_at(self.ob_type) != self.dict_type {
            return Err(ObjectError::WrongType(dict));
        }
        let used = header.u64_at(self.used);
        let combined = |entries| {
            live_items(entries, used)
                .map(Storage::Combined)
                .ok_or(ObjectError::Corrupt(dict))
        };
        match self.layout {
            DictLayout::Table { mask, table } => {
                let slots = header.u64_at(mask).wrapping_add(1);
                if !slots.is_power_of_two() || slots > MAX_ENTRIES {
                    return Err(ObjectError::Corrupt(dict));
                }
                let entries = EntryTable {
                    offset: 0,
                    count: slots,
                    entry: self.entry,
                };
                combined(read_entries(mem, header.u64_at(table), entries)?)
            }
            DictLayout::Compact { keys, values, .. } => {
                let entries = self.key_entries(mem, header.u64_at(keys))?;
                match header.u64_at(values) {
                    0 => combined(entries),
                    block => Ok(Storage::Split {
                        keys: entries.into_iter().map(|(k, _)| k).collect(),
                        values: block,
                        used,
                    }),
                }
            }
        }
    }

    /// The (key, value) slots of the compact keys object at `keys`, empty ones included.
    fn key_entries(&self, mem: &impl Memory, keys: u64) -> Result<Vec<(u64, u64)>, ObjectError> {
        let DictLayout::Compact { keys_layout, .. } = self.layout else {
            return Err(ObjectError::Corrupt(keys));
        };
        let header = mem.read_vec(keys, keys_layout.indices as usize)?;
        let table = keys_layout
            .entry_table(&header, self.entry)
            .ok_or(ObjectError::Corrupt(keys))?;
        read_entries(mem, keys, table)
    }
}

impl KeysLayout {
    /// Where the entries are, from a keys object's header; `None` if it is implausible.
    fn entry_table(&self, header: &[u8], entry: EntryLayout) -> Option<EntryTable> {
        let count = header.u64_at(self.nentries);
        let (slots, index_bytes, entry) = match self.log2 {
            None => {
                let size = header.u64_at(self.size);
                (size, size.checked_mul(index_width(size))?, entry)
            }
            Some(log2) => {
                let log2_size = u32::from(header.u8_at(self.size));
                let log2_bytes = u32::from(header.u8_at(log2.index_bytes));
                let entry = if u64::from(header.u8_at(log2.kind)) == log2.general_kind {
                    entry
                } else {
                    log2.unicode_entry
                };
                (
                    1u64.checked_shl(log2_size)?,
                    1u64.checked_shl(log2_bytes)?,
                    entry,
                )
            }
        };
        let plausible = slots.is_power_of_two()
            && slots <= MAX_ENTRIES * 2
            && count <= slots
            && index_bytes <= slots * 8;
        plausible.then_some(EntryTable {
            offset: self.indices + index_bytes,
            count,
            entry,
        })
    }
}

/// Reads one attribute of instances of Python classes, wherever the version keeps it.
#[derive(Debug, Clone)]
pub struct AttributeReader {
    model: InstanceDictModel,
    ob_type: u64,
    types: TypeLayout,
    /// Managed dict word, in bytes before the object (3.11+).
    dict_before: u64,
    /// Values pointer, in bytes before the object (3.11).
    values_before: u64,
}

/// The type-object fields an attribute lookup needs.
#[derive(Debug, Clone, Copy)]
struct TypeLayout {
    basicsize: u64,
    flags: u64,
    dictoffset: u64,
    cached_keys: u64,
    heaptype_flag: u64,
    managed_dict_flag: u64,
    inline_values_flag: u64,
    len: usize,
}

/// The fields of one type object.
#[derive(Debug, Clone, Copy)]
struct TypeInfo {
    basicsize: u64,
    flags: u64,
    dictoffset: i64,
    cached_keys: u64,
}

/// Where one object's attributes are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AttrStorage {
    /// An ordinary dict object.
    Dict(u64),
    /// A value block whose keys are the type's cached keys. `inline` blocks (3.13+) may
    /// have been given up for `dict`, the managed dict (0 if none).
    Values {
        keys: u64,
        block: u64,
        inline: bool,
        dict: u64,
    },
}

/// What one batch of lookups has read already: type objects and the key's index in
/// shared keys objects, both by address.
#[derive(Debug, Default)]
struct BatchCache {
    types: HashMap<u64, Option<TypeInfo>>,
    key_index: HashMap<u64, Option<u64>>,
}

impl AttributeReader {
    /// Set up from a layout and the version's instance-dict rule.
    pub fn new(layout: &Layout, model: InstanceDictModel) -> Result<AttributeReader, MissingField> {
        let t = &layout.type_object;
        let managed = model != InstanceDictModel::DictOffset;
        let needed = |value: Option<u64>, name| {
            if managed {
                require(value, name)
            } else {
                Ok(value.unwrap_or(0))
            }
        };
        let mut types = TypeLayout {
            basicsize: require(t.basicsize, "type.basicsize")?,
            flags: require(t.flags, "type.flags")?,
            dictoffset: require(t.dictoffset, "type.dictoffset")?,
            cached_keys: needed(t.cached_keys, "type.cached_keys")?,
            heaptype_flag: require(t.heaptype_flag, "type.heaptype_flag")?,
            managed_dict_flag: needed(t.managed_dict_flag, "type.managed_dict_flag")?,
            inline_values_flag: match model {
                InstanceDictModel::InlineValues => {
                    require(t.inline_values_flag, "type.inline_values_flag")?
                }
                _ => 0,
            },
            len: 0,
        };
        types.len = [
            types.basicsize,
            types.flags,
            types.dictoffset,
            types.cached_keys,
        ]
        .into_iter()
        .max()
        .unwrap_or(0) as usize
            + 8;
        let m = &layout.managed_dict;
        Ok(AttributeReader {
            model,
            ob_type: require(layout.object.ob_type, "object.ob_type")?,
            types,
            dict_before: needed(m.dict_before, "managed_dict.dict_before")?,
            values_before: match model {
                InstanceDictModel::ManagedPointers => {
                    require(m.values_before, "managed_dict.values_before")?
                }
                _ => 0,
            },
        })
    }

    /// The value of attribute `name` of each of `objects`, `None` where it is missing or
    /// cannot be read. Objects of the same class share the reads of their type.
    pub fn read_each(
        &self,
        mem: &impl Memory,
        dicts: &DictReader,
        strings: &ObjectReader,
        objects: &[u64],
        name: &mut StrKey,
    ) -> Vec<Option<u64>> {
        let mut cache = BatchCache::default();
        objects
            .iter()
            .map(|&obj| {
                self.attribute(mem, dicts, strings, &mut cache, obj, name)
                    .ok()
                    .flatten()
            })
            .collect()
    }

    fn attribute(
        &self,
        mem: &impl Memory,
        dicts: &DictReader,
        strings: &ObjectReader,
        cache: &mut BatchCache,
        obj: u64,
        name: &mut StrKey,
    ) -> Result<Option<u64>, ObjectError> {
        let Some(storage) = self.storage(mem, cache, obj)? else {
            return Ok(None);
        };
        match storage {
            AttrStorage::Dict(dict) => dicts.lookup(mem, dict, name, strings),
            AttrStorage::Values {
                keys,
                block,
                inline,
                dict,
            } => {
                let index = match cache.key_index.get(&keys) {
                    Some(&index) => index,
                    None => {
                        let index = dicts.key_index(mem, keys, name, strings)?;
                        *cache.key_index.entry(keys).or_insert(index)
                    }
                };
                let value = match index {
                    Some(index) => dicts.value_at(mem, block, index, inline)?,
                    None => None,
                };
                match (value, dict) {
                    (None, dict) if inline && dict != 0 => dicts.lookup(mem, dict, name, strings),
                    (value, _) => Ok(value),
                }
            }
        }
    }

    /// Where the attributes of `obj` are, `None` if it has none we can read.
    fn storage(
        &self,
        mem: &impl Memory,
        cache: &mut BatchCache,
        obj: u64,
    ) -> Result<Option<AttrStorage>, ObjectError> {
        let before = self.dict_before.max(self.values_before);
        let start = obj.checked_sub(before).ok_or(ObjectError::Corrupt(obj))?;
        let window = mem.read_vec(start, (before + self.ob_type + 8) as usize)?;
        let word_before = |distance: u64| window.u64_at(before - distance);
        let type_addr = window.u64_at(before + self.ob_type);
        let info = match cache.types.get(&type_addr) {
            Some(&info) => info,
            None => {
                let info = self.read_type(mem, type_addr).ok();
                *cache.types.entry(type_addr).or_insert(info)
            }
        };
        let Some(info) = info else {
            return Err(ObjectError::WrongType(obj));
        };
        let managed = info.flags & self.types.managed_dict_flag != 0;
        let values = |block: u64, inline: bool, dict: u64| {
            (info.cached_keys != 0 && block != 0).then_some(AttrStorage::Values {
                keys: info.cached_keys,
                block,
                inline,
                dict,
            })
        };
        let dict = |dict: u64| (dict != 0).then_some(AttrStorage::Dict(dict));
        Ok(match self.model {
            InstanceDictModel::DictOffset => match u64::try_from(info.dictoffset) {
                Ok(offset) if offset > 0 => dict(mem.read_u64(obj.wrapping_add(offset))?),
                _ => None,
            },
            _ if !managed => None,
            InstanceDictModel::ManagedPointers => dict(word_before(self.dict_before))
                .or_else(|| values(word_before(self.values_before), false, 0)),
            InstanceDictModel::DictOrValues => match word_before(self.dict_before) {
                tagged if tagged & 1 == 1 => values(tagged.wrapping_add(1), false, 0),
                plain => dict(plain),
            },
            InstanceDictModel::InlineValues => {
                let managed_dict = word_before(self.dict_before);
                if info.flags & self.types.inline_values_flag != 0 {
                    values(obj.wrapping_add(info.basicsize), true, managed_dict)
                } else {
                    dict(managed_dict)
                }
            }
        })
    }

    /// Read the fields of the type object at `addr`; only heap types (Python classes)
    /// are accepted.
    fn read_type(&self, mem: &impl Memory, addr: u64) -> Result<TypeInfo, ObjectError> {
        let t = self.types;
        let buf = mem.read_vec(addr, t.len)?;
        let flags = buf.u64_at(t.flags);
        let basicsize = buf.u64_at(t.basicsize);
        if flags & t.heaptype_flag == 0 || basicsize > 1 << 20 {
            return Err(ObjectError::WrongType(addr));
        }
        Ok(TypeInfo {
            basicsize,
            flags,
            dictoffset: buf.u64_at(t.dictoffset) as i64,
            cached_keys: if t.cached_keys == 0 {
                0
            } else {
                buf.u64_at(t.cached_keys)
            },
        })
    }
}

/// Bytes per index in a 3.6–3.10 keys object of `size` slots.
fn index_width(size: u64) -> u64 {
    match size {
        0..=0xff => 1,
        0x100..=0xffff => 2,
        0x1_0000..=0xffff_ffff => 4,
        _ => 8,
    }
}

/// Read the (key, value) pairs of `table`, in the object at `base`.
fn read_entries(
    mem: &impl Memory,
    base: u64,
    table: EntryTable,
) -> Result<Vec<(u64, u64)>, ObjectError> {
    let buf = mem.read_vec(
        base.wrapping_add(table.offset),
        (table.count * table.entry.size) as usize,
    )?;
    Ok(parse_entries(&buf, table.count, table.entry))
}

fn parse_entries(buf: &[u8], count: u64, entry: EntryLayout) -> Vec<(u64, u64)> {
    (0..count)
        .map(|i| {
            let at = i * entry.size;
            (buf.u64_at(at + entry.key), buf.u64_at(at + entry.value))
        })
        .collect()
}

/// The slots that hold a live item (2.7 marks deleted keys with a dummy key and no
/// value; compact dicts clear both), if there are as many as the dict's `ma_used` says.
fn live_items(entries: Vec<(u64, u64)>, used: u64) -> Option<Vec<(u64, u64)>> {
    let live: Vec<(u64, u64)> = entries
        .into_iter()
        .filter(|&(k, v)| k != 0 && v != 0)
        .collect();
    (live.len() as u64 == used).then_some(live)
}

fn keys_layout(layout: &Layout, model: DictModel) -> Result<KeysLayout, MissingField> {
    let k = &layout.dict_keys;
    let e = &layout.dict_entry;
    Ok(KeysLayout {
        size: match model {
            DictModel::CompactLog2 => require(k.log2_size, "dict_keys.log2_size")?,
            _ => require(k.size, "dict_keys.size")?,
        },
        log2: match model {
            DictModel::CompactLog2 => Some(Log2Keys {
                index_bytes: require(k.log2_index_bytes, "dict_keys.log2_index_bytes")?,
                kind: require(k.kind, "dict_keys.kind")?,
                general_kind: require(k.general_kind, "dict_keys.general_kind")?,
                unicode_entry: EntryLayout {
                    key: require(e.unicode_key, "dict_entry.unicode_key")?,
                    value: require(e.unicode_value, "dict_entry.unicode_value")?,
                    size: require(e.unicode_size, "dict_entry.unicode_size")?,
                },
            }),
            _ => None,
        },
        nentries: require(k.nentries, "dict_keys.nentries")?,
        indices: require(k.indices, "dict_keys.indices")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GENERAL: EntryLayout = EntryLayout {
        key: 8,
        value: 16,
        size: 24,
    };
    const UNICODE: EntryLayout = EntryLayout {
        key: 0,
        value: 8,
        size: 16,
    };

    fn header(fields: &[(u64, u64)], width: u64) -> Vec<u8> {
        let mut buf = vec![0u8; 48];
        for &(offset, value) in fields {
            let at = offset as usize;
            buf[at..at + width as usize].copy_from_slice(&value.to_le_bytes()[..width as usize]);
        }
        buf
    }

    #[test]
    fn index_width_follows_size() {
        assert_eq!(index_width(8), 1);
        assert_eq!(index_width(0xff), 1);
        assert_eq!(index_width(0x100), 2);
        assert_eq!(index_width(0x1_0000), 4);
        assert_eq!(index_width(0x1_0000_0000), 8);
    }

    #[test]
    fn finds_entries_of_sized_keys() {
        // 3.6–3.10: dk_size at 8, dk_nentries at 32, dk_indices at 40.
        let keys = KeysLayout {
            size: 8,
            log2: None,
            nentries: 32,
            indices: 40,
        };
        let table = |size, count| keys.entry_table(&header(&[(8, size), (32, count)], 8), GENERAL);
        assert_eq!(table(8, 5).unwrap().offset, 48);
        assert_eq!(table(512, 300).unwrap().offset, 40 + 1024);
        assert_eq!(table(8, 9), None, "more entries than slots");
        assert_eq!(table(12, 1), None, "size not a power of two");
    }

    #[test]
    fn finds_entries_of_log2_keys() {
        // 3.11+: dk_log2_size 8, dk_log2_index_bytes 9, dk_kind 10, dk_nentries 24,
        // dk_indices 32; DICT_KEYS_GENERAL is 0.
        let keys = KeysLayout {
            size: 8,
            log2: Some(Log2Keys {
                index_bytes: 9,
                kind: 10,
                general_kind: 0,
                unicode_entry: UNICODE,
            }),
            nentries: 24,
            indices: 32,
        };
        let table = |log2_size, log2_bytes, kind, count| {
            let mut buf = header(&[(24, count)], 8);
            buf[8] = log2_size;
            buf[9] = log2_bytes;
            buf[10] = kind;
            keys.entry_table(&buf, GENERAL)
        };
        let unicode = table(3, 3, 1, 5).unwrap();
        assert_eq!(
            (unicode.offset, unicode.count, unicode.entry),
            (40, 5, UNICODE)
        );
        let general = table(10, 11, 0, 600).unwrap();
        assert_eq!((general.offset, general.entry), (32 + 2048, GENERAL));
        assert_eq!(table(3, 3, 1, 9), None, "more entries than slots");
        assert_eq!(table(70, 3, 1, 1), None, "absurd size");
    }

    #[test]
    fn keeps_only_live_entries() {
        let mut buf = vec![0u8; 3 * 24];
        for (i, (k, v)) in [(0x10u64, 0x20u64), (0x30, 0), (0, 0)].iter().enumerate() {
            buf[i * 24 + 8..i * 24 + 16].copy_from_slice(&k.to_le_bytes());
            buf[i * 24 + 16..i * 24 + 24].copy_from_slice(&v.to_le_bytes());
        }
        let entries = parse_entries(&buf, 3, GENERAL);
        assert_eq!(entries, vec![(0x10, 0x20), (0x30, 0), (0, 0)]);
        assert_eq!(live_items(entries.clone(), 1), Some(vec![(0x10, 0x20)]));
        assert_eq!(live_items(entries, 2), None, "disagrees with ma_used");
    }
}
