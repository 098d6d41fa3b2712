//! What the numbers mean: wall, CPU and GIL modes, threads, jittered timing, torn-read
//! safety and `--blocking`, on real interpreters.
//!
//! These tests measure time shares, so they run one at a time (a shared lock) to keep
//! two CPU-bound targets from competing for the same cores.

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::{collapsed_shares, pyscry, script, serial, Python, Target, TempDir};

/// Launch-and-record `script args` with extra pyscry options: the collapsed output and
/// pyscry's own output (which includes the launched script's stdout).
fn record(python: &Python, options: &[&str], script_name: &str, args: &[&str]) -> (String, Output) {
    record_in(&[], python, options, script_name, args)
}

/// [`record`] with these environment variables set for pyscry and the program.
fn record_in(
    env: &[(&str, &str)],
    python: &Python,
    options: &[&str],
    script_name: &str,
    args: &[&str],
) -> (String, Output) {
    let dir = TempDir::new(&format!("sampling-{}-{}", python.name, script_name));
    let out_path = dir.path("out.txt");
    let out = pyscry()
        .envs(env.iter().copied())
        .arg("record")
        .args(options)
        .args(["--format", "collapsed", "-o"])
        .arg(&out_path)
        .arg("--")
        .arg(&python.path)
        .arg(script(script_name))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}: {}",
        python.name,
        String::from_utf8_lossy(&out.stderr)
    );
    (std::fs::read_to_string(&out_path).unwrap(), out)
}

/// A number from the summary pyscry prints at the end of a recording, `pyscry: wrote
/// PATH (T ticks, S samples, E errors, D dropped ticks, effective rate R Hz)`: the one
/// just before `label` (e.g. `" ticks"`).
fn summary_number(stderr: &str, label: &str) -> f64 {
    let summary = stderr
        .lines()
        .find(|l| l.contains("effective rate"))
        .unwrap_or_else(|| panic!("no summary line in {stderr}"));
    summary
        .split(label)
        .next()
        .unwrap()
        .trim_end()
        .rsplit([' ', '('])
        .next()
        .unwrap()
        .parse()
        .unwrap_or_else(|_| panic!("no number before '{label}' in {summary}"))
}

fn percent(part: u64, whole: u64) -> f64 {
    100.0 * part as f64 / whole.max(1) as f64
}

/// The share of `first` in the `truth first=SECONDS second=SECONDS` line a workload
/// prints: what really happened, however loaded the machine was.
fn true_share(out: &Output) -> f64 {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find(|l| l.starts_with("truth "))
        .expect("truth line");
    let seconds: Vec<f64> = line
        .split_whitespace()
        .skip(1)
        .map(|kv| kv.split_once('=').unwrap().1.parse().unwrap())
        .collect();
    100.0 * seconds[0] / (seconds[0] + seconds[1])
}

/// Sleeping and burning for equal wall time (8 rounds): wall splits ~50/50; cpu and
/// gil modes give the sleeper at most one sample per round. Both without and with
/// `--blocking`. A free-threaded build refuses gil mode, then, with its GIL turned on
/// (`PYTHON_GIL=1`), is sampled in it as any build.
///
/// That one sample is the tick at a switch from burning to sleeping: with
/// `--blocking`, whether a thread runs is taken just before it is paused (a paused
/// thread runs nowhere), and a thread that enters `sleeper` in between is read there.
fn modes_split_sleep_and_cpu(python: &Python) {
    const ROUNDS: u64 = 8;
    let _serial = serial();
    for blocking in [false, true] {
        let extra: &[&str] = if blocking { &["--blocking"] } else { &[] };
        let label = |mode: &str| {
            format!(
                "{} --mode {mode}{}",
                python.name,
                if blocking { " --blocking" } else { "" }
            )
        };
        let free_threaded = python.free_threaded();
        for mode in ["wall", "cpu", "gil"] {
            let mut options = vec!["--mode", mode];
            options.extend_from_slice(extra);
            let mut env: &[(&str, &str)] = &[];
            if mode == "gil" && free_threaded {
                gil_mode_is_refused(python, &options);
                // With its GIL turned on, the build's GIL holder is sampled as any's.
                env = &[("PYTHON_GIL", "1")];
            }
            let rounds = ROUNDS.to_string();
            let (text, out) = record_in(env, python, &options, "sleep_burn.py", &["0.1", &rounds]);
            let (counts, _) = collapsed_shares(&text, &["sleeper", "burner"]);
            let both = counts[0] + counts[1];
            let sleeper = percent(counts[0], both);
            // pyscry's summary (ticks, errors, dropped ticks) tells a sampler starved by
            // the machine from samples lost.
            assert!(
                both > 50,
                "{}: only {both} samples; {}",
                label(mode),
                String::from_utf8_lossy(&out.stderr)
            );
            match mode {
                "wall" => {
                    let truth = true_share(&out);
                    // Ticks the machine kept pyscry from taking, and stacks it could not
                    // read, are counted in its summary and may all fall in one phase: the
                    // share is checked for the samples taken. (CI once saw sleeper 45.0%
                    // of 151 samples, really 50.0%, with the summary not kept.)
                    let stderr = String::from_utf8_lossy(&out.stderr);
                    let missed = summary_number(&stderr, " dropped ticks")
                        + summary_number(&stderr, " errors");
                    let band = 5.0 + percent(missed as u64, both);
                    assert!(
                        (sleeper - truth).abs() <= band && (truth - 50.0).abs() <= 10.0,
                        "{}: sleeper {sleeper:.1}% of {both}, really {truth:.1}% ± {band:.1}; {stderr}",
                        label(mode)
                    )
                }
                _ => assert!(
                    counts[0] <= ROUNDS,
                    "{}: sleeper {sleeper:.1}% of {both}",
                    label(mode)
                ),
            }
            if mode == "wall" {
                // time.sleep: nanosleep, or `select` on no file before 3.11.
                assert!(
                    text.contains("[idle: sleep]"),
                    "{}: idle samples are not marked with their wait",
                    label(mode)
                );
            }
        }
    }
}

test_each_python!(modes, super::modes_split_sleep_and_cpu);

/// A free-threaded build runs without its GIL unless told otherwise: `--mode gil` is
/// refused with a clear message.
fn gil_mode_is_refused(python: &Python, options: &[&str]) {
    let out = pyscry()
        .arg("record")
        .args(options)
        .args(["-o", "/dev/null", "--"])
        .arg(&python.path)
        .arg(script("sleep_burn.py"))
        .args(["0.05", "1"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "{}: --mode gil accepted",
        python.name
    );
    assert!(
        stderr.contains("is free-threaded and runs without its GIL (PYTHON_GIL=1 turns it on)"),
        "{}: {stderr}",
        python.name
    );
}

/// Periodic work every 10 ms, sampled at 100 Hz: jitter keeps its share right (30 %).
fn jitter_defeats_aliasing(python: &Python) {
    let _serial = serial();
    for blocking in [false, true] {
        let options: &[&str] = if blocking {
            &["--rate", "100", "--blocking"]
        } else {
            &["--rate", "100"]
        };
        let (text, out) = record(python, options, "periodic.py", &["3"]);
        let (counts, _) = collapsed_shares(&text, &["periodic", "rest"]);
        let samples = counts[0] + counts[1];
        let share = percent(counts[0], samples);
        let truth = true_share(&out);
        // Aliased sampling would report about 0 % or 100 %, far outside this band. The
        // band is 3.5 standard deviations of a binomial count of this many samples (about
        // 9 points for 300 samples at 30 %), so that chance alone fails one run in a few
        // thousand; never under 6 points.
        let band = (3.5 * (truth * (100.0 - truth) / samples.max(1) as f64).sqrt()).max(6.0);
        assert!(
            (share - truth).abs() <= band && truth >= 15.0,
            "{} (blocking {blocking}): periodic {share:.1}%, really {truth:.1}% ± {band:.1} (counts {counts:?})",
            python.name
        );
    }
}

test_each_python!(jitter, super::jitter_defeats_aliasing);

/// Code that calls small functions all the time (a call about every microsecond),
/// non-blocking at 1 kHz: samples are not dropped as torn (a re-check of the innermost
/// frame once dropped most of them), and the function doing the work gets about the
/// share that `--blocking` (threads paused while read: exact) gives it. On 3.11+ a stale
/// innermost-frame pointer once cost it from a third to nearly all of its share (see
/// `src/python/running.rs`).
fn call_churn_keeps_samples(python: &Python) {
    let _serial = serial();
    let record_churn = |options: &[&str]| {
        let (text, out) = record(python, options, "call_churn.py", &["2", "100"]);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let ticks = summary_number(&stderr, " ticks") as u64;
        let errors = summary_number(&stderr, " errors") as u64;
        // `leaf` calls no Python function: the stacks holding it are those it tops.
        let (counts, total) = collapsed_shares(&text, &["leaf"]);
        (ticks, errors, percent(counts[0], total), stderr)
    };
    // A share of dropped stacks means little over a few ticks. The script stops at a
    // wall-clock deadline, so anything that holds pyscry back for most of its 2 s leaves
    // too few (CI once saw 9 ticks; the cause is not known): one more try then.
    let (mut ticks, mut errors, mut read_live, mut stderr) = record_churn(&["--rate", "1000"]);
    if ticks < 500 {
        eprintln!(
            "{}: only {ticks} ticks, trying again:\n{stderr}",
            python.name
        );
        (ticks, errors, read_live, stderr) = record_churn(&["--rate", "1000"]);
    }
    assert!(
        ticks >= 500 && percent(errors, ticks) <= 15.0,
        "{}: {errors} of {ticks} stacks dropped:\n{stderr}",
        python.name
    );
    // Measured on an idle machine: within 7 points on every interpreter. The code
    // before the fix fails this test on every 3.11+ release build, free-threaded ones
    // included (19 to 80 points apart, twice each). A loaded machine moves the
    // non-blocking share (CI once saw 10 points on 3.14t; on 2026-12-04, the host slow,
    // 3.14 gave 13.0 under the support matrix's load and 14.5 then 14.1 under CI's, and
    // passed alone), so a gap beyond the bound is measured once more before it fails.
    const MAX_GAP: f64 = 16.0;
    let blocking = ["--rate", "1000", "--blocking"];
    let mut paused = record_churn(&blocking).2;
    if (read_live - paused).abs() > MAX_GAP {
        eprintln!(
            "{}: leaf has {read_live:.1}% of samples, {paused:.1}% with --blocking; again:",
            python.name
        );
        read_live = record_churn(&["--rate", "1000"]).2;
        paused = record_churn(&blocking).2;
    }
    assert!(
        (read_live - paused).abs() <= MAX_GAP,
        "{}: leaf has {read_live:.1}% of samples, {paused:.1}% with --blocking",
        python.name
    );
}

test_each_python!(churn, super::call_churn_keeps_samples);

/// The 1:2:3 workload in two named threads: `--threads` shows each thread by name, and
/// each thread's shares are right.
fn per_thread_shares(python: &Python) {
    let _serial = serial();
    let (text, _) = record(
        python,
        &["--threads", "--rate", "200"],
        "two_threads.py",
        &["0.1", "4"],
    );
    for thread in ["worker-a", "worker-b"] {
        let prefix = format!("thread {thread} (");
        let lines: String = text
            .lines()
            .filter(|l| l.starts_with(&prefix))
            .map(|l| format!("{l}\n"))
            .collect();
        assert!(
            !lines.is_empty(),
            "{}: no stacks under {prefix:?}:\n{text}",
            python.name
        );
        let (counts, _) = collapsed_shares(&lines, &["one", "two", "three"]);
        let sum: u64 = counts.iter().sum();
        for (count, expected) in counts.iter().zip([100.0 / 6.0, 100.0 / 3.0, 50.0]) {
            let share = percent(*count, sum);
            assert!(
                (share - expected).abs() <= 3.0,
                "{} {thread}: {share:.1}% vs {expected:.1}% ({counts:?})",
                python.name
            );
        }
    }
}

test_each_python!(threads, super::per_thread_shares);

/// `--thread NAME` and `--main-thread` keep only those threads.
#[test]
fn thread_filters() {
    let Some(python) = newest_python() else {
        return common::skip("thread_filters", "no interpreter");
    };
    let _serial = serial();
    let (only_a, _) = record(
        &python,
        &["--threads", "--thread", "worker-a"],
        "two_threads.py",
        &["0.05", "2"],
    );
    assert!(
        only_a.lines().all(|l| l.starts_with("thread worker-a (")),
        "{only_a}"
    );
    let (main, _) = record(
        &python,
        &["--threads", "--main-thread"],
        "two_threads.py",
        &["0.05", "2"],
    );
    assert!(!main.is_empty());
    assert!(
        main.lines().all(|l| l.starts_with("thread MainThread (")),
        "{main}"
    );
}

fn newest_python() -> Option<Python> {
    common::expected_pythons()
        .into_iter()
        .filter(|(name, _)| !name.contains("debian"))
        .filter_map(|(name, path)| Some(Python { name, path: path? }))
        .next_back()
}

/// The summary's tick, sample, dropped-tick and rate numbers agree with the output and
/// with the requested rate and duration.
#[test]
fn effective_rate_and_dropped_ticks_are_reported() {
    let Some(python) = newest_python() else {
        return common::skip("effective_rate", "no interpreter");
    };
    let _serial = serial();
    let mut target = Target::start(&python, &script("counter.py"), &[]);
    target.next_line();
    let dir = TempDir::new("rate");
    let out_path = dir.path("rate.txt");
    let out = pyscry()
        .args(["record", "-r", "200", "-d", "2", "-f", "collapsed", "--pid"])
        .arg(target.pid().to_string())
        .arg("-o")
        .arg(&out_path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let summary = stderr
        .lines()
        .find(|l| l.contains("effective rate"))
        .expect("summary line");
    let (ticks, samples, dropped) = (
        summary_number(&stderr, " ticks"),
        summary_number(&stderr, " samples"),
        summary_number(&stderr, " dropped ticks"),
    );
    let rate: f64 = summary
        .rsplit("effective rate ")
        .next()
        .unwrap()
        .trim_end_matches(" Hz)")
        .parse()
        .unwrap();
    let text = std::fs::read_to_string(&out_path).unwrap();
    let (_, total) = collapsed_shares(&text, &[]);
    assert_eq!(total as f64, samples, "{summary}");
    assert!(((ticks + dropped) - 400.0).abs() <= 12.0, "{summary}");
    assert!((rate - ticks / 2.0).abs() <= 0.05 * rate, "{summary}");
}

/// Ctrl-C (and SIGTERM) while recording a busy target with `--blocking` at a high rate
/// leaves the target running, never stopped, and still writes the recording.
#[test]
fn interrupting_blocking_mode_leaves_the_target_running() {
    let Some(python) = newest_python() else {
        return common::skip("interrupting_blocking", "no interpreter");
    };
    let _serial = serial();
    for signal in ["INT", "TERM", "INT"] {
        let mut target = Target::start(&python, &script("counter.py"), &[]);
        target.next_line();
        let dir = TempDir::new("interrupt");
        let out_path = dir.path("i.txt");
        let child = pyscry()
            .args([
                "record",
                "--blocking",
                "-r",
                "1000",
                "-f",
                "collapsed",
                "--pid",
            ])
            .arg(target.pid().to_string())
            .arg("-o")
            .arg(&out_path)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(800));
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "SIG{signal}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(Path::new(&out_path).exists());
        for tid in std::fs::read_dir(format!("/proc/{}/task", target.pid())).unwrap() {
            let tid = tid.unwrap().file_name();
            let stat = std::fs::read_to_string(format!(
                "/proc/{}/task/{}/stat",
                target.pid(),
                tid.to_str().unwrap()
            ))
            .unwrap();
            let state = stat
                .rsplit_once(')')
                .unwrap()
                .1
                .trim_start()
                .chars()
                .next()
                .unwrap();
            assert!(
                matches!(state, 'R' | 'S'),
                "SIG{signal}: thread left in state {state}"
            );
        }
        let before: u64 = target.next_line().parse().unwrap();
        let mut after = before;
        for _ in 0..3 {
            after = target.next_line().parse().unwrap();
        }
        assert!(
            after > before,
            "SIG{signal}: target stopped making progress"
        );
    }
}

/// On free-threaded builds, threads run Python at the same time: in cpu mode both busy
/// threads of the two-thread workload are sampled as running at nearly every tick.
#[test]
fn free_threaded_threads_run_at_the_same_time() {
    let _serial = serial();
    for name in ["3.13t", "3.14t"] {
        let Some((_, Some(path))) = common::expected_pythons()
            .into_iter()
            .find(|(n, p)| n == name && p.is_some())
        else {
            common::skip(
                "free_threaded_threads",
                &format!("interpreter {name} not found"),
            );
            continue;
        };
        let python = Python {
            name: name.into(),
            path,
        };
        let (text, out) = record(
            &python,
            &["--mode", "cpu", "--threads"],
            "two_threads.py",
            &["0.1", "5"],
        );
        let ticks = summary_number(&String::from_utf8_lossy(&out.stderr), " ticks");
        for thread in ["worker-a", "worker-b"] {
            let prefix = format!("thread {thread} (");
            let samples: u64 = text
                .lines()
                .filter(|l| l.starts_with(&prefix))
                .map(|l| l.rsplit_once(' ').unwrap().1.parse::<u64>().unwrap())
                .sum();
            // The workload runs 3 s of the recording's ticks; both threads run all along.
            assert!(
                samples as f64 >= 0.7 * ticks * 3.0 / (3.0 + 0.3),
                "{name}: {thread} running in {samples} of {ticks} ticks"
            );
        }
    }
}

/// While a thread runs the cyclic garbage collector its stack is topped by `<GC>`: the
/// script's `collect` (which only calls `gc.collect()` over 300 000 live lists) almost
/// always is, its `spin` (which allocates nothing the collector tracks) almost never;
/// `<GC>` is only ever the innermost frame; `--no-gc` leaves it out.
fn gc_frames_top_the_collecting_thread(python: &Python) {
    let _serial = serial();
    let (text, _) = record(python, &["--rate", "200"], "gc_heavy.py", &["2"]);
    let topped = |stack: &str| stack.ends_with(";<GC>");
    let (collect_gc, in_collect) = samples_in(&text, "collect", topped);
    let (spin_gc, in_spin) = samples_in(&text, "spin", topped);
    let name = &python.name;
    assert!(
        text.lines().all(|l| !l.contains("<GC>;")),
        "{name}: <GC> inside a stack:\n{text}"
    );
    assert!(
        in_collect >= 50 && percent(collect_gc, in_collect) >= 90.0,
        "{name}: {collect_gc} of {in_collect} samples in collect end in <GC>:\n{text}"
    );
    assert!(
        in_spin >= 50 && percent(spin_gc, in_spin) <= 5.0,
        "{name}: {spin_gc} of {in_spin} samples in spin end in <GC>:\n{text}"
    );
    let (text, _) = record(python, &["--rate", "200", "--no-gc"], "gc_heavy.py", &["1"]);
    assert!(!text.contains("<GC>"), "{name}: <GC> with --no-gc:\n{text}");
}

test_each_python!(gc_frames, super::gc_frames_top_the_collecting_thread);

/// Samples of collapsed stacks `text` in `function` whose stack (without its count)
/// passes `test`, and all of its samples.
fn samples_in(text: &str, function: &str, test: impl Fn(&str) -> bool) -> (u64, u64) {
    let passing: String = text
        .lines()
        .filter(|line| line.rsplit_once(' ').is_some_and(|(stack, _)| test(stack)))
        .map(|line| format!("{line}\n"))
        .collect();
    let (all, _) = collapsed_shares(text, &[function]);
    let (passed, _) = collapsed_shares(&passing, &[function]);
    (passed[0], all[0])
}

/// Python code the garbage collector runs (gc_finalizers.py's weakref callbacks of
/// cyclic garbage, `in_finalizer`) is part of the collection's time. From 3.15, where
/// the interpreter names the frame that started a collection, `<GC>` stands between
/// that frame (`collect`) and the callbacks; before, it tops the stack, above them.
/// Free-threaded builds run the callbacks with the other threads going again, which
/// shows without `<GC>`.
fn gc_frames_hold_what_the_collector_runs(python: &Python) {
    let _serial = serial();
    let (text, _) = record(python, &["--rate", "200"], "gc_finalizers.py", &["2"]);
    let name = &python.name;
    let (placed, all) = if python.free_threaded() {
        samples_in(&text, "in_finalizer", |stack| !stack.contains("<GC>"))
    } else if python.version() >= (3, 15) {
        samples_in(&text, "in_finalizer", |stack| {
            stack.contains(";<GC>;in_finalizer (") && stack.contains(";collect (")
        })
    } else {
        samples_in(&text, "in_finalizer", |stack| stack.ends_with(";<GC>"))
    };
    assert!(
        all >= 50 && percent(placed, all) >= 90.0,
        "{name}: {placed} of {all} samples in in_finalizer placed as expected:\n{text}"
    );
}

test_each_python!(gc_finalizers, super::gc_frames_hold_what_the_collector_runs);
