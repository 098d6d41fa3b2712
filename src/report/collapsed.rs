//! Folded stacks, the input format of flamegraph.pl and many other tools.

use std::io::Write;

use super::{Profile, Renderer};

/// `root;…;leaf COUNT`, one line per distinct stack.
pub struct Collapsed;

impl Renderer for Collapsed {
    fn render(&self, profile: &Profile, out: &mut dyn Write) -> anyhow::Result<()> {
        for line in folded_lines(profile) {
            writeln!(out, "{line}")?;
        }
        Ok(())
    }
}

/// The folded lines of a profile, in a stable order.
pub fn folded_lines(profile: &Profile) -> Vec<String> {
    profile
        .labelled_stacks()
        .into_iter()
        .map(|(labels, count)| format!("{} {count}", labels.join(";")))
        .collect()
}
