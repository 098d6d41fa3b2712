//! pstats files, as `cProfile` writes them: read by `pstats.Stats`, snakeviz, tuna and
//! gprof2dot, so a cProfile user keeps their tools.
//!
//! The file is Python's `marshal` serialization of one dict,
//! `{(file, line, name): (primitive calls, calls, own time, total time, callers)}`,
//! where `callers` maps each calling function's key to the same four numbers for the
//! calls from it. A sampler sees no calls: pyscry puts sample counts where cProfile
//! puts call counts, and the time the samples stand for (one period each) where it
//! puts measured times.

use std::collections::HashMap;
use std::io::Write;

pub use super::profile::Counts;
use super::{Profile, Renderer};

/// A `.pstats` file for `pstats.Stats(path)`.
pub struct Pstats;

impl Renderer for Pstats {
    fn render(&self, profile: &Profile, out: &mut dyn Write) -> anyhow::Result<()> {
        let mut bytes = Vec::new();
        let seconds = profile.seconds_per_sample();
        write_stats(&function_stats(profile), seconds, &mut bytes);
        out.write_all(&bytes)?;
        Ok(())
    }
}

/// A function as pstats keys it: file, first line, name.
pub type FunctionKey = (String, u32, String);

/// One function's counts and those of its calls from each caller.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FunctionStats {
    /// Over every sample.
    pub counts: Counts,
    /// Per calling function: the samples in which that caller called it (once per
    /// sample), and those in which it was also the innermost frame.
    pub callers: HashMap<FunctionKey, Counts>,
}

/// Per-function counts, with callers, from every stack of `profile`.
pub fn function_stats(profile: &Profile) -> HashMap<FunctionKey, FunctionStats> {
    let key = |id| {
        let frame = profile.frame(id);
        // cProfile's file name for what is not Python code (`<GC>` has none).
        let filename = match frame.filename.as_str() {
            "" => "~".to_string(),
            name => name.to_string(),
        };
        (filename, frame.first_line, frame.name.clone())
    };
    let functions = profile.counts_by(|frames, depth| Some(key(frames[depth])));
    // A call counts as the callee's frame with its caller's.
    let calls = profile.counts_by(|frames, depth| {
        let caller = frames[..depth].last()?;
        Some((key(frames[depth]), key(*caller)))
    });
    let mut stats: HashMap<FunctionKey, FunctionStats> = functions
        .into_iter()
        .map(|(function, counts)| {
            let stats = FunctionStats {
                counts,
                callers: HashMap::new(),
            };
            (function, stats)
        })
        .collect();
    for ((callee, caller), counts) in calls {
        if let Some(callee) = stats.get_mut(&callee) {
            callee.callers.insert(caller, counts);
        }
    }
    stats
}

/// Marshal `stats` (format version 2+, which every Python 3 reads) into `out`.
fn write_stats(stats: &HashMap<FunctionKey, FunctionStats>, seconds: f64, out: &mut Vec<u8>) {
    let mut functions: Vec<_> = stats.iter().collect();
    functions.sort_by(|a, b| a.0.cmp(b.0));
    out.push(b'{');
    for (function, stats) in functions {
        marshal_key(function, out);
        marshal_tuple_header(5, out);
        marshal_counts(stats.counts, seconds, out);
        let mut callers: Vec<_> = stats.callers.iter().collect();
        callers.sort_by(|a, b| a.0.cmp(b.0));
        out.push(b'{');
        for (caller, counts) in callers {
            marshal_key(caller, out);
            marshal_tuple_header(4, out);
            marshal_counts(*counts, seconds, out);
        }
        out.push(b'0');
    }
    out.push(b'0');
}

/// `(file, line, name)`.
fn marshal_key((filename, line, name): &FunctionKey, out: &mut Vec<u8>) {
    marshal_tuple_header(3, out);
    marshal_str(filename, out);
    marshal_int(i64::from(*line), out);
    marshal_str(name, out);
}

/// Primitive calls, calls, own time, total time: the first four fields of an entry.
fn marshal_counts(counts: Counts, seconds: f64, out: &mut Vec<u8>) {
    marshal_int(counts.total as i64, out);
    marshal_int(counts.total as i64, out);
    marshal_float(counts.own as f64 * seconds, out);
    marshal_float(counts.total as f64 * seconds, out);
}

fn marshal_tuple_header(len: u32, out: &mut Vec<u8>) {
    out.push(b'(');
    out.extend(len.to_le_bytes());
}

fn marshal_str(text: &str, out: &mut Vec<u8>) {
    out.push(b'u');
    out.extend((text.len() as u32).to_le_bytes());
    out.extend(text.as_bytes());
}

/// An int: 32-bit where it fits (every count of a real recording), else clamped.
fn marshal_int(value: i64, out: &mut Vec<u8>) {
    let value = value.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32;
    out.push(b'i');
    out.extend(value.to_le_bytes());
}

fn marshal_float(value: f64, out: &mut Vec<u8>) {
    out.push(b'g');
    out.extend(value.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixtures::{add_stack, frame};
    use crate::report::ProfileInfo;

    #[test]
    fn callers_and_recursion_are_counted_once_per_sample() {
        let mut profile = Profile::new(ProfileInfo::default());
        profile.frames = vec![frame("main", 1, 1), frame("fib", 5, 5)];
        add_stack(&mut profile, 1, false, &[0, 1, 1, 1], 3);
        add_stack(&mut profile, 1, false, &[0], 1);
        let stats = function_stats(&profile);
        let main = ("w.py".to_string(), 1, "main".to_string());
        let fib = ("w.py".to_string(), 5, "fib".to_string());
        assert_eq!(stats[&main].counts, Counts { own: 1, total: 4 });
        assert_eq!(stats[&fib].counts, Counts { own: 3, total: 3 });
        assert_eq!(stats[&fib].callers[&main], Counts { own: 0, total: 3 });
        assert_eq!(stats[&fib].callers[&fib], Counts { own: 3, total: 3 });
        assert!(stats[&main].callers.is_empty());
    }

    #[test]
    fn marshalled_values_have_their_type_codes() {
        let mut out = Vec::new();
        marshal_key(&("a.py".into(), 7, "f".into()), &mut out);
        let expected: Vec<u8> = [
            &b"(\x03\x00\x00\x00u\x04\x00\x00\x00a.py"[..],
            b"i\x07\x00\x00\x00u\x01\x00\x00\x00f",
        ]
        .concat();
        assert_eq!(out, expected);
        out.clear();
        marshal_float(0.5, &mut out);
        assert_eq!(out, b"g\x00\x00\x00\x00\x00\x00\xe0\x3f");
    }
}
