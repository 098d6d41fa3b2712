//! One module per subcommand, each turning parsed arguments into work and an exit code,
//! and the pieces they share: attaching, the output file, choosing threads.

pub mod attach;
pub mod dump;
pub mod output;
pub mod record;
pub mod report;
pub mod subprocesses;
pub mod threads;
pub mod top;
