//! A heatmap: every sampled source file as one HTML page, each line shaded by its
//! share of the samples, with its own and total time, so that the hot lines of a
//! whole program show at once (`report --lines` shows one function this way).

use std::collections::BTreeMap;
use std::io::Write;

use super::paths::short_path;
use super::profile::Counts;
use super::{Profile, Renderer};

/// Renders a [`Profile`] as a self-contained HTML page.
pub struct Heatmap;

/// Files with less than this share of the samples on their lines are listed in the
/// index but not shown: a profile of a large program touches many files once.
const MIN_FILE_SHARE: f64 = 0.005;

/// Lines shown around each sampled line of a file whose source is longer than
/// [`WHOLE_FILE_LINES`]: enough to see where it is.
const CONTEXT_LINES: u32 = 3;
/// Files up to this many lines are shown whole.
const WHOLE_FILE_LINES: usize = 400;

/// One source file's samples.
#[derive(Debug, Default)]
struct FileLines {
    /// Samples with any of its lines on the stack.
    total: u64,
    /// Counts per line.
    lines: BTreeMap<u32, Counts>,
}

/// Per file, per line: own (the line executing in the innermost frame) and total (the
/// line executing in any frame, once per sample). Frames with no Python source
/// (native, `<GC>`) have no lines.
fn file_lines(profile: &Profile) -> Vec<(String, FileLines)> {
    let python_frame = |frames: &[u32], depth: usize| {
        let frame = profile.frame(frames[depth]);
        (!frame.is_native()).then_some(frame)
    };
    let by_file = profile
        .counts_by(|frames, depth| python_frame(frames, depth).map(|frame| frame.filename.clone()));
    let by_line = profile.counts_by(|frames, depth| {
        python_frame(frames, depth).map(|frame| (frame.filename.clone(), frame.line))
    });
    let mut files: BTreeMap<String, FileLines> = BTreeMap::new();
    for ((filename, line), counts) in by_line {
        files
            .entry(filename)
            .or_default()
            .lines
            .insert(line, counts);
    }
    for (filename, counts) in by_file {
        files.entry(filename).or_default().total = counts.total;
    }
    let mut files: Vec<(String, FileLines)> = files.into_iter().collect();
    files.sort_by(|(a_name, a), (b_name, b)| b.total.cmp(&a.total).then(a_name.cmp(b_name)));
    files
}

/// `text` with the characters HTML gives a meaning escaped.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            _ => out.push(c),
        }
    }
    out
}

/// The lines of a file to show: all of a short file, else each sampled line with
/// [`CONTEXT_LINES`] around it; `None` between runs that are not adjacent.
fn shown_lines(lines: &BTreeMap<u32, Counts>, source_len: usize) -> Vec<Option<u32>> {
    if source_len > 0 && source_len <= WHOLE_FILE_LINES {
        return (1..=source_len as u32).map(Some).collect();
    }
    // Without the source there is no context to show.
    let context = if source_len == 0 { 0 } else { CONTEXT_LINES };
    let mut shown: Vec<u32> = Vec::new();
    for &line in lines.keys() {
        let start = line.saturating_sub(context).max(1);
        let end = match source_len {
            0 => line,
            len => (line + context).min(len as u32),
        };
        for l in start..=end {
            if shown.last() < Some(&l) {
                shown.push(l);
            }
        }
    }
    let mut out = Vec::with_capacity(shown.len());
    for (i, &line) in shown.iter().enumerate() {
        if i > 0 && shown[i - 1] + 1 != line {
            out.push(None);
        }
        out.push(Some(line));
    }
    out
}

const STYLE: &str = "body{font-family:sans-serif;margin:1em 2em}\
table{border-collapse:collapse}\
td{padding:0 .5em;white-space:pre;font-family:monospace;font-size:13px}\
td.n{text-align:right;color:#666}\
td.p{text-align:right}\
tr.gap td{color:#999}\
h2{font-size:16px;margin-top:2em}\
.index td{font-family:sans-serif}";

impl Renderer for Heatmap {
    fn render(&self, profile: &Profile, out: &mut dyn Write) -> anyhow::Result<()> {
        let samples = profile.total_samples().max(1) as f64;
        let pct = |n: u64| 100.0 * n as f64 / samples;
        let cwd = std::env::current_dir().ok();
        let files = file_lines(profile);
        // Shades are relative to the hottest line anywhere, so files compare.
        let hottest = files
            .iter()
            .flat_map(|(_, file)| file.lines.values().map(|c| c.total))
            .max()
            .unwrap_or(1)
            .max(1) as f64;
        writeln!(
            out,
            "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">\
             <title>pyscry heatmap</title><style>{STYLE}</style></head><body>"
        )?;
        writeln!(out, "<h1>{}</h1>", escape(&profile.describe()))?;
        writeln!(
            out,
            "<p>Each line is shaded by its total share: the samples in which it was \
             executing in any frame (own: in the innermost one).</p>"
        )?;
        writeln!(
            out,
            "<table class=\"index\"><tr><th>total%</th><th>file</th></tr>"
        )?;
        for (index, (filename, file)) in files.iter().enumerate() {
            let name = escape(short_path(filename, cwd.as_deref()));
            let share = pct(file.total);
            let link = match share / 100.0 >= MIN_FILE_SHARE {
                true => format!("<a href=\"#f{index}\">{name}</a>"),
                false => name,
            };
            writeln!(
                out,
                "<tr><td class=\"p\">{share:.1}%</td><td>{link}</td></tr>"
            )?;
        }
        writeln!(out, "</table>")?;
        for (index, (filename, file)) in files.iter().enumerate() {
            if pct(file.total) / 100.0 < MIN_FILE_SHARE {
                continue;
            }
            let source = profile.sources.lines(filename).unwrap_or_default();
            writeln!(
                out,
                "<h2 id=\"f{index}\">{} — {:.1}%</h2>",
                escape(filename),
                pct(file.total)
            )?;
            if source.is_empty() {
                writeln!(out, "<p>(source not found: sampled lines only)</p>")?;
            } else if profile.sources.changed_since(filename) {
                writeln!(
                    out,
                    "<p>(source as recorded: the file has changed since)</p>"
                )?;
            }
            writeln!(
                out,
                "<table><tr><th>line</th><th>own%</th><th>total%</th><th></th></tr>"
            )?;
            for line in shown_lines(&file.lines, source.len()) {
                let Some(line) = line else {
                    writeln!(out, "<tr class=\"gap\"><td class=\"n\">…</td></tr>")?;
                    continue;
                };
                let text = source.get(line as usize - 1).map_or("", String::as_str);
                let counts = file.lines.get(&line);
                let share = |n: u64| format!("{:.1}%", pct(n));
                let (own, total, shade) = match counts {
                    Some(c) => (share(c.own), share(c.total), c.total as f64 / hottest),
                    None => (String::new(), String::new(), 0.0),
                };
                // At least a trace of colour for any sampled line.
                let style = match counts {
                    Some(_) => format!(
                        " style=\"background:rgba(255,90,0,{:.3})\"",
                        0.06 + 0.74 * shade
                    ),
                    None => String::new(),
                };
                writeln!(
                    out,
                    "<tr{style}><td class=\"n\">{line}</td><td class=\"p\">{own}</td>\
                     <td class=\"p\">{total}</td><td>{}</td></tr>",
                    escape(text)
                )?;
            }
            writeln!(out, "</table>")?;
        }
        writeln!(out, "</body></html>")?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixtures::add_stack;
    use crate::report::ProfileInfo;
    use crate::symbolize::Frame;

    fn frame(name: &str, filename: &str, line: u32) -> Frame {
        Frame {
            name: name.into(),
            filename: filename.into(),
            line,
            first_line: 1,
        }
    }

    #[test]
    fn lines_count_own_and_total_and_files_sort_by_total() {
        let mut profile = Profile::new(ProfileInfo::default());
        profile.frames = vec![
            frame("main", "a.py", 9),
            frame("work", "b.py", 3),
            frame("work", "b.py", 4),
            Frame::garbage_collection(),
        ];
        add_stack(&mut profile, 1, false, &[0, 1], 3);
        add_stack(&mut profile, 1, false, &[0, 2, 3], 1);
        let files = file_lines(&profile);
        let names: Vec<&str> = files.iter().map(|(name, _)| name.as_str()).collect();
        // a.py's line is on every stack; <GC> has no file.
        assert_eq!(names, ["a.py", "b.py"]);
        let (a, b) = (&files[0].1, &files[1].1);
        assert_eq!(a.total, 4);
        assert_eq!(a.lines[&9], Counts { own: 0, total: 4 });
        assert_eq!(b.lines[&3], Counts { own: 3, total: 3 });
        // Under <GC>: on the stack, not innermost.
        assert_eq!(b.lines[&4], Counts { own: 0, total: 1 });
    }

    #[test]
    fn long_files_show_sampled_lines_in_context() {
        let lines = BTreeMap::from([(10, Counts::default()), (12, Counts::default())]);
        let shown = shown_lines(&lines, 1000);
        let expected: Vec<Option<u32>> = (7..=15).map(Some).collect();
        assert_eq!(shown, expected);
        let apart = BTreeMap::from([(10, Counts::default()), (30, Counts::default())]);
        let shown = shown_lines(&apart, 1000);
        assert_eq!(shown.iter().filter(|l| l.is_none()).count(), 1);
        assert_eq!(shown_lines(&apart, 0), [Some(10), None, Some(30)]);
        assert_eq!(shown_lines(&apart, 40).len(), 40);
    }

    #[test]
    fn source_is_escaped() {
        assert_eq!(
            escape("if a < b & c > \"d\":"),
            "if a &lt; b &amp; c &gt; &quot;d&quot;:"
        );
    }
}
