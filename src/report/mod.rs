//! Aggregated profiles and every way of rendering them.
//!
//! Renderers only see a [`Profile`]; they never read process memory.

pub mod collapsed;
pub mod flamegraph;
pub mod profile;
pub mod table;

use std::io::Write;

pub use profile::{Profile, ProfileInfo};

/// An output format that a whole profile can be written in.
pub trait Renderer {
    /// Write `profile` to `out`.
    fn render(&self, profile: &Profile, out: &mut dyn Write) -> anyhow::Result<()>;
}

/// The file formats `record --format` offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// An interactive SVG flamegraph.
    Flamegraph,
    /// Folded stacks: `root;…;leaf COUNT` per line, for other flamegraph tools.
    Collapsed,
}

impl Format {
    /// The renderer for this format.
    pub fn renderer(self) -> Box<dyn Renderer> {
        match self {
            Format::Flamegraph => Box::new(flamegraph::Flamegraph),
            Format::Collapsed => Box::new(collapsed::Collapsed),
        }
    }

    /// The usual file extension.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Flamegraph => "svg",
            Format::Collapsed => "txt",
        }
    }
}
