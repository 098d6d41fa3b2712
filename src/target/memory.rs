//! Reading another process's memory with `process_vm_readv`.
//!
//! pyscry never writes to the target: this module has no write path at all. Reads go
//! straight from the target's address space into our buffers without stopping it.

use std::io::IoSliceMut;

use nix::sys::uio::{process_vm_readv, RemoteIoVec};
use nix::unistd::Pid;
use smallvec::SmallVec;

use super::prefetch::Phase;

/// Why a remote read failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    /// The address is not mapped in the target (or the read ran off a mapping).
    #[error("address {0:#x} is not readable in the target")]
    Unmapped(u64),
    /// The process no longer exists.
    #[error("the target process has exited")]
    Exited,
    /// The kernel refused access (ptrace rules).
    #[error("permission denied reading the target's memory")]
    PermissionDenied,
    /// Fewer bytes arrived than asked for.
    #[error("short read at {0:#x}")]
    Short(u64),
}

/// How many regions a batched read keeps inline, without allocating: more than one tick
/// of a few threads reads.
pub const INLINE_REGIONS: usize = 64;

/// The regions of one batched read, `(address, buffer)` each: a tick gathers them
/// anew for every batch, so they live on the stack unless there are very many.
pub type Regions<'a> = SmallVec<[(u64, &'a mut [u8]); INLINE_REGIONS]>;

/// Read access to the memory of some process.
///
/// A trait so that the Python walkers can be tested against captured memory as well as
/// a live process.
pub trait Memory {
    /// Fill `buf` with the bytes at `addr` in the target, or fail without partial data.
    fn read_into(&self, addr: u64, buf: &mut [u8]) -> Result<(), ReadError>;

    /// The `scratch.len()` bytes at `addr`: read into `scratch`, or lent from a copy the
    /// memory already holds (a tick's batch), which saves copying them once more.
    fn read_lent<'s>(&'s self, addr: u64, scratch: &'s mut [u8]) -> Result<&'s [u8], ReadError> {
        self.read_into(addr, scratch)?;
        Ok(scratch)
    }

    /// A copy the memory already holds (a tick's batch) of a region around the `len`
    /// bytes at `addr`: its start address and bytes. A walk over structures that sit
    /// close together (3.11+ frames, stacked in a chunk) then decodes the next ones
    /// from there without a call per structure. `None` when there is no such copy.
    fn lend_around(&self, _addr: u64, _len: usize) -> Option<(u64, &[u8])> {
        None
    }

    /// Fill each `(address, buffer)` region, in order, as far as possible; returns how
    /// many leading regions were read completely. A live process does this in one
    /// system call, so the cost is that of one read, not of `regions.len()`.
    fn read_regions(&self, regions: &mut [(u64, &mut [u8])]) -> usize {
        let mut done = 0;
        for (addr, buf) in regions.iter_mut() {
            if self.read_into(*addr, buf).is_err() {
                break;
            }
            done += 1;
        }
        done
    }

    /// Say which part of a sampling tick the reads that follow belong to. Only a
    /// [`TickMemory`](super::prefetch::TickMemory) cares; other memories ignore it.
    fn set_phase(&self, _phase: Phase) {}

    /// Read `len` bytes at `addr` into a new vector.
    fn read_vec(&self, addr: u64, len: usize) -> Result<Vec<u8>, ReadError> {
        let mut buf = vec![0; len];
        self.read_into(addr, &mut buf)?;
        Ok(buf)
    }

    /// Read a little-endian `u64` (a pointer, on x86_64).
    fn read_u64(&self, addr: u64) -> Result<u64, ReadError> {
        let mut buf = [0; 8];
        self.read_into(addr, &mut buf)?;
        Ok(u64::from_le_bytes(buf))
    }

    /// Read a little-endian `u32`.
    fn read_u32(&self, addr: u64) -> Result<u32, ReadError> {
        let mut buf = [0; 4];
        self.read_into(addr, &mut buf)?;
        Ok(u32::from_le_bytes(buf))
    }
}

/// The memory of a live process, read with `process_vm_readv`.
#[derive(Debug, Clone, Copy)]
pub struct ProcessMemory {
    pid: Pid,
}

impl ProcessMemory {
    /// Memory of process `pid`. Nothing is checked until the first read.
    pub fn new(pid: u32) -> ProcessMemory {
        ProcessMemory {
            pid: Pid::from_raw(pid as i32),
        }
    }
}

/// Most iovecs one `process_vm_readv` call takes (`IOV_MAX` on Linux).
const MAX_IOVECS: usize = 1024;

impl Memory for ProcessMemory {
    fn read_regions(&self, regions: &mut [(u64, &mut [u8])]) -> usize {
        let mut done = 0;
        for batch in regions.chunks_mut(MAX_IOVECS) {
            let remote: SmallVec<[RemoteIoVec; INLINE_REGIONS]> = batch
                .iter()
                .map(|(addr, buf)| RemoteIoVec {
                    base: *addr as usize,
                    len: buf.len(),
                })
                .collect();
            let mut local: SmallVec<[IoSliceMut; INLINE_REGIONS]> = batch
                .iter_mut()
                .map(|(_, buf)| IoSliceMut::new(buf))
                .collect();
            // The kernel stops at the first region it cannot read: count the regions
            // the returned byte count covers completely.
            let mut left = process_vm_readv(self.pid, &mut local, &remote).unwrap_or(0);
            drop(local);
            let complete = remote
                .iter()
                .take_while(|r| {
                    let whole = left >= r.len;
                    left = left.saturating_sub(r.len);
                    whole
                })
                .count();
            done += complete;
            if complete < batch.len() {
                break;
            }
        }
        done
    }

    fn read_into(&self, addr: u64, buf: &mut [u8]) -> Result<(), ReadError> {
        if buf.is_empty() {
            return Ok(());
        }
        let len = buf.len();
        let remote = [RemoteIoVec {
            base: addr as usize,
            len,
        }];
        let mut local = [IoSliceMut::new(buf)];
        match process_vm_readv(self.pid, &mut local, &remote) {
            Ok(n) if n == len => Ok(()),
            Ok(_) => Err(ReadError::Short(addr)),
            Err(nix::errno::Errno::ESRCH) => Err(ReadError::Exited),
            Err(nix::errno::Errno::EPERM) => Err(ReadError::PermissionDenied),
            Err(_) => Err(ReadError::Unmapped(addr)),
        }
    }
}

/// Little-endian field access in a buffer read from the target.
///
/// Reads past the end give zero rather than panicking: a layout offset that does not fit
/// the buffer is a bug we want to surface as "no data", never as a crash while a target
/// is being sampled.
pub trait FieldReader {
    /// The `u64` at `offset`.
    fn u64_at(&self, offset: u64) -> u64;
    /// The `u32` at `offset`.
    fn u32_at(&self, offset: u64) -> u32;
    /// The byte at `offset`.
    fn u8_at(&self, offset: u64) -> u8;
}

impl FieldReader for [u8] {
    fn u64_at(&self, offset: u64) -> u64 {
        le_bytes::<8>(self, offset).map_or(0, u64::from_le_bytes)
    }
    fn u32_at(&self, offset: u64) -> u32 {
        le_bytes::<4>(self, offset).map_or(0, u32::from_le_bytes)
    }
    fn u8_at(&self, offset: u64) -> u8 {
        le_bytes::<1>(self, offset).map_or(0, |b| b[0])
    }
}

fn le_bytes<const N: usize>(buf: &[u8], offset: u64) -> Option<[u8; N]> {
    let start = usize::try_from(offset).ok()?;
    buf.get(start..start.checked_add(N)?)?.try_into().ok()
}

/// Memory made of byte blocks at given addresses, for unit tests of readers.
#[cfg(test)]
pub mod fake {
    use super::{Memory, ReadError};

    /// Byte blocks at addresses; a read must fall inside one block.
    #[derive(Debug, Default)]
    pub struct Blocks(pub Vec<(u64, Vec<u8>)>);

    impl Blocks {
        /// One block of `bytes` at `address`.
        pub fn at(address: u64, bytes: Vec<u8>) -> Blocks {
            Blocks(vec![(address, bytes)])
        }

        /// Add a block of `bytes` at `address`.
        pub fn put(&mut self, address: u64, bytes: Vec<u8>) {
            self.0.push((address, bytes));
        }
    }

    impl Memory for Blocks {
        fn read_into(&self, addr: u64, buf: &mut [u8]) -> Result<(), ReadError> {
            for (start, bytes) in &self.0 {
                let Some(offset) = addr.checked_sub(*start) else {
                    continue;
                };
                if let Some(src) = bytes.get(offset as usize..offset as usize + buf.len()) {
                    buf.copy_from_slice(src);
                    return Ok(());
                }
            }
            Err(ReadError::Unmapped(addr))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_memory() {
        let value: u64 = 0x1122_3344_5566_7788;
        let mem = ProcessMemory::new(std::process::id());
        assert_eq!(mem.read_u64(&value as *const u64 as u64), Ok(value));
    }

    #[test]
    fn regions_are_read_up_to_the_first_unreadable_one() {
        let values: [u64; 3] = [1, 2, 3];
        let mem = ProcessMemory::new(std::process::id());
        let (mut a, mut b, mut c) = ([0u8; 8], [0u8; 8], [0u8; 8]);
        let addr = |i: usize| &values[i] as *const u64 as u64;
        let mut regions = [
            (addr(0), &mut a[..]),
            (addr(2), &mut b[..]),
            (8, &mut c[..]),
        ];
        assert_eq!(mem.read_regions(&mut regions), 2);
        assert_eq!((u64::from_le_bytes(a), u64::from_le_bytes(b)), (1, 3));
    }

    #[test]
    fn unmapped_address_is_an_error() {
        let mem = ProcessMemory::new(std::process::id());
        assert_eq!(mem.read_u64(8), Err(ReadError::Unmapped(8)));
    }

    #[test]
    fn field_reader_is_bounds_safe() {
        let buf = [1u8, 0, 0, 0, 0, 0, 0, 0, 2];
        assert_eq!(buf.u64_at(0), 1);
        assert_eq!(buf.u8_at(8), 2);
        assert_eq!(buf.u64_at(4), 0);
        assert_eq!(buf.u32_at(u64::MAX), 0);
    }
}
