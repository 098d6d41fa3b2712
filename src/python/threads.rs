//! Interpreters and their thread states.

use super::layout::{require, Layout, MissingField};
use super::version::InterpreterRoot;
use crate::target::binary::Binary;
use crate::target::memory::{FieldReader, Memory, ReadError};

/// Upper bound on threads per interpreter and on interpreters, against looping lists.
const MAX_LIST_LEN: usize = 65_536;

/// One Python thread, as read from its `PyThreadState`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThreadState {
    /// Address of the `PyThreadState`.
    pub address: u64,
    /// `thread_id`: the `pthread_t`, equal to `threading.get_ident()`.
    pub thread_id: u64,
    /// `native_thread_id` (3.11+): the kernel TID.
    pub native_id: Option<u32>,
    /// The innermost frame (`PyFrameObject*` or `_PyInterpreterFrame*`); 0 when the
    /// thread runs no Python code.
    pub frame: u64,
    /// Whether the thread holds its interpreter's GIL (always false for free-threaded
    /// builds).
    pub holds_gil: bool,
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
#[derive(Debug, Clone, Copy)]
enum RootAddress {
    /// Read the pointer stored at this address.
    Pointer(u64),
    /// Read the current thread state pointer stored here and follow its `interp`.
    CurrentThread(u64),
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
                None => RootAddress::CurrentThread(
                    binary
                        .symbol("_PyThreadState_Current")
                        .ok_or(MissingField("interp_head or _PyThreadState_Current symbol"))?
                        .address,
                ),
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
    pub fn interpreters(&self, mem: &impl Memory) -> Result<Vec<u64>, ReadError> {
        let first = match self.root {
            RootAddress::Pointer(addr) => mem.read_u64(addr)?,
            RootAddress::CurrentThread(addr) => match mem.read_u64(addr)? {
                0 => 0,
                tstate => mem.read_u64(tstate + self.thread_interp)?,
            },
        };
        let mut out = Vec::new();
        let mut interp = first;
        while interp != 0 && out.len() < MAX_LIST_LEN && !out.contains(&interp) {
            out.push(interp);
            interp = mem.read_u64(interp + self.interp_next)?;
        }
        Ok(out)
    }

    /// Every thread of interpreter `interp`, newest first (the main thread is last).
    ///
    /// Each thread state is read in one call. A thread whose `interp` field does not
    /// point back at `interp` ends the walk: the list changed under us.
    pub fn threads(&self, mem: &impl Memory, interp: u64) -> Result<Vec<ThreadState>, ReadError> {
        let mut out = Vec::new();
        let mut address = mem.read_u64(interp + self.threads_head)?;
        let mut buf = vec![0u8; self.read_len];
        while address != 0 && out.len() < MAX_LIST_LEN {
            mem.read_into(address, &mut buf)?;
            if buf.u64_at(self.thread_interp) != interp {
                break;
            }
            out.push(ThreadState {
                address,
                thread_id: buf.u64_at(self.thread_id),
                native_id: self.native_id.map(|o| buf.u32_at(o)),
                frame: self.follow_link(mem, buf.u64_at(self.link_offset()))?,
                holds_gil: false,
            });
            address = buf.u64_at(self.thread_next);
        }
        Ok(out)
    }

    /// The innermost frame of the thread state at `tstate`, read afresh: comparing it
    /// with the frame a walk started from tells whether the stack changed meanwhile.
    pub fn current_frame(&self, mem: &impl Memory, tstate: u64) -> Result<u64, ReadError> {
        self.follow_link(mem, mem.read_u64(tstate + self.link_offset())?)
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

/// Maps `pthread_t` values to kernel TIDs for versions without `native_thread_id`.
///
/// On glibc (and musl) a `pthread_t` is the address of the thread's control block,
/// which stores the kernel TID at a fixed offset. The offset is found once, by looking
/// for the process's own PID in the main thread's block and checking that the same
/// offset gives a live TID for every other thread.
#[derive(Debug, Clone, Default)]
pub struct NativeIdResolver {
    tid_offset: Option<u64>,
}

/// How far into a thread control block to look for the TID.
const TCB_SCAN_LEN: usize = 2048;

impl NativeIdResolver {
    /// Fill in `native_id` for threads that lack it. `pid` is the process, `live_tids`
    /// its current OS threads. Threads that cannot be mapped keep `None`.
    pub fn resolve(
        &mut self,
        mem: &impl Memory,
        pid: u32,
        live_tids: &[u32],
        threads: &mut [ThreadState],
    ) {
        if threads.iter().all(|t| t.native_id.is_some()) {
            return;
        }
        if self.tid_offset.is_none() {
            self.tid_offset = find_tid_offset(mem, pid, live_tids, threads);
        }
        let Some(offset) = self.tid_offset else {
            return;
        };
        for thread in threads.iter_mut().filter(|t| t.native_id.is_none()) {
            thread.native_id = mem
                .read_u32(thread.thread_id.wrapping_add(offset))
                .ok()
                .filter(|tid| live_tids.contains(tid));
        }
    }
}

fn find_tid_offset(
    mem: &impl Memory,
    pid: u32,
    live_tids: &[u32],
    threads: &[ThreadState],
) -> Option<u64> {
    let blocks: Vec<Vec<u8>> = threads
        .iter()
        .filter_map(|t| mem.read_vec(t.thread_id, TCB_SCAN_LEN).ok())
        .collect();
    let main = blocks.iter().find(|b| {
        (0..TCB_SCAN_LEN as u64)
            .step_by(4)
            .any(|o| b.u32_at(o) == pid)
    })?;
    (0..TCB_SCAN_LEN as u64).step_by(4).find(|&offset| {
        main.u32_at(offset) == pid
            && blocks.iter().all(|b| live_tids.contains(&b.u32_at(offset)))
            && {
                let mut tids: Vec<u32> = blocks.iter().map(|b| b.u32_at(offset)).collect();
                tids.sort_unstable();
                tids.dedup();
                tids.len() == blocks.len()
            }
    })
}
