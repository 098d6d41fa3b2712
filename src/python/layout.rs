//! Struct offsets for one interpreter, loaded from the tables in `python-offsets/`.
//!
//! The tables are generated from each version's headers and embedded at build time (see
//! `build.rs`). Every key is optional here because fields come and go between versions;
//! the walkers resolve the keys they need once, when they are set up, and report a
//! missing one as an unsupported interpreter rather than reading garbage.

use serde::Deserialize;

use super::version::{Flavour, PythonVersion};

include!(concat!(env!("OUT_DIR"), "/offset_tables.rs"));

/// The offsets of one CPython version and flavour. Field meanings are documented in
/// `python-offsets/README.md`; every value is a byte offset or size.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Layout {
    /// Where the numbers came from.
    pub python: TableSource,
    /// `_PyRuntimeState` (3.7+).
    pub runtime: RuntimeOffsets,
    /// `PyInterpreterState`.
    pub interpreter: InterpreterOffsets,
    /// `struct _gil_runtime_state`.
    pub gil: GilOffsets,
    /// `struct _gc_runtime_state` (3.7+).
    pub gc: GcOffsets,
    /// `PyThreadState` (and `_PyCFrame` for 3.11–3.12).
    pub thread: ThreadOffsets,
    /// `PyFrameObject` (≤3.10) or `_PyInterpreterFrame` (3.11+).
    pub frame: FrameOffsets,
    /// `PyCodeObject`.
    pub code: CodeOffsets,
    /// `PyObject` / `PyVarObject`.
    pub object: ObjectOffsets,
    /// `PyBytesObject` (Python 2: `PyStringObject`).
    pub bytes: BytesOffsets,
    /// `PyASCIIObject` and friends (Python 3).
    pub unicode: UnicodeOffsets,
    /// `_PyStackChunk` (3.11+).
    pub stack_chunk: StackChunkOffsets,
    /// `_PyCodeArray` (free-threaded 3.14+).
    pub code_array: CodeArrayOffsets,
    /// 3.13+: where inside `_Py_DebugOffsets` the value of each `section.key` is kept,
    /// plus `size` (of the struct) and `free_threaded` (position of that flag).
    pub debug_offsets: std::collections::BTreeMap<String, u64>,
    /// `PyDictObject`.
    pub dict: DictOffsets,
    /// `PyDictKeysObject` (3.6+).
    pub dict_keys: DictKeysOffsets,
    /// Dict entries (`PyDictKeyEntry`, `PyDictUnicodeEntry`; 2.7 `PyDictEntry`).
    pub dict_entry: DictEntryOffsets,
    /// The values of split tables (`PyDictValues`).
    pub dict_values: DictValuesOffsets,
    /// `PyTypeObject` / `PyHeapTypeObject`.
    #[serde(rename = "type")]
    pub type_object: TypeOffsets,
    /// Managed dict pointers in front of an object (3.11+).
    pub managed_dict: ManagedDictOffsets,
    /// `PyModuleObject`.
    pub module: ModuleOffsets,
    /// `PyLongObject`.
    pub long: LongOffsets,
    /// `PyIntObject` (2.7).
    pub int: IntOffsets,
    /// `PyTupleObject`.
    pub tuple: TupleOffsets,
    /// `PyListObject`.
    pub list: ListOffsets,
    /// `PyFloatObject`.
    pub float: FloatOffsets,
    /// `PyCellObject`.
    pub cell: CellOffsets,
    /// The `CO_FAST_*` kinds of `co_localspluskinds` (3.11+).
    pub local_kind: LocalKindBits,
    /// `_PyStackRef` (3.14+).
    pub stackref: StackRefBits,
    /// `PyGenObject`, a coroutine's too (3.14+).
    pub gen: GenOffsets,
    /// The values of `enum _framestate` a generator's frame is in (3.14+).
    pub frame_state: FrameStates,
}

/// Offsets in `PyTupleObject`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct TupleOffsets {
    /// `ob_item`, the inline array of items.
    pub items: Option<u64>,
}

/// Offsets in `PyListObject`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ListOffsets {
    /// `ob_item`, the pointer to the array of items.
    pub items: Option<u64>,
}

/// Offsets in `PyFloatObject`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct FloatOffsets {
    /// `ob_fval` (a C double).
    pub value: Option<u64>,
}

/// Offsets in `PyCellObject`, the box of a variable a closure captures.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct CellOffsets {
    /// `ob_ref`, the boxed value (NULL while unbound).
    #[serde(rename = "ref")]
    pub value: Option<u64>,
}

/// How a `_PyStackRef` (3.14+: a frame's stack slots, `f_executable`) tags the object
/// pointer it holds.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct StackRefBits {
    /// `Py_TAG_BITS`: the low bits that are tags, not address.
    pub tag_bits: Option<u64>,
}

/// Offsets in `PyGenObject`, which coroutines share: what an asyncio task runs.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct GenOffsets {
    /// `gi_iframe`, the generator's own `_PyInterpreterFrame`, inside the object.
    pub iframe: Option<u64>,
    /// `gi_frame_state`, an `int8_t` of [`FrameStates`].
    pub frame_state: Option<u64>,
}

/// Values of `enum _framestate` (3.14+; constants, not offsets; they were renumbered
/// in 3.15).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct FrameStates {
    /// `FRAME_SUSPENDED`: stopped at a `yield`.
    pub suspended: Option<i64>,
    /// `FRAME_SUSPENDED_YIELD_FROM`: stopped in an `await` (or `yield from`), the
    /// awaitable on top of the frame's stack.
    pub suspended_yield_from: Option<i64>,
    /// `FRAME_SUSPENDED_YIELD_FROM_LOCKED` (3.15+): the same, while another thread
    /// sends into it.
    pub suspended_yield_from_locked: Option<i64>,
    /// `FRAME_EXECUTING`: running on some thread's stack.
    pub executing: Option<i64>,
}

/// Bits of a `co_localspluskinds` byte (3.11+; masks, not offsets).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct LocalKindBits {
    /// `CO_FAST_HIDDEN` (3.12+): a comprehension's variable inlined into its function.
    pub hidden: Option<u64>,
    /// `CO_FAST_LOCAL`: a fast local (parameters included).
    pub local: Option<u64>,
    /// `CO_FAST_CELL`: a local that closures capture (its slot holds a cell once made).
    pub cell: Option<u64>,
    /// `CO_FAST_FREE`: a variable captured from an outer function (a cell).
    pub free: Option<u64>,
}

/// The `[python]` section: which headers a table was generated from.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct TableSource {
    /// `PY_VERSION` of the headers.
    pub version: String,
    /// `PY_VERSION_HEX` of the headers.
    pub version_hex: u64,
    /// Build flavour the table describes.
    pub flavour: Option<Flavour>,
}

/// Offsets in `_PyRuntimeState`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct RuntimeOffsets {
    /// `interpreters.head`.
    pub interpreters_head: Option<u64>,
    /// `gilstate.tstate_current` (3.7–3.11).
    pub gilstate_tstate_current: Option<u64>,
    /// The embedded `ceval.gil` struct (3.7–3.11).
    pub gil: Option<u64>,
    /// The embedded `gc` struct (3.7–3.8).
    pub gc: Option<u64>,
}

/// Offsets in `PyInterpreterState`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct InterpreterOffsets {
    /// `next`.
    pub next: Option<u64>,
    /// `tstate_head` / `threads.head`.
    pub threads_head: Option<u64>,
    /// `ceval.gil` pointer (3.12+).
    pub ceval_gil: Option<u64>,
    /// `modules` / `imports.modules`: the `sys.modules` dict.
    pub modules: Option<u64>,
    /// `_code_object_generation` (3.14+): how many code objects the interpreter freed.
    pub code_object_generation: Option<u64>,
    /// `func_state.next_version` (3.13): the version the next code object made gets.
    pub code_next_version: Option<u64>,
    /// The embedded `gc` struct (3.9+).
    pub gc: Option<u64>,
    /// `stoptheworld.requester` (free-threaded 3.13+): the thread that stopped the
    /// others, while they are stopped.
    pub stoptheworld_requester: Option<u64>,
}

/// Offsets in `struct _gil_runtime_state`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct GilOffsets {
    /// `locked`.
    pub locked: Option<u64>,
    /// `last_holder`.
    pub last_holder: Option<u64>,
    /// `enabled` (free-threaded builds).
    pub enabled: Option<u64>,
    /// `sizeof(struct _gil_runtime_state)`: its locks lie inside it.
    pub size: Option<u64>,
}

/// Offsets in `struct _gc_runtime_state`, the cyclic garbage collector's state.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct GcOffsets {
    /// `collecting`: nonzero while a collection runs.
    pub collecting: Option<u64>,
    /// `frame`: the frame that started the collection running (3.15+).
    pub frame: Option<u64>,
}

/// Offsets in `PyThreadState`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ThreadOffsets {
    /// `prev`.
    pub prev: Option<u64>,
    /// `next`.
    pub next: Option<u64>,
    /// `interp`.
    pub interp: Option<u64>,
    /// `frame` (≤3.10).
    pub frame: Option<u64>,
    /// `cframe` (3.11–3.12).
    pub cframe: Option<u64>,
    /// `_PyCFrame.current_frame` (3.11–3.12).
    pub cframe_current_frame: Option<u64>,
    /// `current_frame` (3.13+).
    pub current_frame: Option<u64>,
    /// `thread_id`.
    pub thread_id: Option<u64>,
    /// `native_thread_id` (3.11+).
    pub native_thread_id: Option<u64>,
    /// `_status` (3.12+).
    pub status: Option<u64>,
    /// `holds_gil` (3.14+).
    pub holds_gil: Option<u64>,
    /// `datastack_chunk` (3.11+).
    pub datastack_chunk: Option<u64>,
    /// `sizeof(PyThreadState)`.
    pub size: Option<u64>,
}

/// Offsets in the frame struct.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct FrameOffsets {
    /// `f_back` / `previous`.
    pub previous: Option<u64>,
    /// `f_code` / `f_executable`.
    pub code: Option<u64>,
    /// `f_lasti` (≤3.10).
    pub lasti: Option<u64>,
    /// `prev_instr` / `instr_ptr` (3.11+).
    pub instr: Option<u64>,
    /// `owner` (3.11+).
    pub owner: Option<u64>,
    /// `is_entry` (3.11).
    pub is_entry: Option<u64>,
    /// `tlbc_index` (3.14t).
    pub tlbc_index: Option<u64>,
    /// `stacktop` (3.11–3.13).
    pub stacktop: Option<u64>,
    /// `stackpointer` (3.14+): just past the top of the frame's value stack.
    pub stackpointer: Option<u64>,
    /// `f_funcobj` (3.14+).
    pub funcobj: Option<u64>,
    /// `f_localsplus` (≤3.10) / `localsplus` (3.11+): the local variables' slots.
    pub localsplus: Option<u64>,
    /// `sizeof` the frame struct.
    pub size: Option<u64>,
}

/// Offsets in `PyCodeObject`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct CodeOffsets {
    /// `co_firstlineno`.
    pub firstlineno: Option<u64>,
    /// `co_filename`.
    pub filename: Option<u64>,
    /// `co_name`.
    pub name: Option<u64>,
    /// `co_qualname` (3.11+).
    pub qualname: Option<u64>,
    /// `co_lnotab` / `co_linetable`.
    pub linetable: Option<u64>,
    /// `co_code` (≤3.10).
    pub code: Option<u64>,
    /// `co_code_adaptive` (3.11+).
    pub code_adaptive: Option<u64>,
    /// `co_tlbc` (3.14t).
    pub tlbc: Option<u64>,
    /// `sizeof(PyCodeObject)`.
    pub size: Option<u64>,
    /// `co_argcount` (int): positional parameters.
    pub argcount: Option<u64>,
    /// `co_kwonlyargcount` (int, 3.x): keyword-only parameters.
    pub kwonlyargcount: Option<u64>,
    /// `co_varnames` (≤3.10): names of the fast locals, parameters first.
    pub varnames: Option<u64>,
    /// `co_cellvars` (≤3.10): names of the locals closures capture.
    pub cellvars: Option<u64>,
    /// `co_freevars` (≤3.10): names of the variables captured from outer functions.
    pub freevars: Option<u64>,
    /// `co_localsplusnames` (3.11+): names of every slot of `localsplus`.
    pub localsplusnames: Option<u64>,
    /// `co_localspluskinds` (3.11+): a bytes object, the kind of each slot.
    pub localspluskinds: Option<u64>,
}

/// Offsets in the object header.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ObjectOffsets {
    /// `ob_type`.
    pub ob_type: Option<u64>,
    /// `ob_size`.
    pub ob_size: Option<u64>,
    /// `sizeof(PyObject)`.
    pub size: Option<u64>,
}

/// Offsets in bytes objects.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct BytesOffsets {
    /// `ob_sval`.
    pub ob_sval: Option<u64>,
}

/// Offsets and bit positions in PEP 393 strings.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct UnicodeOffsets {
    /// `length` (code points).
    pub length: Option<u64>,
    /// The `state` bitfield word.
    pub state: Option<u64>,
    /// Data start of compact ASCII strings.
    pub ascii_data: Option<u64>,
    /// Data start of compact non-ASCII strings.
    pub compact_data: Option<u64>,
    /// The `data` pointer of legacy strings.
    pub legacy_data: Option<u64>,
    /// Bit position of `kind` in `state`.
    pub kind_shift: Option<u64>,
    /// Bit position of `compact` in `state`.
    pub compact_bit: Option<u64>,
    /// Bit position of `ascii` in `state`.
    pub ascii_bit: Option<u64>,
}

/// Offsets in `_PyStackChunk`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct StackChunkOffsets {
    /// `previous`.
    pub previous: Option<u64>,
    /// `size`.
    pub size: Option<u64>,
    /// `top`.
    pub top: Option<u64>,
    /// `data`.
    pub data: Option<u64>,
}

/// Offsets in `PyDictObject`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct DictOffsets {
    /// `ma_used`.
    pub used: Option<u64>,
    /// `ma_mask` (2.7).
    pub mask: Option<u64>,
    /// `ma_table` (2.7).
    pub table: Option<u64>,
    /// `ma_keys` (3.6+).
    pub keys: Option<u64>,
    /// `ma_values` (3.6+).
    pub values: Option<u64>,
}

/// Offsets in `PyDictKeysObject` (3.6+).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct DictKeysOffsets {
    /// `dk_size` (3.6–3.10).
    pub size: Option<u64>,
    /// `dk_log2_size` (3.11+).
    pub log2_size: Option<u64>,
    /// `dk_log2_index_bytes` (3.11+).
    pub log2_index_bytes: Option<u64>,
    /// `dk_kind` (3.11+).
    pub kind: Option<u64>,
    /// The value of `DICT_KEYS_GENERAL` (3.11+).
    pub general_kind: Option<u64>,
    /// `dk_nentries`.
    pub nentries: Option<u64>,
    /// `dk_indices`.
    pub indices: Option<u64>,
}

/// Offsets in dict entries.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct DictEntryOffsets {
    /// `me_key` of an entry with a hash.
    pub key: Option<u64>,
    /// `me_value` of an entry with a hash.
    pub value: Option<u64>,
    /// Size of an entry with a hash.
    pub size: Option<u64>,
    /// `PyDictUnicodeEntry.me_key` (3.11+).
    pub unicode_key: Option<u64>,
    /// `PyDictUnicodeEntry.me_value` (3.11+).
    pub unicode_value: Option<u64>,
    /// `sizeof(PyDictUnicodeEntry)` (3.11+).
    pub unicode_size: Option<u64>,
}

/// Offsets in the block `ma_values` points to.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct DictValuesOffsets {
    /// Start of the value array.
    pub values: Option<u64>,
    /// `capacity` byte (3.13+).
    pub capacity: Option<u64>,
    /// `valid` byte (3.13+).
    pub valid: Option<u64>,
}

/// Offsets in type objects, and `tp_flags` bits.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct TypeOffsets {
    /// `tp_name` (a C string).
    pub name: Option<u64>,
    /// `tp_basicsize`.
    pub basicsize: Option<u64>,
    /// `tp_flags`.
    pub flags: Option<u64>,
    /// `tp_dictoffset`.
    pub dictoffset: Option<u64>,
    /// `PyHeapTypeObject.ht_cached_keys` (3.6+).
    pub cached_keys: Option<u64>,
    /// `Py_TPFLAGS_HEAPTYPE` (a mask).
    pub heaptype_flag: Option<u64>,
    /// `Py_TPFLAGS_MANAGED_DICT` (a mask, 3.11+).
    pub managed_dict_flag: Option<u64>,
    /// `Py_TPFLAGS_INLINE_VALUES` (a mask, 3.13+).
    pub inline_values_flag: Option<u64>,
}

/// Distances, in bytes before an object's start, of its managed dict words (3.11+).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ManagedDictOffsets {
    /// The managed dict pointer (3.12: the tagged dict-or-values word).
    pub dict_before: Option<u64>,
    /// The values pointer (3.11).
    pub values_before: Option<u64>,
}

/// Offsets in `PyModuleObject`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ModuleOffsets {
    /// `md_dict`.
    pub dict: Option<u64>,
}

/// Offsets and constants of `PyLongObject`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct LongOffsets {
    /// `ob_digit`.
    pub digits: Option<u64>,
    /// `PyLong_SHIFT`: bits per digit.
    pub digit_bits: Option<u64>,
    /// `long_value.lv_tag` (3.12+).
    pub tag: Option<u64>,
    /// `_PyLong_NON_SIZE_BITS` (3.12+).
    pub tag_size_shift: Option<u64>,
    /// `_PyLong_SIGN_MASK` (3.12+).
    pub tag_sign_mask: Option<u64>,
}

/// Offsets in `PyIntObject` (2.7).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct IntOffsets {
    /// `ob_ival`.
    pub ival: Option<u64>,
}

/// Offsets in `_PyCodeArray`, the per-thread bytecode copies of free-threaded 3.14+.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct CodeArrayOffsets {
    /// `entries`, the array of bytecode pointers (after `size`).
    pub entries: Option<u64>,
}

/// A field a walker needs is missing from the table for this interpreter.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the layout table has no `{0}`")]
pub struct MissingField(pub &'static str);

/// Turn an optional offset into a required one, naming it if it is absent.
pub fn require(value: Option<u64>, name: &'static str) -> Result<u64, MissingField> {
    value.ok_or(MissingField(name))
}

/// The runtime address of the symbol `name` in `binary`, naming it if it is absent.
pub fn require_symbol(
    binary: &crate::target::binary::Binary,
    name: &'static str,
) -> Result<u64, MissingField> {
    binary
        .symbol(name)
        .map(|s| s.address)
        .ok_or(MissingField(name))
}

impl Layout {
    /// The embedded table for `version` and `flavour`, if there is one, as raw TOML so
    /// that values read from the target can replace some before it becomes a
    /// [`Layout`] (see [`super::debug_offsets`]).
    pub fn table(version: PythonVersion, flavour: Flavour) -> Option<toml::Table> {
        let stem = format!("{}.{}{}", version.major, version.minor, flavour.suffix());
        let (_, text) = OFFSET_TABLES.iter().find(|(name, _)| *name == stem)?;
        Some(toml::from_str(text).expect("embedded layout tables are valid (unit-tested)"))
    }

    /// The layout a (possibly adjusted) table describes.
    pub fn from_table(table: toml::Table) -> Result<Layout, toml::de::Error> {
        toml::Value::Table(table).try_into()
    }

    /// The names of all embedded tables, e.g. `["2.7", "3.6", …, "3.13t"]`, in version
    /// order, for "supported versions" messages.
    pub fn available() -> Vec<&'static str> {
        let mut names: Vec<&str> = OFFSET_TABLES.iter().map(|(name, _)| *name).collect();
        names.sort_by_key(|name| {
            let digits: String = name
                .chars()
                .take_while(|c| *c != 'd' && *c != 't')
                .collect();
            let (major, minor) = digits.split_once('.').unwrap_or((&digits, "0"));
            (
                major.parse::<u32>().unwrap_or(0),
                minor.parse::<u32>().unwrap_or(0),
                name.len(),
            )
        });
        names
    }
}

/// Every embedded table with its name and its version's rules, for the tests that
/// check each table has what a reader needs.
#[cfg(test)]
pub fn every_table() -> Vec<(&'static str, Layout, super::version::Semantics)> {
    OFFSET_TABLES
        .iter()
        .map(|(name, text)| {
            let layout: Layout = toml::from_str(text).unwrap();
            let version = PythonVersion::from_hex(layout.python.version_hex).unwrap();
            let rules = super::version::Semantics::for_version(version).unwrap();
            (*name, layout, rules)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_embedded_table_parses_and_matches_its_name() {
        assert!(!OFFSET_TABLES.is_empty());
        for (name, text) in OFFSET_TABLES {
            let layout: Layout =
                toml::from_str(text).unwrap_or_else(|e| panic!("python-offsets/{name}.toml: {e}"));
            let version = PythonVersion::from_hex(layout.python.version_hex)
                .unwrap_or_else(|| panic!("{name}: bad version_hex"));
            let flavour = layout.python.flavour.expect("flavour");
            assert_eq!(
                format!("{}.{}{}", version.major, version.minor, flavour.suffix()),
                *name
            );
            assert!(layout.object.ob_type.is_some(), "{name}: ob_type");
            assert!(layout.code.filename.is_some(), "{name}: co_filename");
        }
    }

    #[test]
    fn available_is_in_version_order() {
        let names = Layout::available();
        let pos = |n: &str| names.iter().position(|x| *x == n);
        if let (Some(a), Some(b)) = (pos("3.9"), pos("3.10")) {
            assert!(a < b);
        }
    }
}
