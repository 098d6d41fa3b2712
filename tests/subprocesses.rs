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

/// A descendant found while it is still a shell, and sampled only once it `exec`s
/// Python; then, as one Python `exec`s another, sampled by a new sampler whose frames
/// stay apart from the first one's.
#[test]
fn a_descendant_is_followed_through_exec() {
    let test = "follow_exec";
    let pythons = common::pythons(test);
    let (first, last) = (&pythons[0], &pythons[pythons.len() - 1]);
    if first.path == last.path {
        return common::skip(test, "only one interpreter");
    }
    let dir = TempDir::new("follow-exec");
    let out_path = dir.path("exec.txt");
    // The inner shell sleeps 0.5 s, long enough to be found as a shell, then execs the
    // first Python, which spins in before_exec for 0.5 s and execs the last one.
    let code = "import os, sys, time\n\
                def before_exec():\n    end = time.time() + 0.5\n    \
                while time.time() < end:\n        pass\n    \
                os.execv(sys.argv[1], sys.argv[1:])\n\
                before_exec()\n";
    let inner = format!(
        "sleep 0.5; exec '{}' -c \"$0\" '{}' '{}' 0.1 3",
        first.path.display(),
        last.path.display(),
        common::script("ratio.py").display()
    );
    let options = ["--subprocesses", "-r", "100", "-f", "collapsed", "-o"];
    let out = common::pyscry()
        .arg("record")
        .args(options)
        .arg(&out_path)
        .args(["--", "sh", "-c", "sh -c \"$0\" \"$1\"; true", &inner, code])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let text = std::fs::read_to_string(&out_path).unwrap();
    let processes = per_process(&text);
    assert_eq!(processes.len(), 1, "{processes:?}\n{text}");
    let has = |name: &str| text.lines().any(|l| l.contains(&format!(";{name} (")));
    assert!(has("before_exec") && has("burn"), "{text}");
    // Each function under its own script: no frame of one Python named by the other's
    // (the root label is the process's, and names its last command).
    let mixed = text.lines().any(|l| {
        let frames = l.split_once(';').map_or("", |(_, frames)| frames);
        frames.contains("before_exec (") && frames.contains("ratio.py")
            || frames.contains("burn (") && frames.contains("<string>")
    });
    assert!(!mixed, "{text}");
}

/// Start waiting_pool.py under `program args`; the target and the workers' PIDs.
fn start_waiting_pool(program: &str, args: &[&str]) -> (common::Target, [u32; 2]) {
    let mut target = common::Target::command(program, args);
    let line = target.next_line();
    let pids: Vec<u32> = line
        .strip_prefix("ready ")
        .unwrap_or_else(|| panic!("not ready: {line:?}"))
        .split(' ')
        .map(|pid| pid.parse().unwrap())
        .collect();
    (target, [pids[0], pids[1]])
}

/// `dump --subprocesses --json`: the dumps of the processes, by PID.
fn dump_tree(pid: u32, extra: &[&str]) -> HashMap<u64, serde_json::Value> {
    let pid = pid.to_string();
    let mut args = vec!["dump", "--pid", &pid, "--subprocesses", "--json"];
    args.extend(extra);
    let out = common::run_pyscry(&args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let dumps: Vec<serde_json::Value> =
        serde_json::from_slice(&out.stdout).expect("dump --subprocesses --json is a list");
    dumps
        .into_iter()
        .map(|dump| (dump["pid"].as_u64().unwrap(), dump))
        .collect()
}

/// Whether a process's dump has a frame of function `name` in one of its threads.
fn has_frame(dump: &serde_json::Value, name: &str) -> bool {
    let threads = dump["threads"].as_array().into_iter().flatten();
    let mut frames = threads.flat_map(|t| t["frames"].as_array().into_iter().flatten());
    frames.any(|f| f["name"] == name)
}

/// `dump --subprocesses` dumps the target, then each of its descendants that runs
/// Python: both workers, waiting in `child_wait`; without it, only the target.
fn pool_workers_are_dumped(python: &Python) {
    let script = common::script("waiting_pool.py");
    let python_path = python.path.to_str().unwrap();
    let (target, workers) = start_waiting_pool(python_path, &[script.to_str().unwrap()]);
    let dumps = dump_tree(target.pid(), &[]);
    let root = &dumps[&u64::from(target.pid())];
    assert!(has_frame(root, "main_wait"), "{}: {root:#}", python.name);
    for worker in workers {
        let dump = dumps.get(&u64::from(worker));
        let dump = dump.unwrap_or_else(|| panic!("{}: no {worker}: {dumps:#?}", python.name));
        assert!(has_frame(dump, "child_wait"), "{}: {dump:#}", python.name);
    }
    let pid = target.pid().to_string();
    let text = common::run_pyscry(&["dump", "--pid", &pid, "--subprocesses"]);
    let text = String::from_utf8_lossy(&text.stdout);
    for worker in workers {
        let heading = format!("Process {worker}: ");
        assert!(text.contains(&heading), "{}: {text}", python.name);
    }
    let alone = common::run_pyscry(&["dump", "--pid", &pid, "--json"]);
    let alone: serde_json::Value = serde_json::from_slice(&alone.stdout).unwrap();
    assert_eq!(alone["pid"], u64::from(target.pid()), "{}", python.name);
}

test_each_python!(dump_pool, super::pool_workers_are_dumped);

/// A target that does not run Python (a shell) is refused by `dump`, and with
/// `--subprocesses` its Python descendants are dumped (`--native` too).
#[test]
fn dump_descends_from_a_shell() {
    let Some(python) = common::any_python() else {
        return common::skip("dump_descends_from_a_shell", "no interpreter");
    };
    let script = common::script("waiting_pool.py");
    let command = format!("'{}' '{}'; true", python.path.display(), script.display());
    let (shell, workers) = start_waiting_pool("sh", &["-c", &command]);
    let pid = shell.pid().to_string();
    let refused = common::run_pyscry(&["dump", "--pid", &pid]);
    assert_eq!(refused.status.code(), Some(5), "{refused:?}");
    let dumps = dump_tree(shell.pid(), &["--native"]);
    assert!(!dumps.contains_key(&u64::from(shell.pid())), "{dumps:#?}");
    assert!(
        dumps.values().any(|d| has_frame(d, "main_wait")),
        "{dumps:#?}"
    );
    for worker in workers {
        assert!(
            has_frame(&dumps[&u64::from(worker)], "child_wait"),
            "{dumps:#?}"
        );
    }
}

/// `record --subprocesses` of a target that does not run Python (a shell that starts
/// Python programs) samples its Python descendants, launched or attached to: the pool
/// script's main process and both workers, never the shell.
#[test]
fn record_descends_from_a_shell() {
    let Some(python) = common::any_python() else {
        return common::skip("record_descends_from_a_shell", "no interpreter");
    };
    let dir = TempDir::new("record-from-shell");
    let out_path = dir.path("pool.txt");
    let pool = common::script("pool.py");
    let command = format!("'{}' '{}' 1; true", python.path.display(), pool.display());
    let options = ["--subprocesses", "-r", "100", "-f", "collapsed", "-o"];
    let out = common::pyscry()
        .arg("record")
        .args(options)
        .arg(&out_path)
        .args(["--", "sh", "-c", &command])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("does not run Python"), "{stderr}");
    let text = std::fs::read_to_string(&out_path).unwrap();
    let processes = per_process(&text);
    let in_work = processes
        .values()
        .filter(|&&(_, in_work)| in_work > 0)
        .count();
    assert_eq!(in_work, 2, "{processes:?}\n{text}");
    assert!(text.contains(";main ("), "{text}");
    assert!(!text.lines().any(|l| l.contains("sh -c")), "{text}");

    // Attached: a shell whose Python children wait.
    let script = common::script("waiting_pool.py");
    let command = format!("'{}' '{}'; true", python.path.display(), script.display());
    let (shell, workers) = start_waiting_pool("sh", &["-c", &command]);
    let pid = shell.pid().to_string();
    let out_path = dir.path("waiting.txt");
    let out = common::pyscry()
        .args([
            "record",
            "--pid",
            &pid,
            "--subprocesses",
            "-d",
            "1",
            "-f",
            "collapsed",
            "-o",
        ])
        .arg(&out_path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let text = std::fs::read_to_string(&out_path).unwrap();
    assert!(text.contains(";main_wait ("), "{text}");
    for worker in workers {
        let root = format!("process {worker}: ");
        let waits = text
            .lines()
            .any(|l| l.starts_with(&root) && l.contains(";child_wait ("));
        assert!(waits, "{worker}: {text}");
    }
}
