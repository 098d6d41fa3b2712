//! Opening the target of a command: attaching to a PID or launching a program, then
//! waiting until its interpreter can be read.

use std::process::Child;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::python::{OpenError, PythonProcess};
use crate::sampler::Mode;
use crate::target::process;

/// How long a launched program may take to show a Python runtime (wrappers such as
/// pyenv shims exec the interpreter after a shell start).
const LAUNCH_FIND_TIMEOUT: Duration = Duration::from_secs(3);
/// How long a found runtime may take to become readable.
const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long an interpreter found may take to make its GIL.
const GIL_MADE_TIMEOUT: Duration = Duration::from_secs(3);

/// The outcome of waiting for a target's interpreter.
pub enum Opened {
    /// Ready to sample.
    Ready(Box<PythonProcess>),
    /// A launched program exited before its interpreter could be read.
    ExitedEarly,
}

/// Wait until the interpreter of `pid` can be read. `child` is the launched program,
/// if we started it; `stop` aborts the wait.
pub fn open_python(pid: u32, mut child: Option<&mut Child>, stop: &AtomicBool) -> Result<Opened> {
    if child.is_none() {
        process::check_readable(pid)?;
    }
    let start = Instant::now();
    loop {
        let error = match PythonProcess::open(pid) {
            Ok(process) => return Ok(Opened::Ready(Box::new(process))),
            Err(error) => error,
        };
        let exited = match child.as_deref_mut() {
            Some(child) => child.try_wait().map_err(anyhow::Error::from)?.is_some(),
            None => !process::is_running(pid),
        };
        let waited = start.elapsed();
        match error {
            OpenError::NotReady(_) if exited && child.is_some() => return Ok(Opened::ExitedEarly),
            OpenError::NotReady(_) | OpenError::Fatal(Error::TargetExited(_)) if exited => {
                return Err(Error::TargetExited(pid))
            }
            OpenError::NotReady(_) if waited < READY_TIMEOUT => {}
            OpenError::NotReady(missing) => {
                return Err(anyhow::anyhow!(
                    "process {pid}'s interpreter did not become readable within {} s: {missing}",
                    READY_TIMEOUT.as_secs()
                )
                .into())
            }
            // A launched program may still be a wrapper that has not exec'd Python yet.
            OpenError::Fatal(Error::NotPython { .. })
                if child.is_some() && !exited && waited < LAUNCH_FIND_TIMEOUT => {}
            OpenError::Fatal(error) => return Err(error),
        }
        if stop.load(Ordering::Relaxed) {
            return Err(anyhow::anyhow!("interrupted before sampling started").into());
        }
        std::thread::sleep(Duration::from_millis(
            if waited < Duration::from_millis(200) {
                1
            } else {
                10
            },
        ));
    }
}

/// The interpreter a target runs, in words, for headers and recordings; `None` is a
/// target sampled only through its descendants (`--subprocesses`).
pub fn describe_target(python: Option<&PythonProcess>) -> String {
    python.map_or_else(
        || "no Python in the target itself".to_string(),
        PythonProcess::describe,
    )
}

/// Whether the target's GIL is on for good (see [`PythonProcess::gil_on_for_good`]),
/// waiting up to [`GIL_MADE_TIMEOUT`] for a program just launched to make its GIL: a
/// free-threaded build decides there whether it runs with one.
pub fn gil_on_for_good(python: &PythonProcess) -> bool {
    let start = Instant::now();
    loop {
        match python.gil_on_for_good() {
            Some(on) => return on,
            None if start.elapsed() < GIL_MADE_TIMEOUT => {
                std::thread::sleep(Duration::from_millis(5))
            }
            None => return false,
        }
    }
}

/// Refuse a mode the interpreter cannot support.
pub fn check_mode(mode: Mode, python: &PythonProcess) -> Result<()> {
    if mode == Mode::Gil && !gil_on_for_good(python) {
        return Err(anyhow::anyhow!(
            "--mode gil: {} is free-threaded and runs without its GIL \
             (PYTHON_GIL=1 turns it on); use --mode cpu",
            python.describe()
        )
        .into());
    }
    Ok(())
}
