#!/usr/bin/env python3
"""Check the 3.13+ python-offsets tables against real interpreters.

For each table and an interpreter of that version and flavour:

1. ELF: read `_Py_DebugOffsets` from the file (the start of the `.PyRuntime` section, in
   the executable or the libpython it loads) and check that, for every quoted key of the
   table's [debug_offsets], the u64 stored at that position equals the table's value
   (and the cookie, version and free_threaded flag).
2. Live: run the interpreter with a probe that reads its own memory through ctypes
   (`_PyRuntime`, `PyThreadState_Get()`, `id()` of known objects) using only the table's
   numbers, and compares with what Python reports: thread ids, sys.modules, the GIL, the
   frame chain (code objects, owners, instruction pointer -> line number, per-thread
   bytecode on 3.14t), strings of every kind, dicts, types, managed dicts, ints, ...

    python3 python-offsets/verify.py            # every interpreter that is installed
    python3 python-offsets/verify.py 3.14t 3.15 # some tables only

Standard library only. Exit status 1 if anything did not match. A target whose patch
version differs from the headers' (e.g. the 3.13.0 table against a 3.13.18 binary)
reports differences as drift and does not fail.
"""

import json
import os
import re
import struct
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
PYENV = os.environ.get("PYENV_ROOT", "/root/.pyenv") + "/versions"
PYTHONS = os.environ.get("PYSCRY_PYTHONS", "/root/.cache/pyscry/pythons")
SID = PYTHONS + "/sid/root"
SID_LIB = SID + "/usr/lib/x86_64-linux-gnu"


def targets():
    """(table name, command, label). The 3.13d executable is not patched to find sid's
    libc, so it is started through sid's loader."""
    loader = [SID_LIB + "/ld-linux-x86-64.so.2", "--library-path", SID_LIB]
    return [
        ("3.13", [PYENV + "/3.13.0/bin/python3.13"], "pyenv 3.13.0"),
        ("3.13", [SID + "/usr/bin/python3.13"], "Debian sid python3.13"),
        ("3.13d", loader + [SID + "/usr/bin/python3.13d"], "Debian sid python3.13d"),
        ("3.13t", [PYTHONS + "/ft/3.13/bin/python3.13t"], "ft/3.13 python3.13t"),
        ("3.14", [SID + "/usr/bin/python3.14"], "Debian sid python3.14"),
        ("3.14d", [SID + "/usr/bin/python3.14d"], "Debian sid python3.14d"),
        ("3.14t", [PYTHONS + "/ft/3.14/bin/python3.14t"], "ft/3.14 python3.14t"),
        ("3.15", [SID + "/usr/bin/python3.15"], "Debian sid python3.15"),
        ("3.15d", [SID + "/usr/bin/python3.15d"], "Debian sid python3.15d"),
    ]


# --- the tables (the generated subset of TOML) ----------------------------------------

def load_table(name):
    table = {}
    section = None
    with open(os.path.join(HERE, name + ".toml")) as f:
        for line in f:
            line = line.split("#", 1)[0].strip() if not line.lstrip().startswith('"') \
                else line.strip()
            if not line:
                continue
            m = re.fullmatch(r"\[([a-z_]+)\]", line)
            if m:
                section = table.setdefault(m.group(1), {})
                continue
            m = re.fullmatch(r'("[^"]+"|[a-z_0-9]+)\s*=\s*(.+?)\s*(#.*)?', line)
            if not m:
                raise ValueError("%s.toml: cannot parse %r" % (name, line))
            key, value = m.group(1).strip('"'), m.group(2)
            section[key] = value.strip('"') if value.startswith('"') else int(value)
    return table


# --- ELF ------------------------------------------------------------------------------

def elf_sections(path):
    with open(path, "rb") as f:
        data = f.read()
    if data[:4] != b"\x7fELF" or data[4] != 2:
        raise ValueError("%s: not a 64-bit ELF file" % path)
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
    headers = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize)
               for i in range(shnum)]
    strtab = headers[shstrndx]
    names = data[strtab[4]:strtab[4] + strtab[5]]
    sections = {}
    for h in headers:
        name = names[h[0]:names.index(b"\0", h[0])].decode()
        sections[name] = (h[1], h[4], h[5], h[7])  # type, file offset, size, link
    return data, sections


def elf_needed_and_paths(data, sections):
    if ".dynamic" not in sections or ".dynstr" not in sections:
        return [], []
    _, off, size, _ = sections[".dynamic"]
    _, stroff, strsize, _ = sections[".dynstr"]
    dynstr = data[stroff:stroff + strsize]

    def s(i):
        return dynstr[i:dynstr.index(b"\0", i)].decode()

    needed, paths = [], []
    for i in range(0, size, 16):
        tag, val = struct.unpack_from("<qQ", data, off + i)
        if tag == 1:
            needed.append(s(val))
        elif tag in (15, 29):  # DT_RPATH, DT_RUNPATH
            paths += s(val).split(":")
    return needed, paths


def debug_offsets_bytes(binary):
    """(file, bytes of the .PyRuntime section) for an executable or its libpython."""
    data, sections = elf_sections(binary)
    if ".PyRuntime" in sections:
        _, off, size, _ = sections[".PyRuntime"]
        return binary, data[off:off + size]
    needed, paths = elf_needed_and_paths(data, sections)
    origin = os.path.dirname(os.path.realpath(binary))
    for lib in needed:
        if not lib.startswith("libpython"):
            continue
        for d in paths + [origin + "/../lib"]:
            candidate = os.path.join(d.replace("$ORIGIN", origin), lib)
            if os.path.exists(candidate):
                return debug_offsets_bytes(candidate)
    raise ValueError("%s: no .PyRuntime section and no libpython found" % binary)


def check_elf(table, binary, results):
    path, raw = debug_offsets_bytes(binary)
    results.append(("elf: file", True, path))
    dbg = table["debug_offsets"]
    u64 = lambda pos: struct.unpack_from("<Q", raw, pos)[0]
    results.append(("elf: cookie", raw[:8] == b"xdebugpy", raw[:8]))
    version = u64(dbg["version"])
    results.append(("elf: version major.minor", version >> 16 == table["python"]["version_hex"] >> 16,
                    "0x%08x" % version))
    results.append(("elf: version exact", "drift" if version != table["python"]["version_hex"] else True,
                    "binary 0x%08x, headers 0x%08x" % (version, table["python"]["version_hex"])))
    ft = u64(dbg["free_threaded"])
    results.append(("elf: free_threaded", ft == (table["python"]["flavour"] == "free-threaded"), ft))
    results.append(("elf: size fits", dbg["size"] <= len(raw), "%d <= %d" % (dbg["size"], len(raw))))
    for key, pos in dbg.items():
        if "." not in key:
            continue
        section, field = key.split(".", 1)
        want = table[section][field]
        got = u64(pos)
        results.append(("elf: %s @%d" % (key, pos), got == want, "binary %d, table %d" % (got, want)))


# --- live probe (runs inside the target interpreter, 3.13+) ----------------------------

PROBE = r'''
import ctypes, gc, json, sys, threading, types

T = json.loads(sys.argv[1])
R = []
def check(name, ok, detail=""):
    R.append([name, ok if ok == "note" else bool(ok), str(detail)])
def has(sec, key):
    return key in T.get(sec, {})
def O(sec, key):
    return T[sec][key]
C = ctypes
def u64(a): return C.c_uint64.from_address(a).value
def i64(a): return C.c_int64.from_address(a).value
def u32(a): return C.c_uint32.from_address(a).value
def i32(a): return C.c_int32.from_address(a).value
def u8(a): return C.c_uint8.from_address(a).value
def mem(a, n): return C.string_at(a, n)

api = C.pythonapi
api.PyThreadState_Get.restype = C.c_void_p
runtime = C.addressof(C.c_char.in_dll(api, "_PyRuntime"))
FT = T["python"]["flavour"] == "free-threaded"

# _Py_DebugOffsets in memory
d = T["debug_offsets"]
check("mem: cookie", mem(runtime, 8) == b"xdebugpy")
check("mem: version == sys.hexversion", u64(runtime + d["version"]) == sys.hexversion,
      hex(u64(runtime + d["version"])))
for key, pos in d.items():
    if "." in key:
        s, k = key.split(".", 1)
        check("mem: debug %s" % key, u64(runtime + pos) == T[s][k], "%d vs %d" % (u64(runtime + pos), T[s][k]))

tstate = api.PyThreadState_Get()
interp = u64(runtime + O("runtime", "interpreters_head"))
check("thread.interp == runtime.interpreters_head", u64(tstate + O("thread", "interp")) == interp)
check("thread.thread_id", u64(tstate + O("thread", "thread_id")) == threading.get_ident())
check("thread.native_thread_id", u64(tstate + O("thread", "native_thread_id")) == threading.get_native_id())
check("interpreter.modules", u64(interp + O("interpreter", "modules")) == id(sys.modules))

# a second thread, parked, to walk a list of more than one thread state
ready, done, info = threading.Event(), threading.Event(), {}
def parked():
    info["tstate"] = api.PyThreadState_Get()
    ready.set()
    done.wait()
worker = threading.Thread(target=parked)
worker.start()
ready.wait()
found = {}
t, prev, n = u64(interp + O("interpreter", "threads_head")), 0, 0
links_ok = True
while t and n < 100:
    if u64(t + O("thread", "prev")) != prev:
        links_ok = False
    found[u64(t + O("thread", "thread_id"))] = (t, u64(t + O("thread", "native_thread_id")))
    prev, t, n = t, u64(t + O("thread", "next")), n + 1
check("interpreter.threads_head walk finds both threads",
      found.get(threading.get_ident(), (0,))[0] == tstate and found.get(worker.ident, (0,))[0] == info["tstate"],
      "%d thread states" % len(found))
check("thread.prev links", links_ok)
check("worker native_thread_id", found.get(worker.ident, (0, 0))[1] == worker.native_id)

# GIL
gil = u64(interp + O("interpreter", "ceval_gil"))
enabled = i32(gil + O("gil", "enabled")) if has("gil", "enabled") else 1
if has("gil", "enabled"):
    check("gil.enabled (note)", "note", "%d, sys._is_gil_enabled() = %s" % (enabled, sys._is_gil_enabled()))
    check("gil.enabled agrees with sys._is_gil_enabled()", bool(enabled) == sys._is_gil_enabled())
if enabled:
    check("gil.locked", i32(gil + O("gil", "locked")) == 1)
    check("gil.last_holder", u64(gil + O("gil", "last_holder")) == tstate)
if has("thread", "holds_gil"):
    hg = i32(tstate + O("thread", "holds_gil"))
    if enabled:
        check("thread.holds_gil == 1 for this thread", hg == 1, hg)
        check("thread.holds_gil == 0 for the parked thread", i32(info["tstate"] + O("thread", "holds_gil")) == 0)
    else:
        check("thread.holds_gil (note, GIL disabled)", "note", hg)
check("thread.status word (note)", "note", "0x%x" % u32(tstate + O("thread", "status")))
done.set()
worker.join()

# Frames
CODE_T, NONE_T = id(types.CodeType), id(type(None))
TAGGED = has("stackref", "tag_bits")
OWNER = {v: k for k, v in T.get("frame_owner", {}).items()}

def line_of(code, offset):
    for start, end, line in code.co_lines():
        if start <= offset < end:
            return line
    return None

def bytecode_base(f, code_addr):
    base = code_addr + O("code", "code_adaptive")
    if has("code", "tlbc"):
        arr = u64(code_addr + O("code", "tlbc"))
        idx = i32(f + O("frame", "tlbc_index"))
        size = i64(arr + O("code_array", "size"))
        entries = arr + O("code_array", "entries")
        if not (0 <= idx < size):
            return None, "tlbc_index %d outside 0..%d" % (idx, size)
        if u64(entries) != base:
            return None, "entries[0] != co_code_adaptive"
        return u64(entries + 8 * idx), "tlbc_index %d" % idx
    return base, ""

def frames_check(label, results):
    # read current_frame inline, on the same line as f_lineno, so both describe this line
    top = C.c_uint64.from_address(api.PyThreadState_Get() + O("thread", "current_frame")).value; here = sys._getframe().f_lineno
    ts = api.PyThreadState_Get()
    py = []
    f = sys._getframe()
    while f is not None:
        py.append(f)
        f = f.f_back
    chain, addr, n = [], top, 0
    while addr and n < 500:
        exe = u64(addr + O("frame", "code"))
        ptr = exe & ~3 if TAGGED else exe
        typ = u64(ptr + O("object", "ob_type")) if ptr else 0
        chain.append((addr, exe, ptr, typ, u8(addr + O("frame", "owner"))))
        addr, n = u64(addr + O("frame", "previous")), n + 1
    code_frames = [c for c in chain if c[3] == CODE_T]
    others = ["#%d of %d: owner %s, executable %s, tag %d"
              % (i, len(chain), OWNER.get(c[4], c[4]), "None" if c[3] == NONE_T else hex(c[3]), c[1] & 3)
              for i, c in enumerate(chain) if c[3] != CODE_T]
    results.append(["%s: frame chain = sys._getframe() chain" % label,
                    [c[2] for c in code_frames] == [id(f.f_code) for f in py],
                    "%d code frames, %d python frames" % (len(code_frames), len(py))])
    results.append(["%s: non-code frames (owner, executable, tag) (note)" % label, "note", others])
    if TAGGED:
        results.append(["%s: f_executable tag bits (note)" % label, "note",
                        sorted(set(c[1] & 3 for c in chain))])
    # owners
    want = []
    for c, f in zip(code_frames, py):
        is_gen = bool(f.f_code.co_flags & (0x20 | 0x80 | 0x200))  # generator, coroutine, async gen
        want.append(T["frame_owner"]["generator" if is_gen else "thread"])
    results.append(["%s: frame.owner of code frames (thread/generator)" % label,
                    [c[4] for c in code_frames] == want,
                    "%s vs %s" % ([c[4] for c in code_frames], want)])
    # last frame of the chain
    last = chain[-1]
    results.append(["%s: bottom frame (note)" % label, "note",
                    "owner %s, executable %s" % (OWNER.get(last[4], last[4]),
                     "code" if last[3] == CODE_T else "None" if last[3] == NONE_T else hex(last[3]))])
    if has("thread", "base_frame"):
        bf = u64(ts + O("thread", "base_frame"))
        results.append(["%s: thread.base_frame == last frame of the chain" % label, bf == last[0],
                        "base_frame 0x%x, last 0x%x" % (bf, last[0])])
    # instruction pointer -> line
    lines_ok, details = True, []
    for i, (c, f) in enumerate(zip(code_frames, py)):
        base, note = bytecode_base(c[0], c[2])
        # the top frame is this one, still running: its instr_ptr is this line's call
        instr = C.c_uint64.from_address(c[0] + O("frame", "instr")).value; here_now = sys._getframe().f_lineno
        if base is None:
            lines_ok = False
            details.append(note)
            continue
        offset = instr - base
        if not (0 <= offset < len(f.f_code.co_code)):
            lines_ok = False
            details.append("%s: instr outside bytecode (%d) %s" % (f.f_code.co_name, offset, note))
            continue
        got = line_of(f.f_code, offset)
        expect = here_now if i == 0 else f.f_lineno
        if got != expect:
            lines_ok = False
            details.append("%s: line %s, expected %s" % (f.f_code.co_name, got, expect))
        elif note:
            details.append("%s: %s" % (f.f_code.co_name, note))
    results.append(["%s: frame.instr -> line number" % label, lines_ok, details])
    if has("frame", "tlbc_index"):
        results.append(["%s: tlbc_index of the code frames (note)" % label, "note",
                        [i32(c[0] + O("frame", "tlbc_index")) for c in code_frames]])
    # the data stack holds the frames of this thread's functions
    chunk = u64(ts + O("thread", "datastack_chunk"))
    csize = u64(chunk + O("stack_chunk", "size"))
    results.append(["%s: top frame inside thread.datastack_chunk" % label,
                    chunk + O("stack_chunk", "data") <= top < chunk + csize,
                    "chunk 0x%x size %d, frame 0x%x" % (chunk, csize, top)])
    if has("frame", "stackpointer"):
        ok = all(c[0] + O("frame", "localsplus") <= u64(c[0] + O("frame", "stackpointer")) < c[0] + 65536
                 for c in code_frames[1:] if c[4] == T["frame_owner"]["thread"])
        results.append(["%s: frame.stackpointer within the frame's stack" % label, ok, ""])
    if has("frame", "stacktop"):
        tops = [i32(c[0] + O("frame", "stacktop")) for c in code_frames[1:]]
        ok = all(-1 <= t < 10000 for t in tops)  # -1: stack pointer held by the running C code
        results.append(["%s: frame.stacktop plausible" % label, ok, tops])

def via_generator(label, results):
    yield frames_check(label, results)

def outer(label, results):
    for _ in via_generator(label, results):
        pass

outer("main thread", R)
wr = []
w = threading.Thread(target=outer, args=("worker thread", wr))
w.start(); w.join()
# in 3.14t a new thread runs its own copy of the bytecode once it specialises: warm up
def hot(label, results):
    for _ in range(2000):
        pass
    outer(label, results)
hw = []
def warm():
    for _ in range(50):
        hot("worker after warm-up", [])
    hot("worker after warm-up", hw)
w = threading.Thread(target=warm)
w.start(); w.join()
R.extend(wr)
R.extend(hw)
check("frame.size == localsplus + 8 (one localsplus slot)", O("frame", "size") == O("frame", "localsplus") + 8)

# Code objects
code = frames_check.__code__
a = id(code)
check("code.filename", u64(a + O("code", "filename")) == id(code.co_filename))
check("code.name", u64(a + O("code", "name")) == id(code.co_name))
check("code.qualname", u64(a + O("code", "qualname")) == id(code.co_qualname))
lt = u64(a + O("code", "linetable"))
check("code.linetable", lt == id(code.co_linetable) or
      mem(lt + O("bytes", "ob_sval"), len(code.co_linetable)) == code.co_linetable)
check("code.firstlineno", i32(a + O("code", "firstlineno")) == code.co_firstlineno)
check("code.code_adaptive == CodeType.__basicsize__", types.CodeType.__basicsize__ == O("code", "code_adaptive"),
      types.CodeType.__basicsize__)
if has("interpreter", "code_object_generation"):
    g0 = u64(interp + O("interpreter", "code_object_generation"))
    c = compile("1 + 1", "<probe>", "eval"); del c; gc.collect()
    g1 = u64(interp + O("interpreter", "code_object_generation"))
    check("interpreter.code_object_generation grows when a code object dies", g1 > g0, "%d -> %d" % (g0, g1))
if has("interpreter", "code_next_version"):
    v0 = u32(interp + O("interpreter", "code_next_version"))
    c = compile("1 + 1", "<probe>", "eval")
    v1 = u32(interp + O("interpreter", "code_next_version"))
    check("interpreter.code_next_version grows when a code object is created", v1 > v0 > 0, "%d -> %d" % (v0, v1))
    del c
if has("gen", "iframe"):
    # A generator suspended in `yield from` another: its state says so, its frame
    # runs its code, and the other is on top of its stack (3.15: under a NULL).
    def inner_gen():
        yield 1
    def outer_gen():
        yield from inner_gen_obj
    inner_gen_obj = inner_gen()
    outer_obj = outer_gen()
    next(outer_obj)
    state = C.c_int8.from_address(id(outer_obj) + O("gen", "frame_state")).value
    check("gen.frame_state == frame_state.suspended_yield_from in `yield from`",
          state == O("frame_state", "suspended_yield_from"), state)
    inner_state = C.c_int8.from_address(id(inner_gen_obj) + O("gen", "frame_state")).value
    check("gen.frame_state == frame_state.suspended at a `yield`",
          inner_state == O("frame_state", "suspended"), inner_state)
    gf = id(outer_obj) + O("gen", "iframe")
    check("gen.iframe runs the generator's code",
          u64(gf + O("frame", "code")) & ~3 == id(outer_gen.__code__))
    sp = u64(gf + O("frame", "stackpointer"))
    slots = [u64(sp - 8 * k) & ~3 for k in (1, 2)]
    check("a generator in `yield from` has the other on top of its stack",
          id(inner_gen_obj) in (slots[0], slots[1] if slots[0] == 0 else None), slots)
if has("interpreter", "gc") and has("gc", "collecting"):
    flag = interp + O("interpreter", "gc") + O("gc", "collecting")
    during = []
    def gc_callback(phase, info):
        if phase == "start":
            during.append(i32(flag))
    gc.callbacks.append(gc_callback)
    gc.collect()
    gc.callbacks.remove(gc_callback)
    check("gc.collecting == 1 while a collection runs", during == [1], during)
    check("gc.collecting == 0 outside collections", i32(flag) == 0, i32(flag))
if has("interpreter", "gc") and has("gc", "frame"):
    started_by = interp + O("interpreter", "gc") + O("gc", "frame")
    seen = []
    def gc_frame_callback(phase, info):
        if phase == "start":
            f = u64(started_by)
            code = u64(f + O("frame", "code")) if f else 0
            seen.append(code & ~3 if TAGGED else code)
    def collect_here():
        gc.collect()
    gc.callbacks.append(gc_frame_callback)
    collect_here()
    gc.callbacks.remove(gc_frame_callback)
    check("gc.frame runs the function that called gc.collect()",
          seen == [id(collect_here.__code__)], seen)

# Objects
lst = [1, 2, 3]
check("object.ob_type", u64(id(lst) + O("object", "ob_type")) == id(list))
check("object.ob_size", i64(id(lst) + O("object", "ob_size")) == 3)
check("object.size == object.__basicsize__", object.__basicsize__ == O("object", "size"))
b = bytes(range(65, 91))
check("bytes.ob_sval", mem(id(b) + O("bytes", "ob_sval"), len(b)) == b)
check("bytes.ob_sval + 1 == bytes.__basicsize__", bytes.__basicsize__ == O("bytes", "ob_sval") + 1)

def ustate(s):
    st = u32(id(s) + O("unicode", "state"))
    return ((st >> O("unicode", "kind_shift")) & 7, (st >> O("unicode", "compact_bit")) & 1,
            (st >> O("unicode", "ascii_bit")) & 1)
enc = {1: "latin-1", 2: "utf-16-le", 4: "utf-32-le"}
for text, kind, ascii_ in (("plain ascii", 1, 1), ("caf\xe9 cr\xe8me", 1, 0),
                           ("\u20ac uro", 2, 0), ("smile \U0001F600", 4, 0)):
    s = "".join(list(text))
    k, comp, asc = ustate(s)
    data = O("unicode", "ascii_data") if asc else O("unicode", "compact_data")
    ok = (k, comp, asc) == (kind, 1, ascii_) and i64(id(s) + O("unicode", "length")) == len(s) \
        and mem(id(s) + data, len(s) * k).decode(enc[k]) == s
    check("unicode compact kind %d ascii %d" % (kind, ascii_), ok, (k, comp, asc))
class S(str):
    pass
s = S("legacy \u20ac")
k, comp, asc = ustate(s)
ptr = u64(id(s) + O("unicode", "legacy_data"))
check("unicode legacy (str subclass)", comp == 0 and k == 2 and mem(ptr, 2 * len(s)).decode("utf-16-le") == s,
      (k, comp, asc))
check("unicode.legacy_data + 8 == str.__basicsize__", str.__basicsize__ == O("unicode", "legacy_data") + 8)

# Dicts
def dict_items(dp):
    keys = u64(dp + O("dict", "keys"))
    n = i64(keys + O("dict_keys", "nentries"))
    index_bytes = 1 << u8(keys + O("dict_keys", "log2_index_bytes"))
    entries = keys + O("dict_keys", "indices") + index_bytes
    general = u8(keys + O("dict_keys", "kind")) == O("dict_keys", "general_kind")
    k, v, size = ("key", "value", "size") if general else ("unicode_key", "unicode_value", "unicode_size")
    vals = u64(dp + O("dict", "values"))
    out = []
    for i in range(n):
        e = entries + i * O("dict_entry", size)
        value = u64(e + O("dict_entry", v)) if not vals else u64(vals + O("dict_values", "values") + 8 * i)
        out.append((u64(e + O("dict_entry", k)), value))
    return out
for name, dct in (("str keys", {"alpha": 1, "beta": [2]}), ("general keys", {1: "x", 2.5: "y"})):
    check("dict %s: used and entries" % name,
          i64(id(dct) + O("dict", "used")) == len(dct) and
          dict_items(id(dct)) == [(id(k), id(v)) for k, v in dct.items()])

# Types, managed dicts, inline values
class Plain:
    def __init__(self):
        self.x = 12345
o = Plain()
fl = u64(id(Plain) + O("type", "flags"))
check("type.flags", fl == Plain.__flags__, hex(fl))
check("type.basicsize", i64(id(Plain) + O("type", "basicsize")) == Plain.__basicsize__)
check("type.dictoffset", i64(id(Plain) + O("type", "dictoffset")) == Plain.__dictoffset__)
check("type.heaptype_flag", fl & O("type", "heaptype_flag") and not int.__flags__ & O("type", "heaptype_flag"))
check("type.managed_dict_flag", fl & O("type", "managed_dict_flag"))
ck = u64(id(Plain) + O("type", "cached_keys"))
check("type.cached_keys holds 'x'", ck and u64(ck + O("dict_keys", "indices") +
      (1 << u8(ck + O("dict_keys", "log2_index_bytes"))) + O("dict_entry", "unicode_key")) == id(sys.intern("x")))
if fl & O("type", "inline_values_flag"):
    v = id(o) + Plain.__basicsize__
    check("inline values: valid, capacity, values[0]",
          u8(v + O("dict_values", "valid")) == 1 and u8(v + O("dict_values", "capacity")) >= 1 and
          u64(v + O("dict_values", "values")) == id(o.x))
else:
    check("inline values (note)", "note", "type has no Py_TPFLAGS_INLINE_VALUES")
dd = o.__dict__
check("managed_dict.dict_before", u64(id(o) - O("managed_dict", "dict_before")) == id(dd))
check("module.dict", u64(id(sys) + O("module", "dict")) == id(sys.__dict__))

# ints
check("long.digit_bits", sys.int_info.bits_per_digit == O("long", "digit_bits"))
check("long.digits == int.__basicsize__", int.__basicsize__ == O("long", "digits"))
def read_int(x):
    tag = u64(id(x) + O("long", "tag"))
    n, sign = tag >> O("long", "tag_size_shift"), tag & O("long", "tag_sign_mask")
    bits = O("long", "digit_bits")
    value = sum(u32(id(x) + O("long", "digits") + 4 * i) << (bits * i) for i in range(n))
    return {0: value, 1: 0, 2: -value}.get(sign)
big = 2 ** 100 + 12345
check("long.tag / digits", [read_int(x) for x in (big, -big, 0, 7)] == [big, -big, 0, 7])

print(json.dumps(R))
'''


def check_live(table, command, results):
    proc = subprocess.run(command + ["-c", PROBE, json.dumps(table)], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True, timeout=120)
    if proc.returncode != 0:
        results.append(("live: probe ran", False, proc.stderr.strip()[-2000:]))
        return
    for name, ok, detail in json.loads(proc.stdout.strip().splitlines()[-1]):
        results.append(("live: " + name, ok, detail))


def main():
    wanted = set(sys.argv[1:])
    failures = 0
    for name, command, label in targets():
        if wanted and name not in wanted:
            continue
        if not os.path.exists(command[-1]):
            print("== %s against %s: not installed, skipped" % (name, label))
            continue
        table = load_table(name)
        results = []
        try:
            check_elf(table, command[-1], results)
        except Exception as e:  # noqa: BLE001 - report and go on
            results.append(("elf", False, repr(e)))
        try:
            check_live(table, command, results)
        except Exception as e:  # noqa: BLE001
            results.append(("live", False, repr(e)))
        version = [d for n, ok, d in results if n == "elf: version exact"]
        drift = any(ok == "drift" for n, ok, d in results if n == "elf: version exact")
        bad = [(n, d) for n, ok, d in results if ok is False]
        notes = [(n, d) for n, ok, d in results if ok == "note"]
        passed = sum(1 for n, ok, d in results if ok is True)
        print("== %s table (%s) against %s: %d checks passed, %d failed%s"
              % (name, table["python"]["version"], label, passed, len(bad),
                 " (patch drift: %s)" % version[0] if drift else ""))
        for n, d in bad:
            print("   %s: %s" % ("DRIFT" if drift else "FAIL", n), "--", d)
        for n, d in notes:
            print("   note:", n, "--", d)
        if bad and not drift:
            failures += 1
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
