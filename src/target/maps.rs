//! The memory map of a process, from `/proc/PID/maps`.

use std::path::{Path, PathBuf};

/// One line of `/proc/PID/maps`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    /// First address of the mapping.
    pub start: u64,
    /// One past the last address.
    pub end: u64,
    /// Permission string, e.g. `r-xp`.
    pub perms: String,
    /// Offset into the mapped file.
    pub offset: u64,
    /// Path of the mapped file as the target sees it (inside its mount namespace), or a
    /// pseudo name such as `[heap]`; `None` for anonymous mappings.
    pub path: Option<String>,
}

/// What the kernel appends to the path of a mapped file that was deleted, or replaced
/// by another file under its name, after it was mapped.
const DELETED: &str = " (deleted)";

impl Mapping {
    /// The mapped file's path with a trailing ` (deleted)` marker removed.
    pub fn file_path(&self) -> Option<&str> {
        let path = self.path.as_deref().filter(|p| p.starts_with('/'))?;
        Some(path.strip_suffix(DELETED).unwrap_or(path))
    }

    /// Whether the file was deleted or replaced since it was mapped.
    pub fn is_deleted(&self) -> bool {
        self.path.as_deref().is_some_and(|p| p.ends_with(DELETED))
    }

    /// Where the mapped file can be opened from here (see [`FileRoot`]); for a live
    /// process whose file was deleted or replaced since it was mapped (a package
    /// upgrade under a running service), `/proc/PID/map_files/`, which still opens the
    /// file that is mapped.
    pub fn host_file(&self, root: FileRoot) -> Option<PathBuf> {
        let path = self.file_path()?;
        Some(match root {
            FileRoot::Process(pid) if self.is_deleted() => PathBuf::from(format!(
                "/proc/{pid}/map_files/{:x}-{:x}",
                self.start, self.end
            )),
            root => root.path(path),
        })
    }
}

/// Where the files a target maps are opened from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileRoot {
    /// A live process's root, `/proc/PID/root`: paths in its maps are relative to it,
    /// which differs from ours when the process runs in a container or chroot, and
    /// the kernel resolves them there as the process does.
    Process(u32),
    /// This machine's root: the files of a core dump, named as the process named them
    /// (the dump is read where it was made, or where the same files are installed).
    Host,
}

impl FileRoot {
    /// The path here of the file the target knows as `target_path`.
    pub fn path(self, target_path: &str) -> PathBuf {
        match self {
            FileRoot::Process(pid) => host_path(pid, target_path),
            FileRoot::Host => PathBuf::from(target_path),
        }
    }
}

/// Parse the text of a maps file. Lines that do not parse are skipped.
pub fn parse_maps(text: &str) -> Vec<Mapping> {
    text.lines().filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<Mapping> {
    let mut fields = line.splitn(6, ' ');
    let range = fields.next()?;
    let perms = fields.next()?.to_string();
    let offset = u64::from_str_radix(fields.next()?, 16).ok()?;
    let _device = fields.next()?;
    let _inode = fields.next()?;
    let path = fields
        .next()
        .map(str::trim_start)
        .filter(|p| !p.is_empty())
        .map(str::to_string);
    let (start, end) = range.split_once('-')?;
    Some(Mapping {
        start: u64::from_str_radix(start, 16).ok()?,
        end: u64::from_str_radix(end, 16).ok()?,
        perms,
        offset,
        path,
    })
}

/// Read and parse `/proc/PID/maps`.
pub fn read_maps(pid: u32) -> std::io::Result<Vec<Mapping>> {
    Ok(parse_maps(&std::fs::read_to_string(format!(
        "/proc/{pid}/maps"
    ))?))
}

/// The host path through which a file mapped by `pid` can be opened.
///
/// Paths in maps are relative to the target's root, which differs from ours when the
/// target runs in a container or chroot; `/proc/PID/root` resolves them the way the
/// target does.
fn host_path(pid: u32, target_path: &str) -> PathBuf {
    Path::new(&format!("/proc/{pid}/root")).join(target_path.trim_start_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_file_and_anonymous_lines() {
        let text = "\
55d0c0a00000-55d0c0a01000 r--p 00000000 fe:01 123 /usr/bin/python3.11
7f10c5a00000-7f10c5b00000 r-xp 00100000 fe:01 456 /lib/libpython3.11.so.1.0 (deleted)
7ffd1c000000-7ffd1c021000 rw-p 00000000 00:00 0                          [stack]
7f0000000000-7f0000001000 rw-p 00000000 00:00 0
garbage line
";
        let maps = parse_maps(text);
        assert_eq!(maps.len(), 4);
        assert_eq!(maps[0].start, 0x55d0c0a00000);
        assert_eq!(maps[0].file_path(), Some("/usr/bin/python3.11"));
        assert_eq!(maps[1].offset, 0x100000);
        assert_eq!(maps[1].file_path(), Some("/lib/libpython3.11.so.1.0"));
        assert_eq!(maps[2].file_path(), None);
        assert_eq!(maps[3].path, None);
    }

    #[test]
    fn a_deleted_file_is_opened_from_map_files() {
        let maps = parse_maps(
            "\
55d0c0a00000-55d0c0a01000 r--p 00000000 fe:01 123 /usr/bin/python3.11
7f10c5a00000-7f10c5b00000 r--p 00000000 fe:01 456 /lib/libpython3.11.so.1.0 (deleted)
",
        );
        let files: Vec<_> = maps
            .iter()
            .map(|m| m.host_file(FileRoot::Process(42)).unwrap())
            .collect();
        assert_eq!(
            files,
            [
                PathBuf::from("/proc/42/root/usr/bin/python3.11"),
                PathBuf::from("/proc/42/map_files/7f10c5a00000-7f10c5b00000"),
            ]
        );
    }

    #[test]
    fn host_path_goes_through_proc_root() {
        assert_eq!(
            host_path(42, "/usr/bin/python3"),
            PathBuf::from("/proc/42/root/usr/bin/python3")
        );
    }
}
