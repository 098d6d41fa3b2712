//! CPython as people run it: inside a container whose paths the host does not have,
//! embedded in a program that is not `python`, with a distributor's version banner,
//! with its files replaced under it, and stripped of its symbol table.
//!
//! Each case needs something of the machine (root, `unshare`, `gcc`, `strip`) and is
//! reported skipped, with the reason, without it. Nothing outlives a test: targets are
//! killed and reaped by guards, and every mount is made inside a private mount
//! namespace, which ends with its last process.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::Duration;

use common::{collapsed_shares, marked_line, pyscry, run_pyscry, skip, Python, TempDir};
use serde_json::Value;

/// A helper file of these tests, in `tests/environments/`.
fn helper(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/environments")
        .join(name)
}

/// The `tests/` directory.
fn tests_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests")
}

/// The installation directory of a pyenv-style interpreter (`…/versions/3.12.1`).
fn python_home(python: &Python) -> PathBuf {
    let exe = python.path.canonicalize().expect("interpreter path");
    exe.parent().unwrap().parent().unwrap().to_path_buf()
}

/// [`common::run_on`], one test at a time: the tests measure time shares.
fn run_on(name: &str, test: &str, check: fn(&Python)) {
    let _serial = common::serial();
    common::run_on(name, test, check);
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Whether `program` runs at all.
fn have(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A target process, killed and reaped when the test ends, however it ends.
struct Running {
    child: Child,
    stdout: BufReader<ChildStdout>,
    /// The Python process: the child, or the child's child when it forks one (`unshare
    /// --fork`).
    pid: u32,
}

impl Running {
    fn start(command: &mut Command) -> Running {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("starting the target");
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let pid = child.id();
        Running { child, stdout, pid }
    }

    /// Read stdout until the line `ready`.
    fn wait_ready(&mut self) {
        let mut line = String::new();
        loop {
            line.clear();
            let n = self.stdout.read_line(&mut line).unwrap();
            assert!(n > 0, "the target ended before it was ready");
            if line.trim_end() == "ready" {
                return;
            }
        }
    }

    /// The OS thread ids of the Python process, as the host sees them.
    fn tids(&self) -> Vec<u64> {
        std::fs::read_dir(format!("/proc/{}/task", self.pid))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_str().unwrap().parse().unwrap())
            .collect()
    }

    /// Wait until the process has become `python…` (it may still be a wrapper) and the
    /// dynamic loader has mapped its `libpython…`: right after the exec, the runtime a
    /// shared build keeps in that library is not there yet, and pyscry rightly calls the
    /// process "not a Python process".
    fn wait_exec_python_library(&self) {
        let pid = self.pid;
        let loaded = || {
            let is_python = std::fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|exe| {
                exe.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with("python")
            });
            is_python
                && std::fs::read_to_string(format!("/proc/{pid}/maps"))
                    .is_ok_and(|maps| maps.contains("/libpython"))
        };
        assert!(
            common::wait_until(Duration::from_secs(10), loaded),
            "process {pid} did not exec python and map its libpython"
        );
    }

    /// The path of the mapped file whose name starts with `prefix`.
    fn mapped(&self, prefix: &str) -> String {
        let maps = std::fs::read_to_string(format!("/proc/{}/maps", self.pid)).unwrap();
        maps.lines()
            .filter_map(|l| l.split_whitespace().nth(5))
            .find(|path| {
                Path::new(path)
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with(prefix))
            })
            .unwrap_or_else(|| panic!("no {prefix}* mapped in process {}", self.pid))
            .to_string()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every function name in a dump.
fn functions(dump: &Value) -> Vec<&str> {
    dump["threads"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|t| t["frames"].as_array().unwrap())
        .map(|f| f["name"].as_str().unwrap())
        .collect()
}

/// `pyscry dump --json` of `pid`, retried until every function in `expect` shows (a
/// thread may still be on its way to its spot).
fn dump_until(label: &str, pid: u32, expect: &[&str]) -> Value {
    let mut dump = Value::Null;
    for _ in 0..100 {
        let out = run_pyscry(&["dump", "--pid", &pid.to_string(), "--json"]);
        assert!(
            out.status.success(),
            "{label}: dump failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        dump = serde_json::from_slice(&out.stdout).expect("dump --json is JSON");
        let found = functions(&dump);
        if expect.iter().all(|e| found.contains(e)) {
            return dump;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{label}: the dump never showed all of {expect:?}: {dump:#}");
}

/// Check a dump of `all_sleep.py`, which the target sees at `file`: three threads in
/// their functions on their marked lines, named as `threading` names them, none holding
/// the GIL. `tids`: the target's OS thread ids, which the dump must show (main thread
/// first), or `None` not to check them.
fn check_all_sleep(label: &str, dump: &Value, file: &str, qualified: bool, tids: Option<&[u64]>) {
    let source = helper("all_sleep.py");
    let line = |name: &str| marked_line(&source, name);
    let threads = dump["threads"].as_array().unwrap();
    assert_eq!(threads.len(), 3, "{label}: {dump:#}");
    let ours = |thread: &Value| -> Vec<(String, u32)> {
        thread["frames"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["filename"] == file)
            .map(|f| {
                let name = f["name"].as_str().unwrap().to_string();
                (name, f["line"].as_u64().unwrap() as u32)
            })
            .collect()
    };
    let doze = if qualified { "Dozer.doze" } else { "doze" };
    let expected: [(&str, Vec<(String, u32)>); 3] = [
        (
            "MainThread",
            vec![
                ("main_sleep".into(), line("main_sleep")),
                ("<module>".into(), line("module")),
            ],
        ),
        (
            "napper",
            vec![
                ("nap_inner".into(), line("nap_inner")),
                ("nap".into(), line("nap")),
            ],
        ),
        ("dozer", vec![(doze.into(), line("doze"))]),
    ];
    for (name, frames) in expected {
        let thread = threads
            .iter()
            .find(|t| t["name"] == name)
            .unwrap_or_else(|| panic!("{label}: no thread {name}: {dump:#}"));
        assert_eq!(ours(thread), frames, "{label}: thread {name}: {dump:#}");
        assert_eq!(
            thread["holds_gil"], false,
            "{label}: {name} holds the GIL while sleeping"
        );
    }
    if let Some(live) = tids {
        let shown: Vec<u64> = threads
            .iter()
            .map(|t| t["native_id"].as_u64().expect("native_id"))
            .collect();
        for tid in &shown {
            assert!(live.contains(tid), "{label}: tid {tid} not in {live:?}");
        }
        let mut unique = shown.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), 3, "{label}: {shown:?}");
        let main = threads.iter().find(|t| t["name"] == "MainThread").unwrap();
        assert_eq!(main["native_id"].as_u64(), live.iter().min().copied());
        for thread in threads {
            assert_eq!(thread["status"], "idle", "{label}: {thread:#}");
        }
    }
}

/// The 1:2:3 workload's shares must be within 3 points of 16.7 / 33.3 / 50.
fn check_one_two_three(label: &str, collapsed: &str, min_samples: u64) {
    let (counts, total) = collapsed_shares(collapsed, &["one", "two", "three"]);
    assert!(total >= min_samples, "{label}: only {total} samples");
    let in_workload: u64 = counts.iter().sum();
    for (count, expected) in counts.iter().zip([100.0 / 6.0, 100.0 / 3.0, 50.0]) {
        let share = 100.0 * *count as f64 / in_workload as f64;
        assert!(
            (share - expected).abs() <= 3.0,
            "{label}: share {share:.1}% vs {expected:.1}% (counts {counts:?}, total {total})"
        );
    }
}

/// Run `pyscry record` with `args` (then `-f collapsed -o FILE`, then `tail`, e.g. the
/// command to launch), with `env` added to its environment; the folded stacks.
fn record(label: &str, args: &[&str], tail: &[&Path], env: &[(&str, &Path)]) -> String {
    let dir = TempDir::new(&format!("env-record-{}", label.replace([' ', '/'], "_")));
    let out_path = dir.path("out.txt");
    let mut command = pyscry();
    command
        .arg("record")
        .args(args)
        .args(["--format", "collapsed", "-o"])
        .arg(&out_path);
    if !tail.is_empty() {
        command.arg("--").args(tail);
    }
    for (key, value) in env {
        command.env(key, value);
    }
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "{label}: record failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Shown only if the test fails: what pyscry said (ticks, samples, errors) explains
    // a recording that came back empty.
    eprintln!("{label}: {}", String::from_utf8_lossy(&out.stderr));
    std::fs::read_to_string(&out_path).unwrap()
}

/// Attach to the running 1:2:3 workload (`ratio.py 0.05 …`) for exactly twelve of its
/// 0.3 s rounds, so that wherever the recording starts, each function's time is whole.
fn record_attached_ratio(label: &str, pid: u32) -> String {
    let pid = pid.to_string();
    record(
        label,
        &["--pid", &pid, "--duration", "3.6", "--rate", "200"],
        &[],
        &[],
    )
}

/// Copy the interpreter's libpython to `lib/` in a scratch directory; that directory,
/// to put in `LD_LIBRARY_PATH` (pyenv's builds find their library by `RUNPATH`, which
/// it overrides), and the copy.
fn libpython_copy(python: &Python, dir: &TempDir) -> (PathBuf, PathBuf) {
    let lib_dir = python_home(python).join("lib");
    let original = std::fs::read_dir(&lib_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.starts_with("libpython") && name.ends_with(".so.1.0")
        })
        .unwrap_or_else(|| panic!("no libpython*.so.1.0 in {}", lib_dir.display()));
    let copy_dir = dir.path("lib");
    std::fs::create_dir_all(&copy_dir).unwrap();
    let copy = copy_dir.join(original.file_name().unwrap());
    std::fs::copy(&original, &copy).unwrap();
    (copy_dir, copy)
}

/// `all_sleep.py` run by `exe`, with `lib_dir` as `LD_LIBRARY_PATH` if given, once its
/// threads are asleep.
fn start_all_sleep(exe: &Path, lib_dir: Option<&Path>) -> Running {
    let mut command = Command::new(exe);
    command.arg(helper("all_sleep.py"));
    if let Some(dir) = lib_dir {
        command.env("LD_LIBRARY_PATH", dir);
    }
    let mut target = Running::start(&mut command);
    target.wait_ready();
    target
}

/// Dump `target`, which runs `all_sleep.py` on `runtime` (its executable or library),
/// check every sleeping thread, and check that sampling finds them on every tick, not
/// only the first; the dump.
fn check_sleeping(python: &Python, label: &str, target: &Running, runtime: &Path) -> Value {
    let script = helper("all_sleep.py");
    let dump = dump_until(label, target.pid, &["main_sleep", "nap_inner"]);
    assert_eq!(dump["runtime_file"], runtime.to_str().unwrap(), "{label}");
    let qualified = python.version() >= (3, 11);
    let tids = target.tids();
    check_all_sleep(
        label,
        &dump,
        script.to_str().unwrap(),
        qualified,
        Some(&tids),
    );

    // Sampling finds the sleeping threads on every tick, not only the first.
    let pid = target.pid.to_string();
    let collapsed = record(
        &format!("{label} sleeping"),
        &["--pid", &pid, "--duration", "1", "--rate", "50"],
        &[],
        &[],
    );
    let doze = if qualified { "Dozer.doze" } else { "doze" };
    let (counts, total) = collapsed_shares(&collapsed, &["main_sleep", "nap_inner", doze]);
    assert!(
        total >= 100,
        "{label}: {total} samples of 3 sleeping threads"
    );
    for count in counts {
        assert!(
            count * 4 >= total,
            "{label}: a thread is missing from samples: {collapsed}"
        );
    }
    dump
}

/// Dump every sleeping thread, sample them, and record the 1:2:3 workload, with
/// `python` using `lib_dir` (when given) for its libpython; the dump.
fn sleeping_and_busy(
    python: &Python,
    label: &str,
    lib_dir: Option<&Path>,
    runtime: &Path,
) -> Value {
    let target = start_all_sleep(&python.path, lib_dir);
    let name = runtime.file_name().unwrap().to_string_lossy();
    let prefix = if name.starts_with("libpython") {
        "libpython"
    } else {
        &name
    };
    assert_eq!(
        Path::new(&target.mapped(prefix)),
        runtime,
        "{label}: the stripped file is not the one mapped"
    );
    let dump = check_sleeping(python, label, &target, runtime);
    drop(target);

    let mut env = Vec::new();
    if let Some(dir) = lib_dir {
        env.push(("LD_LIBRARY_PATH", dir));
    }
    let ratio = common::script("ratio.py");
    let collapsed = record(
        label,
        &["--rate", "200"],
        &[&python.path, &ratio, Path::new("0.05"), Path::new("12")],
        &env,
    );
    check_one_two_three(label, &collapsed, 400);
    dump
}

mod container {
    //! A Python in its own mount namespace: the paths in its `/proc/PID/maps` are its
    //! own, not the host's; pyscry opens them through `/proc/PID/root`.

    use super::*;

    /// Where the interpreter is inside the container; this must not exist on the host.
    const INNER: &str = "/opt/pyscry-containerpy";

    /// Why namespaces with `unshare_flags` cannot be made here, if they cannot.
    fn cannot_unshare(unshare_flags: &[&str]) -> Option<String> {
        if !is_root() {
            return Some("needs root (mount namespaces, bind mounts)".into());
        }
        match Command::new("unshare")
            .args(unshare_flags)
            .arg("true")
            .stderr(Stdio::null())
            .status()
        {
            Ok(status) if status.success() => None,
            Ok(_) => Some(format!(
                "`unshare {}` is not permitted",
                unshare_flags.join(" ")
            )),
            Err(e) => Some(format!("no unshare: {e}")),
        }
    }

    /// Start `script args` (paths inside the container) under the interpreter at
    /// `INNER`, in a private root made in `root` by `enter_root.sh MODE`.
    fn start_inside(
        python: &Python,
        root: &Path,
        unshare_flags: &[&str],
        mode: &str,
        script: &str,
        args: &[&str],
    ) -> Running {
        assert!(
            !Path::new(INNER).exists(),
            "{INNER} exists on this host: the test needs a path only the container has"
        );
        std::fs::create_dir_all(root).unwrap();
        Running::start(
            Command::new("unshare")
                .args(unshare_flags)
                .arg("sh")
                .arg(helper("enter_root.sh"))
                .arg(root)
                .arg(mode)
                .arg(python_home(python))
                .arg(INNER)
                .arg(tests_dir())
                .arg("env")
                .arg(format!("LD_LIBRARY_PATH={INNER}/lib"))
                .arg(format!("{INNER}/bin/python"))
                .arg(script)
                .args(args),
        )
    }

    /// Dump and record a Python that runs in a private root made with `mode`.
    fn dump_and_record(python: &Python, test: &str, mode: &str) {
        if let Some(why) = cannot_unshare(&["--mount"]) {
            return skip(test, &why);
        }
        let label = format!("{} in a container ({mode})", python.name);
        let dir = TempDir::new(&format!("container-{mode}-{}", python.name));
        let root = dir.path("root");
        let file = "/tests/environments/all_sleep.py";
        let mut target = start_inside(python, &root, &["--mount"], mode, file, &[]);
        target.wait_ready();

        // The host sees paths that are valid only inside the container.
        let lib = target.mapped("libpython");
        match mode {
            "pivot" => assert!(lib.starts_with(INNER), "{label}: maps show {lib}"),
            _ => assert!(
                lib.starts_with(root.to_str().unwrap()) && lib.contains(INNER),
                "{label}: maps show {lib}"
            ),
        }
        assert!(
            !Path::new(&lib).exists(),
            "{label}: {lib} exists on the host"
        );

        let dump = dump_until(&label, target.pid, &["main_sleep", "nap_inner"]);
        let runtime = dump["runtime_file"].as_str().unwrap();
        assert!(
            runtime.starts_with(INNER) && runtime.contains("libpython"),
            "{label}: runtime file {runtime}"
        );
        let qualified = python.version() >= (3, 11);
        check_all_sleep(&label, &dump, file, qualified, Some(&target.tids()));
        drop(target);

        let target = start_inside(
            python,
            &dir.path("root-ratio"),
            &["--mount"],
            mode,
            "/tests/scripts/ratio.py",
            &["0.05", "100000"],
        );
        target.wait_exec_python_library();
        dump_until(&label, target.pid, &["burn"]);
        let collapsed = record_attached_ratio(&label, target.pid);
        assert!(collapsed.contains("/tests/scripts/ratio.py"), "{collapsed}");
        check_one_two_three(&label, &collapsed, 500);
        check_source_kept(&label, &dir, target.pid);
    }

    /// A recording of `pid` keeps the source of the container's script, which the
    /// host has no file of: `report --lines burn` shows its text.
    fn check_source_kept(label: &str, dir: &TempDir, pid: u32) {
        let host_path = "/tests/scripts/ratio.py";
        assert!(
            !Path::new(host_path).exists(),
            "{host_path} exists on the host"
        );
        let recording = dir.path("ratio.pyscry");
        let out = pyscry()
            .args(["record", "--pid", &pid.to_string(), "--duration", "1", "-o"])
            .arg(&recording)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{label}: record failed: {stderr}");
        let out = pyscry()
            .arg("report")
            .arg(&recording)
            .args(["--lines", "burn"])
            .output()
            .unwrap();
        let table = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{label}: {table}");
        assert!(
            table.contains("while time.time() < end:") && !table.contains("source not found"),
            "{label}: {table}"
        );
    }

    /// `pivot_root` into a root that has the interpreter where the host has nothing, as
    /// container runtimes do.
    #[test]
    fn pivot_root() {
        run_on("3.12", "environments::container::pivot_root", |python| {
            dump_and_record(python, "environments::container::pivot_root", "pivot")
        });
    }

    /// `chroot` inside a private mount namespace: the kernel shows paths from the
    /// namespace's root, prefixed by the chroot directory.
    #[test]
    fn chroot_in_a_mount_namespace() {
        run_on(
            "3.12",
            "environments::container::chroot_in_a_mount_namespace",
            |python| {
                dump_and_record(
                    python,
                    "environments::container::chroot_in_a_mount_namespace",
                    "chroot",
                )
            },
        );
    }

    /// A plain `chroot` (no namespace) into a tree of hard links: the host sees valid
    /// host paths, which open through `/proc/PID/root` only without the chroot prefix.
    #[test]
    fn plain_chroot() {
        run_on("3.12", "environments::container::plain_chroot", |python| {
            let test = "environments::container::plain_chroot";
            if !is_root() {
                return skip(test, "needs root (chroot)");
            }
            let label = format!("{} in a plain chroot", python.name);
            let dir = TempDir::new(&format!("plain-chroot-{}", python.name));
            let root = dir.path("root");
            let inner = "/opt/pyscry-chrootpy";
            if let Err(why) = link_tree(python, &root, inner) {
                return skip(test, &why);
            }
            let file = "/tests/environments/all_sleep.py";
            let mut target = Running::start(
                Command::new("chroot")
                    .arg(&root)
                    .arg(format!("{inner}/bin/python"))
                    .arg(file)
                    .env("LD_LIBRARY_PATH", format!("{inner}/lib")),
            );
            target.wait_ready();
            let lib = target.mapped("libpython");
            assert!(
                lib.starts_with(root.to_str().unwrap()),
                "{label}: maps show {lib}"
            );
            let dump = dump_until(&label, target.pid, &["main_sleep", "nap_inner"]);
            let runtime = dump["runtime_file"].as_str().unwrap();
            assert!(
                runtime.starts_with(inner),
                "{label}: runtime file {runtime}"
            );
            let qualified = python.version() >= (3, 11);
            check_all_sleep(&label, &dump, file, qualified, Some(&target.tids()));
        });
    }

    /// A root for a plain chroot: the interpreter at `inner`, the C libraries it needs
    /// and the test script, all hard links (so that it is quick and small).
    fn link_tree(python: &Python, root: &Path, inner: &str) -> Result<(), String> {
        let home = python_home(python);
        let target = root.join(inner.trim_start_matches('/'));
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        let status = Command::new("cp")
            .arg("-al")
            .arg(&home)
            .arg(&target)
            .stderr(Stdio::null())
            .status()
            .map_err(|e| format!("no cp: {e}"))?;
        if !status.success() {
            return Err(format!(
                "cannot hard-link {} into {}",
                home.display(),
                root.display()
            ));
        }
        let ldd = Command::new("ldd")
            .arg(&python.path)
            .output()
            .map_err(|e| format!("no ldd: {e}"))?;
        for path in String::from_utf8_lossy(&ldd.stdout)
            .split_whitespace()
            .filter(|w| w.starts_with('/') && !Path::new(w).starts_with(&home))
        {
            let place = root.join(path.trim_start_matches('/'));
            std::fs::create_dir_all(place.parent().unwrap()).unwrap();
            let real = Path::new(path).canonicalize().unwrap();
            std::fs::hard_link(&real, &place)
                .or_else(|_| std::fs::copy(&real, &place).map(drop))
                .map_err(|e| format!("cannot put {path} into the chroot: {e}"))?;
        }
        let scripts = root.join("tests/environments");
        std::fs::create_dir_all(&scripts).unwrap();
        std::fs::copy(helper("all_sleep.py"), scripts.join("all_sleep.py")).unwrap();
        Ok(())
    }

    /// A container with its own PID namespace as well: frames and lines are right.
    #[test]
    fn pid_namespace() {
        run_on("3.12", "environments::container::pid_namespace", |python| {
            pid_namespace_dump(python, "environments::container::pid_namespace", false)
        });
    }

    /// The OS thread ids a dump shows for a target in its own PID namespace are the
    /// host's, and the kernel's view of each thread (asleep) is found under them:
    /// `native_thread_id` (3.11+) holds the namespace's id.
    #[test]
    fn pid_namespace_host_tids() {
        run_on(
            "3.12",
            "environments::container::pid_namespace_host_tids",
            |python| {
                pid_namespace_dump(
                    python,
                    "environments::container::pid_namespace_host_tids",
                    true,
                )
            },
        );
    }

    /// As [`pid_namespace_host_tids`] for a version without `native_thread_id`, whose
    /// ids come from glibc's thread control blocks, which also hold the namespace's.
    #[test]
    fn pid_namespace_host_tids_from_thread_blocks() {
        run_on(
            "3.10",
            "environments::container::pid_namespace_host_tids_from_thread_blocks",
            |python| {
                pid_namespace_dump(
                    python,
                    "environments::container::pid_namespace_host_tids_from_thread_blocks",
                    true,
                )
            },
        );
    }

    fn pid_namespace_dump(python: &Python, test: &str, check_tids: bool) {
        let flags = ["--mount", "--pid", "--fork", "--kill-child"];
        if let Some(why) = cannot_unshare(&flags) {
            return skip(test, &why);
        }
        let label = format!("{} in a PID namespace", python.name);
        let dir = TempDir::new(&format!("container-pidns-{}", python.name));
        let file = "/tests/environments/all_sleep.py";
        let mut target = start_inside(python, &dir.path("root"), &flags, "pivot", file, &[]);
        target.wait_ready();
        // `unshare --fork` runs the command as its only child, PID 1 of the namespace.
        let unshare = target.child.id();
        let children =
            std::fs::read_to_string(format!("/proc/{unshare}/task/{unshare}/children")).unwrap();
        target.pid = children.trim().parse().expect("one child of unshare");
        let status = std::fs::read_to_string(format!("/proc/{}/status", target.pid)).unwrap();
        let nspid = status.lines().find(|l| l.starts_with("NSpid:")).unwrap();
        assert!(nspid.ends_with("\t1"), "{label}: {nspid}");

        let dump = dump_until(&label, target.pid, &["main_sleep", "nap_inner"]);
        let qualified = python.version() >= (3, 11);
        let tids = target.tids();
        check_all_sleep(
            &label,
            &dump,
            file,
            qualified,
            check_tids.then_some(&tids[..]),
        );
        if check_tids {
            // Every thread sleeps: CPU mode finds them idle under their host TIDs.
            let pid = target.pid.to_string();
            let args = ["--pid", &pid, "--mode", "cpu", "--duration", "1"];
            let (_, samples) = common::collapsed_shares(&record(&label, &args, &[], &[]), &[]);
            assert!(
                samples <= 5,
                "{label}: {samples} CPU samples of sleeping threads"
            );
        }
    }
}

mod embedded {
    //! A program that embeds Python: the executable is not python, the runtime is a
    //! mapped libpython.

    use super::*;

    fn embedded(python: &Python, test: &str) {
        if !have("gcc") {
            return skip(test, "no gcc");
        }
        let (major, minor) = python.version();
        if (major, minor) < (3, 8) {
            return skip(test, "embed.c uses PyConfig, 3.8+");
        }
        let home = python_home(python);
        let config = home.join(format!("bin/python{major}.{minor}-config"));
        if !config.exists() {
            return skip(test, &format!("no {}", config.display()));
        }
        let flags = |args: &[&str]| -> Vec<String> {
            let out = Command::new(&config).args(args).output().unwrap();
            assert!(out.status.success(), "{} {args:?} failed", config.display());
            String::from_utf8(out.stdout)
                .unwrap()
                .split_whitespace()
                .map(str::to_string)
                .collect()
        };
        let label = format!("{} embedded", python.name);
        let dir = TempDir::new(&format!("embedded-{}", python.name));
        let host = dir.path("embedhost");
        let out = Command::new("gcc")
            .arg(helper("embed.c"))
            .args(flags(&["--cflags"]))
            .arg("-o")
            .arg(&host)
            .args(flags(&["--ldflags", "--embed"]))
            .arg(format!("-Wl,-rpath,{}", home.join("lib").display()))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{label}: gcc failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );

        let script = helper("all_sleep.py");
        let mut target = Running::start(Command::new(&host).arg(&script));
        target.wait_ready();
        let exe = std::fs::read_link(format!("/proc/{}/exe", target.pid)).unwrap();
        assert_eq!(exe, host, "{label}");
        let lib = target.mapped("libpython");
        let dump = dump_until(&label, target.pid, &["main_sleep", "nap_inner"]);
        assert_eq!(dump["runtime_file"], lib.as_str(), "{label}");
        assert!(
            dump["python"]
                .as_str()
                .unwrap()
                .starts_with(&format!("CPython {major}.{minor}.")),
            "{label}: {}",
            dump["python"]
        );
        let qualified = (major, minor) >= (3, 11);
        let tids = target.tids();
        check_all_sleep(
            &label,
            &dump,
            script.to_str().unwrap(),
            qualified,
            Some(&tids),
        );
        drop(target);

        let ratio = common::script("ratio.py");
        let collapsed = record(
            &label,
            &["--rate", "200"],
            &[&host, &ratio, Path::new("0.05"), Path::new("12")],
            &[],
        );
        check_one_two_three(&label, &collapsed, 400);
    }

    #[test]
    fn py3_8() {
        run_on("3.8", "environments::embedded::py3_8", |p| {
            embedded(p, "environments::embedded::py3_8")
        });
    }

    #[test]
    fn py3_12() {
        run_on("3.12", "environments::embedded::py3_12", |p| {
            embedded(p, "environments::embedded::py3_12")
        });
    }

    #[test]
    fn py3_13() {
        run_on("3.13", "environments::embedded::py3_13", |p| {
            embedded(p, "environments::embedded::py3_13")
        });
    }
}

mod distributor_banner {
    //! Before 3.11 the version is read from the `sys.version` text in the runtime's
    //! static data. Anaconda's and conda-forge's builds put a note between bars after
    //! the release (`3.9.18 | packaged by conda-forge | (main, …)`). Here a real
    //! interpreter gets such a banner: in a copy of its library, `Py_GetVersion`'s
    //! format is rewritten to put the build's name and date, a long note with commas
    //! and spaces, between bars.

    use super::*;

    /// `Py_GetVersion`'s format string in every version before 3.11.
    const FORMAT: &[u8] = b"%.80s (%.80s) %.80s\0";
    /// One of the same length that puts the build info between bars:
    /// `3.9.18 |main, Nov 20 2025, 10:00:00| ([GCC 12)`.
    const NOTED: &[u8] = b"%.7s |%.40s| (%.8s)\0";
    /// One of the same length whose text does not start with the release.
    const UNKNOWN: &[u8] = b"Python %.7s (%.3s)\0";

    /// A copy of the interpreter's library whose version format is `format`; the
    /// directory to put in `LD_LIBRARY_PATH`, the copy, and the `sys.version` it gives.
    fn with_banner(python: &Python, dir: &TempDir, format: &[u8]) -> (PathBuf, PathBuf, String) {
        let (lib_dir, copy) = libpython_copy(python, dir);
        let mut bytes = std::fs::read(&copy).unwrap();
        let at = bytes
            .windows(FORMAT.len())
            .position(|w| w == FORMAT)
            .unwrap_or_else(|| panic!("no version format in {}", copy.display()));
        bytes[at..at + format.len()].copy_from_slice(format);
        std::fs::write(&copy, bytes).unwrap();
        let out = Command::new(&python.path)
            .args(["-c", "import sys; print(sys.version)"])
            .env("LD_LIBRARY_PATH", &lib_dir)
            .output()
            .unwrap();
        let banner = String::from_utf8_lossy(&out.stdout).trim_end().to_string();
        (lib_dir, copy, banner)
    }

    fn noted_banner(python: &Python) {
        let label = format!("{} with a noted banner", python.name);
        let dir = TempDir::new(&format!("banner-{}", python.name));
        let (lib_dir, copy, banner) = with_banner(python, &dir, NOTED);
        let (release, rest) = banner.split_once(' ').unwrap_or_default();
        let note = rest
            .strip_prefix('|')
            .and_then(|r| r.split_once("| ("))
            .map(|(n, _)| n);
        assert!(
            note.is_some_and(|n| n.contains(", ")),
            "{label}: sys.version is {banner:?}"
        );
        let dump = sleeping_and_busy(python, &label, Some(&lib_dir), &copy);
        assert!(
            dump["python"]
                .as_str()
                .unwrap()
                .starts_with(&format!("CPython {release}")),
            "{label}: {dump:#}"
        );
    }

    /// A banner pyscry cannot read: after waiting for it, the error names what it
    /// looked for and where.
    #[test]
    fn unknown_banner_is_named() {
        run_on(
            "3.10",
            "environments::distributor_banner::unknown_banner_is_named",
            |python| {
                let dir = TempDir::new(&format!("banner-unknown-{}", python.name));
                let (lib_dir, copy, banner) = with_banner(python, &dir, UNKNOWN);
                assert!(banner.starts_with("Python 3."), "sys.version is {banner:?}");
                let target = start_all_sleep(&python.path, Some(&lib_dir));
                let out = run_pyscry(&["dump", "--pid", &target.pid.to_string()]);
                let stderr = String::from_utf8_lossy(&out.stderr);
                assert!(!out.status.success(), "{stderr}");
                let expected = format!(
                    "did not become readable within 10 s: no sys.version text in the static data of {}",
                    copy.display()
                );
                assert!(stderr.contains(&expected), "{stderr}");
            },
        );
    }

    #[test]
    fn py2_7() {
        run_on(
            "2.7",
            "environments::distributor_banner::py2_7",
            noted_banner,
        );
    }

    #[test]
    fn py3_8() {
        run_on(
            "3.8",
            "environments::distributor_banner::py3_8",
            noted_banner,
        );
    }

    #[test]
    fn py3_10() {
        run_on(
            "3.10",
            "environments::distributor_banner::py3_10",
            noted_banner,
        );
    }
}

mod replaced {
    //! A Python whose files were replaced after it started, as a package upgrade does
    //! under a running service: the new file has the old one's name, and the old one
    //! lives on only in the process's mappings (`… (deleted)` in its maps).

    use super::*;

    /// Start `all_sleep.py` on `exe` (with `lib_dir` as `LD_LIBRARY_PATH`, if given),
    /// then put another file in place of `file` the way package managers do (a rename
    /// over it, which leaves the mapped file intact), and read the process.
    fn sampled_after_replacing(python: &Python, exe: &Path, lib_dir: Option<&Path>, file: &Path) {
        let label = format!("{} with {} replaced", python.name, file.display());
        let target = start_all_sleep(exe, lib_dir);
        let new = file.with_extension("new");
        std::fs::write(&new, "not the file that was loaded\n").unwrap();
        std::fs::rename(&new, file).unwrap();
        let maps = std::fs::read_to_string(format!("/proc/{}/maps", target.pid)).unwrap();
        assert!(
            maps.contains(&format!("{} (deleted)", file.display())),
            "{label}: {maps}"
        );

        check_sleeping(python, &label, &target, file);
    }

    /// The shared libpython is replaced.
    #[test]
    fn library() {
        run_on("3.10", "environments::replaced::library", |python| {
            let dir = TempDir::new(&format!("replaced-lib-{}", python.name));
            let (lib_dir, copy) = libpython_copy(python, &dir);
            sampled_after_replacing(python, &python.path, Some(&lib_dir), &copy);
        });
    }

    /// The executable, which holds the runtime, is replaced.
    #[test]
    fn executable() {
        run_on(
            "3.11-debian-static",
            "environments::replaced::executable",
            |python| {
                let dir = TempDir::new(&format!("replaced-exe-{}", python.name));
                let copy = dir.path("python3.11");
                std::fs::copy(python.path.canonicalize().unwrap(), &copy).unwrap();
                sampled_after_replacing(python, &copy, None, &copy);
            },
        );
    }
}

mod stripped {
    //! Interpreters without a symbol table: 2.7 and 3.6 lose the local `interp_head`,
    //! and no thread holds the GIL while every thread sleeps, so the interpreter list
    //! must be found by the validated scan of the library's static data.

    use super::*;

    use goblin::elf::Elf;

    /// The names in the ELF file's `.symtab` (empty when it has none).
    fn local_symbols(path: &Path) -> Vec<String> {
        let bytes = std::fs::read(path).unwrap();
        let elf = Elf::parse(&bytes).unwrap();
        elf.syms
            .iter()
            .filter_map(|s| elf.strtab.get_at(s.st_name).map(str::to_string))
            .collect()
    }

    /// Copy the interpreter's libpython to a scratch directory and strip it with
    /// `strip_option`; the directory to put in `LD_LIBRARY_PATH` and the copy.
    fn stripped_copy(python: &Python, dir: &TempDir, strip_option: &str) -> (PathBuf, PathBuf) {
        let (copy_dir, copy) = libpython_copy(python, dir);
        let status = Command::new("strip")
            .arg(strip_option)
            .arg(&copy)
            .status()
            .unwrap();
        assert!(status.success(), "strip {strip_option} failed");
        (copy_dir, copy)
    }

    /// 2.7 and 3.6, `strip --strip-unneeded`: `interp_head` is gone.
    fn without_interp_head(python: &Python, test: &str) {
        if !have("strip") {
            return skip(test, "no strip");
        }
        let label = format!("{} stripped", python.name);
        let dir = TempDir::new(&format!("stripped-{}", python.name));
        let (lib_dir, copy) = stripped_copy(python, &dir, "--strip-unneeded");
        assert!(
            !local_symbols(&copy).iter().any(|s| s == "interp_head"),
            "{label}: interp_head survived strip"
        );
        sleeping_and_busy(python, &label, Some(&lib_dir), &copy);
    }

    #[test]
    fn py2_7() {
        run_on("2.7", "environments::stripped::py2_7", |p| {
            without_interp_head(p, "environments::stripped::py2_7")
        });
    }

    #[test]
    fn py3_6() {
        run_on("3.6", "environments::stripped::py3_6", |p| {
            without_interp_head(p, "environments::stripped::py3_6")
        });
    }

    /// A stripped 3.6 with a sub-interpreter: the list is followed from its head, so
    /// the sub-interpreter's thread shows as well as the main interpreter's, and every
    /// thread's OS id is found although two thread states share one `pthread` block.
    #[test]
    fn py3_6_sub_interpreter() {
        run_on(
            "3.6",
            "environments::stripped::py3_6_sub_interpreter",
            |python| {
                let test = "environments::stripped::py3_6_sub_interpreter";
                if !have("strip") {
                    return skip(test, "no strip");
                }
                let has_testcapi = Command::new(&python.path)
                    .args(["-c", "import _testcapi; _testcapi.run_in_subinterp"])
                    .stderr(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success());
                if !has_testcapi {
                    return skip(test, "no _testcapi.run_in_subinterp");
                }
                let label = format!("{} stripped, sub-interpreter", python.name);
                let dir = TempDir::new(&format!("stripped-sub-{}", python.name));
                let (lib_dir, _) = stripped_copy(python, &dir, "--strip-unneeded");
                let script = helper("subinterp.py");
                let mut target = Running::start(
                    Command::new(&python.path)
                        .arg(&script)
                        .env("LD_LIBRARY_PATH", &lib_dir),
                );
                target.wait_ready();
                let dump = dump_until(&label, target.pid, &["in_subinterpreter", "host"]);
                let main = dump["threads"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|t| t["name"] == "MainThread")
                    .unwrap_or_else(|| panic!("{label}: no main thread: {dump:#}"));
                assert_eq!(main["frames"][0]["name"], "<module>", "{label}: {dump:#}");
                assert_eq!(
                    main["frames"][0]["line"],
                    marked_line(&script, "main"),
                    "{label}"
                );
                assert_eq!(main["native_id"].as_u64(), Some(target.pid.into()));
                for thread in dump["threads"].as_array().unwrap() {
                    assert!(
                        thread["native_id"].is_u64(),
                        "{label}: no OS thread id: {dump:#}"
                    );
                }
            },
        );
    }

    /// 3.11, `strip --strip-all`: `_PyRuntime` is still in `.dynsym`.
    #[test]
    fn py3_11_strip_all() {
        run_on(
            "3.11",
            "environments::stripped::py3_11_strip_all",
            |python| {
                let test = "environments::stripped::py3_11_strip_all";
                if !have("strip") {
                    return skip(test, "no strip");
                }
                let label = format!("{} strip-all", python.name);
                let dir = TempDir::new(&format!("stripped-all-{}", python.name));
                let (lib_dir, copy) = stripped_copy(python, &dir, "--strip-all");
                assert!(local_symbols(&copy).is_empty(), "{label}: .symtab left");
                sleeping_and_busy(python, &label, Some(&lib_dir), &copy);
            },
        );
    }

    /// A Debian build: libpython linked into an executable that is stripped and not
    /// position-independent (its addresses are the file's own).
    fn debian_build(python: &Python) {
        let label = format!("{} (distribution build)", python.name);
        let exe = python.path.canonicalize().unwrap();
        assert!(local_symbols(&exe).is_empty(), "{label}: not stripped");
        let bytes = std::fs::read(&exe).unwrap();
        let header = Elf::parse_header(&bytes).unwrap();
        assert_eq!(
            header.e_type,
            goblin::elf::header::ET_EXEC,
            "{label}: position-independent"
        );
        sleeping_and_busy(python, &label, None, &exe);
    }

    /// Debian 11's python3.9, whose version is read from the `sys.version` text.
    #[test]
    fn debian_3_9() {
        run_on(
            "3.9-debian-static",
            "environments::stripped::debian_3_9",
            debian_build,
        );
    }

    /// Debian 12's python3.11, the machine's own.
    #[test]
    fn debian_3_11() {
        run_on(
            "3.11-debian-static",
            "environments::stripped::debian_3_11",
            debian_build,
        );
    }
}
