//! The target's CPU use and resident memory, from `/proc`, for the live view's header.

use std::time::Instant;

/// Reads `/proc/PID/stat` and `/proc/PID/statm`, remembering the last CPU reading so
/// that each refresh can say how busy the target was since the previous one.
#[derive(Debug)]
pub struct Usage {
    pid: u32,
    /// When the CPU time was last read, and what it was (seconds).
    last: Option<(Instant, f64)>,
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
    /// Resident set size in bytes.
    pub rss_bytes: Option<u64>,
}

impl Usage {
    /// A reader for process `pid`.
    pub fn new(pid: u32) -> Usage {
        // SAFETY: sysconf only reads configuration values.
        let (ticks, page) = unsafe {
            (
                libc::sysconf(libc::_SC_CLK_TCK),
                libc::sysconf(libc::_SC_PAGESIZE),
            )
        };
        Usage {
            pid,
            last: None,
            ticks_per_sec: if ticks > 0 { ticks as f64 } else { 100.0 },
            page_size: if page > 0 { page as u64 } else { 4096 },
        }
    }

    /// Read the target's usage at `now`. The first reading has no CPU percentage.
    pub fn read(&mut self, now: Instant) -> Reading {
        let cpu = std::fs::read_to_string(format!("/proc/{}/stat", self.pid))
            .ok()
            .and_then(|stat| cpu_ticks(&stat))
            .map(|ticks| ticks as f64 / self.ticks_per_sec);
        let cpu_percent = match (cpu, self.last) {
            (Some(secs), Some((then, last_secs))) if now > then => {
                Some(100.0 * (secs - last_secs).max(0.0) / (now - then).as_secs_f64())
            }
            _ => None,
        };
        if let Some(secs) = cpu {
            self.last = Some((now, secs));
        }
        let rss_bytes = std::fs::read_to_string(format!("/proc/{}/statm", self.pid))
            .ok()
            .and_then(|statm| statm.split_whitespace().nth(1)?.parse::<u64>().ok())
            // A zombie has no memory left to report.
            .filter(|&pages| pages > 0)
            .map(|pages| pages * self.page_size);
        Reading {
            cpu_percent,
            rss_bytes,
        }
    }
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
        let mut usage = Usage::new(std::process::id());
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
    fn a_missing_process_reads_as_nothing() {
        let mut usage = Usage::new(u32::MAX - 1);
        assert_eq!(usage.read(Instant::now()), Reading::default());
    }
}
