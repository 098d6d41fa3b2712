//! The sampling loop: at a fixed rate, read every thread's stack and send it on.
//!
//! The sampler runs on its own thread and never formats output; it sends
//! [`SamplerEvent`]s over a channel to whoever aggregates them.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;

use crate::python::frames::{RawFrame, WalkError};
use crate::python::objects::ObjectError;
use crate::python::threads::ThreadState;
use crate::python::PythonProcess;
use crate::symbolize::{Frame, FrameId, Symbolizer};
use crate::target::memory::{Memory, ReadError};

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
}

/// What the sampler sends.
#[derive(Debug, Clone)]
pub enum SamplerEvent {
    /// A frame seen for the first time; it precedes every sample that uses it.
    NewFrame(FrameId, Frame),
    /// A stack.
    Sample(Sample),
}

/// Why sampling ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// The stop flag was raised (Ctrl-C, SIGTERM, or the caller).
    Stopped,
    /// The requested duration passed.
    DurationElapsed,
    /// The target process exited.
    TargetExited,
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

fn run(
    mut process: PythonProcess,
    config: SamplerConfig,
    stop: &AtomicBool,
    events: &Sender<SamplerEvent>,
    stats: &SamplerStats,
) -> EndReason {
    let period = Duration::from_secs_f64(1.0 / config.rate_hz);
    let start = Instant::now();
    let mut symbolizer = Symbolizer::new();
    let mut next_tick = start;
    loop {
        if stop.load(Ordering::Relaxed) {
            return EndReason::Stopped;
        }
        let now = Instant::now();
        if config.duration.is_some_and(|d| now - start >= d) {
            return EndReason::DurationElapsed;
        }
        if now < next_tick {
            std::thread::sleep((next_tick - now).min(Duration::from_millis(50)));
            continue;
        }
        stats.ticks.fetch_add(1, Ordering::Relaxed);
        match sample_once(&mut process, &mut symbolizer, start.elapsed()) {
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
        // Fixed-rate schedule; ticks we are too late for are dropped, not bunched.
        next_tick += period;
        let now = Instant::now();
        if now > next_tick + period {
            let behind = ((now - next_tick).as_secs_f64() / period.as_secs_f64()) as u32;
            stats
                .dropped_ticks
                .fetch_add(u64::from(behind), Ordering::Relaxed);
            next_tick += period * behind;
        }
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

/// Read every thread's stack once. Fails only when the thread list itself cannot be
/// read (typically: the target exited).
pub fn sample_once(
    process: &mut PythonProcess,
    symbolizer: &mut Symbolizer,
    elapsed: Duration,
) -> Result<Tick, ReadError> {
    let threads = process.thread_states()?;
    let mut samples = Vec::new();
    let mut errors = 0;
    let mut new_frames = Vec::new();
    let mut raw = Vec::new();
    for thread in threads.iter().filter(|t| t.frame != 0) {
        raw.clear();
        match read_stack(process, symbolizer, thread, &mut raw, &mut new_frames) {
            Ok(frames) if frames.is_empty() => {}
            Ok(frames) => samples.push(Sample {
                elapsed,
                thread: ThreadKey {
                    python_id: thread.thread_id,
                    os_id: thread.native_id,
                },
                frames,
            }),
            Err(_) => errors += 1,
        }
    }
    let count = samples.len() as u64;
    let events = new_frames
        .into_iter()
        .map(|(id, f)| SamplerEvent::NewFrame(id, f))
        .chain(samples.into_iter().map(SamplerEvent::Sample))
        .collect();
    Ok(Tick {
        events,
        samples: count,
        errors,
    })
}

/// Why one thread's stack was dropped.
#[derive(Debug, thiserror::Error)]
pub enum StackError {
    /// The frame chain could not be followed.
    #[error(transparent)]
    Walk(#[from] WalkError),
    /// A frame's code object could not be read.
    #[error(transparent)]
    Object(#[from] ObjectError),
}

/// Walk and symbolize one thread's stack: frame ids, innermost first.
pub fn read_stack<M: Memory>(
    process: &PythonProcess<M>,
    symbolizer: &mut Symbolizer,
    thread: &ThreadState,
    raw: &mut Vec<RawFrame>,
    new_frames: &mut Vec<(FrameId, Frame)>,
) -> Result<Vec<FrameId>, StackError> {
    process.frames.walk(&process.memory, thread.frame, raw)?;
    raw.iter()
        .map(|&frame| {
            symbolizer
                .symbolize(&process.memory, &process.code, frame, new_frames)
                .map_err(StackError::from)
        })
        .collect()
}
