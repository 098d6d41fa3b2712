//! Everything that knows CPython's internals: finding the interpreter, its threads,
//! their frames, and the code objects those frames run.
//!
//! Version-specific offsets come from `python-offsets/` (see [`layout`]); every other
//! version rule is in [`version`].

pub mod code;
pub mod code_headers;
pub mod debug_offsets;
pub mod dict;
pub mod discover;
pub mod frames;
pub mod gc;
pub mod gil;
pub mod ints;
pub mod layout;
pub mod linetable;
pub mod locals;
pub mod objects;
pub mod running;
pub mod tasks;
pub mod thread_names;
pub mod threads;
pub mod values;
pub mod version;

use std::collections::HashMap;

use crate::error::Error;
use crate::target::activity::{Wait, WaitKind};
use crate::target::core_dump::CoreMemory;
use crate::target::maps::{FileRoot, Mapping};
use crate::target::memory::{Memory, ProcessMemory, ReadError};
use crate::target::pid_namespace::ThreadIds;
use code::CodeReader;
use code_headers::{CodeCount, CodeCounter};
use discover::{discover, discover_in, DiscoveryError};
use frames::FrameReader;
use gc::GcReader;
use gil::GilReader;
use layout::{require_symbol, Layout, MissingField};
use locals::LocalsReader;
use objects::{ObjectReader, TypeAddresses};
use tasks::TaskReader;
use thread_names::ThreadNameReader;
use threads::{Interpreters, NativeIdResolver, ThreadReader, ThreadState};
use values::ValueReader;
use version::{Flavour, PythonVersion, Semantics, StringModel};

/// What one read of the thread lists ([`PythonProcess::thread_states`]) found besides
/// the threads.
#[derive(Debug, Clone)]
pub struct ThreadListing {
    /// The interpreters' addresses, the main interpreter last.
    pub interpreters: Interpreters,
    /// Whether the main interpreter's GIL is on for good ([`gil::GilState::for_good`]):
    /// a free-threaded build can turn it on while it runs. False where no GIL is read.
    pub gil_on_for_good: bool,
}

/// A Python process, ready to be read: its version and the readers set up for it.
#[derive(Debug, Clone)]
pub struct PythonProcess<M: Memory = ProcessMemory> {
    /// The process id.
    pub pid: u32,
    /// Its memory.
    pub memory: M,
    /// The interpreter version.
    pub version: PythonVersion,
    /// The build flavour.
    pub flavour: Flavour,
    /// The file (executable or libpython) that holds the runtime.
    pub runtime_file: String,
    /// Where the struct offsets came from, e.g. `python-offsets/3.13.toml, checked
    /// against _Py_DebugOffsets (40 fields, none differ)`.
    pub layout_source: String,
    /// Interpreter and thread lists.
    pub threads: ThreadReader,
    /// Frame chains.
    pub frames: FrameReader,
    /// Code objects.
    pub code: CodeReader,
    /// The count of code objects that tells when code headers read earlier still hold;
    /// `None` where the version keeps none, or a 3.12 without its symbol table.
    pub code_counter: Option<CodeCounter>,
    /// The GIL holder. Free-threaded builds have a GIL too, off unless turned on (see
    /// [`PythonProcess::gil_on_for_good`]); `None` only where their table lacks it.
    pub gil: Option<GilReader>,
    /// Which thread runs the garbage collector; `None` where the interpreter lacks
    /// what that needs (a 2.7 or 3.6 without its symbol table).
    pub gc: Option<GcReader>,
    /// Local variables (`dump --locals`), or the field this interpreter's table lacks.
    pub locals: Result<LocalsReader, MissingField>,
    /// asyncio tasks (`dump --tasks`, 3.14+), or what this interpreter lacks for them.
    pub tasks: Result<TaskReader, MissingField>,
    /// The eval loop's C function (see [`version::Semantics::eval_function`]).
    pub eval_function: &'static str,
    native_ids: NativeIdResolver,
    /// The process's thread ids, and what they are in pyscry's `/proc` when the
    /// process is in a PID namespace of its own.
    thread_ids: ThreadIds,
    /// Thread names; `None` when this interpreter lacks what reading them needs.
    names: Option<ThreadNameReader>,
    /// The program the process ran when it was opened (see [`PythonProcess::replaced`]).
    exe: Option<(u64, u64)>,
}

/// Why a process could not be opened as a Python process.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// Not yet readable; the caller may retry (a process that is starting up). Says
    /// what is still missing.
    #[error("the interpreter is not initialised yet: {0}")]
    NotReady(String),
    /// Final: the process cannot be profiled, for the reason given.
    #[error(transparent)]
    Fatal(#[from] Error),
}

impl PythonProcess<ProcessMemory> {
    /// Find and set up the interpreter of process `pid`.
    pub fn open(pid: u32) -> Result<PythonProcess, OpenError> {
        let memory = ProcessMemory::new(pid);
        let found = discover(pid, &memory).map_err(|e| match e {
            DiscoveryError::NotReady(missing) => OpenError::NotReady(missing),
            DiscoveryError::NotPython => OpenError::Fatal(Error::NotPython {
                pid,
                exe: crate::target::process::exe_path(pid),
            }),
            DiscoveryError::Read(read) => OpenError::Fatal(read_error(pid, read)),
            other => OpenError::Fatal(anyhow::Error::new(other).into()),
        })?;
        let exe = crate::target::process::exe_identity(pid);
        PythonProcess::assemble(pid, memory, found, ThreadIds::of(pid), exe)
    }
}

impl PythonProcess<CoreMemory> {
    /// Find and set up the interpreter of a dumped process: `pid`, whose memory is
    /// `memory`, which mapped the files `mappings` (opened from this machine's root)
    /// and had the threads `tids`.
    pub fn from_core(
        pid: u32,
        memory: CoreMemory,
        mappings: &[Mapping],
        tids: Vec<u32>,
    ) -> Result<PythonProcess<CoreMemory>, Error> {
        let found = discover_in(FileRoot::Host, mappings, &memory).map_err(|e| match e {
            DiscoveryError::NotPython => Error::NotPython {
                pid,
                exe: mappings
                    .first()
                    .and_then(|m| m.path.clone())
                    .unwrap_or_default(),
            },
            DiscoveryError::NotReady(missing) => anyhow::anyhow!(
                "the interpreter of process {pid} was not initialised when it was dumped: {missing}"
            )
            .into(),
            DiscoveryError::Read(read) => anyhow::anyhow!(
                "reading the dumped memory of process {pid}: {read} (the core file is cut \
                 short, or its coredump_filter left that memory out)"
            )
            .into(),
            other => anyhow::Error::new(other).into(),
        })?;
        let ids = ThreadIds::dumped(pid, tids);
        PythonProcess::assemble(pid, memory, found, ids, None).map_err(|e| match e {
            OpenError::Fatal(error) => error,
            OpenError::NotReady(missing) => anyhow::anyhow!("{missing}").into(),
        })
    }
}

impl<M: Memory> PythonProcess<M> {
    /// Set up the readers for the interpreter `found` in process `pid`, whose memory is
    /// `memory`, whose threads `ids` lists, and which runs the program `exe`.
    fn assemble(
        pid: u32,
        memory: M,
        found: discover::Discovery,
        ids: ThreadIds,
        exe: Option<(u64, u64)>,
    ) -> Result<PythonProcess<M>, OpenError> {
        let unsupported = |why: String| {
            OpenError::Fatal(Error::UnsupportedPython {
                pid,
                found: format!("CPython {} ({} build{why})", found.version, found.flavour),
                supported: supported_list(),
            })
        };
        let semantics =
            Semantics::for_version(found.version).ok_or_else(|| unsupported(String::new()))?;
        let mut table = Layout::table(found.version, found.flavour)
            .ok_or_else(|| unsupported(String::new()))?;
        let debug_offsets = found.binary.symbol("_PyRuntime").map(|runtime| {
            debug_offsets::apply(
                &memory,
                runtime.address,
                found.version,
                found.flavour,
                &mut table,
            )
        });
        let layout = Layout::from_table(table).map_err(|e| unsupported(format!(": {e}")))?;
        let layout_source = describe_layout_source(&found, debug_offsets);
        let setup = || -> Result<PythonProcess<M>, MissingField> {
            let symbol = |name| require_symbol(&found.binary, name);
            let types = match semantics.strings {
                StringModel::Bytes => TypeAddresses {
                    code: symbol("PyCode_Type")?,
                    str: symbol("PyString_Type")?,
                    bytes: symbol("PyString_Type")?,
                },
                StringModel::Pep393 => TypeAddresses {
                    code: symbol("PyCode_Type")?,
                    str: symbol("PyUnicode_Type")?,
                    bytes: symbol("PyBytes_Type")?,
                },
            };
            let objects = ObjectReader::new(&layout, semantics.strings, types)?;
            let names =
                ThreadNameReader::new(&layout, &semantics, objects.clone(), &found.binary).ok();
            let locals = LocalsReader::new(&layout, &semantics, objects.clone(), &found.binary);
            let tasks = (|| {
                let coroutine_types = [symbol("PyCoro_Type")?, symbol("PyGen_Type")?];
                let values = ValueReader::new(&layout, &semantics, objects.clone(), &found.binary)?;
                TaskReader::new(&layout, coroutine_types, objects.clone(), values)
            })();
            Ok(PythonProcess {
                pid,
                memory,
                version: found.version,
                flavour: found.flavour,
                runtime_file: found.binary.path.clone(),
                layout_source: layout_source.clone(),
                threads: ThreadReader::new(&layout, semantics.interpreter_root, &found.binary)?,
                frames: FrameReader::new(&layout, semantics.frame_model)?,
                code: CodeReader::new(&layout, &semantics, objects)?,
                code_counter: CodeCounter::new(&layout, semantics.code_count, &found.binary)
                    .ok()
                    .flatten(),
                gil: match found.flavour {
                    Flavour::FreeThreaded => {
                        GilReader::new(&layout, semantics.gil, &found.binary).ok()
                    }
                    _ => Some(GilReader::new(&layout, semantics.gil, &found.binary)?),
                },
                gc: GcReader::new(&layout, semantics.gc, &found.binary).ok(),
                locals,
                tasks,
                eval_function: semantics.eval_function,
                native_ids: NativeIdResolver::default(),
                thread_ids: ids,
                names,
                exe,
            })
        };
        setup().map_err(|missing| unsupported(format!(": {missing}")))
    }

    /// Whether the process has `exec`ed another program since it was opened (a forked
    /// Python child that runs a command): its memory no longer holds this interpreter.
    /// A process that is exiting has no program to compare (its memory is gone): that
    /// is not a replacement, and the caller sees the exit itself soon after.
    pub fn replaced(&self) -> bool {
        let now = crate::target::process::exe_identity(self.pid);
        now.is_some() && now != self.exe
    }

    /// Every thread of every interpreter into `threads` (emptied first), with OS thread
    /// ids filled in where they can be found, and which one holds the GIL and which
    /// runs the garbage collector, read through `mem` (the process's memory, or a
    /// tick's view of it). Returns the interpreters and the main one's GIL.
    pub fn thread_states(
        &mut self,
        mem: &impl Memory,
        threads: &mut Vec<ThreadState>,
    ) -> Result<ThreadListing, ReadError> {
        threads.clear();
        let interpreters = self.threads.interpreters(mem)?;
        let mut gil_on_for_good = false;
        for &interp in &interpreters {
            let start = threads.len();
            self.threads.threads(mem, interp, threads)?;
            let gil = match &self.gil {
                Some(gil) => Some(gil.read(mem, interp)?),
                None => None,
            };
            // The main interpreter is the last: new ones join the list at its head.
            gil_on_for_good = gil.is_some_and(|gil| gil.for_good);
            let holder = gil.and_then(|gil| gil.holder);
            let collection = match &self.gc {
                Some(gc) => gc.collection(mem, interp, holder)?,
                None => None,
            };
            for thread in &mut threads[start..] {
                thread.holds_gil = Some(thread.address) == holder;
                thread.gil = gil.map_or(0, |gil| gil.address);
                let collecting = collection.filter(|c| c.thread == thread.address);
                thread.collecting_garbage = collecting.is_some();
                thread.gc_started_in = collecting.and_then(|c| c.started_in);
            }
        }
        self.native_ids.resolve(mem, &mut self.thread_ids, threads);
        for thread in threads.iter_mut() {
            thread.native_id = thread
                .native_id
                .and_then(|tid| self.thread_ids.host_tid(tid));
        }
        Ok(ThreadListing {
            interpreters,
            gil_on_for_good,
        })
    }

    /// Whether the GIL is in force for good: always, but in a free-threaded build only
    /// once it has turned its GIL on (`PYTHON_GIL=1`, or an extension module that needs
    /// it; importing an extension module turns it on only for a while), as its main
    /// interpreter's GIL says (the last in the interpreter list, which new interpreters
    /// join at its head). `None` while that GIL cannot be read: a program just
    /// launched has not made it yet. Each tick's [`ThreadListing`] says it too.
    pub fn gil_on_for_good(&self) -> Option<bool> {
        let Some(gil) = &self.gil else {
            return Some(false);
        };
        if self.flavour != Flavour::FreeThreaded {
            return Some(true);
        }
        let interpreters = self.threads.interpreters(&self.memory).ok()?;
        let state = gil.read(&self.memory, *interpreters.last()?).ok()?;
        Some(state.for_good)
    }

    /// What `thread`, in `wait` as the kernel says, waits for: the GIL when the futex
    /// it sleeps on is one of the GIL's locks, else what the kernel told.
    pub fn wait_kind(&self, thread: &ThreadState, wait: Wait) -> Option<WaitKind> {
        match (&self.gil, wait.futex) {
            (Some(gil), Some(futex)) if gil.guards(thread.gil, futex) => Some(WaitKind::Gil),
            _ => wait.kind,
        }
    }

    /// The count of code objects that covers the stacks of the process's one
    /// interpreter (see [`code_headers`]); `None` where the version keeps no count, or
    /// where there are several interpreters, whose counts say nothing of each other's
    /// objects.
    pub fn code_count(&self, interpreters: &[u64]) -> Option<CodeCount> {
        match (self.code_counter, interpreters) {
            (Some(counter), &[interp]) => Some(CodeCount { counter, interp }),
            _ => None,
        }
    }

    /// The names of the threads the `threading` module knows, by `thread_id`. Names
    /// are optional: anything that cannot be read is simply left out.
    pub fn thread_names(&mut self) -> HashMap<u64, String> {
        let mut out = HashMap::new();
        let Some(names) = &mut self.names else {
            return out;
        };
        for interp in self.threads.interpreters(&self.memory).unwrap_or_default() {
            out.extend(names.read(&self.memory, interp).unwrap_or_default());
        }
        out
    }

    /// A short description such as `CPython 3.11.7`, with the flavour when it is not
    /// the default.
    pub fn describe(&self) -> String {
        match self.flavour {
            Flavour::Default => format!("CPython {}", self.version),
            other => format!("CPython {} ({other})", self.version),
        }
    }
}

/// Say which table was used and what the target's debug offsets changed in it.
fn describe_layout_source(
    found: &discover::Discovery,
    debug_offsets: Option<Result<debug_offsets::Applied, debug_offsets::DebugOffsetsError>>,
) -> String {
    let table = format!(
        "python-offsets/{}.{}{}.toml",
        found.version.major,
        found.version.minor,
        found.flavour.suffix()
    );
    match debug_offsets {
        Some(Ok(applied)) if applied.differences.is_empty() => format!(
            "{table}, checked against _Py_DebugOffsets ({} fields, none differ)",
            applied.covered
        ),
        Some(Ok(applied)) => {
            let changed: Vec<String> = applied
                .differences
                .iter()
                .map(|(name, table, target)| format!("{name} {table}->{target}"))
                .collect();
            format!(
                "{table}, corrected by _Py_DebugOffsets ({} fields; {})",
                applied.covered,
                changed.join(", ")
            )
        }
        Some(Err(debug_offsets::DebugOffsetsError::NotDescribed)) | None => table,
        Some(Err(e)) => format!("{table} (_Py_DebugOffsets not used: {e})"),
    }
}

/// Turn a failed read into the error a user should see.
pub fn read_error(pid: u32, read: ReadError) -> Error {
    match read {
        ReadError::PermissionDenied => Error::PermissionDenied(pid),
        ReadError::Exited => Error::TargetExited(pid),
        other => anyhow::anyhow!("reading process {pid}: {other}").into(),
    }
}

/// The supported versions, for error messages: "2.7, 3.6, …, 3.13, 3.13t".
pub fn supported_list() -> String {
    Layout::available().join(", ")
}
