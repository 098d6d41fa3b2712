//! `pyscry dump` names the right functions, files and lines in every thread.

mod common;

use common::{marked_line, run_pyscry, script, Python, Target};
use serde_json::Value;

fn dump_three_threads(python: &Python) {
    let path = script("three_threads.py");
    let mut target = Target::start(python, &path, &[]);
    target.wait_for_line("ready");
    // "ready" is printed just before the main thread calls sleeper(): dump until it is
    // there (a dump is instantaneous, so this bounds a race in the script, not pyscry).
    let file = path.to_str().unwrap();
    let mut dump = Value::Null;
    for _ in 0..50 {
        let out = run_pyscry(&["dump", "--pid", &target.pid().to_string(), "--json"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "{}: dump failed: {stderr}",
            python.name
        );
        dump = serde_json::from_slice(&out.stdout).expect("dump --json is JSON");
        if dump.to_string().contains("sleeper_inner") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let threads = dump["threads"].as_array().unwrap();
    assert_eq!(threads.len(), 3, "{}: {dump:#}", python.name);

    let qualified = python.version() >= (3, 11);

    let innermost = |name: &str| -> &Value {
        threads
            .iter()
            .find(|t| {
                t["frames"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|f| f["name"] == name && f["filename"] == file)
            })
            .unwrap_or_else(|| panic!("{}: no thread runs {name}: {dump:#}", python.name))
    };
    let frames_of = |thread: &Value| -> Vec<(String, u32)> {
        thread["frames"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["filename"] == file)
            .map(|f| {
                (
                    f["name"].as_str().unwrap().to_string(),
                    f["line"].as_u64().unwrap() as u32,
                )
            })
            .collect()
    };

    // Main thread: three frames deep in our script, innermost first.
    let main = innermost("sleeper_inner");
    assert_eq!(
        frames_of(main),
        vec![
            ("sleeper_inner".into(), marked_line(&path, "sleeper_inner")),
            ("sleeper".into(), marked_line(&path, "sleeper")),
            ("<module>".into(), marked_line(&path, "module")),
        ],
        "{}",
        python.name
    );
    assert_eq!(main["native_id"].as_u64(), Some(u64::from(target.pid())));

    // Spinning thread: exactly one frame of ours, on the loop line.
    let spin = innermost("spin");
    assert_eq!(
        frames_of(spin),
        vec![("spin".into(), marked_line(&path, "spin"))],
        "{}",
        python.name
    );

    // Waiting thread: a method, qualified on 3.11+.
    let method = if qualified {
        "Worker.wait_for"
    } else {
        "wait_for"
    };
    let waiter = innermost(method);
    assert_eq!(
        frames_of(waiter),
        vec![(method.into(), marked_line(&path, "wait_for"))],
        "{}",
        python.name
    );
    let innermost_name = waiter["frames"][0]["name"].as_str().unwrap();
    assert!(
        innermost_name.ends_with("wait"),
        "{}: waiter's innermost frame is {innermost_name}",
        python.name
    );

    // What the idle threads wait for, from the system call each is blocked in: a lock,
    // and time.sleep (`select` on no file before 3.11, a sleep too). The main thread
    // may still be waiting for the GIL around its call of time.sleep: dump again until
    // it is in it.
    let wait = |thread: &Value| (thread["status"].clone(), thread["wait"].clone());
    assert_eq!(
        wait(waiter),
        ("idle".into(), "lock".into()),
        "{}",
        python.name
    );
    let futex = waiter["waiting_in"]
        .as_str()
        .is_some_and(|f| f.starts_with("futex"));
    assert!(futex, "{}: {waiter:#}", python.name);
    let pid = target.pid().to_string();
    let sleeping = (0..50).find_map(|_| {
        let out = run_pyscry(&["dump", "--pid", &pid, "--json"]);
        let dump: Value = serde_json::from_slice(&out.stdout).ok()?;
        let threads = dump["threads"].as_array()?;
        let main = threads.iter().find(|t| t["name"] == "MainThread")?;
        let (status, kind) = wait(main);
        (status == "idle" && kind == "sleep").then_some(())
    });
    assert!(
        sleeping.is_some(),
        "{}: main never seen sleeping",
        python.name
    );
    // Paused for --locals, the threads keep the state they had before the pause.
    let paused = run_pyscry(&["dump", "--pid", &pid, "--locals", "--json"]);
    if paused.status.success() {
        let paused: Value = serde_json::from_slice(&paused.stdout).unwrap();
        let spinner = paused["threads"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == "spinner");
        let spinner = spinner.unwrap_or_else(|| panic!("{}: {paused:#}", python.name));
        assert_eq!(spinner["status"], "running", "{}: {spinner:#}", python.name);
    }

    // Every thread is named as `threading` names it.
    for (thread, name) in [(main, "MainThread"), (spin, "spinner"), (waiter, "waiter")] {
        assert_eq!(thread["name"], name, "{}: {dump:#}", python.name);
    }

    // Every thread has a distinct Python id and a distinct OS thread id of the target.
    let tids: Vec<u64> = threads
        .iter()
        .map(|t| t["native_id"].as_u64().unwrap())
        .collect();
    let tasks = std::fs::read_dir(format!("/proc/{}/task", target.pid())).unwrap();
    let live: Vec<u64> = tasks
        .map(|e| e.unwrap().file_name().to_str().unwrap().parse().unwrap())
        .collect();
    for tid in &tids {
        assert!(
            live.contains(tid),
            "{}: tid {tid} not in {live:?}",
            python.name
        );
    }
    let mut unique = tids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 3, "{}", python.name);

    // The text form shows the same.
    let text = run_pyscry(&["dump", "--pid", &target.pid().to_string()]);
    let text = String::from_utf8_lossy(&text.stdout);
    let expected = format!(
        "sleeper_inner ({file}:{})",
        marked_line(&path, "sleeper_inner")
    );
    assert!(text.contains(&expected), "{}: {text}", python.name);
    assert!(
        text.contains("\"spinner\" (tid "),
        "{}: {text}",
        python.name
    );
    assert!(matches!(target.state(), 'R' | 'S'), "target left stopped");
}

test_each_python!(three_threads, super::dump_three_threads);

/// Each idle thread says what it waits for: a lock, a pipe, a sleep, and, while two
/// threads spin, the GIL (never on a free-threaded build, which runs without it, unless
/// it turns it on: `PYTHON_GIL=1`, as an extension module that needs it does too).
fn dump_says_what_threads_wait_for(python: &Python) {
    for (env, gil_on) in common::gil_environments(python) {
        dumped_waits(python, env, gil_on);
    }
}

/// The waits of `waits.py`, run with `env` set, the GIL in force or not, as `dump`
/// tells them.
fn dumped_waits(python: &Python, env: &[(&str, &str)], gil_on: bool) {
    let name = format!("{}{env:?}", python.name);
    let mut command = std::process::Command::new(&python.path);
    command
        .envs(env.iter().copied())
        .arg(script("waits.py"))
        .arg("30");
    let mut target = Target::spawn(command);
    target.wait_for_line("ready");
    let pid = target.pid().to_string();
    let expected = [
        ("locked", "lock"),
        ("reader", "io"),
        ("MainThread", "sleep"),
    ];
    let mut last = Value::Null;
    let mut spinners_waited = Vec::new();
    let mut holders = 0;
    // A spinner waits for the GIL only while the other holds it, and the other threads
    // are on their way into their waits at first: a few dumps may be needed.
    let seen = common::wait_until(std::time::Duration::from_secs(10), || {
        let out = run_pyscry(&["dump", "--pid", &pid, "--json"]);
        last = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        let threads = last["threads"].as_array().cloned().unwrap_or_default();
        let wait_of = |name: &str| {
            let thread = threads.iter().find(|t| t["name"] == name);
            thread.and_then(|t| t["wait"].as_str()).map(str::to_string)
        };
        for spinner in ["spinner-1", "spinner-2"] {
            spinners_waited.extend(wait_of(spinner));
        }
        holders += threads.iter().filter(|t| t["holds_gil"] == true).count();
        let others = expected
            .iter()
            .all(|(name, wait)| wait_of(name).as_deref() == Some(wait));
        others && (!gil_on || (holders > 0 && spinners_waited.iter().any(|w| w == "gil")))
    });
    assert!(seen, "{name}: {last:#}");
    if !gil_on {
        assert!(
            holders == 0 && !spinners_waited.iter().any(|w| w == "gil"),
            "{name}: {holders} GIL holders; {spinners_waited:?}"
        );
    }
    let text = run_pyscry(&["dump", "--pid", &pid]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("\"reader\" (tid ") && text.contains("idle, waiting for I/O ("),
        "{name}: {text}"
    );
}

test_each_python!(dump_waits, super::dump_says_what_threads_wait_for);

/// The thread running the garbage collector is marked in the dump: `collecting
/// garbage` (JSON `collecting_garbage`) while the script's `collect` runs
/// `gc.collect()`, never while its `spin` runs.
fn dump_marks_the_collecting_thread(python: &Python) {
    let mut target = Target::start(python, &script("gc_heavy.py"), &["60"]);
    target.wait_for_line("ready");
    let pid = target.pid().to_string();
    let (mut in_collect, mut marked, mut in_spin) = (0, 0, 0);
    for _ in 0..200 {
        let out = run_pyscry(&["dump", "--pid", &pid, "--json"]);
        assert!(out.status.success(), "{}: dump failed", python.name);
        let dump: Value = serde_json::from_slice(&out.stdout).expect("dump --json is JSON");
        let thread = &dump["threads"][0];
        let collecting = thread["collecting_garbage"]
            .as_bool()
            .expect("collecting_garbage");
        match thread["frames"][0]["name"].as_str() {
            Some("collect") => {
                in_collect += 1;
                marked += u32::from(collecting);
            }
            Some("spin") => {
                in_spin += 1;
                assert!(!collecting, "{}: marked in spin: {dump:#}", python.name);
            }
            _ => {}
        }
        if in_collect >= 5 && in_spin >= 5 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(
        in_collect >= 5 && in_spin >= 5,
        "{}: {in_collect} dumps in collect, {in_spin} in spin",
        python.name
    );
    // A dump in `collect` just before or after `gc.collect()` proper is not marked.
    assert!(
        marked * 5 >= in_collect * 3,
        "{}: {marked} of {in_collect} dumps in collect marked",
        python.name
    );
    // The text marks the collector too, with or without a GIL to hold.
    let marked_in_text = (0..200).any(|_| {
        let out = run_pyscry(&["dump", "--pid", &pid]);
        let text = String::from_utf8_lossy(&out.stdout);
        let lines: Vec<&str> = text.lines().collect();
        let marked = lines.windows(2).any(|pair| {
            pair[0].ends_with(", collecting garbage") && pair[1].starts_with("    collect (")
        });
        if !marked {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        marked
    });
    assert!(
        marked_in_text,
        "{}: no text dump marks collect",
        python.name
    );
}

test_each_python!(gc_thread, super::dump_marks_the_collecting_thread);

/// Dumps of a stack whose top changes every few microseconds (`call_churn.py`, a call
/// about every 10 µs) are stacks the program can have: its functions in calling order,
/// each one called by a function that calls it. Read one frame per system call, a dump
/// mixed frames of different moments (half of them impossible on 3.11); read as
/// `record` reads, all frames in one call, they hold together.
fn dump_under_call_churn(python: &Python) {
    const DUMPS: usize = 20;
    // (callee, caller) pairs that call_churn.py makes.
    const CALLS: [(&str, &str); 6] = [
        ("leaf", "main"),
        ("leaf", "one"),
        ("one", "main"),
        ("one", "two"),
        ("two", "main"),
        ("main", "<module>"),
    ];
    let target = Target::start(python, &script("call_churn.py"), &["120", "1000"]);
    let pid = target.pid().to_string();
    // The main thread's function names and whether its stack could not be read, or
    // the error of a dump that failed.
    let stack = || {
        let out = run_pyscry(&["dump", "--pid", &pid, "--json"]);
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        let dump: Value = serde_json::from_slice(&out.stdout).expect("dump --json is JSON");
        let thread = dump["threads"][0].clone();
        // While the interpreter starts there may be no thread yet.
        let Some(frames) = thread["frames"].as_array() else {
            return Err(format!("no thread in {dump}"));
        };
        let names: Vec<String> = frames
            .iter()
            .map(|frame| frame["name"].as_str().unwrap().to_string())
            .collect();
        Ok((names, thread["error"].is_string()))
    };
    // Until the interpreter has started (it may not even be loaded yet) and runs the
    // script's loop: `leaf`, as site.py has a `main` too.
    let mut started = false;
    for _ in 0..100 {
        if stack().is_ok_and(|(names, _)| names.iter().any(|name| name == "leaf")) {
            started = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(started, "{}: leaf() never seen", python.name);
    let (mut impossible, mut failed) = (Vec::new(), 0);
    for _ in 0..DUMPS {
        let (names, error) =
            stack().unwrap_or_else(|stderr| panic!("{}: dump failed: {stderr}", python.name));
        if error {
            failed += 1;
        } else if !names
            .windows(2)
            .all(|pair| CALLS.contains(&(pair[0].as_str(), pair[1].as_str())))
        {
            impossible.push(names);
        }
    }
    assert!(
        impossible.len() <= 2 && failed <= 2,
        "{}: of {DUMPS} dumps, {failed} failed and these are impossible: {impossible:?}",
        python.name
    );
    assert!(matches!(target.state(), 'R' | 'S'), "target left stopped");
}

test_each_python!(under_churn, super::dump_under_call_churn);

/// 3.13.18 (Debian sid) read with the table generated from 3.13.0's headers: its
/// `_Py_DebugOffsets` correct what moved between the patch releases (the thread state
/// grew), and the stacks are still exact.
#[test]
fn patch_release_drift_is_corrected_by_debug_offsets() {
    let Some((_, Some(path))) = common::expected_pythons()
        .into_iter()
        .find(|(name, path)| name == "3.13-sid" && path.is_some())
    else {
        return common::skip("patch_release_drift", "interpreter 3.13-sid not found");
    };
    let python = Python {
        name: "3.13-sid".into(),
        path,
    };
    let mut target = Target::start(&python, &script("three_threads.py"), &[]);
    target.wait_for_line("ready");
    let out = run_pyscry(&["dump", "--pid", &target.pid().to_string(), "--json"]);
    let dump: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let layout = dump["layout"].as_str().unwrap();
    assert!(
        layout.starts_with("python-offsets/3.13.toml, corrected by _Py_DebugOffsets"),
        "{layout}"
    );
    assert!(layout.contains("thread.size 304->312"), "{layout}");
    assert!(dump.to_string().contains("\"spin\""), "{dump:#}");
}

/// `list(range(100))` as `dump --locals` shows it: its first items, to 80 characters.
const NUMBERS_SHOWN: &str =
    "[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, ...]";

/// `dump --locals` shows each frame's arguments and locals with their values (ints of
/// both signs and too wide, floats, strings, bytes, the items of tuples, lists and
/// dicts, nested, cut short when long or deep, None, True, a variable a closure
/// captures), and leaves the target running.
fn locals_of_each_kind(python: &Python) {
    let mut target = Target::start(python, &script("locals.py"), &[]);
    target.wait_for_line("ready");
    let pid = target.pid().to_string();
    let out = run_pyscry(&["dump", "--pid", &pid, "--locals", "--json"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{}: {stderr}", python.name);
    let dump: Value = serde_json::from_slice(&out.stdout).expect("dump --json is JSON");
    let frames = dump["threads"][0]["frames"].as_array().unwrap();
    let locals_of = |name: &str| -> Vec<(String, bool, String)> {
        let frame = frames.iter().find(|f| f["name"] == name);
        let frame = frame.unwrap_or_else(|| panic!("{}: no {name}: {dump:#}", python.name));
        let locals = frame["locals"].as_array();
        let locals = locals.unwrap_or_else(|| panic!("{}: {name}: {frame:#}", python.name));
        locals
            .iter()
            .map(|l| {
                let text = |key: &str| l[key].as_str().unwrap().to_string();
                (
                    text("name"),
                    l["argument"].as_bool().unwrap(),
                    text("value"),
                )
            })
            .collect()
    };
    let data = if python.version() < (3, 0) {
        "'\\x00ab'"
    } else {
        "b'\\x00ab'"
    };
    let expected = [
        ("count", true, "42"),
        ("label", true, "'name42'"),
        ("rest", false, "(7,)"),
        ("options", false, "{'key': 'v'}"),
        ("ratio", false, "0.5"),
        ("big", false, "<int wider than 64 bits>"),
        ("negative", false, "-1234567"),
        ("text", false, "\"it's\\n\""),
        ("data", false, data),
        ("items", false, "[1, 2, 3]"),
        ("pair", false, "(1, 'a')"),
        ("mapping", false, "{'a': 1}"),
        ("nothing", false, "None"),
        ("flag", false, "True"),
        ("nested", false, "{'k': [1, (2, None)]}"),
        ("numbers", false, NUMBERS_SHOWN),
        ("deep", false, "[[[[...]]]]"),
        ("empty", false, "()"),
        ("no_items", false, "[]"),
    ];
    let expected: Vec<(String, bool, String)> = expected
        .iter()
        .map(|&(name, argument, value)| (name.to_string(), argument, value.to_string()))
        .collect();
    assert_eq!(locals_of("inner"), expected, "{}", python.name);
    let mut outer = locals_of("outer");
    outer.sort();
    assert_eq!(outer.len(), 3, "{}: {outer:?}", python.name);
    assert_eq!(outer[0], ("captured".into(), false, "84".into()));
    assert!(outer[1].0 == "closure" && outer[1].2.starts_with("<function at 0x"));
    assert_eq!(outer[2], ("n".into(), true, "42".into()));

    let text = run_pyscry(&["dump", "--pid", &pid, "--locals"]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("        Arguments:\n            count = 42\n"),
        "{}: {text}",
        python.name
    );
    assert_running_again(python, target.pid());
}

/// Process `pid`, paused while a dump was read, runs (or sleeps) again since.
fn assert_running_again(python: &Python, pid: u32) {
    std::thread::sleep(std::time::Duration::from_millis(100));
    let state = common::process_state(pid);
    assert!(
        matches!(state, Some('S' | 'R')),
        "{}: {state:?}",
        python.name
    );
}

test_each_python!(locals, super::locals_of_each_kind);

/// `dump --tasks` lists every asyncio task with the coroutines it waits in, innermost
/// first, at their lines: a named task three coroutines deep, one with the default
/// name, the main one, and one that runs on another thread's event loop; a process
/// without asyncio has none. Before 3.14 it is refused, saying why.
fn tasks_where_they_wait(python: &Python) {
    if python.version() < (3, 14) {
        let mut target = Target::start(python, &script("waits.py"), &["60"]);
        target.wait_for_line("ready");
        let out = run_pyscry(&["dump", "--pid", &target.pid().to_string(), "--tasks"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{}: {stderr}", python.name);
        assert!(
            stderr.contains("needs CPython 3.14"),
            "{}: {stderr}",
            python.name
        );
        return;
    }
    let path = script("tasks.py");
    let mut target = Target::start(python, &path, &["60"]);
    target.wait_for_line("ready");
    let pid = target.pid().to_string();
    let out = run_pyscry(&["dump", "--pid", &pid, "--tasks", "--json"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{}: {stderr}", python.name);
    let dump: Value = serde_json::from_slice(&out.stdout).expect("dump --json is JSON");
    let tasks = dump["tasks"].as_array().expect("a list of tasks");
    let names = |task: &Value| -> Vec<String> {
        let frames = task["frames"].as_array().unwrap();
        frames
            .iter()
            .map(|f| f["name"].as_str().unwrap().to_string())
            .collect()
    };
    let ending_in = |function: &str| {
        tasks
            .iter()
            .find(|task| names(task).last().is_some_and(|last| last == function))
            .unwrap_or_else(|| panic!("{}: no task in {function}: {dump:#}", python.name))
    };
    let expected = [
        (
            "worker",
            &["Event.wait", "innermost", "middle", "worker"][..],
        ),
        ("sleeper", &["sleep", "sleeper"]),
        ("consumer", &["Queue.get", "consumer"]),
        ("main", &["sleep", "main"]),
    ];
    for (function, frames) in expected {
        let task = ending_in(function);
        assert_eq!(names(task), frames, "{}: {dump:#}", python.name);
        assert_eq!(task["state"], "waiting", "{}: {dump:#}", python.name);
        for frame in task["frames"].as_array().unwrap() {
            let name = frame["name"].as_str().unwrap();
            if frame["filename"].as_str().unwrap().ends_with("tasks.py") && name != "sleep" {
                let line = u64::from(marked_line(&path, name));
                assert_eq!(frame["line"], line, "{}: {name}: {dump:#}", python.name);
            }
        }
    }
    assert_eq!(ending_in("worker")["name"], "worker-1");
    assert_eq!(ending_in("sleeper")["name"], "sleeper-1");
    let default = ending_in("consumer")["name"].as_str().unwrap().to_string();
    assert!(default.starts_with("Task-"), "{}: {default}", python.name);
    let running = ending_in("spinner");
    assert_eq!(running["state"], "running", "{}: {dump:#}", python.name);

    let text = run_pyscry(&["dump", "--pid", &pid, "--tasks"]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("\nTask \"worker-1\" (0x"),
        "{}: {text}",
        python.name
    );

    let mut plain = Target::start(python, &script("waits.py"), &["60"]);
    plain.wait_for_line("ready");
    let out = run_pyscry(&["dump", "--pid", &plain.pid().to_string(), "--tasks"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}: {text}", python.name);
    assert!(
        text.contains("\nNo asyncio tasks."),
        "{}: {text}",
        python.name
    );
}

test_each_python!(tasks, super::tasks_where_they_wait);

/// `dump --subprocesses --tasks` over a 3.14 target whose child runs an older Python:
/// the child is dumped all the same, without tasks, where `--tasks` alone would refuse
/// it.
#[test]
fn an_older_descendant_is_dumped_without_tasks() {
    const TEST: &str = "dump_tasks_descendants";
    let pythons = common::pythons(TEST);
    let find = |name: &str| pythons.iter().find(|p| p.name == name);
    let (Some(new), Some(old)) = (find("3.14"), find("3.11")) else {
        return common::skip(TEST, "3.14 or 3.11 missing");
    };
    let launch = format!(
        "{} {} 20 & exec {} {} 20",
        old.path.display(),
        script("waits.py").display(),
        new.path.display(),
        script("tasks.py").display()
    );
    let mut target = Target::command("sh", &["-c", &launch]);
    target.wait_for_line("ready");
    target.wait_for_line("ready");
    let pid = target.pid().to_string();
    let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"));
    let out = run_pyscry(&["dump", "--pid", &pid, "--subprocesses", "--tasks", "--json"]);
    for child in children.unwrap_or_default().split_whitespace() {
        let _ = std::process::Command::new("kill").arg(child).status();
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let dumps: Value = serde_json::from_slice(&out.stdout).expect("dump --json is JSON");
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.is_empty(), "{stderr}");
    let dumps = dumps.as_array().expect("a list of dumps");
    assert_eq!(dumps.len(), 2, "{dumps:#?}");
    let tasks = dumps[0]["tasks"].as_array().expect("the target's tasks");
    assert!(tasks.iter().any(|t| t["name"] == "worker-1"), "{tasks:#?}");
    assert!(dumps[1].get("tasks").is_none(), "{:#}", dumps[1]);
    assert!(!dumps[1]["threads"].as_array().unwrap().is_empty());
}

/// `dump --native` shows the native frames with the Python frames where the eval loop
/// runs them: the C sleep innermost, C between a Python function and the one it calls
/// back through C (`sorted`), the interpreter's C callers outermost, no eval-loop frame
/// left; and leaves the target running.
fn native_frames_around_python(python: &Python) {
    let mut target = Target::start(python, &script("native.py"), &[]);
    target.wait_for_line("ready");
    // "ready" is printed just before the sleep starts.
    std::thread::sleep(std::time::Duration::from_millis(200));
    let pid = target.pid().to_string();
    let out = run_pyscry(&["dump", "--pid", &pid, "--native", "--json"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{}: {stderr}", python.name);
    let dump: Value = serde_json::from_slice(&out.stdout).expect("dump --json is JSON");
    let thread = &dump["threads"][0];
    let frames = thread["frames"].as_array().unwrap();
    let python_names: Vec<&str> = frames
        .iter()
        .filter(|f| f["kind"] == "python")
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        python_names,
        ["inner", "outer", "<module>"],
        "{}: {dump:#}",
        python.name
    );
    if python.name == "3.15" {
        // Debian's 3.15 is stripped, and the part of the eval loop that calls out to C
        // is split off by the compiler with no symbol of its own, where 3.12-3.14 are
        // found by their shim frame on the C stack: the native frames are left out.
        let why = thread["native_error"].as_str().unwrap_or_default();
        assert!(why.contains("not merged"), "{}: {dump:#}", python.name);
        return;
    }
    assert_eq!(
        thread["native_error"],
        Value::Null,
        "{}: {dump:#}",
        python.name
    );
    let at = |name: &str| frames.iter().position(|f| f["name"] == name).unwrap();
    let native = |f: &Value| f["kind"] == "native";
    let function = |f: &Value| f["function"].as_str().unwrap_or_default().to_string();
    let (inner, outer) = (at("inner"), at("outer"));
    assert!(
        frames[..inner]
            .iter()
            .any(|f| native(f) && ["sleep", "select"].iter().any(|s| function(f).contains(s))),
        "{}: no C sleep inside inner: {dump:#}",
        python.name
    );
    assert!(
        outer > inner + 1 && frames[inner + 1..outer].iter().all(native),
        "{}: no C between outer and inner: {dump:#}",
        python.name
    );
    assert!(native(frames.last().unwrap()), "{}: {dump:#}", python.name);
    let eval = if python.version() < (3, 0) {
        "PyEval_EvalFrameEx"
    } else {
        "_PyEval_EvalFrameDefault"
    };
    assert!(
        !frames.iter().any(|f| function(f).starts_with(eval)),
        "{}: {dump:#}",
        python.name
    );
    // Source lines: `time_sleep` (the C side of `time.sleep`) is in timemodule.c, at a
    // line, wherever the file it is in has DWARF, as every pyenv build's has.
    let time_sleep = frames.iter().find(|f| function(f) == "time_sleep");
    let module = time_sleep.and_then(|f| f["module"].as_str());
    let has_dwarf = module.is_some_and(|module| mapped_file_has_dwarf(target.pid(), module));
    let pyenv = python
        .path
        .components()
        .any(|c| c.as_os_str() == "versions");
    assert!(has_dwarf || !pyenv, "{}: {dump:#}", python.name);
    if let Some(frame) = time_sleep.filter(|_| has_dwarf) {
        assert_in_timemodule(frame, &python.name);
        // A debug build is compiled without optimizing: nothing is inlined.
        if !python.debug_build() {
            assert_inlined_frames_shown(frames, &python.name);
        }
    }
    let text = run_pyscry(&["dump", "--pid", &pid, "--native"]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("    inner ("), "{}: {text}", python.name);
    assert!(
        !has_dwarf || text.contains("timemodule.c:"),
        "{}: {text}",
        python.name
    );
    assert_running_again(python, target.pid());
}

test_each_python!(native_stack, super::native_frames_around_python);

/// A native frame of `dump --json` is at a line of timemodule.c.
fn assert_in_timemodule(frame: &Value, python: &str) {
    let file = frame["file"].as_str().unwrap_or_default();
    assert!(file.ends_with("timemodule.c"), "{python}: {frame:#}");
    assert!(
        frame["line"].as_u64().unwrap_or(0) > 0,
        "{python}: {frame:#}"
    );
}

/// Code inlined into a native function is shown as frames of its own (with DWARF,
/// optimized builds always inline some: static helpers called once, such as the
/// interpreter's start-up steps in `main.c`), each at the address of the function it
/// is inlined into, which is the next frame, or the eval loop, whose Python frames
/// come next; no frame is inlined into nothing.
fn assert_inlined_frames_shown(frames: &[Value], python: &str) {
    let inlined = |f: &Value| f["inlined"] == true;
    assert!(
        frames.iter().any(inlined),
        "{python}: no inlined frame: {frames:#?}"
    );
    for (index, frame) in frames.iter().enumerate().filter(|(_, f)| inlined(f)) {
        let outer = &frames[index + 1];
        assert!(
            outer["kind"] == "python" || outer["address"] == frame["address"],
            "{python}: {frames:#?}"
        );
        assert!(
            frame["line"].as_u64().unwrap_or(0) > 0,
            "{python}: {frame:#}"
        );
    }
}

/// Whether the file named `name` (e.g. `libpython3.11.so.1.0`) that process `pid`
/// maps has DWARF (a `.debug_info` section).
fn mapped_file_has_dwarf(pid: u32, name: &str) -> bool {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
    let path = maps
        .lines()
        .filter_map(|line| line.split_whitespace().nth(5))
        .find(|path| std::path::Path::new(path).file_name() == Some(name.as_ref()));
    let Some(bytes) = path.and_then(|path| std::fs::read(path).ok()) else {
        return false;
    };
    let elf = goblin::elf::Elf::parse(&bytes).expect("a mapped file is ELF");
    elf.section_headers
        .iter()
        .any(|sh| elf.shdr_strtab.get_at(sh.sh_name) == Some(".debug_info"))
}

/// Runs `objcopy ARGS` in `dir`; false if it is missing or fails.
fn objcopy(args: &[&str], dir: &std::path::Path) -> bool {
    let out = std::process::Command::new("objcopy")
        .args(args)
        .current_dir(dir)
        .output();
    out.is_ok_and(|out| out.status.success())
}

/// 3.11's libpython, copied and stripped of its DWARF, which went to a separate debug
/// file next to it that `.gnu_debuglink` names; and `native.py` running with it.
struct SplitLibrary {
    dir: common::TempDir,
    target: Target,
}

const SPLIT_LIBRARY: &str = "libpython3.11.so.1.0";
const SPLIT_DEBUG_FILE: &str = "libpython3.11.so.1.0.debug";

impl SplitLibrary {
    /// `first` are `objcopy` arguments to apply to the copy before it is split (none,
    /// or the removal of a section); `compression` that of the debug file's sections.
    /// `None` (reported skipped for `test`) without an `objcopy` that can do it.
    fn start(python: &Python, test: &str, first: &[&str], compression: &str) -> Option<Self> {
        let lib_dir = python.path.parent().unwrap().parent().unwrap().join("lib");
        let dir = common::TempDir::new(test);
        let lib = dir.path(SPLIT_LIBRARY);
        std::fs::copy(lib_dir.join(SPLIT_LIBRARY), &lib).expect("copying libpython");
        let compress = format!("--compress-debug-sections={compression}");
        let keep_debug = [
            "--only-keep-debug",
            &compress,
            SPLIT_LIBRARY,
            SPLIT_DEBUG_FILE,
        ];
        let first = [first, &[SPLIT_LIBRARY]].concat();
        if !(first.len() == 1 || objcopy(&first, &dir.0)) || !objcopy(&keep_debug, &dir.0) {
            let why =
                format!("objcopy (binutils) not found, or it cannot compress with {compression}");
            common::skip(test, &why);
            return None;
        }
        let link = format!("--add-gnu-debuglink={SPLIT_DEBUG_FILE}");
        assert!(objcopy(&["--strip-debug", &link, SPLIT_LIBRARY], &dir.0));

        let mut command = std::process::Command::new(&python.path);
        command
            .arg(script("native.py"))
            .env("LD_LIBRARY_PATH", &dir.0);
        let mut target = Target::spawn(command);
        target.wait_for_line("ready");
        std::thread::sleep(std::time::Duration::from_millis(200));
        let maps = std::fs::read_to_string(format!("/proc/{}/maps", target.pid())).unwrap();
        assert!(maps.contains(lib.to_str().unwrap()), "{maps}");
        assert!(!mapped_file_has_dwarf(target.pid(), SPLIT_LIBRARY));
        Some(SplitLibrary { dir, target })
    }

    /// The main thread's frames, asleep in the same place each time.
    fn frames(&self) -> Vec<Value> {
        let pid = self.target.pid().to_string();
        let out = run_pyscry(&["dump", "--pid", &pid, "--native", "--json"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        let dump: Value = serde_json::from_slice(&out.stdout).expect("dump --json is JSON");
        dump["threads"][0]["frames"].as_array().unwrap().clone()
    }

    /// `time_sleep`'s frame and the one inside it.
    fn time_sleep(&self) -> (Value, Value) {
        let frames = self.frames();
        let at = frames.iter().position(|f| f["function"] == "time_sleep");
        let at = at.unwrap_or_else(|| panic!("no time_sleep: {frames:#?}"));
        (frames[at].clone(), frames[at - 1].clone())
    }

    /// 3.11's `time_sleep` has its helper `pysleep` inlined: the debug file says so.
    fn assert_lines(&self, python: &Python) {
        let (outer, inner) = self.time_sleep();
        assert_in_timemodule(&outer, &python.name);
        assert_eq!(inner["function"], "pysleep", "{inner:#}");
        assert_eq!(inner["inlined"], true, "{inner:#}");
        assert_in_timemodule(&inner, &python.name);
        // The text marks it.
        let pid = self.target.pid().to_string();
        let text = run_pyscry(&["dump", "--pid", &pid, "--native"]);
        let text = String::from_utf8_lossy(&text.stdout);
        assert!(text.contains("    pysleep [inlined] ("), "{text}");
        assert!(text.contains("    time_sleep ("), "{text}");
    }

    /// Without DWARF, `time_sleep` has no line and nothing inlined.
    fn assert_no_lines(&self) {
        let (outer, inner) = self.time_sleep();
        assert_eq!(inner["inlined"], false, "{inner:#}");
        assert_eq!(outer["line"], Value::Null, "{outer:#}");
        assert_eq!(outer["module"], SPLIT_LIBRARY, "{outer:#}");
    }
}

/// `dump --native` finds a stripped library's source lines and inlined functions in its
/// separate debug file, named by `.gnu_debuglink` and next to it, with its sections
/// compressed with `compression` (zlib, as Debian's `-dbgsym` files have them; zstd,
/// as newer toolchains can), and shows none once that file is gone, nor from the debug
/// file of another build put in its place.
fn lines_from_separate_debug_file(python: &Python, compression: &str) {
    let test = format!("native_debug_file_{compression}");
    let Some(split) = SplitLibrary::start(python, &test, &[], compression) else {
        return;
    };
    split.assert_lines(python);
    std::fs::remove_file(split.dir.path(SPLIT_DEBUG_FILE)).unwrap();
    split.assert_no_lines();
    let without_debug_file = split.frames();
    // 3.10's libpython's debug file has another build id: it is not taken for this
    // library's, whose addresses it would give 3.10's functions and lines.
    let other = common::expected_pythons()
        .into_iter()
        .find_map(|(name, path)| (name == "3.10").then_some(path?))
        .map(|path| {
            path.parent()
                .unwrap()
                .parent()
                .unwrap()
                .join("lib/libpython3.10.so.1.0")
        })
        .filter(|other| other.exists());
    match other {
        Some(other) => {
            let keep_debug = [
                "--only-keep-debug",
                other.to_str().unwrap(),
                SPLIT_DEBUG_FILE,
            ];
            assert!(objcopy(&keep_debug, &split.dir.0));
            assert_eq!(split.frames(), without_debug_file);
        }
        None => common::skip(&test, "no pyenv 3.10 libpython for a mismatched debug file"),
    }
    assert_running_again(python, split.target.pid());
}

#[test]
fn native_lines_from_separate_debug_file() {
    common::run_on("3.11", "native_debug_file_zlib", |python| {
        lines_from_separate_debug_file(python, "zlib")
    });
}

#[test]
fn native_lines_from_zstd_compressed_debug_file() {
    common::run_on("3.11", "native_debug_file_zstd", |python| {
        lines_from_separate_debug_file(python, "zstd")
    });
}

/// A library without a build id is matched with its debug file by the CRC that
/// `.gnu_debuglink` gives: the file is used while it is the one split off, and not once
/// it was changed (another section added).
fn debug_file_checked_by_crc(python: &Python) {
    const TEST: &str = "native_debug_file_crc";
    let no_build_id = ["--remove-section=.note.gnu.build-id"];
    let Some(split) = SplitLibrary::start(python, TEST, &no_build_id, "zlib") else {
        return;
    };
    split.assert_lines(python);
    let junk = split.dir.path("junk");
    std::fs::write(&junk, b"not what was split off").unwrap();
    let add = format!("--add-section=.pyscry-junk={}", junk.display());
    assert!(objcopy(&[&add, SPLIT_DEBUG_FILE], &split.dir.0));
    split.assert_no_lines();
    assert_running_again(python, split.target.pid());
}

#[test]
fn native_debug_file_without_build_id() {
    common::run_on("3.11", "native_debug_file_crc", debug_file_checked_by_crc);
}
