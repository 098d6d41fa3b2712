//! SVG flamegraphs, drawn by inferno.

use std::io::Write;

use inferno::flamegraph::{self, Options};

use super::collapsed::folded_lines;
use super::{Profile, Renderer};

/// An interactive SVG flamegraph whose subtitle says how it was recorded.
pub struct Flamegraph;

impl Renderer for Flamegraph {
    fn render(&self, profile: &Profile, out: &mut dyn Write) -> anyhow::Result<()> {
        let title = format!("pyscry: {}", profile.info.command);
        draw(&title, &profile.describe(), &folded_lines(profile), out)
    }
}

/// Draw folded `lines` (`stack COUNT`, or `stack BEFORE AFTER` for a differential
/// flamegraph, which inferno colours by the change) under `title` and `subtitle`.
pub fn draw(
    title: &str,
    subtitle: &str,
    lines: &[String],
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    if lines.is_empty() {
        // inferno refuses empty input; an empty recording still gets a valid SVG.
        write!(out, "{}", empty_svg(subtitle))?;
        return Ok(());
    }
    let mut options = Options::default();
    options.title = title.to_string();
    options.subtitle = Some(subtitle.to_string());
    options.count_name = "samples".to_string();
    options.min_width = 0.05;
    flamegraph::from_lines(&mut options, lines.iter().map(String::as_str), out)?;
    Ok(())
}

fn empty_svg(subtitle: &str) -> String {
    let escape = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    };
    format!(
        "<?xml version=\"1.0\" standalone=\"no\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" \
         width=\"1200\" height=\"60\"><text x=\"10\" y=\"30\">pyscry: no samples ({})</text></svg>\n",
        escape(subtitle)
    )
}
