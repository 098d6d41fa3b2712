//! Reading what a tick needs from the target in one system call.
//!
//! Successive ticks read mostly the same places: the interpreter and thread states, the
//! frames of stacks that changed little, the headers of the code objects those frames
//! run. A [`Prefetcher`] remembers which regions one tick read and, at the start of the
//! next, reads them all again with one batched `process_vm_readv`. During the tick a
//! [`TickMemory`] answers reads that fall inside those regions from that copy, sends
//! the others to the process, and remembers both for the next tick.
//!
//! Reads are tagged with the [`Phase`] of the tick they belong to, and the batch reads
//! the phases in order: what the thread list needs, then the frames, then the code
//! object headers. The copy thus keeps the order of dependent reads (a frame is read
//! after the link that led to it, a code header after the frame that holds the code),
//! and [`TickMemory`] stops serving a phase from the copy as soon as something it
//! depends on had to be read live, i.e. later than the copy. A stack read entirely from
//! the copy was read within one system call: [`TickMemory::stack_from_copy`] tells the
//! sampler so.

use std::cell::{Cell, RefCell};

use smallvec::SmallVec;

use super::memory::{Memory, ReadError, Regions};

/// Which part of a tick a read belongs to. The batch reads the phases in this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// The interpreter and thread lists, the GIL holder, each thread's innermost frame.
    Threads = 0,
    /// The frames of a stack.
    Frames = 1,
    /// The headers of the code objects those frames run.
    Code = 2,
}

const PHASES: usize = 3;

/// The size of a page: reading more of a page that is read anyway costs only the copy.
const PAGE: u64 = 4096;

/// Regions of one phase closer than this are read as one. The kernel charges per piece
/// (it looks up and pins the pages of each piece separately, whether pieces share a
/// page or not) about as much as per page (about half a microsecond each here, see
/// `benches/syscalls.c`); a gap shorter than a page adds at most one page to the read
/// and saves a piece.
const MERGE_GAP: u64 = PAGE;

/// Most bytes one tick prefetches; regions past this are read when asked for, one
/// system call each. Enough for a few thousand threads' stacks (500 threads take
/// 1.6 MB on 3.10, 2.4 MB on 3.12 with their frames' pages to the end): at 1 MiB, 500
/// threads already overflowed it, and a tick took about three times as long.
const MAX_PREFETCH: usize = 16 << 20;

/// Every this many ticks, the plan is rebuilt from exactly what the tick read, so that
/// regions no longer needed (a thread that ended, a stack that got shallower) stop
/// being read. The other ticks note only which planned regions served a read, not each
/// read: a tick that read something live makes a plan of those regions and what it read
/// live, one that did not keeps the plan.
const REPLAN_EVERY: u32 = 64;

/// How many regions that have become unreadable the batch skips (one extra system call
/// each) before giving up on the rest of it.
const MAX_SKIPS: usize = 4;

/// How many regions of one [`TickMemory::read_regions`] call may miss the copy before
/// their list is moved to the heap.
const INLINE_MISSES: usize = 16;

/// A region of the target read in the batch, and where its bytes are in the copy.
#[derive(Debug, Clone)]
struct Span {
    address: u64,
    len: usize,
    offset: usize,
    readable: bool,
    /// Whether a read of this tick was served from it.
    served: Cell<bool>,
}

/// What to read at the start of each tick, learnt from the tick before.
#[derive(Debug, Default)]
pub struct Prefetcher {
    /// Per phase: regions sorted by address, not overlapping.
    plan: [Vec<(u64, usize)>; PHASES],
    /// Ticks since the plan was last rebuilt from every read.
    age: u32,
    /// Per phase: whether its regions are extended to the end of their page.
    to_page_end: [bool; PHASES],
    /// The previous tick's buffers, kept to reuse their allocations.
    spare: Buffers,
}

/// The allocations a tick needs, handed from one tick to the next.
#[derive(Debug, Default)]
struct Buffers {
    bytes: Vec<u8>,
    spans: [Vec<Span>; PHASES],
    used: [Vec<(u64, usize)>; PHASES],
}

impl Prefetcher {
    /// A prefetcher with nothing planned: the first tick reads everything live.
    pub fn new() -> Prefetcher {
        Prefetcher::default()
    }

    /// Read the rest of the page after each region of the frame phase, where frames
    /// sit in a stack that grows upwards (3.11+): a call made since the plan was made
    /// then usually lands in the copy as well, so that a stack whose top keeps changing
    /// is still read in the one batch.
    pub fn with_frames_to_page_end(mut self) -> Prefetcher {
        self.to_page_end[Phase::Frames as usize] = true;
        self
    }

    /// Read the planned regions from `live` in one batch and start a tick.
    pub fn begin<'a, M: Memory>(&mut self, live: &'a M) -> TickMemory<'a, M> {
        let Buffers {
            mut bytes,
            mut spans,
            mut used,
        } = std::mem::take(&mut self.spare);
        let total = self.plan.iter().flatten().map(|&(_, len)| len).sum();
        bytes.resize(total, 0);
        spans.iter_mut().for_each(Vec::clear);
        used.iter_mut().for_each(Vec::clear);
        let mut offset = 0;
        for (phase, plan) in self.plan.iter().enumerate() {
            for &(address, len) in plan {
                spans[phase].push(Span {
                    address,
                    len,
                    offset,
                    readable: true,
                    served: Cell::new(false),
                });
                offset += len;
            }
        }
        read_batch(live, &mut bytes, &mut spans);
        TickMemory {
            live,
            bytes,
            spans,
            phase: Cell::new(Phase::Threads),
            record_every_read: self.age + 1 >= REPLAN_EVERY,
            used: RefCell::new(used),
            misses: Cell::new([0; PHASES]),
            misses_at_stack: Cell::new([0; PHASES]),
            hints: Default::default(),
        }
    }

    /// End a tick: if it had to read anything live, or the plan is due for renewal, the
    /// regions it read become the next tick's plan.
    pub fn finish<M: Memory>(&mut self, tick: TickMemory<'_, M>) {
        self.age += 1;
        let replan = tick.total_misses() > 0 || tick.record_every_read;
        let mut used = tick.used.into_inner();
        if replan {
            if tick.record_every_read {
                self.age = 0;
            } else {
                for (used, spans) in used.iter_mut().zip(&tick.spans) {
                    let served = spans.iter().filter(|span| span.served.get());
                    used.extend(served.map(|span| (span.address, span.len)));
                }
            }
            let mut budget = MAX_PREFETCH;
            for ((plan, used), &to_page_end) in
                self.plan.iter_mut().zip(&mut used).zip(&self.to_page_end)
            {
                if to_page_end {
                    for (address, len) in used.iter_mut() {
                        let end = *address + *len as u64;
                        *len = (end.next_multiple_of(PAGE) - *address) as usize;
                    }
                }
                used.sort_unstable();
                plan.clear();
                merge_into(plan, used, &mut budget);
            }
        }
        self.spare = Buffers {
            bytes: tick.bytes,
            spans: tick.spans,
            used,
        };
    }
}

/// Append the sorted `regions` to `plan`, merging those less than [`MERGE_GAP`] apart,
/// while the total stays within `budget` bytes.
fn merge_into(plan: &mut Vec<(u64, usize)>, regions: &[(u64, usize)], budget: &mut usize) {
    for &(address, len) in regions {
        let end = address + len as u64;
        match plan.last_mut() {
            Some((start, span_len)) if address <= *start + *span_len as u64 + MERGE_GAP => {
                let grown = (end.max(*start + *span_len as u64) - *start) as usize;
                *budget = budget.saturating_sub(grown - *span_len);
                *span_len = grown;
            }
            _ if len <= *budget => {
                *budget -= len;
                plan.push((address, len));
            }
            _ => {}
        }
    }
}

/// Fill `spans` from `live`, in order, in as few calls as possible: a region that can no
/// longer be read (freed memory) is marked and skipped, up to [`MAX_SKIPS`] times.
fn read_batch<M: Memory>(live: &M, bytes: &mut [u8], spans: &mut [Vec<Span>; PHASES]) {
    let mut regions = Regions::new();
    let mut rest = bytes;
    for span in spans.iter().flatten() {
        let (head, tail) = rest.split_at_mut(span.len);
        regions.push((span.address, head));
        rest = tail;
    }
    // The regions skipped, and where the batch gave up on the rest, if it did.
    let mut skipped = SmallVec::<[usize; MAX_SKIPS]>::new();
    let mut gave_up_at = regions.len();
    let mut done = 0;
    while done < regions.len() {
        done += live.read_regions(&mut regions[done..]);
        if done < regions.len() {
            if skipped.len() == MAX_SKIPS {
                gave_up_at = done;
                break;
            }
            skipped.push(done);
            done += 1;
        }
    }
    for (index, span) in spans.iter_mut().flatten().enumerate() {
        span.readable = index < gave_up_at && !skipped.contains(&index);
    }
}

/// The target's memory during one tick: reads inside the regions prefetched for their
/// phase come from the batch, the others from the process.
pub struct TickMemory<'a, M: Memory> {
    live: &'a M,
    bytes: Vec<u8>,
    spans: [Vec<Span>; PHASES],
    phase: Cell<Phase>,
    /// Whether `used` gets every read, or only those that went to the process.
    record_every_read: bool,
    /// Successful reads of this tick, per phase: `(address, length)`.
    used: RefCell<[Vec<(u64, usize)>; PHASES]>,
    /// Reads that went to the process, per phase.
    misses: Cell<[u64; PHASES]>,
    /// Misses per phase when the current stack's first phase began.
    misses_at_stack: Cell<[u64; PHASES]>,
    /// Per phase, the index of the span that served the last read.
    hints: [Cell<usize>; PHASES],
}

impl<'a, M: Memory> TickMemory<'a, M> {
    /// The process itself, for reads that must be fresh or are not worth prefetching.
    pub fn live(&self) -> &'a M {
        self.live
    }

    /// Read the planned regions again, now, in one batch as at the start of the tick:
    /// for a stack whose read from the copy was torn, another look at the same places
    /// within one system call.
    pub fn refresh(&mut self) {
        for span in self.spans.iter_mut().flatten() {
            span.readable = true;
        }
        read_batch(self.live, &mut self.bytes, &mut self.spans);
    }

    /// Whether the current stack's thread state and frames all came from the copy, so
    /// that they were read within one system call, in the order they link up.
    pub fn stack_from_copy(&self) -> bool {
        let misses = self.misses.get();
        let frames = Phase::Frames as usize;
        misses[Phase::Threads as usize] == 0 && misses[frames] == self.misses_at_stack.get()[frames]
    }

    /// Whether reads of the current phase may come from the copy. The copy of a phase
    /// is older than anything read live in an earlier phase, so it is trusted only while
    /// what it depends on came from the copy too: the thread list for the frames, and the
    /// current stack's frames as well for the code headers (a header from before its
    /// frame was read may describe a code object freed since).
    fn copy_usable(&self) -> bool {
        match self.phase.get() {
            Phase::Threads => true,
            Phase::Frames => self.misses.get()[Phase::Threads as usize] == 0,
            Phase::Code => self.stack_from_copy(),
        }
    }

    fn total_misses(&self) -> u64 {
        self.misses.get().iter().sum()
    }

    /// The copy of `len` bytes at `address`, if the current phase's batch holds them.
    fn cached(&self, address: u64, len: usize) -> Option<&[u8]> {
        let span = self.span_holding(address, len)?;
        let start = span.offset + (address - span.address) as usize;
        Some(&self.bytes[start..start + len])
    }

    /// The region of the current phase's batch that holds the `len` bytes at `address`,
    /// if the copy may serve them; marked as having served a read.
    fn span_holding(&self, address: u64, len: usize) -> Option<&Span> {
        if !self.copy_usable() {
            return None;
        }
        let phase = self.phase.get() as usize;
        let spans = &self.spans[phase];
        // Reads come in runs over the same span (the frames of one stack): try the span
        // of the previous hit first.
        let hint = self.hints[phase].get();
        let index = match spans.get(hint) {
            Some(s) if s.address <= address && address < s.address + s.len as u64 => hint,
            _ => {
                let index = spans
                    .partition_point(|s| s.address <= address)
                    .checked_sub(1)?;
                self.hints[phase].set(index);
                index
            }
        };
        let span = &spans[index];
        let skip = (address - span.address) as usize;
        if !span.readable || skip + len > span.len {
            return None;
        }
        span.served.set(true);
        Some(span)
    }

    /// Note a read for the next plan: one that went to the process, or any if the tick
    /// records every read.
    fn record(&self, address: u64, len: usize, live: bool) {
        if live || self.record_every_read {
            self.used.borrow_mut()[self.phase.get() as usize].push((address, len));
        }
    }

    fn count_miss(&self) {
        let mut misses = self.misses.get();
        misses[self.phase.get() as usize] += 1;
        self.misses.set(misses);
    }

    /// The copy of `len` bytes at `address`, noted for the next plan, if the batch
    /// holds it for the current phase.
    fn served_copy(&self, address: u64, len: usize) -> Option<&[u8]> {
        let copy = self.cached(address, len)?;
        self.record(address, len, false);
        Some(copy)
    }

    /// Read `buf` from the process, noting it for the next plan.
    fn read_live(&self, address: u64, buf: &mut [u8]) -> Result<(), ReadError> {
        self.count_miss();
        self.live.read_into(address, buf)?;
        self.record(address, buf.len(), true);
        Ok(())
    }
}

impl<M: Memory> Memory for TickMemory<'_, M> {
    /// Tag the reads that follow with `phase`. Call with [`Phase::Frames`] at the start
    /// of each stack, then with the later phases in order.
    fn set_phase(&self, phase: Phase) {
        if phase == Phase::Frames {
            self.misses_at_stack.set(self.misses.get());
        }
        self.phase.set(phase);
    }

    fn read_into(&self, addr: u64, buf: &mut [u8]) -> Result<(), ReadError> {
        match self.served_copy(addr, buf.len()) {
            Some(copy) => buf.copy_from_slice(copy),
            None => self.read_live(addr, buf)?,
        }
        Ok(())
    }

    fn read_lent<'s>(&'s self, addr: u64, scratch: &'s mut [u8]) -> Result<&'s [u8], ReadError> {
        match self.served_copy(addr, scratch.len()) {
            Some(copy) => Ok(copy),
            None => {
                self.read_live(addr, scratch)?;
                Ok(scratch)
            }
        }
    }

    /// The whole batch region around the bytes, but not on the ticks that note every
    /// read for the next plan: reads served from a lent region are not noted one by one.
    fn lend_around(&self, addr: u64, len: usize) -> Option<(u64, &[u8])> {
        if self.record_every_read {
            return None;
        }
        let span = self.span_holding(addr, len)?;
        Some((
            span.address,
            &self.bytes[span.offset..span.offset + span.len],
        ))
    }

    fn read_regions(&self, regions: &mut [(u64, &mut [u8])]) -> usize {
        // Serve what the copy holds; read the rest from the process in one call.
        let count = regions.len();
        let mut missed = SmallVec::<[usize; INLINE_MISSES]>::new();
        let mut live = Regions::new();
        for (index, (address, buf)) in regions.iter_mut().enumerate() {
            match self.cached(*address, buf.len()) {
                Some(copy) => buf.copy_from_slice(copy),
                None => {
                    missed.push(index);
                    live.push((*address, &mut **buf));
                }
            }
        }
        let mut done = count;
        if !live.is_empty() {
            self.count_miss();
            let read = self.live.read_regions(&mut live);
            if let Some(&first_failed) = missed.get(read) {
                done = first_failed;
            }
        }
        drop(live);
        let mut missed = missed.iter().peekable();
        for (index, (address, buf)) in regions[..done].iter().enumerate() {
            let live = missed.next_if_eq(&&index).is_some();
            self.record(*address, buf.len(), live);
        }
        done
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Own memory, counting the calls that reach it.
    struct Counting {
        calls: Cell<u32>,
    }

    impl Counting {
        fn new() -> Counting {
            Counting {
                calls: Cell::new(0),
            }
        }
    }

    impl Memory for Counting {
        fn read_into(&self, addr: u64, buf: &mut [u8]) -> Result<(), ReadError> {
            self.calls.set(self.calls.get() + 1);
            crate::target::memory::ProcessMemory::new(std::process::id()).read_into(addr, buf)
        }

        fn read_regions(&self, regions: &mut [(u64, &mut [u8])]) -> usize {
            self.calls.set(self.calls.get() + 1);
            crate::target::memory::ProcessMemory::new(std::process::id()).read_regions(regions)
        }
    }

    fn addr<T>(value: &T) -> u64 {
        value as *const T as u64
    }

    #[test]
    fn a_second_tick_reads_the_same_regions_in_one_call() {
        let values = Box::new([7u64, 8, 9]);
        let other = Box::new(11u64);
        let live = Counting::new();
        let mut prefetcher = Prefetcher::new();
        for round in 0..3 {
            live.calls.set(0);
            let tick = prefetcher.begin(&live);
            assert_eq!(tick.read_u64(addr(&values[0])), Ok(7));
            tick.set_phase(Phase::Frames);
            assert_eq!(tick.read_u64(addr(&values[2])), Ok(9));
            assert_eq!(tick.read_u64(addr(&*other)), Ok(11));
            prefetcher.finish(tick);
            // First tick: three live reads. Then: the batch only.
            assert_eq!(live.calls.get(), if round == 0 { 3 } else { 1 });
        }
    }

    #[test]
    fn the_stacks_of_a_thousand_threads_are_read_in_one_batch() {
        // 1000 stacks of 2 KiB, 8 KiB apart: 2 MiB in 1000 pieces.
        const STACKS: usize = 1000;
        const STACK: usize = 2048;
        const STRIDE: usize = 8192;
        let memory = vec![7u8; STACKS * STRIDE];
        let live = Counting::new();
        let mut prefetcher = Prefetcher::new();
        let mut buf = vec![0u8; STACK];
        for round in 0..2 {
            live.calls.set(0);
            let tick = prefetcher.begin(&live);
            tick.set_phase(Phase::Frames);
            for stack in 0..STACKS {
                let address = memory.as_ptr() as u64 + (stack * STRIDE) as u64;
                tick.read_into(address, &mut buf).unwrap();
                assert!(buf.iter().all(|&b| b == 7));
            }
            prefetcher.finish(tick);
            if round == 1 {
                assert_eq!(live.calls.get(), 1, "the batch only");
            }
        }
    }

    #[test]
    fn values_come_from_the_batch_and_new_regions_from_the_process() {
        let mut value = Box::new(1u64);
        let fresh = Box::new(2u64);
        let live = Counting::new();
        let mut prefetcher = Prefetcher::new();
        let tick = prefetcher.begin(&live);
        tick.set_phase(Phase::Frames);
        tick.read_u64(addr(&*value)).unwrap();
        prefetcher.finish(tick);
        *value = 5;
        let tick = prefetcher.begin(&live);
        tick.set_phase(Phase::Frames);
        // The batch was read after the change; a region not in it is read live.
        assert_eq!(tick.read_u64(addr(&*value)), Ok(5));
        assert_eq!(tick.read_u64(addr(&*fresh)), Ok(2));
        assert_eq!(tick.misses.get()[Phase::Frames as usize], 1);
    }

    #[test]
    fn a_planned_region_is_lent_whole_except_when_every_read_is_noted() {
        let frames = Box::new([1u64, 2, 3, 4]);
        let thread = Box::new(5u64);
        let new_thread = Box::new(6u64);
        let live = Counting::new();
        let mut prefetcher = Prefetcher::new();
        let tick = prefetcher.begin(&live);
        tick.read_u64(addr(&*thread)).unwrap();
        tick.set_phase(Phase::Frames);
        assert_eq!(
            tick.lend_around(addr(&frames[1]), 8),
            None,
            "nothing planned yet"
        );
        let mut buf = [0u8; 32];
        tick.read_into(addr(&frames[0]), &mut buf).unwrap();
        prefetcher.finish(tick);

        let tick = prefetcher.begin(&live);
        tick.read_u64(addr(&*thread)).unwrap();
        tick.set_phase(Phase::Frames);
        let (start, bytes) = tick.lend_around(addr(&frames[2]), 8).expect("lent");
        let skip = (addr(&frames[2]) - start) as usize;
        assert_eq!(bytes[skip..skip + 8], 3u64.to_le_bytes());
        assert!(start <= addr(&frames[0]) && bytes.len() >= 32);
        assert_eq!(tick.total_misses(), 0);
        prefetcher.finish(tick);

        // A tick that notes every read for the next plan lends nothing.
        prefetcher.age = REPLAN_EVERY - 1;
        let tick = prefetcher.begin(&live);
        tick.read_u64(addr(&*thread)).unwrap();
        tick.set_phase(Phase::Frames);
        assert_eq!(tick.lend_around(addr(&frames[2]), 8), None);
        tick.read_into(addr(&frames[0]), &mut buf).unwrap();
        prefetcher.finish(tick);

        // Once the thread list was read live, the frames' copy is older than it.
        let tick = prefetcher.begin(&live);
        tick.read_u64(addr(&*new_thread)).unwrap();
        tick.set_phase(Phase::Frames);
        assert_eq!(tick.lend_around(addr(&frames[2]), 8), None);
    }

    #[test]
    fn a_live_read_of_the_thread_list_makes_the_stacks_be_read_live() {
        let thread = Box::new(1u64);
        let frame = Box::new(2u64);
        let new_thread = Box::new(3u64);
        let live = Counting::new();
        let mut prefetcher = Prefetcher::new();
        let tick = prefetcher.begin(&live);
        tick.read_u64(addr(&*thread)).unwrap();
        tick.set_phase(Phase::Frames);
        tick.read_u64(addr(&*frame)).unwrap();
        prefetcher.finish(tick);
        let tick = prefetcher.begin(&live);
        tick.read_u64(addr(&*new_thread)).unwrap();
        tick.set_phase(Phase::Frames);
        live.calls.set(0);
        tick.read_u64(addr(&*frame)).unwrap();
        assert_eq!(
            live.calls.get(),
            1,
            "the frame's copy predates the thread read"
        );
    }

    #[test]
    fn a_header_is_read_live_after_its_frame_was() {
        let frame = Box::new(1u64);
        let new_frame = Box::new(2u64);
        let header = Box::new(3u64);
        let live = Counting::new();
        let mut prefetcher = Prefetcher::new();
        let tick = prefetcher.begin(&live);
        tick.set_phase(Phase::Frames);
        tick.read_u64(addr(&*frame)).unwrap();
        tick.set_phase(Phase::Code);
        tick.read_u64(addr(&*header)).unwrap();
        prefetcher.finish(tick);
        let tick = prefetcher.begin(&live);
        tick.set_phase(Phase::Frames);
        tick.read_u64(addr(&*frame)).unwrap();
        assert!(tick.stack_from_copy());
        tick.read_u64(addr(&*new_frame)).unwrap();
        assert!(!tick.stack_from_copy());
        tick.set_phase(Phase::Code);
        live.calls.set(0);
        tick.read_u64(addr(&*header)).unwrap();
        assert_eq!(
            live.calls.get(),
            1,
            "the header's copy predates the new frame"
        );
        // The next stack starts clean.
        tick.set_phase(Phase::Frames);
        assert!(tick.stack_from_copy());
    }

    #[test]
    fn a_region_that_became_unreadable_is_skipped_and_the_rest_still_served() {
        let before = Box::new(1u64);
        let after = Box::new(2u64);
        let live = Counting::new();
        let mut prefetcher = Prefetcher::new();
        prefetcher.plan[0] = vec![(addr(&*before), 8), (8, 8), (addr(&*after), 8)];
        prefetcher.plan[0].sort_unstable();
        let tick = prefetcher.begin(&live);
        live.calls.set(0);
        assert_eq!(tick.read_u64(addr(&*before)), Ok(1));
        assert_eq!(tick.read_u64(addr(&*after)), Ok(2));
        assert_eq!(live.calls.get(), 0);
        assert!(tick.read_u64(8).is_err());
    }

    #[test]
    fn the_plan_keeps_served_regions_until_it_is_renewed_from_every_read() {
        let values = vec![0u64; 4096];
        let (kept, near, far) = (addr(&values[0]), addr(&values[4]), addr(&values[2048]));
        let live = Counting::new();
        let mut prefetcher = Prefetcher::new();
        let mut tick_reading = |addresses: &[u64]| {
            let tick = prefetcher.begin(&live);
            for &address in addresses {
                tick.read_u64(address).unwrap();
            }
            prefetcher.finish(tick);
            prefetcher.plan[0].clone()
        };
        assert_eq!(tick_reading(&[kept, near]), vec![(kept, 40)]);
        // A miss: the plan is what served reads (the whole merged region, though only
        // part of it was read) and what was read live.
        assert_eq!(tick_reading(&[kept, far]), vec![(kept, 40), (far, 8)]);
        for _ in 2..REPLAN_EVERY - 1 {
            assert_eq!(tick_reading(&[kept, far]), vec![(kept, 40), (far, 8)]);
        }
        // The renewal: exactly what this tick read.
        assert_eq!(tick_reading(&[kept]), vec![(kept, 8)]);
    }

    #[test]
    fn nearby_regions_are_merged_in_the_plan() {
        let values = Box::new([0u64; 8]);
        let live = Counting::new();
        let mut prefetcher = Prefetcher::new();
        let tick = prefetcher.begin(&live);
        tick.read_u64(addr(&values[5])).unwrap();
        tick.read_u64(addr(&values[1])).unwrap();
        tick.read_u64(addr(&values[2])).unwrap();
        prefetcher.finish(tick);
        assert_eq!(prefetcher.plan[0], vec![(addr(&values[1]), 40)]);
    }
}
