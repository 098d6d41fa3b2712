//! asyncio tasks (3.14+): every unfinished task of a process, and where its coroutine
//! is suspended, for `dump --tasks`.
//!
//! 3.14 keeps each thread's unfinished tasks in a linked list in its thread state, and
//! those of threads that have exited in the interpreter's; the `_asyncio` module
//! publishes where, and where a task keeps its name and coroutine, in a section of its
//! own ([`AsyncioOffsets`]). A coroutine suspended in an `await` has the awaitable on
//! top of its frame's stack: following those from a task's coroutine gives the
//! coroutines it waits in, down to the one that waits on a future.

use super::frames::{FrameReader, RawFrame};
use super::layout::{require, Layout, MissingField};
use super::objects::{ObjectError, ObjectReader};
use super::values::ValueReader;
use crate::target::binary::{Binary, BinaryError};
use crate::target::maps::{FileRoot, Mapping};
use crate::target::memory::{FieldReader, Memory, ReadError};

/// The section `_asyncio` (3.14) or the interpreter (3.15, where `_asyncio` is built
/// in) keeps [`AsyncioOffsets`] in.
const SECTION: &str = ".AsyncioDebug";
/// Its length: 13 `u64`s (the same in 3.14 and 3.15).
const SECTION_LEN: usize = 13 * 8;
/// Most tasks read from one list: a longer one loops, or changed while it was read.
const MAX_TASKS: usize = 100_000;
/// Most coroutines followed from one task.
const MAX_AWAITS: usize = 1_000;

/// Where a task keeps what is read of it, and where the task lists are, as `_asyncio`
/// publishes them (`_Py_AsyncioModuleDebugOffsets`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AsyncioOffsets {
    /// `TaskObj.task_name`: a `str`, or an `int` N for the default name `Task-N`.
    task_name: u64,
    /// `TaskObj.task_coro`: the coroutine the task runs.
    task_coro: u64,
    /// `TaskObj.task_node`: its `llist_node` in a task list.
    task_node: u64,
    /// `PyInterpreterState.asyncio_tasks_head`: the tasks of threads that have exited.
    interpreter_tasks: u64,
    /// `_PyThreadStateImpl.asyncio_tasks_head`: the thread's tasks.
    thread_tasks: u64,
}

/// Why the asyncio offsets could not be found.
#[derive(Debug, thiserror::Error)]
pub enum AsyncioError {
    /// A mapped file could not be read.
    #[error(transparent)]
    Binary(#[from] BinaryError),
    /// The section could not be read from the process.
    #[error("reading {SECTION}: {0}")]
    Read(#[from] ReadError),
    /// The section holds values no task has.
    #[error("{SECTION} in {0} does not describe asyncio tasks as 3.14 and 3.15 do")]
    Implausible(String),
}

impl AsyncioOffsets {
    /// Find the offsets in the files the process maps (`maps`, opened from `root`):
    /// `_asyncio`'s extension module, or the file that holds the runtime
    /// (`runtime_file`), read from `mem`. `None` while the process has not loaded
    /// `_asyncio` (it has no task then).
    pub fn find(
        root: FileRoot,
        maps: &[Mapping],
        runtime_file: &str,
        mem: &impl Memory,
    ) -> Result<Option<AsyncioOffsets>, AsyncioError> {
        let mut paths: Vec<&str> = maps
            .iter()
            .filter_map(Mapping::file_path)
            .filter(|path| *path == runtime_file || is_asyncio_module(path))
            .collect();
        paths.sort_unstable();
        paths.dedup();
        for path in paths {
            let binary = Binary::open(root, path, maps, &[])?;
            let Some(section) = binary.section(SECTION) else {
                continue;
            };
            if (section.size as usize) < SECTION_LEN {
                return Err(AsyncioError::Implausible(path.to_string()));
            }
            let raw = mem.read_vec(section.address, SECTION_LEN)?;
            return AsyncioOffsets::parse(&raw)
                .map(Some)
                .ok_or_else(|| AsyncioError::Implausible(path.to_string()));
        }
        Ok(None)
    }

    /// The offsets in the section's bytes, if they are plausible: each field inside
    /// the struct whose size the section gives.
    fn parse(raw: &[u8]) -> Option<AsyncioOffsets> {
        let field = |index: u64| raw.u64_at(index * 8);
        let inside = |offset: u64, size: u64| (offset + 8 <= size).then_some(offset);
        let (task_size, interpreter_size, thread_size) = (field(0), field(7), field(9));
        Some(AsyncioOffsets {
            task_name: inside(field(1), task_size)?,
            task_coro: inside(field(5), task_size)?,
            task_node: inside(field(6), task_size)?,
            interpreter_tasks: inside(field(8), interpreter_size)?,
            thread_tasks: inside(field(12), thread_size)?,
        })
    }
}

/// Whether `path` is `_asyncio`'s extension module (`_asyncio.cpython-314-….so`).
fn is_asyncio_module(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    name.starts_with("_asyncio.") && name.contains(".so")
}

/// One asyncio task, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Task {
    /// The task object's address.
    pub address: u64,
    /// Its name (`Task.get_name()`).
    pub name: String,
    /// Whether its coroutine runs now.
    pub state: TaskState,
    /// The frames of the coroutines it waits in, innermost first: its own coroutine's
    /// last. A running task's are only its own coroutine's: the rest are on the stack
    /// of the thread that runs it.
    pub frames: Vec<RawFrame>,
}

/// Where a task's coroutine is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskState {
    /// Not started yet: it waits for the event loop to run it.
    Pending,
    /// Suspended in an `await`.
    Waiting,
    /// Running on a thread now.
    Running,
}

/// The values of `enum _framestate` that tell where a coroutine is.
#[derive(Debug, Clone, Copy)]
struct FrameStates {
    /// Suspended in an `await` (`FRAME_SUSPENDED_YIELD_FROM`).
    awaiting: i64,
    /// The same, while a thread sends into it (3.15+).
    awaiting_locked: Option<i64>,
    /// Running (`FRAME_EXECUTING`).
    executing: i64,
    /// Suspended at a plain `yield`.
    suspended: i64,
}

/// Reads tasks with one version's layout (3.14+).
#[derive(Debug, Clone)]
pub struct TaskReader {
    /// `PyGenObject.gi_iframe`.
    iframe: u64,
    /// `PyGenObject.gi_frame_state`.
    frame_state: u64,
    states: FrameStates,
    /// `_PyInterpreterFrame.stackpointer`.
    stackpointer: u64,
    /// Clears the tag bits of a `_PyStackRef`.
    untag: u64,
    /// `PyCoro_Type` and `PyGen_Type`: what a task's chain of awaits goes through.
    coroutine_types: [u64; 2],
    strings: ObjectReader,
    values: ValueReader,
}

impl TaskReader {
    /// Set up from a layout, the addresses of the coroutine and generator types, and
    /// readers of strings and other objects.
    pub fn new(
        layout: &Layout,
        coroutine_types: [u64; 2],
        strings: ObjectReader,
        values: ValueReader,
    ) -> Result<TaskReader, MissingField> {
        let states = &layout.frame_state;
        let state = |value: Option<i64>, name| value.ok_or(MissingField(name));
        Ok(TaskReader {
            iframe: require(layout.gen.iframe, "gen.iframe")?,
            frame_state: require(layout.gen.frame_state, "gen.frame_state")?,
            states: FrameStates {
                awaiting: state(
                    states.suspended_yield_from,
                    "frame_state.suspended_yield_from",
                )?,
                awaiting_locked: states.suspended_yield_from_locked,
                executing: state(states.executing, "frame_state.executing")?,
                suspended: state(states.suspended, "frame_state.suspended")?,
            },
            stackpointer: require(layout.frame.stackpointer, "frame.stackpointer")?,
            untag: !layout.stackref.tag_bits.unwrap_or(0),
            coroutine_types,
            strings,
            values,
        })
    }

    /// Every task in the lists of `threads` (thread state addresses) and of
    /// `interpreters`, with the frames of `frames`' layout. Tasks that cannot be read
    /// (one that finished while the list was read) are left out.
    pub fn tasks(
        &self,
        mem: &impl Memory,
        offsets: &AsyncioOffsets,
        frames: &FrameReader,
        threads: &[u64],
        interpreters: &[u64],
    ) -> Vec<Task> {
        let heads = threads
            .iter()
            .map(|thread| thread + offsets.thread_tasks)
            .chain(interpreters.iter().map(|i| i + offsets.interpreter_tasks));
        let mut tasks = Vec::new();
        for head in heads {
            for task in task_list(mem, head, offsets.task_node) {
                if let Ok(task) = self.task(mem, offsets, frames, task) {
                    tasks.push(task);
                }
            }
        }
        tasks
    }

    /// The task at `address`.
    fn task(
        &self,
        mem: &impl Memory,
        offsets: &AsyncioOffsets,
        frames: &FrameReader,
        address: u64,
    ) -> Result<Task, ObjectError> {
        let name = mem.read_u64(address + offsets.task_name)?;
        let coroutine = mem.read_u64(address + offsets.task_coro)?;
        if !self.is_coroutine(mem, coroutine)? {
            return Err(ObjectError::WrongType(coroutine));
        }
        let (state, mut raw) = self.awaits(mem, frames, coroutine)?;
        raw.reverse();
        Ok(Task {
            address,
            name: self.name(mem, name),
            state,
            frames: raw,
        })
    }

    /// The task's name: its `str`, or `Task-N` for the number it was given instead.
    fn name(&self, mem: &impl Memory, name: u64) -> String {
        match self.strings.read_str(mem, name) {
            Ok(name) => name,
            Err(_) => format!("Task-{}", self.values.describe(mem, name)),
        }
    }

    /// Whether the object at `address` is a coroutine or a generator.
    fn is_coroutine(&self, mem: &impl Memory, address: u64) -> Result<bool, ObjectError> {
        Ok(address != 0
            && self
                .coroutine_types
                .contains(&self.values.type_of(mem, address)?))
    }

    /// The state of the task whose coroutine is `coroutine`, and the frames of the
    /// coroutines it waits in, outermost first.
    fn awaits(
        &self,
        mem: &impl Memory,
        frames: &FrameReader,
        coroutine: u64,
    ) -> Result<(TaskState, Vec<RawFrame>), ObjectError> {
        let mut out = Vec::new();
        let mut current = coroutine;
        let states = self.states;
        for depth in 0..MAX_AWAITS {
            let state = i64::from(mem.read_vec(current + self.frame_state, 1)?[0] as i8);
            let frame = current + self.iframe;
            out.extend(frames.frame_at(mem, frame)?);
            let awaiting = state == states.awaiting || Some(state) == states.awaiting_locked;
            let task_state = match state {
                _ if awaiting || state == states.suspended => TaskState::Waiting,
                _ if state == states.executing => return Ok((TaskState::Running, out)),
                // Not started (or finished, about to leave the list).
                _ if depth == 0 => return Ok((TaskState::Pending, out)),
                _ => TaskState::Waiting,
            };
            if !awaiting {
                return Ok((task_state, out));
            }
            // The awaitable is the top of the frame's stack, but for a NULL that 3.15
            // keeps above it.
            let top = mem.read_u64(frame + self.stackpointer)?;
            let slots = mem.read_vec(top.wrapping_sub(16), 16)?;
            let awaited = match slots.u64_at(8) & self.untag {
                0 => slots.u64_at(0) & self.untag,
                awaited => awaited,
            };
            if !self.is_coroutine(mem, awaited)? {
                return Ok((task_state, out));
            }
            current = awaited;
        }
        Ok((TaskState::Waiting, out))
    }
}

/// The tasks of the list whose head (a sentinel `llist_node`) is at `head`, their
/// nodes at `node` in each task.
fn task_list(mem: &impl Memory, head: u64, node: u64) -> Vec<u64> {
    let mut tasks = Vec::new();
    let mut next = mem.read_u64(head);
    while let Ok(at) = next {
        if at == head || at == 0 || tasks.len() >= MAX_TASKS {
            break;
        }
        tasks.push(at.wrapping_sub(node));
        next = mem.read_u64(at);
    }
    tasks
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::memory::fake::Blocks;

    #[test]
    fn the_section_is_read_field_by_field() {
        let fields: [u64; 13] = [
            168, 136, 96, 108, 109, 128, 152, 225864, 10880, 936, 864, 872, 880,
        ];
        let raw: Vec<u8> = fields.iter().flat_map(|f| f.to_le_bytes()).collect();
        let offsets = AsyncioOffsets::parse(&raw).unwrap();
        assert_eq!(
            offsets,
            AsyncioOffsets {
                task_name: 136,
                task_coro: 128,
                task_node: 152,
                interpreter_tasks: 10880,
                thread_tasks: 880,
            }
        );
        let mut outside = fields;
        outside[12] = 936;
        let raw: Vec<u8> = outside.iter().flat_map(|f| f.to_le_bytes()).collect();
        assert_eq!(AsyncioOffsets::parse(&raw), None);
    }

    #[test]
    fn a_task_list_ends_at_its_head() {
        // Head at 0x1000 -> node 0x2010 -> node 0x3010 -> head; nodes 0x10 into tasks.
        let mut raw = vec![0u8; 0x3000];
        raw[..8].copy_from_slice(&0x2010u64.to_le_bytes());
        raw[0x1010..0x1018].copy_from_slice(&0x3010u64.to_le_bytes());
        raw[0x2010..0x2018].copy_from_slice(&0x1000u64.to_le_bytes());
        let mem = Blocks::at(0x1000, raw);
        assert_eq!(task_list(&mem, 0x1000, 0x10), [0x2000, 0x3000]);
        // An empty list's head points to itself.
        let mut empty = vec![0u8; 16];
        empty[..8].copy_from_slice(&0x1000u64.to_le_bytes());
        assert!(task_list(&Blocks::at(0x1000, empty), 0x1000, 0x10).is_empty());
    }

    #[test]
    fn only_the_asyncio_module_and_the_runtime_file_are_looked_in() {
        assert!(is_asyncio_module(
            "/usr/lib/python3.14/lib-dynload/_asyncio.cpython-314-x86_64-linux-gnu.so"
        ));
        assert!(!is_asyncio_module("/usr/lib/python3.14/asyncio/tasks.py"));
        assert!(!is_asyncio_module("/usr/lib/libasyncio.so"));
    }
}
