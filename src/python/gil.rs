//! Which thread holds the GIL, and which threads wait for it.
//!
//! A thread waiting for the GIL sleeps in the kernel on a futex inside the GIL's locks
//! (its condition variable and mutex, or the `switch_*` pair the dropping thread waits
//! on): the kernel gives that futex's address (see [`crate::target::activity`]), and
//! [`GilReader::guards`] tells it from the futex of any other lock.

use super::layout::{require, require_symbol, Layout, MissingField};
use super::version::GilModel;
use crate::target::binary::{Binary, Region};
use crate::target::memory::{FieldReader, Memory, ReadError};

/// Reads the GIL holder with one version's layout.
#[derive(Debug, Clone)]
pub struct GilReader {
    location: Location,
    locked: u64,
    last_holder: u64,
    /// The offset of `enabled` in the GIL struct, in free-threaded builds.
    enabled: Option<u64>,
    locks: Locks,
}

/// The GIL of one interpreter at one tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GilState {
    /// The address of the GIL's state (`struct _gil_runtime_state`, 3.7+; the
    /// semaphore `interpreter_lock` points to, 2.7), which [`GilReader::guards`] takes;
    /// 0 where the version keeps it in statics (3.6) or it is not known.
    pub address: u64,
    /// The thread state holding it; `None` while it is free or not in force.
    pub holder: Option<u64>,
    /// Whether it is in force: always, but in a free-threaded build that has not turned
    /// it on (`PYTHON_GIL=1`, or an extension module that needs it) or is not
    /// importing an extension module (which turns it on until the module says it can
    /// do without).
    pub in_force: bool,
    /// Whether it is in force for good: always, but in a free-threaded build only once
    /// `PYTHON_GIL=1` or an extension module that needs it turned it on.
    pub for_good: bool,
}

/// Where the GIL's locks are.
#[derive(Debug, Clone)]
enum Locks {
    /// At [`GilState::address`], this many bytes long: the GIL struct (3.7+), or the
    /// semaphore that is 2.7's GIL.
    At(u64),
    /// In these statics (3.6).
    Statics(Vec<Region>),
    /// Not known: a stripped 2.7 or 3.6, or a table without the struct's size.
    Unknown,
}

/// `sizeof(sem_t)` on 64-bit Linux (glibc and musl alike): 2.7 allocates its GIL as
/// one, and waits for it with `sem_wait`, a futex wait inside it.
const SEMAPHORE_SIZE: u64 = 32;

#[derive(Debug, Clone, Copy)]
enum Location {
    /// The address of `_PyThreadState_Current`, and on 2.7 that of the static
    /// `interpreter_lock`, the pointer to the GIL's semaphore, where the symbol table
    /// has it.
    CurrentThread {
        current: u64,
        lock_pointer: Option<u64>,
    },
    /// The address of the GIL struct.
    Fixed(u64),
    /// The offset of the GIL pointer in the interpreter state.
    InterpreterPointer(u64),
}

impl GilReader {
    /// Set up from a layout. A free-threaded build's table gives the offset of the
    /// GIL's `enabled`, which the reader then checks.
    pub fn new(
        layout: &Layout,
        model: GilModel,
        binary: &Binary,
    ) -> Result<GilReader, MissingField> {
        let symbol = |name| require_symbol(binary, name);
        let location = match model {
            GilModel::CurrentThreadSymbol => Location::CurrentThread {
                current: symbol("_PyThreadState_Current")?,
                lock_pointer: binary.symbol("interpreter_lock").map(|s| s.address),
            },
            GilModel::InRuntime => {
                Location::Fixed(symbol("_PyRuntime")? + require(layout.runtime.gil, "runtime.gil")?)
            }
            GilModel::InterpreterPointer => Location::InterpreterPointer(require(
                layout.interpreter.ceval_gil,
                "interpreter.ceval_gil",
            )?),
        };
        let (locked, last_holder) = match model {
            GilModel::CurrentThreadSymbol => (0, 0),
            _ => (
                require(layout.gil.locked, "gil.locked")?,
                require(layout.gil.last_holder, "gil.last_holder")?,
            ),
        };
        let locks = match location {
            Location::CurrentThread { lock_pointer, .. } => match static_locks(binary) {
                statics if !statics.is_empty() => Locks::Statics(statics),
                _ if lock_pointer.is_some() => Locks::At(SEMAPHORE_SIZE),
                _ => Locks::Unknown,
            },
            _ => layout.gil.size.map_or(Locks::Unknown, Locks::At),
        };
        Ok(GilReader {
            location,
            locked,
            last_holder,
            enabled: layout.gil.enabled,
            locks,
        })
    }

    /// The GIL of interpreter `interp` now: where it is and which thread state holds it.
    pub fn read(&self, mem: &impl Memory, interp: u64) -> Result<GilState, ReadError> {
        let gil = match self.location {
            Location::CurrentThread {
                current,
                lock_pointer,
            } => {
                let holder = Some(mem.read_u64(current)?).filter(|&t| t != 0);
                let address = match lock_pointer {
                    Some(pointer) => mem.read_u64(pointer)?,
                    None => 0,
                };
                return Ok(GilState {
                    address,
                    holder,
                    in_force: true,
                    for_good: true,
                });
            }
            Location::Fixed(addr) => addr,
            Location::InterpreterPointer(offset) => mem.read_u64(interp.wrapping_add(offset))?,
        };
        let len = self
            .locked
            .max(self.last_holder)
            .max(self.enabled.unwrap_or(0))
            + 8;
        let mut buf = [0u8; 64];
        let buf = &mut buf[..(len as usize).min(64)];
        let state = mem.read_lent(gil, buf)?;
        // `enabled` counts the imports that turned it on for a while; INT_MAX is for good.
        let enabled = self.enabled.map(|enabled| state.u32_at(enabled));
        let in_force = enabled != Some(0);
        let for_good = enabled.is_none_or(|enabled| enabled == i32::MAX as u32);
        let holder = (in_force && state.u32_at(self.locked) != 0)
            .then(|| state.u64_at(self.last_holder))
            .filter(|&t| t != 0);
        Ok(GilState {
            address: gil,
            holder,
            in_force,
            for_good,
        })
    }

    /// Whether a thread asleep on the futex at `futex` waits for the GIL whose state is
    /// at `gil` ([`GilState::address`]): whether the futex lies in one of its locks.
    pub fn guards(&self, gil: u64, futex: u64) -> bool {
        let inside = |start: u64, size: u64| start <= futex && futex - start < size;
        match &self.locks {
            Locks::At(size) => gil != 0 && inside(gil, *size),
            Locks::Statics(regions) => regions.iter().any(|r| inside(r.address, r.size)),
            Locks::Unknown => false,
        }
    }
}

/// 3.6's GIL locks, statics of `ceval_gil.h` found through the symbol table; none where
/// it has no such symbols (2.7, or a stripped build).
fn static_locks(binary: &Binary) -> Vec<Region> {
    ["gil_cond", "gil_mutex", "switch_cond", "switch_mutex"]
        .into_iter()
        .filter_map(|name| binary.symbol(name))
        .filter(|symbol| symbol.size > 0)
        .map(|symbol| Region {
            address: symbol.address,
            size: symbol.size,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::memory::fake::Blocks;

    fn reader(locks: Locks) -> GilReader {
        GilReader {
            location: Location::Fixed(0x1000),
            locked: 16,
            last_holder: 8,
            enabled: None,
            locks,
        }
    }

    /// A GIL struct at 0x1000, as words.
    fn gil_words(words: [u64; 3]) -> Blocks {
        Blocks::at(0x1000, words.iter().flat_map(|w| w.to_le_bytes()).collect())
    }

    #[test]
    fn a_free_threaded_gil_is_held_only_while_turned_on() {
        // 3.14t: `enabled` at 0, `last_holder` at 8, `locked` at 16.
        let gil = GilReader {
            enabled: Some(0),
            ..reader(Locks::At(216))
        };
        // `PYTHON_GIL=1`: INT_MAX.
        let on = gil
            .read(&gil_words([i32::MAX as u64, 0x7000, 1]), 0)
            .unwrap();
        assert_eq!(
            on,
            GilState {
                address: 0x1000,
                holder: Some(0x7000),
                in_force: true,
                for_good: true,
            }
        );
        // On while two imports of extension modules run.
        let importing = gil.read(&gil_words([2, 0x7000, 1]), 0).unwrap();
        let seen = (importing.holder, importing.in_force, importing.for_good);
        assert_eq!(seen, (Some(0x7000), true, false));
        // Off, what the struct says of a holder is left from when it was on.
        let off = gil.read(&gil_words([0, 0x7000, 1]), 0).unwrap();
        assert_eq!(
            (off.holder, off.in_force, off.for_good),
            (None, false, false)
        );
        // A build with a GIL always has it in force.
        let always = reader(Locks::At(208)).read(&gil_words([0, 0x7000, 1]), 0);
        let always = always.unwrap();
        assert_eq!((always.holder, always.for_good), (Some(0x7000), true));
    }

    #[test]
    fn a_futex_inside_the_gil_struct_is_one_of_its_locks() {
        // 3.11: `cond` at 32, `mutex` at 80, the struct 208 bytes long.
        let gil = reader(Locks::At(208));
        assert!(gil.guards(0x1000, 0x1000 + 32 + 8));
        assert!(gil.guards(0x1000, 0x1000 + 80));
        assert!(!gil.guards(0x1000, 0x1000 + 208));
        assert!(!gil.guards(0x1000, 0xff8));
        // Another interpreter's GIL, or none known.
        assert!(!gil.guards(0x2000, 0x1000 + 32));
        assert!(!gil.guards(0, 32));
    }

    #[test]
    fn a_futex_in_a_static_lock_is_one_of_the_gils() {
        let statics = vec![
            Region {
                address: 0x2faae0,
                size: 48,
            },
            Region {
                address: 0x2faaa0,
                size: 40,
            },
        ];
        let gil = reader(Locks::Statics(statics));
        assert!(gil.guards(0, 0x2faae0 + 4));
        assert!(gil.guards(0, 0x2faaa0));
        // Between the two.
        assert!(!gil.guards(0, 0x2faac8));
        assert!(!reader(Locks::Unknown).guards(0x1000, 0x1000));
    }
}
