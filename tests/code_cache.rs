//! The code-object cache stays right when code objects are freed and their memory is
//! reused by other functions, and code headers are read again only when they must be.

mod common;

use std::cell::RefCell;
use std::sync::atomic::AtomicBool;

use common::{pyscry, script, Python, Target, TempDir};
use pyscry::commands::attach::{open_python, Opened};
use pyscry::python::code_headers::CodeCount;
use pyscry::python::PythonProcess;
use pyscry::sampler::StackWalker;
use pyscry::target::memory::{Memory, ReadError};

fn churned_code_objects_are_never_confused(python: &Python) {
    let dir = TempDir::new(&format!("churn-{}", python.name));
    let out_path = dir.path("churn.txt");
    let out = pyscry()
        .args(["record", "-r", "200", "-f", "collapsed", "-o"])
        .arg(&out_path)
        .arg("--")
        .arg(&python.path)
        .arg(script("code_churn.py"))
        .arg("100")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}: {}",
        python.name,
        String::from_utf8_lossy(&out.stderr)
    );
    let reuse = stdout
        .lines()
        .find(|l| l.starts_with("distinct code addresses"))
        .unwrap();
    let distinct: u32 = reuse.split_whitespace().nth(3).unwrap().parse().unwrap();
    assert!(
        distinct < 100,
        "{}: no address was reused ({reuse}); the test proves nothing",
        python.name
    );

    let text = std::fs::read_to_string(&out_path).unwrap();
    let mut per_function = std::collections::HashMap::<u32, u64>::new();
    for line in text.lines() {
        let (stack, count) = line.rsplit_once(' ').unwrap();
        let leaf = stack.rsplit(';').next().unwrap();
        let Some(rest) = leaf.strip_prefix("churn_") else {
            continue;
        };
        // churn_K (<churn-K>:LINE)
        let (k, location) = rest.split_once(" (<churn-").unwrap();
        let k: u32 = k.parse().unwrap();
        let (file_k, line) = location.trim_end_matches(')').split_once(">:").unwrap();
        let line: u32 = line.parse().unwrap();
        assert_eq!(
            file_k.parse::<u32>().unwrap(),
            k,
            "{}: name and file disagree: {leaf}",
            python.name
        );
        // The loop's lines, or the `def` line (k + 1) for a frame caught as it entered,
        // at its RESUME instruction.
        assert!(
            (k + 1..=k + 3).contains(&line),
            "{}: churn_{k} shown at line {line}: {leaf}",
            python.name
        );
        *per_function.entry(k).or_default() += count.parse::<u64>().unwrap();
    }
    // Each function runs about 20 ms: about 4 samples at 200 Hz. A stale cache entry
    // would pile later functions' samples onto an earlier name, far beyond what the
    // time that function really ran (a loaded machine can stretch it) explains.
    assert!(
        per_function.len() >= 60,
        "{}: only {} functions seen",
        python.name,
        per_function.len()
    );
    for (k, samples) in &per_function {
        let ran: f64 = stdout
            .lines()
            .find_map(|l| l.strip_prefix(&format!("ran {k} ")))
            .map_or(0.0, |s| s.parse().unwrap());
        let most = (ran * 200.0 * 1.5) as u64 + 4;
        assert!(
            *samples <= most,
            "{}: churn_{k} ran {ran:.3} s but got {samples} samples",
            python.name
        );
    }
}

test_each_python!(churn, super::churned_code_objects_are_never_confused);

/// A process's memory that notes the address of every read.
struct Recording<'a> {
    inner: &'a dyn Memory,
    addresses: RefCell<Vec<u64>>,
}

impl Memory for Recording<'_> {
    fn read_into(&self, addr: u64, buf: &mut [u8]) -> Result<(), ReadError> {
        self.addresses.borrow_mut().push(addr);
        self.inner.read_into(addr, buf)
    }

    fn read_regions(&self, regions: &mut [(u64, &mut [u8])]) -> usize {
        let mut addresses = self.addresses.borrow_mut();
        addresses.extend(regions.iter().map(|(addr, _)| *addr));
        self.inner.read_regions(regions)
    }
}

fn open(pid: u32) -> PythonProcess {
    match open_python(pid, None, &AtomicBool::new(false)).expect("opening the target") {
        Opened::Ready(process) => *process,
        Opened::ExitedEarly => unreachable!("only a launched program exits early"),
    }
}

/// The spinning thread's stack read once by `walker`, given the count of code objects
/// that covers it: how many of its frames' code objects had their header read.
fn headers_read(
    process: &mut PythonProcess,
    walker: &mut StackWalker,
    count: Option<CodeCount>,
) -> (usize, usize) {
    let memory = process.memory;
    let mut threads = Vec::new();
    process.thread_states(&memory, &mut threads).unwrap();
    let thread = threads
        .iter()
        .find(|t| t.frame != 0)
        .expect("a thread with frames");
    let recording = Recording {
        inner: &memory,
        addresses: RefCell::new(Vec::new()),
    };
    walker
        .read(
            &*process,
            &recording,
            (thread.address, thread.frame),
            count,
            &mut Vec::new(),
        )
        .expect("reading the spinning stack");
    let mut codes: Vec<u64> = walker
        .last_stack(thread.address)
        .unwrap()
        .iter()
        .map(|frame| frame.code)
        .collect();
    codes.sort_unstable();
    codes.dedup();
    let read = recording.addresses.borrow();
    let reread = codes.iter().filter(|code| read.contains(code)).count();
    (reread, codes.len())
}

fn count_of(process: &mut PythonProcess) -> Option<CodeCount> {
    let memory = process.memory;
    let listing = process.thread_states(&memory, &mut Vec::new()).unwrap();
    process.code_count(&listing.interpreters)
}

/// Where the interpreter counts the code objects it makes (3.12, 3.13) or frees
/// (3.14+), a stack's code headers are kept from the tick after the count was first
/// read, used while the count stays put, and read again once it moves; older versions
/// read them for every stack.
fn headers_are_read_again_only_when_code_objects_were_made_or_freed(python: &Python) {
    let mut target = Target::start(python, &script("steady_stack.py"), &[]);
    target.wait_for_line("ready");
    let mut process = open(target.pid());
    let mut walker = StackWalker::new();
    let counts = python.version() >= (3, 12);

    let count = count_of(&mut process);
    assert_eq!(count.is_some(), counts, "{}: {count:?}", python.name);
    let (first, codes) = headers_read(&mut process, &mut walker, count);
    assert!(codes >= 3, "{}: only {codes} code objects", python.name);
    assert_eq!(
        first, codes,
        "{}: the first read reads every header",
        python.name
    );
    // The headers a tick reads are kept under the count of the tick before: the first
    // tick had none.
    walker.end_tick();
    let (second, _) = headers_read(&mut process, &mut walker, count);
    assert_eq!(
        second, codes,
        "{}: the second tick reads every header again",
        python.name
    );
    walker.end_tick();
    let (third, _) = headers_read(&mut process, &mut walker, count);
    let expected = if counts { 0 } else { codes };
    assert_eq!(
        third, expected,
        "{}: headers read again with no code object made or freed",
        python.name
    );
    let Some(count) = count else {
        return;
    };

    let before = count.read(&process.memory).unwrap();
    let signalled = std::process::Command::new("kill")
        .args(["-USR1", &target.pid().to_string()])
        .status()
        .unwrap();
    assert!(signalled.success());
    target.wait_for_line("freed");
    let after = count.read(&process.memory).unwrap();
    assert_ne!(
        after, before,
        "{}: making and freeing code objects did not move the count",
        python.name
    );
    walker.end_tick();
    let (fourth, codes) = headers_read(&mut process, &mut walker, Some(count));
    assert_eq!(
        fourth, codes,
        "{}: headers not read again after code objects were made and freed",
        python.name
    );
}

test_each_python!(
    header_reuse,
    super::headers_are_read_again_only_when_code_objects_were_made_or_freed
);
