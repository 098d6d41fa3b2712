//! Finding the CPython runtime in a process: which file holds it, which version and
//! build it is, and where its interpreter list starts.

use std::path::Path;

use super::version::{Flavour, PythonVersion};
use crate::target::binary::{Binary, BinaryError};
use crate::target::maps::{read_maps, FileRoot, Mapping};
use crate::target::memory::{Memory, ReadError};

/// Every symbol pyscry looks up in the file holding the runtime. Only these are
/// indexed (see [`Binary::open`]); a lookup of any other name finds nothing.
pub const PYTHON_SYMBOLS: &[&str] = &[
    "_PyRuntime",
    "interp_head",
    "_PyThreadState_Current",
    "Py_Version",
    "_Py_NegativeRefcount",
    "PyCode_Type",
    "PyUnicode_Type",
    "PyBytes_Type",
    "PyString_Type",
    "PyDict_Type",
    "PyModule_Type",
    "PyLong_Type",
    "PyInt_Type",
    "PyFloat_Type",
    "PyTuple_Type",
    "PyList_Type",
    "PyCell_Type",
    "PyCoro_Type",
    "PyGen_Type",
    "_Py_NoneStruct",
    "_Py_TrueStruct",
    "_Py_FalseStruct",
    "_Py_ZeroStruct",
    // 2.7 and 3.6: gcmodule.c's static flag, set while the garbage collector runs.
    "collecting",
    // 3.6: ceval_gil.h's static locks, which threads waiting for the GIL sleep on; 2.7:
    // ceval.c's pointer to the semaphore that is its GIL.
    "interpreter_lock",
    "gil_cond",
    "gil_mutex",
    "switch_cond",
    "switch_mutex",
    // 3.12: codeobject.c's count of code objects made (see `code_headers`).
    "_Py_next_func_version",
];

/// Symbols that mark the file holding the runtime, in order of preference.
const RUNTIME_SYMBOLS: [&str; 3] = ["_PyRuntime", "interp_head", "_PyThreadState_Current"];

/// The interpreter found in a process.
#[derive(Debug, Clone)]
pub struct Discovery {
    /// The executable or library that holds the runtime.
    pub binary: Binary,
    /// Its version.
    pub version: PythonVersion,
    /// Its build flavour.
    pub flavour: Flavour,
}

/// Why no usable interpreter was found.
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    /// No mapped file defines the runtime symbols.
    #[error("no CPython runtime in the process")]
    NotPython,
    /// The runtime is there but not initialised far enough to read (a process that is
    /// just starting); trying again later may succeed. Says what is still missing.
    #[error("the interpreter is not initialised yet: {0}")]
    NotReady(String),
    /// Memory could not be read.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// The maps file could not be read.
    #[error("cannot read the process's memory map: {0}")]
    Maps(std::io::Error),
    /// A mapped file could not be parsed.
    #[error(transparent)]
    Binary(#[from] BinaryError),
}

/// Find the runtime in process `pid`.
pub fn discover(pid: u32, mem: &impl Memory) -> Result<Discovery, DiscoveryError> {
    let maps = target_paths(pid, read_maps(pid).map_err(DiscoveryError::Maps)?);
    discover_in(FileRoot::Process(pid), &maps, mem)
}

/// Find the runtime in the memory `mem` of a process that maps files as `maps` says,
/// opening them from `root`.
pub fn discover_in(
    root: FileRoot,
    maps: &[Mapping],
    mem: &impl Memory,
) -> Result<Discovery, DiscoveryError> {
    let binary = runtime_binary(root, maps)?;
    let version = detect_version(mem, &binary)?;
    let flavour = detect_flavour(mem, &binary, version)?;
    Ok(Discovery {
        binary,
        version,
        flavour,
    })
}

/// The mapped files' paths as the target sees them.
///
/// The kernel prints a path in `maps` relative to the reader's root. For a target in a
/// container (its own mount namespace, after `pivot_root`) that is the path inside the
/// container, which opens through `/proc/PID/root`. For a chrooted target (in our mount
/// namespace or a private one) it is prefixed by the target's root directory, as
/// `/proc/PID/root` reads, and opens through `/proc/PID/root` only without that prefix.
/// A path is rewritten only when it does not open as it is and does without the prefix.
fn target_paths(pid: u32, mut maps: Vec<Mapping>) -> Vec<Mapping> {
    let Ok(root) = std::fs::read_link(format!("/proc/{pid}/root")) else {
        return maps;
    };
    let Some(root) = root.to_str().map(|r| r.trim_end_matches('/')) else {
        return maps;
    };
    if root.is_empty() {
        return maps;
    }
    let mut verdicts: std::collections::HashMap<String, bool> = Default::default();
    for mapping in &mut maps {
        let Some(path) = mapping.file_path() else {
            continue;
        };
        let rewrite = *verdicts.entry(path.to_string()).or_insert_with(|| {
            path.strip_prefix(root).is_some_and(|inside| {
                inside.starts_with('/')
                    && !FileRoot::Process(pid).path(path).exists()
                    && FileRoot::Process(pid).path(inside).exists()
            })
        });
        if rewrite {
            mapping.path = mapping.path.as_deref().map(|p| p[root.len()..].to_string());
        }
    }
    maps
}

/// The first of {main executable, `*python*` libraries} that defines the runtime.
///
/// The executable comes first: when a statically linked interpreter also loads a
/// libpython, the executable's definitions are the ones in use.
fn runtime_binary(root: FileRoot, maps: &[Mapping]) -> Result<Binary, DiscoveryError> {
    let mut candidates: Vec<&str> = Vec::new();
    let files = maps
        .iter()
        .filter(|m| m.offset == 0)
        .filter_map(Mapping::file_path);
    for (index, path) in files.enumerate() {
        let name = Path::new(path)
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("");
        let plausible = index == 0 || name.starts_with("libpython") || name.starts_with("python");
        if plausible && !candidates.contains(&path) {
            candidates.push(path);
        }
    }
    for path in candidates {
        let binary = match Binary::open(root, path, maps, PYTHON_SYMBOLS) {
            Ok(binary) => binary,
            Err(BinaryError::NotElf { .. }) => continue,
            Err(e) => return Err(e.into()),
        };
        if RUNTIME_SYMBOLS.iter().any(|s| binary.symbol(s).is_some()) {
            return Ok(binary);
        }
    }
    Err(DiscoveryError::NotPython)
}

/// The version, from `Py_Version` (3.11+) or from the `sys.version` text the interpreter
/// formats into its static data at start-up (all versions).
fn detect_version(mem: &impl Memory, binary: &Binary) -> Result<PythonVersion, DiscoveryError> {
    if let Some(symbol) = binary.symbol("Py_Version") {
        let hex = mem.read_u32(symbol.address)?;
        return PythonVersion::from_hex(u64::from(hex)).ok_or(DiscoveryError::NotPython);
    }
    let hint = version_from_file_name(&binary.path);
    // `Py_GetVersion` formats into a zero-initialised static buffer: `.bss` first.
    for section in [".bss", ".data"] {
        let Some(region) = binary.section(section) else {
            continue;
        };
        if let Some(version) = scan_for_version(mem, region.address, region.size, hint) {
            return Ok(version);
        }
    }
    Err(DiscoveryError::NotReady(format!(
        "no sys.version text in the static data of {}",
        binary.path
    )))
}

/// `(major, minor)` from names such as `libpython3.7m.so.1.0` or `python2.7`.
pub fn version_from_file_name(path: &str) -> Option<(u8, u8)> {
    let name = Path::new(path).file_name()?.to_str()?;
    let rest = &name[name.find("python")? + "python".len()..];
    let (major, rest) = rest.split_once('.')?;
    let digits = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    Some((major.parse().ok()?, rest[..digits].parse().ok()?))
}

/// Look for `X.Y.Z… (` in `size` bytes of target memory at `address`.
fn scan_for_version(
    mem: &impl Memory,
    address: u64,
    size: u64,
    hint: Option<(u8, u8)>,
) -> Option<PythonVersion> {
    const CHUNK: u64 = 64 * 1024;
    // A text that does not end within one chunk starts again in the next, with the NUL
    // before it.
    const OVERLAP: u64 = MAX_VERSION_TEXT as u64 + 1;
    let mut offset = 0;
    while offset < size {
        let len = CHUNK.min(size - offset);
        if let Ok(buf) = mem.read_vec(address + offset, len as usize) {
            if let Some(version) = find_version_text(&buf, hint) {
                return Some(version);
            }
        }
        offset += CHUNK - OVERLAP;
    }
    None
}

/// Longest `sys.version` text, its NUL included: `Py_GetVersion` formats into a static
/// buffer of 250 bytes.
const MAX_VERSION_TEXT: usize = 250;

/// Find a NUL-preceded `sys.version` text in `buf`: the release (`3.9.18`, `3.8.18+`),
/// then either the build in parentheses (`(main, Jan 1 2024, …) [GCC 12.2.0]`), or
/// first a distributor's note between bars, as Anaconda's and conda-forge's builds
/// have it (`|Anaconda, Inc.| (default, …)`, `| packaged by conda-forge | (main, …)`).
fn find_version_text(buf: &[u8], hint: Option<(u8, u8)>) -> Option<PythonVersion> {
    (1..buf.len().saturating_sub(8)).find_map(|i| {
        if buf[i - 1] != 0 || !matches!(buf[i], b'2' | b'3') || buf[i + 1] != b'.' {
            return None;
        }
        let end = buf[i..]
            .iter()
            .take(MAX_VERSION_TEXT)
            .position(|&b| b == 0)?;
        let text = std::str::from_utf8(&buf[i..i + end]).ok()?;
        let (release, rest) = text.split_once(' ')?;
        let build = match rest.strip_prefix('|') {
            Some(noted) => noted.split_once("| ")?.1,
            None => rest,
        };
        if release.len() > 16 || !build.starts_with('(') {
            return None;
        }
        let version = PythonVersion::parse(release)?;
        hint.is_none_or(|h| h == version.minor_version())
            .then_some(version)
    })
}

/// The build flavour: free-threaded from the 3.13+ debug offsets, debug from a symbol
/// only `Py_REF_DEBUG` builds define.
fn detect_flavour(
    mem: &impl Memory,
    binary: &Binary,
    version: PythonVersion,
) -> Result<Flavour, DiscoveryError> {
    if version.minor_version() >= (3, 13) {
        if let Some(runtime) = binary.symbol("_PyRuntime") {
            let header = mem.read_vec(runtime.address, 24)?;
            if &header[..8] == b"xdebugpy" && header[16..24] != [0; 8] {
                return Ok(Flavour::FreeThreaded);
            }
        }
    }
    if binary.symbol("_Py_NegativeRefcount").is_some() {
        return Ok(Flavour::Debug);
    }
    Ok(Flavour::Default)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::memory::ProcessMemory;

    #[test]
    fn reads_versions_from_file_names() {
        assert_eq!(
            version_from_file_name("/x/libpython3.7m.so.1.0"),
            Some((3, 7))
        );
        assert_eq!(version_from_file_name("/usr/bin/python3.11"), Some((3, 11)));
        assert_eq!(
            version_from_file_name("/x/libpython3.13t.so"),
            Some((3, 13))
        );
        assert_eq!(version_from_file_name("/usr/bin/python3"), None);
        assert_eq!(version_from_file_name("/usr/bin/sleep"), None);
    }

    #[test]
    fn finds_version_text_in_static_data() {
        let mut buf = vec![0u8; 100];
        buf.extend_from_slice(b"3.9.18 (main, Jan 1 2024) [GCC 12.2.0]\0more");
        assert_eq!(
            find_version_text(&buf, Some((3, 9))).unwrap().to_string(),
            "3.9.18"
        );
        assert_eq!(find_version_text(&buf, Some((3, 8))), None);
        assert_eq!(find_version_text(b"\x003.9.18\0", None), None);
    }

    #[test]
    fn finds_the_version_texts_of_distributors_builds() {
        let found = |text: &[u8]| {
            let mut buf = vec![0u8; 8];
            buf.extend_from_slice(text);
            buf.extend_from_slice(&[0; 8]);
            find_version_text(&buf, None).map(|v| v.to_string())
        };
        let long_compiler = format!(
            "3.10.13 (main, Jan 1 2024, 10:00:00) [{}]\0",
            "x".repeat(120)
        );
        for (text, version) in [
            (&b"2.7.15 |Anaconda, Inc.| (default, May  1 2018, 23:32:55) \n[GCC 7.2.0]\0"[..], "2.7.15"),
            (b"3.9.18 | packaged by conda-forge | (main, Aug 30 2023, 03:49:32) \n[GCC 12.3.0]\0", "3.9.18"),
            (b"3.8.18+ (heads/3.8:0123abc, Jan 1 2024, 10:00:00) [GCC 12.2.0]\0", "3.8.18"),
            (long_compiler.as_bytes(), "3.10.13"),
        ] {
            assert_eq!(found(text).as_deref(), Some(version), "{}", String::from_utf8_lossy(text));
        }
        for text in [
            &b"3.9.18 |no closing bar (main)\0"[..],
            b"3.9.18 | note | main\0",
            b"3.9.18 is not a banner (x)\0",
            b"3.9.18\0",
        ] {
            assert_eq!(found(text), None, "{}", String::from_utf8_lossy(text));
        }
    }

    #[test]
    fn finds_version_text_across_the_scan_chunks() {
        const CHUNK: usize = 64 * 1024;
        let text =
            b"3.8.18 | packaged by conda-forge | (main, Nov 23 2026, 10:00:00) \n[GCC 12.2.0]\0";
        // Each start puts the text, or the NUL before it, across the first chunk's end.
        for start in [CHUNK - 200, CHUNK - 90, CHUNK - 60, CHUNK - 1, CHUNK] {
            let mut data = vec![0u8; 2 * CHUNK];
            data[start..start + text.len()].copy_from_slice(text);
            let own = ProcessMemory::new(std::process::id());
            let found = scan_for_version(&own, data.as_ptr() as u64, data.len() as u64, None);
            assert_eq!(
                found.map(|v| v.to_string()).as_deref(),
                Some("3.8.18"),
                "text at {start}"
            );
        }
    }
}
