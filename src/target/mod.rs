//! The process being profiled: finding it, starting it, reading it.
//!
//! Nothing here knows about Python; `crate::python` builds on these pieces.

pub mod activity;
pub mod binary;
pub mod core_dump;
pub mod maps;
pub mod memory;
pub mod pause;
pub mod pid_namespace;
pub mod prefetch;
pub mod process;
