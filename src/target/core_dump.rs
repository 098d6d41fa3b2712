//! Core dumps: the memory, threads and mapped files of a process that is gone, from
//! the ELF core file the kernel (or `gcore`) wrote for it.
//!
//! A Linux core file holds the process's writable and anonymous memory (`PT_LOAD`
//! segments with their bytes), and names the files it had mapped (the `NT_FILE`
//! note); read-only file mappings (code, constants) are left out of it and are read
//! from those files instead. Each thread has an `NT_PRSTATUS` note: its id and its
//! registers when it stopped.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use goblin::elf::header::ET_CORE;
use goblin::elf::program_header::{PF_R, PF_W, PF_X, PT_LOAD};
use goblin::elf::Elf;

use super::binary::{build_id, map_readonly};
use super::maps::Mapping;
use super::memory::{Memory, ReadError};
use super::pause::Registers;

/// The page size the mappings' file offsets are counted in.
const PAGE: u64 = 4096;

/// `NT_PRSTATUS`: one thread's status and registers.
const NT_PRSTATUS: u32 = 1;
/// `NT_PRPSINFO`: the process's id and command line.
const NT_PRPSINFO: u32 = 3;
/// `NT_FILE`: the files the process had mapped.
const NT_FILE: u32 = 0x4649_4c45;

/// x86-64 `struct elf_prstatus`: where the thread id is, where the registers
/// (`struct user_regs_struct`) start, and how large it is.
const PRSTATUS_PID: usize = 32;
const PRSTATUS_REGS: usize = 112;
const PRSTATUS_SIZE: usize = 336;
/// Indexes of `rbp`, `rip` and `rsp` among the registers, 8 bytes each.
const REG_RBP: usize = 4;
const REG_RIP: usize = 16;
const REG_RSP: usize = 19;

/// x86-64 `struct elf_prpsinfo`: where the process id and the command line are.
const PRPSINFO_PID: usize = 24;
const PRPSINFO_ARGS: usize = 56;
const PRPSINFO_ARGS_LEN: usize = 80;

/// Why a file cannot be read as a core dump.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    /// The file cannot be opened or mapped.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// Not an ELF file, or not a core file.
    #[error("not a core dump: {0}")]
    NotCore(String),
    /// A core file without what reading a process needs.
    #[error("the core dump has no {0} note (written by something other than Linux or gcore?)")]
    Incomplete(&'static str),
}

/// One thread of a dumped process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CoreThread {
    /// Its id (the kernel's TID).
    pub tid: u32,
    /// Its registers when the process was dumped.
    pub registers: Registers,
}

/// A core dump, parsed: what the process was and had mapped, and its memory.
pub struct CoreDump {
    /// The dumped process's id.
    pub pid: u32,
    /// Its command line, as far as the dump keeps it (80 bytes).
    pub command: String,
    /// Its threads, the one that caused the dump first.
    pub threads: Vec<CoreThread>,
    /// The files it had mapped, as `/proc/PID/maps` would have listed them.
    pub mappings: Vec<Mapping>,
    /// Whether the file is shorter than its segments say (a dump cut short by a
    /// size limit or a full disk): the memory past its end cannot be read.
    pub truncated: bool,
    /// Its memory.
    pub memory: CoreMemory,
}

/// The memory of a dumped process: the bytes the core file holds, and those of the
/// files it had mapped for what the core file left out. Clones share it.
#[derive(Clone)]
pub struct CoreMemory(Arc<CoreImage>);

/// What [`CoreMemory`] reads from.
struct CoreImage {
    core: memmap2::Mmap,
    /// The `PT_LOAD` segments, by address.
    segments: Vec<Segment>,
    /// The mapped files, by address, each opened when first read.
    files: Vec<MappedFile>,
}

/// One `PT_LOAD` segment: where an address range of the process starts, and where
/// its dumped bytes are in the core file (`len` of them; the rest of the range was not
/// dumped).
#[derive(Debug, Clone, Copy)]
struct Segment {
    start: u64,
    offset: usize,
    len: u64,
}

/// A file mapping of the process, from `NT_FILE`.
struct MappedFile {
    start: u64,
    end: u64,
    /// The offset in the file of the mapping's first byte.
    offset: u64,
    path: PathBuf,
    /// The file, mapped here; `None` when it cannot be opened.
    bytes: OnceLock<Option<memmap2::Mmap>>,
}

impl CoreDump {
    /// Read the core dump at `path`.
    pub fn open(path: &Path) -> Result<CoreDump, CoreError> {
        let core = map_readonly(&std::fs::File::open(path)?)?;
        let elf = Elf::parse(&core).map_err(|_| CoreError::NotCore("not an ELF file".into()))?;
        if elf.header.e_type != ET_CORE || !elf.is_64 {
            return Err(CoreError::NotCore(
                "an ELF file, but not a 64-bit core file".to_string(),
            ));
        }
        let loads = || elf.program_headers.iter().filter(|h| h.p_type == PT_LOAD);
        let truncated = loads().any(|h| h.p_offset.saturating_add(h.p_filesz) > core.len() as u64);
        let mut segments: Vec<Segment> = loads()
            .map(|header| Segment {
                start: header.p_vaddr,
                offset: header.p_offset as usize,
                len: header.p_filesz.min(header.p_memsz),
            })
            .filter(|segment| segment.offset as u64 + segment.len <= core.len() as u64)
            .collect();
        segments.sort_by_key(|segment| segment.start);
        let mut threads = Vec::new();
        let mut process = None;
        let mut files = None;
        for note in elf.iter_note_headers(&core).into_iter().flatten() {
            let Ok(note) = note else { continue };
            match note.n_type {
                NT_PRSTATUS => threads.extend(thread_status(note.desc)),
                NT_PRPSINFO => process = process_info(note.desc),
                NT_FILE => files = mapped_files(note.desc),
                _ => {}
            }
        }
        let (pid, command) = process.ok_or(CoreError::Incomplete("NT_PRPSINFO"))?;
        let files = files.ok_or(CoreError::Incomplete("NT_FILE"))?;
        // The segment's permissions; gdb's gcore writes no segment for a mapping it
        // leaves out, whose permissions are then those the file's own headers give.
        let perms = |file: &MappedFile| {
            let flags = loads()
                .find(|h| h.p_vaddr == file.start)
                .map(|h| h.p_flags)
                .or_else(|| file.flags_in_file())
                .unwrap_or(0);
            let flag = |bit, c| if flags & bit != 0 { c } else { '-' };
            format!("{}{}{}p", flag(PF_R, 'r'), flag(PF_W, 'w'), flag(PF_X, 'x'))
        };
        let mappings = files
            .iter()
            .map(|file| Mapping {
                start: file.start,
                end: file.end,
                perms: perms(file),
                offset: file.offset,
                path: file.path.to_str().map(str::to_string),
            })
            .collect();
        Ok(CoreDump {
            pid,
            command,
            threads,
            mappings,
            truncated,
            memory: CoreMemory(Arc::new(CoreImage {
                core,
                segments,
                files,
            })),
        })
    }

    /// The mapped files that are not, here, the files the process had loaded: the
    /// build id in the first page of each (which the core holds) differs from that of
    /// the file of the same path here. Their code and constants, which are read from
    /// the file, would be wrong. Files without a build id in the dump are not judged.
    pub fn replaced_files(&self) -> Vec<&Path> {
        let image = &self.memory.0;
        let replaced = |file: &&MappedFile| {
            let dumped = image.dumped(file.start, PAGE as usize).and_then(build_id);
            let here = file.bytes().and_then(build_id);
            dumped.is_some_and(|dumped| here != Some(dumped))
        };
        let loaded = image.files.iter().filter(|file| file.offset == 0);
        loaded
            .filter(replaced)
            .map(|file| file.path.as_path())
            .collect()
    }
}

/// A thread from its `NT_PRSTATUS` note.
fn thread_status(desc: &[u8]) -> Option<CoreThread> {
    if desc.len() < PRSTATUS_SIZE {
        return None;
    }
    let register = |index: usize| u64_at(desc, PRSTATUS_REGS + 8 * index);
    Some(CoreThread {
        tid: u32::from_le_bytes(desc[PRSTATUS_PID..PRSTATUS_PID + 4].try_into().ok()?),
        registers: Registers {
            pc: register(REG_RIP)?,
            sp: register(REG_RSP)?,
            bp: register(REG_RBP)?,
        },
    })
}

/// The process id and command line from the `NT_PRPSINFO` note.
fn process_info(desc: &[u8]) -> Option<(u32, String)> {
    let pid = u32::from_le_bytes(desc.get(PRPSINFO_PID..PRPSINFO_PID + 4)?.try_into().ok()?);
    let args = desc.get(PRPSINFO_ARGS..PRPSINFO_ARGS + PRPSINFO_ARGS_LEN)?;
    let args = &args[..args.iter().position(|&b| b == 0).unwrap_or(args.len())];
    Some((pid, String::from_utf8_lossy(args).trim_end().to_string()))
}

/// The mapped files from the `NT_FILE` note: a count and a page size, then for each
/// file its start, end and offset in pages, then their paths, each ending with NUL.
fn mapped_files(desc: &[u8]) -> Option<Vec<MappedFile>> {
    let count = usize::try_from(u64_at(desc, 0)?).ok()?;
    let page = u64_at(desc, 8)?;
    let paths_at = 16usize.checked_add(count.checked_mul(24)?)?;
    let mut paths = desc.get(paths_at..)?.split(|&b| b == 0);
    (0..count)
        .map(|index| {
            let entry = 16 + 24 * index;
            let path = paths.next()?;
            Some(MappedFile {
                start: u64_at(desc, entry)?,
                end: u64_at(desc, entry + 8)?,
                offset: u64_at(desc, entry + 16)?.checked_mul(page)?,
                path: PathBuf::from(std::str::from_utf8(path).ok()?),
                bytes: OnceLock::new(),
            })
        })
        .collect()
}

impl MappedFile {
    /// The file's bytes, mapped when first asked for; `None` if it cannot be opened.
    fn bytes(&self) -> Option<&[u8]> {
        let mapped = self.bytes.get_or_init(|| {
            let opened = std::fs::File::open(&self.path).ok()?;
            map_readonly(&opened).ok()
        });
        mapped.as_deref()
    }

    /// The `p_flags` of the file's own `PT_LOAD` header for the part mapped here.
    fn flags_in_file(&self) -> Option<u32> {
        let elf = Elf::parse(self.bytes()?).ok()?;
        let page = |offset: u64| offset & !(PAGE - 1);
        let header = elf
            .program_headers
            .iter()
            .find(|h| h.p_type == PT_LOAD && page(h.p_offset) == self.offset)?;
        Some(header.p_flags)
    }
}

fn u64_at(bytes: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(
        bytes.get(at..at.checked_add(8)?)?.try_into().ok()?,
    ))
}

impl CoreImage {
    /// The `len` bytes at `addr` if the core file holds them all, in one segment.
    fn dumped(&self, addr: u64, len: usize) -> Option<&[u8]> {
        let index = self.segments.partition_point(|s| s.start <= addr);
        let segment = self.segments[index.checked_sub(1)?];
        let within = addr - segment.start;
        (within + len as u64 <= segment.len).then(|| {
            let from = segment.offset + within as usize;
            &self.core[from..from + len]
        })
    }

    /// Copy as many bytes at `addr` into `buf` as one segment (or the file mapped
    /// there) has, at least one; how many.
    fn read_some(&self, addr: u64, buf: &mut [u8]) -> Result<usize, ReadError> {
        let index = self.segments.partition_point(|s| s.start <= addr);
        let segment = index.checked_sub(1).map(|i| self.segments[i]);
        if let Some(segment) = segment.filter(|s| addr - s.start < s.len) {
            let within = addr - segment.start;
            let n = (segment.len - within).min(buf.len() as u64) as usize;
            let from = segment.offset + within as usize;
            buf[..n].copy_from_slice(&self.core[from..from + n]);
            return Ok(n);
        }
        // Not in the dump: a file mapping that was never written to (the kernel gives
        // it a segment without bytes; gdb's gcore, no segment at all).
        let file = self
            .files
            .iter()
            .find(|f| f.start <= addr && addr < f.end)
            .ok_or(ReadError::Unmapped(addr))?;
        let bytes = file.bytes().ok_or(ReadError::Unmapped(addr))?;
        let next_segment = self.segments.get(index).map_or(u64::MAX, |s| s.start);
        let at = file.offset + (addr - file.start);
        let left = (file.end.min(next_segment) - addr).min(buf.len() as u64);
        let n = left.min((bytes.len() as u64).saturating_sub(at)) as usize;
        if n == 0 {
            return Err(ReadError::Unmapped(addr));
        }
        buf[..n].copy_from_slice(&bytes[at as usize..at as usize + n]);
        Ok(n)
    }
}

impl Memory for CoreMemory {
    fn read_into(&self, addr: u64, buf: &mut [u8]) -> Result<(), ReadError> {
        let mut done = 0;
        while done < buf.len() {
            let at = addr
                .checked_add(done as u64)
                .ok_or(ReadError::Unmapped(addr))?;
            done += self.0.read_some(at, &mut buf[done..])?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapped_files_are_read_from_the_note() {
        let mut desc = Vec::new();
        for word in [2u64, 4096, 0x1000, 0x3000, 0, 0x7000, 0x8000, 5] {
            desc.extend_from_slice(&word.to_le_bytes());
        }
        desc.extend_from_slice(b"/usr/bin/python3\0/lib/libc.so.6\0");
        let files = mapped_files(&desc).unwrap();
        let shown: Vec<(u64, u64, u64, &Path)> = files
            .iter()
            .map(|f| (f.start, f.end, f.offset, f.path.as_path()))
            .collect();
        assert_eq!(
            shown,
            [
                (0x1000, 0x3000, 0, Path::new("/usr/bin/python3")),
                (0x7000, 0x8000, 5 * 4096, Path::new("/lib/libc.so.6")),
            ]
        );
        // A count larger than the note holds is refused, not trusted.
        desc[..8].copy_from_slice(&1000u64.to_le_bytes());
        assert!(mapped_files(&desc).is_none());
    }

    #[test]
    fn thread_status_gives_the_tid_and_registers() {
        let mut desc = vec![0u8; PRSTATUS_SIZE];
        desc[PRSTATUS_PID..PRSTATUS_PID + 4].copy_from_slice(&4242u32.to_le_bytes());
        let mut put = |index: usize, value: u64| {
            let at = PRSTATUS_REGS + 8 * index;
            desc[at..at + 8].copy_from_slice(&value.to_le_bytes());
        };
        put(REG_RIP, 0x401000);
        put(REG_RSP, 0x7ffd0000);
        put(REG_RBP, 0x7ffd0040);
        let thread = thread_status(&desc).unwrap();
        assert_eq!(thread.tid, 4242);
        assert_eq!(
            thread.registers,
            Registers {
                pc: 0x401000,
                sp: 0x7ffd0000,
                bp: 0x7ffd0040
            }
        );
        assert!(thread_status(&desc[..100]).is_none());
    }
}
