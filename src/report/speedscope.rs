//! speedscope JSON (<https://www.speedscope.app>), the format py-spy users open in
//! speedscope's left-heavy and sandwich views.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;

use serde::Serialize;

use super::{Profile, Renderer};
use crate::sampler::ThreadKey;

/// One "sampled" profile per thread. The profile is aggregated, so each distinct stack
/// appears once with its weight: speedscope's left-heavy and sandwich views are exact,
/// its time-order view shows equal stacks together rather than in time order.
pub struct Speedscope;

impl Renderer for Speedscope {
    fn render(&self, profile: &Profile, out: &mut dyn Write) -> anyhow::Result<()> {
        serde_json::to_writer(&mut *out, &build(profile))?;
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
    /// Function name; an idle thread's innermost frame ends in ` [idle]`.
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

/// The speedscope file for `profile`.
pub fn build(profile: &Profile) -> File {
    let seconds = profile.seconds_per_sample();
    let mut frames: Vec<FrameEntry> = Vec::new();
    let mut frame_index: HashMap<FrameEntry, usize> = HashMap::new();
    let mut index_of = |entry: FrameEntry| {
        *frame_index.entry(entry.clone()).or_insert_with(|| {
            frames.push(entry);
            frames.len() - 1
        })
    };
    // Threads and, within each, stacks in a stable order.
    let mut threads: BTreeMap<ThreadKey, BTreeMap<Vec<usize>, u64>> = BTreeMap::new();
    for (stack, &count) in &profile.stacks {
        let mut indices = Vec::with_capacity(stack.frames.len());
        for (depth, &id) in stack.frames.iter().enumerate() {
            let frame = profile.frame(id);
            let idle_leaf = stack.idle && depth + 1 == stack.frames.len();
            indices.push(index_of(FrameEntry {
                name: if idle_leaf {
                    format!("{} [idle]", frame.name)
                } else {
                    frame.name.clone()
                },
                file: frame.filename.clone(),
                line: frame.line,
            }));
        }
        *threads
            .entry(stack.thread)
            .or_default()
            .entry(indices)
            .or_default() += count;
    }
    let profiles = threads
        .into_iter()
        .map(|(thread, stacks)| {
            let (samples, weights): (Vec<_>, Vec<_>) = stacks
                .into_iter()
                .map(|(stack, count)| (stack, count as f64 * seconds))
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
    File {
        schema: "https://www.speedscope.app/file-format-schema.json",
        shared: Shared { frames },
        profiles,
        name: format!("pyscry: {}", profile.describe()),
        exporter: format!("pyscry {}", env!("CARGO_PKG_VERSION")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixtures::{add_stack, frame};
    use crate::report::ProfileInfo;

    #[test]
    fn each_thread_gets_its_stacks_with_weights_in_seconds() {
        let mut profile = Profile::new(ProfileInfo {
            rate_hz: 100.0,
            ..ProfileInfo::default()
        });
        profile.frames = vec![frame("main", 3, 1), frame("work", 7, 1)];
        profile.thread_names.insert((1, 1), "MainThread".into());
        add_stack(&mut profile, 1, false, &[0, 1], 3);
        add_stack(&mut profile, 1, false, &[0], 1);
        add_stack(&mut profile, 2, true, &[0, 1], 2);
        let file = build(&profile);
        let names: Vec<&str> = file.shared.frames.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names.len(), 3, "{names:?}");
        assert!(names.contains(&"work [idle]"));
        assert_eq!(file.profiles.len(), 2);
        let main = &file.profiles[0];
        assert_eq!(main.name, "thread MainThread (11)");
        assert_eq!(main.samples.len(), 2);
        assert!((main.end_value - 0.04).abs() < 1e-9);
        let work = main.samples.iter().position(|s| s.len() == 2).unwrap();
        assert!((main.weights[work] - 0.03).abs() < 1e-9);
        assert_eq!(file.shared.frames[main.samples[work][1]].line, 7);
        assert_eq!(file.profiles[1].name, "thread ? (12)");
    }
}
