//! Shared helpers for the integration tests: finding interpreters, running pyscry and
//! Python targets, and making sure no process outlives a test.

#![allow(dead_code)] // each test binary uses a different subset

use std::fs::OpenOptions;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// An interpreter a test can run.
#[derive(Debug, Clone)]
pub struct Python {
    /// Short name, e.g. `3.11` or `3.11-debian-static`.
    pub name: String,
    /// Path of the executable.
    pub path: PathBuf,
}

impl Python {
    /// Whether this is a free-threaded build (no GIL), asked from the interpreter.
    pub fn free_threaded(&self) -> bool {
        self.config_flag("Py_GIL_DISABLED")
    }

    /// Whether this is a debug build (`--with-pydebug`: compiled without optimizing),
    /// asked from the interpreter.
    pub fn debug_build(&self) -> bool {
        self.config_flag("Py_DEBUG")
    }

    /// Whether the build's configuration variable `name` is set to 1.
    fn config_flag(&self, name: &str) -> bool {
        let code = format!("import sysconfig; print(sysconfig.get_config_var('{name}') or 0)");
        let out = Command::new(&self.path)
            .args(["-c", &code])
            .output()
            .expect("running the interpreter");
        String::from_utf8_lossy(&out.stdout).trim() == "1"
    }

    /// `(major, minor)` of this interpreter, asked from the interpreter itself.
    pub fn version(&self) -> (u32, u32) {
        let out = Command::new(&self.path)
            .args(["-c", "import sys; print('%d %d' % sys.version_info[:2])"])
            .output()
            .expect("running the interpreter");
        let text = String::from_utf8_lossy(&out.stdout);
        let mut parts = text.split_whitespace().map(|p| p.parse().unwrap());
        (parts.next().unwrap(), parts.next().unwrap())
    }
}

/// The interpreters the foundation supports, by name, and where each is expected.
pub fn expected_pythons() -> Vec<(String, Option<PathBuf>)> {
    let pyenv = std::env::var("PYENV_ROOT").unwrap_or_else(|_| "/root/.pyenv".into());
    let mut out = Vec::new();
    for minor in [
        "2.7", "3.6", "3.7", "3.8", "3.9", "3.10", "3.11", "3.12", "3.13",
    ] {
        out.push((minor.to_string(), pyenv_python(&pyenv, minor)));
    }
    let debian = PathBuf::from("/usr/bin/python3.11");
    out.push((
        "3.11-debian-static".to_string(),
        debian.exists().then_some(debian),
    ));
    let provisioned = provisioned_pythons();
    for name in PROVISIONED {
        let path = provisioned
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, p)| p.clone());
        out.push((name.to_string(), path));
    }
    if let Ok(extra) = std::env::var("PYSCRY_TEST_PYTHONS") {
        for entry in extra.split([',', ':']).filter(|e| !e.is_empty()) {
            let (name, path) = entry.split_once('=').unwrap_or((entry, entry));
            out.push((name.to_string(), Some(PathBuf::from(path))));
        }
    }
    out
}

/// Interpreters that `tests/pythons/provision.sh` obtains (Debian sid builds, debug
/// builds, free-threaded builds), by the names it gives them.
pub const PROVISIONED: [&str; 8] = [
    "3.9-debian-static",
    "3.13-sid",
    "3.14",
    "3.15",
    "3.14d",
    "3.15d",
    "3.13t",
    "3.14t",
];

/// How many interpreters [`expected_pythons`] lists before the `PYSCRY_TEST_PYTHONS`
/// extras: the pyenv builds, Debian's static 3.11 and the provisioned ones.
const FIXED_PYTHONS: usize = 9 + 1 + PROVISIONED.len();

/// The `name path` lines of the provisioning script's list, if it has run.
fn provisioned_pythons() -> Vec<(String, PathBuf)> {
    let cache = std::env::var("PYSCRY_PYTHONS")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            Path::new(&std::env::var("HOME").unwrap_or_else(|_| "/root".into()))
                .join(".cache/pyscry/pythons")
        });
    std::fs::read_to_string(cache.join("list.txt"))
        .unwrap_or_default()
        .lines()
        .filter_map(|line| {
            let (name, path) = line.split_once(' ')?;
            Some((name.to_string(), PathBuf::from(path.trim())))
        })
        .collect()
}

fn pyenv_python(root: &str, minor: &str) -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(Path::new(root).join("versions"))
        .ok()?
        .filter_map(|e| e.ok())
        .filter(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.strip_prefix(minor).is_some_and(|rest| {
                rest.starts_with('.') && rest[1..].chars().all(|c| c.is_ascii_digit())
            })
        })
        .map(|e| e.path().join("bin/python"))
        .filter(|p| p.exists())
        .collect();
    found.sort();
    found.pop()
}

/// The interpreters present on this machine. Each missing one is reported as skipped
/// for `test`, by name, on stderr and in the skip log that `.ci/run` prints.
pub fn pythons(test: &str) -> Vec<Python> {
    let mut present = Vec::new();
    for (name, path) in expected_pythons() {
        match path {
            Some(path) if path.exists() => present.push(Python { name, path }),
            _ => skip(test, &format!("interpreter {name} not found")),
        }
    }
    assert!(
        !present.is_empty(),
        "{test}: no Python interpreter found at all"
    );
    present
}

/// One interpreter for tests that need any: the last one present in the list.
pub fn any_python() -> Option<Python> {
    expected_pythons()
        .into_iter()
        .rev()
        .find_map(|(name, path)| Some(Python { name, path: path? }))
}

/// Record that `test` skipped something, and why.
pub fn skip(test: &str, why: &str) {
    eprintln!("SKIPPED {test}: {why}");
    let log = Path::new(env!("CARGO_TARGET_TMPDIR")).join("skipped.txt");
    if let Ok(mut file) = OpenOptions::new().create(true).append(true).open(log) {
        let _ = writeln!(file, "{test}: {why}");
    }
}

/// What a test of the GIL runs `python` under: its own environment, and for a
/// free-threaded build, which runs without its GIL, also `PYTHON_GIL=1`, which turns
/// it on (as importing an extension module that needs it does); each with whether the
/// GIL is then in force.
pub fn gil_environments(python: &Python) -> Vec<(&'static [(&'static str, &'static str)], bool)> {
    if python.free_threaded() {
        vec![(&[], false), (&[("PYTHON_GIL", "1")], true)]
    } else {
        vec![(&[], true)]
    }
}

/// The path of the test script `name` in `tests/scripts/`.
pub fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/scripts")
        .join(name)
}

/// The line of `script` that carries the marker `# at: NAME`.
pub fn marked_line(script: &Path, name: &str) -> u32 {
    let marker = format!("# at: {name}");
    let text = std::fs::read_to_string(script).unwrap();
    let index = text
        .lines()
        .position(|l| l.trim_end().ends_with(&marker))
        .unwrap_or_else(|| panic!("no marker {marker:?} in {}", script.display()));
    index as u32 + 1
}

/// The pyscry binary under test.
pub fn pyscry() -> Command {
    Command::new(env!("CARGO_BIN_EXE_pyscry"))
}

/// Run pyscry with `args` and collect its output.
pub fn run_pyscry(args: &[&str]) -> Output {
    pyscry().args(args).output().expect("running pyscry")
}

/// `pyscry record OPTIONS -o OUTPUT -- PYTHON tests/scripts/SCRIPT ARGS…`, the
/// format from the options or the output's extension.
pub fn record_script(
    python: &Python,
    options: &[&str],
    output: &Path,
    name: &str,
    args: &[&str],
) -> Output {
    record_script_in(&[], python, options, output, name, args)
}

/// [`record_script`] with these environment variables set for pyscry and the program
/// it launches.
pub fn record_script_in(
    env: &[(&str, &str)],
    python: &Python,
    options: &[&str],
    output: &Path,
    name: &str,
    args: &[&str],
) -> Output {
    pyscry()
        .envs(env.iter().copied())
        .arg("record")
        .args(options)
        .arg("-o")
        .arg(output)
        .arg("--")
        .arg(&python.path)
        .arg(script(name))
        .args(args)
        .output()
        .expect("running pyscry")
}

/// One at a time, for tests that measure time shares: a target spinning on a CPU the
/// other tests' targets compete for spends the time it waits on whatever line it was
/// at, and the shares a test expects drift. Held for as long as the guard lives.
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// A scratch directory for one test, removed at the end.
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// A new empty directory named after `test`.
    pub fn new(test: &str) -> TempDir {
        let dir =
            Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    /// A path inside the directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A target process that is killed when the test ends, however it ends.
pub struct Target {
    /// The child.
    pub child: Child,
    /// Its stdout, line by line.
    pub stdout: BufReader<ChildStdout>,
}

impl Target {
    /// Start `python` on `script` with `args`, stdout piped.
    pub fn start(python: &Python, script: &Path, args: &[&str]) -> Target {
        let mut command = Command::new(&python.path);
        command.arg(script).args(args);
        Target::spawn(command)
    }

    /// Start any command, stdout piped.
    pub fn command(program: &str, args: &[&str]) -> Target {
        let mut command = Command::new(program);
        command.args(args);
        Target::spawn(command)
    }

    /// Start `command` as it is set up (its environment, say), stdout piped.
    pub fn spawn(mut command: Command) -> Target {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("starting the target");
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Target { child, stdout }
    }

    /// The target's PID.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Read stdout lines until one equals `line`.
    pub fn wait_for_line(&mut self, line: &str) {
        let mut buf = String::new();
        loop {
            buf.clear();
            let n = self.stdout.read_line(&mut buf).unwrap();
            assert!(n > 0, "target ended before printing {line:?}");
            if buf.trim_end() == line {
                return;
            }
        }
    }

    /// The next stdout line.
    pub fn next_line(&mut self) -> String {
        let mut buf = String::new();
        self.stdout.read_line(&mut buf).unwrap();
        buf.trim_end().to_string()
    }

    /// The scheduler state letter from `/proc/PID/stat`.
    pub fn state(&self) -> char {
        process_state(self.pid()).expect("target still exists")
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The scheduler state of `pid`, or `None` if it is gone.
pub fn process_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

/// Sum collapsed-stack counts by the named functions: for each name, the samples whose
/// stack contains a frame of that function. Returns (per-name counts, total samples).
pub fn collapsed_shares(text: &str, names: &[&str]) -> (Vec<u64>, u64) {
    let mut counts = vec![0; names.len()];
    let mut total = 0;
    for line in text.lines().filter(|l| !l.is_empty()) {
        let (stack, count) = line.rsplit_once(' ').expect("`stack count` line");
        let count: u64 = count.parse().expect("numeric count");
        total += count;
        let functions: Vec<&str> = stack
            .split(';')
            .map(|frame| frame.split(" (").next().unwrap())
            .collect();
        for (i, name) in names.iter().enumerate() {
            if functions.contains(name) {
                counts[i] += count;
            }
        }
    }
    (counts, total)
}

/// One call in a Chrome trace: a `B` event and its `E`.
#[derive(Debug, Clone)]
pub struct TraceSlice {
    /// The function.
    pub name: String,
    /// Slices open around it.
    pub depth: usize,
    /// Start and end, in milliseconds.
    pub start_ms: f64,
    /// End, in milliseconds.
    pub end_ms: f64,
}

/// The slices of each thread (by `tid`, in start order) of the Chrome trace at `path`,
/// checking that each thread's events are in time order and that every `B` has its
/// `E`; also returns the thread names the metadata events give.
pub fn trace_slices(
    path: &Path,
) -> (
    std::collections::BTreeMap<u64, Vec<TraceSlice>>,
    std::collections::BTreeMap<u64, String>,
) {
    let text = std::fs::read_to_string(path).unwrap();
    let trace: serde_json::Value = serde_json::from_str(&text).expect("a trace is JSON");
    let mut slices = std::collections::BTreeMap::<u64, Vec<TraceSlice>>::new();
    let mut names = std::collections::BTreeMap::new();
    let mut open = std::collections::BTreeMap::<u64, Vec<(String, f64)>>::new();
    let mut last = std::collections::BTreeMap::<u64, f64>::new();
    for event in trace["traceEvents"].as_array().expect("traceEvents") {
        let tid = event["tid"].as_u64().expect("tid");
        let name = event["name"].as_str().unwrap_or("").to_string();
        let ts = event["ts"].as_f64().unwrap_or(0.0) / 1000.0;
        match event["ph"].as_str().unwrap() {
            "M" if name == "thread_name" => {
                names.insert(tid, event["args"]["name"].as_str().unwrap().to_string());
            }
            "M" => {}
            phase => {
                let before = last.insert(tid, ts).unwrap_or(0.0);
                assert!(ts >= before, "thread {tid}: {ts} ms after {before} ms");
                let stack = open.entry(tid).or_default();
                if phase == "B" {
                    stack.push((name, ts));
                } else {
                    assert_eq!(phase, "E");
                    let (name, start_ms) = stack.pop().expect("an E without a B");
                    let depth = stack.len();
                    slices.entry(tid).or_default().push(TraceSlice {
                        name,
                        depth,
                        start_ms,
                        end_ms: ts,
                    });
                }
            }
        }
    }
    for (tid, stack) in open {
        assert!(
            stack.is_empty(),
            "thread {tid}: slices never ended: {stack:?}"
        );
    }
    for thread in slices.values_mut() {
        thread.sort_by(|a, b| {
            a.start_ms
                .total_cmp(&b.start_ms)
                .then(a.depth.cmp(&b.depth))
        });
    }
    (slices, names)
}

/// The calls to `names` among `slices`, in order, as (name, milliseconds); a call that
/// shows as two slices less than `join_ms` apart (ticks a loaded machine dropped)
/// counts once.
pub fn calls_of(slices: &[TraceSlice], names: &[&str], join_ms: f64) -> Vec<(String, f64)> {
    let mut calls: Vec<(String, f64, f64)> = Vec::new();
    for slice in slices.iter().filter(|s| names.contains(&s.name.as_str())) {
        match calls.last_mut() {
            Some((name, _, end)) if *name == slice.name && slice.start_ms - *end < join_ms => {
                *end = slice.end_ms;
            }
            _ => calls.push((slice.name.clone(), slice.start_ms, slice.end_ms)),
        }
    }
    calls
        .into_iter()
        .map(|(name, start, end)| (name, end - start))
        .collect()
}

/// Wait until `f` holds, for up to `timeout`.
pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// Run `check` on the interpreter called `name`, or report it skipped if it is absent.
pub fn run_on(name: &str, test: &str, check: fn(&Python)) {
    match expected_pythons().into_iter().find(|(n, _)| n == name) {
        Some((name, Some(path))) if path.exists() => check(&Python { name, path }),
        _ => skip(test, &format!("interpreter {name} not found")),
    }
}

/// Run `check` on every interpreter named in `PYSCRY_TEST_PYTHONS` (none by default).
pub fn run_on_extra(check: fn(&Python)) {
    for (name, path) in expected_pythons().into_iter().skip(FIXED_PYTHONS) {
        let path = path.expect("PYSCRY_TEST_PYTHONS entries have paths");
        assert!(
            path.exists(),
            "PYSCRY_TEST_PYTHONS: {} does not exist",
            path.display()
        );
        eprintln!("checking extra interpreter {name}");
        check(&Python { name, path });
    }
}

/// A module of one `#[test]` per supported interpreter, each running `$check`, so a
/// failure names its interpreter and a missing interpreter is reported skipped by name.
#[macro_export]
macro_rules! test_each_python {
    ($module:ident, $check:path) => {
        mod $module {
            $crate::test_each_python!(@one $check, py2_7, "2.7");
            $crate::test_each_python!(@one $check, py3_6, "3.6");
            $crate::test_each_python!(@one $check, py3_7, "3.7");
            $crate::test_each_python!(@one $check, py3_8, "3.8");
            $crate::test_each_python!(@one $check, py3_9, "3.9");
            $crate::test_each_python!(@one $check, py3_10, "3.10");
            $crate::test_each_python!(@one $check, py3_11, "3.11");
            $crate::test_each_python!(@one $check, py3_12, "3.12");
            $crate::test_each_python!(@one $check, py3_13, "3.13");
            $crate::test_each_python!(@one $check, py3_11_debian_static, "3.11-debian-static");
            $crate::test_each_python!(@one $check, py3_9_debian_static, "3.9-debian-static");
            $crate::test_each_python!(@one $check, py3_13_sid, "3.13-sid");
            $crate::test_each_python!(@one $check, py3_14, "3.14");
            $crate::test_each_python!(@one $check, py3_15, "3.15");
            $crate::test_each_python!(@one $check, py3_14d, "3.14d");
            $crate::test_each_python!(@one $check, py3_15d, "3.15d");
            $crate::test_each_python!(@one $check, py3_13t, "3.13t");
            $crate::test_each_python!(@one $check, py3_14t, "3.14t");

            #[test]
            fn extra_pythons() {
                $crate::common::run_on_extra($check)
            }
        }
    };
    (@one $check:path, $test:ident, $name:literal) => {
        #[test]
        fn $test() {
            $crate::common::run_on($name, concat!(module_path!(), "::", stringify!($test)), $check)
        }
    };
}
