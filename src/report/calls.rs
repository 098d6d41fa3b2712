//! Callers and callees of one function: where its time comes from and where it goes,
//! the view `pstats` gives with `print_callers` and `print_callees`.

use std::io::Write;

use super::lines::names_function;
use super::table::display_location;
use super::Profile;
use crate::symbolize::{Frame, FrameId};

/// A function as the call view tells functions apart: name, file, first line.
pub type FunctionKey = (String, String, u32);

/// One function's callers and callees, by samples.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionCalls {
    /// The function.
    pub function: FunctionKey,
    /// Samples in which it was the innermost frame.
    pub own: u64,
    /// Samples in which it was anywhere on the stack.
    pub total: u64,
    /// Samples in which it was a thread's first frame, called by no Python code.
    pub as_root: u64,
    /// Each caller with the samples in which it called the function (once per
    /// sample), most first.
    pub callers: Vec<(FunctionKey, u64)>,
    /// Each function it called with the samples in which it did (once per sample),
    /// most first.
    pub callees: Vec<(FunctionKey, u64)>,
}

fn key_of(frame: &Frame) -> FunctionKey {
    (frame.name.clone(), frame.filename.clone(), frame.first_line)
}

/// The callers and callees of every function named `wanted` (see
/// [`names_function`]), most total samples first.
pub fn function_calls(profile: &Profile, wanted: &str) -> Vec<FunctionCalls> {
    let frame_at = |frames: &[FrameId], depth: usize| profile.frame(frames[depth]);
    let is_wanted = |frames: &[FrameId], depth: usize| {
        let frame = frame_at(frames, depth);
        names_function(frame, wanted).then(|| key_of(frame))
    };
    let functions = profile.counts_by(is_wanted);
    // (function, caller) pairs; a thread's first frame has no caller.
    let callers = profile.counts_by(|frames, depth| {
        let function = is_wanted(frames, depth)?;
        let caller = depth.checked_sub(1).map(|up| key_of(frame_at(frames, up)));
        Some((function, caller))
    });
    let callees = profile.counts_by(|frames, depth| {
        let function = is_wanted(frames, depth.checked_sub(1)?)?;
        Some((function, key_of(frame_at(frames, depth))))
    });
    let mut out: Vec<FunctionCalls> = functions
        .into_iter()
        .map(|(function, counts)| {
            let of_this = |key: &FunctionKey| key == &function;
            let mut by_caller: Vec<(FunctionKey, u64)> = callers
                .iter()
                .filter(|((f, _), _)| of_this(f))
                .filter_map(|((_, caller), counts)| Some((caller.clone()?, counts.total)))
                .collect();
            let as_root = callers
                .iter()
                .filter(|((f, caller), _)| of_this(f) && caller.is_none())
                .map(|(_, counts)| counts.total)
                .sum();
            let mut by_callee: Vec<(FunctionKey, u64)> = callees
                .iter()
                .filter(|((f, _), _)| of_this(f))
                .map(|((_, callee), counts)| (callee.clone(), counts.total))
                .collect();
            by_caller.sort_by(most_first);
            by_callee.sort_by(most_first);
            FunctionCalls {
                function,
                own: counts.own,
                total: counts.total,
                as_root,
                callers: by_caller,
                callees: by_callee,
            }
        })
        .collect();
    out.sort_by(|a, b| {
        b.total
            .cmp(&a.total)
            .then_with(|| a.function.cmp(&b.function))
    });
    out
}

/// Most samples first; ties by function, so that the order is the same every time.
fn most_first(a: &(FunctionKey, u64), b: &(FunctionKey, u64)) -> std::cmp::Ordering {
    b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0))
}

/// Print the callers and callees of every function named `wanted`; false when there
/// is none.
pub fn print_calls(profile: &Profile, wanted: &str, out: &mut dyn Write) -> std::io::Result<bool> {
    let functions = function_calls(profile, wanted);
    if functions.is_empty() {
        return Ok(false);
    }
    let samples = profile.total_samples();
    let pct = |n: u64| 100.0 * n as f64 / samples.max(1) as f64;
    let row = |out: &mut dyn Write, share: u64, (name, file, line): &FunctionKey| {
        let location = display_location(file, *line);
        writeln!(out, "  {:>6.1}%  {name} ({location})", pct(share))
    };
    writeln!(out, "{}", profile.describe())?;
    for calls in &functions {
        let (name, file, line) = &calls.function;
        writeln!(
            out,
            "\n{name} in {}: total {:.1}%, own {:.1}% of all samples",
            display_location(file, *line),
            pct(calls.total),
            pct(calls.own)
        )?;
        writeln!(
            out,
            "called by (share of all samples in which each called it):"
        )?;
        for (caller, count) in &calls.callers {
            row(out, *count, caller)?;
        }
        if calls.as_root > 0 {
            writeln!(
                out,
                "  {:>6.1}%  (no caller: a thread's first frame)",
                pct(calls.as_root)
            )?;
        }
        writeln!(out, "calls (share of all samples in which it called each):")?;
        for (callee, count) in &calls.callees {
            row(out, *count, callee)?;
        }
        if calls.callees.is_empty() {
            writeln!(out, "  (nothing: all its time is its own)")?;
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixtures::{add_stack, frame};
    use crate::report::ProfileInfo;

    fn key(name: &str, first_line: u32) -> FunctionKey {
        (name.into(), "w.py".into(), first_line)
    }

    /// 0 main; 1 a; 2 b; 3 work (line 11); 4 work (line 12); 5 spin.
    fn profile() -> Profile {
        let mut profile = Profile::new(ProfileInfo::default());
        profile.frames = vec![
            frame("main", 2, 1),
            frame("a", 5, 4),
            frame("b", 8, 7),
            frame("work", 11, 10),
            frame("work", 12, 10),
            frame("spin", 15, 14),
        ];
        add_stack(&mut profile, 1, false, &[0, 1, 3, 5], 6);
        add_stack(&mut profile, 1, false, &[0, 2, 4], 3);
        // Recursion: work calls itself, then spin.
        add_stack(&mut profile, 1, false, &[0, 2, 3, 4, 5], 2);
        // A thread whose first frame is work.
        add_stack(&mut profile, 2, false, &[3], 1);
        profile
    }

    #[test]
    fn callers_and_callees_count_each_sample_once() {
        let calls = function_calls(&profile(), "work");
        assert_eq!(calls.len(), 1);
        let work = &calls[0];
        assert_eq!(work.function, key("work", 10));
        assert_eq!((work.own, work.total, work.as_root), (4, 12, 1));
        assert_eq!(
            work.callers,
            vec![(key("a", 4), 6), (key("b", 7), 5), (key("work", 10), 2)]
        );
        assert_eq!(
            work.callees,
            vec![(key("spin", 14), 8), (key("work", 10), 2)]
        );
        let spin = &function_calls(&profile(), "spin")[0];
        assert_eq!(spin.callers, vec![(key("work", 10), 8)]);
        assert!(spin.callees.is_empty());
        assert!(function_calls(&profile(), "nothing").is_empty());
    }

    #[test]
    fn the_view_lists_callers_then_callees() {
        let mut text = Vec::new();
        assert!(print_calls(&profile(), "work", &mut text).unwrap());
        let text = String::from_utf8(text).unwrap();
        let lines: Vec<&str> = text.lines().skip(1).collect();
        assert_eq!(
            lines,
            [
                "",
                "work in w.py:10: total 100.0%, own 33.3% of all samples",
                "called by (share of all samples in which each called it):",
                "    50.0%  a (w.py:4)",
                "    41.7%  b (w.py:7)",
                "    16.7%  work (w.py:10)",
                "     8.3%  (no caller: a thread's first frame)",
                "calls (share of all samples in which it called each):",
                "    66.7%  spin (w.py:14)",
                "    16.7%  work (w.py:10)",
            ]
        );
    }
}
