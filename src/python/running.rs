//! Which of a thread's 3.11+ frames runs, judged from one copy of them.
//!
//! A tick copies the thread's innermost-frame pointer a little before the page of frames
//! it points into (both in the same batch, but the kernel pins and copies one piece after
//! the other). A call or a return in between leaves the pointer stale, and 3.11+ makes
//! that hard to see: frames sit in slots of a per-thread stack and one that returns stays
//! in its slot, intact, until another call overwrites it. Walked from a stale pointer, a
//! stack either starts at a frame that has returned (read as if it still ran, at its last
//! instruction) or stops at a caller whose callee was pushed meanwhile. With a call every
//! microsecond, that was a third of the stacks or more.
//!
//! The page itself is copied at one instant, and each frame in it says something about
//! whether it still runs ([`RunMark`](super::version::RunMark)). From the pointer's
//! frame, the links between the copied frames then lead to the frame that ran when the
//! page was copied: down the pointer's chain past frames that have returned, up through
//! callees pushed since.

use smallvec::SmallVec;

use super::version::NULL_STACKREF;
use crate::target::memory::FieldReader;

/// How many calls, each from the frame before, may have been made between the two
/// copies (and are followed up from the pointer's chain).
const MAX_NEW_CALLS: usize = 4;

/// How many frames of the pointer's chain are looked at: returns made between the two
/// copies.
const MAX_RETURNS: usize = 8;

/// How far above a 3.14+ frame its callee's link is looked for: from a frame bigger
/// than this (128 words, its locals and stack included), a callee pushed since the
/// pointer was read is not found.
const MAX_FRAME_BYTES: usize = 1024;

/// The frame fields a [`RunMark`](super::version::RunMark) is read from, as offsets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunMarkField {
    /// [`RunMark::StacktopMinusOne`](super::version::RunMark::StacktopMinusOne): `stacktop`.
    Stacktop(u64),
    /// [`RunMark::FuncobjCleared`](super::version::RunMark::FuncobjCleared): `f_funcobj`.
    Funcobj(u64),
}

impl RunMarkField {
    /// The offset of the field.
    pub fn offset(self) -> u64 {
        match self {
            RunMarkField::Stacktop(offset) | RunMarkField::Funcobj(offset) => offset,
        }
    }
}

/// What a frame's own fields say about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FrameState {
    /// It runs (3.11–3.13 mark it).
    Running,
    /// It has returned (3.14+ mark it).
    Returned,
    /// The fields do not say.
    Unmarked,
}

/// A copy of the memory holding a thread's innermost frames, taken at one instant.
pub struct FramePage<'a> {
    /// Address of the first byte of `bytes`.
    pub start: u64,
    /// The copy.
    pub bytes: &'a [u8],
    /// Bytes of a frame that hold the fields read here.
    pub frame_len: usize,
    /// Offset of `previous`, the link to the caller's frame.
    pub previous: u64,
    /// Where the run mark is.
    pub mark: RunMarkField,
}

impl FramePage<'_> {
    /// The frame that ran when the page was copied, given `pointer`, the thread's
    /// innermost frame as copied before it. `pointer` when the page does not tell.
    pub fn running_frame(&self, pointer: u64) -> u64 {
        match self.mark {
            RunMarkField::Stacktop(_) => self.marked_running(pointer),
            RunMarkField::Funcobj(_) => self.newest_unreturned(pointer).unwrap_or(pointer),
        }
    }

    /// 3.11–3.13: the pointer's frame if it runs; else the highest frame marked running
    /// whose links lead into the pointer's chain within [`MAX_NEW_CALLS`] frames (one of
    /// its callers if the pointer's frame returned, a callee if it called on).
    fn marked_running(&self, pointer: u64) -> u64 {
        match self.state(pointer) {
            Some(FrameState::Running) | None => return pointer,
            Some(_) => {}
        }
        let chain = self.chain(pointer);
        let lowest = chain.iter().copied().min().unwrap_or(pointer);
        let first = lowest.max(self.start);
        let end = self.start + self.bytes.len() as u64;
        (first..end)
            .step_by(8)
            .filter(|&frame| self.state(frame) == Some(FrameState::Running))
            .filter(|&frame| self.links_into(frame, &chain))
            .max()
            .unwrap_or(pointer)
    }

    /// 3.14+: the first frame of the pointer's chain that has not returned, then up
    /// through callees that have not returned either. `None` when the page does not hold
    /// that frame, or [`MAX_RETURNS`] frames have returned.
    fn newest_unreturned(&self, pointer: u64) -> Option<u64> {
        let mut frame = pointer;
        let mut returned = 0;
        while self.state(frame)? == FrameState::Returned {
            returned += 1;
            if returned == MAX_RETURNS {
                return None;
            }
            frame = self.previous(frame)?;
        }
        for _ in 0..MAX_NEW_CALLS {
            match self.unreturned_callee(frame) {
                Some(callee) => frame = callee,
                None => break,
            }
        }
        Some(frame)
    }

    /// A frame above `caller` that links to it and has not returned. A callee goes
    /// where the thread's frame stack ended, just past its caller's frame, so the first
    /// frame above `caller` that links to it is in the callee's slot: the callee, or one
    /// that returned from an earlier call. (Before that slot lies the caller's own stack,
    /// which holds objects, not frame addresses, but for what an earlier, smaller frame
    /// in the same place may have left: then no callee is found.)
    fn unreturned_callee(&self, caller: u64) -> Option<u64> {
        let skip = usize::try_from(caller.checked_sub(self.start)?).ok()?;
        // Frames are 8-byte aligned: the candidates are whole words above the caller's.
        let first = skip + self.frame_len.next_multiple_of(8);
        let links = self.bytes.get(first + self.previous as usize..)?;
        let words = links.chunks_exact(8).take(MAX_FRAME_BYTES / 8);
        let position = words
            .map(|word| u64::from_le_bytes(word.try_into().expect("8 bytes")))
            .position(|link| link == caller)?;
        let callee = self.start + (first + 8 * position) as u64;
        (self.state(callee) == Some(FrameState::Unmarked)).then_some(callee)
    }

    /// The pointer's frame and its callers, as far as the page holds them.
    fn chain(&self, pointer: u64) -> SmallVec<[u64; MAX_RETURNS]> {
        let mut chain = SmallVec::new();
        let mut frame = pointer;
        while chain.len() < MAX_RETURNS && self.frame(frame).is_some() {
            chain.push(frame);
            frame = self.previous(frame).unwrap_or(0);
        }
        chain
    }

    /// Whether the links from `frame` reach one of `chain` within [`MAX_NEW_CALLS`]
    /// frames, each link going down the stack.
    fn links_into(&self, frame: u64, chain: &[u64]) -> bool {
        let mut frame = frame;
        for _ in 0..=MAX_NEW_CALLS {
            if chain.contains(&frame) {
                return true;
            }
            match self.previous(frame) {
                Some(link) if link < frame => frame = link,
                _ => return false,
            }
        }
        false
    }

    /// What the fields of the frame at `address` say, if the page holds them.
    fn state(&self, address: u64) -> Option<FrameState> {
        let frame = self.frame(address)?;
        Some(match self.mark {
            RunMarkField::Stacktop(offset) if frame.u32_at(offset) as i32 == -1 => {
                FrameState::Running
            }
            RunMarkField::Funcobj(offset) if frame.u64_at(offset) == NULL_STACKREF => {
                FrameState::Returned
            }
            _ => FrameState::Unmarked,
        })
    }

    fn previous(&self, address: u64) -> Option<u64> {
        Some(self.frame(address)?.u64_at(self.previous))
    }

    /// The fields of the frame at `address`, if the page holds them.
    fn frame(&self, address: u64) -> Option<&[u8]> {
        let skip = usize::try_from(address.checked_sub(self.start)?).ok()?;
        self.bytes.get(skip..skip.checked_add(self.frame_len)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const START: u64 = 0x7000_0000;
    /// 3.12's offsets: `previous` 8, `stacktop` 64; 3.14's: `f_funcobj` 16.
    const PREVIOUS: u64 = 8;
    const STACKTOP: RunMarkField = RunMarkField::Stacktop(64);
    const FUNCOBJ: RunMarkField = RunMarkField::Funcobj(16);

    /// A page of frames, each at `START + offset`.
    struct Page {
        bytes: Vec<u8>,
        mark: RunMarkField,
    }

    impl Page {
        fn new(mark: RunMarkField) -> Page {
            Page {
                bytes: vec![0; 4096],
                mark,
            }
        }

        fn put(&mut self, at: u64, value: u64) {
            let at = (at - START) as usize;
            self.bytes[at..at + 8].copy_from_slice(&value.to_le_bytes());
        }

        /// A frame at `offset` called by `caller` (an offset; `None` for the first),
        /// running (3.11–3.13 mark) or returned (3.14+ mark) or neither.
        fn frame(&mut self, offset: u64, caller: Option<u64>, state: FrameState) {
            let address = START + offset;
            self.put(address + PREVIOUS, caller.map_or(0, |c| START + c));
            match self.mark {
                RunMarkField::Stacktop(top) => {
                    let value = if state == FrameState::Running {
                        -1i32
                    } else {
                        3
                    };
                    let at = (address + top - START) as usize;
                    self.bytes[at..at + 4].copy_from_slice(&value.to_le_bytes());
                }
                RunMarkField::Funcobj(funcobj) => {
                    let function = 0x5000_0000 | 1;
                    let value = if state == FrameState::Returned {
                        NULL_STACKREF
                    } else {
                        function
                    };
                    self.put(address + funcobj, value);
                }
            }
        }

        fn running_frame(&self, pointer: u64) -> u64 {
            FramePage {
                start: START,
                bytes: &self.bytes,
                frame_len: 88,
                previous: PREVIOUS,
                mark: self.mark,
            }
            .running_frame(pointer)
        }
    }

    use FrameState::{Returned, Running, Unmarked};

    /// A page holding a chain of frames 200 bytes apart from offset 0, each called by
    /// the one before, in the given states.
    fn chain(mark: RunMarkField, states: &[FrameState]) -> Page {
        let mut page = Page::new(mark);
        for (i, &state) in (0u64..).zip(states) {
            page.frame(200 * i, i.checked_sub(1).map(|c| 200 * c), state);
        }
        page
    }

    /// The frame found to run, as an offset, when the pointer is at `pointer`.
    fn runs(page: &Page, pointer: u64) -> u64 {
        page.running_frame(START + pointer) - START
    }

    #[test]
    fn a_running_pointer_stands() {
        assert_eq!(runs(&chain(STACKTOP, &[Unmarked, Running]), 200), 200);
    }

    #[test]
    fn a_returned_frame_gives_way_to_its_running_caller() {
        let page = chain(STACKTOP, &[Unmarked, Running, Unmarked]);
        assert_eq!(runs(&page, 400), 200);
        let page = chain(FUNCOBJ, &[Unmarked, Unmarked, Returned]);
        assert_eq!(runs(&page, 400), 200);
    }

    #[test]
    fn a_caller_gives_way_to_callees_pushed_since() {
        let mut page = chain(STACKTOP, &[Unmarked, Unmarked, Unmarked, Running]);
        // A word equal to the caller's address left inside its own frame by an earlier,
        // smaller occupant of the slot: not a frame that runs.
        page.frame(300, Some(200), Unmarked);
        assert_eq!(runs(&page, 200), 600);
        // The last frame is an earlier call of the callee's, returned.
        let page = chain(FUNCOBJ, &[Unmarked, Unmarked, Unmarked, Unmarked, Returned]);
        assert_eq!(runs(&page, 200), 600);
    }

    #[test]
    fn callees_that_returned_are_left_out() {
        let page = chain(FUNCOBJ, &[Unmarked, Unmarked, Returned]);
        assert_eq!(runs(&page, 200), 200);
    }

    #[test]
    fn a_pointer_outside_the_page_stands() {
        let page = Page::new(STACKTOP);
        assert_eq!(page.running_frame(START - 4096), START - 4096);
        assert_eq!(page.running_frame(START + 4090), START + 4090);
    }
}
