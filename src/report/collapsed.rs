//! Folded stacks, the input format of flamegraph.pl and many other tools.

use std::collections::HashMap;
use std::io::Write;

use super::profile::label_file_names;
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
    folded_lines_naming(profile, &label_file_names(&[profile]))
}

/// [`folded_lines`], with files named as `names` says (see [`label_file_names`]).
pub fn folded_lines_naming(profile: &Profile, names: &HashMap<&str, &str>) -> Vec<String> {
    profile
        .labelled_stacks_naming(names)
        .into_iter()
        .map(|(labels, count)| format!("{} {count}", labels.join(";")))
        .collect()
}
