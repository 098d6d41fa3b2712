//! Processes: checking a PID, launching a command, and watching it.

use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, ExitStatus};

use crate::error::{Error, Result};

/// Check that `pid` exists and that we may read its memory map.
///
/// Memory permission proper is confirmed by the first remote read; reading
/// `/proc/PID/maps` is subject to the same ptrace access check, so it catches the
/// common case early with a clear message.
pub fn check_readable(pid: u32) -> Result<()> {
    if pid == 0 || !std::path::Path::new(&format!("/proc/{pid}")).exists() {
        return Err(Error::NoSuchProcess(pid));
    }
    match std::fs::read_to_string(format!("/proc/{pid}/maps")) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            Err(Error::PermissionDenied(pid))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(Error::NoSuchProcess(pid)),
        Err(e) => Err(anyhow::anyhow!("cannot read /proc/{pid}/maps: {e}").into()),
    }
}

/// Whether `pid` is still running (exists and is not a zombie).
pub fn is_running(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !matches!(state_letter(&stat), Some('Z') | Some('X') | None),
        Err(_) => false,
    }
}

/// The one-letter scheduler state (`R`, `S`, `T`, `Z`, …) of a `/proc/.../stat` line.
pub fn state_letter(stat: &str) -> Option<char> {
    // The command name is in parentheses and may itself contain spaces or ')'.
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

/// The identity (device, inode) of the program `pid` runs, which changes when it
/// `exec`s another; `None` when it cannot be read (the process is gone).
pub fn exe_identity(pid: u32) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(format!("/proc/{pid}/exe")).ok()?;
    Some((meta.dev(), meta.ino()))
}

/// How many file mappings `pid` has, which grows as the dynamic loader maps its
/// libraries after an `exec`; 0 when it cannot be read.
pub fn mapped_files(pid: u32) -> usize {
    std::fs::read_to_string(format!("/proc/{pid}/maps"))
        .map(|maps| maps.lines().filter(|line| line.contains(" /")).count())
        .unwrap_or(0)
}

/// The contents of the file `pid` knows as `path`, opened as the process would open
/// it: an absolute path from its root (`/proc/PID/root`, its container's files), a
/// relative one from its working directory. `None` when it cannot be read, is not a
/// regular file, is larger than `max_bytes`, or is one the process's user could not
/// read itself: the name comes from the target, and pyscry, often run as root, must
/// not copy out a file the target had no access to (`/etc/shadow`), nor block
/// opening a FIFO.
pub fn read_file_of(pid: u32, path: &str, max_bytes: u64) -> Option<Vec<u8>> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let host = match path.starts_with('/') {
        true => super::maps::FileRoot::Process(pid).path(path),
        false => std::path::Path::new(&format!("/proc/{pid}/cwd")).join(path),
    };
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(host)
        .ok()?;
    let meta = file.metadata().ok()?;
    if !meta.is_file() || meta.len() > max_bytes || !readable_by(pid, &meta) {
        return None;
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(max_bytes).read_to_end(&mut bytes).ok()?;
    Some(bytes)
}

/// Whether the effective user of `pid` may read a file with metadata `meta`, by its
/// mode: root, the owner where the owner may read, anyone where others may. (A
/// file readable through a group only is taken as not readable.)
fn readable_by(pid: u32, meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    let Some(uid) = effective_uid(pid) else {
        return false;
    };
    uid == 0 || meta.mode() & 0o004 != 0 || (meta.uid() == uid && meta.mode() & 0o400 != 0)
}

/// The effective user id of `pid` (the second field of `Uid:` in its status).
fn effective_uid(pid: u32) -> Option<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find_map(|line| line.strip_prefix("Uid:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Every descendant of `root` (children, their children, …) now, from the parent ids
/// in `/proc/*/stat`.
pub fn descendants(root: u32) -> Vec<u32> {
    let mut children: std::collections::HashMap<u32, Vec<u32>> = Default::default();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // After the command in parentheses: state, then the parent's id.
        let parent = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|ppid| ppid.parse::<u32>().ok());
        if let Some(parent) = parent {
            children.entry(parent).or_default().push(pid);
        }
    }
    let mut out = Vec::new();
    let mut pending = vec![root];
    while let Some(pid) = pending.pop() {
        for &child in children.get(&pid).into_iter().flatten() {
            out.push(child);
            pending.push(child);
        }
    }
    out
}

/// The executable of `pid` as the target sees it (for messages).
pub fn exe_path(pid: u32) -> String {
    std::fs::read_link(format!("/proc/{pid}/exe"))
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "unknown executable".to_string())
}

/// The command line of `pid`, arguments joined by spaces.
pub fn command_line(pid: u32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|raw| {
            raw.split(|&b| b == 0)
                .filter(|a| !a.is_empty())
                .map(String::from_utf8_lossy)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

/// The OS thread ids of `pid`, from `/proc/PID/task`.
pub fn thread_ids(pid: u32) -> Vec<u32> {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|dir| {
            dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Start `argv` as a child process sharing our terminal. With `stdout_to_stderr` its
/// standard output goes to our standard error, where it cannot mix with what we
/// write to standard output (a profile, `-o -`).
pub fn launch(argv: &[String], stdout_to_stderr: bool) -> Result<Child> {
    let (program, args) = argv.split_first().ok_or_else(|| Error::CannotLaunch {
        program: String::new(),
        reason: "no command given".to_string(),
    })?;
    let mut command = Command::new(program);
    command.args(args);
    if stdout_to_stderr {
        command.stdout(std::io::stderr());
    }
    command.spawn().map_err(|e| Error::CannotLaunch {
        program: program.clone(),
        reason: match e.kind() {
            std::io::ErrorKind::NotFound => "no such file or command".to_string(),
            std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
            _ => e.to_string(),
        },
    })
}

/// A launched child's end, in words: "exited with code 3", "killed by signal 9".
pub fn describe_exit(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with code {code}"),
        (None, Some(signal)) => format!("was killed by signal {signal}"),
        (None, None) => "ended".to_string(),
    }
}

/// Stop a launched child we no longer sample: SIGTERM, then SIGKILL if it lingers.
pub fn terminate(child: &mut Child) -> std::io::Result<ExitStatus> {
    if let Some(status) = child.try_wait()? {
        return Ok(status);
    }
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
    for _ in 0..200 {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    child.kill()?;
    child.wait()
}

#[cfg(test)]
mod tests {
    /// A file named by a process is copied only where that process's user may read
    /// it, and only if it is a regular file: a FIFO is refused without blocking.
    #[test]
    fn a_file_is_read_only_as_its_process_could() {
        use std::os::unix::fs::PermissionsExt;
        use std::os::unix::process::CommandExt;
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("skipped: needs root, to run a process as another user");
            return;
        }
        let dir = std::env::temp_dir().join(format!("pyscry-read-as-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let file = |name: &str, mode: u32| {
            let path = dir.join(name);
            std::fs::write(&path, "x = 1\n").unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            path.to_str().unwrap().to_string()
        };
        let (public, private) = (file("public.py", 0o644), file("private.py", 0o600));
        let fifo = dir.join("fifo.py");
        let fifo_name = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid C string; mkfifo only creates the node.
        assert_eq!(unsafe { libc::mkfifo(fifo_name.as_ptr(), 0o644) }, 0);
        let mut nobody = std::process::Command::new("sleep")
            .arg("10")
            .uid(65534)
            .gid(65534)
            .spawn()
            .unwrap();
        let pid = nobody.id();
        let read = |path: &str| super::read_file_of(pid, path, 1 << 20);
        assert_eq!(read(&public), Some(b"x = 1\n".to_vec()));
        assert_eq!(read(&private), None, "root's 0600 file, read for nobody");
        assert_eq!(read(fifo.to_str().unwrap()), None);
        // As root, the target may read its own private file.
        assert!(super::read_file_of(std::process::id(), &private, 1 << 20).is_some());
        let _ = nobody.kill();
        let _ = nobody.wait();
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn descendants_include_grandchildren() {
        let mut shell = std::process::Command::new("sh")
            .args(["-c", "sleep 5 & wait"])
            .spawn()
            .unwrap();
        let sleeper = || super::descendants(shell.id()).first().copied();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while sleeper().is_none() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let grandchild = sleeper();
        let found = super::descendants(std::process::id());
        if let Some(pid) = grandchild {
            // SAFETY: a plain signal to our own grandchild.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        }
        let _ = shell.kill();
        let _ = shell.wait();
        let grandchild = grandchild.expect("the shell's sleep was found");
        assert!(found.contains(&shell.id()), "{found:?}");
        assert!(found.contains(&grandchild), "{found:?}");
    }

    use super::*;

    #[test]
    fn state_letter_skips_the_command_name() {
        assert_eq!(state_letter("12 (a) b) c) S 1 2"), Some('S'));
        assert_eq!(state_letter("12 (python3) R 1"), Some('R'));
        assert_eq!(state_letter("garbage"), None);
    }

    #[test]
    fn own_process_is_running_and_readable() {
        let pid = std::process::id();
        assert!(is_running(pid));
        assert!(check_readable(pid).is_ok());
        assert!(thread_ids(pid).contains(&pid));
    }

    #[test]
    fn missing_process_is_reported() {
        assert!(matches!(
            check_readable(u32::MAX - 1),
            Err(Error::NoSuchProcess(_))
        ));
    }
}
