//! `pyscry dump --core` reads the stacks of a process from the core file it left.

mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};

use common::{run_pyscry, script, Python, TempDir};
use serde_json::Value;

/// Run `core_dump.py` under `python` in `dir`, and return the core file it leaves there;
/// `None` (with why) when the machine's `core_pattern` sends core files elsewhere.
fn core_file(python: &Python, dir: &TempDir) -> Result<PathBuf, String> {
    let status = Command::new(&python.path)
        .arg(script("core_dump.py"))
        .current_dir(&dir.0)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("running the interpreter");
    assert!(!status.success(), "{}: os.abort() returned", python.name);
    let found = std::fs::read_dir(&dir.0)
        .unwrap()
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .find(|path| {
            let name = path.file_name().unwrap().to_string_lossy();
            name == "core" || name.starts_with("core.")
        });
    found.ok_or_else(|| {
        let pattern = std::fs::read_to_string("/proc/sys/kernel/core_pattern");
        let pattern = pattern.unwrap_or_default();
        format!("no core file in the working directory (core_pattern {pattern:?})")
    })
}

/// A process that aborted in `inner` (called by `outer`), with a second thread asleep:
/// `dump --core` shows both threads' stacks, names and locals, with the C frames of
/// the abort innermost, from the core file alone (the process is gone).
fn stacks_from_a_core_dump(python: &Python) {
    let dir = TempDir::new(&format!("core-{}", python.name));
    let core = match core_file(python, &dir) {
        Ok(core) => core,
        Err(why) => return common::skip("core_dump", &why),
    };
    let core_arg = core.to_str().unwrap();
    let out = run_pyscry(&["dump", "--core", core_arg, "--json", "--locals", "--native"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{}: {stderr}", python.name);
    // The files here are those the process had loaded: no warning that they differ.
    assert!(stderr.is_empty(), "{}: {stderr}", python.name);
    let dump: Value = serde_json::from_slice(&out.stdout).expect("dump --json is JSON");
    // A core file keeps the first 80 bytes of the command line.
    let command = dump["command"].as_str().unwrap();
    let full = format!(
        "{} {}",
        python.path.display(),
        script("core_dump.py").display()
    );
    assert!(
        command.len() >= 40 && full.starts_with(command),
        "{}: {command:?} is not the start of {full:?}",
        python.name
    );
    assert_eq!(dump["core_file"], core_arg, "{}", python.name);
    let threads = dump["threads"].as_array().unwrap();
    assert_eq!(threads.len(), 2, "{}: {dump:#}", python.name);
    let thread = |name: &str| -> &Value {
        let found = threads.iter().find(|t| t["name"] == name);
        found.unwrap_or_else(|| panic!("{}: no thread {name}: {dump:#}", python.name))
    };
    let python_frames = |thread: &Value| -> Vec<Value> {
        let frames = thread["frames"].as_array().unwrap();
        frames
            .iter()
            .filter(|f| f["kind"] == "python")
            .cloned()
            .collect()
    };
    let main = thread("MainThread");
    assert_eq!(main["status"], "dumped", "{}: {main:#}", python.name);
    let names: Vec<String> = python_frames(main)
        .iter()
        .map(|f| f["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["inner", "outer", "<module>"], "{}", python.name);
    let inner = &python_frames(main)[0];
    let label = inner["locals"]
        .as_array()
        .and_then(|locals| locals.iter().find(|l| l["name"] == "label").cloned());
    assert_eq!(
        label.map(|l| l["value"].clone()),
        Some(Value::from("'name42'")),
        "{}: {inner:#}",
        python.name
    );
    let waiter = python_frames(thread("waiter"));
    assert_eq!(waiter[0]["name"], "worker_wait", "{}", python.name);
    // The C frames of the abort, above `inner`; Debian's stripped 3.15 is not merged
    // (see `native_stack` in tests/dump.rs).
    let frames = main["frames"].as_array().unwrap();
    if main["native_error"].is_null() {
        let at_inner = frames.iter().position(|f| f["name"] == "inner").unwrap();
        assert!(
            frames[..at_inner]
                .iter()
                .any(|f| f["function"].as_str().is_some_and(|f| f.contains("abort"))),
            "{}: {main:#}",
            python.name
        );
    } else {
        assert_eq!(python.name, "3.15", "{main:#}");
    }
    let text = run_pyscry(&["dump", "--core", core_arg]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("Core dump: "), "{}: {text}", python.name);
    assert!(text.contains("    inner ("), "{}: {text}", python.name);
}

test_each_python!(core_stacks, super::stacks_from_a_core_dump);

/// A core file that gdb's `gcore` wrote of a running process, which leaves out the
/// mappings it does not dump altogether (the kernel keeps a segment without bytes for
/// each): `dump --core --native` reads their code from the files, and unwinds.
fn stacks_from_gcore(python: &Python) {
    const TEST: &str = "core_dump_gcore";
    let mut target = common::Target::start(python, &script("native.py"), &[]);
    target.wait_for_line("ready");
    std::thread::sleep(std::time::Duration::from_millis(200));
    let dir = TempDir::new(TEST);
    let Some(core) = gcore(&target, &dir, TEST) else {
        return;
    };
    let out = run_pyscry(&["dump", "--core", &core, "--native", "--json"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{}: {stderr}", python.name);
    let dump: Value = serde_json::from_slice(&out.stdout).expect("dump --json is JSON");
    let frames = dump["threads"][0]["frames"].as_array().unwrap();
    let function = |f: &Value| f["function"].as_str().unwrap_or_default().to_string();
    let python_names: Vec<&str> = frames
        .iter()
        .filter(|f| f["kind"] == "python")
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(python_names, ["inner", "outer", "<module>"], "{dump:#}");
    assert!(
        frames.iter().any(|f| function(f) == "time_sleep"),
        "{dump:#}"
    );
}

/// The path of a core file of `target` that `gcore` wrote in `dir`; `None`, the test
/// skipped, without gcore.
fn gcore(target: &common::Target, dir: &TempDir, test: &str) -> Option<String> {
    let prefix = dir.path("gcore");
    let pid = target.pid().to_string();
    let ran = Command::new("gcore")
        .arg("-o")
        .arg(&prefix)
        .arg(&pid)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if !ran.is_ok_and(|status| status.success()) {
        common::skip(test, "gcore (gdb) not found or failed");
        return None;
    }
    Some(format!("{}.{pid}", prefix.display()))
}

#[test]
fn gcore_of_a_running_process() {
    common::run_on("3.11", "core_dump_gcore", stacks_from_gcore);
}

/// `dump --core --tasks` finds asyncio's tasks in a core file: 3.14 keeps where they
/// are in its `_asyncio` module, a file of its own.
fn tasks_from_gcore(python: &Python) {
    const TEST: &str = "core_dump_tasks";
    let mut target = common::Target::start(python, &script("tasks.py"), &["60"]);
    target.wait_for_line("ready");
    let dir = TempDir::new(TEST);
    let Some(core) = gcore(&target, &dir, TEST) else {
        return;
    };
    let out = run_pyscry(&["dump", "--core", &core, "--tasks"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let worker = text.split("Task \"worker-1\"").nth(1).unwrap_or_default();
    let frames: Vec<&str> = worker
        .lines()
        .skip(1)
        .take_while(|l| !l.is_empty())
        .collect();
    let names: Vec<&str> = frames
        .iter()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(
        names,
        ["Event.wait", "innermost", "middle", "worker"],
        "{text}"
    );
}

#[test]
fn gcore_of_a_process_with_asyncio_tasks() {
    common::run_on("3.14", "core_dump_tasks", tasks_from_gcore);
}

/// A core file read where a library the process had loaded has since been replaced
/// (here: rebuilt without its build id) is read with a warning naming the library:
/// its code and constants come from the file here, and may be wrong.
fn replaced_library_is_named(python: &Python) {
    const TEST: &str = "core_dump_replaced_library";
    let dir = TempDir::new(TEST);
    let lib_name = "libpython3.11.so.1.0";
    let lib_dir = python.path.parent().unwrap().parent().unwrap().join("lib");
    let lib = dir.path(lib_name);
    std::fs::copy(lib_dir.join(lib_name), &lib).expect("copying libpython");
    let status = Command::new(&python.path)
        .arg(script("core_dump.py"))
        .current_dir(&dir.0)
        .env("LD_LIBRARY_PATH", &dir.0)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(!status.success());
    let core = dir.path("core");
    if !core.exists() {
        return common::skip(TEST, "core_pattern leaves no core file in the directory");
    }
    let dump = || run_pyscry(&["dump", "--core", core.to_str().unwrap()]);
    let out = dump();
    assert!(out.status.success());
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stripped = Command::new("objcopy")
        .args(["--remove-section=.note.gnu.build-id", lib_name])
        .current_dir(&dir.0)
        .status();
    if !stripped.is_ok_and(|status| status.success()) {
        return common::skip(TEST, "objcopy (binutils) not found or failed");
    }
    let out = dump();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("{} is not the file", lib.display())),
        "{stderr}"
    );
}

#[test]
fn replaced_library_is_named_in_a_warning() {
    common::run_on(
        "3.11",
        "core_dump_replaced_library",
        replaced_library_is_named,
    );
}
