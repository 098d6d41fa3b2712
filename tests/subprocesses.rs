//! `record --subprocesses` follows the target's Python children: a multiprocessing
//! pool's workers are sampled, each under its own `process PID: COMMAND` root.

mod common;

use std::collections::{HashMap, HashSet};

use common::{Python, TempDir};

/// Per process id in the roots of a folded-stacks file: its samples, and those in
/// `child_work`.
fn per_process(folded: &str) -> HashMap<u32, (u64, u64)> {
    let mut out: HashMap<u32, (u64, u64)> = HashMap::new();
    for line in folded.lines() {
        let (stack, count) = line.rsplit_once(' ').expect("`stack count` line");
        let count: u64 = count.parse().unwrap();
        let root = stack.split(';').next().unwrap();
        let pid = root
            .strip_prefix("process ")
            .and_then(|r| r.split(':').next())
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("root {root:?} names no process"));
        let entry = out.entry(pid).or_default();
        entry.0 += count;
        if stack.contains(";child_work (") {
            entry.1 += count;
        }
    }
    out
}

/// Record pool.py (two workers burning 1.5 s each) with `--subprocesses`: both
/// workers' `child_work` is sampled, in processes other than the target.
fn pool_workers_are_sampled(python: &Python) {
    let dir = TempDir::new(&format!("pool-{}", python.name));
    let out_path = dir.path("pool.txt");
    let options = ["--subprocesses", "-r", "100", "-f", "collapsed"];
    let out = common::record_script(python, &options, &out_path, "pool.py", &["1.5"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{}: {stderr}", python.name);
    let text = std::fs::read_to_string(&out_path).unwrap();
    let processes = per_process(&text);
    // The table's first line names the target: "N samples, wall mode, …, pid PID, …".
    let stdout = String::from_utf8_lossy(&out.stdout);
    let target: u32 = stdout
        .split(", ")
        .find_map(|part| part.strip_prefix("pid "))
        .and_then(|pid| pid.parse().ok())
        .unwrap_or_else(|| panic!("{}: no pid in {stdout}", python.name));
    assert!(
        processes.contains_key(&target),
        "{}: {processes:?}",
        python.name
    );
    let workers: HashSet<u32> = processes
        .iter()
        .filter(|(_, &(_, in_work))| in_work > 0)
        .map(|(&pid, _)| pid)
        .collect();
    assert_eq!(workers.len(), 2, "{}: {processes:?}\n{text}", python.name);
    assert!(!workers.contains(&target), "{}: {processes:?}", python.name);
    // 1.5 s each at 100 Hz: 300 samples in child_work, less the workers' start.
    let in_work: u64 = processes.values().map(|&(_, w)| w).sum();
    assert!(
        in_work >= 150,
        "{}: {in_work} in child_work: {processes:?}",
        python.name
    );
}

test_each_python!(pool, super::pool_workers_are_sampled);

/// Without `--subprocesses` only the target is sampled, and stacks have no process
/// root.
#[test]
fn without_the_option_children_are_left_alone() {
    let Some(python) = common::any_python() else {
        return common::skip("pool_without_option", "no interpreter");
    };
    let dir = TempDir::new("pool-alone");
    let out_path = dir.path("pool.txt");
    let options = ["-r", "100", "-f", "collapsed"];
    let out = common::record_script(&python, &options, &out_path, "pool.py", &["1"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&out_path).unwrap();
    assert!(text.contains("main ("), "{text}");
    assert!(!text.contains("child_work"), "{text}");
    assert!(!text.lines().any(|l| l.starts_with("process ")), "{text}");
}

/// A child sampled as a forked Python that then `exec`s another program ends its
/// sampling there, instead of counting an error at every tick until it exits.
#[test]
fn a_child_that_execs_ends_cleanly() {
    let Some(python) = common::any_python() else {
        return common::skip("fork_exec", "no interpreter");
    };
    let dir = TempDir::new("fork-exec");
    let out_path = dir.path("fork.txt");
    let options = ["--subprocesses", "-r", "100", "-f", "collapsed"];
    let out = common::record_script(&python, &options, &out_path, "fork_exec.py", &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let text = std::fs::read_to_string(&out_path).unwrap();
    let processes = per_process(&text);
    assert!(text.contains(";before_exec ("), "{text}");
    assert_eq!(processes.len(), 2, "{processes:?}");
    // "pyscry: wrote PATH (N ticks, M samples, E errors, …)"
    let errors: u64 = stderr
        .split(", ")
        .find_map(|part| part.strip_suffix(" errors"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no error count in {stderr}"));
    // 1.5 s after the exec at 100 Hz would be about 150.
    assert!(errors <= 10, "{errors} errors: {stderr}");
}
