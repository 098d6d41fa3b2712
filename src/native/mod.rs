//! Native (C) stacks: unwinding a stopped thread's stack through the target's
//! executable files, and merging it with the thread's Python frames, so that time in
//! C extensions and the interpreter shows where it is spent (`--native`).

pub mod lines;
pub mod merge;
pub mod module;
pub mod stacks;
pub mod unwind;
