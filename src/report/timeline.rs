//! Samples in the order they were taken, for the outputs that show time: a Chrome
//! trace, speedscope's time-order view.
//!
//! A [`Profile`](super::Profile) counts each distinct stack and forgets when it was
//! seen, which keeps its memory bounded by the stacks. A timeline keeps every sample
//! (12 bytes each: a stack id and a time), so it is kept only when an output needs it.

use rustc_hash::FxHashMap;

use super::profile::StackKey;

/// Every sample, in the order it arrived, as a stack id and a time.
#[derive(Debug, Clone, Default)]
pub struct Timeline {
    /// Each distinct stack once; samples refer to it by its index.
    stacks: Vec<StackKey>,
    ids: FxHashMap<StackKey, u32>,
    /// Stack index of each sample.
    sample_stacks: Vec<u32>,
    /// Time of each sample since the recording started, in microseconds; never
    /// decreasing (a sample that arrives later than one taken after it, from another
    /// process's sampler, takes the later time, as in a `.pyscry` file).
    sample_times_us: Vec<u64>,
}

/// One sample of a timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimedSample {
    /// Microseconds since the recording started.
    pub time_us: u64,
    /// The stack, an index into [`Timeline::stacks`].
    pub stack: u32,
}

impl Timeline {
    /// Append a sample of `stack` taken `time_us` after the start.
    pub fn push(&mut self, stack: &StackKey, time_us: u64) {
        let id = match self.ids.get(stack) {
            Some(&id) => id,
            None => {
                let id = self.stacks.len() as u32;
                self.stacks.push(stack.clone());
                self.ids.insert(stack.clone(), id);
                id
            }
        };
        let last = self.sample_times_us.last().copied().unwrap_or(0);
        self.sample_stacks.push(id);
        self.sample_times_us.push(time_us.max(last));
    }

    /// The distinct stacks the samples refer to.
    pub fn stacks(&self) -> &[StackKey] {
        &self.stacks
    }

    /// The samples in order.
    pub fn samples(&self) -> impl Iterator<Item = TimedSample> + '_ {
        self.sample_stacks
            .iter()
            .zip(&self.sample_times_us)
            .map(|(&stack, &time_us)| TimedSample { time_us, stack })
    }

    /// Keep only the samples for which `keep(stack, time_us)` holds: of some threads,
    /// of running threads, or of a stretch of time.
    pub fn retain(&mut self, keep: impl Fn(&StackKey, u64) -> bool) {
        let mut kept = Timeline::default();
        for sample in self.samples() {
            let stack = &self.stacks[sample.stack as usize];
            if keep(stack, sample.time_us) {
                kept.push(stack, sample.time_us);
            }
        }
        *self = kept;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sampler::ThreadKey;

    fn stack(python_id: u64, frames: &[u32]) -> StackKey {
        StackKey {
            thread: ThreadKey {
                pid: 1,
                python_id,
                os_id: None,
            },
            idle: false,
            wait: None,
            frames: frames.to_vec(),
        }
    }

    #[test]
    fn samples_come_back_in_order_with_times_that_never_go_back() {
        let mut timeline = Timeline::default();
        let (a, b) = (stack(1, &[0, 1]), stack(2, &[0]));
        timeline.push(&a, 10);
        timeline.push(&b, 10);
        timeline.push(&a, 30);
        timeline.push(&b, 25);
        let seen: Vec<(u64, u64)> = timeline
            .samples()
            .map(|s| {
                (
                    s.time_us,
                    timeline.stacks()[s.stack as usize].thread.python_id,
                )
            })
            .collect();
        assert_eq!(seen, [(10, 1), (10, 2), (30, 1), (30, 2)]);
        assert_eq!(timeline.stacks.len(), 2, "each stack is kept once");
        timeline.retain(|stack, _| stack.thread.python_id == 2);
        let kept: Vec<u64> = timeline.samples().map(|s| s.time_us).collect();
        assert_eq!(kept, [10, 30]);
        assert_eq!(
            timeline.stacks(),
            [b],
            "only the kept thread's stacks are left"
        );
    }

    #[test]
    fn a_window_keeps_the_samples_from_its_start_to_before_its_end() {
        let mut timeline = Timeline::default();
        let (a, b) = (stack(1, &[0, 1]), stack(2, &[0]));
        for (stack, time_us) in [(&a, 0), (&b, 10), (&a, 20), (&b, 30)] {
            timeline.push(stack, time_us);
        }
        timeline.retain(|_, time_us| (10..30).contains(&time_us));
        let kept: Vec<u64> = timeline.samples().map(|s| s.time_us).collect();
        assert_eq!(kept, [10, 20]);
        assert_eq!(timeline.stacks(), [b, a]);
    }
}
