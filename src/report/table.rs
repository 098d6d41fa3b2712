//! The top-N table printed at the end of a recording: own and total time per function.

use std::io::Write;

use super::paths::{keep_end, short_path};
use super::Profile;

/// One function's share of the samples.
#[derive(Debug, Clone, PartialEq)]
pub struct FunctionRow {
    /// Function name.
    pub name: String,
    /// Source file.
    pub filename: String,
    /// First line of the function.
    pub first_line: u32,
    /// Samples in which it was the innermost frame.
    pub own: u64,
    /// Samples in which it was anywhere on the stack (counted once per sample).
    pub total: u64,
}

/// Own and total samples per function, sorted by own then total, descending.
pub fn function_rows(profile: &Profile) -> Vec<FunctionRow> {
    let counts = profile.counts_by(|frames, depth| {
        let f = profile.frame(frames[depth]);
        Some((f.name.as_str(), f.filename.as_str(), f.first_line))
    });
    let mut out: Vec<FunctionRow> = counts
        .into_iter()
        .map(|((name, filename, first_line), counts)| FunctionRow {
            name: name.to_string(),
            filename: filename.to_string(),
            first_line,
            own: counts.own,
            total: counts.total,
        })
        .collect();
    // Ties in a stable order, so that `record` and `report` print the same table.
    out.sort_by(|a, b| {
        (b.own, b.total).cmp(&(a.own, a.total)).then_with(|| {
            (&a.name, &a.filename, a.first_line).cmp(&(&b.name, &b.filename, b.first_line))
        })
    });
    out
}

/// Which count orders a table of functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TableOrder {
    /// Time in the function itself, then total.
    Own,
    /// Time in the function and what it called, then own.
    Total,
}

/// Print the `limit` functions with the most own (or total) time.
pub fn print_top(
    profile: &Profile,
    limit: usize,
    order: TableOrder,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    let total = profile.total_samples();
    writeln!(out, "{}", profile.describe())?;
    if total == 0 {
        return writeln!(out, "no Python stacks were sampled");
    }
    if let Some(idle) = profile.idle_summary() {
        writeln!(out, "{idle}")?;
    }
    writeln!(
        out,
        "{:>7} {:>7}  {:<40} file:line",
        "own%", "total%", "function"
    )?;
    let pct = |n: u64| 100.0 * n as f64 / total as f64;
    let mut rows = function_rows(profile);
    if order == TableOrder::Total {
        // Stable: rows of equal total keep their order by own time.
        rows.sort_by_key(|row| std::cmp::Reverse(row.total));
    }
    for row in rows.into_iter().take(limit) {
        writeln!(
            out,
            "{:>6.1}% {:>6.1}%  {:<40} {}",
            pct(row.own),
            pct(row.total),
            row.name,
            display_location(&row.filename, row.first_line),
        )?;
    }
    Ok(())
}

/// Where a function is, as tables show it: `path:line`, or the file's name alone for
/// a native function (first line 0, see `Frame::is_native`).
pub fn display_location(filename: &str, first_line: u32) -> String {
    match first_line {
        0 => display_path(filename),
        line => format!("{}:{line}", display_path(filename)),
    }
}

/// A source path as tables show it: short (see [`short_path`]), relative to the
/// working directory, and at most 60 characters, keeping the end.
pub fn display_path(path: &str) -> String {
    let cwd = std::env::current_dir().ok();
    keep_end(short_path(path, cwd.as_deref()), 60)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::ProfileInfo;
    use crate::symbolize::Frame;

    fn frame(name: &str) -> Frame {
        Frame {
            name: name.into(),
            filename: "f.py".into(),
            line: 1,
            first_line: 1,
        }
    }

    #[test]
    fn own_and_total_count_recursion_once() {
        let mut profile = Profile::new(ProfileInfo::default());
        profile.frames = vec![frame("main"), frame("fib")];
        let key = |frames: Vec<u32>| crate::report::profile::StackKey {
            thread: crate::sampler::ThreadKey {
                pid: 1,
                python_id: 1,
                os_id: None,
            },
            idle: false,
            wait: None,
            frames,
        };
        profile.stacks.insert(key(vec![0, 1, 1, 1]), 3);
        profile.stacks.insert(key(vec![0]), 1);
        let rows = function_rows(&profile);
        assert_eq!(rows[0].name, "fib");
        assert_eq!((rows[0].own, rows[0].total), (3, 3));
        assert_eq!((rows[1].own, rows[1].total), (1, 4));
        // Ordered by total, main (its callee's time included) comes first.
        let table = |order| {
            let mut out = Vec::new();
            print_top(&profile, 10, order, &mut out).unwrap();
            let text = String::from_utf8(out).unwrap();
            let names: Vec<String> = text
                .lines()
                .skip(2)
                .map(|row| row.split_whitespace().nth(2).unwrap().to_string())
                .collect();
            names
        };
        assert_eq!(table(TableOrder::Own), ["fib", "main"]);
        assert_eq!(table(TableOrder::Total), ["main", "fib"]);
    }

    #[test]
    fn the_table_says_how_much_was_idle_and_waiting_for_what() {
        use crate::report::fixtures::{add_stack, sample_at, waiting_sample_at};
        use crate::target::activity::WaitKind;
        let mut profile = Profile::new(ProfileInfo::default());
        profile.frames = vec![frame("main")];
        add_stack(&mut profile, 1, false, &[0], 5);
        assert_eq!(profile.idle_summary(), None);
        waiting_sample_at(&mut profile, 1, WaitKind::Lock, &[0], 0);
        for _ in 0..3 {
            waiting_sample_at(&mut profile, 1, WaitKind::Gil, &[0], 0);
        }
        sample_at(&mut profile, 1, true, &[0], 0);
        let mut out = Vec::new();
        print_top(&profile, 10, TableOrder::Own, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let line = "idle 50.0% of samples: 30.0% gil, 10.0% lock, 10.0% unknown";
        assert_eq!(text.lines().nth(1), Some(line), "{text}");
    }
}
