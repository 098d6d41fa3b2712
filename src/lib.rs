//! pyscry as a library: every module the `pyscry` binary is built from, so that
//! benchmarks (`benches/`) can drive the sampler's pieces against a live target.
//! The command-line program itself is `src/main.rs`.

pub mod cli;
pub mod commands;
pub mod error;
pub mod native;
pub mod python;
pub mod record;
pub mod report;
pub mod sampler;
pub mod symbolize;
pub mod target;
pub mod ui;
