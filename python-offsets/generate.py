#!/usr/bin/env python3
"""Generate a python-offsets TOML file from one CPython version's headers.

Writes a small C program that includes Python.h and (with Py_BUILD_CORE defined) the
internal headers of that version, prints offsetof()/sizeof() values for the fields in
the table ROWS below (each row guarded by `#if` on PY_VERSION_HEX, so only fields that
exist in that version are printed), compiles it with gcc, runs it and prints the TOML
file (schema: python-offsets/README.md) to stdout.

    python3 python-offsets/generate.py \
        --include /root/.pyenv/versions/3.11.7/include/python3.11 --flavour default

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
    "python", "runtime", "interpreter", "gil", "thread", "frame", "code",
    "object", "bytes", "unicode", "stack_chunk", "dict", "dict_keys", "dict_entry",
    "dict_values", "type", "managed_dict", "module", "long", "int",
]

# (section, key, C expression, C preprocessor condition under which the field exists).
# A key may appear in several rows as long as their conditions do not overlap.
# Within a section, keys are written in the order of their first row here.
ROWS = [
    # _PyRuntimeState (3.7+)
    ("runtime", "interpreters_head", "offsetof(_PyRuntimeState, interpreters.head)", ver("3.7")),
    ("runtime", "gilstate_tstate_current", "offsetof(_PyRuntimeState, gilstate.tstate_current)", ver("3.7", "3.11")),
    ("runtime", "gil", "offsetof(_PyRuntimeState, ceval.gil)", ver("3.7", "3.11")),

    # PyInterpreterState
    ("interpreter", "next", "offsetof(PyInterpreterState, next)", ver()),
    ("interpreter", "threads_head", "offsetof(PyInterpreterState, tstate_head)", ver(None, "3.10")),
    ("interpreter", "threads_head", "offsetof(PyInterpreterState, threads.head)", ver("3.11")),
    ("interpreter", "ceval_gil", "offsetof(PyInterpreterState, ceval.gil)", ver("3.12")),

    # struct _gil_runtime_state (3.7+)
    ("gil", "locked", "offsetof(struct _gil_runtime_state, locked)", ver("3.7")),
    ("gil", "last_holder", "offsetof(struct _gil_runtime_state, last_holder)", ver("3.7")),
    ("gil", "enabled", "offsetof(struct _gil_runtime_state, enabled)", both(ver("3.13"), FT)),

    # PyThreadState
    ("thread", "prev", "offsetof(PyThreadState, prev)", ver("3.6")),
    ("thread", "next", "offsetof(PyThreadState, next)", ver()),
    ("thread", "interp", "offsetof(PyThreadState, interp)", ver()),
    ("thread", "frame", "offsetof(PyThreadState, frame)", ver(None, "3.10")),
    ("thread", "cframe", "offsetof(PyThreadState, cframe)", ver("3.11", "3.12")),
    ("thread", "cframe_current_frame", "offsetof(_PyCFrame, current_frame)", ver("3.11", "3.12")),
    ("thread", "current_frame", "offsetof(PyThreadState, current_frame)", ver("3.13")),
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
    ("frame", "size", "sizeof(PyFrameObject)", ver(None, "3.10")),
    ("frame", "size", "sizeof(_PyInterpreterFrame)", ver("3.11")),

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

    # int objects: 3.x (and 2.7 long) PyLongObject, 2.7 PyIntObject
    ("long", "digits", "offsetof(PyLongObject, ob_digit)", ver(None, "3.11")),
    ("long", "digits", "offsetof(PyLongObject, long_value.ob_digit)", ver("3.12")),
    ("long", "digit_bits", "PyLong_SHIFT", ver()),
    ("long", "tag", "offsetof(PyLongObject, long_value.lv_tag)", ver("3.12")),
    ("long", "tag_size_shift", "_PyLong_NON_SIZE_BITS", ver("3.12")),
    ("long", "tag_sign_mask", "_PyLong_SIGN_MASK", ver("3.12")),
    ("int", "ival", "offsetof(PyIntObject, ob_ival)", ver(None, "2.7")),
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
#else
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

int main(void)
{
    printf("version %s\n", PY_VERSION);
    printf("version_hex %ld\n", (long)PY_VERSION_HEX);
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


def c_program():
    lines = [C_PRELUDE]
    for section, key, expr, cond in ROWS:
        lines.append("#if %s\n" % cond)
        lines.append('    printf("%s %s %%ld\\n", (long)(%s));\n' % (section, key, expr))
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


def run_c(include, extra_includes, defines, keep=None):
    with tempfile.TemporaryDirectory(prefix="pyoffsets-") as tmp:
        src = os.path.join(tmp, "offsets.c")
        exe = os.path.join(tmp, "offsets")
        with open(src, "w") as f:
            f.write(c_program())
        if keep:
            with open(keep, "w") as f:
                f.write(c_program())
        cmd = ["gcc", "-std=gnu11", "-O0", "-w", "-o", exe, src,
               "-I", include, "-I", os.path.join(include, "internal")]
        for d in extra_includes:
            cmd += ["-I", d]
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


def to_toml(output, flavour):
    version = None
    version_hex = None
    values = {s: {} for s in SECTIONS}
    for line in output.splitlines():
        words = line.split()
        if words[0] == "version":
            version = words[1]
        elif words[0] == "version_hex":
            version_hex = int(words[1])
        else:
            section, key, value = words
            if key in values[section]:
                sys.exit("generate.py: [%s] %s printed twice; overlapping row conditions"
                         % (section, key))
            values[section][key] = int(value)

    key_order = {}
    for section, key, _, _ in ROWS:
        key_order.setdefault((section, key), len(key_order))

    out = ["# Generated by python-offsets/generate.py from CPython %s headers (%s). "
           "Do not edit." % (version, flavour),
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
            out.append("%s = %d" % (key, values[section][key]))
    return "\n".join(out) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--include", required=True,
                    help="CPython header directory, e.g. .../include/python3.11")
    ap.add_argument("--flavour", choices=["default", "debug", "free-threaded"],
                    default="default")
    ap.add_argument("--extra-include", action="append", default=[], metavar="DIR",
                    help="additional -I directory (e.g. a multiarch pyconfig.h root)")
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

    output = run_c(args.include, args.extra_include, defines, args.keep_c)
    sys.stdout.write(to_toml(output, args.flavour))


if __name__ == "__main__":
    main()
