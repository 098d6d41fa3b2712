//! `pyscry dump`: every thread's Python stack, right now (with `--subprocesses`, in
//! the target and each of its descendants that runs Python).

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use serde::Serialize;

use super::attach::{open_python, Opened};
use crate::cli::DumpArgs;
use crate::error::{Error, Result};
use crate::native::merge::{merge, MergedFrame};
use crate::native::module::Module;
use crate::native::stacks;
use crate::native::unwind::{NativeFrame, Unwinder};
use crate::python::frames::RawFrame;
use crate::python::locals::Local;
use crate::python::tasks::{AsyncioOffsets, TaskState};
use crate::python::{read_error, OpenError, PythonProcess};
use crate::sampler::{Mode, SamplerEvent, StackError, StackReader};
use crate::symbolize::{Frame, FrameId, Symbolizer};
use crate::target::activity::{kernel_states, KernelState, WaitKind};
use crate::target::core_dump::CoreDump;
use crate::target::maps::{read_maps, FileRoot, Mapping};
use crate::target::memory::Memory;
use crate::target::pause::{Pauser, Registers};
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
    /// its OS thread is not known; `dumped` for a thread of a core dump.
    status: &'static str,
    /// For an idle thread, the kernel function it sleeps in (`wchan`), where the
    /// kernel names it.
    #[serde(skip_serializing_if = "Option::is_none")]
    waiting_in: Option<String>,
    /// What the thread waits for, where pyscry knows it: from its system call (and for
    /// the GIL, the lock it waits on), else from that function.
    #[serde(skip_serializing_if = "Option::is_none")]
    wait: Option<WaitKind>,
    /// Whether it holds the GIL (never in a free-threaded build running without one).
    holds_gil: bool,
    /// Whether it runs the cyclic garbage collector.
    collecting_garbage: bool,
    /// Frames, innermost first; empty when the thread runs no Python code. Python
    /// frames only, unless `--native` merged them into the native stack.
    frames: Vec<StackFrame>,
    /// Set when the stack could not be read consistently.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    /// Why `--native` could not merge the native stack (the frames are then Python's).
    #[serde(skip_serializing_if = "Option::is_none")]
    native_error: Option<String>,
}

/// One frame of a thread's stack in a dump.
#[derive(Debug, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
enum StackFrame {
    /// A Python function's frame.
    Python(FrameDump),
    /// A C function's frame (`--native`).
    Native(NativeFrame),
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

/// The dump of one process.
#[derive(Debug, Serialize)]
struct ProcessDump {
    pid: u32,
    command: String,
    /// The core file read, for a dumped process.
    #[serde(skip_serializing_if = "Option::is_none")]
    core_file: Option<PathBuf>,
    python: String,
    runtime_file: String,
    layout: String,
    threads: Vec<ThreadDump>,
    /// The asyncio tasks (`--tasks`).
    #[serde(skip_serializing_if = "Option::is_none")]
    tasks: Option<Vec<TaskDump>>,
}

/// One asyncio task in a dump.
#[derive(Debug, Serialize)]
struct TaskDump {
    /// The task object's address.
    address: u64,
    /// `Task.get_name()`.
    name: String,
    /// Whether it runs now, waits in an `await`, or has not started.
    state: TaskState,
    /// The frames of the coroutines it waits in, innermost first (a running task's:
    /// only its own coroutine's; the rest are on its thread's stack).
    frames: Vec<Frame>,
}

/// What a dump reads while the process is paused (a core dump's process is as good as
/// paused), besides the stacks.
struct WhilePaused<'a> {
    /// The registers of each thread, by TID, for `--native`.
    registers: &'a dyn Fn(u32) -> Option<Registers>,
    /// `--locals`.
    locals: bool,
    /// `--native`: unwinds over the process's modules.
    unwinder: Option<Unwinder>,
}

/// The raw frames of the stack from `innermost`, walked again while the process is
/// paused; `None` unless they are as many as the `expected` frames already read.
fn walk_again<M: Memory>(
    python: &PythonProcess<M>,
    innermost: u64,
    expected: usize,
) -> Option<Vec<RawFrame>> {
    let mut raw = Vec::new();
    let walked = python.frames.walk(&python.memory, innermost, &mut raw);
    (walked.is_ok() && raw.len() == expected).then_some(raw)
}

/// Give `frames` (one thread's, innermost first) their locals, from `raw`, the same
/// frames walked while the process is paused.
fn read_locals<M: Memory>(
    python: &PythonProcess<M>,
    raw: Option<&[RawFrame]>,
    frames: &mut [FrameDump],
) {
    let Ok(reader) = &python.locals else {
        return;
    };
    for (index, frame) in frames.iter_mut().enumerate() {
        let read = match raw.and_then(|raw| raw.get(index)) {
            Some(raw) => reader.read(&python.memory, raw).map_err(|e| e.to_string()),
            None => Err("the stack changed while it was read".to_string()),
        };
        match read {
            Ok(locals) => frame.locals = Some(locals),
            Err(why) => frame.locals_error = Some(why),
        }
    }
}

/// `frames` (Python's, innermost first) in thread `tid`'s native stack, or why not.
fn merge_native<M: Memory>(
    python: &PythonProcess<M>,
    paused: &mut WhilePaused<'_>,
    tid: Option<u32>,
    raw: Option<&[RawFrame]>,
    frames: Vec<FrameDump>,
) -> (Vec<StackFrame>, Option<String>) {
    let unmerged = |frames: Vec<FrameDump>, why: &str| {
        let frames = frames.into_iter().map(StackFrame::Python).collect();
        (frames, Some(format!("native stack not merged: {why}")))
    };
    let Some(unwinder) = paused.unwinder.as_mut() else {
        return (frames.into_iter().map(StackFrame::Python).collect(), None);
    };
    let Some(registers) = tid.and_then(paused.registers) else {
        return unmerged(frames, "the thread's registers could not be read");
    };
    let Some(raw) = raw else {
        return unmerged(frames, "the stack changed while it was read");
    };
    let native = unwinder.unwind(&python.memory, registers);
    // Merged by index: the Python frames come out in order, each where it runs.
    let entries: Vec<_> = raw.iter().map(|r| r.eval_call).enumerate().collect();
    match merge(native, entries, python.eval_function) {
        Ok(merged) => {
            let mut frames = frames.into_iter();
            let merged = merged.into_iter().filter_map(|frame| match frame {
                MergedFrame::Python(_) => frames.next().map(StackFrame::Python),
                MergedFrame::Native(frame) => Some(StackFrame::Native(frame)),
            });
            (merged.collect(), None)
        }
        Err(mismatch) => unmerged(frames, &mismatch.to_string()),
    }
}

/// Run `pyscry dump`; returns the exit code.
pub fn run(args: DumpArgs) -> Result<i32> {
    let dumps = match (&args.core, args.pid) {
        (Some(core), _) => vec![dump_core(core, &args)?],
        (None, Some(pid)) => live_dumps(pid, &args)?,
        (None, None) => return Err(anyhow::anyhow!("dump needs --pid or --core").into()),
    };
    let stdout = &mut std::io::stdout().lock();
    let written = match (args.json, args.subprocesses) {
        (true, false) => write_json(&dumps[0], stdout),
        (true, true) => write_json(&dumps, stdout),
        (false, _) => dumps.iter().enumerate().try_for_each(|(i, dump)| {
            if i > 0 {
                writeln!(stdout)?;
            }
            write_text(dump, stdout)
        }),
    };
    written.map_err(anyhow::Error::from)?;
    Ok(0)
}

/// The dumps of live process `pid` and, with `--subprocesses`, of its descendants.
fn live_dumps(pid: u32, args: &DumpArgs) -> Result<Vec<ProcessDump>> {
    let opened = open_python(pid, None, &AtomicBool::new(false));
    Ok(match opened {
        // With --subprocesses the target may be a program that starts Python ones (a
        // shell, a server's supervisor): its descendants are dumped all the same.
        Err(error @ Error::NotPython { .. }) if args.subprocesses => {
            let dumps = descendant_dumps(pid, args);
            if dumps.is_empty() {
                return Err(error);
            }
            dumps
        }
        Err(error) => return Err(error),
        Ok(Opened::ExitedEarly) => return Err(Error::TargetExited(pid)),
        Ok(Opened::Ready(mut python)) => {
            check_tasks(&python, args)?;
            let mut dumps = vec![dump_process(&mut python, args)?];
            if args.subprocesses {
                dumps.extend(descendant_dumps(pid, args));
            }
            dumps
        }
    })
}

/// The dump of the process whose core file is at `path`.
fn dump_core(path: &Path, args: &DumpArgs) -> Result<ProcessDump> {
    let core = CoreDump::open(path)
        .map_err(|e| anyhow::anyhow!("cannot read core dump {}: {e}", path.display()))?;
    if core.truncated {
        eprintln!(
            "pyscry: warning: {} is shorter than its segments say (cut short when it was \
             written?): what is past its end cannot be read",
            path.display()
        );
    }
    for file in core.replaced_files() {
        eprintln!(
            "pyscry: warning: {} is not the file process {} had loaded (their build ids \
             differ): what is read from it (code, constants, symbols) may be wrong",
            file.display(),
            core.pid
        );
    }
    let tids = core.threads.iter().map(|thread| thread.tid).collect();
    let mut python = PythonProcess::from_core(core.pid, core.memory, &core.mappings, tids)?;
    check_locals(&python, args)?;
    check_tasks(&python, args)?;
    let threads = &core.threads;
    let registers = |tid: u32| Some(threads.iter().find(|t| t.tid == tid)?.registers);
    let unwinder = args.native.then(|| {
        let modules = Module::load_all(FileRoot::Host, &core.mappings, &python.memory);
        Unwinder::new(modules)
    });
    let mut held = WhilePaused {
        registers: &registers,
        locals: args.locals,
        unwinder,
    };
    let dumped = |_| ("dumped", None);
    let mut dump = read_dump(&mut python, Some(&mut held), dumped, core.command)?;
    dump.core_file = Some(path.to_path_buf());
    if args.tasks {
        dump.tasks = Some(read_tasks(&mut python, FileRoot::Host, &core.mappings)?);
    }
    Ok(dump)
}

/// `value` as indented JSON, on lines of its own.
fn write_json(value: &impl Serialize, out: &mut impl Write) -> std::io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, value)?;
    writeln!(out)
}

/// The dumps of the descendants of the target that run Python, in the order of their
/// PIDs. Those that do not run Python, or not yet, or that exit meanwhile, are left
/// out; one that cannot be read is left out with a warning.
fn descendant_dumps(root: u32, args: &DumpArgs) -> Vec<ProcessDump> {
    let mut pids = process::descendants(root);
    pids.sort_unstable();
    pids.into_iter()
        .filter_map(|pid| {
            let dumped = match PythonProcess::open(pid) {
                Ok(mut python) => dump_process(&mut python, args),
                Err(OpenError::NotReady(_)) => return None,
                Err(OpenError::Fatal(error)) => Err(error),
            };
            match dumped {
                Ok(dump) => Some(dump),
                Err(Error::NotPython { .. } | Error::TargetExited(_)) => None,
                Err(_) if !process::is_running(pid) => None,
                Err(error) => {
                    eprintln!("pyscry: warning: process {pid} left out: {error}");
                    None
                }
            }
        })
        .collect()
}

/// Dump one process: its threads, then its asyncio tasks if `args` asks for them and
/// its interpreter says where they are.
fn dump_process(python: &mut PythonProcess, args: &DumpArgs) -> Result<ProcessDump> {
    let mut dump = dump_stacks(python, args)?;
    // A descendant that cannot say where its tasks are is dumped without them (the
    // target itself was refused, see `check_tasks`).
    if args.tasks && python.tasks.is_ok() {
        let maps = read_maps(python.pid).map_err(|_| Error::TargetExited(python.pid))?;
        dump.tasks = Some(read_tasks(python, FileRoot::Process(python.pid), &maps)?);
    }
    Ok(dump)
}

/// Dump one process's threads, pausing it if `args` asks for what needs that.
fn dump_stacks(python: &mut PythonProcess, args: &DumpArgs) -> Result<ProcessDump> {
    check_locals(python, args)?;
    let pid = python.pid;
    // Read before the process may be paused, which would make every thread look idle.
    let states = kernel_states(pid);
    let status = |tid| match states.get(&tid) {
        Some(KernelState::Running) => ("running", None),
        Some(waiting) => ("idle", Some(waiting.clone())),
        None => ("unknown", None),
    };
    let command = process::command_line(pid);
    if args.locals || args.native {
        // The files are opened before the process is paused, to pause it for less.
        let unwinder = args.native.then(|| Unwinder::new(stacks::load(python)));
        let mut pauser = Pauser::new(python.pid);
        let paused = pauser
            .pause()
            .map_err(|e| anyhow::anyhow!("cannot pause process {} to read it: {e}", python.pid))?;
        let mut while_paused = WhilePaused {
            registers: &|tid| paused.registers(tid),
            locals: args.locals,
            unwinder,
        };
        read_dump(python, Some(&mut while_paused), status, command)
    } else {
        read_dump(python, None, status, command)
    }
}

/// Refuse `--locals` where the interpreter's table does not say where they are.
fn check_locals<M: Memory>(python: &PythonProcess<M>, args: &DumpArgs) -> Result<()> {
    match &python.locals {
        Err(missing) if args.locals => {
            let why = format!(
                "{} does not say where locals are: {missing}",
                python.describe()
            );
            Err(anyhow::anyhow!("--locals: {why}").into())
        }
        _ => Ok(()),
    }
}

/// Refuse `--tasks` where the interpreter does not say where asyncio tasks are.
fn check_tasks<M: Memory>(python: &PythonProcess<M>, args: &DumpArgs) -> Result<()> {
    match &python.tasks {
        Err(_) if args.tasks && python.version.minor_version() < (3, 14) => Err(anyhow::anyhow!(
            "--tasks needs CPython 3.14 or later, whose asyncio says where its tasks are; \
                 process {} runs {}",
            python.pid,
            python.describe()
        )
        .into()),
        Err(missing) if args.tasks => Err(anyhow::anyhow!(
            "--tasks: {} does not say where asyncio tasks are: {missing}",
            python.describe()
        )
        .into()),
        _ => Ok(()),
    }
}

/// The asyncio tasks of `python`, whose mapped files are `maps` (opened from `root`):
/// none while it has not loaded asyncio's C module.
fn read_tasks<M: Memory + Clone>(
    python: &mut PythonProcess<M>,
    root: FileRoot,
    maps: &[Mapping],
) -> Result<Vec<TaskDump>> {
    let pid = python.pid;
    let Ok(reader) = python.tasks.clone() else {
        return Ok(Vec::new());
    };
    let found = AsyncioOffsets::find(root, maps, &python.runtime_file, &python.memory);
    let Some(offsets) = found.map_err(|e| anyhow::anyhow!("--tasks: {e}"))? else {
        return Ok(Vec::new());
    };
    let memory = python.memory.clone();
    let mut threads = Vec::new();
    let listing = python
        .thread_states(&memory, &mut threads)
        .map_err(|e| read_error(pid, e))?;
    let addresses: Vec<u64> = threads.iter().map(|thread| thread.address).collect();
    let tasks = reader.tasks(
        &memory,
        &offsets,
        &python.frames,
        &addresses,
        &listing.interpreters,
    );
    let mut names = FrameNames::default();
    Ok(tasks
        .into_iter()
        .map(|task| TaskDump {
            address: task.address,
            name: task.name,
            state: task.state,
            frames: task
                .frames
                .iter()
                .filter_map(|raw| names.frame(python, *raw))
                .collect(),
        })
        .collect())
}

/// Frames read outside the sampler, named once each.
#[derive(Default)]
struct FrameNames {
    symbolizer: Symbolizer,
    known: HashMap<FrameId, Frame>,
}

impl FrameNames {
    /// The frame `raw` of `python`, or `None` if its code object cannot be read.
    fn frame<M: Memory>(&mut self, python: &PythonProcess<M>, raw: RawFrame) -> Option<Frame> {
        let mut headers = Vec::new();
        let code = &python.code;
        code.read_headers(&python.memory, &[raw.code], &mut Vec::new(), &mut headers)
            .ok()?;
        let header = headers.pop()?;
        let mut new = Vec::new();
        let id = self
            .symbolizer
            .symbolize(&python.memory, code, raw, header, &mut new)
            .ok()?;
        self.known.extend(new);
        self.known.get(&id).cloned()
    }
}

/// Read every thread's stack, and what is asked for `while_paused`; `status` says how
/// each thread is, by TID (its status word, and the kernel's state where known);
/// `command` is the process's command line.
fn read_dump<M: Memory + Clone>(
    python: &mut PythonProcess<M>,
    mut while_paused: Option<&mut WhilePaused<'_>>,
    status: impl Fn(u32) -> (&'static str, Option<KernelState>),
    command: String,
) -> Result<ProcessDump> {
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
            let (frames, native_error) = match while_paused.as_deref_mut() {
                Some(paused) => {
                    let raw = walk_again(python, thread.frame, frames.len());
                    if paused.locals {
                        read_locals(python, raw.as_deref(), &mut frames);
                    }
                    merge_native(python, paused, thread.native_id, raw.as_deref(), frames)
                }
                None => (frames.into_iter().map(StackFrame::Python).collect(), None),
            };
            let (status, kernel) = thread.native_id.map_or(("unknown", None), &status);
            ThreadDump {
                thread_id: thread.thread_id,
                native_id: thread.native_id,
                name: names.get(&thread.thread_id).cloned(),
                status,
                wait: kernel
                    .as_ref()
                    .and_then(KernelState::wait)
                    .and_then(|wait| python.wait_kind(thread, wait)),
                waiting_in: match kernel {
                    Some(KernelState::Waiting { function, .. }) => function,
                    _ => None,
                },
                holds_gil: thread.holds_gil,
                collecting_garbage: thread.collecting_garbage,
                frames,
                error,
                native_error,
            }
        })
        .collect();
    Ok(ProcessDump {
        pid,
        command,
        core_file: None,
        python: python.describe(),
        runtime_file: python.runtime_file.clone(),
        layout: python.layout_source.clone(),
        threads: dumps,
        tasks: None,
    })
}

fn write_text(dump: &ProcessDump, out: &mut impl Write) -> std::io::Result<()> {
    writeln!(out, "Process {}: {}", dump.pid, dump.command)?;
    if let Some(core) = &dump.core_file {
        writeln!(out, "Core dump: {}", core.display())?;
    }
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
        let gc = match thread.collecting_garbage {
            true => ", collecting garbage",
            false => "",
        };
        let wait = match (thread.wait, &thread.waiting_in) {
            (Some(kind), Some(function)) => format!(", {} ({function})", kind.describe()),
            (None, Some(function)) => format!(" ({function})"),
            _ => String::new(),
        };
        writeln!(
            out,
            "\nThread {:#x}{name} (tid {os}): {}{wait}{gil}{gc}",
            thread.thread_id, thread.status
        )?;
        if let Some(error) = &thread.error {
            writeln!(out, "    <stack could not be read: {error}>")?;
        } else if thread.frames.is_empty() {
            writeln!(out, "    <no Python frames>")?;
        }
        if let Some(why) = &thread.native_error {
            writeln!(out, "    <{why}>")?;
        }
        for frame in &thread.frames {
            let dumped = match frame {
                StackFrame::Python(dumped) => dumped,
                StackFrame::Native(native) => {
                    write_native(native, out)?;
                    continue;
                }
            };
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
    if let Some(tasks) = &dump.tasks {
        write_tasks(tasks, out)?;
    }
    Ok(())
}

/// The asyncio tasks, each with its state and frames.
fn write_tasks(tasks: &[TaskDump], out: &mut impl Write) -> std::io::Result<()> {
    if tasks.is_empty() {
        return writeln!(out, "\nNo asyncio tasks.");
    }
    for task in tasks {
        let state = match task.state {
            TaskState::Pending => "not started",
            TaskState::Waiting => "waiting",
            TaskState::Running => "running",
        };
        writeln!(out, "\nTask {:?} ({:#x}): {state}", task.name, task.address)?;
        for frame in &task.frames {
            writeln!(
                out,
                "    {} ({}:{})",
                frame.name, frame.filename, frame.line
            )?;
        }
    }
    Ok(())
}

/// One native frame: `function (file:line)`, or `function (module)` where its line is
/// unknown; the address where the function is unknown.
fn write_native(frame: &NativeFrame, out: &mut impl Write) -> std::io::Result<()> {
    let shown = Frame::native(frame);
    writeln!(out, "    {}", shown.label(shown.line))
}
