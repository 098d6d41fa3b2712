//! ELF files mapped into a target: where they are loaded and what their symbols are.

use std::collections::HashMap;

use goblin::container::Ctx;
use goblin::elf::note::NT_GNU_BUILD_ID;
use goblin::elf::{program_header::PT_LOAD, Elf, ProgramHeader};

use super::maps::{FileRoot, Mapping};

/// An ELF file mapped into the target, with its symbols resolved to runtime addresses.
#[derive(Debug, Clone)]
pub struct Binary {
    /// Path of the file as the target sees it.
    pub path: String,
    symbols: HashMap<String, Symbol>,
    sections: HashMap<String, Region>,
}

/// A symbol's runtime address and size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Symbol {
    /// Runtime address.
    pub address: u64,
    /// Size in bytes, from the symbol table (0 when unknown).
    pub size: u64,
}

/// A section's runtime address range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region {
    /// Runtime address of the first byte.
    pub address: u64,
    /// Size in bytes.
    pub size: u64,
}

/// Why a mapped file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum BinaryError {
    /// The file could not be opened through `/proc/PID/root`.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The target-side path.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file was deleted or replaced since it was mapped, and the copy the process
    /// still maps could not be opened through `/proc/PID/map_files`.
    #[error(
        "cannot read {path}, deleted or replaced since the process loaded it: opening the \
         loaded copy through /proc/PID/map_files needs root (CAP_SYS_ADMIN or \
         CAP_CHECKPOINT_RESTORE): {source}"
    )]
    Deleted {
        /// The target-side path.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file is not a 64-bit ELF file we can parse.
    #[error("{path} is not an ELF file pyscry can read: {reason}")]
    NotElf {
        /// The target-side path.
        path: String,
        /// What the parser said.
        reason: String,
    },
    /// No mapping of the file starts at file offset 0, so the load address is unknown.
    #[error("{0} has no mapping at file offset 0")]
    NoBaseMapping(String),
}

impl Binary {
    /// Open the file mapped at `path` in a process, from `root` (the copy it maps,
    /// should the file have been deleted or replaced since), resolve its load bias from
    /// `maps`, and keep the symbols named in `wanted`.
    ///
    /// Only the wanted symbols are kept: an unstripped library has tens of thousands,
    /// and indexing them all made attaching take hundreds of milliseconds.
    pub fn open(
        root: FileRoot,
        path: &str,
        maps: &[Mapping],
        wanted: &[&str],
    ) -> Result<Binary, BinaryError> {
        let (bytes, base) = map_file(root, path, maps)?;
        let elf = Elf::parse(&bytes).map_err(|e| BinaryError::NotElf {
            path: path.to_string(),
            reason: e.to_string(),
        })?;
        let bias = base.wrapping_sub(lowest_load_address(&elf));
        Ok(Binary {
            path: path.to_string(),
            symbols: symbols(&elf, bias, wanted),
            sections: sections(&elf, bias),
        })
    }

    /// The symbol called `name`, from `.dynsym` or `.symtab`, at its runtime address.
    pub fn symbol(&self, name: &str) -> Option<Symbol> {
        self.symbols.get(name).copied()
    }

    /// The section called `name` (e.g. `.bss`), at its runtime address.
    pub fn section(&self, name: &str) -> Option<Region> {
        self.sections.get(name).copied()
    }
}

/// The file that a process maps at `path`, opened from `root` (the copy it maps,
/// should the file have been deleted or replaced since), mapped here too, and the
/// address where the process maps its first page (file offset 0).
pub fn map_file(
    root: FileRoot,
    path: &str,
    maps: &[Mapping],
) -> Result<(memmap2::Mmap, u64), BinaryError> {
    let io_error = |source| BinaryError::Io {
        path: path.to_string(),
        source,
    };
    let base_mapping = maps
        .iter()
        .filter(|m| m.file_path() == Some(path) && m.offset == 0)
        .min_by_key(|m| m.start)
        .ok_or_else(|| BinaryError::NoBaseMapping(path.to_string()))?;
    let host_file = base_mapping
        .host_file(root)
        .ok_or_else(|| BinaryError::NoBaseMapping(path.to_string()))?;
    let file = std::fs::File::open(host_file).map_err(|source| {
        if base_mapping.is_deleted() {
            BinaryError::Deleted {
                path: path.to_string(),
                source,
            }
        } else {
            io_error(source)
        }
    })?;
    let bytes = map_readonly(&file).map_err(io_error)?;
    Ok((bytes, base_mapping.start))
}

/// The GNU build id of the ELF image in `bytes`, a whole file or only its first page
/// as a process loaded it: the `NT_GNU_BUILD_ID` note that its program headers point
/// to within `bytes`.
pub fn build_id(bytes: &[u8]) -> Option<&[u8]> {
    let header = Elf::parse_header(bytes).ok()?;
    let ctx = Ctx::new(header.container().ok()?, header.endianness().ok()?);
    let (offset, count) = (header.e_phoff as usize, header.e_phnum as usize);
    let mut elf = Elf::lazy_parse(header).ok()?;
    elf.program_headers = ProgramHeader::parse(bytes, offset, count, ctx).ok()?;
    let notes = elf.iter_note_headers(bytes)?.filter_map(Result::ok);
    let mut build_ids = notes.filter(|note| note.n_type == NT_GNU_BUILD_ID && note.name == "GNU");
    build_ids.next().map(|note| note.desc)
}

/// `file` mapped read-only: only the pages the ELF parser touches are read, not a
/// whole (possibly 30 MB) library or debug file.
pub fn map_readonly(file: &std::fs::File) -> std::io::Result<memmap2::Mmap> {
    // SAFETY: the mapping is read-only and private; if another process truncates the
    // file while we parse it we may fault, which is the same risk every tool that
    // maps ELF files (debuggers, linkers) accepts.
    unsafe { memmap2::Mmap::map(file) }
}

/// The page of the lowest address an ELF file loads at: its mapping at file offset 0
/// starts there, so the difference is the load bias.
pub fn lowest_load_address(elf: &Elf) -> u64 {
    elf.program_headers
        .iter()
        .filter(|ph| ph.p_type == PT_LOAD)
        .map(|ph| ph.p_vaddr & !0xfff)
        .min()
        .unwrap_or(0)
}

fn symbols(elf: &Elf, bias: u64, wanted: &[&str]) -> HashMap<String, Symbol> {
    let mut out = HashMap::new();
    let tables = [(&elf.dynsyms, &elf.dynstrtab), (&elf.syms, &elf.strtab)];
    for (syms, strtab) in tables {
        for sym in syms.iter().filter(|s| s.st_value != 0 && !s.is_import()) {
            let name = strtab.get_at(sym.st_name);
            if let Some(name) = name.filter(|n| wanted.contains(n)) {
                out.entry(name.to_string()).or_insert(Symbol {
                    address: sym.st_value.wrapping_add(bias),
                    size: sym.st_size,
                });
            }
        }
    }
    out
}

fn sections(elf: &Elf, bias: u64) -> HashMap<String, Region> {
    elf.section_headers
        .iter()
        .filter(|sh| sh.sh_addr != 0)
        .filter_map(|sh| {
            let name = elf.shdr_strtab.get_at(sh.sh_name)?;
            Some((
                name.to_string(),
                Region {
                    address: sh.sh_addr.wrapping_add(bias),
                    size: sh.sh_size,
                },
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::maps::read_maps;

    #[test]
    fn resolves_own_symbols_and_sections() {
        let pid = std::process::id();
        let maps = read_maps(pid).unwrap();
        let exe = std::fs::read_link("/proc/self/exe").unwrap();
        let exe = exe.to_str().unwrap();
        let binary = Binary::open(FileRoot::Process(pid), exe, &maps, &["main"]).unwrap();
        let text = binary.section(".text").expect(".text section");
        assert!(binary.symbol("main").is_some());
        assert!(maps
            .iter()
            .any(|m| m.start <= text.address && text.address < m.end));
    }
}
