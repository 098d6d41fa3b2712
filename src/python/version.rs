//! Which CPython this is, and what it does differently beyond struct offsets.
//!
//! Offsets live in `python-offsets/`; every other version-specific rule the walker
//! follows (line-table format, frame model, pointer tagging, which frames to skip) is
//! decided here and nowhere else.

use std::fmt;

use super::dict::{DictModel, InstanceDictModel};
use super::ints::IntModel;
use super::linetable::LineTableFormat;

/// A CPython version, as encoded in `PY_VERSION_HEX`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PythonVersion {
    /// Major version (2 or 3).
    pub major: u8,
    /// Minor version.
    pub minor: u8,
    /// Patch level.
    pub patch: u8,
    /// Release level and serial, e.g. `"a1"`, `"rc2"`, or `""` for a final release.
    pub release: ReleaseLevel,
}

/// The pre-release part of a version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ReleaseLevel {
    /// Alpha `aN`.
    Alpha(u8),
    /// Beta `bN`.
    Beta(u8),
    /// Release candidate `rcN`.
    Candidate(u8),
    /// A final release.
    Final,
}

impl PythonVersion {
    /// Decode `PY_VERSION_HEX` (`major<<24 | minor<<16 | micro<<8 | level<<4 | serial`).
    pub fn from_hex(hex: u64) -> Option<PythonVersion> {
        let serial = (hex & 0xf) as u8;
        let release = match (hex >> 4) & 0xf {
            0xa => ReleaseLevel::Alpha(serial),
            0xb => ReleaseLevel::Beta(serial),
            0xc => ReleaseLevel::Candidate(serial),
            0xf => ReleaseLevel::Final,
            _ => return None,
        };
        let version = PythonVersion {
            major: (hex >> 24) as u8,
            minor: (hex >> 16) as u8,
            patch: (hex >> 8) as u8,
            release,
        };
        (hex >> 32 == 0 && matches!(version.major, 2 | 3)).then_some(version)
    }

    /// Parse the start of `sys.version`, e.g. `3.9.18 (main, …)` or `3.13.0rc1+ (…)`.
    pub fn parse(text: &str) -> Option<PythonVersion> {
        let end = text.find([' ', '+']).unwrap_or(text.len());
        let mut parts = text[..end].splitn(3, '.');
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next()?.parse().ok()?;
        let rest = parts.next()?;
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let patch = rest[..digits].parse().ok()?;
        let suffix = &rest[digits..];
        let release = if suffix.is_empty() {
            ReleaseLevel::Final
        } else if let Some(n) = suffix.strip_prefix("rc") {
            ReleaseLevel::Candidate(n.parse().ok()?)
        } else if let Some(n) = suffix.strip_prefix('a') {
            ReleaseLevel::Alpha(n.parse().ok()?)
        } else if let Some(n) = suffix.strip_prefix('b') {
            ReleaseLevel::Beta(n.parse().ok()?)
        } else if let Some(n) = suffix.strip_prefix('c') {
            ReleaseLevel::Candidate(n.parse().ok()?)
        } else {
            return None;
        };
        matches!(major, 2 | 3).then_some(PythonVersion {
            major,
            minor,
            patch,
            release,
        })
    }

    /// `(major, minor)`, the part that selects a layout.
    pub fn minor_version(&self) -> (u8, u8) {
        (self.major, self.minor)
    }
}

impl fmt::Display for PythonVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)?;
        match self.release {
            ReleaseLevel::Alpha(n) => write!(f, "a{n}"),
            ReleaseLevel::Beta(n) => write!(f, "b{n}"),
            ReleaseLevel::Candidate(n) => write!(f, "rc{n}"),
            ReleaseLevel::Final => Ok(()),
        }
    }
}

/// How the interpreter was built, as far as its memory layout is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Flavour {
    /// A release build with the GIL.
    Default,
    /// A `Py_DEBUG` build (`python3.Xd`).
    Debug,
    /// A `Py_GIL_DISABLED` build (`python3.Xt`).
    FreeThreaded,
}

impl Flavour {
    /// The suffix of this flavour's layout file name and ABI flag: `""`, `"d"` or `"t"`.
    pub fn suffix(self) -> &'static str {
        match self {
            Flavour::Default => "",
            Flavour::Debug => "d",
            Flavour::FreeThreaded => "t",
        }
    }
}

impl fmt::Display for Flavour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Flavour::Default => "default",
            Flavour::Debug => "debug",
            Flavour::FreeThreaded => "free-threaded",
        })
    }
}

/// Where the first interpreter state is found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InterpreterRoot {
    /// 2.7 and 3.6: the static `interp_head` (or `_PyThreadState_Current->interp`).
    InterpHead,
    /// 3.7+: `_PyRuntime.interpreters.head`.
    Runtime,
}

/// How the chain of frames is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameModel {
    /// Up to 3.10: heap `PyFrameObject`s linked by `f_back`, position in `f_lasti`.
    FrameObjects {
        /// Bytes per unit of `f_lasti`: 1 up to 3.9, 2 in 3.10 (it counts code units).
        lasti_unit: i64,
    },
    /// 3.11+: `_PyInterpreterFrame`s linked by `previous`, position as a pointer into the
    /// code object's inline bytecode.
    InterpreterFrames {
        /// Low bits to clear from the code pointer (3.14 tags it as a `_PyStackRef`).
        code_tag_mask: u64,
        /// Frames with an owner at or above this value are C-stack or interpreter shims,
        /// not Python code (`None` when the version has none).
        first_shim_owner: Option<u8>,
        /// What in a frame's own fields tells whether it still runs.
        run_mark: RunMark,
    },
}

/// What in a 3.11+ frame's own fields tells a frame that still runs from one left in its
/// slot after it returned, which 3.11+ does not erase (see [`super::running`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunMark {
    /// 3.11–3.13: the running frame's `stacktop` is -1 (its stack pointer is in a C
    /// local of the eval loop, which sets -1 when it resumes a frame); a frame that has
    /// made a Python call, or has returned, saved its stack pointer there (0 or more).
    StacktopMinusOne,
    /// 3.14+: clearing a frame that has returned ends by setting its `f_funcobj` to the
    /// null stack reference, whose bits are [`NULL_STACKREF`]; a frame still on the
    /// stack holds its function there. (3.14 no longer marks the running frame but in
    /// debug builds.)
    FuncobjCleared,
}

/// The bits of `PyStackRef_NULL` (3.14+): the reference tag alone (`Py_TAG_REFCNT`, or
/// `Py_TAG_DEFERRED` in free-threaded builds, both 1).
pub const NULL_STACKREF: u64 = 1;

/// How `str` objects (file and function names) are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StringModel {
    /// Python 2: names are byte strings (`PyStringObject`).
    Bytes,
    /// Python 3.3+: PEP 393 compact or legacy unicode objects.
    Pep393,
}

/// Everything about a version that is a rule rather than an offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Semantics {
    /// Where interpreters are found.
    pub interpreter_root: InterpreterRoot,
    /// How frames are linked and positioned.
    pub frame_model: FrameModel,
    /// How names are stored.
    pub strings: StringModel,
    /// Encoding of the code object's line table.
    pub line_table: LineTableFormat,
    /// Whether code objects have `co_qualname` (3.11+), used as the function name.
    pub has_qualname: bool,
    /// Where the GIL's state is kept.
    pub gil: GilModel,
    /// Where the garbage collector's state is kept.
    pub gc: GcModel,
    /// What counts the code objects made or freed, if anything does.
    pub code_count: CodeCountModel,
    /// How dicts are stored.
    pub dict_model: DictModel,
    /// Where instances of Python classes keep their attributes.
    pub instance_dict: InstanceDictModel,
    /// How `int` objects store their value.
    pub int_model: IntModel,
    /// The instance attribute holding a `threading.Thread`'s name (2.7 mangles
    /// `self.__name`).
    pub thread_name_attribute: &'static str,
    /// The C function of the eval loop, one native call of which runs one frame
    /// (up to 3.10) or a run of frames (3.11+): where native stacks take in Python's.
    pub eval_function: &'static str,
}

/// Where to find which thread holds the GIL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GilModel {
    /// 2.7 and 3.6: the exported `_PyThreadState_Current` points at the holder and is
    /// NULL while nobody holds it.
    CurrentThreadSymbol,
    /// 3.7–3.11: the GIL struct is embedded in `_PyRuntime` (`[runtime] gil`).
    InRuntime,
    /// 3.12+: each interpreter's `ceval.gil` points at the GIL struct it uses.
    InterpreterPointer,
}

/// Where to find whether the cyclic garbage collector is running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GcModel {
    /// 2.7 and 3.6: the static int `collecting` of `gcmodule.c`, found by symbol.
    StaticSymbol,
    /// 3.7–3.8: `_PyRuntime.gc` (`[runtime] gc`), shared by all interpreters.
    InRuntime,
    /// 3.9+: each interpreter's own `gc` (`[interpreter] gc`).
    InInterpreter,
}

/// Where to find a count that moves before a code object's address can name another
/// code object: while it stays put, code headers read earlier still hold (see
/// [`crate::python::code_headers`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeCountModel {
    /// Up to 3.11: nothing counts code objects; every stack's code headers are read.
    Uncounted,
    /// 3.12: the static u32 `_Py_next_func_version`, found by symbol, the version the
    /// next code object made gets: each new code object bumps it.
    MadeStatic,
    /// 3.13: the same count, as each interpreter's `func_state.next_version`
    /// (`[interpreter] code_next_version`).
    MadeInInterpreter,
    /// 3.14+: each interpreter's u64 `_code_object_generation`
    /// (`[interpreter] code_object_generation`), bumped as each code object is freed.
    FreedInInterpreter,
}

impl Semantics {
    /// The rules for `version`, or `None` if pyscry does not know that version.
    pub fn for_version(version: PythonVersion) -> Option<Semantics> {
        let minor = match version.minor_version() {
            (2, 7) => 0,
            (3, m @ 6..=15) => m,
            _ => return None,
        };
        let py2 = version.major == 2;
        Some(Semantics {
            interpreter_root: if py2 || minor == 6 {
                InterpreterRoot::InterpHead
            } else {
                InterpreterRoot::Runtime
            },
            frame_model: match minor {
                0..=9 => FrameModel::FrameObjects { lasti_unit: 1 },
                10 => FrameModel::FrameObjects { lasti_unit: 2 },
                _ => FrameModel::InterpreterFrames {
                    code_tag_mask: if minor >= 14 { !3 } else { !0 },
                    // 3.12 and 3.13: owner 3 is FRAME_OWNED_BY_CSTACK; 3.14 adds
                    // FRAME_OWNED_BY_INTERPRETER as 3 and moves CSTACK to 4.
                    first_shim_owner: (minor >= 12).then_some(3),
                    run_mark: if minor <= 13 {
                        RunMark::StacktopMinusOne
                    } else {
                        RunMark::FuncobjCleared
                    },
                },
            },
            strings: if py2 {
                StringModel::Bytes
            } else {
                StringModel::Pep393
            },
            line_table: match minor {
                0 => LineTableFormat::Lnotab {
                    signed_line_steps: false,
                },
                6..=9 => LineTableFormat::Lnotab {
                    signed_line_steps: true,
                },
                10 => LineTableFormat::Pairs310,
                _ => LineTableFormat::Locations,
            },
            has_qualname: minor >= 11,
            gil: match minor {
                0 | 6 => GilModel::CurrentThreadSymbol,
                7..=11 => GilModel::InRuntime,
                _ => GilModel::InterpreterPointer,
            },
            gc: match minor {
                0 | 6 => GcModel::StaticSymbol,
                7 | 8 => GcModel::InRuntime,
                _ => GcModel::InInterpreter,
            },
            code_count: match minor {
                0..=11 => CodeCountModel::Uncounted,
                12 => CodeCountModel::MadeStatic,
                13 => CodeCountModel::MadeInInterpreter,
                _ => CodeCountModel::FreedInInterpreter,
            },
            dict_model: match minor {
                0 => DictModel::Table,
                6..=10 => DictModel::CompactSized,
                _ => DictModel::CompactLog2,
            },
            instance_dict: match minor {
                0..=10 => InstanceDictModel::DictOffset,
                11 => InstanceDictModel::ManagedPointers,
                12 => InstanceDictModel::DictOrValues,
                _ => InstanceDictModel::InlineValues,
            },
            int_model: match minor {
                0 => IntModel::Py2Int,
                6..=11 => IntModel::SignedSize,
                _ => IntModel::Tagged,
            },
            thread_name_attribute: if py2 { "_Thread__name" } else { "_name" },
            eval_function: if py2 {
                "PyEval_EvalFrameEx"
            } else {
                "_PyEval_EvalFrameDefault"
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_version_hex() {
        let v = PythonVersion::from_hex(0x030b07f0).unwrap();
        assert_eq!(v.to_string(), "3.11.7");
        assert_eq!(
            PythonVersion::from_hex(0x030d00c1).unwrap().to_string(),
            "3.13.0rc1"
        );
        assert_eq!(PythonVersion::from_hex(0x0a0b07f0), None);
        assert_eq!(PythonVersion::from_hex(0x030b0700), None);
    }

    #[test]
    fn parses_sys_version_text() {
        let v = PythonVersion::parse("3.9.18 (main, Jan  1 2024, 00:00:00) [GCC 12]").unwrap();
        assert_eq!(v.minor_version(), (3, 9));
        assert_eq!(v.patch, 18);
        assert_eq!(
            PythonVersion::parse("2.7.18 (default, …)")
                .unwrap()
                .to_string(),
            "2.7.18"
        );
        assert_eq!(
            PythonVersion::parse("3.13.0rc1+ (heads/3.13)")
                .unwrap()
                .release,
            ReleaseLevel::Candidate(1)
        );
        assert_eq!(PythonVersion::parse("1.2.3 (x)"), None);
        assert_eq!(PythonVersion::parse("3.x.1"), None);
    }

    #[test]
    fn knows_each_family() {
        let rules = |hex| Semantics::for_version(PythonVersion::from_hex(hex).unwrap());
        assert_eq!(
            rules(0x020712f0).unwrap().line_table,
            LineTableFormat::Lnotab {
                signed_line_steps: false
            }
        );
        assert_eq!(
            rules(0x030a0df0).unwrap().frame_model,
            FrameModel::FrameObjects { lasti_unit: 2 }
        );
        assert!(rules(0x030b07f0).unwrap().has_qualname);
        assert_eq!(rules(0x03100000 | 0xf0), None);
        assert_eq!(rules(0x030500f0), None);
    }
}
