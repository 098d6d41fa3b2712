//! One module per subcommand; each turns parsed arguments into work and an exit code.

pub mod attach;
pub mod dump;
pub mod record;
pub mod top;
