//! Command-line definitions.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::report::table::TableOrder;
use crate::report::Format;
use crate::sampler::Mode;

/// pyscry: a sampling profiler for running Python programs.
#[derive(Debug, Parser)]
#[command(name = "pyscry", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Sample a program until it exits (or Ctrl-C, or --duration) and write a flamegraph.
    Record(RecordArgs),
    /// Print every thread's Python stack right now.
    Dump(DumpArgs),
    /// Watch where the time goes, live, in a full-screen table (needs a terminal).
    Top(TopArgs),
    /// Show a recording made with `record -f pyscry`: the top table, a per-line table of
    /// a function's source, or another output format.
    Report(ReportArgs),
}

/// Which process to profile: an existing one, or a command to start.
#[derive(Debug, Args)]
pub struct TargetArgs {
    /// Attach to the running process with this PID.
    #[arg(short, long, conflicts_with = "command")]
    pub pid: Option<u32>,
    /// The program to launch and profile, after `--`, e.g. `-- python3 script.py`.
    #[arg(last = true, required_unless_present = "pid", value_name = "COMMAND")]
    pub command: Vec<String>,
}

/// Options of `pyscry record`.
#[derive(Debug, Args)]
pub struct RecordArgs {
    /// The process to profile.
    #[command(flatten)]
    pub target: TargetArgs,
    /// Output file (default: pyscry-NAME-TIME.EXT in the current directory); `-`
    /// writes to standard output, and the table and a launched program's output then
    /// go to standard error.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// Output format (default: from the output file's extension, else flamegraph).
    #[arg(short, long, value_enum)]
    pub format: Option<Format>,
    /// Samples per second.
    #[arg(short, long, default_value_t = 100.0, value_parser = parse_rate)]
    pub rate: f64,
    /// Stop after this many seconds of wall-clock time.
    #[arg(short, long, value_parser = parse_duration)]
    pub duration: Option<f64>,
    /// The table printed at the end.
    #[command(flatten)]
    pub table: TableArgs,
    /// What time to count.
    #[command(flatten)]
    pub sampling: SamplingArgs,
    /// How the outputs show the profile.
    #[command(flatten)]
    pub view: ViewArgs,
    /// Also sample the target's descendant processes that run Python (multiprocessing
    /// workers, subprocesses); each stack then starts with `process PID: COMMAND`.
    #[arg(long)]
    pub subprocesses: bool,
    /// Keep no copy of the sampled source files. A recording (and a heatmap) keeps
    /// one by default, read while the target runs, so that its per-line views show
    /// the code that ran even once the files change, or on another machine; without
    /// the copy they read each file from its path when rendered.
    #[arg(long)]
    pub no_sources: bool,
}

/// The top-N table of functions that `record` prints at the end and `report` prints.
#[derive(Debug, Clone, Copy, Args)]
pub struct TableArgs {
    /// How many functions the table shows.
    #[arg(long, default_value_t = 10)]
    pub top: usize,
    /// Which time orders the table: `own` (in the function itself, pstats'
    /// tottime) or `total` (with what it called, pstats' cumulative).
    #[arg(long, value_enum, default_value_t = TableOrder::Own)]
    pub sort: TableOrder,
}

/// How a profile's outputs show it: which threads, whether each gets its own
/// subtree, how finely frames are told apart; shared by `record` and `report`.
#[derive(Debug, Clone, Args)]
pub struct ViewArgs {
    /// Start each stack with a `thread NAME (tid)` frame, one subtree per thread.
    #[arg(long = "threads")]
    pub split: bool,
    /// Keep only this thread, by name or OS thread id (repeatable).
    #[arg(long = "thread", value_name = "NAME|TID")]
    pub only: Vec<String>,
    /// Keep only the main thread.
    #[arg(long)]
    pub main_thread: bool,
    /// Tell a function's frames apart by function, not by the line each was at: a
    /// frame shows its function's first line, and a function is one box in a
    /// flamegraph (py-spy's --function).
    #[arg(short = 'F', long)]
    pub function: bool,
    /// Show each frame's whole file path in stacks (flamegraph, collapsed). By default
    /// a file is named below its site-packages or standard library directory
    /// (`json/decoder.py`), or relative to the working directory (py-spy's
    /// --full-filenames).
    #[arg(long)]
    pub full_filenames: bool,
    /// Leave out idle samples (threads the kernel did not have running): from a wall
    /// mode recording, what --mode cpu records.
    #[arg(long)]
    pub no_idle: bool,
}

/// Options of `pyscry report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// A recording written by `pyscry record -f pyscry`; several are merged into one
    /// profile (the same program on several hosts, or at several times).
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Compare with this earlier recording: the table shows how each function's share
    /// changed, and --output writes a differential flamegraph (red: grew, blue:
    /// shrank) or folded stacks with both counts.
    #[arg(long, value_name = "BEFORE", conflicts_with = "lines")]
    pub diff: Option<PathBuf>,
    /// Also write the profile to this file (format from --format or the extension);
    /// `-` writes to standard output, and the table then goes to standard error.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// Format of --output (default: from its extension, else flamegraph).
    #[arg(short, long, value_enum, requires = "output")]
    pub format: Option<Format>,
    /// The table.
    #[command(flatten)]
    pub table: TableArgs,
    /// Instead of the table, show each function of this name (or last part of its
    /// qualified name) line by line, with its source: own and total time per line.
    #[arg(long, value_name = "FUNCTION")]
    pub lines: Option<String>,
    /// Instead of the table, show each function of this name (or last part of its
    /// qualified name) with its callers and callees: the share of the samples in
    /// which each caller called it and in which it called each callee (pstats'
    /// print_callers and print_callees).
    #[arg(long, value_name = "FUNCTION", conflicts_with_all = ["lines", "diff"])]
    pub calls: Option<String>,
    /// Keep only the samples taken this many seconds or more after the recording
    /// started.
    #[arg(long, value_name = "SECS", value_parser = parse_offset, conflicts_with = "diff")]
    pub from: Option<f64>,
    /// Keep only the samples taken before this many seconds after the recording
    /// started.
    #[arg(long, value_name = "SECS", value_parser = parse_duration, conflicts_with = "diff")]
    pub to: Option<f64>,
    /// How the outputs show the profile.
    #[command(flatten)]
    pub view: ViewArgs,
}

/// How samples are taken; shared by the commands that sample.
#[derive(Debug, Clone, Copy, Args)]
pub struct SamplingArgs {
    /// wall: every thread, idle included (marked idle); cpu: only threads on a CPU;
    /// gil: only the thread holding the GIL.
    #[arg(short, long, value_enum, default_value_t = Mode::Wall)]
    pub mode: Mode,
    /// Pause the target's threads while each sample is read (exact stacks, at a cost to
    /// the target); by default pyscry reads without stopping it.
    #[arg(long)]
    pub blocking: bool,
    /// Also sample each thread's native (C) frames, with the Python frames where the
    /// interpreter runs them. The target's threads are paused at every sample, as with
    /// --blocking, while their stacks are unwound.
    #[arg(short, long)]
    pub native: bool,
    /// Leave out the `<GC>` frame that otherwise tops the stack of the thread running
    /// the cyclic garbage collector (not shown with --native, whose C frames show the
    /// collector's functions).
    #[arg(long)]
    pub no_gc: bool,
}

impl SamplingArgs {
    /// Whether samples get a `<GC>` frame while the garbage collector runs.
    pub fn gc_frames(&self) -> bool {
        !self.no_gc && !self.native
    }
}

/// Options of `pyscry dump`.
#[derive(Debug, Args)]
pub struct DumpArgs {
    /// The process to inspect.
    #[arg(short, long, required_unless_present = "core")]
    pub pid: Option<u32>,
    /// Read a core dump instead of a live process: the stacks of a process that
    /// crashed (or that `gcore` dumped), from its core file and from the files it had
    /// mapped, which must be the same files on this machine.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["pid", "subprocesses"])]
    pub core: Option<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Also show each frame's local variables, arguments first. The process is paused
    /// while the dump is read (milliseconds), so that the values go with the stacks.
    #[arg(short, long)]
    pub locals: bool,
    /// Also show each thread's native (C) frames, with the Python frames where the
    /// interpreter runs them. The process is paused while the dump is read.
    #[arg(short, long)]
    pub native: bool,
    /// Also list the process's asyncio tasks, each with the coroutines it waits in,
    /// innermost first, as `python -m asyncio pstree` does (CPython 3.14 and later).
    #[arg(short, long)]
    pub tasks: bool,
    /// Also dump the target's descendant processes that run Python (multiprocessing
    /// workers, subprocesses), one after the other; the target itself need not run
    /// Python. With --json, the output is a list of the processes' dumps.
    #[arg(long)]
    pub subprocesses: bool,
}

/// Options of `pyscry top`.
#[derive(Debug, Args)]
pub struct TopArgs {
    /// The process to watch.
    #[command(flatten)]
    pub target: TargetArgs,
    /// Samples per second.
    #[arg(short, long, default_value_t = 100.0, value_parser = parse_rate)]
    pub rate: f64,
    /// Seconds between screen refreshes (each refresh window's length).
    #[arg(short, long, default_value_t = 1.0, value_parser = parse_delay)]
    pub delay: f64,
    /// What time to count.
    #[command(flatten)]
    pub sampling: SamplingArgs,
    /// Also sample the target's descendant processes that run Python (multiprocessing
    /// workers, subprocesses); the table adds up their functions with the target's.
    #[arg(long)]
    pub subprocesses: bool,
}

fn parse_rate(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(rate) if rate > 0.0 && rate <= 100_000.0 => Ok(rate),
        _ => Err("the rate must be a number of samples per second between 0 and 100000".into()),
    }
}

fn parse_duration(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(secs) if secs > 0.0 && secs.is_finite() => Ok(secs),
        _ => Err("the duration must be a positive number of seconds".into()),
    }
}

fn parse_offset(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(secs) if secs >= 0.0 && secs.is_finite() => Ok(secs),
        _ => Err("the time must be a number of seconds, 0 or more".into()),
    }
}

fn parse_delay(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(secs) if (0.1..=3600.0).contains(&secs) => Ok(secs),
        _ => Err("the delay must be a number of seconds between 0.1 and 3600".into()),
    }
}
