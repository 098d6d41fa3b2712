//! Per-tick cost of reading every stack of a live CPython target, through the same
//! path the sampler takes each tick (`StackReader::read`, wall mode: thread list, GIL
//! holder, each thread's running state, frame walk, symbolization with the code cache,
//! consistency re-check).
//!
//! The targets are `benches/targets/deep.py` runs: one thread at depth 30, one at depth
//! 300, and 21 threads at depth 30, each spinning in its innermost frame. The
//! interpreter is `$PYSCRY_BENCH_PYTHON`, else pyenv's 3.11.7, else `python3.11`, else
//! `python3`.
//!
//!     cargo bench --bench walker

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use pyscry::commands::attach::{open_python, Opened};
use pyscry::python::PythonProcess;
use pyscry::sampler::{Mode, SamplerEvent, StackReader};

/// A running target; killed when dropped.
struct Target {
    child: Child,
}

impl Drop for Target {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn python() -> String {
    if let Ok(python) = std::env::var("PYSCRY_BENCH_PYTHON") {
        return python;
    }
    let pyenv = "/root/.pyenv/versions/3.11.7/bin/python";
    if Path::new(pyenv).exists() {
        return pyenv.into();
    }
    for candidate in ["python3.11", "python3"] {
        let found = Command::new(candidate)
            .arg("-c")
            .arg("")
            .status()
            .is_ok_and(|s| s.success());
        if found {
            return candidate.into();
        }
    }
    panic!("no Python interpreter found; set PYSCRY_BENCH_PYTHON");
}

/// Start `deep.py` and wait until every thread is at its full depth.
fn start_target(depth: usize, threads: usize) -> Target {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/targets/deep.py");
    let mut child = Command::new(python())
        .arg(script)
        .arg(depth.to_string())
        .arg(threads.to_string())
        .arg("-")
        .arg("600")
        .stdout(Stdio::piped())
        .spawn()
        .expect("starting the target");
    let stdout = child.stdout.take().expect("piped stdout");
    let target = Target { child };
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("reading the target's output");
    assert_eq!(line.trim(), "ready", "the target did not start");
    target
}

fn open(pid: u32) -> PythonProcess {
    match open_python(pid, None, &AtomicBool::new(false)).expect("opening the target") {
        Opened::Ready(process) => *process,
        Opened::ExitedEarly => unreachable!("only a launched program exits early"),
    }
}

fn bench_target(c: &mut Criterion, name: &str, depth: usize, threads: usize) {
    let target = start_target(depth, threads);
    let mut process = open(target.child.id());
    let mut reader = StackReader::new(&process, Mode::Wall);
    // Check that the reads see what the target was built to have, and warm the caches.
    let mut good = 0;
    let mut events = Vec::new();
    for _ in 0..200 {
        events.clear();
        reader
            .read(&mut process, Duration::ZERO, &mut events)
            .expect("reading the target");
        let depths: Vec<usize> = events
            .iter()
            .filter_map(|e| match e {
                SamplerEvent::Sample(s) => Some(s.frames.len()),
                _ => None,
            })
            .collect();
        if depths.len() == threads && depths.iter().all(|&d| d == depth) {
            good += 1;
        }
    }
    assert!(
        good >= 100,
        "{name}: only {good} of 200 ticks saw {threads} stacks of depth {depth}"
    );
    c.bench_function(name, |b| {
        b.iter(|| {
            events.clear();
            reader
                .read(&mut process, Duration::ZERO, &mut events)
                .expect("reading the target")
        })
    });
    drop(target);
}

fn walker(c: &mut Criterion) {
    bench_target(c, "read_all_stacks/depth_30", 30, 1);
    bench_target(c, "read_all_stacks/depth_300", 300, 1);
    bench_target(c, "read_all_stacks/21_threads_depth_30", 30, 21);
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    targets = walker
}
criterion_main!(benches);
