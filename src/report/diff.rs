//! Comparing two profiles, before and after a change: which functions' shares of the
//! samples moved, and a differential flamegraph.
//!
//! Shares, not sample counts, are compared: two recordings of different lengths or
//! load compare fairly.

use std::collections::HashMap;
use std::io::Write;

use super::collapsed::folded_lines_naming;
use super::profile::label_file_names;
use super::table::{display_location, function_rows};
use super::{flamegraph, Profile};

/// One function's shares before and after, in percent of each profile's samples.
#[derive(Debug, Clone, PartialEq)]
pub struct FunctionChange {
    /// Function name.
    pub name: String,
    /// Source file.
    pub filename: String,
    /// First line of the function.
    pub first_line: u32,
    /// Own share before, percent.
    pub own_before: f64,
    /// Own share after, percent.
    pub own_after: f64,
    /// Total share before, percent.
    pub total_before: f64,
    /// Total share after, percent.
    pub total_after: f64,
}

impl FunctionChange {
    /// Change of the own share, in percentage points.
    pub fn own_change(&self) -> f64 {
        self.own_after - self.own_before
    }

    /// Change of the total share, in percentage points.
    pub fn total_change(&self) -> f64 {
        self.total_after - self.total_before
    }

    /// The larger of the two changes, in percentage points either way.
    pub fn largest_change(&self) -> f64 {
        self.own_change().abs().max(self.total_change().abs())
    }
}

/// Every function of either profile with its shares in both, the largest change (of
/// own or total share) first.
pub fn function_changes(before: &Profile, after: &Profile) -> Vec<FunctionChange> {
    let mut changes: HashMap<(String, String, u32), FunctionChange> = HashMap::new();
    for (profile, is_after) in [(before, false), (after, true)] {
        let samples = profile.total_samples().max(1) as f64;
        for row in function_rows(profile) {
            let key = (row.name.clone(), row.filename.clone(), row.first_line);
            let change = changes.entry(key).or_insert_with(|| FunctionChange {
                name: row.name,
                filename: row.filename,
                first_line: row.first_line,
                own_before: 0.0,
                own_after: 0.0,
                total_before: 0.0,
                total_after: 0.0,
            });
            let (own, total) = (
                100.0 * row.own as f64 / samples,
                100.0 * row.total as f64 / samples,
            );
            if is_after {
                (change.own_after, change.total_after) = (own, total);
            } else {
                (change.own_before, change.total_before) = (own, total);
            }
        }
    }
    let mut out: Vec<FunctionChange> = changes.into_values().collect();
    out.sort_by(|a, b| {
        b.largest_change()
            .total_cmp(&a.largest_change())
            .then_with(|| {
                (&a.name, &a.filename, a.first_line).cmp(&(&b.name, &b.filename, b.first_line))
            })
    });
    out
}

/// Print the `limit` functions whose shares moved most.
pub fn print_changes(
    before: &Profile,
    after: &Profile,
    limit: usize,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    writeln!(out, "before: {}", before.describe())?;
    writeln!(out, "after:  {}", after.describe())?;
    writeln!(
        out,
        "{:>7} {:>7} {:>7}  {:>7} {:>7} {:>7}  {:<40} file:line",
        "own%", "→", "change", "total%", "→", "change", "function"
    )?;
    for change in function_changes(before, after).into_iter().take(limit) {
        writeln!(
            out,
            "{:>6.1}% {:>6.1}% {:>+7.1}  {:>6.1}% {:>6.1}% {:>+7.1}  {:<40} {}",
            change.own_before,
            change.own_after,
            change.own_change(),
            change.total_before,
            change.total_after,
            change.total_change(),
            change.name,
            display_location(&change.filename, change.first_line),
        )?;
    }
    Ok(())
}

/// Folded lines with two counts, `stack BEFORE AFTER`, the input of differential
/// flamegraphs (flamegraph.pl's `difffolded`), in stack order. The before counts are scaled to the
/// after profile's total, so that the colours show shares that moved.
pub fn differential_lines(before: &Profile, after: &Profile) -> anyhow::Result<Vec<String>> {
    // A file is named alike on both sides, or their frames would not match up.
    let names = label_file_names(&[after, before]);
    let join = |profile: &Profile| {
        let mut text = folded_lines_naming(profile, &names).join("\n");
        text.push('\n');
        text
    };
    let options = inferno::differential::Options {
        normalize: true,
        strip_hex: false,
    };
    let mut merged = Vec::new();
    inferno::differential::from_readers(
        options,
        join(before).as_bytes(),
        join(after).as_bytes(),
        &mut merged,
    )?;
    // inferno lists the stacks in hash order: sorted, the output is the same each run.
    let mut lines: Vec<String> = String::from_utf8(merged)?
        .lines()
        .filter(|line| !line.is_empty())
        .map(str::to_string)
        .collect();
    lines.sort();
    Ok(lines)
}

/// A differential flamegraph: the after profile's stacks, red where a frame's share
/// grew since before, blue where it shrank.
pub fn draw_flamegraph(
    before: &Profile,
    after: &Profile,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let title = format!("pyscry diff: {}", after.info.command);
    let subtitle = format!(
        "red: more than before, blue: less. Before: {}. After: {}",
        before.describe(),
        after.describe()
    );
    flamegraph::draw(&title, &subtitle, &differential_lines(before, after)?, out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixtures::{add_stack, frame};
    use crate::report::ProfileInfo;

    /// main → work and main → other, `work` and `other` samples each.
    fn profile(work: u64, other: u64) -> Profile {
        let mut profile = Profile::new(ProfileInfo::default());
        profile.frames = vec![
            frame("main", 2, 1),
            frame("work", 6, 5),
            frame("other", 9, 8),
        ];
        add_stack(&mut profile, 1, false, &[0, 1], work);
        add_stack(&mut profile, 1, false, &[0, 2], other);
        profile
    }

    #[test]
    fn shares_are_compared_not_counts() {
        // Twice as long a recording, and work's share went from 25 % to 75 %.
        let (before, after) = (profile(10, 30), profile(60, 20));
        let changes = function_changes(&before, &after);
        let names: Vec<&str> = changes.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["other", "work", "main"]);
        let work = &changes[1];
        assert_eq!((work.own_before, work.own_after), (25.0, 75.0));
        assert_eq!(work.own_change(), 50.0);
        assert_eq!(changes[0].own_change(), -50.0);
        assert_eq!(changes[2].total_change(), 0.0);
        let mut table = Vec::new();
        print_changes(&before, &after, 10, &mut table).unwrap();
        let table = String::from_utf8(table).unwrap();
        assert!(table.contains(" +50.0 "), "{table}");
    }

    #[test]
    fn differential_lines_scale_before_to_after() {
        let lines = differential_lines(&profile(10, 30), &profile(60, 20)).unwrap();
        assert_eq!(
            lines,
            [
                "main (w.py:2);other (w.py:9) 60 20",
                "main (w.py:2);work (w.py:6) 20 60"
            ]
        );
    }

    #[test]
    fn a_file_is_named_alike_on_both_sides() {
        // Only the after profile has a second file that shortens to `w.py`: both
        // sides name the first one whole, so its frames still match up.
        let first = "/v/lib/python3.12/w.py";
        let mut before = profile(10, 30);
        let mut after = profile(60, 20);
        for frame in before.frames.iter_mut().chain(after.frames.iter_mut()) {
            frame.filename = first.into();
        }
        after.frames[2].filename = "/v/lib/python3.11/w.py".into();
        let lines = differential_lines(&before, &after).unwrap();
        let work = format!("main ({first}:2);work ({first}:6) 20 60");
        assert!(lines.contains(&work), "{lines:#?}");
    }
}
