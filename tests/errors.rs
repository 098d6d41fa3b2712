//! Bad input gets a clear one-line error and a non-zero exit, never a panic.

mod common;

use std::process::{Command, Output, Stdio};

use common::{pyscry, run_pyscry, script, Python, Target, TempDir};

/// Exit codes, as documented in docs/exit-codes.md.
const NO_SUCH_PROCESS: i32 = 3;
const PERMISSION_DENIED: i32 = 4;
const NOT_PYTHON: i32 = 5;
const UNSUPPORTED: i32 = 6;
const CANNOT_LAUNCH: i32 = 7;
const OUTPUT_NOT_WRITABLE: i32 = 8;

/// The exit code and the single error line of a failed run.
fn failure(out: &Output) -> (i32, String) {
    let stderr = String::from_utf8_lossy(&out.stderr).trim_end().to_string();
    assert!(!stderr.contains("panicked"), "pyscry panicked: {stderr}");
    let errors: Vec<&str> = stderr.lines().filter(|l| l.contains("error")).collect();
    assert_eq!(errors.len(), 1, "expected one error line, got: {stderr}");
    (
        out.status.code().expect("exited normally"),
        errors[0].to_string(),
    )
}

fn unused_pid() -> u32 {
    let max: u32 = std::fs::read_to_string("/proc/sys/kernel/pid_max")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    (2..max)
        .rev()
        .find(|pid| !std::path::Path::new(&format!("/proc/{pid}")).exists())
        .unwrap()
}

fn some_python() -> Option<Python> {
    common::expected_pythons()
        .into_iter()
        .find_map(|(name, path)| Some(Python { name, path: path? }))
}

#[test]
fn no_such_pid() {
    let pid = unused_pid().to_string();
    for args in [
        vec!["dump", "--pid", &pid],
        vec!["record", "--pid", &pid, "-o", "/dev/null"],
    ] {
        let (code, message) = failure(&run_pyscry(&args));
        assert_eq!(code, NO_SUCH_PROCESS, "{message}");
        assert!(
            message.contains(&format!("no process with PID {pid}")),
            "{message}"
        );
    }
}

#[test]
fn not_a_python_process() {
    let target = Target::command("sleep", &["60"]);
    let (code, message) = failure(&run_pyscry(&["dump", "--pid", &target.pid().to_string()]));
    assert_eq!(code, NOT_PYTHON, "{message}");
    assert!(message.contains("is not a Python process"), "{message}");
    assert!(message.contains("sleep"), "{message}");
    assert_eq!(target.state(), 'S', "target disturbed");
}

#[test]
fn launching_a_program_that_is_not_python() {
    let dir = TempDir::new("launch-not-python");
    let out = pyscry()
        .args(["record", "-o"])
        .arg(dir.path("x.svg"))
        .args(["--", "sleep", "30"])
        .output()
        .unwrap();
    let (code, message) = failure(&out);
    assert_eq!(code, NOT_PYTHON, "{message}");
    assert!(
        !dir.path("x.svg").exists(),
        "a failed recording left a file"
    );
}

#[test]
fn permission_denied_says_how_to_grant_ptrace() {
    if !nix_is_root() {
        return common::skip(
            "permission_denied",
            "needs root to run pyscry as another user",
        );
    }
    let Some(python) = some_python() else {
        return common::skip("permission_denied", "no interpreter");
    };
    let mut target = Target::start(&python, &script("counter.py"), &[]);
    target.next_line();
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(env!("CARGO_BIN_EXE_pyscry"))
        .args(["dump", "--pid", &target.pid().to_string()])
        .output();
    let Ok(out) = out else {
        return common::skip("permission_denied", "setpriv is not available");
    };
    let (code, message) = failure(&out);
    assert_eq!(code, PERMISSION_DENIED, "{message}");
    assert!(message.contains("permission denied"), "{message}");
    assert!(
        message.contains("ptrace_scope")
            && message.contains("CAP_SYS_PTRACE".to_lowercase().as_str()),
        "{message}"
    );
}

fn nix_is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .is_some_and(|l| l.split_whitespace().nth(1) == Some("0"))
}

/// A process that looks like CPython 3.16 (it exports `_PyRuntime` and a `Py_Version`
/// of 3.16.0) must be refused by name, with the supported versions listed.
#[test]
fn unsupported_python_version() {
    let dir = TempDir::new("fake-python");
    let source = dir.path("fake.c");
    std::fs::write(
        &source,
        "#include <unistd.h>\n\
         const unsigned long Py_Version = 0x031000f0;\n\
         char _PyRuntime[4096] = {1};\n\
         int main(void) { write(1, \"ready\\n\", 6); for (;;) pause(); }\n",
    )
    .unwrap();
    let binary = dir.path("python3.16");
    let built = Command::new("gcc")
        .arg("-rdynamic")
        .arg("-o")
        .arg(&binary)
        .arg(&source)
        .status();
    if !built.is_ok_and(|s| s.success()) {
        return common::skip("unsupported_python_version", "gcc is not available");
    }
    let mut target = Target::command(binary.to_str().unwrap(), &[]);
    target.wait_for_line("ready");
    let (code, message) = failure(&run_pyscry(&["dump", "--pid", &target.pid().to_string()]));
    assert_eq!(code, UNSUPPORTED, "{message}");
    assert!(message.contains("CPython 3.16.0"), "{message}");
    assert!(message.contains("supported: 2.7, 3.6"), "{message}");
}

#[test]
fn program_that_does_not_exist() {
    let dir = TempDir::new("no-program");
    let out = pyscry()
        .args(["record", "-o"])
        .arg(dir.path("x.svg"))
        .args(["--", "/nonexistent/python3", "x.py"])
        .output()
        .unwrap();
    let (code, message) = failure(&out);
    assert_eq!(code, CANNOT_LAUNCH, "{message}");
    assert!(message.contains("/nonexistent/python3"), "{message}");
}

#[test]
fn output_path_that_cannot_be_written() {
    let Some(python) = some_python() else {
        return common::skip("output_path", "no interpreter");
    };
    let out = pyscry()
        .args(["record", "-o", "/nonexistent-dir/out.svg", "--"])
        .arg(&python.path)
        .arg(script("ratio.py"))
        .stdout(Stdio::null())
        .output()
        .unwrap();
    let (code, message) = failure(&out);
    assert_eq!(code, OUTPUT_NOT_WRITABLE, "{message}");
    assert!(message.contains("/nonexistent-dir/out.svg"), "{message}");
}

#[test]
fn missing_target_is_a_usage_error() {
    let out = run_pyscry(&["record"]);
    assert_eq!(out.status.code(), Some(2));
    let out = run_pyscry(&["record", "--pid", "1", "--", "python3"]);
    assert_eq!(out.status.code(), Some(2));
    let out = run_pyscry(&["record", "--rate", "0", "--pid", "1"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn a_failed_recording_keeps_an_existing_output_file() {
    let dir = TempDir::new("keep-output");
    let path = dir.path("keep.svg");
    std::fs::write(&path, "precious").unwrap();
    let pid = unused_pid().to_string();
    let out = pyscry()
        .args(["record", "--pid", &pid, "-o"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(failure(&out).0, NO_SUCH_PROCESS);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "precious");
}

/// Output to a pipe its reader has closed (`pyscry dump --pid PID | head`) ends pyscry
/// quietly with success, as other command-line tools do, not with an error or a panic;
/// a target paused for the read (`--native`) runs again.
#[test]
fn closed_output_pipe_ends_quietly() {
    let Some(python) = some_python() else {
        return common::skip("closed_output_pipe", "no interpreter");
    };
    let mut target = Target::start(&python, &script("counter.py"), &[]);
    target.next_line();
    let mut dump = pyscry()
        .args(["dump", "--native", "--pid", &target.pid().to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Closing the pipe's only reading end before pyscry writes makes its write fail.
    drop(dump.stdout.take());
    let out = dump.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{:?}: {stderr}", out.status);
    assert!(stderr.is_empty(), "{stderr}");
    let counted = target.next_line();
    assert!(!counted.is_empty(), "the target counts again");
}

/// `dump --core` with a file that is missing, not a core dump, the core dump of a
/// program that is not Python, or a Python core dump cut short: one clear error each.
#[test]
fn core_dumps_that_cannot_be_read() {
    let dir = TempDir::new("bad-core");
    let missing = dir.path("missing");
    let text = dir.path("text");
    std::fs::write(&text, "not a core dump\n").unwrap();
    for (path, expected) in [(&missing, "No such file"), (&text, "not a core dump")] {
        let out = run_pyscry(&["dump", "--core", path.to_str().unwrap()]);
        let (code, message) = failure(&out);
        assert_eq!(code, 1, "{message}");
        assert!(message.contains("cannot read core dump"), "{message}");
        assert!(message.contains(expected), "{message}");
    }
    // A shell that aborts leaves a core dump with no Python in it.
    let status = Command::new("sh")
        .args(["-c", "ulimit -c unlimited; kill -ABRT $$"])
        .current_dir(&dir.0)
        .status()
        .unwrap();
    assert!(!status.success());
    let core = dir.path("core");
    if !core.exists() {
        return common::skip(
            "bad_core",
            "core_pattern leaves no core file in the directory",
        );
    }
    let (code, message) = failure(&run_pyscry(&["dump", "--core", core.to_str().unwrap()]));
    assert_eq!(code, NOT_PYTHON, "{message}");
    std::fs::remove_file(&core).unwrap();

    let Some(python) = some_python() else {
        return common::skip("bad_core", "no interpreter");
    };
    let status = Command::new(&python.path)
        .arg(script("core_dump.py"))
        .current_dir(&dir.0)
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(!status.success());
    let whole = std::fs::read(&core).unwrap();
    let cut = dir.path("cut");
    std::fs::write(&cut, &whole[..whole.len() / 2]).unwrap();
    let out = run_pyscry(&["dump", "--core", cut.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("shorter than its segments say"), "{stderr}");
    assert!(!out.status.success(), "{stderr}");
    failure(&out);
}
