//! `pyscry record`: sample until done, then write the profile and print a summary.

use std::fs::File;
use std::io::{BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::RecvTimeoutError;

use super::attach::{check_mode, open_python, Opened};
use crate::cli::RecordArgs;
use crate::error::{Error, Result};
use crate::report::{table, Profile, ProfileInfo};
use crate::sampler::{self, EndReason, SamplerConfig, SamplerStats};
use crate::target::process;

/// How often the status line is redrawn.
const STATUS_INTERVAL: Duration = Duration::from_millis(250);

/// Run `pyscry record`; returns the exit code.
pub fn run(args: RecordArgs) -> Result<i32> {
    let path = args
        .output
        .clone()
        .unwrap_or_else(|| default_output_path(&args));
    // Fail on an unwritable path before starting anything.
    let existed = path.exists();
    // Opened without truncating: a failed run must not destroy an earlier recording.
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|source| Error::OutputNotWritable {
            path: path.clone(),
            source,
        })?;
    let result = record(&args, &path, file);
    // A failed run leaves no empty output behind, but never removes what it did not
    // create (such as an existing file, or /dev/null).
    if result.is_err() && !existed && path.is_file() {
        let _ = std::fs::remove_file(&path);
    }
    result
}

fn record(args: &RecordArgs, path: &Path, file: File) -> Result<i32> {
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&stop)).map_err(anyhow::Error::from)?;
    }
    let mut child = match args.target.pid {
        Some(_) => None,
        None => Some(process::launch(&args.target.command)?),
    };
    let pid = args
        .target
        .pid
        .unwrap_or_else(|| child.as_ref().map_or(0, Child::id));
    let opened = open_python(pid, child.as_mut(), &stop);
    let python = match opened {
        Ok(Opened::Ready(python)) => python,
        Ok(Opened::ExitedEarly) => {
            eprintln!("pyscry: {pid} exited before any Python code could be sampled");
            return finish(
                args,
                path,
                file,
                Profile::new(base_info(args, pid, "")),
                child,
            );
        }
        Err(error) => {
            if let Some(child) = child.as_mut() {
                let _ = process::terminate(child);
            }
            return Err(error);
        }
    };
    if let Err(error) = check_mode(args.sampling.mode, &python) {
        if let Some(child) = child.as_mut() {
            let _ = process::terminate(child);
        }
        return Err(error);
    }
    let mut profile = Profile::new(base_info(args, pid, &python.describe()));
    let (events_tx, events_rx) = crossbeam_channel::unbounded();
    let config = SamplerConfig {
        rate_hz: args.rate,
        duration: args.duration.map(Duration::from_secs_f64),
        mode: args.sampling.mode,
        blocking: args.sampling.blocking,
    };
    let started = Instant::now();
    let sampler = sampler::start(*python, config, Arc::clone(&stop), events_tx);
    let mut status = StatusLine::new();
    let stats = Arc::clone(&sampler.stats);
    loop {
        match events_rx.recv_timeout(STATUS_INTERVAL) {
            // The sampler sends in bursts: take the whole burst before looking up.
            Ok(event) => {
                profile.add_event(event);
                events_rx
                    .try_iter()
                    .for_each(|event| profile.add_event(event));
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        status.update(started.elapsed(), &stats);
    }
    let reason = sampler.join();
    status.clear();
    profile.info.duration_secs = started.elapsed().as_secs_f64();
    profile.info.ticks = stats.ticks.load(Ordering::Relaxed);
    profile.info.samples = stats.samples.load(Ordering::Relaxed);
    profile.info.errors = stats.errors.load(Ordering::Relaxed);
    profile.info.dropped_ticks = stats.dropped_ticks.load(Ordering::Relaxed);
    match reason {
        EndReason::TargetExited if child.is_none() => {
            eprintln!("pyscry: process {pid} exited; writing what was recorded");
        }
        EndReason::PauseFailed(why) => {
            if let Some(child) = child.as_mut() {
                let _ = process::terminate(child);
            }
            return Err(anyhow::anyhow!("cannot pause process {pid} (--blocking): {why}").into());
        }
        _ => {}
    }
    select_threads(args, pid, &mut profile);
    finish(args, path, file, profile, child)
}

/// Apply `--thread`, `--main-thread` and `--threads` to the profile.
fn select_threads(args: &RecordArgs, pid: u32, profile: &mut Profile) {
    profile.show_threads = args.threads;
    if args.main_thread {
        profile.retain_threads(|thread, _| thread.os_id == Some(pid));
    }
    if !args.only_threads.is_empty() {
        profile.retain_threads(|thread, name| {
            args.only_threads.iter().any(|wanted| {
                Some(wanted.as_str()) == name
                    || thread.os_id.is_some_and(|tid| tid.to_string() == *wanted)
            })
        });
    }
}

/// Write the profile, stop a launched program that is still running, and print the
/// summary. A launched program's own failure is reported but is not pyscry's.
fn finish(
    args: &RecordArgs,
    path: &Path,
    file: File,
    profile: Profile,
    child: Option<Child>,
) -> Result<i32> {
    let mut out = BufWriter::new(&file);
    file.set_len(0)
        .map_err(anyhow::Error::from)
        .and_then(|()| args.format.renderer().render(&profile, &mut out))
        .and_then(|()| Ok(out.flush()?))
        .map_err(|e| Error::OutputNotWritable {
            path: path.to_path_buf(),
            source: std::io::Error::other(e.to_string()),
        })?;
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
        path.display(),
        i.ticks,
        i.samples,
        i.errors,
        i.dropped_ticks,
        rate
    );
    let _ = table::print_top(&profile, args.top, &mut std::io::stdout());
    Ok(0)
}

fn base_info(args: &RecordArgs, pid: u32, python: &str) -> ProfileInfo {
    ProfileInfo {
        pid,
        command: match args.target.pid {
            Some(pid) => process::command_line(pid),
            None => args.target.command.join(" "),
        },
        python: python.to_string(),
        mode: args.sampling.mode.to_string(),
        rate_hz: args.rate,
        ..ProfileInfo::default()
    }
}

/// `pyscry-<name>-<YYYYmmdd-HHMMSS>.<ext>`, named after the script or program.
fn default_output_path(args: &RecordArgs) -> PathBuf {
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
        args.format.extension()
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
    fn update(&mut self, elapsed: Duration, stats: &SamplerStats) {
        let due = self
            .shown_at
            .is_none_or(|at| elapsed.saturating_sub(at) >= STATUS_INTERVAL);
        if self.enabled && due {
            self.shown_at = Some(elapsed);
            eprint!(
                "\r\x1b[2Kpyscry: {:.1} s, {} samples, {} errors",
                elapsed.as_secs_f64(),
                stats.samples.load(Ordering::Relaxed),
                stats.errors.load(Ordering::Relaxed)
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
        let stats = SamplerStats::default();
        let ms = Duration::from_millis;
        for (elapsed, shown) in [
            (0, 0),
            (100, 0),
            (249, 0),
            (250, 250),
            (260, 250),
            (600, 600),
        ] {
            status.update(ms(elapsed), &stats);
            assert_eq!(status.shown_at, Some(ms(shown)), "at {elapsed} ms");
        }
        status.clear();
    }
}
