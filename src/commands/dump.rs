//! `pyscry dump`: every thread's Python stack, right now.

use std::collections::HashMap;
use std::io::Write;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use serde::Serialize;

use super::attach::{open_python, Opened};
use crate::cli::DumpArgs;
use crate::error::{Error, Result};
use crate::python::frames::RawFrame;
use crate::python::locals::Local;
use crate::python::{read_error, PythonProcess};
use crate::sampler::{Mode, SamplerEvent, StackError, StackReader};
use crate::symbolize::Frame;
use crate::target::activity::thread_state;
use crate::target::pause::Pauser;
use crate::target::process;

/// Most reads of the process a dump makes. The first one reads stack by stack and
/// learns where the stacks are; the next ones read them all in one system call, as
/// `record` does from its second tick on, until every thread's stack was read whole.
const READS: usize = 5;

/// One thread in a dump.
#[derive(Debug, Serialize)]
struct ThreadDump {
    /// `threading.get_ident()`.
    thread_id: u64,
    /// Kernel TID, when known.
    native_id: Option<u32>,
    /// `threading.Thread.name`, when the thread is known to `threading`.
    name: Option<String>,
    /// `running` when the kernel has the thread runnable, else `idle`; `unknown` when
    /// its OS thread is not known.
    status: &'static str,
    /// Whether it holds the GIL (always false for free-threaded builds).
    holds_gil: bool,
    /// Frames, innermost first; empty when the thread runs no Python code.
    frames: Vec<FrameDump>,
    /// Set when the stack could not be read consistently.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// One frame in a dump.
#[derive(Debug, Serialize)]
struct FrameDump {
    #[serde(flatten)]
    frame: Frame,
    /// Its local variables that have a value (`--locals`).
    #[serde(skip_serializing_if = "Option::is_none")]
    locals: Option<Vec<Local>>,
    /// Why they could not be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    locals_error: Option<String>,
}

/// The whole dump.
#[derive(Debug, Serialize)]
struct ProcessDump {
    pid: u32,
    command: String,
    python: String,
    runtime_file: String,
    layout: String,
    threads: Vec<ThreadDump>,
}

/// Give `frames` (one thread's, innermost first) their locals, read while the process
/// is paused: the frames are walked again from `innermost` and must be the ones shown.
fn read_locals(python: &PythonProcess, innermost: u64, frames: &mut [FrameDump]) {
    let Ok(reader) = &python.locals else {
        return;
    };
    let mut raw: Vec<RawFrame> = Vec::new();
    let walked = python.frames.walk(&python.memory, innermost, &mut raw);
    let same = walked.is_ok() && raw.len() == frames.len();
    for (index, frame) in frames.iter_mut().enumerate() {
        let read = match raw.get(index).filter(|_| same) {
            Some(raw) => reader.read(&python.memory, raw).map_err(|e| e.to_string()),
            None => Err("the stack changed while it was read".to_string()),
        };
        match read {
            Ok(locals) => frame.locals = Some(locals),
            Err(why) => frame.locals_error = Some(why),
        }
    }
}

/// Run `pyscry dump`; returns the exit code.
pub fn run(args: DumpArgs) -> Result<i32> {
    let mut python = match open_python(args.pid, None, &AtomicBool::new(false))? {
        Opened::Ready(python) => python,
        Opened::ExitedEarly => return Err(Error::TargetExited(args.pid)),
    };
    let dump = if args.locals {
        if let Err(missing) = &python.locals {
            let why = format!(
                "{} does not say where locals are: {missing}",
                python.describe()
            );
            return Err(anyhow::anyhow!("--locals: {why}").into());
        }
        let mut pauser = Pauser::new(python.pid);
        let _paused = pauser.pause().map_err(|e| {
            anyhow::anyhow!(
                "cannot pause process {} to read its locals: {e}",
                python.pid
            )
        })?;
        read_dump(&mut python, true)?
    } else {
        read_dump(&mut python, false)?
    };
    let stdout = &mut std::io::stdout().lock();
    let written = if args.json {
        serde_json::to_writer_pretty(&mut *stdout, &dump)
            .map_err(std::io::Error::from)
            .and_then(|()| writeln!(stdout))
    } else {
        write_text(&dump, stdout)
    };
    written.map_err(anyhow::Error::from)?;
    Ok(0)
}

/// Read every thread's stack, and with `locals` each frame's locals.
fn read_dump(python: &mut PythonProcess, locals: bool) -> Result<ProcessDump> {
    let pid = python.pid;
    let mut reader = StackReader::new(python, Mode::Wall);
    let mut known = HashMap::new();
    let mut names = HashMap::new();
    let mut stacks = HashMap::new();
    let mut events = Vec::new();
    for read in 1..=READS {
        events.clear();
        reader
            .read(python, Duration::ZERO, &mut events)
            .map_err(|e| read_error(pid, e))?;
        stacks.clear();
        for event in events.drain(..) {
            match event {
                SamplerEvent::NewFrame { id, frame, .. } => {
                    known.insert(id, frame);
                }
                SamplerEvent::Sample(sample) => {
                    stacks.insert(sample.thread_state, sample.frames);
                }
                SamplerEvent::ThreadName {
                    python_id, name, ..
                } => {
                    names.insert(python_id, name);
                }
                SamplerEvent::Process { .. } => {}
            }
        }
        let whole = reader
            .threads()
            .iter()
            .all(|thread| thread.frame == 0 || stacks.contains_key(&thread.address));
        if read > 1 && whole {
            break;
        }
    }
    let dumps = reader
        .threads()
        .iter()
        .map(|thread| {
            let (mut frames, error) = match stacks.get(&thread.address) {
                Some(ids) => (
                    ids.iter()
                        .map(|id| FrameDump {
                            frame: known[id].clone(),
                            locals: None,
                            locals_error: None,
                        })
                        .collect(),
                    None,
                ),
                None if thread.frame == 0 => (Vec::new(), None),
                None => (Vec::new(), Some(StackError::Changed.to_string())),
            };
            if locals {
                read_locals(python, thread.frame, &mut frames);
            }
            ThreadDump {
                thread_id: thread.thread_id,
                native_id: thread.native_id,
                name: names.get(&thread.thread_id).cloned(),
                status: match thread.native_id.and_then(|tid| thread_state(pid, tid)) {
                    Some('R') => "running",
                    Some(_) => "idle",
                    None => "unknown",
                },
                holds_gil: thread.holds_gil,
                frames,
                error,
            }
        })
        .collect();
    Ok(ProcessDump {
        pid,
        command: process::command_line(pid),
        python: python.describe(),
        runtime_file: python.runtime_file.clone(),
        layout: python.layout_source.clone(),
        threads: dumps,
    })
}

fn write_text(dump: &ProcessDump, out: &mut impl Write) -> std::io::Result<()> {
    writeln!(out, "Process {}: {}", dump.pid, dump.command)?;
    writeln!(out, "Python: {} ({})", dump.python, dump.runtime_file)?;
    for thread in &dump.threads {
        let os = thread
            .native_id
            .map_or_else(|| "?".to_string(), |tid| tid.to_string());
        let name = thread
            .name
            .as_ref()
            .map_or_else(String::new, |name| format!(" {name:?}"));
        let gil = if thread.holds_gil { ", holds GIL" } else { "" };
        writeln!(
            out,
            "\nThread {:#x}{name} (tid {os}): {}{gil}",
            thread.thread_id, thread.status
        )?;
        if let Some(error) = &thread.error {
            writeln!(out, "    <stack could not be read: {error}>")?;
        } else if thread.frames.is_empty() {
            writeln!(out, "    <no Python frames>")?;
        }
        for dumped in &thread.frames {
            let frame = &dumped.frame;
            writeln!(
                out,
                "    {} ({}:{})",
                frame.name, frame.filename, frame.line
            )?;
            if let Some(why) = &dumped.locals_error {
                writeln!(out, "        <locals could not be read: {why}>")?;
            }
            let locals = dumped.locals.as_deref().unwrap_or_default();
            for (heading, arguments) in [("Arguments:", true), ("Locals:", false)] {
                let mut group = locals.iter().filter(|l| l.argument == arguments).peekable();
                if group.peek().is_some() {
                    writeln!(out, "        {heading}")?;
                }
                for local in group {
                    writeln!(out, "            {} = {}", local.name, local.value)?;
                }
            }
        }
    }
    Ok(())
}
