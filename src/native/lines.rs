//! Source lines of native code: the file and line that a module's DWARF (`.debug_info`
//! and `.debug_line`) gives an address, read from the module's file, or from its
//! separate debug file where the file was stripped (as Debian's `-dbgsym` packages
//! and `objcopy --only-keep-debug` leave them). Sections compressed with zlib or zstd
//! are decompressed.

use std::ops::Range;
use std::sync::Arc;

use flate2::read::ZlibDecoder;
use gimli::{EndianSlice, RunTimeEndian, SectionId};
use goblin::elf::section_header::SHF_COMPRESSED;
use goblin::elf::Elf;
use ruzstd::decoding::StreamingDecoder;
use std::io::Read;

use super::module::{file_range, sections_named, Bytes};
use crate::target::binary::{build_id, map_readonly};
use crate::target::maps::FileRoot;

/// Where the separate debug files are installed, by build id and by path.
const DEBUG_ROOT: &str = "/usr/lib/debug";
/// `ELFCOMPRESS_ZLIB`: a compressed section holds a zlib stream after its header.
const ELFCOMPRESS_ZLIB: u32 = 1;
/// `ELFCOMPRESS_ZSTD`: a zstd frame (`objcopy --compress-debug-sections=zstd`, and
/// some distributions' debug packages).
const ELFCOMPRESS_ZSTD: u32 = 2;
/// Size of `Elf64_Chdr`, the header of a compressed section.
const COMPRESSION_HEADER: usize = 24;
/// Largest section decompressed: a bound against a corrupt header.
const MAX_SECTION: u64 = 1 << 30;

/// A line of C (or other native) source.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SourceLine {
    /// The source file's path as the compiler saw it.
    pub file: String,
    /// The line, from 1.
    pub line: u32,
}

/// One function at an address of native code, as DWARF describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFunction {
    /// Its DWARF name.
    pub name: Option<String>,
    /// For the innermost function at the address, the line of the address; for each
    /// function that code was inlined into, the line of its call to that code.
    pub line: Option<SourceLine>,
}

/// The DWARF sections of one file that line lookups read, borrowed from the mapped
/// file or, for compressed sections, decompressed.
pub struct DebugSections {
    file: Arc<Bytes>,
    sections: Vec<(SectionId, Section)>,
}

/// One DWARF section's bytes.
enum Section {
    /// Where it is in the file.
    InFile(Range<usize>),
    /// Decompressed from an `SHF_COMPRESSED` section.
    Decompressed(Vec<u8>),
}

impl DebugSections {
    /// The sections of `elf`, the ELF file `file`, that addresses are looked up in;
    /// `None` when it has no `.debug_info` or `.debug_line` (a stripped file).
    fn read(elf: &Elf, file: &Arc<Bytes>) -> Option<DebugSections> {
        let bytes = file.as_slice();
        let wanted = [
            SectionId::DebugAbbrev,
            SectionId::DebugAddr,
            SectionId::DebugAranges,
            SectionId::DebugInfo,
            SectionId::DebugLine,
            SectionId::DebugLineStr,
            SectionId::DebugStr,
            SectionId::DebugStrOffsets,
            SectionId::DebugRanges,
            SectionId::DebugRngLists,
        ];
        let mut sections = Vec::new();
        for header in &elf.section_headers {
            let Some(id) = elf
                .shdr_strtab
                .get_at(header.sh_name)
                .and_then(|name| wanted.into_iter().find(|id| id.name() == name))
            else {
                continue;
            };
            let range = file_range(header, bytes)?;
            let section = match header.sh_flags & u64::from(SHF_COMPRESSED) {
                0 => Section::InFile(range),
                _ => Section::Decompressed(decompress(&bytes[range])?),
            };
            sections.push((id, section));
        }
        let has = |wanted: SectionId| sections.iter().any(|(id, _)| *id == wanted);
        let file = Arc::clone(file);
        (has(SectionId::DebugInfo) && has(SectionId::DebugLine))
            .then_some(DebugSections { file, sections })
    }

    /// Section `id`'s bytes; empty if the file has none.
    fn get(&self, id: SectionId) -> &[u8] {
        let found = self.sections.iter().find(|(section, _)| *section == id);
        match found.map(|(_, section)| section) {
            Some(Section::InFile(range)) => &self.file.as_slice()[range.clone()],
            Some(Section::Decompressed(bytes)) => bytes,
            None => &[],
        }
    }
}

/// The contents of a compressed section (`Elf64_Chdr`, then a zlib stream or a zstd
/// frame); `None` for another compression or a corrupt section.
fn decompress(raw: &[u8]) -> Option<Vec<u8>> {
    let header = raw.get(..COMPRESSION_HEADER)?;
    let kind = u32::from_le_bytes(header[..4].try_into().ok()?);
    let size = u64::from_le_bytes(header[8..16].try_into().ok()?);
    if size > MAX_SECTION {
        return None;
    }
    let stream = &raw[COMPRESSION_HEADER..];
    let decoder: Box<dyn Read + '_> = match kind {
        ELFCOMPRESS_ZLIB => Box::new(ZlibDecoder::new(stream)),
        ELFCOMPRESS_ZSTD => Box::new(StreamingDecoder::new(stream).ok()?),
        _ => return None,
    };
    let mut out = Vec::with_capacity(size as usize);
    decoder.take(size).read_to_end(&mut out).ok()?;
    (out.len() as u64 == size).then_some(out)
}

/// A file's DWARF as `addr2line` looks addresses up in it.
type LineContext<'a> = addr2line::Context<EndianSlice<'a, RunTimeEndian>>;

self_cell::self_cell!(
    /// One module's DWARF, parsed for line lookups, with the sections it was parsed
    /// from.
    pub struct DebugInfo {
        owner: DebugSections,
        #[not_covariant]
        dependent: LineContext,
    }
);

impl DebugInfo {
    /// The DWARF of the module that a process maps from `path`, whose bytes are
    /// `file`: the file's own, else that of its separate debug file, found by build
    /// id under `/usr/lib/debug/.build-id/`, or by the name in `.gnu_debuglink` next
    /// to the file, in its `.debug/` directory, or under `/usr/lib/debug` (all in the
    /// process's file system, `root`), and only if it has the file's build id (or,
    /// without one, the CRC `.gnu_debuglink` gives). `None` if none of them has line
    /// information.
    pub fn load(root: FileRoot, path: &str, file: Arc<Bytes>) -> Option<DebugInfo> {
        let elf = Elf::parse(file.as_slice()).ok()?;
        let sections = match DebugSections::read(&elf, &file) {
            Some(sections) => sections,
            None => {
                let (identity, candidates) = separate_files(path, &elf, file.as_slice())?;
                candidates
                    .into_iter()
                    .filter_map(|candidate| {
                        let opened = std::fs::File::open(root.path(&candidate)).ok()?;
                        let map = Arc::new(Bytes::Mapped(map_readonly(&opened).ok()?));
                        if !identity.matches(map.as_slice()) {
                            return None;
                        }
                        DebugSections::read(&Elf::parse(map.as_slice()).ok()?, &map)
                    })
                    .next()?
            }
        };
        DebugInfo::try_new(sections, |sections| {
            let dwarf = gimli::Dwarf::load(|id| {
                Ok::<_, gimli::Error>(EndianSlice::new(sections.get(id), RunTimeEndian::Little))
            })?;
            addr2line::Context::from_dwarf(dwarf)
        })
        .ok()
    }

    /// The functions at `address` (link-time), innermost first: those inlined there,
    /// each into the next, and last the function whose code it is (which code without
    /// a symbol, such as a function's split-off cold part, also has). Empty where the
    /// DWARF says nothing of the address.
    pub fn locate(&self, address: u64) -> Vec<SourceFunction> {
        self.with_dependent(|_, context| {
            let mut functions = Vec::new();
            let Ok(mut frames) = context.find_frames(address).skip_all_loads() else {
                return functions;
            };
            while let Ok(Some(frame)) = frames.next() {
                let name = frame
                    .function
                    .and_then(|f| f.raw_name().ok().map(|name| name.into_owned()));
                let line = frame.location.and_then(|location| {
                    Some(SourceLine {
                        file: location.file?.to_string(),
                        line: location.line.filter(|&line| line > 0)?,
                    })
                });
                functions.push(SourceFunction { name, line });
            }
            functions
        })
    }
}

/// What a separate debug file must have to be the one split from a given file: a debug
/// file of another build (an older package, a rebuilt library) would name other
/// functions and lines at the same addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
enum SplitIdentity {
    /// The build id both files carry.
    BuildId(Vec<u8>),
    /// The CRC-32 of the whole debug file, which `.gnu_debuglink` gives after the name
    /// (checked only for a file without a build id: it reads the whole debug file).
    Crc(u32),
}

impl SplitIdentity {
    /// Whether `debug_file` (its bytes) is the debug file split from that file.
    fn matches(&self, debug_file: &[u8]) -> bool {
        match self {
            SplitIdentity::BuildId(id) => build_id(debug_file) == Some(id.as_slice()),
            SplitIdentity::Crc(crc) => {
                let mut sum = flate2::Crc::new();
                sum.update(debug_file);
                sum.sum() == *crc
            }
        }
    }
}

/// The `.gnu_debuglink` of `elf`, the file `bytes`: the debug file's name (no
/// directory) and the CRC-32 of its contents (after the name's NUL, padded to 4).
fn debuglink<'a>(elf: &Elf, bytes: &'a [u8]) -> Option<(&'a str, u32)> {
    sections_named(elf, ".gnu_debuglink").find_map(|header| {
        let raw = &bytes[file_range(header, bytes)?];
        let end = raw.iter().position(|&b| b == 0)?;
        let name = std::str::from_utf8(&raw[..end]).ok()?;
        let crc_at = (end + 1).next_multiple_of(4);
        let crc = u32::from_le_bytes(raw.get(crc_at..crc_at + 4)?.try_into().ok()?);
        (!name.is_empty() && !name.contains('/')).then_some((name, crc))
    })
}

/// What the separate debug file of `elf`, the ELF file `bytes` at `path`, must match,
/// and where it may be, most specific first; `None` when the file has neither a build
/// id nor a `.gnu_debuglink`, so that no debug file can be told to be its own.
fn separate_files(path: &str, elf: &Elf, bytes: &[u8]) -> Option<(SplitIdentity, Vec<String>)> {
    let id = build_id(bytes);
    let link = debuglink(elf, bytes);
    let identity = match (id, link) {
        (Some(id), _) => SplitIdentity::BuildId(id.to_vec()),
        (None, Some((_, crc))) => SplitIdentity::Crc(crc),
        (None, None) => return None,
    };
    let mut candidates = Vec::new();
    if let Some(id) = id.filter(|id| id.len() > 1) {
        let hex: String = id.iter().map(|b| format!("{b:02x}")).collect();
        candidates.push(format!(
            "{DEBUG_ROOT}/.build-id/{}/{}.debug",
            &hex[..2],
            &hex[2..]
        ));
    }
    if let (Some((name, _)), Some(dir)) = (link, path.rfind('/').map(|end| &path[..end])) {
        candidates.push(format!("{dir}/{name}"));
        candidates.push(format!("{dir}/.debug/{name}"));
        candidates.push(format!("{DEBUG_ROOT}{dir}/{name}"));
    }
    candidates.retain(|candidate| candidate != path);
    Some((identity, candidates))
}
