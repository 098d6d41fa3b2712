//! The live top view: a full-screen table of where the time goes, refreshed while
//! sampling goes on.
//!
//! [`window`] aggregates samples per refresh window, [`app`] holds what is shown and
//! answers keys, [`view`] draws it, [`live`] runs the loop, [`usage`] reads the
//! target's CPU and memory, and [`terminal`] takes the terminal over and gives it back.

pub mod app;
pub mod live;
pub mod terminal;
pub mod usage;
pub mod view;
pub mod window;
