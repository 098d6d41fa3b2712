//! Unwinding a stopped thread's native (C) stack from its registers, with each
//! module's DWARF call frame information, or its frame pointers where there is none.

use std::cell::RefCell;

use gimli::{
    CfaRule, EhFrame, EhFrameHdr, NativeEndian, Register, RegisterRule, UnwindContext,
    UnwindSection, X86_64,
};

use super::lines::{SourceFunction, SourceLine};
use super::module::{CallFrameInfo, Module};
use crate::target::memory::{Memory, ReadError};
use crate::target::pause::Registers;
use rustc_hash::FxHashMap;

/// Deepest native stack followed.
const MAX_FRAMES: usize = 512;

/// One native frame: where its code is, and what is there.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct NativeFrame {
    /// The instruction address: the program counter for the innermost frame, the
    /// return address minus one (inside the call) for the others.
    pub address: u64,
    /// The function symbol, when the module has one there.
    pub function: Option<String>,
    /// The file's name, e.g. `libc.so.6`; `None` outside any mapped file (JIT code).
    pub module: Option<String>,
    /// The source line, when the module has DWARF line information (or a separate
    /// debug file that has it).
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub source: Option<SourceLine>,
    /// Whether this is code inlined into the next (outer) frame's function: a call the
    /// compiler made part of its caller, with no stack frame of its own, at the same
    /// address and stack pointer as that frame.
    pub inlined: bool,
    /// The frame's stack pointer: its locals are between this and its caller's.
    #[serde(skip)]
    pub stack_pointer: u64,
}

/// Unwinds stacks against one process's modules.
pub struct Unwinder {
    modules: Vec<Module>,
    context: UnwindContext<usize>,
    /// What is known of each address looked up so far: stacks repeat from one sample
    /// to the next.
    addresses: FxHashMap<u64, KnownAddress>,
}

/// Most addresses kept; the cache starts again when it is full.
const MAX_ADDRESSES: usize = 1 << 16;

/// What is at one address of code, as unwinding and naming its frame need it.
#[derive(Debug, Clone)]
struct KnownAddress {
    /// How to undo the frame (`None`: no call frame information there).
    rule: Option<Rule>,
    /// The function: by symbol, else by its DWARF name.
    function: Option<String>,
    /// The module's file name.
    module: Option<String>,
    /// The source line.
    source: Option<SourceLine>,
    /// The functions inlined at the address, innermost first.
    inlined: Vec<SourceFunction>,
}

/// How to undo a frame: its call frame information at one address, as unwinding uses it.
#[derive(Debug, Clone, Copy)]
struct Rule {
    /// The canonical frame address (the caller's stack pointer): a register and an
    /// offset.
    cfa: (Register, i64),
    /// Where the return address is.
    return_address: Restore,
    /// Where the caller's base pointer is.
    base_pointer: Restore,
}

/// How a register of the caller is found.
#[derive(Debug, Clone, Copy)]
enum Restore {
    /// As in the callee.
    Unchanged,
    /// Saved at this offset from the canonical frame address.
    At(i64),
    /// The canonical frame address plus this offset.
    Value(i64),
    /// Not recoverable: for the return address, the outermost frame.
    Undefined,
}

impl Unwinder {
    /// An unwinder over `modules` (see [`Module::load_all`]).
    pub fn new(modules: Vec<Module>) -> Unwinder {
        Unwinder {
            modules,
            context: UnwindContext::new(),
            addresses: FxHashMap::default(),
        }
    }

    /// The native frames of a thread stopped with `registers`, innermost first.
    /// Unwinding stops, keeping what it has, where a frame cannot be undone: no call
    /// frame information and no plausible frame pointer, or an unreadable stack.
    pub fn unwind(&mut self, memory: &impl Memory, registers: Registers) -> Vec<NativeFrame> {
        let stack = StackPages::new(memory);
        let mut frames = Vec::new();
        let mut frame = registers;
        while frame.pc != 0 && frames.len() < MAX_FRAMES {
            // A caller's pc is a return address, which may already be past the end of
            // the calling function: look up the call instruction instead.
            let address = match frames.is_empty() {
                true => frame.pc,
                false => frame.pc - 1,
            };
            if self.addresses.len() >= MAX_ADDRESSES {
                self.addresses.clear();
            }
            let (modules, context) = (&self.modules, &mut self.context);
            let known = self
                .addresses
                .entry(address)
                .or_insert_with(|| look_up(modules, context, address));
            let calls = known
                .inlined
                .iter()
                .map(|call| (&call.name, &call.line, true));
            let own = (&known.function, &known.source, false);
            for (function, source, inlined) in calls.chain([own]) {
                frames.push(NativeFrame {
                    address,
                    function: function.clone(),
                    module: known.module.clone(),
                    source: source.clone(),
                    inlined,
                    stack_pointer: frame.sp,
                });
            }
            let caller = known
                .rule
                .and_then(|rule| rule.caller(frame, &stack))
                .or_else(|| caller_by_frame_pointer(frame, &stack));
            match caller {
                // The stack grows down: a caller's frame is above its callee's.
                Some(caller) if caller.sp > frame.sp => frame = caller,
                _ => break,
            }
        }
        frames
    }
}

/// What `modules` say of `address`.
fn look_up(modules: &[Module], context: &mut UnwindContext<usize>, address: u64) -> KnownAddress {
    let Some(module) = modules.iter().find(|m| m.contains(address)) else {
        return KnownAddress {
            rule: None,
            function: None,
            module: None,
            source: None,
            inlined: Vec::new(),
        };
    };
    let mut inlined = module.locate(address);
    let (dwarf_function, source) = inlined
        .pop()
        .map_or((None, None), |function| (function.name, function.line));
    let symbol = module.function(address).map(str::to_string);
    KnownAddress {
        rule: module
            .call_frame_info(address)
            .and_then(|info| rule_at(context, &info)),
        function: symbol.or(dwarf_function),
        module: Some(module.name().to_string()),
        source,
        inlined,
    }
}

/// The rule of the call frame information that covers `info.address`.
fn rule_at(context: &mut UnwindContext<usize>, info: &CallFrameInfo<'_>) -> Option<Rule> {
    let eh_frame = EhFrame::new(info.eh_frame, NativeEndian);
    let bases = &info.bases;
    let fde = match info.eh_frame_hdr {
        Some(hdr) => EhFrameHdr::new(hdr, NativeEndian)
            .parse(bases, 8)
            .ok()?
            .table()?
            .fde_for_address(&eh_frame, bases, info.address, EhFrame::cie_from_offset)
            .ok()?,
        None => eh_frame
            .fde_for_address(bases, info.address, EhFrame::cie_from_offset)
            .ok()?,
    };
    let row = fde
        .unwind_info_for_address(&eh_frame, bases, context, info.address)
        .ok()?;
    let cfa = match row.cfa() {
        CfaRule::RegisterAndOffset { register, offset } => (*register, *offset),
        // Expressions (PLT stubs, signal frames) are not evaluated.
        CfaRule::Expression(_) => return None,
    };
    let restore = |register: Register| match row.register(register) {
        RegisterRule::Undefined => Some(Restore::Undefined),
        RegisterRule::SameValue => Some(Restore::Unchanged),
        RegisterRule::Offset(offset) => Some(Restore::At(offset)),
        RegisterRule::ValOffset(offset) => Some(Restore::Value(offset)),
        _ => None,
    };
    Some(Rule {
        cfa,
        return_address: restore(X86_64::RA)?,
        base_pointer: restore(X86_64::RBP)?,
    })
}

impl Rule {
    /// The caller of `frame`, whose stack is `stack`.
    fn caller(self, frame: Registers, stack: &impl Memory) -> Option<Registers> {
        let cfa = match self.cfa.0 {
            X86_64::RSP => frame.sp,
            X86_64::RBP => frame.bp,
            _ => return None,
        }
        .wrapping_add_signed(self.cfa.1);
        let restore = |restore: Restore, unchanged: u64| match restore {
            Restore::Unchanged | Restore::Undefined => Some(unchanged),
            Restore::At(offset) => stack.read_u64(cfa.wrapping_add_signed(offset)).ok(),
            Restore::Value(offset) => Some(cfa.wrapping_add_signed(offset)),
        };
        Some(Registers {
            pc: restore(self.return_address, 0)?,
            sp: cfa,
            bp: restore(self.base_pointer, frame.bp)?,
        })
    }
}

/// The caller of `frame` by the frame-pointer convention (`push rbp; mov rbp, rsp`),
/// when its base pointer points into the stack above it.
fn caller_by_frame_pointer(frame: Registers, stack: &impl Memory) -> Option<Registers> {
    if frame.bp <= frame.sp || frame.bp % 8 != 0 || frame.bp - frame.sp > 1 << 24 {
        return None;
    }
    Some(Registers {
        pc: stack.read_u64(frame.bp.checked_add(8)?).ok()?,
        sp: frame.bp.checked_add(16)?,
        bp: stack.read_u64(frame.bp).ok()?,
    })
}

/// Bytes in a page of the stack as [`StackPages`] reads it.
const PAGE: u64 = 4096;

/// A thread's stack as one unwinding reads it: a page at a time, each page read from
/// the target once, where a word at a time would cost a system call per word.
struct StackPages<'m, M: Memory> {
    memory: &'m M,
    pages: RefCell<Vec<(u64, Box<[u8]>)>>,
}

impl<'m, M: Memory> StackPages<'m, M> {
    fn new(memory: &'m M) -> StackPages<'m, M> {
        StackPages {
            memory,
            pages: RefCell::new(Vec::new()),
        }
    }
}

impl<M: Memory> Memory for StackPages<'_, M> {
    fn read_into(&self, addr: u64, buf: &mut [u8]) -> Result<(), ReadError> {
        let page = addr & !(PAGE - 1);
        let offset = (addr - page) as usize;
        if offset + buf.len() > PAGE as usize {
            return self.memory.read_into(addr, buf);
        }
        let mut pages = self.pages.borrow_mut();
        let index = match pages.iter().position(|(start, _)| *start == page) {
            Some(index) => index,
            None => {
                let mut bytes = vec![0; PAGE as usize];
                // A page only partly readable is read word by word.
                if self.memory.read_into(page, &mut bytes).is_err() {
                    return self.memory.read_into(addr, buf);
                }
                pages.push((page, bytes.into()));
                pages.len() - 1
            }
        };
        buf.copy_from_slice(&pages[index].1[offset..offset + buf.len()]);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::memory::fake::Blocks;

    /// A stack of 2 pages at 0x10000 whose words are their own addresses.
    fn addressed_words() -> Blocks {
        let words = (0x10000u64..0x12000).step_by(8);
        Blocks::at(0x10000, words.flat_map(u64::to_le_bytes).collect())
    }

    #[test]
    fn stack_pages_read_within_and_across_pages() {
        let memory = addressed_words();
        let stack = StackPages::new(&memory);
        for address in [0x10ff8, 0x10000, 0x11000, 0x10008] {
            assert_eq!(stack.read_u64(address).unwrap(), address);
        }
        // Across the boundary: the high half of one word (0, the addresses are below
        // 2^32) and the low half of the next.
        let across = stack.read_u64(0x10ffc).unwrap();
        assert_eq!(across, 0x11000 << 32);
        assert_eq!(stack.pages.borrow().len(), 2);
        assert!(stack.read_u64(0x12000).is_err());
    }

    #[test]
    fn frames_without_call_frame_information_follow_frame_pointers() {
        // Three frames linked by their saved base pointers; the outermost's is 0.
        let mut stack = vec![0u8; 0x100];
        let mut put = |address: u64, value: u64| {
            let at = (address - 0x20000) as usize;
            stack[at..at + 8].copy_from_slice(&value.to_le_bytes());
        };
        put(0x20010, 0x20040); // first frame: saved rbp
        put(0x20018, 0x5001); // and its return address
        put(0x20040, 0x20080);
        put(0x20048, 0x6001);
        put(0x20080, 0);
        put(0x20088, 0);
        let memory = Blocks::at(0x20000, stack);
        let registers = Registers {
            pc: 0x4000,
            sp: 0x20000,
            bp: 0x20010,
        };
        let frames = Unwinder::new(Vec::new()).unwind(&memory, registers);
        let addresses: Vec<u64> = frames.iter().map(|f| f.address).collect();
        assert_eq!(addresses, [0x4000, 0x5000, 0x6000]);
        assert!(frames
            .iter()
            .all(|f| f.module.is_none() && f.function.is_none()));
    }
}
