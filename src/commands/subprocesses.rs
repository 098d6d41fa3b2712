//! `record --subprocesses` and `top --subprocesses`: find the target's descendants
//! and follow each one, sampling it with a sampler of its own whenever it runs Python,
//! all sending into the target's channel.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;

use super::attach::{check_mode, open_python, Opened};
use crate::error::Error;
use crate::python::PythonProcess;
use crate::sampler::{self, CounterSet, SamplerConfig, SamplerEvent, SamplerStats};
use crate::target::process;

/// How often the process tree is scanned for new descendants.
const SCAN_INTERVAL: Duration = Duration::from_millis(100);

/// How often a followed process is checked for having `exec`ed another program: in
/// the first [`EXEC_WATCH`] after it was found or last `exec`ed (a wrapper `exec`s
/// soon), and after that.
const EXEC_POLL: Duration = Duration::from_millis(20);
const EXEC_WATCH: Duration = Duration::from_secs(1);
const EXEC_POLL_LATER: Duration = SCAN_INTERVAL;

/// How long after a process is found, or `exec`s, it is looked at again while it shows
/// no Python, each time it has mapped more files: a Python just `exec`ed maps its
/// libpython a moment later.
const SETTLE: Duration = Duration::from_millis(200);

/// How often a process is looked at again while it settles.
const SETTLE_POLL: Duration = Duration::from_millis(10);

/// Watches the target's process tree while the target runs.
pub struct ProcessWatcher {
    thread: JoinHandle<()>,
    counters: CounterSet,
}

/// When a follower stops: sampling stopped (`stop` raised) or its time is up.
#[derive(Clone)]
struct Until {
    stop: Arc<AtomicBool>,
    deadline: Option<Instant>,
}

impl Until {
    fn reached(&self) -> bool {
        self.stop.load(Ordering::Relaxed) || self.deadline.is_some_and(|d| Instant::now() >= d)
    }
}

impl ProcessWatcher {
    /// Announce `root`, running `command`, with [`SamplerEvent::Process`] (first, so
    /// that every process has its root label), and start watching its descendants:
    /// each one is followed until it exits, `stop` is raised, or `deadline` passes,
    /// and sampled with `config` whenever it runs Python (again after each `exec`).
    /// New descendants are looked for until `root` exits or the watch stops.
    pub fn start(
        root: u32,
        command: String,
        config: SamplerConfig,
        deadline: Option<Instant>,
        stop: Arc<AtomicBool>,
        events: Sender<SamplerEvent>,
    ) -> ProcessWatcher {
        let _ = events.send(SamplerEvent::Process { pid: root, command });
        let counters = CounterSet::default();
        let shared = counters.clone();
        let until = Until { stop, deadline };
        let thread = std::thread::Builder::new()
            .name("pyscry-processes".into())
            .spawn(move || watch(root, config, &until, &events, &shared))
            .expect("spawning the process watcher");
        ProcessWatcher { thread, counters }
    }

    /// Wait for the watch to end, and with it every sampler it started; their
    /// counters.
    pub fn join(self) -> Vec<Arc<SamplerStats>> {
        let _ = self.thread.join();
        self.counters.stats()
    }

    /// The counters of the samplers started so far. Once the event channel has
    /// closed, every sampler the watch started is in it.
    pub fn counters(&self) -> CounterSet {
        self.counters.clone()
    }
}

fn watch(
    root: u32,
    config: SamplerConfig,
    until: &Until,
    events: &Sender<SamplerEvent>,
    counters: &CounterSet,
) {
    let mut seen = HashSet::new();
    let mut followers = Vec::new();
    while !until.reached() && process::is_running(root) {
        for pid in process::descendants(root) {
            if !seen.insert(pid) {
                continue;
            }
            let (until, events, counters) = (until.clone(), events.clone(), counters.clone());
            // One thread per process: opening waits until the interpreter is
            // readable, and a slow one must not hold up the others.
            followers.push(std::thread::spawn(move || {
                follow(pid, config, &until, &events, &counters)
            }));
        }
        std::thread::sleep(SCAN_INTERVAL);
    }
    for follower in followers {
        let _ = follower.join();
    }
}

/// Sample `pid` whenever it runs a Python pyscry can read, until it exits or `until`
/// is reached. A process is looked at when found and after each `exec`: a shell
/// between the target and its Python children, or a wrapper (a pyenv shim) on its way
/// to `exec` Python, is passed over in silence until it does. Any other failure to
/// open it is reported once per program it runs.
fn follow(
    pid: u32,
    config: SamplerConfig,
    until: &Until,
    events: &Sender<SamplerEvent>,
    counters: &CounterSet,
) {
    let mut program = process::exe_identity(pid);
    let mut since = Instant::now();
    loop {
        if until.reached() || !process::is_running(pid) {
            return;
        }
        // Looking again at the same mappings (parsing the same executable's symbols)
        // would find the same.
        let mapped = process::mapped_files(pid);
        match open(pid, config, &until.stop) {
            Look::Python(python) => {
                let command = process::command_line(pid);
                if events.send(SamplerEvent::Process { pid, command }).is_err() {
                    return;
                }
                let remaining = until
                    .deadline
                    .map(|d| d.saturating_duration_since(Instant::now()));
                let config = SamplerConfig {
                    duration: remaining,
                    ..config
                };
                let sampler =
                    sampler::start(*python, config, Arc::clone(&until.stop), events.clone());
                counters.push(Arc::clone(&sampler.stats));
                // It ends when the process exits or execs another program, and all
                // its samples are sent by then: a sampler that follows it in this
                // process never mixes its frame numbers with this one's.
                sampler.join();
            }
            Look::NotYet if mappings_change(pid, mapped, since + SETTLE) => continue,
            Look::NotYet | Look::Failed => {}
        }
        // Until it runs another program, there is nothing new to look at.
        loop {
            if until.reached() || !process::is_running(pid) {
                return;
            }
            let now = process::exe_identity(pid);
            if now != program {
                program = now;
                since = Instant::now();
                break;
            }
            let fresh = since.elapsed() < EXEC_WATCH;
            std::thread::sleep(if fresh { EXEC_POLL } else { EXEC_POLL_LATER });
        }
    }
}

/// Wait until `pid` has another number of file mappings than `mapped` (true), or
/// `deadline` passes (false).
fn mappings_change(pid: u32, mapped: usize, deadline: Instant) -> bool {
    while Instant::now() < deadline {
        std::thread::sleep(SETTLE_POLL);
        if process::mapped_files(pid) != mapped {
            return true;
        }
    }
    false
}

/// What looking at a process found.
enum Look {
    /// A Python to sample.
    Python(Box<PythonProcess>),
    /// No Python (yet), or the process has gone.
    NotYet,
    /// A Python that cannot be sampled; reported.
    Failed,
}

fn open(pid: u32, config: SamplerConfig, stop: &AtomicBool) -> Look {
    let report = |error: &Error| {
        let command = process::command_line(pid);
        eprintln!("pyscry: not sampling process {pid} ({command}): {error}");
        Look::Failed
    };
    match open_python(pid, None, stop) {
        Ok(Opened::Ready(python)) => match check_mode(config.mode, &python) {
            Ok(()) => Look::Python(python),
            Err(error) => report(&error),
        },
        Ok(Opened::ExitedEarly)
        | Err(Error::NotPython { .. } | Error::TargetExited(_) | Error::NoSuchProcess(_)) => {
            Look::NotYet
        }
        Err(error) => report(&error),
    }
}
