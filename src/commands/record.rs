//! `pyscry record`: sample until done, then write the profile and print a summary.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::RecvTimeoutError;

use super::attach::{check_mode, describe_target, open_python, Opened};
use super::output::{table_output, OutputFile};
use super::sources::{SourceCollector, SourceCopy};
use super::subprocesses::ProcessWatcher;
use super::view;
use crate::cli::RecordArgs;
use crate::error::{Error, Result};
use crate::report::{table, Format, Profile, ProfileInfo};
use crate::sampler::{self, EndReason, SamplerConfig, SamplerCounts, SamplerEvent};
use crate::symbolize::FrameMerger;
use crate::target::process;

/// How often the status line is redrawn, and a streamed recording flushed.
const STATUS_INTERVAL: Duration = Duration::from_millis(250);

/// Run `pyscry record`; returns the exit code.
pub fn run(args: RecordArgs) -> Result<i32> {
    let format = Format::choose(args.format, args.output.as_deref());
    let path = args
        .output
        .clone()
        .unwrap_or_else(|| default_output_path(&args, format));
    // Fail on an unwritable path before starting anything.
    let existed = path.exists();
    let output = OutputFile::open(&path, format)?;
    let result = record(&args, output);
    // A failed run leaves no empty output behind, but never removes what it did not
    // create (such as an existing file, or /dev/null).
    if result.is_err() && !existed && path.is_file() {
        let _ = std::fs::remove_file(&path);
    }
    result
}

fn record(args: &RecordArgs, mut output: OutputFile) -> Result<i32> {
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&stop)).map_err(anyhow::Error::from)?;
    }
    let mut child = match args.target.pid {
        Some(_) => None,
        None => Some(process::launch(
            &args.target.command,
            output.is_standard_output(),
        )?),
    };
    let pid = args
        .target
        .pid
        .unwrap_or_else(|| child.as_ref().map_or(0, Child::id));
    let (events_tx, events_rx) = crossbeam_channel::unbounded();
    let started = Instant::now();
    let config = SamplerConfig {
        rate_hz: args.rate,
        duration: args.duration.map(Duration::from_secs_f64),
        mode: args.sampling.mode,
        blocking: args.sampling.blocking,
        native: args.sampling.native,
        gc_frames: args.sampling.gc_frames(),
        epoch: started,
        burst_interval: STATUS_INTERVAL,
    };
    // Descendants are watched from the start, while the target itself may still be
    // a wrapper on its way to exec Python, or a launcher that never will.
    let watcher = args.subprocesses.then(|| {
        let deadline = config.duration.map(|d| started + d);
        let (stop, events) = (Arc::clone(&stop), events_tx.clone());
        ProcessWatcher::start(pid, command(args), config, deadline, stop, events)
    });
    // Stops what was started when no recording comes of it.
    let abandon = |child: &mut Option<Child>, watcher: Option<ProcessWatcher>| {
        stop.store(true, Ordering::Relaxed);
        if let Some(child) = child.as_mut() {
            let _ = process::terminate(child);
        }
        watcher.map(ProcessWatcher::join);
    };
    let opened = open_python(pid, child.as_mut(), &stop);
    let python = match opened {
        Ok(Opened::Ready(python)) => Some(python),
        // A launcher (a shell script, make, a supervisor) whose descendants run Python.
        Err(Error::NotPython { .. }) if args.subprocesses => {
            eprintln!(
                "pyscry: process {pid} ({}) does not run Python: sampling only its \
                 descendants that do",
                command(args)
            );
            None
        }
        Ok(Opened::ExitedEarly) => {
            eprintln!("pyscry: {pid} exited before any Python code could be sampled");
            watcher.map(ProcessWatcher::join);
            let profile = Profile::new(base_info(args, pid, ""));
            return finish(args, output, profile, child);
        }
        Err(error) => {
            abandon(&mut child, watcher);
            return Err(error);
        }
    };
    let info = base_info(args, pid, &describe_target(python.as_deref()));
    let checked = match &python {
        Some(python) => check_mode(args.sampling.mode, python),
        None => Ok(()),
    };
    if let Err(error) = checked.and_then(|()| output.start(&info)) {
        abandon(&mut child, watcher);
        return Err(error);
    }
    let mut profile = Profile::new(info);
    if output.format().needs_timeline() {
        profile.keep_timeline();
    }
    // Without Python in the target, the channel closes when the watcher and the
    // samplers it started are done.
    let sampler =
        python.map(|python| sampler::start(*python, config, Arc::clone(&stop), events_tx));
    let mut status = StatusLine::new();
    // Each process's sampler numbers its own frames; the outputs need one numbering.
    // One process's are already that.
    let mut frames = args.subprocesses.then(FrameMerger::new);
    let mut sources =
        (output.format().shows_source() && !args.no_sources).then(SourceCollector::default);
    let stats = sampler
        .as_ref()
        .map_or_else(Arc::default, |sampler| Arc::clone(&sampler.stats));
    // A failure to write the recording stops sampling; it is reported once the
    // sampler has let go of the target.
    let mut write_error = None;
    let mut flushed_at = Instant::now();
    loop {
        // Without a status line to redraw there is nothing to do until events come.
        let received = match status.enabled {
            true => events_rx.recv_timeout(STATUS_INTERVAL),
            false => events_rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
        };
        let burst: Vec<SamplerEvent> = match received {
            // The sampler sends in bursts: take the whole burst before looking up.
            Ok(event) => std::iter::once(event)
                .chain(events_rx.try_iter())
                .filter_map(|event| FrameMerger::merge_any(frames.as_mut(), event))
                .collect(),
            Err(RecvTimeoutError::Timeout) => Vec::new(),
            Err(RecvTimeoutError::Disconnected) => break,
        };
        burst.iter().for_each(|event| profile.add_event(event));
        let copies: Vec<SourceCopy> = match &mut sources {
            Some(sources) => burst.iter().filter_map(|e| sources.collect(e)).collect(),
            None => Vec::new(),
        };
        if write_error.is_none() {
            let mut written = burst
                .iter()
                .try_for_each(|event| output.add_event(event))
                .and_then(|()| {
                    copies
                        .iter()
                        .try_for_each(|(filename, text)| output.add_source(filename, text))
                });
            if written.is_ok() && flushed_at.elapsed() >= STATUS_INTERVAL {
                flushed_at = Instant::now();
                written = output.flush();
            }
            if let Err(error) = written {
                stop.store(true, Ordering::Relaxed);
                write_error = Some(error);
            }
        }
        for (filename, text) in copies {
            profile.sources.insert(filename, text);
        }
        // With --subprocesses, the counts add up over every process sampled so far.
        status.update(started.elapsed(), || {
            let descendants = watcher.as_ref().map(|w| w.counters().stats());
            SamplerCounts::sum(std::iter::once(&stats).chain(descendants.iter().flatten()))
        });
    }
    let reason = sampler.map(|sampler| sampler.join());
    // The channel closed: every process's sampler has ended. Counts add up over them;
    // ticks are the target's own, so that the rate printed is the rate asked for
    // (where the target runs no Python, they add up too).
    let mut all_stats = vec![stats];
    all_stats.extend(watcher.map(ProcessWatcher::join).unwrap_or_default());
    let counts = SamplerCounts::sum(&all_stats);
    status.clear();
    profile.info.duration_secs = started.elapsed().as_secs_f64();
    profile.info.ticks = match reason {
        Some(_) => all_stats[0].ticks.load(Ordering::Relaxed),
        None => counts.ticks,
    };
    profile.info.samples = counts.samples;
    profile.info.errors = counts.errors;
    profile.info.dropped_ticks = counts.dropped_ticks;
    let failed = match (write_error, reason) {
        (Some(error), _) => Some(error),
        (None, Some(EndReason::PauseFailed(why))) => {
            Some(anyhow::anyhow!("cannot pause process {pid} (--blocking): {why}").into())
        }
        (None, Some(EndReason::Panicked)) => {
            eprintln!(
                "pyscry: sampling stopped on an internal error (a bug in pyscry; please \
                 report it); writing what was recorded"
            );
            None
        }
        (None, Some(EndReason::TargetExited)) if child.is_none() => {
            eprintln!("pyscry: process {pid} exited; writing what was recorded");
            None
        }
        _ => None,
    };
    if let Some(error) = failed {
        if let Some(child) = child.as_mut() {
            let _ = process::terminate(child);
        }
        return Err(error);
    }
    finish(args, output, profile, child)
}

/// Write the end of the output, stop a launched program that is still running, and
/// print the summary. A launched program's own failure is reported but is not
/// pyscry's.
fn finish(
    args: &RecordArgs,
    output: OutputFile,
    mut profile: Profile,
    child: Option<Child>,
) -> Result<i32> {
    // A recording keeps every thread (its end holds only the counts); the thread
    // options shape the rendered outputs and the table.
    view::apply(&args.view, &mut profile);
    let name = output.name();
    // A profile written to standard output keeps it to itself: the table goes to
    // standard error then.
    let table_to_stderr = output.is_standard_output();
    output.finish(&profile)?;
    if let Some(mut child) = child {
        let program = &args.target.command[0];
        match child.try_wait().map_err(anyhow::Error::from)? {
            Some(status) if !status.success() => {
                eprintln!("pyscry: {program} {}", process::describe_exit(status));
            }
            Some(_) => {}
            None => {
                process::terminate(&mut child).map_err(anyhow::Error::from)?;
                eprintln!(
                    "pyscry: stopped {program} (pid {}) at the end of the recording",
                    child.id()
                );
            }
        }
    }
    let stderr = &mut std::io::stderr();
    let i = &profile.info;
    let rate = if i.duration_secs > 0.0 {
        i.ticks as f64 / i.duration_secs
    } else {
        0.0
    };
    let _ = writeln!(
        stderr,
        "pyscry: wrote {} ({} ticks, {} samples, {} errors, {} dropped ticks, effective rate {:.1} Hz)",
        name,
        i.ticks,
        i.samples,
        i.errors,
        i.dropped_ticks,
        rate
    );
    let _ = table::print_top(
        &profile,
        args.table.top,
        args.table.sort,
        &mut table_output(table_to_stderr),
    );
    Ok(0)
}

/// The target's command line: the one launched, or the attached process's.
fn command(args: &RecordArgs) -> String {
    match args.target.pid {
        Some(pid) => process::command_line(pid),
        None => args.target.command.join(" "),
    }
}

fn base_info(args: &RecordArgs, pid: u32, python: &str) -> ProfileInfo {
    ProfileInfo {
        pid,
        command: command(args),
        python: python.to_string(),
        mode: args.sampling.mode.to_string(),
        rate_hz: args.rate,
        started_unix_secs: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        ..ProfileInfo::default()
    }
}

/// `pyscry-<name>-<YYYYmmdd-HHMMSS>.<ext>`, named after the script or program.
fn default_output_path(args: &RecordArgs, format: Format) -> PathBuf {
    let name = match args.target.pid {
        Some(pid) => format!("{pid}"),
        None => {
            let command = &args.target.command;
            let script = command.iter().skip(1).find(|a| a.ends_with(".py"));
            let chosen = script.unwrap_or(&command[0]);
            Path::new(chosen)
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "python".into())
        }
    };
    PathBuf::from(format!(
        "pyscry-{name}-{}.{}",
        local_timestamp(),
        format.extension()
    ))
}

fn local_timestamp() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs()) as libc::time_t;
    // SAFETY: localtime_r writes only into the `tm` we pass.
    let tm = unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        libc::localtime_r(&now, &mut tm);
        tm
    };
    format!(
        "{:04}{:02}{:02}-{:02}{:02}{:02}",
        tm.tm_year + 1900,
        tm.tm_mon + 1,
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec
    )
}

/// The one-line live status on stderr, shown only when stderr is a terminal, and
/// rewritten at most every [`STATUS_INTERVAL`].
struct StatusLine {
    enabled: bool,
    shown_at: Option<Duration>,
}

impl StatusLine {
    fn new() -> StatusLine {
        StatusLine {
            enabled: std::io::stderr().is_terminal(),
            shown_at: None,
        }
    }

    /// Show the counters at `elapsed` since the start, unless they were shown less than
    /// [`STATUS_INTERVAL`] ago.
    /// Redraw, if it is time to, with the counts of the samplers `counts` adds up.
    fn update(&mut self, elapsed: Duration, counts: impl FnOnce() -> SamplerCounts) {
        let due = self
            .shown_at
            .is_none_or(|at| elapsed.saturating_sub(at) >= STATUS_INTERVAL);
        if self.enabled && due {
            self.shown_at = Some(elapsed);
            let counts = counts();
            eprint!(
                "\r\x1b[2Kpyscry: {:.1} s, {} samples, {} errors",
                elapsed.as_secs_f64(),
                counts.samples,
                counts.errors
            );
        }
    }

    fn clear(&self) {
        if self.enabled {
            eprint!("\r\x1b[2K");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_status_line_is_redrawn_at_most_every_interval() {
        let mut status = StatusLine {
            enabled: true,
            shown_at: None,
        };
        let ms = Duration::from_millis;
        for (elapsed, shown) in [
            (0, 0),
            (100, 0),
            (249, 0),
            (250, 250),
            (260, 250),
            (600, 600),
        ] {
            status.update(ms(elapsed), SamplerCounts::default);
            assert_eq!(status.shown_at, Some(ms(shown)), "at {elapsed} ms");
        }
        status.clear();
    }
}
