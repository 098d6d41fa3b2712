#!/usr/bin/env python3
"""Generate a python-offsets TOML file from one CPython version's headers.

Writes a small C program that includes Python.h and (with Py_BUILD_CORE defined) the
internal headers of that version, prints offsetof()/sizeof() values for the fields in
the table ROWS below (each row guarded by `#if` on PY_VERSION_HEX, so only fields that
exist in that version are printed), compiles it with gcc, runs it and prints the TOML
file (schema: python-offsets/README.md) to stdout.

For 3.13+ it also writes [debug_offsets]: where inside `_Py_DebugOffsets` the value of
each schema entry in DEBUG_ROWS is kept, checked against the headers' own initializer of
that struct. It also checks that the headers' pyconfig.h matches --flavour.

    python3 python-offsets/generate.py \
        --include /root/.pyenv/versions/3.11.7/include/python3.11 --flavour default

    # a Debian debug build: release headers, the debug build's pyconfig.h
    python3 python-offsets/generate.py --flavour debug \
        --include /usr/include/python3.14 --extra-include /usr/include \
        --pyconfig /usr/include/x86_64-linux-gnu/python3.14d/pyconfig.h

Standard library only.
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile


def hexv(version):
    """'3.11' -> '0x030B0000' (the PY_VERSION_HEX of 3.11.0a0)."""
    major, minor = (int(x) for x in version.split("."))
    return "0x%02X%02X0000" % (major, minor)


def next_minor(version):
    major, minor = (int(x) for x in version.split("."))
    return "%d.%d" % (major, minor + 1)


def ver(first=None, last=None):
    """C condition: first <= version's minor <= last (both inclusive, either open)."""
    parts = []
    if first is not None:
        parts.append("PY_VERSION_HEX >= %s" % hexv(first))
    if last is not None:
        parts.append("PY_VERSION_HEX < %s" % hexv(next_minor(last)))
    return " && ".join(parts) if parts else "1"


FT = "defined(Py_GIL_DISABLED)"


def both(*conds):
    return " && ".join("(%s)" % c for c in conds)


# Section order in the output file (README.md schema).
SECTIONS = [
    "python", "runtime", "interpreter", "gil", "gc", "thread", "frame", "frame_owner",
    "stackref", "code", "code_array", "object", "bytes", "unicode", "stack_chunk",
    "dict", "dict_keys", "dict_entry", "dict_values", "type", "managed_dict", "module",
    "long", "int", "tuple", "list", "float", "cell", "local_kind", "gen", "frame_state",
    "debug_offsets",
]

# (section, key, C expression, C preprocessor condition under which the field exists).
# A key may appear in several rows as long as their conditions do not overlap.
# Within a section, keys are written in the order of their first row here.
ROWS = [
    # _PyRuntimeState (3.7+)
    ("runtime", "interpreters_head", "offsetof(_PyRuntimeState, interpreters.head)", ver("3.7")),
    ("runtime", "gilstate_tstate_current", "offsetof(_PyRuntimeState, gilstate.tstate_current)", ver("3.7", "3.11")),
    ("runtime", "gil", "offsetof(_PyRuntimeState, ceval.gil)", ver("3.7", "3.11")),
    ("runtime", "gc", "offsetof(_PyRuntimeState, gc)", ver("3.7", "3.8")),

    # PyInterpreterState
    ("interpreter", "next", "offsetof(PyInterpreterState, next)", ver()),
    ("interpreter", "threads_head", "offsetof(PyInterpreterState, tstate_head)", ver(None, "3.10")),
    ("interpreter", "threads_head", "offsetof(PyInterpreterState, threads.head)", ver("3.11")),
    ("interpreter", "ceval_gil", "offsetof(PyInterpreterState, ceval.gil)", ver("3.12")),
    ("interpreter", "gc", "offsetof(PyInterpreterState, gc)", ver("3.9")),
    ("interpreter", "stoptheworld_requester",
     "offsetof(PyInterpreterState, stoptheworld.requester)", both(ver("3.13"), FT)),
    ("interpreter", "code_object_generation",
     "offsetof(PyInterpreterState, _code_object_generation)", ver("3.14")),
    # 3.13 numbers each new code object from this u32 (3.12 from the static
    # `_Py_next_func_version`, found by symbol); 3.14+ counts frees instead
    ("interpreter", "code_next_version",
     "offsetof(PyInterpreterState, func_state.next_version)", ver("3.13", "3.13")),

    # struct _gil_runtime_state (3.7+)
    ("gil", "locked", "offsetof(struct _gil_runtime_state, locked)", ver("3.7")),
    ("gil", "last_holder", "offsetof(struct _gil_runtime_state, last_holder)", ver("3.7")),
    ("gil", "enabled", "offsetof(struct _gil_runtime_state, enabled)", both(ver("3.13"), FT)),
    # the struct's end: its locks (`cond`, `mutex`, `switch_cond`, `switch_mutex`) lie
    # between `switch_number` and it, and a thread waiting for the GIL sleeps on them
    ("gil", "size", "sizeof(struct _gil_runtime_state)", ver("3.7")),

    # struct _gc_runtime_state (3.7+; in _PyRuntimeState until 3.8, then per interpreter;
    # 2.7 and 3.6 keep the flag in gcmodule.c's static `collecting`)
    ("gc", "collecting", "offsetof(struct _gc_runtime_state, collecting)", ver("3.7")),
    # the frame that started the collection running (3.15+)
    ("gc", "frame", "offsetof(struct _gc_runtime_state, frame)", ver("3.15")),

    # PyThreadState
    ("thread", "prev", "offsetof(PyThreadState, prev)", ver("3.6")),
    ("thread", "next", "offsetof(PyThreadState, next)", ver()),
    ("thread", "interp", "offsetof(PyThreadState, interp)", ver()),
    ("thread", "frame", "offsetof(PyThreadState, frame)", ver(None, "3.10")),
    ("thread", "cframe", "offsetof(PyThreadState, cframe)", ver("3.11", "3.12")),
    ("thread", "cframe_current_frame", "offsetof(_PyCFrame, current_frame)", ver("3.11", "3.12")),
    ("thread", "current_frame", "offsetof(PyThreadState, current_frame)", ver("3.13")),
    ("thread", "base_frame", "offsetof(PyThreadState, base_frame)", ver("3.15")),
    ("thread", "thread_id", "offsetof(PyThreadState, thread_id)", ver()),
    ("thread", "native_thread_id", "offsetof(PyThreadState, native_thread_id)", ver("3.11")),
    ("thread", "status", "offsetof(PyThreadState, _status)", ver("3.12")),
    ("thread", "holds_gil", "offsetof(PyThreadState, holds_gil)", ver("3.14")),
    ("thread", "datastack_chunk", "offsetof(PyThreadState, datastack_chunk)", ver("3.11")),
    ("thread", "size", "sizeof(PyThreadState)", ver()),

    # PyFrameObject (<= 3.10) / _PyInterpreterFrame (3.11+)
    ("frame", "previous", "offsetof(PyFrameObject, f_back)", ver(None, "3.10")),
    ("frame", "previous", "offsetof(_PyInterpreterFrame, previous)", ver("3.11")),
    ("frame", "code", "offsetof(PyFrameObject, f_code)", ver(None, "3.10")),
    ("frame", "code", "offsetof(_PyInterpreterFrame, f_code)", ver("3.11", "3.12")),
    ("frame", "code", "offsetof(_PyInterpreterFrame, f_executable)", ver("3.13")),
    ("frame", "lasti", "offsetof(PyFrameObject, f_lasti)", ver(None, "3.10")),
    ("frame", "instr", "offsetof(_PyInterpreterFrame, prev_instr)", ver("3.11", "3.12")),
    ("frame", "instr", "offsetof(_PyInterpreterFrame, instr_ptr)", ver("3.13")),
    ("frame", "owner", "offsetof(_PyInterpreterFrame, owner)", ver("3.11")),
    ("frame", "is_entry", "offsetof(_PyInterpreterFrame, is_entry)", ver("3.11", "3.11")),
    ("frame", "tlbc_index", "offsetof(_PyInterpreterFrame, tlbc_index)", both(ver("3.14"), FT)),
    ("frame", "stacktop", "offsetof(_PyInterpreterFrame, stacktop)", ver("3.11", "3.13")),
    ("frame", "stackpointer", "offsetof(_PyInterpreterFrame, stackpointer)", ver("3.14")),
    ("frame", "funcobj", "offsetof(_PyInterpreterFrame, f_funcobj)", ver("3.14")),
    ("frame", "localsplus", "offsetof(PyFrameObject, f_localsplus)", ver(None, "3.10")),
    ("frame", "localsplus", "offsetof(_PyInterpreterFrame, localsplus)", ver("3.11")),
    ("frame", "size", "sizeof(PyFrameObject)", ver(None, "3.10")),
    ("frame", "size", "sizeof(_PyInterpreterFrame)", ver("3.11")),

    # enum _frameowner values (constants, not offsets). The enum cannot be tested with
    # #ifdef, so each value is guarded by the versions whose headers define it.
    ("frame_owner", "thread", "FRAME_OWNED_BY_THREAD", ver("3.11")),
    ("frame_owner", "generator", "FRAME_OWNED_BY_GENERATOR", ver("3.11")),
    ("frame_owner", "frame_object", "FRAME_OWNED_BY_FRAME_OBJECT", ver("3.11")),
    ("frame_owner", "cstack", "FRAME_OWNED_BY_CSTACK", ver("3.12", "3.14")),
    ("frame_owner", "interpreter", "FRAME_OWNED_BY_INTERPRETER", ver("3.14")),

    # _PyStackRef (3.14+: f_executable and f_funcobj are tagged words)
    ("stackref", "tag_bits", "Py_TAG_BITS", ver("3.14")),

    # PyCodeObject
    ("code", "firstlineno", "offsetof(PyCodeObject, co_firstlineno)", ver()),
    ("code", "filename", "offsetof(PyCodeObject, co_filename)", ver()),
    ("code", "name", "offsetof(PyCodeObject, co_name)", ver()),
    ("code", "qualname", "offsetof(PyCodeObject, co_qualname)", ver("3.11")),
    ("code", "linetable", "offsetof(PyCodeObject, co_lnotab)", ver(None, "3.9")),
    ("code", "linetable", "offsetof(PyCodeObject, co_linetable)", ver("3.10")),
    ("code", "code", "offsetof(PyCodeObject, co_code)", ver(None, "3.10")),
    ("code", "code_adaptive", "offsetof(PyCodeObject, co_code_adaptive)", ver("3.11")),
    ("code", "tlbc", "offsetof(PyCodeObject, co_tlbc)", both(ver("3.14"), FT)),
    ("code", "size", "sizeof(PyCodeObject)", ver()),

    # _PyCodeArray: per-thread bytecode copies behind co_tlbc (free-threaded 3.14+)
    ("code_array", "size", "offsetof(_PyCodeArray, size)", both(ver("3.14"), FT)),
    ("code_array", "entries", "offsetof(_PyCodeArray, entries)", both(ver("3.14"), FT)),

    # Object header
    ("object", "ob_type", "offsetof(PyObject, ob_type)", ver()),
    ("object", "ob_size", "offsetof(PyVarObject, ob_size)", ver()),
    ("object", "size", "sizeof(PyObject)", ver()),

    # bytes (2.7: str)
    ("bytes", "ob_sval", "offsetof(PyStringObject, ob_sval)", ver(None, "2.7")),
    ("bytes", "ob_sval", "offsetof(PyBytesObject, ob_sval)", ver("3.0")),

    # PEP 393 str (3.3+; this project covers 3.6+)
    ("unicode", "length", "offsetof(PyASCIIObject, length)", ver("3.3")),
    ("unicode", "state", "offsetof(PyASCIIObject, state)", ver("3.3")),
    ("unicode", "ascii_data", "sizeof(PyASCIIObject)", ver("3.3")),
    ("unicode", "compact_data", "sizeof(PyCompactUnicodeObject)", ver("3.3")),
    ("unicode", "legacy_data", "offsetof(PyUnicodeObject, data)", ver("3.3")),
    ("unicode", "kind_shift", "STATE_BIT(kind)", ver("3.3")),
    ("unicode", "compact_bit", "STATE_BIT(compact)", ver("3.3")),
    ("unicode", "ascii_bit", "STATE_BIT(ascii)", ver("3.3")),

    # _PyStackChunk (3.11+)
    ("stack_chunk", "previous", "offsetof(_PyStackChunk, previous)", ver("3.11")),
    ("stack_chunk", "size", "offsetof(_PyStackChunk, size)", ver("3.11")),
    ("stack_chunk", "top", "offsetof(_PyStackChunk, top)", ver("3.11")),
    ("stack_chunk", "data", "offsetof(_PyStackChunk, data)", ver("3.11")),

    # sys.modules, the way to thread names (threading._active)
    ("interpreter", "modules", "offsetof(PyInterpreterState, modules)", ver(None, "3.11")),
    ("interpreter", "modules", "offsetof(PyInterpreterState, imports.modules)", ver("3.12")),

    # PyDictObject (2.7: open-addressing table; 3.6+: compact, keys object + values)
    ("dict", "used", "offsetof(PyDictObject, ma_used)", ver()),
    ("dict", "mask", "offsetof(PyDictObject, ma_mask)", ver(None, "2.7")),
    ("dict", "table", "offsetof(PyDictObject, ma_table)", ver(None, "2.7")),
    ("dict", "keys", "offsetof(PyDictObject, ma_keys)", ver("3.6")),
    ("dict", "values", "offsetof(PyDictObject, ma_values)", ver("3.6")),

    # PyDictKeysObject (3.6-3.10: the transcription in C_PRELUDE)
    ("dict_keys", "size", "offsetof(PyDictKeysObject, dk_size)", ver("3.6", "3.10")),
    ("dict_keys", "log2_size", "offsetof(PyDictKeysObject, dk_log2_size)", ver("3.11")),
    ("dict_keys", "log2_index_bytes", "offsetof(PyDictKeysObject, dk_log2_index_bytes)", ver("3.11")),
    ("dict_keys", "kind", "offsetof(PyDictKeysObject, dk_kind)", ver("3.11")),
    ("dict_keys", "general_kind", "DICT_KEYS_GENERAL", ver("3.11")),
    ("dict_keys", "nentries", "offsetof(PyDictKeysObject, dk_nentries)", ver("3.6")),
    ("dict_keys", "indices", "offsetof(PyDictKeysObject, dk_indices)", ver("3.6")),

    # Dict entries: 2.7 PyDictEntry, 3.6+ PyDictKeyEntry, 3.11+ also PyDictUnicodeEntry
    ("dict_entry", "key", "offsetof(PyDictEntry, me_key)", ver(None, "2.7")),
    ("dict_entry", "key", "offsetof(PyDictKeyEntry, me_key)", ver("3.6")),
    ("dict_entry", "value", "offsetof(PyDictEntry, me_value)", ver(None, "2.7")),
    ("dict_entry", "value", "offsetof(PyDictKeyEntry, me_value)", ver("3.6")),
    ("dict_entry", "size", "sizeof(PyDictEntry)", ver(None, "2.7")),
    ("dict_entry", "size", "sizeof(PyDictKeyEntry)", ver("3.6")),
    ("dict_entry", "unicode_key", "offsetof(PyDictUnicodeEntry, me_key)", ver("3.11")),
    ("dict_entry", "unicode_value", "offsetof(PyDictUnicodeEntry, me_value)", ver("3.11")),
    ("dict_entry", "unicode_size", "sizeof(PyDictUnicodeEntry)", ver("3.11")),

    # Split-table values (up to 3.10 ma_values is a bare PyObject ** array)
    ("dict_values", "values", "0", ver("3.6", "3.10")),
    ("dict_values", "values", "offsetof(PyDictValues, values)", ver("3.11")),
    ("dict_values", "capacity", "offsetof(PyDictValues, capacity)", ver("3.13")),
    ("dict_values", "valid", "offsetof(PyDictValues, valid)", ver("3.13")),

    # Type objects, and where an instance keeps its attributes
    ("type", "basicsize", "offsetof(PyTypeObject, tp_basicsize)", ver()),
    ("type", "flags", "offsetof(PyTypeObject, tp_flags)", ver()),
    ("type", "dictoffset", "offsetof(PyTypeObject, tp_dictoffset)", ver()),
    ("type", "cached_keys", "offsetof(PyHeapTypeObject, ht_cached_keys)", ver("3.6")),
    ("type", "heaptype_flag", "Py_TPFLAGS_HEAPTYPE", ver()),
    ("type", "managed_dict_flag", "Py_TPFLAGS_MANAGED_DICT", ver("3.11")),
    ("type", "inline_values_flag", "Py_TPFLAGS_INLINE_VALUES", ver("3.13")),
    ("managed_dict", "dict_before", "BYTES_BEFORE(_PyObject_ManagedDictPointer)", ver("3.11", "3.11")),
    ("managed_dict", "dict_before", "BYTES_BEFORE(_PyObject_DictOrValuesPointer)", ver("3.12", "3.12")),
    ("managed_dict", "dict_before", "BYTES_BEFORE(_PyObject_ManagedDictPointer)", ver("3.13")),
    ("managed_dict", "values_before", "BYTES_BEFORE(_PyObject_ValuesPointer)", ver("3.11", "3.11")),

    # Module objects (before 3.10 PyModuleObject is private: see C_PRELUDE)
    ("module", "dict", "offsetof(PyModuleObject, md_dict)", ver()),

    # Local variables: their names in the code object, their values in the frame
    ("code", "argcount", "offsetof(PyCodeObject, co_argcount)", ver()),
    ("code", "kwonlyargcount", "offsetof(PyCodeObject, co_kwonlyargcount)", ver("3.0")),
    ("code", "varnames", "offsetof(PyCodeObject, co_varnames)", ver(None, "3.10")),
    ("code", "cellvars", "offsetof(PyCodeObject, co_cellvars)", ver(None, "3.10")),
    ("code", "freevars", "offsetof(PyCodeObject, co_freevars)", ver(None, "3.10")),
    ("code", "localsplusnames", "offsetof(PyCodeObject, co_localsplusnames)", ver("3.11")),
    ("code", "localspluskinds", "offsetof(PyCodeObject, co_localspluskinds)", ver("3.11")),
    ("local_kind", "hidden", "CO_FAST_HIDDEN", both(ver("3.11"), "defined(CO_FAST_HIDDEN)")),
    ("local_kind", "local", "CO_FAST_LOCAL", ver("3.11")),
    ("local_kind", "cell", "CO_FAST_CELL", ver("3.11")),
    ("local_kind", "free", "CO_FAST_FREE", ver("3.11")),
    ("type", "name", "offsetof(PyTypeObject, tp_name)", ver()),
    ("tuple", "items", "offsetof(PyTupleObject, ob_item)", ver()),
    ("list", "items", "offsetof(PyListObject, ob_item)", ver()),
    ("float", "value", "offsetof(PyFloatObject, ob_fval)", ver()),
    ("cell", "ref", "offsetof(PyCellObject, ob_ref)", ver()),

    # PyGenObject / PyCoroObject (3.14+, for asyncio tasks): the frame inlined in the
    # object and its state, an enum _framestate value (int8_t)
    ("gen", "iframe", "offsetof(PyGenObject, gi_iframe)", ver("3.14")),
    ("gen", "frame_state", "offsetof(PyGenObject, gi_frame_state)", ver("3.14")),

    # enum _framestate values (constants): a suspended generator's frame, and one
    # suspended in `await` (`yield from`), whose awaitable is on top of its stack
    ("frame_state", "suspended", "FRAME_SUSPENDED", ver("3.14")),
    ("frame_state", "suspended_yield_from", "FRAME_SUSPENDED_YIELD_FROM", ver("3.14")),
    ("frame_state", "suspended_yield_from_locked", "FRAME_SUSPENDED_YIELD_FROM_LOCKED",
     ver("3.15")),
    ("frame_state", "executing", "FRAME_EXECUTING", ver("3.14")),

    # int objects: 3.x (and 2.7 long) PyLongObject, 2.7 PyIntObject
    ("long", "digits", "offsetof(PyLongObject, ob_digit)", ver(None, "3.11")),
    ("long", "digits", "offsetof(PyLongObject, long_value.ob_digit)", ver("3.12")),
    ("long", "digit_bits", "PyLong_SHIFT", ver()),
    ("long", "tag", "offsetof(PyLongObject, long_value.lv_tag)", ver("3.12")),
    ("long", "tag_size_shift", "_PyLong_NON_SIZE_BITS", ver("3.12")),
    ("long", "tag_sign_mask", "_PyLong_SIGN_MASK", ver("3.12")),
    ("int", "ival", "offsetof(PyIntObject, ob_ival)", ver(None, "2.7")),
]

# `_Py_DebugOffsets` (3.13+), the struct at the start of `_PyRuntime` in which CPython
# publishes its own offsets. Each row: (schema entry "section.key", member of
# _Py_DebugOffsets holding that value, condition). The table gets, in [debug_offsets],
# the byte position of that member inside _Py_DebugOffsets. Map only members whose value
# means exactly what the schema key means: a reader overwrites the table's value with
# the target's. generate.py checks, from the header's own initializer, that every mapped
# member holds the value the table has for its key.
DEBUG_ROWS = [
    ("runtime.interpreters_head", "runtime_state.interpreters_head", ver("3.13")),

    ("interpreter.next", "interpreter_state.next", ver("3.13")),
    ("interpreter.threads_head", "interpreter_state.threads_head", ver("3.13")),
    ("interpreter.ceval_gil", "interpreter_state.ceval_gil", ver("3.13")),
    ("interpreter.gc", "interpreter_state.gc", ver("3.13")),
    ("gc.collecting", "gc.collecting", ver("3.13")),
    ("gc.frame", "gc.frame", ver("3.15")),
    ("interpreter.modules", "interpreter_state.imports_modules", ver("3.13")),
    ("interpreter.code_object_generation", "interpreter_state.code_object_generation",
     ver("3.14")),

    ("thread.prev", "thread_state.prev", ver("3.13")),
    ("thread.next", "thread_state.next", ver("3.13")),
    ("thread.interp", "thread_state.interp", ver("3.13")),
    ("thread.current_frame", "thread_state.current_frame", ver("3.13")),
    ("thread.base_frame", "thread_state.base_frame", ver("3.15")),
    ("thread.thread_id", "thread_state.thread_id", ver("3.13")),
    ("thread.native_thread_id", "thread_state.native_thread_id", ver("3.13")),
    ("thread.status", "thread_state.status", ver("3.13")),
    ("thread.holds_gil", "thread_state.holds_gil", ver("3.15")),
    ("thread.datastack_chunk", "thread_state.datastack_chunk", ver("3.13")),
    ("thread.size", "thread_state.size", ver("3.13")),

    ("frame.previous", "interpreter_frame.previous", ver("3.13")),
    ("frame.code", "interpreter_frame.executable", ver("3.13")),
    ("frame.instr", "interpreter_frame.instr_ptr", ver("3.13")),
    ("frame.owner", "interpreter_frame.owner", ver("3.13")),
    ("frame.localsplus", "interpreter_frame.localsplus", ver("3.13")),
    ("frame.stackpointer", "interpreter_frame.stackpointer", ver("3.14")),
    # 0 (not an offset) in default builds: mapped only where the field exists.
    ("frame.tlbc_index", "interpreter_frame.tlbc_index", both(ver("3.14"), FT)),
    ("frame.size", "interpreter_frame.size", ver("3.13")),

    ("code.firstlineno", "code_object.firstlineno", ver("3.13")),
    ("code.filename", "code_object.filename", ver("3.13")),
    ("code.name", "code_object.name", ver("3.13")),
    ("code.qualname", "code_object.qualname", ver("3.13")),
    ("code.linetable", "code_object.linetable", ver("3.13")),
    ("code.code_adaptive", "code_object.co_code_adaptive", ver("3.13")),
    ("code.tlbc", "code_object.co_tlbc", both(ver("3.14"), FT)),
    ("code.size", "code_object.size", ver("3.13")),

    ("object.ob_type", "pyobject.ob_type", ver("3.13")),
    # offsetof(PyBytesObject, ob_base.ob_size): ob_base is the PyVarObject at offset 0,
    # so this is PyVarObject.ob_size for every variable-size object.
    ("object.ob_size", "bytes_object.ob_size", ver("3.13")),
    ("object.size", "pyobject.size", ver("3.13")),

    ("bytes.ob_sval", "bytes_object.ob_sval", ver("3.13")),

    ("unicode.length", "unicode_object.length", ver("3.13")),
    ("unicode.state", "unicode_object.state", ver("3.13")),
    ("unicode.ascii_data", "unicode_object.asciiobject_size", ver("3.13")),
    ("unicode.compact_data", "unicode_object.compactunicodeobject_size", ver("3.15")),

    ("dict.keys", "dict_object.ma_keys", ver("3.13")),
    ("dict.values", "dict_object.ma_values", ver("3.13")),

    ("type.basicsize", "type_object.tp_basicsize", ver("3.15")),
    ("type.flags", "type_object.tp_flags", ver("3.13")),
    ("type.dictoffset", "type_object.tp_dictoffset", ver("3.15")),
    ("type.cached_keys", "heap_type_object.ht_cached_keys", ver("3.15")),

    ("long.digits", "long_object.ob_digit", ver("3.13")),
    ("long.tag", "long_object.lv_tag", ver("3.13")),

    ("code.argcount", "code_object.argcount", ver("3.13")),
    ("code.localsplusnames", "code_object.localsplusnames", ver("3.13")),
    ("code.localspluskinds", "code_object.localspluskinds", ver("3.13")),
    ("type.name", "type_object.tp_name", ver("3.13")),
    ("tuple.items", "tuple_object.ob_item", ver("3.13")),
    ("list.items", "list_object.ob_item", ver("3.13")),
    ("float.value", "float_object.ob_fval", ver("3.13")),
    ("gen.iframe", "gen_object.gi_iframe", ver("3.14")),
    ("gen.frame_state", "gen_object.gi_frame_state", ver("3.14")),
]

# Plain keys of [debug_offsets] (no dot): facts about the struct itself.
DEBUG_STRUCT_ROWS = [
    ("size", "sizeof(_Py_DebugOffsets)", ver("3.13")),
    ("version", "offsetof(_Py_DebugOffsets, version)", ver("3.13")),
    ("free_threaded", "offsetof(_Py_DebugOffsets, free_threaded)", ver("3.13")),
]


C_PRELUDE = r"""
/* Generated by python-offsets/generate.py; compiled and run, then thrown away. */
#define Py_BUILD_CORE 1
#include "Python.h"

#if PY_VERSION_HEX < 0x03070000
#  include "frameobject.h"
#  include "code.h"
#elif PY_VERSION_HEX < 0x03080000
#  include "internal/pystate.h"          /* _PyRuntimeState, _gil_runtime_state */
#  include "frameobject.h"
#  include "code.h"
#elif PY_VERSION_HEX < 0x03090000
#  include "internal/pycore_pystate.h"   /* _PyRuntimeState, struct _is */
#  include "frameobject.h"
#  include "code.h"
#elif PY_VERSION_HEX < 0x030B0000
#  include "internal/pycore_runtime.h"   /* _PyRuntimeState */
#  include "internal/pycore_interp.h"    /* struct _is */
#  include "internal/pycore_gil.h"
#  include "frameobject.h"
#  include "code.h"
#else
#  include "internal/pycore_runtime.h"
#  include "internal/pycore_interp.h"
#  include "internal/pycore_gil.h"
#  include "internal/pycore_frame.h"     /* _PyInterpreterFrame */
#  include "internal/pycore_code.h"
#endif

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if PY_VERSION_HEX < 0x030B0000
#  include "longintrepr.h"                /* PyLongObject */
#endif
#if PY_VERSION_HEX >= 0x030B0000
#  include "internal/pycore_object.h"     /* managed dict accessors */
#  include "internal/pycore_dict.h"       /* PyDictKeysObject, PyDictValues */
#endif
#if PY_VERSION_HEX >= 0x030A0000
#  include "internal/pycore_moduleobject.h"
#endif
#if PY_VERSION_HEX >= 0x030E0000
#  include "internal/pycore_genobject.h"   /* PyGenObject's fields */
#endif
#if PY_VERSION_HEX < 0x030A0000
/* Before 3.10 PyModuleObject is private to Objects/moduleobject.c; its first member
   after the header has always been md_dict. */
typedef struct { PyObject_HEAD PyObject *md_dict; } PyModuleObject;
#endif
#if PY_VERSION_HEX >= 0x03060000 && PY_VERSION_HEX < 0x030B0000
/* 3.6-3.10 keep the dict keys object in Objects/dict-common.h, which is not installed.
   Transcribed here; the same in every version of that range (3.6 declares dk_indices
   as a union of arrays, at the same offset). */
typedef struct {
    Py_hash_t me_hash;
    PyObject *me_key;
    PyObject *me_value;
} PyDictKeyEntry;
struct _dictkeysobject {
    Py_ssize_t dk_refcnt;
    Py_ssize_t dk_size;
    void *dk_lookup;
    Py_ssize_t dk_usable;
    Py_ssize_t dk_nentries;
    char dk_indices[];
};
#endif

#if PY_VERSION_HEX >= 0x030B0000
/* How many bytes before an object's start the pointer returned by the header's own
   accessor ACCESSOR(obj) lies, for an object whose type has a managed dict (and, from
   3.13, inline values). */
static char fake_storage[256];
static PyTypeObject fake_type;
static PyObject *fake_object(void)
{
    PyObject *obj = (PyObject *)(fake_storage + 128);
    fake_type.tp_flags = Py_TPFLAGS_MANAGED_DICT
#  if PY_VERSION_HEX >= 0x030D0000
        | Py_TPFLAGS_INLINE_VALUES
#  endif
        ;
    fake_type.tp_basicsize = sizeof(PyObject);
    obj->ob_type = &fake_type;
    return obj;
}
#  define BYTES_BEFORE(accessor) \
    ((char *)fake_object() - (char *)accessor(fake_object()))
#endif

#if PY_VERSION_HEX >= 0x03030000
/* Bit position (in the raw 32-bit `state` word of a PyASCIIObject) of the lowest bit
   of bitfield `field`: set the field to 1 in a zeroed object and see which bit moved. */
static long state_bit(uint32_t word, const char *field)
{
    if (word == 0 || (word & (word - 1)) != 0) {
        fprintf(stderr, "state.%s = 1 gave word 0x%08x, not a single bit\n",
                field, (unsigned)word);
        exit(2);
    }
    return __builtin_ctz(word);
}
#define STATE_BIT(field) __extension__ ({                                   \
        PyASCIIObject o_;                                                   \
        uint32_t w_;                                                        \
        memset(&o_, 0, sizeof o_);                                          \
        o_.state.field = 1;                                                 \
        memcpy(&w_, (char *)&o_ + offsetof(PyASCIIObject, state), 4);       \
        state_bit(w_, #field);                                              \
    })
#endif

@DEBUG_INIT@
int main(void)
{
    printf("version %s\n", PY_VERSION);
    printf("version_hex %ld\n", (long)PY_VERSION_HEX);
#ifdef Py_DEBUG
    printf("flag debug 1\n");
#endif
#ifdef Py_GIL_DISABLED
    printf("flag free_threaded 1\n");
#endif
#if PY_VERSION_HEX >= 0x03030000
    if (sizeof(((PyASCIIObject *)0)->state) != 4) {
        fprintf(stderr, "PyASCIIObject.state is %d bytes, expected 4\n",
                (int)sizeof(((PyASCIIObject *)0)->state));
        return 2;
    }
#endif
"""

C_EPILOGUE = r"""
    return 0;
}
"""


def debug_init_c(include, minor_version):
    """C definition of `debug_init`, a _Py_DebugOffsets filled by the headers' own
    initializer (3.13+), so generate.py can check the [debug_offsets] mapping."""
    if minor_version < (3, 13):
        return ""
    if minor_version >= (3, 14):
        init = "_Py_DebugOffsets_INIT(_Py_Debug_Cookie)"
    else:
        # 3.13 has no separate initializer: the struct's is the `.debug_offsets = {...}`
        # part of _PyRuntimeState_INIT in pycore_runtime_init.h. Cut it out.
        path = os.path.join(include, "internal", "pycore_runtime_init.h")
        with open(path) as f:
            text = f.read()
        start = text.find(".debug_offsets = {")
        if start < 0:
            sys.exit("generate.py: no .debug_offsets initializer in %s" % path)
        i = text.index("{", start)
        depth = 0
        for j in range(i, len(text)):
            if text[j] == "{":
                depth += 1
            elif text[j] == "}":
                depth -= 1
                if depth == 0:
                    break
        else:
            sys.exit("generate.py: unbalanced .debug_offsets initializer in %s" % path)
        init = text[i:j + 1].replace("\\\n", "\n")
        init = re.sub(r"\bdebug_cookie\b", "_Py_Debug_Cookie", init)
    return ("/* _Py_DebugOffsets as the headers initialise it (checked against the mapping). */\n"
            "static const _Py_DebugOffsets debug_init = %s;\n" % init)


def c_program(debug_init=""):
    lines = [C_PRELUDE.replace("@DEBUG_INIT@", debug_init)]
    for section, key, expr, cond in ROWS:
        lines.append("#if %s\n" % cond)
        lines.append('    printf("%s %s %%ld\\n", (long)(%s));\n' % (section, key, expr))
        lines.append("#endif\n")
    for key, expr, cond in DEBUG_STRUCT_ROWS:
        lines.append("#if %s\n" % cond)
        lines.append('    printf("debug_offsets %s %%ld\\n", (long)(%s));\n' % (key, expr))
        lines.append("#endif\n")
    lines.append("#if %s\n" % ver("3.13"))
    lines.append('    printf("debug_value version %ld\\n", (long)debug_init.version);\n')
    lines.append('    printf("debug_value free_threaded %ld\\n", (long)debug_init.free_threaded);\n')
    lines.append("#endif\n")
    for key, member, cond in DEBUG_ROWS:
        lines.append("#if %s\n" % cond)
        lines.append('    printf("debug_offsets %s %%ld\\n", (long)offsetof(_Py_DebugOffsets, %s));\n'
                     % (key, member))
        lines.append('    printf("debug_value %s %%ld\\n", (long)debug_init.%s);\n' % (key, member))
        lines.append("#endif\n")
    lines.append(C_EPILOGUE)
    return "".join(lines)


def header_version(include):
    """PY_VERSION and PY_VERSION_HEX from patchlevel.h (for early checks only)."""
    path = os.path.join(include, "patchlevel.h")
    try:
        with open(path) as f:
            text = f.read()
    except OSError as e:
        sys.exit("generate.py: cannot read %s: %s" % (path, e))

    def num(name):
        m = re.search(r"#define\s+%s\s+(\d+)" % name, text)
        if not m:
            sys.exit("generate.py: %s not found in %s" % (name, path))
        return int(m.group(1))

    m = re.search(r'#define\s+PY_VERSION\s+"([^"]+)"', text)
    return (m.group(1) if m else "?"), (num("PY_MAJOR_VERSION"), num("PY_MINOR_VERSION"))


def run_c(program, include, extra_includes, defines, pyconfig=None, keep=None):
    with tempfile.TemporaryDirectory(prefix="pyoffsets-") as tmp:
        src = os.path.join(tmp, "offsets.c")
        exe = os.path.join(tmp, "offsets")
        with open(src, "w") as f:
            f.write(program)
        if keep:
            with open(keep, "w") as f:
                f.write(program)
        cmd = ["gcc", "-std=gnu11", "-O0", "-w", "-o", exe, src,
               "-I", include, "-I", os.path.join(include, "internal")]
        for d in extra_includes:
            cmd += ["-I", d]
        if pyconfig:
            # Read first: its include guard (Py_PYCONFIG_H) turns the headers' own
            # pyconfig.h into a no-op.
            cmd += ["-include", pyconfig]
        cmd += ["-D%s" % d for d in defines]
        comp = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              universal_newlines=True)
        if comp.returncode != 0:
            sys.stderr.write(comp.stderr)
            sys.exit("generate.py: gcc failed: %s" % " ".join(cmd))
        run = subprocess.run([exe], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             universal_newlines=True)
        if run.returncode != 0:
            sys.stderr.write(run.stderr)
            sys.exit("generate.py: offsets program failed (exit %d)" % run.returncode)
        return run.stdout


def fail(message):
    sys.exit("generate.py: " + message)


def to_toml(output, flavour, source):
    version = None
    version_hex = None
    flags = set()
    debug_values = {}
    values = {s: {} for s in SECTIONS}
    for line in output.splitlines():
        words = line.split()
        if words[0] == "version":
            version = words[1]
        elif words[0] == "version_hex":
            version_hex = int(words[1])
        elif words[0] == "flag":
            flags.add(words[1])
        elif words[0] == "debug_value":
            debug_values[words[1]] = int(words[2])
        else:
            section, key, value = words
            if key in values[section]:
                fail("[%s] %s printed twice; overlapping row conditions" % (section, key))
            values[section][key] = int(value)

    # The headers' pyconfig.h must describe the flavour asked for.
    want = {"default": set(), "debug": {"debug"}, "free-threaded": {"free_threaded"}}[flavour]
    if flags != want:
        fail("with these headers and --flavour %s, Py_DEBUG is %s and Py_GIL_DISABLED "
             "is %s: the headers are not a %s build"
             % (flavour, "debug" in flags and "defined" or "not defined",
                "free_threaded" in flags and "defined" or "not defined", flavour))

    # Every mapped _Py_DebugOffsets member must hold, in the headers' own initializer,
    # exactly the value the table has for the key it is mapped to.
    debug = values["debug_offsets"]
    if debug:
        if debug_values.get("version") != version_hex:
            fail("_Py_DebugOffsets.version %r != PY_VERSION_HEX %r"
                 % (debug_values.get("version"), version_hex))
        if debug_values.get("free_threaded") != (1 if flavour == "free-threaded" else 0):
            fail("_Py_DebugOffsets.free_threaded is %r in a %s build"
                 % (debug_values.get("free_threaded"), flavour))
        for key in debug:
            if "." not in key:
                continue
            section, field = key.split(".", 1)
            if field not in values.get(section, {}):
                fail("[debug_offsets] maps %s, which the table does not have" % key)
            if values[section][field] != debug_values[key]:
                fail("_Py_DebugOffsets says %s = %d, the table has %d"
                     % (key, debug_values[key], values[section][field]))

    key_order = {}
    for section, key, _, _ in ROWS:
        key_order.setdefault((section, key), len(key_order))
    for key, _, _ in DEBUG_STRUCT_ROWS:
        key_order.setdefault(("debug_offsets", key), len(key_order))
    for key, _, _ in DEBUG_ROWS:
        key_order.setdefault(("debug_offsets", key), len(key_order))

    out = ["# Generated by python-offsets/generate.py from CPython %s headers (%s). "
           "Do not edit." % (version, flavour),
           "# Headers: %s" % source,
           "",
           "[python]",
           'version = "%s"' % version,
           "version_hex = %d  # 0x%08X" % (version_hex, version_hex),
           'flavour = "%s"' % flavour]
    for section in SECTIONS[1:]:
        if not values[section]:
            continue
        out += ["", "[%s]" % section]
        for key in sorted(values[section], key=lambda k: key_order[(section, k)]):
            name = '"%s"' % key if "." in key else key
            out.append("%s = %d" % (name, values[section][key]))
    return "\n".join(out) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--include", required=True,
                    help="CPython header directory, e.g. .../include/python3.11")
    ap.add_argument("--flavour", choices=["default", "debug", "free-threaded"],
                    default="default")
    ap.add_argument("--extra-include", action="append", default=[], metavar="DIR",
                    help="additional -I directory (e.g. a multiarch pyconfig.h root)")
    ap.add_argument("--pyconfig", metavar="FILE",
                    help="pyconfig.h to use instead of the one the headers include "
                         "(e.g. a Debian debug build's, whose other headers are the "
                         "release ones)")
    ap.add_argument("--source", metavar="TEXT",
                    help="where the headers came from, for the file's comment "
                         "(default: the --include directory)")
    ap.add_argument("--keep-c", metavar="FILE", help="also write the C program here")
    args = ap.parse_args()

    py_version, (major, minor) = header_version(args.include)
    defines = []
    if args.flavour == "debug":
        # Up to 3.7, Py_DEBUG implies Py_TRACE_REFS (object header grows by 16 bytes).
        defines.append("Py_DEBUG")
    elif args.flavour == "free-threaded":
        if (major, minor) < (3, 13):
            sys.exit("generate.py: free-threaded builds exist only from 3.13 (headers are %s)"
                     % py_version)
        defines.append("Py_GIL_DISABLED")

    program = c_program(debug_init_c(args.include, (major, minor)))
    output = run_c(program, args.include, args.extra_include, defines, args.pyconfig,
                   args.keep_c)
    source = args.source or args.include
    if args.pyconfig and not args.source:
        source += " with " + args.pyconfig
    sys.stdout.write(to_toml(output, args.flavour, source))


if __name__ == "__main__":
    main()
