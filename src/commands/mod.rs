//! One module per subcommand, each turning parsed arguments into work and an exit code,
//! and the pieces they share: attaching, the output file, how outputs show a profile.

pub mod attach;
pub mod dump;
pub mod output;
pub mod record;
pub mod report;
pub mod sources;
pub mod subprocesses;
pub mod top;
pub mod view;
