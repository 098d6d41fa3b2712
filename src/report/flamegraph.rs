//! SVG flamegraphs, drawn by inferno.

use std::io::Write;

use inferno::flamegraph::{self, Options};

use super::collapsed::folded_lines;
use super::{Profile, Renderer};

/// An interactive SVG flamegraph whose subtitle says how it was recorded.
pub struct Flamegraph;

impl Renderer for Flamegraph {
    fn render(&self, profile: &Profile, out: &mut dyn Write) -> anyhow::Result<()> {
        let lines = folded_lines(profile);
        let mut options = Options::default();
        options.title = format!("pyscry: {}", profile.info.command);
        options.subtitle = Some(profile.describe());
        options.count_name = "samples".to_string();
        options.min_width = 0.05;
        if lines.is_empty() {
            // inferno refuses empty input; an empty recording still gets a valid SVG.
            write!(out, "{}", empty_svg(profile))?;
            return Ok(());
        }
        flamegraph::from_lines(&mut options, lines.iter().map(String::as_str), out)?;
        Ok(())
    }
}

fn empty_svg(profile: &Profile) -> String {
    let escape = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    };
    format!(
        "<?xml version=\"1.0\" standalone=\"no\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" \
         width=\"1200\" height=\"60\"><text x=\"10\" y=\"30\">pyscry: no samples ({})</text></svg>\n",
        escape(&profile.describe())
    )
}
