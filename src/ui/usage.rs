//! The target's CPU use and resident memory, from `/proc`, for the live view's header;
//! with `--subprocesses`, those of the target and its descendants together.

use std::collections::HashMap;
use std::time::Instant;

use crate::target::process;

/// Reads `/proc/PID/stat` and `/proc/PID/statm` of the processes watched, remembering
/// each one's last CPU reading so that each refresh can say how busy they were since
/// the previous one.
#[derive(Debug)]
pub struct Usage {
    pid: u32,
    /// Whether `pid`'s descendants count too.
    descendants: bool,
    /// When CPU times were last read, and what each process's was (seconds).
    last: Option<(Instant, HashMap<u32, f64>)>,
    ticks_per_sec: f64,
    page_size: u64,
}

/// One reading; a value is missing when it could not be read (the target is gone or a
/// zombie).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Reading {
    /// CPU time used since the previous reading over the wall-clock time between them,
    /// as a percentage (above 100 when several threads run at once).
    pub cpu_percent: Option<f64>,
    /// Resident set size in bytes (added up over the processes: pages they share count
    /// once for each, as in `top`).
    pub rss_bytes: Option<u64>,
}

impl Usage {
    /// A reader for process `pid`, and with `descendants` for every process below it.
    pub fn new(pid: u32, descendants: bool) -> Usage {
        // SAFETY: sysconf only reads configuration values.
        let (ticks, page) = unsafe {
            (
                libc::sysconf(libc::_SC_CLK_TCK),
                libc::sysconf(libc::_SC_PAGESIZE),
            )
        };
        Usage {
            pid,
            descendants,
            last: None,
            ticks_per_sec: if ticks > 0 { ticks as f64 } else { 100.0 },
            page_size: if page > 0 { page as u64 } else { 4096 },
        }
    }

    /// Read the usage at `now`. The first reading has no CPU percentage. A process
    /// that appeared since the previous reading counts with all its CPU time, which it
    /// used since then; one that has gone counts no more.
    pub fn read(&mut self, now: Instant) -> Reading {
        let mut pids = vec![self.pid];
        if self.descendants {
            pids.extend(process::descendants(self.pid));
        }
        let cpu: HashMap<u32, f64> = pids
            .iter()
            .filter_map(|&pid| {
                let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
                Some((pid, cpu_ticks(&stat)? as f64 / self.ticks_per_sec))
            })
            .collect();
        let cpu_percent = match &self.last {
            Some((then, last)) if now > *then && !cpu.is_empty() => {
                Some(100.0 * cpu_used(last, &cpu) / (now - *then).as_secs_f64())
            }
            _ => None,
        };
        if !cpu.is_empty() {
            self.last = Some((now, cpu));
        }
        let rss_bytes = pids
            .iter()
            .filter_map(|pid| {
                let statm = std::fs::read_to_string(format!("/proc/{pid}/statm")).ok()?;
                statm.split_whitespace().nth(1)?.parse::<u64>().ok()
            })
            // A zombie has no memory left to report.
            .filter(|&pages| pages > 0)
            .map(|pages| pages * self.page_size)
            .reduce(|a, b| a + b);
        Reading {
            cpu_percent,
            rss_bytes,
        }
    }
}

/// CPU seconds used between two readings of each process's CPU time: a process only in
/// `now` is new, and all its time is since `last`; one only in `last` has gone.
fn cpu_used(last: &HashMap<u32, f64>, now: &HashMap<u32, f64>) -> f64 {
    now.iter()
        .map(|(pid, secs)| (secs - last.get(pid).unwrap_or(&0.0)).max(0.0))
        .sum()
}

/// User plus system CPU time, in clock ticks, from a `/proc/PID/stat` line.
fn cpu_ticks(stat: &str) -> Option<u64> {
    // Fields after the parenthesised command name start at field 3 (the state);
    // utime and stime are fields 14 and 15.
    let mut fields = stat.rsplit_once(')')?.1.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_ticks_add_user_and_system_time() {
        let stat = "42 (a b) c) R 1 42 42 0 -1 4194304 100 0 0 0 250 31 0 0 20 0 1 0";
        assert_eq!(cpu_ticks(stat), Some(281));
        assert_eq!(cpu_ticks("garbage"), None);
    }

    #[test]
    fn own_process_has_memory_and_cpu_after_two_readings() {
        let mut usage = Usage::new(std::process::id(), false);
        let start = Instant::now();
        let first = usage.read(start);
        assert!(first.cpu_percent.is_none());
        assert!(first.rss_bytes.is_some_and(|rss| rss > 0));
        while start.elapsed().as_millis() < 50 {
            std::hint::black_box(0u64);
        }
        let second = usage.read(Instant::now());
        assert!(second.cpu_percent.is_some_and(|cpu| cpu >= 0.0));
    }

    #[test]
    fn cpu_counts_new_processes_whole_and_gone_ones_not() {
        let last = HashMap::from([(1, 2.0), (2, 5.0), (3, 1.0)]);
        // 1 used 0.5 s, 2 has gone, 4 is new with 0.25 s, and 3's reading went back
        // (a reused PID), which counts as nothing.
        let now = HashMap::from([(1, 2.5), (3, 0.5), (4, 0.25)]);
        assert_eq!(cpu_used(&last, &now), 0.75);
    }

    #[test]
    fn descendants_add_their_memory() {
        let mut shell = std::process::Command::new("sh")
            .args(["-c", "sleep 5 & sleep 5 & wait"])
            .spawn()
            .unwrap();
        let pid = shell.id();
        let deadline = Instant::now() + std::time::Duration::from_secs(5);
        while process::descendants(pid).len() < 2 && Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let alone = Usage::new(pid, false).read(Instant::now()).rss_bytes;
        let tree = Usage::new(pid, true).read(Instant::now()).rss_bytes;
        for sleeper in process::descendants(pid) {
            let sleeper = nix::unistd::Pid::from_raw(sleeper as i32);
            let _ = nix::sys::signal::kill(sleeper, nix::sys::signal::Signal::SIGKILL);
        }
        let _ = shell.wait();
        assert!(alone.is_some_and(|rss| rss > 0));
        assert!(tree > alone, "{tree:?} {alone:?}");
    }

    #[test]
    fn a_missing_process_reads_as_nothing() {
        let mut usage = Usage::new(u32::MAX - 1, true);
        assert_eq!(usage.read(Instant::now()), Reading::default());
    }
}
