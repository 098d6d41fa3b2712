//! Errors a user can act on, with the exit code each one gives.
//!
//! Every variant's message says what happened and, where there is one, what to do.
//! Exit codes are documented in `docs/exit-codes.md`.

use std::path::PathBuf;

/// A failure that ends a pyscry command.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No process has that PID.
    #[error("no process with PID {0}")]
    NoSuchProcess(u32),
    /// The kernel does not let us read the process.
    #[error(
        "permission denied reading process {0}: run pyscry as root (sudo), or allow ptrace \
         for your user with `sudo sysctl kernel.yama.ptrace_scope=0`, or grant the binary \
         the capability with `sudo setcap cap_sys_ptrace=eip $(command -v pyscry)`; in a \
         container, start it with `--cap-add SYS_PTRACE`"
    )]
    PermissionDenied(u32),
    /// The process has no Python interpreter we can find.
    #[error("process {pid} ({exe}) is not a Python process: no CPython runtime found in its executable or libraries")]
    NotPython {
        /// The process.
        pid: u32,
        /// Its executable.
        exe: String,
    },
    /// A Python interpreter whose version or build pyscry cannot read.
    #[error("process {pid} runs {found}, which pyscry does not support; supported: {supported}")]
    UnsupportedPython {
        /// The process.
        pid: u32,
        /// What was found, e.g. `CPython 3.16.0`.
        found: String,
        /// The supported versions and flavours.
        supported: String,
    },
    /// The program to launch does not exist or cannot be run.
    #[error("cannot run {program}: {reason}")]
    CannotLaunch {
        /// The program as given.
        program: String,
        /// Why not.
        reason: String,
    },
    /// An output file cannot be written.
    #[error("cannot write {}: {source}", path.display())]
    OutputNotWritable {
        /// The path.
        path: PathBuf,
        /// Why not.
        source: std::io::Error,
    },
    /// A recording cannot be read: missing, not a recording, corrupt, or too new.
    #[error("cannot read {}: {source}", path.display())]
    BadRecording {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        source: crate::record::RecordingError,
    },
    /// `report --lines` or `--calls` names a function that no sample ran.
    #[error(
        "no function named `{name}` in {recordings}; the functions with the most own time: {known}"
    )]
    NoSuchFunction {
        /// The name asked for.
        name: String,
        /// The recordings, as given.
        recordings: String,
        /// Names that are in it.
        known: String,
    },
    /// The target went away before anything could be read from it.
    #[error("process {0} exited before pyscry could read it")]
    TargetExited(u32),
    /// Anything else, with context.
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl Error {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Other(_) => 1,
            Error::NoSuchProcess(_) => 3,
            Error::PermissionDenied(_) => 4,
            Error::NotPython { .. } => 5,
            Error::UnsupportedPython { .. } => 6,
            Error::CannotLaunch { .. } => 7,
            Error::OutputNotWritable { .. } => 8,
            Error::TargetExited(_) => 9,
            Error::BadRecording { .. } => 10,
            Error::NoSuchFunction { .. } => 11,
        }
    }

    /// Whether this is a write to a closed pipe (`pyscry dump ... | head`): the reader
    /// wanted no more, which is not a failure.
    pub fn is_broken_pipe(&self) -> bool {
        let broken = |e: &std::io::Error| e.kind() == std::io::ErrorKind::BrokenPipe;
        match self {
            Error::OutputNotWritable { source, .. } => broken(source),
            Error::Other(error) => error
                .chain()
                .any(|cause| cause.downcast_ref::<std::io::Error>().is_some_and(broken)),
            _ => false,
        }
    }
}

/// Shorthand for results whose error is [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
