//! Unwinding a stopped thread's native (C) stack from its registers, with each
//! module's DWARF call frame information, or its frame pointers where there is none.

use gimli::{
    CfaRule, EhFrame, EhFrameHdr, NativeEndian, Register, RegisterRule, UnwindContext,
    UnwindSection, X86_64,
};

use super::module::{CallFrameInfo, Module};
use crate::target::memory::Memory;
use crate::target::pause::Registers;

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
    /// The frame's stack pointer: its locals are between this and its caller's.
    #[serde(skip)]
    pub stack_pointer: u64,
}

/// Unwinds stacks against one process's modules.
pub struct Unwinder {
    modules: Vec<Module>,
    context: UnwindContext<usize>,
}

impl Unwinder {
    /// An unwinder over `modules` (see [`Module::load_all`]).
    pub fn new(modules: Vec<Module>) -> Unwinder {
        Unwinder {
            modules,
            context: UnwindContext::new(),
        }
    }

    /// The native frames of a thread stopped with `registers`, innermost first.
    /// Unwinding stops, keeping what it has, where a frame cannot be undone: no call
    /// frame information and no plausible frame pointer, or an unreadable stack.
    pub fn unwind(&mut self, memory: &impl Memory, registers: Registers) -> Vec<NativeFrame> {
        let mut frames = Vec::new();
        let mut frame = registers;
        while frame.pc != 0 && frames.len() < MAX_FRAMES {
            // A caller's pc is a return address, which may already be past the end of
            // the calling function: look up the call instruction instead.
            let address = match frames.is_empty() {
                true => frame.pc,
                false => frame.pc - 1,
            };
            let module = self.modules.iter().find(|m| m.contains(address));
            frames.push(NativeFrame {
                address,
                function: module.and_then(|m| m.function(address)).map(str::to_string),
                module: module.map(|m| m.name().to_string()),
                stack_pointer: frame.sp,
            });
            let info = module.and_then(|m| m.call_frame_info(address));
            let caller = match info {
                Some(info) => match caller_by_cfi(&mut self.context, &info, frame, memory) {
                    Some(caller) => Some(caller),
                    None => caller_by_frame_pointer(frame, memory),
                },
                None => caller_by_frame_pointer(frame, memory),
            };
            match caller {
                // The stack grows down: a caller's frame is above its callee's.
                Some(caller) if caller.sp > frame.sp => frame = caller,
                _ => break,
            }
        }
        frames
    }
}

/// The caller of `frame`, by the call frame information that covers its pc.
fn caller_by_cfi(
    context: &mut UnwindContext<usize>,
    info: &CallFrameInfo<'_>,
    frame: Registers,
    memory: &impl Memory,
) -> Option<Registers> {
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
    let register = |register: Register| match register {
        X86_64::RSP => Some(frame.sp),
        X86_64::RBP => Some(frame.bp),
        _ => None,
    };
    let cfa = match row.cfa() {
        CfaRule::RegisterAndOffset {
            register: r,
            offset,
        } => register(*r)?.wrapping_add_signed(*offset),
        // Expressions (PLT stubs, signal frames) are not evaluated.
        CfaRule::Expression(_) => return None,
    };
    let restore = |register: Register, unchanged: u64| match row.register(register) {
        RegisterRule::Undefined | RegisterRule::SameValue => Some(unchanged),
        RegisterRule::Offset(offset) => memory.read_u64(cfa.wrapping_add_signed(offset)).ok(),
        RegisterRule::ValOffset(offset) => Some(cfa.wrapping_add_signed(offset)),
        _ => None,
    };
    let pc = match row.register(X86_64::RA) {
        RegisterRule::Undefined => 0,
        _ => restore(X86_64::RA, 0)?,
    };
    Some(Registers {
        pc,
        sp: cfa,
        bp: restore(X86_64::RBP, frame.bp)?,
    })
}

/// The caller of `frame` by the frame-pointer convention (`push rbp; mov rbp, rsp`),
/// when its base pointer points into the stack above it.
fn caller_by_frame_pointer(frame: Registers, memory: &impl Memory) -> Option<Registers> {
    if frame.bp <= frame.sp || frame.bp % 8 != 0 || frame.bp - frame.sp > 1 << 24 {
        return None;
    }
    Some(Registers {
        pc: memory.read_u64(frame.bp.checked_add(8)?).ok()?,
        sp: frame.bp.checked_add(16)?,
        bp: memory.read_u64(frame.bp).ok()?,
    })
}
