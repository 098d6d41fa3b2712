//! Which threads of the target are running, according to the kernel.
//!
//! A thread counts as running at a tick if the kernel has it runnable at that moment.
//! The cheapest file that says so is `/proc/PID/task/TID/wchan`: `0` for a runnable
//! thread, else the kernel function it sleeps in. Reading it costs the kernel about a
//! third of what `/proc/PID/task/TID/stat` does (which formats some fifty fields to give
//! the state letter `R`), and with many threads that read is most of a tick. `wchan`
//! also says `0` when the kernel cannot name the function (no symbol table), so it is
//! used only after a probe shows that it names the wait of a thread known to sleep;
//! otherwise the state letter of `stat` is read. The files are kept open and re-read with
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
    /// `wchan`: `0` when runnable.
    Wchan,
    /// `stat`: state letter `R` when runnable.
    Stat,
}

impl StateSource {
    /// The one this kernel supports best, probed once per process.
    fn probe() -> StateSource {
        static SOURCE: std::sync::OnceLock<StateSource> = std::sync::OnceLock::new();
        *SOURCE.get_or_init(|| {
            if wchan_names_a_sleeping_thread() {
                StateSource::Wchan
            } else {
                StateSource::Stat
            }
        })
    }

    fn file_name(self) -> &'static str {
        match self {
            StateSource::Wchan => "wchan",
            StateSource::Stat => "stat",
        }
    }

    /// What the file's contents say the thread is doing; `None` when they say
    /// nothing (an empty `wchan`).
    fn parse(self, contents: &[u8]) -> Option<RunState> {
        match self {
            StateSource::Wchan if contents.is_empty() => None,
            StateSource::Wchan if contents == b"0" => Some(RunState::Running),
            StateSource::Wchan => Some(RunState::Waiting(
                std::str::from_utf8(contents)
                    .ok()
                    .and_then(WaitKind::of_kernel_function),
            )),
            StateSource::Stat => {
                let state = super::process::state_letter(&String::from_utf8_lossy(contents))?;
                Some(match state {
                    'R' => RunState::Running,
                    _ => RunState::Waiting(None),
                })
            }
        }
    }
}

/// A thread's state at one tick, as the sampler reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunState {
    /// Runnable: on a CPU or waiting for one.
    Running,
    /// Not runnable, waiting for this where the kernel function it sleeps in says.
    Waiting(Option<WaitKind>),
}

impl RunState {
    /// What the thread waits for, where it is known; `None` when it runs.
    pub fn wait_kind(self) -> Option<WaitKind> {
        match self {
            RunState::Running => None,
            RunState::Waiting(kind) => kind,
        }
    }
}

/// Whether `wchan` of a thread of ours that is blocked (on a channel) names the
/// function it waits in, rather than saying `0` as for a running thread.
fn wchan_names_a_sleeping_thread() -> bool {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let sleeper = std::thread::spawn(move || {
        let _ = ready_tx.send(unsafe { libc::gettid() } as u32);
        let _ = release_rx.recv();
    });
    let pid = std::process::id();
    let named = ready_rx.recv().ok().is_some_and(|tid| {
        // Wait until the kernel has it asleep and `wchan` names where, for up to 2 s:
        // a loaded machine may take a while to run it to its wait (CI once saw this
        // fail within the 200 ms it was given).
        (0..2000).any(|_| {
            let named = thread_state(pid, tid) == Some('S')
                && std::fs::read(format!("/proc/{pid}/task/{tid}/wchan")).is_ok_and(|w| {
                    matches!(StateSource::Wchan.parse(&w), Some(RunState::Waiting(_)))
                });
            if !named {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            named
        })
    });
    let _ = release_tx.send(());
    let _ = sleeper.join();
    named
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
    /// Not runnable, sleeping in this kernel function (`wchan`) where the kernel
    /// names it.
    Waiting(Option<String>),
}

/// What a sleeping thread waits for, as far as the kernel function it sleeps in says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum WaitKind {
    /// A sleep (`nanosleep`).
    Sleep,
    /// A futex: a lock, a condition, or the GIL.
    Lock,
    /// `select`, `poll` or `epoll`: for files to be ready, or only for a timeout (as
    /// `time.sleep` before 3.11).
    Poll,
    /// A read of a pipe or a socket.
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

    /// Every kind, in the order of the enum.
    pub const ALL: [WaitKind; 5] = [
        WaitKind::Sleep,
        WaitKind::Lock,
        WaitKind::Poll,
        WaitKind::Io,
        WaitKind::Child,
    ];

    /// Its one-word name (`lock`), as recordings, labels and JSON give it.
    pub fn name(self) -> &'static str {
        match self {
            WaitKind::Sleep => "sleep",
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
            WaitKind::Lock => "waiting on a lock",
            WaitKind::Poll => "waiting in select/poll",
            WaitKind::Io => "waiting for I/O",
            WaitKind::Child => "waiting for a child process",
        }
    }
}

impl KernelState {
    /// What the thread waits for, where the kernel function it sleeps in is one
    /// pyscry knows; `None` for others (kernels name them differently from version to
    /// version, so the function itself is the precise answer).
    pub fn wait_kind(&self) -> Option<WaitKind> {
        match self {
            KernelState::Waiting(Some(function)) => WaitKind::of_kernel_function(function),
            _ => None,
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
                    let wchan = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/wchan"));
                    // `0` where the kernel does not name it.
                    KernelState::Waiting(wchan.ok().filter(|w| !w.is_empty() && w != "0"))
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
            if matches!(state, Some(KernelState::Waiting(Some(_)))) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        let state = state.expect("the sleeper is a thread of ours");
        assert_eq!(state.wait_kind(), Some(WaitKind::Sleep), "{state:?}");
        let me = unsafe { libc::gettid() } as u32;
        assert_eq!(kernel_states(pid).remove(&me), Some(KernelState::Running));
        sleeper.join().unwrap();
    }

    #[test]
    fn waits_are_told_apart_by_the_kernel_function() {
        let kind = |function: &str| KernelState::Waiting(Some(function.into())).wait_kind();
        assert_eq!(kind("futex_wait_queue"), Some(WaitKind::Lock));
        assert_eq!(kind("ep_poll"), Some(WaitKind::Poll));
        assert_eq!(kind("pipe_read"), Some(WaitKind::Io));
        assert_eq!(kind("anon_pipe_read"), Some(WaitKind::Io));
        let suffixed = kind("poll_schedule_timeout.constprop.0");
        assert_eq!(suffixed, Some(WaitKind::Poll));
        assert_eq!(kind("do_wait"), Some(WaitKind::Child));
        assert_eq!(kind("something_else"), None);
        assert_eq!(KernelState::Waiting(None).wait_kind(), None);
        assert_eq!(KernelState::Running.wait_kind(), None);
        for kind in WaitKind::ALL {
            assert_eq!(WaitKind::from_name(kind.name()), Some(kind));
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{}\"", kind.name()));
        }
        assert_eq!(WaitKind::from_name("gil"), None);
    }

    #[test]
    fn this_kernel_names_waits_in_wchan() {
        // Linux with a symbol table (every kernel this runs on in CI) does; if this
        // fails, the sampler falls back to `stat` and costs more per thread.
        assert_eq!(StateSource::probe(), StateSource::Wchan);
    }

    #[test]
    fn a_busy_thread_runs_and_a_sleeping_one_does_not() {
        let (sleeper, sleeper_tid) = sleeping_thread(300);
        std::thread::sleep(std::time::Duration::from_millis(50));
        let me = unsafe { libc::gettid() } as u32;
        for source in [StateSource::probe(), StateSource::Stat] {
            let mut activity = ThreadActivity::new(std::process::id());
            activity.source = source;
            assert_eq!(activity.state(me), Some(RunState::Running), "{source:?}");
            // Only `wchan` says what the sleeper waits for.
            let kind = (source == StateSource::Wchan).then_some(WaitKind::Sleep);
            let expected = Some(RunState::Waiting(kind));
            assert_eq!(activity.state(sleeper_tid), expected, "{source:?}");
        }
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
