//! Which threads of the target are running, according to the kernel.
//!
//! A thread counts as running at a tick if the kernel has it runnable at that moment.
//! The file that says so best is `/proc/PID/task/TID/syscall`: `running` for a runnable
//! thread, else the system call it is blocked in, with its arguments. The call says what
//! the thread waits for, the same on every kernel version, and for a futex its address,
//! which tells a wait for the GIL from a wait on any other lock. `wchan` (`0`, else the
//! kernel function the thread sleeps in, whose names change from kernel to kernel) costs
//! about as much, and is read where `syscall` is missing (kernels built without it);
//! `stat`, which costs the kernel about three times as much (it formats some fifty fields
//! to give the state letter `R`), where `wchan` does not name waits either (no symbol
//! table). With many threads these reads are most of a tick, so the choice is made once,
//! by a probe of a thread known to sleep. The files are kept open and re-read with
//! `pread`, one system call per thread and tick.
//!
//! Per-thread CPU time (`schedstat`, or `utime`/`stime` in `stat`) is not used: the
//! kernel updates it only at scheduler ticks or context switches, so a thread spinning
//! on a CPU showed no progress in 45% of 10 ms windows here. A thread that just went to
//! sleep, on the other hand, would still show the progress it made before sleeping.
//! Sampling the state is unbiased: each thread is counted running in proportion to the
//! time it spends runnable.

use std::fs::File;
use std::os::unix::fs::FileExt;

/// Keeps each thread's state file open between ticks.
#[derive(Debug)]
pub struct ThreadActivity {
    pid: u32,
    source: StateSource,
    threads: rustc_hash::FxHashMap<u32, StateFile>,
}

/// Which `/proc` file gives a thread's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StateSource {
    /// `syscall`: `running` when runnable, else the blocking call and its arguments.
    Syscall,
    /// `wchan`: `0` when runnable, else the kernel function the thread sleeps in.
    Wchan,
    /// `stat`: state letter `R` when runnable.
    Stat,
}

impl StateSource {
    /// The one this kernel supports best, probed once per process.
    fn probe() -> StateSource {
        static SOURCE: std::sync::OnceLock<StateSource> = std::sync::OnceLock::new();
        *SOURCE.get_or_init(|| {
            // The first that says a sleeping thread waits (`wchan` may say `0`, as for
            // a running one, where the kernel has no symbol table).
            [StateSource::Syscall, StateSource::Wchan]
                .into_iter()
                .find(|&source| {
                    file_of_a_sleeping_thread(source.file_name()).is_some_and(|contents| {
                        matches!(source.parse(&contents), Some(RunState::Waiting(_)))
                    })
                })
                .unwrap_or(StateSource::Stat)
        })
    }

    fn file_name(self) -> &'static str {
        match self {
            StateSource::Syscall => "syscall",
            StateSource::Wchan => "wchan",
            StateSource::Stat => "stat",
        }
    }

    /// What the file's contents say the thread is doing; `None` when they say
    /// nothing (an empty `wchan`, a `syscall` line that does not parse).
    fn parse(self, contents: &[u8]) -> Option<RunState> {
        let text = std::str::from_utf8(contents).ok()?.trim_end();
        match self {
            StateSource::Syscall if text == "running" => Some(RunState::Running),
            StateSource::Syscall => Wait::of_syscall_file(text).map(RunState::Waiting),
            StateSource::Wchan if text.is_empty() => None,
            StateSource::Wchan if text == "0" => Some(RunState::Running),
            StateSource::Wchan => Some(RunState::Waiting(Wait {
                kind: WaitKind::of_kernel_function(text),
                futex: None,
            })),
            StateSource::Stat => Some(match super::process::state_letter(text)? {
                'R' => RunState::Running,
                _ => RunState::Waiting(Wait::default()),
            }),
        }
    }
}

/// A thread's state at one tick, as the sampler reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunState {
    /// Runnable: on a CPU or waiting for one.
    Running,
    /// Not runnable, in this wait.
    Waiting(Wait),
}

impl RunState {
    /// The wait the thread is in; `None` when it runs.
    pub fn wait(self) -> Option<Wait> {
        match self {
            RunState::Running => None,
            RunState::Waiting(wait) => Some(wait),
        }
    }
}

/// What the kernel says of a thread's wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Wait {
    /// What it waits for, where the kernel's answer is one pyscry knows. Never
    /// [`WaitKind::Gil`]: only the interpreter's layout tells the GIL's futexes apart.
    pub kind: Option<WaitKind>,
    /// For a wait on a futex (a lock, a condition, the GIL), the futex's address in the
    /// process's memory, where the kernel gives it.
    pub futex: Option<u64>,
}

impl Wait {
    /// The wait that a thread's `syscall` file describes (`NR ARG1 … ARG6 SP PC`, the
    /// arguments in hex; `-1 SP PC` when it is blocked outside any system call);
    /// `None` for anything else (`running` is read by the caller).
    fn of_syscall_file(text: &str) -> Option<Wait> {
        let mut fields = text.split(' ');
        let number: i64 = fields.next()?.parse().ok()?;
        let mut args = [0u64; 6];
        if number >= 0 {
            for arg in &mut args {
                *arg = u64::from_str_radix(fields.next()?.strip_prefix("0x")?, 16).ok()?;
            }
        }
        Some(Wait {
            kind: WaitKind::of_syscall(number, &args),
            futex: (number == libc::SYS_futex).then_some(args[0]),
        })
    }
}

/// The contents of file `file` (`wchan`…) of a thread of ours, read while the kernel
/// has it asleep (blocked on a channel); `None` when it cannot be read.
fn file_of_a_sleeping_thread(file: &str) -> Option<Vec<u8>> {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let sleeper = std::thread::spawn(move || {
        let _ = ready_tx.send(unsafe { libc::gettid() } as u32);
        let _ = release_rx.recv();
    });
    let pid = std::process::id();
    let asleep = |tid: u32| thread_state(pid, tid) == Some('S');
    // Asleep before and after the read: the read saw it asleep.
    let read = |tid: u32| -> Option<Vec<u8>> {
        if !asleep(tid) {
            return None;
        }
        let contents = std::fs::read(format!("/proc/{pid}/task/{tid}/{file}")).ok()?;
        asleep(tid).then_some(contents)
    };
    let contents = ready_rx.recv().ok().and_then(|tid| {
        // Wait until the kernel has it asleep, for up to 2 s: a loaded machine may take
        // a while to run it to its wait (CI once saw this fail within 200 ms).
        (0..2000).find_map(|_| {
            let contents = read(tid);
            if contents.is_none() {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            contents
        })
    });
    let _ = release_tx.send(());
    let _ = sleeper.join();
    contents
}

#[derive(Debug)]
struct StateFile {
    file: File,
    /// In the thread list of the current tick.
    present: bool,
    /// State read by [`ThreadActivity::snapshot`] for the current tick.
    snapshot: Option<RunState>,
}

impl ThreadActivity {
    /// Track the threads of `pid`.
    pub fn new(pid: u32) -> ThreadActivity {
        ThreadActivity {
            pid,
            source: StateSource::probe(),
            threads: Default::default(),
        }
    }

    /// Read the state of every thread seen at the previous tick now, for
    /// [`ThreadActivity::state`] to answer from. Used before pausing the target,
    /// which would make every thread look stopped.
    pub fn snapshot(&mut self) {
        for state in self.threads.values_mut() {
            state.snapshot = read_state(self.source, &state.file);
        }
    }

    /// Whether thread `tid` is runnable, and if not what it waits for (as of the
    /// snapshot, if one was taken this tick, else now); `None` when its state cannot
    /// be read (it exited).
    pub fn state(&mut self, tid: u32) -> Option<RunState> {
        let (pid, source) = (self.pid, self.source);
        let state = match self.threads.entry(tid) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => e.insert(StateFile {
                file: File::open(format!("/proc/{pid}/task/{tid}/{}", source.file_name())).ok()?,
                present: true,
                snapshot: None,
            }),
        };
        state
            .snapshot
            .take()
            .or_else(|| read_state(source, &state.file))
    }

    /// Forget threads that are not among `present`, the threads of this tick (they have
    /// exited), so their files are closed, and drop any snapshot. Call once per tick,
    /// after the queries. A thread that was not asked about this tick (it held the GIL)
    /// keeps its file: opening it again costs more than several reads.
    pub fn end_tick(&mut self, present: impl IntoIterator<Item = u32>) {
        for tid in present {
            if let Some(state) = self.threads.get_mut(&tid) {
                state.present = true;
            }
        }
        self.threads.retain(|_, state| {
            state.snapshot = None;
            std::mem::take(&mut state.present)
        });
    }
}

fn read_state(source: StateSource, file: &File) -> Option<RunState> {
    let mut buf = [0u8; 512];
    let n = file.read_at(&mut buf, 0).ok()?;
    source.parse(&buf[..n])
}

/// The scheduler state letter of one thread (`R` running, `S` sleeping, `T` stopped…).
fn thread_state(pid: u32, tid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/stat")).ok()?;
    super::process::state_letter(&stat)
}

/// What the kernel has a thread doing, at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KernelState {
    /// Runnable: on a CPU or waiting for one.
    Running,
    /// Not runnable.
    Waiting {
        /// The kernel function it sleeps in (`wchan`), where the kernel names it.
        function: Option<String>,
        /// What it waits for, from its system call where the kernel gives it, else from
        /// that function.
        wait: Wait,
    },
}

/// What a sleeping thread waits for, as far as the kernel says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum WaitKind {
    /// A sleep (`nanosleep`, or `select`/`poll` on no file: `time.sleep` before 3.11).
    Sleep,
    /// The GIL, held by another thread: a futex inside the GIL's locks (told by the
    /// interpreter's layout, not by the kernel alone).
    Gil,
    /// A futex: a lock or a condition.
    Lock,
    /// `select`, `poll` or `epoll`, for files to be ready.
    Poll,
    /// A read or write of a pipe, socket or file, or a connection to be made.
    Io,
    /// A child process's end.
    Child,
}

impl WaitKind {
    /// What a thread sleeping in the kernel function `function` (as `wchan` names
    /// it) waits for; `None` for one pyscry does not know (kernels name them
    /// differently from version to version).
    pub fn of_kernel_function(function: &str) -> Option<WaitKind> {
        // Without a compiler's suffix: `poll_schedule_timeout.constprop.0`.
        let function = function.split('.').next().unwrap_or_default();
        const POLL: [&str; 6] = [
            "ep_poll",
            "do_epoll_wait",
            "do_select",
            "core_sys_select",
            "do_sys_poll",
            "poll_schedule_timeout",
        ];
        const IO: [&str; 7] = [
            "pipe_read",
            // The same on newer kernels (6.18 here).
            "anon_pipe_read",
            "pipe_wait",
            "wait_woken",
            "sk_wait_data",
            "unix_stream_read_generic",
            "inet_csk_accept",
        ];
        match function {
            // Threads waiting for the GIL, the commonest, are told first.
            _ if function.starts_with("futex") => Some(WaitKind::Lock),
            _ if function.contains("nanosleep") => Some(WaitKind::Sleep),
            _ if POLL.contains(&function) => Some(WaitKind::Poll),
            _ if IO.contains(&function) => Some(WaitKind::Io),
            "do_wait" | "kernel_wait4" => Some(WaitKind::Child),
            _ => None,
        }
    }

    /// What a thread blocked in system call `number` with arguments `args` waits for;
    /// `None` for calls pyscry does not know.
    // libc spells the call numbers in lower case, as the kernel's headers do.
    #[allow(non_upper_case_globals)]
    pub fn of_syscall(number: i64, args: &[u64; 6]) -> Option<WaitKind> {
        use libc::*;
        // `select`/`pselect6` (the count of files first) and `poll`/`ppoll` (second)
        // on no file only wait for their timeout.
        let polls_files = |count: u64| match count {
            0 => WaitKind::Sleep,
            _ => WaitKind::Poll,
        };
        #[cfg(target_arch = "x86_64")]
        match number {
            SYS_select => return Some(polls_files(args[0])),
            SYS_poll => return Some(polls_files(args[1])),
            SYS_epoll_wait => return Some(WaitKind::Poll),
            _ => {}
        }
        Some(match number {
            SYS_futex | SYS_futex_waitv => WaitKind::Lock,
            SYS_nanosleep | SYS_clock_nanosleep => WaitKind::Sleep,
            SYS_pselect6 => polls_files(args[0]),
            SYS_ppoll => polls_files(args[1]),
            SYS_epoll_pwait | SYS_epoll_pwait2 => WaitKind::Poll,
            SYS_read | SYS_readv | SYS_pread64 | SYS_preadv | SYS_preadv2 | SYS_recvfrom
            | SYS_recvmsg | SYS_recvmmsg | SYS_write | SYS_writev | SYS_pwrite64 | SYS_sendto
            | SYS_sendmsg | SYS_accept | SYS_accept4 | SYS_connect => WaitKind::Io,
            SYS_wait4 | SYS_waitid => WaitKind::Child,
            _ => return None,
        })
    }

    /// Every kind, in the order of the enum.
    pub const ALL: [WaitKind; 6] = [
        WaitKind::Sleep,
        WaitKind::Gil,
        WaitKind::Lock,
        WaitKind::Poll,
        WaitKind::Io,
        WaitKind::Child,
    ];

    /// Its one-word name (`lock`), as recordings, labels and JSON give it.
    pub fn name(self) -> &'static str {
        match self {
            WaitKind::Sleep => "sleep",
            WaitKind::Gil => "gil",
            WaitKind::Lock => "lock",
            WaitKind::Poll => "poll",
            WaitKind::Io => "io",
            WaitKind::Child => "child",
        }
    }

    /// The kind named `name` ([`WaitKind::name`]); `None` for a name this build does
    /// not know.
    pub fn from_name(name: &str) -> Option<WaitKind> {
        WaitKind::ALL.into_iter().find(|kind| kind.name() == name)
    }

    /// The wait in words, for text output.
    pub fn describe(self) -> &'static str {
        match self {
            WaitKind::Sleep => "sleeping",
            WaitKind::Gil => "waiting for the GIL",
            WaitKind::Lock => "waiting on a lock",
            WaitKind::Poll => "waiting in select/poll",
            WaitKind::Io => "waiting for I/O",
            WaitKind::Child => "waiting for a child process",
        }
    }
}

impl KernelState {
    /// The wait the thread is in; `None` when it runs.
    pub fn wait(&self) -> Option<Wait> {
        match self {
            KernelState::Running => None,
            KernelState::Waiting { wait, .. } => Some(*wait),
        }
    }
}

/// The kernel state of every thread of `pid` now, by TID; empty when the process is
/// gone. Read before pausing a process, which makes every thread look stopped.
pub fn kernel_states(pid: u32) -> std::collections::HashMap<u32, KernelState> {
    super::process::thread_ids(pid)
        .into_iter()
        .filter_map(|tid| {
            let state = match thread_state(pid, tid)? {
                'R' => KernelState::Running,
                _ => {
                    let read = |file| std::fs::read(format!("/proc/{pid}/task/{tid}/{file}"));
                    // `0` where the kernel does not name it.
                    let function = read("wchan")
                        .ok()
                        .and_then(|w| String::from_utf8(w).ok())
                        .filter(|w| !w.is_empty() && w != "0");
                    let from_function = Wait {
                        kind: function.as_deref().and_then(WaitKind::of_kernel_function),
                        futex: None,
                    };
                    let wait = match read("syscall").map(|c| StateSource::Syscall.parse(&c)) {
                        Ok(Some(RunState::Waiting(wait))) if wait.kind.is_some() => wait,
                        _ => from_function,
                    };
                    KernelState::Waiting { function, wait }
                }
            };
            Some((tid, state))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A thread of ours that sleeps for `ms` milliseconds, and its TID.
    fn sleeping_thread(ms: u64) -> (std::thread::JoinHandle<()>, u32) {
        let (tx, rx) = std::sync::mpsc::channel();
        let sleeper = std::thread::spawn(move || {
            tx.send(unsafe { libc::gettid() } as u32).unwrap();
            std::thread::sleep(std::time::Duration::from_millis(ms));
        });
        (sleeper, rx.recv().unwrap())
    }

    #[test]
    fn a_sleeping_thread_is_seen_waiting_in_a_sleep() {
        let (sleeper, tid) = sleeping_thread(2000);
        let pid = std::process::id();
        let mut state = None;
        for _ in 0..1000 {
            state = kernel_states(pid).remove(&tid);
            if matches!(
                &state,
                Some(KernelState::Waiting {
                    function: Some(_),
                    ..
                })
            ) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        let state = state.expect("the sleeper is a thread of ours");
        let kind = state.wait().and_then(|wait| wait.kind);
        assert_eq!(kind, Some(WaitKind::Sleep), "{state:?}");
        let me = unsafe { libc::gettid() } as u32;
        assert_eq!(kernel_states(pid).remove(&me), Some(KernelState::Running));
        sleeper.join().unwrap();
    }

    #[test]
    fn waits_are_told_apart_by_the_kernel_function() {
        let kind = WaitKind::of_kernel_function;
        assert_eq!(kind("futex_wait_queue"), Some(WaitKind::Lock));
        assert_eq!(kind("ep_poll"), Some(WaitKind::Poll));
        assert_eq!(kind("pipe_read"), Some(WaitKind::Io));
        assert_eq!(kind("anon_pipe_read"), Some(WaitKind::Io));
        let suffixed = kind("poll_schedule_timeout.constprop.0");
        assert_eq!(suffixed, Some(WaitKind::Poll));
        assert_eq!(kind("do_wait"), Some(WaitKind::Child));
        assert_eq!(kind("something_else"), None);
        assert_eq!(KernelState::Running.wait(), None);
        for kind in WaitKind::ALL {
            assert_eq!(WaitKind::from_name(kind.name()), Some(kind));
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{}\"", kind.name()));
        }
        assert_eq!(WaitKind::from_name("gpu"), None);
    }

    #[test]
    fn waits_are_told_apart_by_the_system_call() {
        let parse = |text: &str| StateSource::Syscall.parse(text.as_bytes());
        let waiting = |kind, futex| Some(RunState::Waiting(Wait { kind, futex }));
        assert_eq!(parse("running\n"), Some(RunState::Running));
        // A futex (`FUTEX_WAIT_BITSET_PRIVATE`) and its address.
        let futex = "202 0x7f87a2f4e6f4 0x89 0x0 0x7f87a220eae0 0x0 0xffffffff 0x7f87a220e9b0 0x7f87a28a3f16\n";
        assert_eq!(
            parse(futex),
            waiting(Some(WaitKind::Lock), Some(0x7f87a2f4e6f4))
        );
        // `select` on no file (`time.sleep` before 3.11), and on one.
        let select = |count| format!("23 {count:#x} 0x0 0x0 0x0 0x7ffd0000 0x0 0x7ffc 0x7f00");
        assert_eq!(parse(&select(0)), waiting(Some(WaitKind::Sleep), None));
        assert_eq!(parse(&select(4)), waiting(Some(WaitKind::Poll), None));
        let read = "0 0x3 0x7ffd0000 0x1 0x0 0x0 0x0 0x7ffc 0x7f00";
        assert_eq!(parse(read), waiting(Some(WaitKind::Io), None));
        let wait4 = "61 0xffffffffffffffff 0x0 0x0 0x0 0x0 0x0 0x7ffc 0x7f00";
        assert_eq!(parse(wait4), waiting(Some(WaitKind::Child), None));
        let unknown = "9999 0x0 0x0 0x0 0x0 0x0 0x0 0x7ffc 0x7f00";
        assert_eq!(parse(unknown), waiting(None, None));
        // Blocked outside any system call (a page fault).
        assert_eq!(parse("-1 0x7ffc 0x7f00"), waiting(None, None));
        assert_eq!(parse("202 0x7f"), None);
        assert_eq!(parse(""), None);
    }

    #[test]
    fn this_kernel_says_which_system_call_a_thread_waits_in() {
        // Linux with `/proc/PID/task/TID/syscall` (every kernel this runs on in CI)
        // does; if this fails, the sampler falls back to `wchan`, which names no
        // futex: waits for the GIL are then told as waits on a lock.
        assert_eq!(StateSource::probe(), StateSource::Syscall);
    }

    #[test]
    fn a_thread_waiting_on_a_futex_is_seen_waiting_on_its_address() {
        use std::sync::atomic::{AtomicU32, Ordering};
        static WORD: AtomicU32 = AtomicU32::new(0);
        let (tx, rx) = std::sync::mpsc::channel();
        let waiter = std::thread::spawn(move || {
            tx.send(unsafe { libc::gettid() } as u32).unwrap();
            while WORD.load(Ordering::Acquire) == 0 {
                // SAFETY: a wait on a word of ours that lives as long as the process.
                unsafe {
                    libc::syscall(
                        libc::SYS_futex,
                        WORD.as_ptr(),
                        libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
                        0,
                        std::ptr::null::<libc::timespec>(),
                    )
                };
            }
        });
        let tid = rx.recv().unwrap();
        let mut activity = ThreadActivity::new(std::process::id());
        let expected = Wait {
            kind: Some(WaitKind::Lock),
            futex: Some(WORD.as_ptr() as u64),
        };
        let seen = (0..2000).any(|_| {
            let seen = activity.state(tid) == Some(RunState::Waiting(expected));
            if !seen {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            seen
        });
        WORD.store(1, Ordering::Release);
        // SAFETY: wakes the waiter above.
        unsafe {
            libc::syscall(
                libc::SYS_futex,
                WORD.as_ptr(),
                libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG,
                1,
            )
        };
        waiter.join().unwrap();
        assert!(seen, "{:?}", activity.state(tid));
    }

    #[test]
    fn a_busy_thread_runs_and_a_sleeping_one_does_not() {
        use std::sync::atomic::{AtomicBool, Ordering};
        let (sleeper, sleeper_tid) = sleeping_thread(300);
        // A thread's own `syscall` file shows the read of it, so the busy thread is
        // another one.
        static STOP: AtomicBool = AtomicBool::new(false);
        let (tx, rx) = std::sync::mpsc::channel();
        let spinner = std::thread::spawn(move || {
            tx.send(unsafe { libc::gettid() } as u32).unwrap();
            while !STOP.load(Ordering::Relaxed) {
                std::hint::spin_loop();
            }
        });
        let busy = rx.recv().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(50));
        for source in [StateSource::Syscall, StateSource::Wchan, StateSource::Stat] {
            let mut activity = ThreadActivity::new(std::process::id());
            activity.source = source;
            assert_eq!(activity.state(busy), Some(RunState::Running), "{source:?}");
            // `stat` does not say what the sleeper waits for.
            let kind = (source != StateSource::Stat).then_some(WaitKind::Sleep);
            let expected = Some(RunState::Waiting(Wait { kind, futex: None }));
            assert_eq!(activity.state(sleeper_tid), expected, "{source:?}");
        }
        STOP.store(true, Ordering::Relaxed);
        spinner.join().unwrap();
        assert_eq!(thread_state(std::process::id(), sleeper_tid), Some('S'));
        let mut activity = ThreadActivity::new(std::process::id());
        assert!(matches!(
            activity.state(sleeper_tid),
            Some(RunState::Waiting(_))
        ));
        activity.end_tick([sleeper_tid]);
        // Present at the next tick but not asked about (as when it holds the GIL): its
        // file stays open.
        activity.end_tick([sleeper_tid]);
        assert!(activity.threads.contains_key(&sleeper_tid));
        activity.end_tick([]);
        assert!(activity.threads.is_empty());
        sleeper.join().unwrap();
        assert_eq!(activity.state(sleeper_tid), None);
    }
}
