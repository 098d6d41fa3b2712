//! The executable files mapped into a target, as native unwinding needs them: where
//! each is loaded, its call frame information (`.eh_frame`), its function symbols and
//! (looked up when first asked for) its source lines.

use std::cell::OnceCell;
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use goblin::elf::sym::STT_FUNC;
use goblin::elf::{Elf, SectionHeader};

use super::lines::{DebugInfo, SourceFunction};
use crate::target::binary::{lowest_load_address, map_file};
use crate::target::maps::{FileRoot, Mapping};
use crate::target::memory::Memory;

/// One ELF file (executable, shared library or the vDSO) mapped into the target.
pub struct Module {
    /// The file's path as the target sees it, or `[vdso]`.
    path: String,
    /// The runtime address ranges where its code is mapped.
    code: Vec<Range<u64>>,
    /// Runtime address minus the file's own (link-time) address.
    bias: u64,
    /// The file's bytes.
    bytes: Arc<Bytes>,
    /// `.eh_frame`: where it is in `bytes`, and its link-time address.
    eh_frame: Option<(Range<usize>, u64)>,
    /// `.eh_frame_hdr`, the sorted index into `.eh_frame`: where and its address.
    eh_frame_hdr: Option<(Range<usize>, u64)>,
    /// Link-time address of `.text`, which some pointer encodings count from.
    text: u64,
    /// Function symbols, sorted by address: link-time start, end, name.
    functions: Vec<(u64, u64, String)>,
    /// Where the process it is mapped into has its files: its separate debug file is
    /// looked for there.
    root: FileRoot,
    /// Its DWARF, loaded when a source line is first asked for (`None`: it has none).
    debug_info: OnceCell<Option<DebugInfo>>,
}

/// A file's bytes: mapped from disk, or read from the target (the vDSO has no file).
pub enum Bytes {
    /// Mapped read-only from the file.
    Mapped(memmap2::Mmap),
    /// Copied from the target's memory.
    Copied(Vec<u8>),
}

impl Bytes {
    /// All of the file's bytes.
    pub fn as_slice(&self) -> &[u8] {
        match self {
            Bytes::Mapped(map) => map,
            Bytes::Copied(vec) => vec,
        }
    }
}

/// What a module holds about one address in its code.
pub struct CallFrameInfo<'a> {
    /// `.eh_frame`'s bytes.
    pub eh_frame: &'a [u8],
    /// `.eh_frame_hdr`'s bytes, when the file has the index.
    pub eh_frame_hdr: Option<&'a [u8]>,
    /// Link-time addresses of `.eh_frame`, `.eh_frame_hdr` and `.text`.
    pub bases: gimli::BaseAddresses,
    /// The address, at link time.
    pub address: u64,
}

impl Module {
    /// Open every file that `maps` shows mapped executable in a process (from `root`),
    /// and the vDSO. Files that cannot be read or parsed are left out: their frames are
    /// shown by address and the unwinding stops there.
    pub fn load_all(root: FileRoot, maps: &[Mapping], memory: &impl Memory) -> Vec<Module> {
        let mut modules: Vec<Module> = Vec::new();
        for mapping in maps.iter().filter(|m| m.perms.contains('x')) {
            let range = mapping.start..mapping.end;
            let path = mapping.path.as_deref().unwrap_or("");
            if let Some(module) = modules.iter_mut().find(|m| m.is_named(path)) {
                module.code.push(range);
                continue;
            }
            let module = match path {
                "[vdso]" => Module::from_vdso(root, range, memory),
                _ => Module::from_file(root, mapping, maps),
            };
            modules.extend(module);
        }
        modules
    }

    fn is_named(&self, path: &str) -> bool {
        !path.is_empty() && self.path == path
    }

    /// The file's name, e.g. `libc.so.6`, or `[vdso]`.
    pub fn name(&self) -> &str {
        file_name(&self.path)
    }

    fn from_vdso(root: FileRoot, range: Range<u64>, memory: &impl Memory) -> Option<Module> {
        let bytes = memory.read_vec(range.start, (range.end - range.start) as usize);
        // Read from where it is mapped, whole: its first page is at its start.
        let base = range.start;
        let image = MappedImage {
            root,
            path: "[vdso]".into(),
            code: range,
            base,
        };
        Module::parse(image, Bytes::Copied(bytes.ok()?))
    }

    fn from_file(root: FileRoot, mapping: &Mapping, maps: &[Mapping]) -> Option<Module> {
        let (map, base) = map_file(root, mapping.file_path()?, maps).ok()?;
        let image = MappedImage {
            root,
            path: mapping.path.clone()?,
            code: mapping.start..mapping.end,
            base,
        };
        Module::parse(image, Bytes::Mapped(map))
    }

    /// Index the ELF image in `bytes`, mapped as `image` says.
    fn parse(image: MappedImage, bytes: Bytes) -> Option<Module> {
        let elf = Elf::parse(bytes.as_slice()).ok()?;
        let bias = image.base.wrapping_sub(lowest_load_address(&elf));
        let section = |wanted: &str| {
            let header = sections_named(&elf, wanted).next()?;
            Some((file_range(header, bytes.as_slice())?, header.sh_addr))
        };
        let mut functions: Vec<(u64, u64, String)> =
            [(&elf.syms, &elf.strtab), (&elf.dynsyms, &elf.dynstrtab)]
                .into_iter()
                .flat_map(|(syms, strtab)| {
                    syms.iter()
                        .filter(|s| s.st_type() == STT_FUNC && s.st_value != 0)
                        .filter_map(|s| {
                            let name = strtab.get_at(s.st_name)?;
                            let end = s.st_value.saturating_add(s.st_size.max(1));
                            Some((s.st_value, end, name.to_string()))
                        })
                })
                .collect();
        // Of the symbols at one address (aliases), the one that spans most is kept.
        functions.sort_unstable_by_key(|f| (f.0, std::cmp::Reverse(f.1)));
        functions.dedup_by_key(|f| f.0);
        Some(Module {
            eh_frame: section(".eh_frame"),
            eh_frame_hdr: section(".eh_frame_hdr"),
            text: section(".text").map_or(0, |(_, address)| address),
            path: image.path,
            code: vec![image.code],
            bias,
            bytes: Arc::new(bytes),
            functions,
            root: image.root,
            debug_info: OnceCell::new(),
        })
    }

    /// Whether `address` (at runtime) is in this module's code.
    pub fn contains(&self, address: u64) -> bool {
        self.code.iter().any(|range| range.contains(&address))
    }

    /// The function symbol that `address` (at runtime) falls in.
    pub fn function(&self, address: u64) -> Option<&str> {
        let address = address.wrapping_sub(self.bias);
        let index = self.functions.partition_point(|f| f.0 <= address);
        let (_, end, name) = self.functions.get(index.checked_sub(1)?)?;
        (address < *end).then_some(name.as_str())
    }

    /// The functions at `address` (at runtime) by the module's DWARF (or its separate
    /// debug file's), innermost first (see [`DebugInfo::locate`]); empty without DWARF.
    pub fn locate(&self, address: u64) -> Vec<SourceFunction> {
        let debug_info = self.debug_info.get_or_init(|| {
            let is_file = self.path.starts_with('/');
            is_file.then(|| DebugInfo::load(self.root, &self.path, self.bytes.clone()))?
        });
        debug_info.as_ref().map_or_else(Vec::new, |info| {
            info.locate(address.wrapping_sub(self.bias))
        })
    }

    /// The call frame information that covers `address` (at runtime).
    pub fn call_frame_info(&self, address: u64) -> Option<CallFrameInfo<'_>> {
        let bytes = self.bytes.as_slice();
        let (eh_frame, eh_frame_address) = self.eh_frame.clone()?;
        let mut bases = gimli::BaseAddresses::default()
            .set_eh_frame(eh_frame_address)
            .set_text(self.text);
        let eh_frame_hdr = self.eh_frame_hdr.clone().map(|(range, address)| {
            bases = bases.clone().set_eh_frame_hdr(address);
            &bytes[range]
        });
        Some(CallFrameInfo {
            eh_frame: &bytes[eh_frame],
            eh_frame_hdr,
            bases,
            address: address.wrapping_sub(self.bias),
        })
    }
}

/// The section headers of `elf` named `name`.
pub fn sections_named<'e>(elf: &'e Elf, name: &'e str) -> impl Iterator<Item = &'e SectionHeader> {
    let named = move |header: &&SectionHeader| elf.shdr_strtab.get_at(header.sh_name) == Some(name);
    elf.section_headers.iter().filter(named)
}

/// Where the section of `header` is in the file `bytes`; `None` if it is not all there.
pub fn file_range(header: &SectionHeader, bytes: &[u8]) -> Option<Range<usize>> {
    let start = usize::try_from(header.sh_offset).ok()?;
    let end = start.checked_add(usize::try_from(header.sh_size).ok()?)?;
    (end <= bytes.len()).then_some(start..end)
}

/// Where an ELF image is mapped in a process.
struct MappedImage {
    /// Where the process has its files.
    root: FileRoot,
    /// The file's path as the process sees it, or `[vdso]`.
    path: String,
    /// The runtime address range of its code.
    code: Range<u64>,
    /// Where its first page is mapped.
    base: u64,
}

fn file_name(path: &str) -> &str {
    Path::new(path)
        .file_name()
        .and_then(|name| name.to_str())
        .unwrap_or(path)
}
