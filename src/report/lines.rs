//! Per-line tables: one function's source with the time spent on each line, the view
//! line_profiler gives, without decorating anything.

use std::collections::BTreeMap;
use std::io::Write;

use super::profile::Counts;
use super::table::display_path;
use super::Profile;
use crate::symbolize::{Frame, FrameId};

/// Samples attributed to one source line: "own" while it was executing in the
/// innermost frame, "total" while it was executing in any frame of the function (its
/// own time plus that of what it called).
pub type LineCounts = Counts;

/// One function's samples, line by line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionLines {
    /// Function name (qualified on 3.11+).
    pub name: String,
    /// Source file.
    pub filename: String,
    /// First line of the function.
    pub first_line: u32,
    /// Samples in which the function was the innermost frame.
    pub own: u64,
    /// Samples in which it was anywhere on the stack.
    pub total: u64,
    /// Counts per executing line.
    pub lines: BTreeMap<u32, LineCounts>,
}

/// Whether `frame` is a frame of the function the user named `wanted`: its name, or
/// the last part of its qualified name (`work` matches `Worker.work`).
pub fn names_function(frame: &Frame, wanted: &str) -> bool {
    frame.name == wanted || frame.name.rsplit('.').next() == Some(wanted)
}

/// Every function named `wanted`, most total samples first.
pub fn function_lines(profile: &Profile, wanted: &str) -> Vec<FunctionLines> {
    let function_at = |frames: &[FrameId], depth: usize| {
        let frame = profile.frame(frames[depth]);
        names_function(frame, wanted).then_some(frame)
    };
    let key = |f: &Frame| (f.name.clone(), f.filename.clone(), f.first_line);
    let functions = profile.counts_by(|frames, depth| function_at(frames, depth).map(key));
    let lines =
        profile.counts_by(|frames, depth| function_at(frames, depth).map(|f| (key(f), f.line)));
    let mut out: Vec<FunctionLines> = functions
        .into_iter()
        .map(|((name, filename, first_line), counts)| FunctionLines {
            lines: lines
                .iter()
                .filter(|((function, _), _)| {
                    (&function.0, &function.1, function.2) == (&name, &filename, first_line)
                })
                .map(|((_, line), &counts)| (*line, counts))
                .collect(),
            name,
            filename,
            first_line,
            own: counts.own,
            total: counts.total,
        })
        .collect();
    out.sort_by(|a, b| {
        (b.total, &a.filename, a.first_line).cmp(&(a.total, &b.filename, b.first_line))
    });
    out
}

/// The source lines a table shows, with their text where the file can be read: the
/// whole function (from its first line to where its indentation ends, or to its last
/// sampled line if that is further), or only the sampled lines of a module's code or
/// when the source is not at hand.
fn shown_lines(function: &FunctionLines, source: Option<&[String]>) -> Vec<(u32, Option<String>)> {
    let sampled = function.lines.keys().copied();
    let text = |line: u32| -> Option<String> {
        let lines = source?;
        lines.get((line as usize).checked_sub(1)?).cloned()
    };
    let whole_function = source.is_some() && function.first_line > 0 && function.name != "<module>";
    if !whole_function {
        return sampled.map(|line| (line, text(line))).collect();
    }
    let lines = source.unwrap_or_default();
    let end = function_end(lines, function.first_line).max(sampled.max().unwrap_or(0));
    (function.first_line..=end)
        .map(|line| (line, text(line)))
        .collect()
}

/// The last line of the function whose `def` (or first decorator) is on `first_line`
/// (1-based): after its decorators, the last of the lines indented deeper than the
/// `def` that follow it (a multi-line signature is indented deeper too).
fn function_end(lines: &[String], first_line: u32) -> u32 {
    let indent = |text: &str| text.len() - text.trim_start().len();
    let Some(head) = lines.get(first_line as usize - 1) else {
        return first_line;
    };
    let base = indent(head);
    let mut end = first_line;
    let mut decorated = head.trim_start().starts_with('@');
    for (index, text) in lines.iter().enumerate().skip(first_line as usize) {
        if text.trim().is_empty() {
            continue;
        }
        if indent(text) <= base {
            if !decorated {
                break;
            }
            decorated = text.trim_start().starts_with('@');
        }
        end = index as u32 + 1;
    }
    end
}

/// Print a per-line table for every function named `wanted`; false when there is none.
pub fn print_lines(profile: &Profile, wanted: &str, out: &mut dyn Write) -> std::io::Result<bool> {
    let functions = function_lines(profile, wanted);
    if functions.is_empty() {
        return Ok(false);
    }
    let samples = profile.total_samples();
    writeln!(out, "{}", profile.describe())?;
    let pct = |n: u64| 100.0 * n as f64 / samples.max(1) as f64;
    for function in &functions {
        if function.filename.is_empty() {
            writeln!(
                out,
                "\n{}: total {:.1}%, own {:.1}% of all samples (not Python code: no lines)",
                function.name,
                pct(function.total),
                pct(function.own)
            )?;
            continue;
        }
        let source = profile.sources.lines(&function.filename);
        writeln!(
            out,
            "\n{} in {}:{}: total {:.1}%, own {:.1}% of all samples",
            function.name,
            display_path(&function.filename),
            function.first_line,
            pct(function.total),
            pct(function.own)
        )?;
        if source.is_none() {
            writeln!(
                out,
                "(source not found at {}: sampled lines only)",
                function.filename
            )?;
        } else if profile.sources.changed_since(&function.filename) {
            writeln!(
                out,
                "(source as recorded: {} has changed since)",
                function.filename
            )?;
        }
        writeln!(out, "{:>6} {:>7} {:>7}  source", "line", "own%", "total%")?;
        for (line, text) in shown_lines(function, source.as_deref()) {
            let counts = function.lines.get(&line);
            let share = |n: Option<u64>| n.map_or(String::new(), |n| format!("{:.1}%", pct(n)));
            writeln!(
                out,
                "{:>6} {:>7} {:>7}  {}",
                line,
                share(counts.map(|c| c.own)),
                share(counts.map(|c| c.total)),
                text.as_deref().unwrap_or("")
            )?;
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixtures::{add_stack, frame};
    use crate::report::ProfileInfo;

    /// Frames: 0 main line 20; 1 Worker.work line 3; 2 work line 4; 3 helper line 8;
    /// 4 work line 5.
    fn profile() -> Profile {
        let mut profile = Profile::new(ProfileInfo::default());
        profile.frames = vec![
            frame("main", 20, 19),
            frame("Worker.work", 3, 2),
            frame("Worker.work", 4, 2),
            frame("helper", 8, 7),
            frame("Worker.work", 5, 2),
        ];
        add_stack(&mut profile, 1, false, &[0, 1], 5);
        add_stack(&mut profile, 1, false, &[0, 2, 3], 3);
        // Recursion: line 4 calls work again, which runs line 5.
        add_stack(&mut profile, 1, false, &[0, 2, 4], 2);
        profile
    }

    #[test]
    fn lines_count_own_and_total_once_per_sample() {
        let functions = function_lines(&profile(), "work");
        assert_eq!(functions.len(), 1);
        let work = &functions[0];
        assert_eq!((work.own, work.total), (7, 10));
        let counts = |line| work.lines[&line];
        assert_eq!(counts(3), LineCounts { own: 5, total: 5 });
        assert_eq!(counts(4), LineCounts { own: 0, total: 5 });
        assert_eq!(counts(5), LineCounts { own: 2, total: 2 });
        assert!(function_lines(&profile(), "Worker.work").len() == 1);
        assert!(function_lines(&profile(), "ork").is_empty());
    }

    #[test]
    fn a_function_ends_where_its_indentation_does() {
        let source: Vec<String> = [
            "import x",
            "@decorator",
            "def f(a,",
            "      b):",
            "    y = 1",
            "",
            "    return y",
            "def g():",
            "    pass",
            "def h(): return 1",
            "def i():",
            "    return (x",
            "            for x in y)",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(function_end(&source, 2), 7);
        assert_eq!(function_end(&source, 8), 9);
        assert_eq!(function_end(&source, 10), 10);
        // A generator expression's code starts inside its function's body.
        assert_eq!(function_end(&source, 12), 13);
        let f = FunctionLines {
            name: "f".into(),
            filename: "f.py".into(),
            first_line: 2,
            own: 1,
            total: 1,
            lines: BTreeMap::from([(5, LineCounts { own: 1, total: 1 })]),
        };
        let shown = shown_lines(&f, Some(&source));
        assert_eq!(shown.first(), Some(&(2, Some("@decorator".to_string()))));
        assert_eq!(shown.len(), 6);
        assert_eq!(shown_lines(&f, None), vec![(5, None)]);
    }
}
