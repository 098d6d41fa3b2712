//! `pyscry top`: watch where a program's time goes, live, in a full-screen table.

use std::io::IsTerminal;
use std::process::Child;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::attach::{check_mode, describe_target, gil_on_for_good, open_python, Opened};
use super::subprocesses::ProcessWatcher;
use crate::cli::TopArgs;
use crate::error::{Error, Result};
use crate::sampler::{self, SamplerConfig};
use crate::symbolize::FrameMerger;
use crate::target::process;
use crate::ui::app::{App, Header};
use crate::ui::live::{self, Watch};
use crate::ui::terminal::{self, TerminalGuard};

/// Run `pyscry top`; returns the exit code.
pub fn run(args: TopArgs) -> Result<i32> {
    if !std::io::stdout().is_terminal() {
        return Err(anyhow::anyhow!(
            "top needs a terminal, and stdout is not one; use `pyscry record` to profile \
             without a terminal"
        )
        .into());
    }
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
    ] {
        signal_hook::flag::register(signal, Arc::clone(&stop)).map_err(anyhow::Error::from)?;
    }
    let mut launched = match args.target.pid {
        Some(_) => None,
        None => {
            let start = || process::launch(&args.target.command, false);
            let child = terminal::with_stdio_detached(start).map_err(anyhow::Error::from)??;
            Some(Launched(child))
        }
    };
    let pid = match (&launched, args.target.pid) {
        (Some(Launched(child)), _) => child.id(),
        (None, pid) => pid.unwrap_or_default(),
    };
    let command = match args.target.pid {
        Some(pid) => process::command_line(pid),
        None => args.target.command.join(" "),
    };
    let mode = args.sampling.mode;
    let (events_tx, events) = crossbeam_channel::unbounded();
    let config = SamplerConfig {
        rate_hz: args.rate,
        duration: None,
        mode,
        blocking: args.sampling.blocking,
        native: args.sampling.native,
        gc_frames: args.sampling.gc_frames(),
        epoch: std::time::Instant::now(),
        // A window's samples should be in it when it closes.
        burst_interval: live::POLL,
    };
    // Descendants are watched from the start, while the target itself may still be
    // a wrapper on its way to exec Python, or a launcher that never will.
    let watcher = args.subprocesses.then(|| {
        let (stop, events) = (Arc::clone(&stop), events_tx.clone());
        ProcessWatcher::start(pid, command.clone(), config, None, stop, events)
    });
    let child = launched.as_mut().map(|Launched(child)| child);
    let opened = match open_python(pid, child, &stop) {
        Ok(Opened::Ready(python)) => check_mode(mode, &python).map(|()| Some(python)),
        // A launcher (a shell script, make, a supervisor) whose descendants run Python;
        // the header says so.
        Err(Error::NotPython { .. }) if args.subprocesses => Ok(None),
        Ok(Opened::ExitedEarly) => Err(Error::TargetExited(pid)),
        Err(error) => Err(error),
    };
    let entered = opened.and_then(|python| {
        let guard = TerminalGuard::enter().map_err(anyhow::Error::from)?;
        Ok((python, guard))
    });
    let (python, mut guard) = match entered {
        Ok(entered) => entered,
        Err(error) => {
            stop.store(true, Ordering::Relaxed);
            watcher.map(ProcessWatcher::join);
            return Err(error);
        }
    };
    let header = Header {
        pid,
        command,
        python: describe_target(python.as_deref()),
        mode: mode.to_string(),
        rate_hz: args.rate,
        has_gil: python.as_deref().is_some_and(gil_on_for_good),
        processes: args.subprocesses.then_some(1),
        ..Header::default()
    };
    let watch = Watch {
        sampler: python.map(|python| sampler::start(*python, config, Arc::clone(&stop), events_tx)),
        descendants: watcher.as_ref().map(ProcessWatcher::counters),
        events,
        stop,
        child: launched.as_mut().map(|Launched(child)| child),
        delay: Duration::from_secs_f64(args.delay),
        started: config.epoch,
        // Each process's sampler numbers its own frames.
        frames: args.subprocesses.then(FrameMerger::new),
    };
    let shown = live::run(&mut guard.terminal, App::new(header), watch);
    if let Some(watcher) = watcher {
        watcher.join();
    }
    shown?;
    Ok(0)
}

/// A program `top` launched; stopped (SIGTERM, then SIGKILL) when `top` ends, however
/// it ends, after the terminal is restored.
struct Launched(Child);

impl Drop for Launched {
    fn drop(&mut self) {
        let _ = process::terminate(&mut self.0);
    }
}
