//! Pausing the target's threads while a sample is read (`--blocking`).
//!
//! Threads are attached with `PTRACE_SEIZE`, which does not stop them. For each sample
//! they are stopped with `PTRACE_INTERRUPT`, read, and resumed with `PTRACE_CONT`. The
//! [`PausedThreads`] guard resumes them when dropped, so a panic or an early return
//! cannot leave the target stopped; [`Pauser`] detaches from every thread when dropped.
//! If pyscry dies outright, the kernel detaches and the threads run on.
//!
//! All ptrace calls must come from the thread that seized: create and use a `Pauser`
//! on the sampler thread only.

use std::collections::HashSet;

use nix::errno::Errno;
use nix::sys::ptrace;
use std::time::{Duration, Instant};

use nix::sys::wait::{waitid, waitpid, Id, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use super::process::thread_ids;

/// Seized threads of one process.
#[derive(Debug)]
pub struct Pauser {
    pid: u32,
    seized: HashSet<u32>,
}

/// Why threads could not be paused.
#[derive(Debug, thiserror::Error)]
pub enum PauseError {
    /// The kernel refused ptrace (permissions, or another tracer such as a debugger).
    #[error("cannot ptrace thread {tid}: {errno}")]
    Ptrace {
        /// The thread.
        tid: u32,
        /// The error.
        errno: Errno,
    },
}

impl Pauser {
    /// Prepare to pause `pid`'s threads. Nothing is attached until the first pause.
    pub fn new(pid: u32) -> Pauser {
        Pauser {
            pid,
            seized: HashSet::new(),
        }
    }

    /// Stop every thread of the process (seizing new ones first) until the returned
    /// guard is dropped.
    pub fn pause(&mut self) -> Result<PausedThreads<'_>, PauseError> {
        let current = thread_ids(self.pid);
        for &tid in &current {
            if !self.seized.contains(&tid) {
                match ptrace::seize(Pid::from_raw(tid as i32), ptrace::Options::empty()) {
                    Ok(()) => {
                        self.seized.insert(tid);
                    }
                    // The thread exited between listing and seizing.
                    Err(Errno::ESRCH) => {}
                    Err(errno) => return Err(PauseError::Ptrace { tid, errno }),
                }
            }
        }
        self.seized.retain(|tid| current.contains(tid));
        // Every thread interrupted goes into the guard before anything can fail, so
        // every one of them is resumed, whatever happens next.
        let mut paused = PausedThreads {
            interrupted: Vec::with_capacity(self.seized.len()),
            pid: self.pid,
            pauser: self,
        };
        let seized: Vec<u32> = paused.pauser.seized.iter().copied().collect();
        for tid in seized {
            let tid = Pid::from_raw(tid as i32);
            if ptrace::interrupt(tid).is_ok() {
                paused.interrupted.push(tid);
            }
        }
        for &tid in &paused.interrupted {
            wait_for_stop(tid, paused.pid);
        }
        Ok(paused)
    }
}

/// Longest wait for one thread to stop; a thread that takes longer is read running.
const STOP_TIMEOUT: Duration = Duration::from_millis(100);
/// How often a thread that has not stopped yet is checked again.
const STOP_POLL: Duration = Duration::from_micros(20);

/// Wait until `tid` is in its ptrace stop (or gone), for at most [`STOP_TIMEOUT`].
///
/// The stop is observed with `WNOWAIT`, so no status is consumed: `PTRACE_CONT` clears
/// the stop, and a process leader's exit stays for its real parent to collect (pyscry
/// may be that parent, waiting for a program it launched). Exited non-leader threads
/// are reaped here, since nobody else can.
fn wait_for_stop(tid: Pid, leader: u32) {
    let flags = WaitPidFlag::WSTOPPED
        | WaitPidFlag::WEXITED
        | WaitPidFlag::WNOWAIT
        | WaitPidFlag::WNOHANG
        | WaitPidFlag::__WALL;
    let deadline = Instant::now() + STOP_TIMEOUT;
    while Instant::now() < deadline {
        match waitid(Id::Pid(tid), flags) {
            // Sleep rather than spin: the thread needs a CPU to reach its stop.
            Ok(WaitStatus::StillAlive) | Err(Errno::EINTR) => std::thread::sleep(STOP_POLL),
            Ok(WaitStatus::Exited(..)) | Ok(WaitStatus::Signaled(..)) => {
                if tid.as_raw() as u32 != leader {
                    let _ = waitpid(tid, Some(WaitPidFlag::__WALL | WaitPidFlag::WNOHANG));
                }
                return;
            }
            Ok(_) | Err(_) => return,
        }
    }
}

impl Drop for Pauser {
    fn drop(&mut self) {
        for &tid in &self.seized {
            let _ = ptrace::detach(Pid::from_raw(tid as i32), None);
        }
    }
}

/// The registers a stopped thread's native stack is unwound from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Registers {
    /// The program counter (`rip`).
    pub pc: u64,
    /// The stack pointer (`rsp`).
    pub sp: u64,
    /// The frame base pointer (`rbp`).
    pub bp: u64,
}

impl PausedThreads<'_> {
    /// The registers of thread `tid`, if it is one of those stopped.
    pub fn registers(&self, tid: u32) -> Option<Registers> {
        let tid = Pid::from_raw(i32::try_from(tid).ok()?);
        if !self.interrupted.contains(&tid) {
            return None;
        }
        let regs = ptrace::getregs(tid).ok()?;
        Some(Registers {
            pc: regs.rip,
            sp: regs.rsp,
            bp: regs.rbp,
        })
    }
}

/// Threads stopped for one sample; dropping this resumes them.
#[derive(Debug)]
pub struct PausedThreads<'a> {
    interrupted: Vec<Pid>,
    pid: u32,
    pauser: &'a mut Pauser,
}

impl Drop for PausedThreads<'_> {
    fn drop(&mut self) {
        for &tid in &self.interrupted {
            let _ = ptrace::cont(tid, None);
        }
    }
}
