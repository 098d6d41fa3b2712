//! A profile: every distinct stack with its sample count, plus what produced it.

use std::collections::HashMap;

use crate::sampler::{Sample, SamplerEvent};
use crate::symbolize::{Frame, FrameId};

/// What produced a profile, shown in every output.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ProfileInfo {
    /// Target process id.
    pub pid: u32,
    /// Target command line.
    pub command: String,
    /// Interpreter, e.g. `CPython 3.11.7`.
    pub python: String,
    /// Sampling mode.
    pub mode: String,
    /// Requested ticks per second.
    pub rate_hz: f64,
    /// Wall-clock seconds sampled.
    pub duration_secs: f64,
    /// Ticks at which the target was read.
    pub ticks: u64,
    /// Stacks recorded.
    pub samples: u64,
    /// Stacks dropped because they could not be read consistently.
    pub errors: u64,
    /// Ticks skipped because the sampler fell behind.
    pub dropped_ticks: u64,
}

/// Aggregated stacks.
#[derive(Debug, Clone, Default)]
pub struct Profile {
    /// What produced it.
    pub info: ProfileInfo,
    /// Frame table, indexed by [`FrameId`].
    pub frames: Vec<Frame>,
    /// Sample count per stack; stacks are root first.
    pub stacks: HashMap<Vec<FrameId>, u64>,
}

impl Profile {
    /// An empty profile.
    pub fn new(info: ProfileInfo) -> Profile {
        Profile {
            info,
            ..Profile::default()
        }
    }

    /// Take one event from the sampler.
    pub fn add_event(&mut self, event: SamplerEvent) {
        match event {
            SamplerEvent::NewFrame(id, frame) => {
                let index = id as usize;
                if self.frames.len() <= index {
                    self.frames.resize(index + 1, Frame::default());
                }
                self.frames[index] = frame;
            }
            SamplerEvent::Sample(sample) => self.add_sample(&sample),
        }
    }

    /// Count one stack.
    pub fn add_sample(&mut self, sample: &Sample) {
        let root_first: Vec<FrameId> = sample.frames.iter().rev().copied().collect();
        *self.stacks.entry(root_first).or_default() += 1;
    }

    /// The frame with id `id`.
    pub fn frame(&self, id: FrameId) -> &Frame {
        &self.frames[id as usize]
    }

    /// Total samples over all stacks.
    pub fn total_samples(&self) -> u64 {
        self.stacks.values().sum()
    }

    /// Stacks with their counts, sorted root first for stable output.
    pub fn sorted_stacks(&self) -> Vec<(&[FrameId], u64)> {
        let mut stacks: Vec<_> = self
            .stacks
            .iter()
            .map(|(stack, &count)| (stack.as_slice(), count))
            .collect();
        stacks.sort_by(|a, b| {
            let key = |s: &[FrameId]| s.iter().map(|&f| self.frame(f)).collect::<Vec<_>>();
            key(a.0).cmp(&key(b.0))
        });
        stacks
    }

    /// A frame's label in stack-based outputs: `name (file:line)`.
    pub fn label(&self, id: FrameId) -> String {
        let frame = self.frame(id);
        format!("{} ({}:{})", frame.name, frame.filename, frame.line).replace(';', ":")
    }

    /// A one-line description of how the profile was made.
    pub fn describe(&self) -> String {
        let i = &self.info;
        format!(
            "{} samples, {} mode, {} Hz, {:.1} s, pid {}, {}",
            self.total_samples(),
            i.mode,
            i.rate_hz,
            i.duration_secs,
            i.pid,
            i.python
        )
    }
}
