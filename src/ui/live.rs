//! The live view's event loop: take the sampler's events in, refresh the numbers on
//! schedule, answer keys, and notice when the target ends.

use std::io::IsTerminal;
use std::process::Child;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, TryRecvError};
use crossterm::event::{self, Event, KeyEventKind};

use super::app::{App, Effect};
use super::terminal::Tui;
use super::usage::Usage;
use super::view;
use super::window::Aggregator;
use crate::sampler::{
    CounterSet, EndReason, SamplerCounts, SamplerEvent, SamplerHandle, SamplerStats,
};
use crate::symbolize::FrameMerger;
use crate::target::process;

/// Longest wait for a key before the sampler's events are taken in again and the stop
/// flag is checked.
pub const POLL: Duration = Duration::from_millis(50);

/// What the loop watches.
pub struct Watch<'a> {
    /// The target's running sampler; `None` when the target itself runs no Python
    /// and only its descendants are sampled.
    pub sampler: Option<SamplerHandle>,
    /// With `--subprocesses`, the counters of the samplers of the target's descendants,
    /// as they start.
    pub descendants: Option<CounterSet>,
    /// Its events.
    pub events: Receiver<SamplerEvent>,
    /// Raised by a signal or on quitting; stops the sampler.
    pub stop: Arc<AtomicBool>,
    /// The program we launched, if we did.
    pub child: Option<&'a mut Child>,
    /// Time between refreshes.
    pub delay: Duration,
    /// When sampling started: the first window opens then. With `--subprocesses`,
    /// descendants are sampled while the target itself is still being opened.
    pub started: Instant,
    /// Gives the frames of several processes one numbering, when their samplers send
    /// into `events` (`--subprocesses`).
    pub frames: Option<FrameMerger>,
}

/// Show `app` on `tui` until the user quits or a signal raises the stop flag.
pub fn run(tui: &mut Tui, app: App, watch: Watch) -> anyhow::Result<()> {
    let started = watch.started;
    let mut live = Live {
        target_stats: watch.sampler.as_ref().map(|s| Arc::clone(&s.stats)),
        aggregator: Aggregator::new(started, app.header.rate_hz),
        usage: Usage::new(app.header.pid, watch.descendants.is_some()),
        sampling: true,
        sampler: watch.sampler,
        descendants: watch.descendants,
        app,
        started,
        next_refresh: started + watch.delay,
        delay: watch.delay,
        frames: watch.frames,
    };
    live.usage.read(started);
    let result = live.run(tui, &watch.events, &watch.stop, watch.child);
    watch.stop.store(true, Ordering::Relaxed);
    if let Some(sampler) = live.sampler.take() {
        sampler.join();
    }
    result
}

struct Live {
    /// The target's own counters, whose ticks time the windows; `None` when the
    /// target runs no Python.
    target_stats: Option<Arc<SamplerStats>>,
    aggregator: Aggregator,
    usage: Usage,
    /// Until sampling ends.
    sampling: bool,
    /// The target's sampler, until it is joined.
    sampler: Option<SamplerHandle>,
    descendants: Option<CounterSet>,
    app: App,
    started: Instant,
    next_refresh: Instant,
    delay: Duration,
    frames: Option<FrameMerger>,
}

impl Live {
    fn run(
        &mut self,
        tui: &mut Tui,
        events: &Receiver<SamplerEvent>,
        stop: &AtomicBool,
        mut child: Option<&mut Child>,
    ) -> anyhow::Result<()> {
        let input = spawn_input_reader();
        let mut dirty = true;
        loop {
            // Read before the events are taken in, so that the window closed below has
            // every sample of the ticks it counts.
            let sent_ticks = self.target_ticks();
            if self.take_events(events) {
                self.sampling_ended(stop, child.as_deref_mut())?;
                dirty = true;
            }
            // A terminal that hung up without a signal reaching us ends the view too.
            if stop.load(Ordering::Relaxed) || !std::io::stdin().is_terminal() {
                return Ok(());
            }
            let now = Instant::now();
            if self.sampling && now >= self.next_refresh {
                self.next_refresh = (self.next_refresh + self.delay).max(now);
                if !self.app.paused {
                    self.refresh(now, sent_ticks);
                    dirty = true;
                }
            }
            if dirty {
                tui.draw(|frame| view::draw(frame, &mut self.app))?;
                dirty = false;
            }
            let wait = self.next_refresh.saturating_duration_since(now).min(POLL);
            match input.recv_timeout(wait) {
                Ok(Ok(Event::Key(key))) if key.kind != KeyEventKind::Release => {
                    let effect = self.app.handle_key(key, &self.aggregator.threads());
                    if effect == Effect::Quit {
                        return Ok(());
                    }
                    self.apply(effect);
                    dirty = effect != Effect::Nothing;
                }
                Ok(Ok(Event::Resize(..))) => dirty = true,
                Ok(Ok(_)) | Err(RecvTimeoutError::Timeout) => {}
                Ok(Err(error)) => return Err(error.into()),
                Err(RecvTimeoutError::Disconnected) => return Ok(()),
            }
        }
    }

    /// Carry out what a key asked for (all but quitting).
    fn apply(&mut self, effect: Effect) {
        let now = Instant::now();
        match effect {
            Effect::Requery => self.requery(),
            Effect::Resume if self.sampling => {
                self.refresh(now, self.target_ticks());
                self.next_refresh = now + self.delay;
            }
            Effect::Reset => {
                self.aggregator.reset(now, self.target_ticks());
                self.requery();
            }
            Effect::Nothing | Effect::Redraw | Effect::Resume | Effect::Quit => {}
        }
    }

    /// Take in every event waiting; true when the sampler has just ended.
    fn take_events(&mut self, events: &Receiver<SamplerEvent>) -> bool {
        if !self.sampling {
            return false;
        }
        loop {
            match events.try_recv() {
                Ok(event) => {
                    let merged = FrameMerger::merge_any(self.frames.as_mut(), event);
                    merged
                        .into_iter()
                        .for_each(|e| self.aggregator.add_event(e));
                }
                Err(TryRecvError::Empty) => return false,
                Err(TryRecvError::Disconnected) => return true,
            }
        }
    }

    /// The target's ticks whose samples have been sent ([`SamplerStats::sent_ticks`]);
    /// 0 when it runs no Python, so that windows fall back to the nominal tick.
    fn target_ticks(&self) -> u64 {
        let ticks = self.target_stats.as_ref().map(|s| &s.sent_ticks);
        ticks.map_or(0, |ticks| ticks.load(Ordering::Acquire))
    }

    /// Close the window at `now`, when the target's sampler had sent the samples of
    /// `ticks` ticks, read the counters and the target's usage, and recompute.
    fn refresh(&mut self, now: Instant, ticks: u64) {
        self.aggregator.rotate(now, ticks);
        let usage = self.usage.read(now);
        let descendants = self.descendants.as_ref().map(CounterSet::stats);
        let counts =
            SamplerCounts::sum(self.target_stats.iter().chain(descendants.iter().flatten()));
        let header = &mut self.app.header;
        header.elapsed = now - self.started;
        header.samples = counts.samples;
        header.errors = counts.errors;
        header.dropped_ticks = counts.dropped_ticks;
        header.threads = self.aggregator.window_threads();
        if header.processes.is_some() {
            header.processes = Some(self.aggregator.window_processes());
        }
        // A free-threaded build can turn its GIL on while it runs, and then for good.
        header.has_gil |= self
            .target_stats
            .as_ref()
            .is_some_and(|stats| stats.gil_on_for_good.load(Ordering::Relaxed));
        header.gil_percent = self
            .aggregator
            .window_gil_percent()
            .filter(|_| header.has_gil);
        header.gil_waiters = self
            .aggregator
            .window_gil_waiters()
            .filter(|_| header.has_gil);
        header.cpu_percent = usage.cpu_percent.or(header.cpu_percent);
        header.rss_bytes = usage.rss_bytes.or(header.rss_bytes);
        self.requery();
    }

    fn requery(&mut self) {
        self.app.table = self.aggregator.table(self.app.query());
    }

    /// The samplers' channel closed: say how the target ended and keep the final
    /// numbers on screen. The target's sampler ending for any other reason than the
    /// target exiting, or our stop flag, is an error.
    fn sampling_ended(
        &mut self,
        stop: &AtomicBool,
        child: Option<&mut Child>,
    ) -> anyhow::Result<()> {
        self.sampling = false;
        let reason = self.sampler.take().map(SamplerHandle::join);
        if stop.load(Ordering::Relaxed) {
            return Ok(());
        }
        if reason.is_some_and(|reason| reason != EndReason::TargetExited) {
            anyhow::bail!("sampling stopped unexpectedly: the sampler thread failed");
        }
        // Every event is in: the sampler has ended.
        self.refresh(Instant::now(), self.target_ticks());
        self.app.header.ended = Some(match child.map(Child::try_wait) {
            Some(Ok(Some(status))) => process::describe_exit(status),
            _ => "exited".to_string(),
        });
        Ok(())
    }
}

/// Read terminal events on a thread of their own. crossterm spins without returning
/// when the terminal hangs up, so reading must not block the loop that watches the stop
/// flag; the thread ends with the process.
fn spawn_input_reader() -> Receiver<std::io::Result<Event>> {
    let (tx, rx) = crossbeam_channel::bounded(64);
    std::thread::Builder::new()
        .name("pyscry-input".into())
        .spawn(move || loop {
            let event = event::read();
            let failed = event.is_err();
            if tx.send(event).is_err() || failed {
                return;
            }
        })
        .expect("spawning the input thread");
    rx
}
