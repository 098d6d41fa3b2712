//! The sampling loop: at a fixed rate, read every thread's stack and send it on.
//!
//! The sampler runs on its own thread and never formats output; it sends
//! [`SamplerEvent`]s over a channel to whoever aggregates them.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;
use rustc_hash::FxHashMap;

use crate::native::stacks::NativeStacks;
use crate::native::unwind::NativeFrame;
use crate::python::code::CodeHeader;
use crate::python::code_headers::{CodeCount, CodeHeaders};
use crate::python::frames::{RawFrame, WalkError};
use crate::python::threads::ThreadState;
use crate::python::PythonProcess;
use crate::symbolize::{Frame, FrameId, SymbolizeError, Symbolizer};
use crate::target::activity::{RunState, ThreadActivity, WaitKind};
use crate::target::memory::{Memory, ReadError};
use crate::target::pause::Pauser;
use crate::target::prefetch::{Phase, Prefetcher, TickMemory};

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
    /// The process it belongs to.
    pub pid: u32,
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
    /// The address of the thread state read: a thread that runs code in several
    /// interpreters has a thread state, and a stack, in each.
    pub thread_state: u64,
    /// Frame ids, innermost first.
    pub frames: Vec<FrameId>,
    /// The thread used no CPU since the previous tick (only ever set in wall mode).
    pub idle: bool,
    /// What an idle thread waited for, where the kernel says.
    pub wait: Option<WaitKind>,
    /// The thread held the GIL.
    pub holds_gil: bool,
}

/// What the sampler sends. Frame ids are each process's own (each has its sampler),
/// so every event says which process it is about.
#[derive(Debug, Clone)]
pub enum SamplerEvent {
    /// A frame seen for the first time; it precedes every sample that uses it.
    NewFrame {
        /// The process whose sampler numbered it.
        pid: u32,
        /// Its id in that process's samples.
        id: FrameId,
        /// The frame.
        frame: Frame,
    },
    /// A stack.
    Sample(Sample),
    /// A thread's name, sent when first learned or when it changes.
    ThreadName {
        /// The process.
        pid: u32,
        /// The thread's `threading.get_ident()`.
        python_id: u64,
        /// Its `threading.Thread.name`.
        name: String,
    },
    /// A process joined the recording (sent by `record --subprocesses` for each
    /// process it samples, before the process's first event).
    Process {
        /// Its id.
        pid: u32,
        /// Its command line.
        command: String,
    },
}

impl SamplerEvent {
    /// The events that announce process `pid`'s new `frames`.
    pub fn announcing(
        pid: u32,
        frames: impl IntoIterator<Item = (FrameId, Frame)>,
    ) -> impl Iterator<Item = SamplerEvent> {
        frames
            .into_iter()
            .map(move |(id, frame)| SamplerEvent::NewFrame { pid, id, frame })
    }
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
    /// The sampler's thread panicked: a bug in pyscry, reported as such.
    Panicked,
}

/// Counters shared with the UI while sampling runs.
#[derive(Debug, Default)]
pub struct SamplerStats {
    /// Ticks at which the target was read.
    pub ticks: AtomicU64,
    /// Ticks whose events have all been sent: `ticks` as it was at the last send of
    /// the held-back events, stored once they are in the channel. A receiver that
    /// reads this and then takes in every event waiting has every sample of these
    /// ticks, where `ticks` runs up to a burst ahead of the samples received.
    pub sent_ticks: AtomicU64,
    /// Stacks sent.
    pub samples: AtomicU64,
    /// Stacks that could not be read consistently and were dropped.
    pub errors: AtomicU64,
    /// Ticks skipped because the sampler fell behind.
    pub dropped_ticks: AtomicU64,
    /// Whether the target's GIL was on for good at the last tick read: a free-threaded
    /// build turns it on when it loads an extension module that needs it.
    pub gil_on_for_good: AtomicBool,
}

/// [`SamplerStats`] read at one moment and added up over samplers (one per process
/// with `--subprocesses`).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SamplerCounts {
    /// Ticks at which a target was read.
    pub ticks: u64,
    /// Stacks sent.
    pub samples: u64,
    /// Stacks dropped.
    pub errors: u64,
    /// Ticks skipped.
    pub dropped_ticks: u64,
}

impl SamplerCounts {
    /// The counters of `stats`, added up.
    pub fn sum<S: AsRef<SamplerStats>>(stats: impl IntoIterator<Item = S>) -> SamplerCounts {
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        stats
            .into_iter()
            .fold(SamplerCounts::default(), |total, stats| {
                let stats = stats.as_ref();
                SamplerCounts {
                    ticks: total.ticks + load(&stats.ticks),
                    samples: total.samples + load(&stats.samples),
                    errors: total.errors + load(&stats.errors),
                    dropped_ticks: total.dropped_ticks + load(&stats.dropped_ticks),
                }
            })
    }
}

/// The counters of samplers started one after another (one per process that
/// `--subprocesses` finds), shared between the threads that start them and whoever
/// adds them up.
#[derive(Debug, Default, Clone)]
pub struct CounterSet(Arc<Mutex<Vec<Arc<SamplerStats>>>>);

impl CounterSet {
    /// Add a sampler's counters.
    pub fn push(&self, stats: Arc<SamplerStats>) {
        self.lock().push(stats);
    }

    /// The counters of every sampler added so far, running or ended.
    pub fn stats(&self) -> Vec<Arc<SamplerStats>> {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Arc<SamplerStats>>> {
        // A thread that panicked while pushing left the list whole.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
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
    /// Add each sample's native frames (the threads are then paused, as `blocking`).
    pub native: bool,
    /// Put a `<GC>` frame on top of the stack of the thread running the garbage
    /// collector.
    pub gc_frames: bool,
    /// The instant sample times count from: the recording's start, so that a process
    /// sampled from later on (`--subprocesses`) shares the target's clock.
    pub epoch: Instant,
    /// Longest time a sample is held back before it is sent. Samples go out in bursts
    /// because each send to a waiting receiver wakes its thread, which on a virtual
    /// machine costs more than a tick's read: the receiver's refresh interval is what
    /// to choose here.
    pub burst_interval: Duration,
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
        self.thread.join().unwrap_or(EndReason::Panicked)
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

/// Sample until the end, then deliver what is still held back.
fn run(
    process: PythonProcess,
    config: SamplerConfig,
    stop: &AtomicBool,
    events: &Sender<SamplerEvent>,
    stats: &SamplerStats,
) -> EndReason {
    // The kernel may otherwise delay each wake-up by up to 50 µs to batch timers, which
    // at 10 kHz is half a tick.
    // SAFETY: PR_SET_TIMERSLACK only changes this thread's timer slack.
    unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1) };
    let mut outbox = Outbox::new(events, stats, config.burst_interval);
    let reason = sample(process, config, stop, &mut outbox, stats);
    // A receiver that is gone has nothing left to be told.
    let _ = outbox.flush();
    reason
}

/// Events on their way to the aggregator, sent in bursts rather than one by one: each
/// send to a waiting receiver wakes its thread, which at high rates costs more than
/// reading the target.
struct Outbox<'a> {
    sender: &'a Sender<SamplerEvent>,
    stats: &'a SamplerStats,
    pending: Vec<SamplerEvent>,
    flushed_at: Instant,
    /// Longest time an event waits here.
    interval: Duration,
}

/// Most events the [`Outbox`] holds before it sends them, whatever their age: this
/// bounds its memory at high rates with many threads.
const FLUSH_EVENTS: usize = 4096;

impl<'a> Outbox<'a> {
    fn new(
        sender: &'a Sender<SamplerEvent>,
        stats: &'a SamplerStats,
        interval: Duration,
    ) -> Outbox<'a> {
        Outbox {
            sender,
            stats,
            pending: Vec::new(),
            flushed_at: Instant::now(),
            interval,
        }
    }

    /// Where a tick queues its events.
    fn pending(&mut self) -> &mut Vec<SamplerEvent> {
        &mut self.pending
    }

    /// Send everything queued if it is time to, `now`. Fails when the receiver is gone.
    fn flush_if_due(&mut self, now: Instant) -> Result<(), Disconnected> {
        if now - self.flushed_at >= self.interval || self.pending.len() >= FLUSH_EVENTS {
            self.flushed_at = now;
            self.flush()?;
        }
        Ok(())
    }

    /// Send everything queued (every event of the ticks counted so far), then say so
    /// in [`SamplerStats::sent_ticks`].
    fn flush(&mut self) -> Result<(), Disconnected> {
        let ticks = self.stats.ticks.load(Ordering::Relaxed);
        for event in self.pending.drain(..) {
            self.sender.send(event).map_err(|_| Disconnected)?;
        }
        self.stats.sent_ticks.store(ticks, Ordering::Release);
        Ok(())
    }
}

/// The receiving end of the event channel is gone.
struct Disconnected;

fn sample(
    mut process: PythonProcess,
    config: SamplerConfig,
    stop: &AtomicBool,
    outbox: &mut Outbox<'_>,
    stats: &SamplerStats,
) -> EndReason {
    let start = Instant::now();
    let mut schedule = Schedule::new(start, config.rate_hz);
    let mut reader = StackReader::new(&process, config.mode).with_gc_frames(config.gc_frames);
    let mut pauser = (config.blocking || config.native).then(|| Pauser::new(process.pid));
    let mut native = config.native.then(|| NativeStacks::new(&process));
    loop {
        let tick_at = schedule.next_tick();
        let woken = loop {
            if stop.load(Ordering::Relaxed) {
                return EndReason::Stopped;
            }
            let now = Instant::now();
            if config.duration.is_some_and(|d| now - start >= d) {
                return EndReason::DurationElapsed;
            }
            if now >= tick_at {
                break now;
            }
            std::thread::sleep((tick_at - now).min(STOP_POLL));
        };
        stats.ticks.fetch_add(1, Ordering::Relaxed);
        if pauser.is_some() {
            reader.activity.snapshot();
        }
        let paused = match pauser.as_mut().map(Pauser::pause).transpose() {
            Ok(paused) => paused,
            Err(e) => return EndReason::PauseFailed(e.to_string()),
        };
        let elapsed = woken.saturating_duration_since(config.epoch);
        let from = outbox.pending().len();
        let tick = reader.read(&mut process, elapsed, outbox.pending());
        if let (Some(native), Some(paused)) = (native.as_mut(), paused.as_ref()) {
            native.add(&process, &mut reader, paused, outbox.pending(), from);
        }
        drop(paused);
        let now = Instant::now();
        match tick {
            Ok(tick) => {
                stats.errors.fetch_add(tick.errors, Ordering::Relaxed);
                stats.samples.fetch_add(tick.samples, Ordering::Relaxed);
                stats
                    .gil_on_for_good
                    .store(tick.gil_on_for_good, Ordering::Relaxed);
                if outbox.flush_if_due(now).is_err() {
                    return EndReason::Stopped;
                }
            }
            // A process that exec'd another program has ended as far as Python goes.
            Err(_) if !crate::target::process::is_running(process.pid) || process.replaced() => {
                return EndReason::TargetExited;
            }
            Err(_) => {
                stats.errors.fetch_add(1, Ordering::Relaxed);
            }
        }
        let dropped = schedule.advance(now);
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
    /// How many samples the tick queued.
    pub samples: u64,
    /// Threads whose stack could not be read consistently.
    pub errors: u64,
    /// Whether the main interpreter's GIL was on for good.
    pub gil_on_for_good: bool,
}

/// Reads the stacks a mode asks for, tick after tick.
pub struct StackReader {
    mode: Mode,
    /// Whether the stack of the thread running the garbage collector gets `<GC>` on top.
    gc_frames: bool,
    activity: ThreadActivity,
    prefetcher: Prefetcher,
    walker: StackWalker,
    /// The frames of the second read of a stack, by [`StackReader::checked`].
    again: Vec<RawFrame>,
    /// The thread list of the tick being read, kept to reuse its allocation.
    threads: Vec<ThreadState>,
    /// Frames seen for the first time while reading the current stack.
    new_frames: Vec<(FrameId, Frame)>,
    names: FxHashMap<u64, String>,
    names_read_at: Option<Instant>,
}

/// Least time between two reads of the thread names: they are read again only when a
/// thread without a known name shows up, and not more often than this.
const NAME_REFRESH: Duration = Duration::from_millis(250);

impl StackReader {
    /// A reader for `process` in `mode`.
    pub fn new<M: Memory>(process: &PythonProcess<M>, mode: Mode) -> StackReader {
        let prefetcher = if process.frames.stacked() {
            Prefetcher::new().with_frames_to_page_end()
        } else {
            Prefetcher::new()
        };
        StackReader {
            mode,
            gc_frames: false,
            activity: ThreadActivity::new(process.pid),
            prefetcher,
            walker: StackWalker::new(),
            again: Vec::new(),
            threads: Vec::new(),
            new_frames: Vec::new(),
            names: Default::default(),
            names_read_at: None,
        }
    }

    /// Top the stack of the thread running the garbage collector with a `<GC>` frame
    /// when `on`.
    pub fn with_gc_frames(mut self, on: bool) -> StackReader {
        self.gc_frames = on;
        self
    }

    /// Read thread names again if a thread has none yet (rate-limited), appending an
    /// event for each name that is new or changed.
    fn refresh_names<M: Memory>(
        &mut self,
        process: &mut PythonProcess<M>,
        threads: &[ThreadState],
        events: &mut Vec<SamplerEvent>,
    ) {
        let unknown = threads
            .iter()
            .any(|t| !self.names.contains_key(&t.thread_id));
        if !unknown
            || self
                .names_read_at
                .is_some_and(|at| at.elapsed() < NAME_REFRESH)
        {
            return;
        }
        self.names_read_at = Some(Instant::now());
        for (python_id, name) in process.thread_names() {
            if self.names.get(&python_id) != Some(&name) {
                self.names.insert(python_id, name.clone());
                events.push(SamplerEvent::ThreadName {
                    pid: process.pid,
                    python_id,
                    name,
                });
            }
        }
    }

    /// Read every thread the mode selects, once, appending to `events` the stacks
    /// (`elapsed` is their time), each after the frames seen for the first time in it,
    /// and the thread names learnt. Fails only when the thread list itself cannot be
    /// read (typically: the target exited).
    pub fn read<M: Memory + Clone>(
        &mut self,
        process: &mut PythonProcess<M>,
        elapsed: Duration,
        events: &mut Vec<SamplerEvent>,
    ) -> Result<Tick, ReadError> {
        let live = process.memory.clone();
        let mut memory = self.prefetcher.begin(&live);
        let mut threads = std::mem::take(&mut self.threads);
        let listing = process.thread_states(&memory, &mut threads)?;
        let count = process.code_count(&listing.interpreters);
        self.refresh_names(process, &threads, events);
        let mut new_frames = std::mem::take(&mut self.new_frames);
        let mut samples = 0;
        let mut errors = 0;
        for thread in &threads {
            if thread.frame == 0 {
                // No Python code running: nothing to sample, so no need for its state.
                continue;
            }
            let state = match (self.mode, thread.native_id) {
                (Mode::Gil, _) | (_, None) => RunState::Running,
                // The GIL holder runs Python code, or C code called from it, which by
                // convention releases the GIL before it blocks: no need to ask the kernel.
                _ if thread.holds_gil => RunState::Running,
                (_, Some(tid)) => self.activity.state(tid).unwrap_or(RunState::Running),
            };
            let idle = state != RunState::Running;
            let wanted = match self.mode {
                Mode::Wall => true,
                Mode::Cpu => !idle,
                Mode::Gil => thread.holds_gil,
            };
            if !wanted {
                continue;
            }
            let mut stack =
                self.consistent_stack(process, &mut memory, thread, count, &mut new_frames);
            match stack.as_mut() {
                Ok(frames) if self.gc_frames && thread.collecting_garbage && !frames.is_empty() => {
                    let at = self.gc_frame_position(thread);
                    let gc = Frame::garbage_collection();
                    frames.insert(at, self.walker.symbolizer.intern(gc, &mut new_frames));
                }
                _ => {}
            }
            events.extend(SamplerEvent::announcing(process.pid, new_frames.drain(..)));
            match stack {
                Ok(frames) if frames.is_empty() => {}
                Ok(frames) => {
                    samples += 1;
                    events.push(SamplerEvent::Sample(Sample {
                        elapsed,
                        thread: ThreadKey {
                            pid: process.pid,
                            python_id: thread.thread_id,
                            os_id: thread.native_id,
                        },
                        thread_state: thread.address,
                        frames,
                        idle,
                        wait: state
                            .wait()
                            .and_then(|wait| process.wait_kind(thread, wait)),
                        holds_gil: thread.holds_gil,
                    }));
                }
                Err(_) => errors += 1,
            }
        }
        self.activity
            .end_tick(threads.iter().filter_map(|thread| thread.native_id));
        self.threads = threads;
        self.new_frames = new_frames;
        self.walker.end_tick();
        self.prefetcher.finish(memory);
        Ok(Tick {
            samples,
            errors,
            gil_on_for_good: listing.gil_on_for_good,
        })
    }

    /// Where `<GC>` goes in the stack just read for `thread`, which runs the garbage
    /// collector: right inside the frame that started the collection, so that the
    /// frames the collector runs (finalizers) show above it; innermost where that frame
    /// is not known (before 3.15) or not on the stack.
    fn gc_frame_position(&self, thread: &ThreadState) -> usize {
        let started_in = thread.gc_started_in.and_then(|start| {
            let stack = self.walker.last_stack(thread.address)?;
            stack.iter().position(|frame| frame.address == start)
        });
        started_in.unwrap_or(0)
    }

    /// The raw frames of the stack last read for the thread whose state is at
    /// `thread_state`, innermost first: those of its last sample.
    pub fn last_stack(&self, thread_state: u64) -> Option<&[RawFrame]> {
        self.walker.last_stack(thread_state)
    }

    /// The id of a native frame, numbered with the Python frames of the samples.
    pub fn native_frame_id(
        &mut self,
        frame: &NativeFrame,
        new_frames: &mut Vec<(FrameId, Frame)>,
    ) -> FrameId {
        self.walker
            .symbolizer
            .intern(Frame::native(frame), new_frames)
    }

    /// The threads found by the last [`StackReader::read`], those without Python code
    /// included; their stacks are the samples that read produced.
    pub fn threads(&self) -> &[ThreadState] {
        &self.threads
    }

    /// Read a thread's stack consistently.
    ///
    /// A stack read entirely from the tick's batch was read within one system call, in
    /// link order: it stands as read. If that read was torn (a frame that is not one,
    /// because the top of the stack moved between the link and the frames), the batch
    /// is read again and the stack with it, up to [`BATCH_RETRIES`] times. A stack that
    /// needed reads from the process (new frames, or the first tick) was read over a
    /// longer time, while its top may have changed: it is read a second time and kept
    /// only if both reads agree (see [`StackReader::checked`]); if not, it is read and
    /// checked once more, from the process, and dropped if that fails too.
    fn consistent_stack<M: Memory>(
        &mut self,
        process: &PythonProcess<M>,
        memory: &mut TickMemory<'_, M>,
        thread: &ThreadState,
        count: Option<CodeCount>,
        new_frames: &mut Vec<(FrameId, Frame)>,
    ) -> Result<Vec<FrameId>, StackError> {
        let mut walked = self.walker.read(
            process,
            &*memory,
            (thread.address, thread.frame),
            count,
            new_frames,
        );
        let mut retries = 0;
        while memory.stack_from_copy() {
            if walked.is_ok() {
                return walked;
            }
            if retries == BATCH_RETRIES {
                break;
            }
            retries += 1;
            memory.refresh();
            memory.set_phase(Phase::Threads);
            let start = current_frame(process, &*memory, thread)?;
            if start == 0 {
                return Ok(Vec::new());
            }
            walked = self.walker.read(
                process,
                &*memory,
                (thread.address, start),
                count,
                new_frames,
            );
        }
        let live = memory.live();
        let (checked, now) = self.checked(process, live, thread, walked)?;
        if let Some(frames) = checked {
            return Ok(frames);
        }
        let walked = self
            .walker
            .read(process, live, (thread.address, now), count, new_frames);
        self.checked(process, live, thread, walked)?
            .0
            .ok_or(StackError::Changed)
    }

    /// A walked stack, if reading the thread's innermost frame and walking the frames
    /// again through `mem` gives the same frames; also the innermost frame as read again.
    ///
    /// Frames are compared by address, code and position (but for the innermost one's
    /// position, which moves while it runs). Comparing the innermost frame's address
    /// alone is not enough: 3.11+ frames live in a stack of slots, and a call that
    /// returns and another that takes its slot leave the address the same; a stack read
    /// while that happens can mix frames of different moments. Two reads that agree
    /// frame by frame show a stack that held still between them.
    fn checked<M: Memory>(
        &mut self,
        process: &PythonProcess<M>,
        mem: &impl Memory,
        thread: &ThreadState,
        walked: Result<Vec<FrameId>, StackError>,
    ) -> Result<(Option<Vec<FrameId>>, u64), StackError> {
        let now = current_frame(process, mem, thread)?;
        if now == 0 {
            return Ok((Some(Vec::new()), now));
        }
        let Ok(frames) = walked else {
            return Ok((None, now));
        };
        self.again.clear();
        if process.frames.walk(mem, now, &mut self.again).is_err() {
            return Ok((None, now));
        }
        let first = self.walker.last_stack(thread.address).unwrap_or_default();
        Ok((same_frames(first, &self.again).then_some(frames), now))
    }
}

/// Whether two reads of a stack found the same frames, the innermost one's position
/// aside.
fn same_frames(first: &[RawFrame], second: &[RawFrame]) -> bool {
    first.len() == second.len()
        && first.iter().zip(second).enumerate().all(|(i, (a, b))| {
            a.address == b.address && a.code == b.code && (i == 0 || a.position == b.position)
        })
}

/// How many times a stack torn in the tick's batch is read again from a fresh batch.
const BATCH_RETRIES: usize = 2;

/// The thread's innermost frame, read again.
fn current_frame<M: Memory>(
    process: &PythonProcess<M>,
    mem: &impl Memory,
    thread: &ThreadState,
) -> Result<u64, StackError> {
    Ok(process
        .threads
        .current_frame(mem, thread.address)
        .map_err(WalkError::from)?)
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

/// Walks stacks and symbolizes their frames, keeping the code cache and its buffers
/// from one stack to the next.
///
/// It also keeps each thread's previous stack: the frames at the root end of a stack
/// that are byte for byte what they were (same code address and position, same code
/// header) get the frame ids they had, without being symbolized again. Equal headers
/// mean the same function (see [`CodeHeader`]), so this is as safe as the code cache,
/// and on a deep stack whose top moves it saves almost all of the work.
#[derive(Default)]
pub struct StackWalker {
    symbolizer: Symbolizer,
    /// The stack being read: its frames, innermost first, and for each the index of
    /// its code object in `codes`.
    raw: Vec<RawFrame>,
    slots: Vec<u32>,
    /// The distinct code objects of the stack being read, and their headers.
    codes: Vec<u64>,
    headers: Vec<CodeHeader>,
    /// Index in `codes` of each code address.
    code_slot: FxHashMap<u64, u32>,
    code_headers: CodeHeaders,
    previous: FxHashMap<u64, PreviousStack>,
}

/// A thread's last stack as read and symbolized, innermost first.
#[derive(Default)]
struct PreviousStack {
    raw: Vec<RawFrame>,
    slots: Vec<u32>,
    headers: Vec<CodeHeader>,
    ids: Vec<FrameId>,
    /// Read since the last [`StackWalker::end_tick`].
    seen: bool,
}

impl StackWalker {
    /// A walker with an empty code cache.
    pub fn new() -> StackWalker {
        StackWalker::default()
    }

    /// Walk and symbolize the stack of a thread, given as (any value that identifies
    /// the thread, its innermost frame): frame ids, innermost first. Frames and code
    /// headers are read through `mem`; headers read earlier may be reused while
    /// `count`, the count of code objects that covers the stack, stays put (see
    /// [`CodeHeaders`]). What symbolizing a new code object needs (names,
    /// line table) is read from the process directly. Frames seen for the first time
    /// are appended to `new_frames`.
    pub fn read<M: Memory>(
        &mut self,
        process: &PythonProcess<M>,
        mem: &impl Memory,
        (thread, innermost): (u64, u64),
        count: Option<CodeCount>,
        new_frames: &mut Vec<(FrameId, Frame)>,
    ) -> Result<Vec<FrameId>, StackError> {
        self.raw.clear();
        mem.set_phase(Phase::Frames);
        process.frames.walk(mem, innermost, &mut self.raw)?;
        mem.set_phase(Phase::Code);
        self.index_codes();
        self.code_headers
            .read(&process.code, mem, &self.codes, count, &mut self.headers)
            .map_err(SymbolizeError::from)?;
        let previous = self.previous.entry(thread).or_default();
        previous.seen = true;
        // Runs of frames share a code object (recursion): compare each pair of headers
        // once per run, not once per frame.
        let mut same_headers = None;
        let unchanged = self
            .raw
            .iter()
            .zip(&self.slots)
            .rev()
            .zip(previous.raw.iter().zip(&previous.slots).rev())
            .take_while(|((now, &slot), (before, &before_slot))| {
                if now != before {
                    return false;
                }
                if same_headers != Some((slot, before_slot)) {
                    if self.headers[slot as usize] != previous.headers[before_slot as usize] {
                        return false;
                    }
                    same_headers = Some((slot, before_slot));
                }
                true
            })
            .count();
        let changed = self.raw.len() - unchanged;
        let mut ids = Vec::with_capacity(self.raw.len());
        for (&frame, &slot) in self.raw.iter().zip(&self.slots).take(changed) {
            let id = self.symbolizer.symbolize(
                &process.memory,
                &process.code,
                frame,
                self.headers[slot as usize],
                new_frames,
            )?;
            ids.push(id);
        }
        ids.extend_from_slice(&previous.ids[previous.ids.len() - unchanged..]);
        std::mem::swap(&mut previous.raw, &mut self.raw);
        std::mem::swap(&mut previous.slots, &mut self.slots);
        std::mem::swap(&mut previous.headers, &mut self.headers);
        previous.ids.clone_from(&ids);
        Ok(ids)
    }

    /// List the distinct code objects of `raw` in `codes`, and the index there of each
    /// frame's in `slots`: each header is then read once, however many frames run it
    /// (recursion).
    fn index_codes(&mut self) {
        self.codes.clear();
        self.slots.clear();
        self.code_slot.clear();
        for frame in &self.raw {
            // Frames next to each other often run the same code: skip the lookup.
            let slot = match self.slots.last() {
                Some(&last) if self.codes[last as usize] == frame.code => last,
                _ => *self.code_slot.entry(frame.code).or_insert_with(|| {
                    self.codes.push(frame.code);
                    self.codes.len() as u32 - 1
                }),
            };
            self.slots.push(slot);
        }
    }

    /// The raw frames of the last stack read for `thread`, innermost first.
    pub fn last_stack(&self, thread: u64) -> Option<&[RawFrame]> {
        self.previous.get(&thread).map(|p| p.raw.as_slice())
    }

    /// Close a tick: drop the previous stacks of threads not read in it, and let the
    /// code counts read in it cover the code headers read in the next.
    pub fn end_tick(&mut self) {
        self.previous
            .retain(|_, previous| std::mem::take(&mut previous.seen));
        self.code_headers.end_tick();
    }
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
