//! speedscope JSON (<https://www.speedscope.app>), the format py-spy users open in
//! speedscope's left-heavy and sandwich views.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;

use serde::Serialize;

use super::{Profile, Renderer};
use crate::sampler::ThreadKey;

/// One "sampled" profile per thread, its samples in time order (consecutive equal
/// stacks as one, weighted by their count): speedscope's time-order view shows the
/// run as it happened, its left-heavy and sandwich views the totals. It needs the
/// profile's timeline.
pub struct Speedscope;

impl Renderer for Speedscope {
    fn render(&self, profile: &Profile, out: &mut dyn Write) -> anyhow::Result<()> {
        serde_json::to_writer(&mut *out, &build(profile)?)?;
        writeln!(out)?;
        Ok(())
    }
}

/// The file's top level.
#[derive(Debug, Serialize)]
pub struct File {
    /// speedscope's schema address.
    #[serde(rename = "$schema")]
    pub schema: &'static str,
    /// Frames the profiles index into.
    pub shared: Shared,
    /// One per thread.
    pub profiles: Vec<SampledProfile>,
    /// Shown as the title.
    pub name: String,
    /// What wrote it.
    pub exporter: String,
}

/// The frame table.
#[derive(Debug, Serialize)]
pub struct Shared {
    /// Every frame, by index.
    pub frames: Vec<FrameEntry>,
}

/// A frame: function, file and line.
#[derive(Debug, Serialize, PartialEq, Eq, Hash, Clone)]
pub struct FrameEntry {
    /// Function name; an idle thread's innermost frame ends in ` [idle]` (or
    /// ` [idle: lock]`, see [`crate::report::profile::StackKey::idle_mark`]).
    pub name: String,
    /// Source file.
    pub file: String,
    /// Line executed.
    pub line: u32,
}

/// One thread's stacks with their weights.
#[derive(Debug, Serialize)]
pub struct SampledProfile {
    /// Always `sampled`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// `thread NAME (tid)`.
    pub name: String,
    /// Unit of the weights.
    pub unit: &'static str,
    /// Start of the value range.
    #[serde(rename = "startValue")]
    pub start_value: f64,
    /// End of the value range: the sum of the weights.
    #[serde(rename = "endValue")]
    pub end_value: f64,
    /// Stacks as frame indices, root first.
    pub samples: Vec<Vec<usize>>,
    /// Seconds each stack stands for.
    pub weights: Vec<f64>,
}

/// The speedscope file for `profile`, which must have a timeline.
pub fn build(profile: &Profile) -> anyhow::Result<File> {
    let timeline = profile
        .timeline
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("speedscope output needs the samples in time order"))?;
    let seconds = profile.seconds_per_sample();
    let mut frames: Vec<FrameEntry> = Vec::new();
    let mut frame_index: HashMap<FrameEntry, usize> = HashMap::new();
    // Each distinct stack as frame indices, root first.
    let stacks: Vec<Vec<usize>> = timeline
        .stacks()
        .iter()
        .map(|stack| {
            let depth = stack.frames.len();
            let entries = stack.frames.iter().enumerate().map(|(at, &id)| {
                let frame = profile.frame(id);
                let mark = stack.idle_mark().filter(|_| at + 1 == depth);
                FrameEntry {
                    name: format!("{}{}", frame.name, mark.unwrap_or("")),
                    file: frame.filename.clone(),
                    line: profile.shown_line(frame),
                }
            });
            entries
                .map(|entry| {
                    *frame_index.entry(entry.clone()).or_insert_with(|| {
                        frames.push(entry);
                        frames.len() - 1
                    })
                })
                .collect()
        })
        .collect();
    // Per thread, in a stable order: runs of equal stacks, in time order.
    let mut threads: BTreeMap<ThreadKey, Vec<(u32, u64)>> = BTreeMap::new();
    for sample in timeline.samples() {
        let runs = threads
            .entry(timeline.stacks()[sample.stack as usize].thread)
            .or_default();
        match runs.last_mut() {
            Some((stack, count)) if *stack == sample.stack => *count += 1,
            _ => runs.push((sample.stack, 1)),
        }
    }
    let profiles = threads
        .into_iter()
        .map(|(thread, runs)| {
            let (samples, weights): (Vec<_>, Vec<_>) = runs
                .into_iter()
                .map(|(stack, count)| (stacks[stack as usize].clone(), count as f64 * seconds))
                .unzip();
            SampledProfile {
                kind: "sampled",
                name: profile.thread_label(&thread),
                unit: "seconds",
                start_value: 0.0,
                end_value: weights.iter().sum(),
                samples,
                weights,
            }
        })
        .collect();
    Ok(File {
        schema: "https://www.speedscope.app/file-format-schema.json",
        shared: Shared { frames },
        profiles,
        name: format!("pyscry: {}", profile.describe()),
        exporter: format!("pyscry {}", env!("CARGO_PKG_VERSION")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixtures::{frame, sample_at};
    use crate::report::ProfileInfo;

    #[test]
    fn each_thread_gets_its_runs_of_stacks_in_time_order_weighted_in_seconds() {
        let mut profile = Profile::new(ProfileInfo {
            rate_hz: 100.0,
            ..ProfileInfo::default()
        });
        profile.keep_timeline();
        profile.frames = vec![frame("main", 3, 1), frame("work", 7, 1)];
        profile.thread_names.insert((1, 1), "MainThread".into());
        for (time_ms, frames) in [(0, &[0, 1][..]), (10, &[0, 1]), (20, &[0]), (30, &[0, 1])] {
            sample_at(&mut profile, 1, false, frames, time_ms);
            sample_at(&mut profile, 2, true, &[0, 1], time_ms);
        }
        let file = build(&profile).unwrap();
        let names: Vec<&str> = file.shared.frames.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["main", "work", "work [idle]"]);
        assert_eq!(file.profiles.len(), 2);
        let main = &file.profiles[0];
        assert_eq!(main.name, "thread MainThread (11)");
        assert_eq!(main.samples, [vec![0, 1], vec![0], vec![0, 1]]);
        let weights: Vec<f64> = main.weights.iter().map(|w| (w * 1e3).round()).collect();
        assert_eq!(weights, [20.0, 10.0, 10.0]);
        assert!((main.end_value - 0.04).abs() < 1e-9);
        assert_eq!(file.shared.frames[main.samples[0][1]].line, 7);
        let idle = &file.profiles[1];
        assert_eq!(idle.name, "thread ? (12)");
        assert_eq!(idle.samples, [vec![0, 2]]);
    }

    #[test]
    fn without_a_timeline_there_is_no_time_order_to_show() {
        assert!(build(&Profile::default()).is_err());
    }
}
