//! Thread ids across PID namespaces.
//!
//! A process in a container with its own PID namespace knows its threads by that
//! namespace's ids: `gettid()` there, which CPython stores in `native_thread_id` and
//! glibc in each thread's control block, means nothing (or another task) in pyscry's
//! `/proc`. The kernel gives a task's id in every namespace, from the one `/proc` belongs
//! to down to the task's own, on the `NSpid:` line of its `status` file; [`ThreadIds`]
//! reads those lines to translate.

use std::time::{Duration, Instant};

use super::process::thread_ids;

/// The least time between two listings of a nested target's threads made because an
/// id was not found. A thread state can outlive its OS thread for a moment, and then
/// each tick would list the threads again.
const RELIST_INTERVAL: Duration = Duration::from_millis(50);

/// The threads of one process by the ids the process itself uses, and the same
/// threads' ids in pyscry's `/proc`.
#[derive(Debug, Clone)]
pub struct ThreadIds {
    /// The process, as pyscry's `/proc` knows it.
    pid: u32,
    /// The process's id in its own PID namespace: `pid` unless the process is nested.
    own_pid: u32,
    /// For a nested process, `(own id, id in pyscry's /proc)` of each thread as last
    /// listed; empty otherwise.
    pairs: Vec<(u32, u32)>,
    /// When `pairs` was listed.
    listed_at: Option<Instant>,
    /// For a dumped process (a core file), its threads: listed in the dump, by the
    /// ids the process used, as is everything else in the dump.
    dumped: Option<Vec<u32>>,
}

impl ThreadIds {
    /// The ids of process `pid`'s threads. A process whose `status` has no `NSpid:`
    /// line (kernels before 4.1) is taken to share pyscry's namespace.
    pub fn of(pid: u32) -> ThreadIds {
        let own_pid = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .ok()
            .and_then(|status| own_id(&status))
            .unwrap_or(pid);
        ThreadIds {
            pid,
            own_pid,
            pairs: Vec::new(),
            listed_at: None,
            dumped: None,
        }
    }

    /// The ids of the threads `tids` of process `pid`, which a core dump lists.
    pub fn dumped(pid: u32, tids: Vec<u32>) -> ThreadIds {
        ThreadIds {
            pid,
            own_pid: pid,
            pairs: Vec::new(),
            listed_at: None,
            dumped: Some(tids),
        }
    }

    /// Whether the process is in a PID namespace below pyscry's, so that its ids need
    /// translating.
    fn is_nested(&self) -> bool {
        self.own_pid != self.pid
    }

    /// The process's id as it knows itself (`getpid()` inside it).
    pub fn own_pid(&self) -> u32 {
        self.own_pid
    }

    /// The process's threads by the ids it knows them by, listed now.
    pub fn list(&mut self) -> Vec<u32> {
        if let Some(tids) = &self.dumped {
            return tids.clone();
        }
        if !self.is_nested() {
            return thread_ids(self.pid);
        }
        self.pairs = thread_ids(self.pid)
            .into_iter()
            .filter_map(|tid| {
                let status =
                    std::fs::read_to_string(format!("/proc/{}/task/{tid}/status", self.pid))
                        .ok()?;
                Some((own_id(&status)?, tid))
            })
            .collect();
        self.listed_at = Some(Instant::now());
        self.pairs.iter().map(|&(own, _)| own).collect()
    }

    /// The id in pyscry's `/proc` of the thread the process knows as `own`; `None`
    /// when none of its live threads has that id. For a process that shares pyscry's
    /// namespace, `own` itself, unchecked.
    pub fn host_tid(&mut self, own: u32) -> Option<u32> {
        if !self.is_nested() {
            return Some(own);
        }
        let find = |pairs: &[(u32, u32)]| pairs.iter().find(|p| p.0 == own).map(|p| p.1);
        if let Some(tid) = find(&self.pairs) {
            return Some(tid);
        }
        if self
            .listed_at
            .is_some_and(|at| at.elapsed() < RELIST_INTERVAL)
        {
            return None;
        }
        self.list();
        find(&self.pairs)
    }
}

/// A task's id in its own PID namespace: the last id of its `status` file's `NSpid:`
/// line.
fn own_id(status: &str) -> Option<u32> {
    status
        .lines()
        .find_map(|line| line.strip_prefix("NSpid:"))?
        .split_whitespace()
        .next_back()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_id_is_the_innermost_namespace_s() {
        let status = "Name:\tpython3\nTgid:\t4242\nNSpid:\t4242\t17\t1\nPPid:\t1\n";
        assert_eq!(own_id(status), Some(1));
        assert_eq!(own_id("NSpid:\t4242\n"), Some(4242));
        assert_eq!(own_id("Name:\tx\nPid:\t4242\n"), None);
    }

    #[test]
    fn own_process_needs_no_translation() {
        let pid = std::process::id();
        let mut ids = ThreadIds::of(pid);
        assert_eq!(ids.own_pid(), pid);
        assert!(ids.list().contains(&pid));
        assert_eq!(ids.host_tid(pid), Some(pid));
    }
}
