//! Interpreters and their thread states.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use smallvec::SmallVec;

use super::layout::{require, Layout, MissingField};
use super::version::InterpreterRoot;
use crate::target::binary::{Binary, Region};
use crate::target::memory::{FieldReader, Memory, ReadError};
use crate::target::pid_namespace::ThreadIds;

/// Upper bound on threads per interpreter and on interpreters, against looping lists.
const MAX_LIST_LEN: usize = 65_536;

/// The addresses of a process's interpreters: almost always one, so kept inline.
pub type Interpreters = SmallVec<[u64; 4]>;

/// Bytes of a thread state read without allocating: more than any version needs.
const INLINE_THREAD_STATE: usize = 512;

/// One Python thread, as read from its `PyThreadState`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThreadState {
    /// Address of the `PyThreadState`.
    pub address: u64,
    /// `thread_id`: the `pthread_t`, equal to `threading.get_ident()`.
    pub thread_id: u64,
    /// The kernel TID, as pyscry's `/proc` knows it (from `native_thread_id` on 3.11+,
    /// else from the thread's control block); `None` where it could not be found.
    pub native_id: Option<u32>,
    /// The innermost frame (`PyFrameObject*` or `_PyInterpreterFrame*`); 0 when the
    /// thread runs no Python code.
    pub frame: u64,
    /// Whether the thread holds its interpreter's GIL (always false for free-threaded
    /// builds).
    pub holds_gil: bool,
    /// Where its interpreter's GIL is ([`super::gil::GilState::address`]), to tell a
    /// wait for it from other waits; 0 where unknown.
    pub gil: u64,
    /// Whether the thread runs the cyclic garbage collector (see [`super::gc`]).
    pub collecting_garbage: bool,
    /// While it does, the frame that started the collection, where the interpreter
    /// says (3.15+): the frames it runs inside that one run for the collector.
    pub gc_started_in: Option<u64>,
}

/// Where the frame pointer sits in a thread state.
#[derive(Debug, Clone, Copy)]
enum FrameLink {
    /// `tstate->frame` (≤3.10) or `tstate->current_frame` (3.13+).
    Direct(u64),
    /// `tstate->cframe->current_frame` (3.11–3.12).
    ViaCFrame { cframe: u64, current_frame: u64 },
}

/// Reads the interpreter and thread lists with one version's layout.
#[derive(Debug, Clone)]
pub struct ThreadReader {
    root: RootAddress,
    interp_next: u64,
    threads_head: u64,
    thread_next: u64,
    thread_interp: u64,
    thread_id: u64,
    native_id: Option<u64>,
    frame: FrameLink,
    read_len: usize,
}

/// How to get the address of the first interpreter.
#[derive(Debug, Clone)]
enum RootAddress {
    /// Read the pointer stored at this address.
    Pointer(u64),
    /// Read the current thread state pointer stored here and follow its `interp`.
    CurrentThread(u64),
    /// 2.7 and 3.6 without the (local) `interp_head` symbol, as in stripped builds: the
    /// variable is found by a validated scan of the module's static data.
    Scanned(Arc<InterpHeadScan>),
}

impl ThreadReader {
    /// Set up from a layout; `binary` supplies the root symbols.
    pub fn new(
        layout: &Layout,
        root: InterpreterRoot,
        binary: &Binary,
    ) -> Result<ThreadReader, MissingField> {
        let root = match root {
            InterpreterRoot::Runtime => {
                let runtime = binary
                    .symbol("_PyRuntime")
                    .ok_or(MissingField("_PyRuntime symbol"))?;
                RootAddress::Pointer(
                    runtime.address
                        + require(
                            layout.runtime.interpreters_head,
                            "runtime.interpreters_head",
                        )?,
                )
            }
            InterpreterRoot::InterpHead => match binary.symbol("interp_head") {
                Some(sym) => RootAddress::Pointer(sym.address),
                None => {
                    let current = binary
                        .symbol("_PyThreadState_Current")
                        .ok_or(MissingField("interp_head or _PyThreadState_Current symbol"))?
                        .address;
                    match InterpHeadScan::new(layout, binary, current) {
                        Some(scan) => RootAddress::Scanned(Arc::new(scan)),
                        None => RootAddress::CurrentThread(current),
                    }
                }
            },
        };
        let t = &layout.thread;
        let frame = match (t.frame, t.current_frame, t.cframe, t.cframe_current_frame) {
            (Some(offset), _, _, _) | (None, Some(offset), _, _) => FrameLink::Direct(offset),
            (None, None, Some(cframe), Some(current_frame)) => FrameLink::ViaCFrame {
                cframe,
                current_frame,
            },
            _ => return Err(MissingField("thread.frame / current_frame / cframe")),
        };
        let thread_next = require(t.next, "thread.next")?;
        let thread_interp = require(t.interp, "thread.interp")?;
        let thread_id = require(t.thread_id, "thread.thread_id")?;
        let (FrameLink::Direct(frame_offset)
        | FrameLink::ViaCFrame {
            cframe: frame_offset,
            ..
        }) = frame;
        let read_len = [thread_next, thread_interp, thread_id, frame_offset]
            .into_iter()
            .chain(t.native_thread_id)
            .max()
            .unwrap_or(0)
            + 8;
        Ok(ThreadReader {
            root,
            interp_next: require(layout.interpreter.next, "interpreter.next")?,
            threads_head: require(layout.interpreter.threads_head, "interpreter.threads_head")?,
            thread_next,
            thread_interp,
            thread_id,
            native_id: t.native_thread_id,
            frame,
            read_len: read_len as usize,
        })
    }

    /// Addresses of every interpreter (the main one first). Empty while the runtime is
    /// not initialised.
    pub fn interpreters(&self, mem: &impl Memory) -> Result<Interpreters, ReadError> {
        let first = match &self.root {
            RootAddress::Pointer(addr) => mem.read_u64(*addr)?,
            RootAddress::CurrentThread(addr) => self.current_interpreter(mem, *addr)?,
            RootAddress::Scanned(scan) => match scan.first_interpreter(mem)? {
                Some(first) => first,
                None => self.current_interpreter(mem, scan.current_thread)?,
            },
        };
        let mut out = Interpreters::new();
        let mut interp = first;
        while interp != 0 && out.len() < MAX_LIST_LEN && !out.contains(&interp) {
            out.push(interp);
            interp = mem.read_u64(interp.wrapping_add(self.interp_next))?;
        }
        Ok(out)
    }

    /// The interpreter of the thread state pointed to by `_PyThreadState_Current` (at
    /// `addr`): 0 while no thread holds the GIL.
    fn current_interpreter(&self, mem: &impl Memory, addr: u64) -> Result<u64, ReadError> {
        match mem.read_u64(addr)? {
            0 => Ok(0),
            tstate => mem.read_u64(tstate.wrapping_add(self.thread_interp)),
        }
    }

    /// Append every thread of interpreter `interp` to `out`, newest first (the main
    /// thread is last).
    ///
    /// Each thread state is read in one call. A thread whose `interp` field does not
    /// point back at `interp` ends the walk: the list changed under us.
    pub fn threads(
        &self,
        mem: &impl Memory,
        interp: u64,
        out: &mut Vec<ThreadState>,
    ) -> Result<(), ReadError> {
        let mut address = mem.read_u64(interp.wrapping_add(self.threads_head))?;
        let mut buf = SmallVec::<[u8; INLINE_THREAD_STATE]>::from_elem(0, self.read_len);
        let mut count = 0;
        while address != 0 && count < MAX_LIST_LEN {
            count += 1;
            let state = mem.read_lent(address, &mut buf)?;
            if state.u64_at(self.thread_interp) != interp {
                break;
            }
            out.push(ThreadState {
                address,
                thread_id: state.u64_at(self.thread_id),
                native_id: self.native_id.map(|o| state.u32_at(o)),
                frame: self.follow_link(mem, state.u64_at(self.link_offset()))?,
                holds_gil: false,
                collecting_garbage: false,
                gc_started_in: None,
                gil: 0,
            });
            address = state.u64_at(self.thread_next);
        }
        Ok(())
    }

    /// The innermost frame of the thread state at `tstate`, read afresh: comparing it
    /// with the frame a walk started from tells whether the stack changed meanwhile.
    pub fn current_frame(&self, mem: &impl Memory, tstate: u64) -> Result<u64, ReadError> {
        self.follow_link(mem, mem.read_u64(tstate.wrapping_add(self.link_offset()))?)
    }

    /// Where in the thread state the frame link is.
    fn link_offset(&self) -> u64 {
        match self.frame {
            FrameLink::Direct(offset) => offset,
            FrameLink::ViaCFrame { cframe, .. } => cframe,
        }
    }

    /// The innermost frame, given the value of the frame link.
    fn follow_link(&self, mem: &impl Memory, link: u64) -> Result<u64, ReadError> {
        match self.frame {
            FrameLink::Direct(_) => Ok(link),
            FrameLink::ViaCFrame { current_frame, .. } if link != 0 => {
                mem.read_u64(link + current_frame)
            }
            FrameLink::ViaCFrame { .. } => Ok(0),
        }
    }
}

/// Finds `interp_head` (2.7, 3.6) when the symbol is gone: it is a static variable, so it
/// sits in the module's `.data` or `.bss`, which survive stripping.
///
/// A word qualifies only if it points at a verified interpreter list: each interpreter's
/// `modules` is a dict, and its thread list is non-empty, ends, and every thread state
/// in it points back at the interpreter (and, when the version has `prev` links, each
/// thread's `prev` is the one before it). The check rules out thread states, whose
/// first fields alias an interpreter's in 2.7.
///
/// More than one word can qualify: `autoInterpreterState` also points at the main
/// interpreter. Both are kept, and each read follows the one whose list contains the
/// others' interpreters: `interp_head` is the head of the whole list, while
/// `autoInterpreterState` stays on the main interpreter when sub-interpreters exist.
///
/// The scan runs on first use (at attach) and its result is kept; until it succeeds
/// (an interpreter still starting up) `_PyThreadState_Current` is followed instead, and
/// the scan is tried again at most once per [`RESCAN_INTERVAL`].
#[derive(Debug)]
struct InterpHeadScan {
    /// `.data` and `.bss`.
    regions: Vec<Region>,
    /// The module's own address range: an interpreter state is heap memory, never here.
    module: std::ops::Range<u64>,
    /// The address of `_PyThreadState_Current`, used until the scan succeeds.
    current_thread: u64,
    check: InterpCheck,
    state: Mutex<ScanState>,
}

/// The offsets and type address that checking a candidate interpreter needs.
#[derive(Debug, Clone, Copy)]
struct InterpCheck {
    interp_next: u64,
    threads_head: u64,
    modules: u64,
    ob_type: u64,
    dict_type: u64,
    thread_next: u64,
    thread_prev: Option<u64>,
    thread_interp: u64,
}

#[derive(Debug, Default)]
struct ScanState {
    /// Addresses of the words found to hold the interpreter list; empty until found.
    words: Vec<u64>,
    last_scan: Option<Instant>,
}

/// How often a scan that found nothing is retried.
const RESCAN_INTERVAL: Duration = Duration::from_secs(1);

/// The end of user-space addresses on x86_64: no heap pointer is above it.
const USER_SPACE_END: u64 = 0x8000_0000_0000;

/// How many interpreters a candidate's list may have.
const MAX_SCAN_INTERPRETERS: usize = 1024;

impl InterpHeadScan {
    /// Set up a scan of `binary`'s static data; `None` when the layout or the binary
    /// lacks what the checks need.
    fn new(layout: &Layout, binary: &Binary, current_thread: u64) -> Option<InterpHeadScan> {
        let check = InterpCheck {
            interp_next: layout.interpreter.next?,
            threads_head: layout.interpreter.threads_head?,
            modules: layout.interpreter.modules?,
            ob_type: layout.object.ob_type?,
            dict_type: binary.symbol("PyDict_Type")?.address,
            thread_next: layout.thread.next?,
            thread_prev: layout.thread.prev,
            thread_interp: layout.thread.interp?,
        };
        let regions: Vec<Region> = [".data", ".bss"]
            .into_iter()
            .filter_map(|name| binary.section(name))
            .collect();
        let extent: Vec<Region> = [
            ".dynsym",
            ".text",
            ".rodata",
            ".eh_frame",
            ".data.rel.ro",
            ".got",
            ".data",
            ".bss",
        ]
        .into_iter()
        .filter_map(|name| binary.section(name))
        .collect();
        let start = extent.iter().map(|r| r.address).min()?;
        let end = extent.iter().map(|r| r.address + r.size).max()?;
        (!regions.is_empty())
            .then(|| InterpHeadScan::with_check(regions, start..end, current_thread, check))
    }

    fn with_check(
        regions: Vec<Region>,
        module: std::ops::Range<u64>,
        current_thread: u64,
        check: InterpCheck,
    ) -> InterpHeadScan {
        InterpHeadScan {
            regions,
            module,
            current_thread,
            check,
            state: Mutex::new(ScanState::default()),
        }
    }

    /// The head of the interpreter list (0 when the list is empty), or `None` while the
    /// variable holding it has not been found.
    fn first_interpreter(&self, mem: &impl Memory) -> Result<Option<u64>, ReadError> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let due = state
            .last_scan
            .is_none_or(|at| at.elapsed() >= RESCAN_INTERVAL);
        if state.words.is_empty() && due {
            state.words = self.scan(mem);
            state.last_scan = Some(Instant::now());
        }
        if state.words.is_empty() {
            return Ok(None);
        }
        let mut values = Vec::with_capacity(state.words.len());
        for &word in &state.words {
            values.push(mem.read_u64(word)?);
        }
        if values.iter().all(|&v| v == values[0]) {
            return Ok(Some(values[0]));
        }
        // The words disagree: a sub-interpreter exists (or a stale word). Follow the
        // valid list that contains the others, and once one is seen to contain another,
        // keep only the words that hold it: that is `interp_head`.
        let Some((head, contains_others)) = self.check.head_of(mem, &values) else {
            return Ok(None);
        };
        if contains_others {
            let words = std::mem::take(&mut state.words);
            state.words = words
                .into_iter()
                .zip(&values)
                .filter(|&(_, &v)| v == head)
                .map(|(w, _)| w)
                .collect();
        }
        Ok(Some(head))
    }

    /// The words of `.data`/`.bss` that point at a verified interpreter list.
    fn scan(&self, mem: &impl Memory) -> Vec<u64> {
        const CHUNK: u64 = 64 * 1024;
        let mut verdicts = std::collections::HashMap::new();
        let mut words = Vec::new();
        for region in &self.regions {
            let start = region.address.next_multiple_of(8);
            let end = region.address + region.size;
            let mut chunk_start = start;
            while chunk_start < end {
                let len = CHUNK.min(end - chunk_start) & !7;
                if len == 0 {
                    break;
                }
                let Ok(buf) = mem.read_vec(chunk_start, len as usize) else {
                    chunk_start += len;
                    continue;
                };
                for (i, word) in buf.chunks_exact(8).enumerate() {
                    let value = u64::from_le_bytes(word.try_into().unwrap());
                    if !(0x10000..USER_SPACE_END).contains(&value)
                        || value % 8 != 0
                        || self.module.contains(&value)
                    {
                        continue;
                    }
                    let valid = *verdicts
                        .entry(value)
                        .or_insert_with(|| self.check.is_interpreter_list(mem, value));
                    if valid {
                        words.push(chunk_start + 8 * i as u64);
                    }
                }
                chunk_start += len;
            }
        }
        words
    }
}

impl InterpCheck {
    /// Whether `first` and every interpreter after it pass [`InterpCheck::is_interpreter`].
    fn is_interpreter_list(&self, mem: &impl Memory, first: u64) -> bool {
        let mut seen = HashSet::new();
        let mut interp = first;
        while interp != 0 {
            if seen.len() >= MAX_SCAN_INTERPRETERS
                || !seen.insert(interp)
                || !self.is_interpreter(mem, interp)
            {
                return false;
            }
            match mem.read_u64(interp.wrapping_add(self.interp_next)) {
                Ok(next) => interp = next,
                Err(_) => return false,
            }
        }
        true
    }

    /// Whether `p` is an interpreter state: its `modules` is a dict and its thread list
    /// is non-empty, finite and points back at it.
    fn is_interpreter(&self, mem: &impl Memory, p: u64) -> bool {
        let len = self.interp_next.max(self.threads_head).max(self.modules) + 8;
        let Ok(interp) = mem.read_vec(p, len as usize) else {
            return false;
        };
        let modules = interp.u64_at(self.modules);
        if modules == 0 || mem.read_u64(modules.wrapping_add(self.ob_type)) != Ok(self.dict_type) {
            return false;
        }
        let len = [self.thread_next, self.thread_interp]
            .into_iter()
            .chain(self.thread_prev)
            .max()
            .unwrap_or(0)
            + 8;
        let mut buf = vec![0u8; len as usize];
        let mut seen = HashSet::new();
        let mut previous = 0;
        let mut tstate = interp.u64_at(self.threads_head);
        if tstate == 0 {
            return false;
        }
        while tstate != 0 {
            if seen.len() >= MAX_LIST_LEN
                || !seen.insert(tstate)
                || mem.read_into(tstate, &mut buf).is_err()
                || buf.u64_at(self.thread_interp) != p
                || self.thread_prev.is_some_and(|o| buf.u64_at(o) != previous)
            {
                return false;
            }
            previous = tstate;
            tstate = buf.u64_at(self.thread_next);
        }
        true
    }

    /// Of the values of the candidate words that are valid interpreter lists, the one
    /// whose list contains the most of the others (the head of the whole list; the first
    /// on a tie), and whether it contains any; `None` when no value is valid.
    fn head_of(&self, mem: &impl Memory, values: &[u64]) -> Option<(u64, bool)> {
        let mut valid: Vec<u64> = Vec::new();
        for &v in values.iter().filter(|&&v| v != 0) {
            if !valid.contains(&v) && self.is_interpreter_list(mem, v) {
                valid.push(v);
            }
        }
        let contained = |first: u64| -> usize {
            let mut count = 0;
            let mut interp = first;
            for _ in 0..MAX_SCAN_INTERPRETERS {
                interp = match mem.read_u64(interp.wrapping_add(self.interp_next)) {
                    Ok(next) if next != 0 => next,
                    _ => break,
                };
                count += usize::from(interp != first && valid.contains(&interp));
            }
            count
        };
        let mut best: Option<(u64, usize)> = None;
        for &v in &valid {
            let n = contained(v);
            if best.is_none_or(|(_, most)| n > most) {
                best = Some((v, n));
            }
        }
        best.map(|(v, n)| (v, n > 0))
    }
}

/// Maps `pthread_t` values to kernel TIDs for versions without `native_thread_id`.
///
/// On glibc (and musl) a `pthread_t` is the address of the thread's control block,
/// which stores the kernel TID at a fixed offset. The offset is found by looking for
/// one where every thread's block holds a distinct live TID, one of them the process's
/// own PID. After that, each tick reads the TID from the block and checks it against
/// the process's threads, which are listed again only when a TID not seen before turns
/// up. The ids are those of the process's own PID namespace, as the blocks hold them.
#[derive(Debug, Clone, Default)]
pub struct NativeIdResolver {
    /// The offsets that fitted every block when they were last searched, ascending;
    /// empty until the search finds one. Outside containers one offset fits at once.
    /// In a PID namespace of its own the process's ids are small (its PID often 1) and
    /// other fields of a lone thread's block can fit too, until threads whose blocks
    /// disagree at them rule them out.
    offsets: Vec<u64>,
    /// The process's threads as last listed.
    live_tids: Vec<u32>,
}

/// How far into a thread control block to look for the TID.
const TCB_SCAN_LEN: usize = 2048;

/// What one thread control block holds at the offsets that may hold its TID.
enum BlockTid {
    /// The block could not be read.
    Unreadable,
    /// The same value at every offset.
    Agreed(u32),
    /// Different values: the offsets need narrowing.
    Disagreed,
}

impl NativeIdResolver {
    /// Fill in `native_id` for threads that lack it, with the id the process knows
    /// the thread by; `ids` lists the process's threads. Threads that cannot be mapped
    /// keep `None`.
    pub fn resolve(&mut self, mem: &impl Memory, ids: &mut ThreadIds, threads: &mut [ThreadState]) {
        if threads.iter().all(|t| t.native_id.is_some()) {
            return;
        }
        if self.offsets.is_empty() {
            self.live_tids = ids.list();
            self.offsets = tid_offsets(mem, ids.own_pid(), &self.live_tids, threads, None);
        }
        if self.offsets.is_empty() {
            return;
        }
        let mut disagreed = false;
        for thread in threads.iter_mut().filter(|t| t.native_id.is_none()) {
            let tid = match self.block_tid(mem, thread.thread_id) {
                BlockTid::Agreed(tid) => tid,
                BlockTid::Disagreed => {
                    disagreed = true;
                    continue;
                }
                BlockTid::Unreadable => continue,
            };
            if !self.live_tids.contains(&tid) {
                self.live_tids = ids.list();
            }
            thread.native_id = Some(tid).filter(|tid| self.live_tids.contains(tid));
        }
        if disagreed {
            self.live_tids = ids.list();
            let narrowed = tid_offsets(
                mem,
                ids.own_pid(),
                &self.live_tids,
                threads,
                Some(&self.offsets),
            );
            // None fits when a thread came or went between the listing and the reads:
            // keep the offsets for the next tick's try.
            if !narrowed.is_empty() {
                self.offsets = narrowed;
            }
        }
    }

    /// The TID in the control block at `block`, at every offset that may hold it: one
    /// 4-byte read each, served by the tick's batch.
    fn block_tid(&self, mem: &impl Memory, block: u64) -> BlockTid {
        let tids: Result<SmallVec<[u32; 4]>, _> = self
            .offsets
            .iter()
            .map(|&offset| mem.read_u32(block.wrapping_add(offset)))
            .collect();
        match tids {
            Err(_) => BlockTid::Unreadable,
            Ok(tids) if tids.iter().all(|&tid| tid == tids[0]) => BlockTid::Agreed(tids[0]),
            Ok(_) => BlockTid::Disagreed,
        }
    }
}

/// The offsets (of `within`, or of the whole scanned length) at which the control
/// blocks of `threads` hold distinct TIDs from `live_tids`, one of them `pid`. A block
/// counts once however many thread states share it: an OS thread that runs code in a
/// sub-interpreter has a thread state in each interpreter.
fn tid_offsets(
    mem: &impl Memory,
    pid: u32,
    live_tids: &[u32],
    threads: &[ThreadState],
    within: Option<&[u64]>,
) -> Vec<u64> {
    let mut addresses: Vec<u64> = threads.iter().map(|t| t.thread_id).collect();
    addresses.sort_unstable();
    addresses.dedup();
    let blocks: Vec<Vec<u8>> = addresses
        .into_iter()
        .filter_map(|address| mem.read_vec(address, TCB_SCAN_LEN).ok())
        .collect();
    let fits = |offset: u64| {
        let mut tids: Vec<u32> = blocks.iter().map(|b| b.u32_at(offset)).collect();
        tids.contains(&pid) && tids.iter().all(|tid| live_tids.contains(tid)) && {
            tids.sort_unstable();
            tids.dedup();
            tids.len() == blocks.len()
        }
    };
    match within {
        Some(offsets) => offsets.iter().copied().filter(|&o| fits(o)).collect(),
        None => (0..TCB_SCAN_LEN as u64)
            .step_by(4)
            .filter(|&o| fits(o))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Memory made of a few blocks, as captured from a process.
    struct FakeMemory(Vec<(u64, Vec<u8>)>);

    impl FakeMemory {
        fn new() -> FakeMemory {
            FakeMemory(Vec::new())
        }

        /// Put `words` at `address`.
        fn put(&mut self, address: u64, words: &[u64]) {
            let bytes = words.iter().flat_map(|w| w.to_le_bytes()).collect();
            self.0.push((address, bytes));
        }

        /// Put `words` at the start of the scanned static data, zero-padded.
        fn put_static(&mut self, words: &[u64]) {
            let mut padded = words.to_vec();
            padded.resize(0x100 / 8, 0);
            self.put(STATIC, &padded);
        }
    }

    impl Memory for FakeMemory {
        fn read_into(&self, addr: u64, buf: &mut [u8]) -> Result<(), ReadError> {
            // Later blocks override earlier ones.
            for (start, bytes) in self.0.iter().rev() {
                let offset = addr.wrapping_sub(*start) as usize;
                if addr >= *start && offset + buf.len() <= bytes.len() {
                    buf.copy_from_slice(&bytes[offset..offset + buf.len()]);
                    return Ok(());
                }
            }
            Err(ReadError::Unmapped(addr))
        }
    }

    const STATIC: u64 = 0x1000;
    const DICT_TYPE: u64 = 0x1800;
    const FRAME_TYPE: u64 = 0x1900;

    /// 2.7's layout: an interpreter and a thread state both start with `next`, then
    /// `tstate_head` / `interp`; `modules` / `frame` come next.
    fn check_27() -> InterpCheck {
        InterpCheck {
            interp_next: 0,
            threads_head: 8,
            modules: 16,
            ob_type: 8,
            dict_type: DICT_TYPE,
            thread_next: 0,
            thread_prev: None,
            thread_interp: 8,
        }
    }

    fn scanner(check: InterpCheck) -> InterpHeadScan {
        let data = Region {
            address: STATIC,
            size: 0x100,
        };
        InterpHeadScan::with_check(vec![data], STATIC..0x2000, 0x1f00, check)
    }

    /// A 2.7-like process: interpreter 0x10000 with two threads, a dict, a frame.
    fn process_27(words: &[u64]) -> FakeMemory {
        let mut mem = FakeMemory::new();
        mem.put_static(words);
        mem.put(0x1f00, &[0]); // _PyThreadState_Current: nobody holds the GIL
        mem.put(0x10000, &[0, 0x20000, 0x30000]); // interp: next, tstate_head, modules
        mem.put(0x20000, &[0x21000, 0x10000, 0x40000]); // thread: next, interp, frame
        mem.put(0x21000, &[0, 0x10000, 0]);
        mem.put(0x30000, &[1, DICT_TYPE]); // modules: refcount, type
        mem.put(0x40000, &[1, FRAME_TYPE]); // a frame
        mem
    }

    #[test]
    fn scan_finds_the_interpreter_list_and_not_a_thread_state() {
        // interp_head, autoInterpreterState, _PyThreadState_Current-like pointer to the
        // head thread (whose fields alias an interpreter's), the dict, a pointer into
        // the module, garbage.
        let words = [
            0x10000,
            0x10000,
            0x20000,
            0x30000,
            STATIC + 8,
            0xdead_beef_0000,
        ];
        let mem = process_27(&words);
        let scan = scanner(check_27());
        assert_eq!(scan.scan(&mem), vec![STATIC, STATIC + 8]);
        assert_eq!(scan.first_interpreter(&mem), Ok(Some(0x10000)));
    }

    #[test]
    fn scan_follows_the_word_that_heads_the_whole_list() {
        // A sub-interpreter 0x50000 (newest, so at the head) with its own thread:
        // autoInterpreterState still points at the main interpreter.
        let mut mem = process_27(&[0x10000, 0x50000]);
        mem.put(0x50000, &[0x10000, 0x60000, 0x30000]);
        mem.put(0x60000, &[0, 0x50000, 0]);
        let scan = scanner(check_27());
        assert_eq!(scan.scan(&mem), vec![STATIC, STATIC + 8]);
        assert_eq!(scan.first_interpreter(&mem), Ok(Some(0x50000)));
        // From now on only the word that headed the whole list is read.
        assert_eq!(scan.state.lock().unwrap().words, vec![STATIC + 8]);
        mem.put(STATIC + 8, &[0x10000]); // the sub-interpreter ended
        mem.put(STATIC, &[0xdead_0000]); // and the other word changed meaning
        assert_eq!(scan.first_interpreter(&mem), Ok(Some(0x10000)));
    }

    #[test]
    fn a_word_that_no_longer_holds_a_valid_list_is_not_followed() {
        let mut mem = process_27(&[0x10000, 0x10000]);
        let scan = scanner(check_27());
        assert_eq!(scan.first_interpreter(&mem), Ok(Some(0x10000)));
        mem.put(STATIC, &[0x20000]); // now points at a thread state
        assert_eq!(scan.first_interpreter(&mem), Ok(Some(0x10000)));
    }

    #[test]
    fn nothing_is_found_before_the_interpreter_is_set_up() {
        let mut mem = process_27(&[0x10000]);
        mem.put(0x10000, &[0, 0x20000, 0]); // no modules dict yet
        let scan = scanner(check_27());
        assert_eq!(scan.first_interpreter(&mem), Ok(None));
        // A thread list that does not point back is refused too.
        let mut mem = process_27(&[0x10000]);
        mem.put(0x21000, &[0, 0x99000, 0]);
        assert!(scan.scan(&mem).is_empty());
    }

    #[test]
    fn prev_links_must_agree_when_the_version_has_them() {
        // 3.6: thread states start with prev, next, interp.
        let check = InterpCheck {
            thread_prev: Some(0),
            thread_next: 8,
            thread_interp: 16,
            ..check_27()
        };
        let build = |second_prev: u64| {
            let mut mem = FakeMemory::new();
            mem.put_static(&[0x10000]);
            mem.put(0x10000, &[0, 0x20000, 0x30000]);
            mem.put(0x20000, &[0, 0x21000, 0x10000]);
            mem.put(0x21000, &[second_prev, 0, 0x10000]);
            mem.put(0x30000, &[1, DICT_TYPE]);
            mem
        };
        let scan = scanner(check);
        assert_eq!(scan.scan(&build(0x20000)), vec![STATIC]);
        assert!(scan.scan(&build(0x77000)).is_empty());
    }

    /// A control block `TCB_SCAN_LEN` long at `address`, holding `tid` at 0x80 and
    /// `pid_like` before it, at 0x40.
    fn put_block(mem: &mut FakeMemory, address: u64, tid: u32, pid_like: u32) {
        let mut words = vec![0u64; TCB_SCAN_LEN / 8];
        words[0x40 / 8] = u64::from(pid_like);
        words[0x80 / 8] = u64::from(tid);
        mem.put(address, &words);
    }

    fn python_thread(block: u64) -> ThreadState {
        ThreadState {
            address: block + 0x100_0000,
            thread_id: block,
            native_id: None,
            frame: 0,
            holds_gil: false,
            collecting_garbage: false,
            gc_started_in: None,
            gil: 0,
        }
    }

    /// A lone thread's block can hold the process's (small, in a container) PID at
    /// more than one offset: the thread's id is the one they agree on, and the offsets
    /// are narrowed once a second thread's block tells them apart.
    #[test]
    fn offsets_that_agree_on_one_block_are_narrowed_by_the_next() {
        let pid = std::process::id();
        let (tx, rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
        let other = std::thread::spawn(move || {
            // SAFETY: gettid has no preconditions.
            tx.send(unsafe { libc::gettid() } as u32).unwrap();
            let _ = stop_rx.recv();
        });
        let other_tid = rx.recv().unwrap();
        let mut ids = ThreadIds::of(pid);
        let mut mem = FakeMemory::new();
        put_block(&mut mem, 0x10000, pid, pid);
        let mut resolver = NativeIdResolver::default();

        let mut threads = vec![python_thread(0x10000)];
        resolver.resolve(&mem, &mut ids, &mut threads);
        assert_eq!(threads[0].native_id, Some(pid));
        assert_eq!(resolver.offsets, vec![0x40, 0x80]);

        put_block(&mut mem, 0x20000, other_tid, pid);
        let mut threads = vec![python_thread(0x10000), python_thread(0x20000)];
        resolver.resolve(&mem, &mut ids, &mut threads);
        assert_eq!(threads[0].native_id, Some(pid));
        assert_eq!(threads[1].native_id, None, "the offsets disagree");
        assert_eq!(resolver.offsets, vec![0x80]);

        threads[1].native_id = None;
        resolver.resolve(&mem, &mut ids, &mut threads);
        assert_eq!(threads[1].native_id, Some(other_tid));
        stop_tx.send(()).unwrap();
        other.join().unwrap();
    }
}
