//! `_Py_DebugOffsets`: the struct offsets a 3.13+ interpreter publishes about itself at
//! the start of `_PyRuntime`, for tools like this one.
//!
//! The layout tables say, for each field the struct describes, where in the struct its
//! value is kept (the struct's own layout differs between minor versions, so that is
//! per-version data too). At attach the struct is read from the target, checked (cookie,
//! version, free-threaded flag, plausible values), and its values replace the table's:
//! a patch release that moves a described field keeps working.

use super::version::{Flavour, PythonVersion};
use crate::target::memory::{FieldReader, Memory, ReadError};

/// The cookie `_Py_DebugOffsets` starts with.
const COOKIE: &[u8; 8] = b"xdebugpy";
/// Where the version (`PY_VERSION_HEX`) is kept, right after the cookie.
const VERSION_POSITION: u64 = 8;
/// Largest struct and largest offset believed; anything bigger is a bad read.
const MAX_SIZE: u64 = 16 * 1024;
const MAX_OFFSET: u64 = 1 << 20;

/// What the debug offsets changed in a table.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Applied {
    /// How many table values the debug offsets covered.
    pub covered: usize,
    /// `section.key`, table value, target value — for each one that differed.
    pub differences: Vec<(String, u64, u64)>,
}

/// Why the debug offsets were not used (the table is used alone then).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DebugOffsetsError {
    /// The table has no `[debug_offsets]` section (versions before 3.13).
    #[error("the layout table does not describe _Py_DebugOffsets")]
    NotDescribed,
    /// The memory could not be read.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// The struct does not look like debug offsets of this interpreter.
    #[error("_Py_DebugOffsets do not match: {0}")]
    Mismatch(String),
}

/// Read the debug offsets at `runtime` and write them into `table`.
pub fn apply(
    mem: &impl Memory,
    runtime: u64,
    version: PythonVersion,
    flavour: Flavour,
    table: &mut toml::Table,
) -> Result<Applied, DebugOffsetsError> {
    let positions = positions(table).ok_or(DebugOffsetsError::NotDescribed)?;
    let size = positions
        .iter()
        .find(|(key, _)| key == "size")
        .map(|&(_, size)| size)
        .filter(|&size| (24..=MAX_SIZE).contains(&size))
        .ok_or(DebugOffsetsError::NotDescribed)?;
    let raw = mem.read_vec(runtime, size as usize)?;
    check_header(&raw, version, flavour, &positions)?;
    let mut applied = Applied::default();
    let mut updates = Vec::new();
    for (name, position) in positions.iter().filter(|(k, _)| k.contains('.')) {
        let value = raw.u64_at(*position);
        if *position + 8 > size || value > MAX_OFFSET {
            return Err(DebugOffsetsError::Mismatch(format!("{name} = {value}")));
        }
        updates.push((name.clone(), value));
    }
    for (name, value) in updates {
        let (section, key) = name.split_once('.').expect("filtered on '.'");
        let section = table
            .entry(section)
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        let Some(section) = section.as_table_mut() else {
            continue;
        };
        let old = section.insert(key.to_string(), toml::Value::Integer(value as i64));
        applied.covered += 1;
        if let Some(old) = old.and_then(|v| v.as_integer()) {
            if old as u64 != value {
                applied.differences.push((name, old as u64, value));
            }
        }
    }
    Ok(applied)
}

/// The `[debug_offsets]` section: (name, position inside the struct).
fn positions(table: &toml::Table) -> Option<Vec<(String, u64)>> {
    let section = table.get("debug_offsets")?.as_table()?;
    Some(
        section
            .iter()
            .filter_map(|(k, v)| Some((k.clone(), u64::try_from(v.as_integer()?).ok()?)))
            .collect(),
    )
}

fn check_header(
    raw: &[u8],
    version: PythonVersion,
    flavour: Flavour,
    positions: &[(String, u64)],
) -> Result<(), DebugOffsetsError> {
    if &raw[..8] != COOKIE {
        return Err(DebugOffsetsError::Mismatch("no xdebugpy cookie".into()));
    }
    let hex = raw.u64_at(VERSION_POSITION);
    let published = PythonVersion::from_hex(hex)
        .ok_or_else(|| DebugOffsetsError::Mismatch(format!("version {hex:#x}")))?;
    if published.minor_version() != version.minor_version() {
        return Err(DebugOffsetsError::Mismatch(format!(
            "they describe {published}, the interpreter is {version}"
        )));
    }
    if let Some(&(_, position)) = positions.iter().find(|(k, _)| k == "free_threaded") {
        let free_threaded = raw.u64_at(position) != 0;
        if free_threaded != (flavour == Flavour::FreeThreaded) {
            return Err(DebugOffsetsError::Mismatch(format!(
                "free_threaded is {free_threaded} in a {flavour} build"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::memory::fake::Blocks;

    fn blob(version: u64, free_threaded: u64, current_frame: u64) -> Blocks {
        let mut raw = vec![0u8; 64];
        raw[..8].copy_from_slice(COOKIE);
        raw[8..16].copy_from_slice(&version.to_le_bytes());
        raw[16..24].copy_from_slice(&free_threaded.to_le_bytes());
        raw[40..48].copy_from_slice(&current_frame.to_le_bytes());
        Blocks::at(0x1000, raw)
    }

    fn table() -> toml::Table {
        toml::from_str(
            "[thread]\ncurrent_frame = 72\n\n[debug_offsets]\nsize = 64\nfree_threaded = 16\n\"thread.current_frame\" = 40\n",
        )
        .unwrap()
    }

    fn v3_13() -> PythonVersion {
        PythonVersion::from_hex(0x030d12f0).unwrap()
    }

    #[test]
    fn a_field_moved_by_a_patch_release_is_followed() {
        let mut table = table();
        let applied = apply(
            &blob(0x030d12f0, 0, 80),
            0x1000,
            v3_13(),
            Flavour::Default,
            &mut table,
        )
        .unwrap();
        assert_eq!(applied.covered, 1);
        assert_eq!(
            applied.differences,
            vec![("thread.current_frame".to_string(), 72, 80)]
        );
        assert_eq!(table["thread"]["current_frame"].as_integer(), Some(80));
    }

    #[test]
    fn debug_offsets_of_another_build_are_refused() {
        let mut table = table();
        let wrong_minor = apply(
            &blob(0x030e00f0, 0, 80),
            0x1000,
            v3_13(),
            Flavour::Default,
            &mut table,
        );
        assert!(matches!(wrong_minor, Err(DebugOffsetsError::Mismatch(_))));
        let wrong_flavour = apply(
            &blob(0x030d12f0, 1, 80),
            0x1000,
            v3_13(),
            Flavour::Default,
            &mut table,
        );
        assert!(matches!(wrong_flavour, Err(DebugOffsetsError::Mismatch(_))));
        let garbage = apply(
            &blob(0x030d12f0, 0, u64::MAX),
            0x1000,
            v3_13(),
            Flavour::Default,
            &mut table,
        );
        assert!(matches!(garbage, Err(DebugOffsetsError::Mismatch(_))));
        assert_eq!(table["thread"]["current_frame"].as_integer(), Some(72));
    }

    #[test]
    fn tables_without_debug_offsets_are_left_alone() {
        let mut table: toml::Table = toml::from_str("[thread]\nframe = 24\n").unwrap();
        let result = apply(
            &blob(0x030d12f0, 0, 80),
            0x1000,
            v3_13(),
            Flavour::Default,
            &mut table,
        );
        assert_eq!(result, Err(DebugOffsetsError::NotDescribed));
    }
}
