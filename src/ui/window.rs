//! The live view's numbers: samples aggregated over refresh windows.
//!
//! Samples go into the window being filled. Each refresh closes that window, keeps it
//! as the last window, and adds it to the totals since the start (or the last reset).
//! A table is computed by [`function_rows`] on a [`Profile`] built from the chosen
//! span and thread, so the live view counts own and total time exactly as `record`
//! does, a recursive function once per stack.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::report::table::{function_rows, FunctionRow};
use crate::report::{Profile, ProfileInfo};
use crate::sampler::{SamplerEvent, ThreadKey};
use crate::symbolize::Frame;
use crate::target::activity::WaitKind;

/// Which samples a table covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Span {
    /// The last refresh window.
    Window,
    /// Everything since the start, or since the last reset.
    SinceStart,
}

/// What to aggregate by and over which threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Query {
    /// The samples to count.
    pub span: Span,
    /// One thread, or all of them.
    pub thread: Option<ThreadKey>,
    /// One row per source line instead of one per function.
    pub by_line: bool,
    /// Only the samples of threads that were running (not idle).
    pub running_only: bool,
}

/// A computed table and what its numbers are shares of.
#[derive(Debug, Clone, Default)]
pub struct Table {
    /// One row per function (per line, when asked: then `first_line` is the line).
    pub rows: Vec<FunctionRow>,
    /// Samples the rows are shares of.
    pub samples: u64,
    /// Wall-clock seconds that one sample of one thread stands for.
    pub sample_secs: f64,
    /// How long the span lasted.
    pub duration: Duration,
}

/// Samples over a stretch of time: stacks by thread, and how many ticks it held.
#[derive(Debug, Clone, Default)]
struct Period {
    /// Stacks with counts; the frame table lives in [`Aggregator::catalog`].
    stacks: Profile,
    ticks: u64,
    duration: Duration,
    /// Samples taken of the thread that held the GIL.
    gil_samples: u64,
}

impl Period {
    fn absorb(&mut self, other: &Period) {
        for (key, count) in &other.stacks.stacks {
            *self.stacks.stacks.entry(key.clone()).or_default() += count;
        }
        self.ticks += other.ticks;
        self.duration += other.duration;
        self.gil_samples += other.gil_samples;
    }
}

/// Windowed and cumulative aggregation of the sampler's events.
#[derive(Debug)]
pub struct Aggregator {
    /// Frames and thread names seen so far.
    catalog: Profile,
    filling: Period,
    window: Period,
    since_start: Period,
    /// When the window being filled started, and the sampler's tick count then.
    opened: (Instant, u64),
    /// The nominal time between ticks, used before any tick is counted.
    nominal_tick: Duration,
}

impl Aggregator {
    /// An empty aggregator whose first window opens at `now`.
    pub fn new(now: Instant, rate_hz: f64) -> Aggregator {
        Aggregator {
            catalog: Profile::new(ProfileInfo::default()),
            filling: Period::default(),
            window: Period::default(),
            since_start: Period::default(),
            opened: (now, 0),
            nominal_tick: Duration::from_secs_f64(1.0 / rate_hz),
        }
    }

    /// Take one event from the sampler.
    pub fn add_event(&mut self, event: SamplerEvent) {
        match event {
            SamplerEvent::Sample(sample) => {
                self.filling.gil_samples += u64::from(sample.holds_gil);
                self.filling.stacks.add_sample(&sample);
            }
            other => self.catalog.add_event(&other),
        }
    }

    /// Close the window being filled at `now`, when the sampler has counted `ticks`
    /// ticks in all, and open the next one.
    pub fn rotate(&mut self, now: Instant, ticks: u64) {
        let (opened_at, opened_ticks) = self.opened;
        let mut closed = std::mem::take(&mut self.filling);
        closed.ticks = ticks.saturating_sub(opened_ticks);
        closed.duration = now.saturating_duration_since(opened_at);
        self.since_start.absorb(&closed);
        self.window = closed;
        self.opened = (now, ticks);
    }

    /// Forget every sample, as if sampling had started at `now`.
    pub fn reset(&mut self, now: Instant, ticks: u64) {
        self.filling = Period::default();
        self.window = Period::default();
        self.since_start = Period::default();
        self.opened = (now, ticks);
    }

    /// Own and total samples per function (or line) for `query`.
    pub fn table(&self, query: Query) -> Table {
        let period = match query.span {
            Span::Window => &self.window,
            Span::SinceStart => &self.since_start,
        };
        let mut profile = Profile::new(ProfileInfo::default());
        profile.frames = if query.by_line {
            // Keyed by the executing line, function_rows makes one row per line.
            let by_line = |f: &Frame| Frame {
                first_line: f.line,
                ..f.clone()
            };
            self.catalog.frames.iter().map(by_line).collect()
        } else {
            self.catalog.frames.clone()
        };
        profile.stacks = period
            .stacks
            .stacks
            .iter()
            .filter(|(key, _)| query.thread.is_none_or(|t| key.thread == t))
            .filter(|(key, _)| !(query.running_only && key.idle))
            .map(|(key, &count)| (key.clone(), count))
            .collect();
        let sample_secs = match period.ticks {
            0 => self.nominal_tick.as_secs_f64(),
            ticks => period.duration.as_secs_f64() / ticks as f64,
        };
        Table {
            rows: function_rows(&profile),
            samples: profile.total_samples(),
            sample_secs,
            duration: period.duration,
        }
    }

    /// Every thread seen since the start (or reset), in a stable order, with its label.
    pub fn threads(&self) -> Vec<(ThreadKey, String)> {
        let mut keys: Vec<ThreadKey> = self
            .since_start
            .stacks
            .stacks
            .keys()
            .map(|key| key.thread)
            .collect();
        keys.sort();
        keys.dedup();
        keys.into_iter()
            .map(|key| (key, self.catalog.thread_label(&key)))
            .collect()
    }

    /// The share of the last window's ticks at which a thread running Python code held
    /// the GIL, in percent; with several processes, the mean of theirs. `None` before
    /// the first window, and when no ticks are counted (the target runs no Python).
    pub fn window_gil_percent(&self) -> Option<f64> {
        let ticks = self.window_process_ticks();
        (ticks > 0).then(|| 100.0 * self.window.gil_samples as f64 / ticks as f64)
    }

    /// How many threads waited for the GIL at a tick of the last window, on average;
    /// with several processes, the mean of theirs. `None` as for
    /// [`Aggregator::window_gil_percent`].
    pub fn window_gil_waiters(&self) -> Option<f64> {
        let ticks = self.window_process_ticks();
        let waiting: u64 = (self.window.stacks.stacks.iter())
            .filter(|(key, _)| key.idle && key.wait == Some(WaitKind::Gil))
            .map(|(_, &count)| count)
            .sum();
        (ticks > 0).then(|| waiting as f64 / ticks as f64)
    }

    /// The last window's ticks times the processes sampled in it (at least one).
    fn window_process_ticks(&self) -> u64 {
        self.window.ticks * self.window_processes().max(1) as u64
    }

    /// Processes sampled in the last window.
    pub fn window_processes(&self) -> usize {
        let mut pids: Vec<u32> = self
            .window
            .stacks
            .stacks
            .keys()
            .map(|key| key.thread.pid)
            .collect();
        pids.sort_unstable();
        pids.dedup();
        pids.len()
    }

    /// The threads sampled in the last window: how many, how many ran, and what
    /// those that did not waited for.
    pub fn window_threads(&self) -> ThreadCounts {
        // Per thread: whether it ran, and its idle samples by wait.
        let mut threads: BTreeMap<ThreadKey, (bool, BTreeMap<Option<WaitKind>, u64>)> =
            BTreeMap::new();
        for (key, &count) in &self.window.stacks.stacks {
            let (ran, waits) = threads.entry(key.thread).or_default();
            match key.idle {
                false => *ran = true,
                true => *waits.entry(key.wait).or_default() += count,
            }
        }
        let mut counts = ThreadCounts {
            sampled: threads.len(),
            ..ThreadCounts::default()
        };
        for (ran, waits) in threads.into_values() {
            if ran {
                counts.running += 1;
                continue;
            }
            // The wait it was seen in most (the first of equals, in kind order).
            let most = waits.iter().max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)));
            if let Some((&wait, _)) = most {
                *counts.idle_by_wait.entry(wait).or_default() += 1;
            }
        }
        counts
    }
}

/// The threads sampled in a window.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ThreadCounts {
    /// Threads sampled.
    pub sampled: usize,
    /// Threads that ran: had a sample that was not idle.
    pub running: usize,
    /// Threads that did not, by what they waited for most (`None`: the kernel did not
    /// say).
    pub idle_by_wait: BTreeMap<Option<WaitKind>, usize>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sampler::Sample;

    const MAIN: ThreadKey = ThreadKey {
        pid: 1,
        python_id: 1,
        os_id: Some(100),
    };
    const WORKER: ThreadKey = ThreadKey {
        pid: 1,
        python_id: 2,
        os_id: Some(101),
    };

    fn frame(name: &str, line: u32) -> Frame {
        Frame {
            name: name.into(),
            filename: "w.py".into(),
            line,
            first_line: 1,
        }
    }

    fn sample(thread: ThreadKey, frames: &[u32], idle: bool) -> SamplerEvent {
        SamplerEvent::Sample(Sample {
            elapsed: Duration::ZERO,
            thread,
            thread_state: 0,
            frames: frames.to_vec(),
            idle,
            wait: None,
            holds_gil: false,
        })
    }

    /// Frames: 0 main, 1 fib line 5, 2 fib line 6.
    fn aggregator() -> (Aggregator, Instant) {
        let start = Instant::now();
        let mut agg = Aggregator::new(start, 100.0);
        for (id, f) in [frame("main", 9), frame("fib", 5), frame("fib", 6)]
            .into_iter()
            .enumerate()
        {
            agg.add_event(SamplerEvent::NewFrame {
                pid: 1,
                id: id as u32,
                frame: f,
            });
        }
        (agg, start)
    }

    fn query(span: Span) -> Query {
        Query {
            span,
            thread: None,
            by_line: false,
            running_only: false,
        }
    }

    #[test]
    fn gil_share_is_the_mean_over_the_processes_sampled() {
        let (mut agg, start) = aggregator();
        let worker = ThreadKey { pid: 2, ..WORKER };
        for tick in 0..4 {
            // The target's thread holds its GIL at one tick in four, a worker process's
            // at every tick.
            let holding = |key, holds_gil| {
                let SamplerEvent::Sample(sample) = sample(key, &[0], false) else {
                    unreachable!()
                };
                SamplerEvent::Sample(Sample {
                    holds_gil,
                    ..sample
                })
            };
            agg.add_event(holding(MAIN, tick == 0));
            agg.add_event(holding(worker, true));
        }
        assert_eq!(agg.window_gil_percent(), None);
        agg.rotate(start + Duration::from_millis(40), 4);
        assert_eq!(agg.window_processes(), 2);
        assert_eq!(agg.window_gil_percent(), Some(62.5));
        assert_eq!(agg.window_gil_waiters(), Some(0.0));
        // Without the target's ticks (it runs no Python) there is no share to give.
        agg.rotate(start + Duration::from_millis(80), 4);
        assert_eq!(agg.window_gil_percent(), None);
    }

    #[test]
    fn windows_hold_the_last_refresh_and_totals_keep_everything() {
        let (mut agg, start) = aggregator();
        agg.add_event(sample(MAIN, &[1, 2, 0], false));
        agg.rotate(start + Duration::from_secs(1), 100);
        agg.add_event(sample(MAIN, &[0], false));
        agg.rotate(start + Duration::from_secs(2), 200);

        let window = agg.table(query(Span::Window));
        assert_eq!(window.samples, 1);
        assert_eq!(window.rows[0].name, "main");
        assert!((window.sample_secs - 0.01).abs() < 1e-9);

        let total = agg.table(query(Span::SinceStart));
        assert_eq!(total.samples, 2);
        assert_eq!(total.duration, Duration::from_secs(2));
        let fib = total.rows.iter().find(|r| r.name == "fib").unwrap();
        // Two fib frames in one stack count once.
        assert_eq!((fib.own, fib.total), (1, 1));
    }

    #[test]
    fn lines_get_rows_of_their_own() {
        let (mut agg, start) = aggregator();
        agg.add_event(sample(MAIN, &[1, 0], false));
        agg.add_event(sample(MAIN, &[2, 0], false));
        agg.add_event(sample(MAIN, &[2, 0], false));
        agg.rotate(start + Duration::from_secs(1), 3);
        let by_function = agg.table(query(Span::Window));
        assert_eq!(by_function.rows.len(), 2);
        let by_line = agg.table(Query {
            by_line: true,
            ..query(Span::Window)
        });
        let fib: Vec<(u32, u64)> = by_line
            .rows
            .iter()
            .filter(|r| r.name == "fib")
            .map(|r| (r.first_line, r.own))
            .collect();
        assert_eq!(fib, [(6, 2), (5, 1)]);
    }

    #[test]
    fn threads_waiting_for_the_gil_are_counted_per_tick() {
        let (mut agg, start) = aggregator();
        let waiting = |thread| {
            let SamplerEvent::Sample(sample) = sample(thread, &[1], true) else {
                unreachable!()
            };
            SamplerEvent::Sample(Sample {
                wait: Some(WaitKind::Gil),
                ..sample
            })
        };
        // Four ticks: the worker waits for the GIL at three, the main thread at one,
        // and at the fourth the main thread is idle on something else.
        for _ in 0..3 {
            agg.add_event(waiting(WORKER));
        }
        agg.add_event(waiting(MAIN));
        agg.add_event(sample(MAIN, &[0], true));
        agg.rotate(start + Duration::from_millis(40), 4);
        assert_eq!(agg.window_gil_waiters(), Some(1.0));
    }

    #[test]
    fn threads_can_be_chosen_and_idle_ones_are_counted() {
        let (mut agg, start) = aggregator();
        agg.add_event(sample(MAIN, &[0], false));
        agg.add_event(sample(WORKER, &[1], true));
        agg.add_event(sample(WORKER, &[1], true));
        agg.rotate(start + Duration::from_secs(1), 2);
        let counts = agg.window_threads();
        assert_eq!((counts.sampled, counts.running), (2, 1));
        assert_eq!(counts.idle_by_wait, BTreeMap::from([(None, 1)]));
        let threads: Vec<ThreadKey> = agg.threads().into_iter().map(|(k, _)| k).collect();
        assert_eq!(threads, [MAIN, WORKER]);
        let worker = agg.table(Query {
            thread: Some(WORKER),
            ..query(Span::Window)
        });
        assert_eq!(worker.samples, 2);
        assert_eq!(worker.rows[0].name, "fib");
        // Running only: the worker's idle samples are left out.
        let running = agg.table(Query {
            running_only: true,
            ..query(Span::Window)
        });
        assert_eq!(running.samples, 1);
        assert_eq!(running.rows[0].name, "main");
    }

    #[test]
    fn reset_forgets_everything() {
        let (mut agg, start) = aggregator();
        agg.add_event(sample(MAIN, &[0], false));
        agg.rotate(start + Duration::from_secs(1), 1);
        agg.reset(start + Duration::from_secs(1), 1);
        assert_eq!(agg.table(query(Span::SinceStart)).samples, 0);
        assert!(agg.threads().is_empty());
    }
}
