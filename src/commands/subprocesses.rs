//! `record --subprocesses` and `top --subprocesses`: find the target's descendants
//! that run Python and sample each one with a sampler of its own, all sending into
//! the target's channel.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;

use super::attach::{check_mode, open_python, Opened};
use crate::error::Error;
use crate::sampler::{self, SamplerConfig, SamplerEvent, SamplerHandle, SamplerSet};
use crate::target::process;

/// How often the process tree is scanned for new descendants.
const SCAN_INTERVAL: Duration = Duration::from_millis(100);

/// Watches the target's process tree while the target runs.
pub struct ProcessWatcher {
    thread: JoinHandle<()>,
    samplers: SamplerSet,
}

impl ProcessWatcher {
    /// Announce `root`, running `command`, with [`SamplerEvent::Process`] (first, so
    /// that every process has its root label), and start watching its descendants:
    /// each one that turns out to run Python is announced too and sampled with
    /// `config` until it exits, `stop` is raised, or `deadline` passes. The watch ends
    /// when `root` exits or `stop` is raised.
    pub fn start(
        root: u32,
        command: String,
        config: SamplerConfig,
        deadline: Option<Instant>,
        stop: Arc<AtomicBool>,
        events: Sender<SamplerEvent>,
    ) -> ProcessWatcher {
        let _ = events.send(SamplerEvent::Process { pid: root, command });
        let samplers = SamplerSet::default();
        let shared = samplers.clone();
        let thread = std::thread::Builder::new()
            .name("pyscry-processes".into())
            .spawn(move || watch(root, config, deadline, &stop, &events, &shared))
            .expect("spawning the process watcher");
        ProcessWatcher { thread, samplers }
    }

    /// Wait for the watch to end, then for every sampler it started; their handles,
    /// for their counters.
    pub fn join(self) -> Vec<SamplerHandle> {
        let _ = self.thread.join();
        self.samplers.take()
    }

    /// The samplers started so far, for their live counters. Once the event channel
    /// has closed, every sampler the watch started is in it.
    pub fn samplers(&self) -> SamplerSet {
        self.samplers.clone()
    }
}

fn watch(
    root: u32,
    config: SamplerConfig,
    deadline: Option<Instant>,
    stop: &Arc<AtomicBool>,
    events: &Sender<SamplerEvent>,
    samplers: &SamplerSet,
) {
    let mut seen = HashSet::new();
    let mut openers = Vec::new();
    while !stop.load(Ordering::Relaxed)
        && process::is_running(root)
        && deadline.is_none_or(|d| Instant::now() < d)
    {
        for pid in process::descendants(root) {
            if !seen.insert(pid) {
                continue;
            }
            let (stop, events, samplers) = (Arc::clone(stop), events.clone(), samplers.clone());
            // Opening waits until the interpreter is readable: one thread per process,
            // so that a slow one does not hold up the others.
            openers.push(std::thread::spawn(move || {
                let remaining = deadline.map(|d| d.saturating_duration_since(Instant::now()));
                let config = SamplerConfig {
                    duration: remaining,
                    ..config
                };
                if let Some(handle) = open_and_sample(pid, config, stop, events) {
                    samplers.push(handle);
                }
            }));
        }
        std::thread::sleep(SCAN_INTERVAL);
    }
    for opener in openers {
        let _ = opener.join();
    }
}

/// Start sampling `pid` if it runs a Python pyscry can read. Processes that are not
/// Python (a shell between the target and its Python children) or that exit first are
/// passed over in silence; any other failure is reported and passed over.
fn open_and_sample(
    pid: u32,
    config: SamplerConfig,
    stop: Arc<AtomicBool>,
    events: Sender<SamplerEvent>,
) -> Option<SamplerHandle> {
    let command = process::command_line(pid);
    let python = match open_python(pid, None, &stop) {
        Ok(Opened::Ready(python)) => python,
        Ok(Opened::ExitedEarly)
        | Err(Error::NotPython { .. } | Error::TargetExited(_) | Error::NoSuchProcess(_)) => {
            return None
        }
        Err(error) => {
            eprintln!("pyscry: not sampling process {pid} ({command}): {error}");
            return None;
        }
    };
    if let Err(error) = check_mode(config.mode, &python) {
        eprintln!("pyscry: not sampling process {pid} ({command}): {error}");
        return None;
    }
    events.send(SamplerEvent::Process { pid, command }).ok()?;
    Some(sampler::start(*python, config, stop, events))
}
