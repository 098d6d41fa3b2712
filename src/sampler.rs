//! The sampling loop: at a fixed rate, read every thread's stack and send it on.
//!
//! The sampler runs on its own thread and never formats output; it sends
//! [`SamplerEvent`]s over a channel to whoever aggregates them.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use std::collections::HashMap;

use crossbeam_channel::Sender;

use crate::python::frames::{RawFrame, WalkError};
use crate::python::threads::ThreadState;
use crate::python::PythonProcess;
use crate::symbolize::{Frame, FrameId, SymbolizeError, Symbolizer};
use crate::target::activity::ThreadActivity;
use crate::target::memory::{Memory, ReadError};
use crate::target::pause::Pauser;

/// Which threads a tick records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Every thread with Python frames, running or not; idle samples are marked idle.
    Wall,
    /// Only threads that used CPU since the previous tick, according to the kernel.
    Cpu,
    /// Only the thread holding the GIL.
    Gil,
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::Wall => "wall",
            Mode::Cpu => "cpu",
            Mode::Gil => "gil",
        })
    }
}

/// Identity of a sampled thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ThreadKey {
    /// `threading.get_ident()` value.
    pub python_id: u64,
    /// Kernel TID, when known.
    pub os_id: Option<u32>,
}

/// One thread's stack at one tick.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    /// Time since sampling started.
    pub elapsed: Duration,
    /// Which thread.
    pub thread: ThreadKey,
    /// Frame ids, innermost first.
    pub frames: Vec<FrameId>,
    /// The thread used no CPU since the previous tick (only ever set in wall mode).
    pub idle: bool,
    /// The thread held the GIL.
    pub holds_gil: bool,
}

/// What the sampler sends.
#[derive(Debug, Clone)]
pub enum SamplerEvent {
    /// A frame seen for the first time; it precedes every sample that uses it.
    NewFrame(FrameId, Frame),
    /// A stack.
    Sample(Sample),
    /// A thread's name, sent when first learned or when it changes.
    ThreadName {
        /// The thread's `threading.get_ident()`.
        python_id: u64,
        /// Its `threading.Thread.name`.
        name: String,
    },
}

/// Why sampling ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndReason {
    /// The stop flag was raised (Ctrl-C, SIGTERM, or the caller).
    Stopped,
    /// The requested duration passed.
    DurationElapsed,
    /// The target process exited.
    TargetExited,
    /// The target's threads could not be paused (`--blocking`): the reason.
    PauseFailed(String),
}

/// Counters shared with the UI while sampling runs.
#[derive(Debug, Default)]
pub struct SamplerStats {
    /// Ticks at which the target was read.
    pub ticks: AtomicU64,
    /// Stacks sent.
    pub samples: AtomicU64,
    /// Stacks that could not be read consistently and were dropped.
    pub errors: AtomicU64,
    /// Ticks skipped because the sampler fell behind.
    pub dropped_ticks: AtomicU64,
}

/// How to sample.
#[derive(Debug, Clone, Copy)]
pub struct SamplerConfig {
    /// Ticks per second.
    pub rate_hz: f64,
    /// Stop after this much wall-clock time.
    pub duration: Option<Duration>,
    /// Which threads to record.
    pub mode: Mode,
    /// Pause the target's threads while each sample is read.
    pub blocking: bool,
}

/// A running sampler thread.
pub struct SamplerHandle {
    /// Live counters.
    pub stats: Arc<SamplerStats>,
    thread: JoinHandle<EndReason>,
}

impl SamplerHandle {
    /// Wait for the sampler to end and say why it ended.
    pub fn join(self) -> EndReason {
        self.thread.join().unwrap_or(EndReason::Stopped)
    }
}

/// Start sampling `process` on a new thread. Sampling ends when `stop` is raised, the
/// duration passes, or the target exits; the channel is closed then.
pub fn start(
    process: PythonProcess,
    config: SamplerConfig,
    stop: Arc<AtomicBool>,
    events: Sender<SamplerEvent>,
) -> SamplerHandle {
    let stats = Arc::new(SamplerStats::default());
    let thread_stats = Arc::clone(&stats);
    let thread = std::thread::Builder::new()
        .name("pyscry-sampler".into())
        .spawn(move || run(process, config, &stop, &events, &thread_stats))
        .expect("spawning the sampler thread");
    SamplerHandle { stats, thread }
}

/// Longest sleep between checks of the stop flag.
const STOP_POLL: Duration = Duration::from_millis(20);

fn run(
    mut process: PythonProcess,
    config: SamplerConfig,
    stop: &AtomicBool,
    events: &Sender<SamplerEvent>,
    stats: &SamplerStats,
) -> EndReason {
    let start = Instant::now();
    let mut schedule = Schedule::new(start, config.rate_hz);
    let mut reader = StackReader::new(process.pid, config.mode);
    let mut pauser = config.blocking.then(|| Pauser::new(process.pid));
    loop {
        let tick_at = schedule.next_tick();
        loop {
            if stop.load(Ordering::Relaxed) {
                return EndReason::Stopped;
            }
            let now = Instant::now();
            if config.duration.is_some_and(|d| now - start >= d) {
                return EndReason::DurationElapsed;
            }
            if now >= tick_at {
                break;
            }
            std::thread::sleep((tick_at - now).min(STOP_POLL));
        }
        stats.ticks.fetch_add(1, Ordering::Relaxed);
        if pauser.is_some() {
            reader.activity.snapshot();
        }
        let paused = match pauser.as_mut().map(Pauser::pause).transpose() {
            Ok(paused) => paused,
            Err(e) => return EndReason::PauseFailed(e.to_string()),
        };
        let tick = reader.read(&mut process, start.elapsed());
        drop(paused);
        match tick {
            Ok(tick) => {
                stats.errors.fetch_add(tick.errors, Ordering::Relaxed);
                stats.samples.fetch_add(tick.samples, Ordering::Relaxed);
                for event in tick.events {
                    if events.send(event).is_err() {
                        return EndReason::Stopped;
                    }
                }
            }
            Err(_) if !crate::target::process::is_running(process.pid) => {
                return EndReason::TargetExited;
            }
            Err(_) => {
                stats.errors.fetch_add(1, Ordering::Relaxed);
            }
        }
        let dropped = schedule.advance(Instant::now());
        stats.dropped_ticks.fetch_add(dropped, Ordering::Relaxed);
    }
}

/// Tick times: one per slot of `1/rate` seconds, at a random point inside the slot.
///
/// The random phase keeps periodic work in the target (a timer firing every 10 ms,
/// say) from lining up with the ticks, while the long-run rate stays exact. When the
/// sampler falls behind, whole slots that have passed are dropped and counted, never
/// fired in a burst.
#[derive(Debug)]
pub struct Schedule {
    start: Instant,
    period: Duration,
    slot: u64,
    rng: fastrand::Rng,
}

impl Schedule {
    /// Slots of `1/rate_hz` from `start`.
    pub fn new(start: Instant, rate_hz: f64) -> Schedule {
        Schedule {
            start,
            period: Duration::from_secs_f64(1.0 / rate_hz),
            slot: 0,
            rng: fastrand::Rng::new(),
        }
    }

    /// When the current slot's tick is due.
    pub fn next_tick(&mut self) -> Instant {
        self.start + self.period.mul_f64(self.slot as f64 + self.rng.f64())
    }

    /// Move past the slot just sampled, given the time now; returns how many slots were
    /// skipped because they ended before the sampler was ready.
    pub fn advance(&mut self, now: Instant) -> u64 {
        let current = ((now - self.start).as_secs_f64() / self.period.as_secs_f64()) as u64;
        let next = (self.slot + 1).max(current);
        let dropped = next - (self.slot + 1);
        self.slot = next;
        dropped
    }
}

/// The result of reading the target once.
pub struct Tick {
    /// Events to send: new frames, then samples.
    pub events: Vec<SamplerEvent>,
    /// How many samples `events` holds.
    pub samples: u64,
    /// Threads whose stack could not be read consistently.
    pub errors: u64,
}

/// Reads the stacks a mode asks for, tick after tick.
pub struct StackReader {
    mode: Mode,
    activity: ThreadActivity,
    symbolizer: Symbolizer,
    raw: Vec<RawFrame>,
    names: HashMap<u64, String>,
    names_read_at: Option<Instant>,
}

/// Least time between two reads of the thread names: they are read again only when a
/// thread without a known name shows up, and not more often than this.
const NAME_REFRESH: Duration = Duration::from_millis(250);

impl StackReader {
    /// A reader for process `pid` in `mode`.
    pub fn new(pid: u32, mode: Mode) -> StackReader {
        StackReader {
            mode,
            activity: ThreadActivity::new(pid),
            symbolizer: Symbolizer::new(),
            raw: Vec::new(),
            names: HashMap::new(),
            names_read_at: None,
        }
    }

    /// Read thread names again if a thread has none yet (rate-limited), appending an
    /// event for each name that is new or changed.
    fn refresh_names(
        &mut self,
        process: &mut PythonProcess,
        threads: &[ThreadState],
        events: &mut Vec<SamplerEvent>,
    ) {
        let unknown = threads
            .iter()
            .any(|t| !self.names.contains_key(&t.thread_id));
        let due = self
            .names_read_at
            .is_none_or(|at| at.elapsed() >= NAME_REFRESH);
        if !(unknown && due) {
            return;
        }
        self.names_read_at = Some(Instant::now());
        for (python_id, name) in process.thread_names() {
            if self.names.get(&python_id) != Some(&name) {
                self.names.insert(python_id, name.clone());
                events.push(SamplerEvent::ThreadName { python_id, name });
            }
        }
    }

    /// Read every thread the mode selects, once. Fails only when the thread list itself
    /// cannot be read (typically: the target exited).
    pub fn read(
        &mut self,
        process: &mut PythonProcess,
        elapsed: Duration,
    ) -> Result<Tick, ReadError> {
        let threads = process.thread_states()?;
        let mut name_events = Vec::new();
        self.refresh_names(process, &threads, &mut name_events);
        let mut samples = Vec::new();
        let mut errors = 0;
        let mut new_frames = Vec::new();
        for thread in &threads {
            let idle = match (self.mode, thread.native_id) {
                (Mode::Gil, _) | (_, None) => false,
                (_, Some(tid)) => !self.activity.is_running(tid).unwrap_or(true),
            };
            let wanted = match self.mode {
                Mode::Wall => true,
                Mode::Cpu => !idle,
                Mode::Gil => thread.holds_gil,
            };
            if !wanted || thread.frame == 0 {
                continue;
            }
            match self.consistent_stack(process, thread, &mut new_frames) {
                Ok(frames) if frames.is_empty() => {}
                Ok(frames) => samples.push(Sample {
                    elapsed,
                    thread: ThreadKey {
                        python_id: thread.thread_id,
                        os_id: thread.native_id,
                    },
                    frames,
                    idle,
                    holds_gil: thread.holds_gil,
                }),
                Err(_) => errors += 1,
            }
        }
        self.activity.end_tick();
        let count = samples.len() as u64;
        let events = name_events
            .into_iter()
            .chain(
                new_frames
                    .into_iter()
                    .map(|(id, f)| SamplerEvent::NewFrame(id, f)),
            )
            .chain(samples.into_iter().map(SamplerEvent::Sample))
            .collect();
        Ok(Tick {
            events,
            samples: count,
            errors,
        })
    }

    /// Read a thread's stack and check that the thread's innermost frame is still the one
    /// the walk started from; if not, the stack changed under us: read it once more.
    fn consistent_stack(
        &mut self,
        process: &PythonProcess,
        thread: &ThreadState,
        new_frames: &mut Vec<(FrameId, Frame)>,
    ) -> Result<Vec<FrameId>, StackError> {
        let mut start = thread.frame;
        for _ in 0..2 {
            self.raw.clear();
            let walked = read_stack(
                process,
                &mut self.symbolizer,
                start,
                &mut self.raw,
                new_frames,
            );
            let now = process
                .threads
                .current_frame(&process.memory, thread.address)
                .map_err(WalkError::from)?;
            match walked {
                Ok(frames) if now == start => return Ok(frames),
                _ if now == 0 => return Ok(Vec::new()),
                _ => start = now,
            }
        }
        Err(StackError::Changed)
    }
}

/// Why one thread's stack was dropped.
#[derive(Debug, thiserror::Error)]
pub enum StackError {
    /// The frame chain could not be followed.
    #[error(transparent)]
    Walk(#[from] WalkError),
    /// A frame's code could not be symbolized.
    #[error(transparent)]
    Symbolize(#[from] SymbolizeError),
    /// The stack kept changing while it was read.
    #[error("the stack changed while it was read")]
    Changed,
}

/// Walk and symbolize the stack whose innermost frame is `innermost`: frame ids,
/// innermost first.
pub fn read_stack<M: Memory>(
    process: &PythonProcess<M>,
    symbolizer: &mut Symbolizer,
    innermost: u64,
    raw: &mut Vec<RawFrame>,
    new_frames: &mut Vec<(FrameId, Frame)>,
) -> Result<Vec<FrameId>, StackError> {
    process.frames.walk(&process.memory, innermost, raw)?;
    let codes: Vec<u64> = raw.iter().map(|frame| frame.code).collect();
    let headers = process
        .code
        .read_headers(&process.memory, &codes, &mut Vec::new())
        .map_err(SymbolizeError::from)?;
    raw.iter()
        .zip(headers)
        .map(|(&frame, header)| {
            symbolizer
                .symbolize(&process.memory, &process.code, frame, header, new_frames)
                .map_err(StackError::from)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_puts_one_tick_in_each_slot() {
        let start = Instant::now();
        let mut schedule = Schedule::new(start, 100.0);
        for slot in 0..50u32 {
            let tick = schedule.next_tick() - start;
            assert!(tick >= Duration::from_millis(10) * slot);
            assert!(tick < Duration::from_millis(10) * (slot + 1));
            assert_eq!(schedule.advance(start + tick), 0);
        }
    }

    #[test]
    fn schedule_drops_slots_it_was_too_late_for() {
        let start = Instant::now();
        let mut schedule = Schedule::new(start, 100.0);
        schedule.next_tick();
        // The first tick took until 45 ms: slots 1, 2 and 3 are gone, 4 is current.
        assert_eq!(schedule.advance(start + Duration::from_millis(45)), 3);
        let tick = schedule.next_tick() - start;
        assert!(tick >= Duration::from_millis(40) && tick < Duration::from_millis(50));
    }
}
