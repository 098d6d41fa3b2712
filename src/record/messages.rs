//! The records a `.pyscry` file is made of, as protobuf messages.
//!
//! A file is [`MAGIC`] followed by [`Record`]s, each prefixed with its length as a
//! protobuf varint. `docs/formats.md` describes the layout field by field; protobuf
//! lets a later version add fields that this one skips.

/// The first bytes of every `.pyscry` file. The high first byte and the newline catch
/// a file mangled by a text-mode transfer, as PNG's signature does.
pub const MAGIC: &[u8; 8] = b"\x89PYSCRY\n";

/// The format version this build writes, and the newest it reads.
pub const FORMAT_VERSION: u32 = 1;

/// One entry of the file.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Record {
    /// What the entry holds.
    #[prost(oneof = "Entry", tags = "1, 2, 3, 4, 5, 6, 7, 8")]
    pub entry: Option<Entry>,
}

/// The kinds of entry.
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum Entry {
    /// What was recorded; always the first record.
    #[prost(message, tag = "1")]
    Header(Header),
    /// A frame, before the first stack that uses it.
    #[prost(message, tag = "2")]
    Frame(FrameRecord),
    /// A thread's name, when first learnt or when it changed.
    #[prost(message, tag = "3")]
    ThreadName(ThreadName),
    /// A distinct stack of one thread, before the first sample of it.
    #[prost(message, tag = "4")]
    Stack(StackRecord),
    /// Samples, in the order they were taken.
    #[prost(message, tag = "5")]
    Samples(SampleBatch),
    /// The counts at the end; absent when the recording was cut short.
    #[prost(message, tag = "6")]
    Summary(Summary),
    /// A process sampled besides the target (`record --subprocesses`), before its
    /// first stack.
    #[prost(message, tag = "7")]
    Process(ProcessRecord),
    /// A copy of a sampled source file, read while the target ran.
    #[prost(message, tag = "8")]
    Source(SourceRecord),
}

/// What was recorded, and by what.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Header {
    /// [`FORMAT_VERSION`] of the writer.
    #[prost(uint32, tag = "1")]
    pub format_version: u32,
    /// The pyscry version that wrote the file.
    #[prost(string, tag = "2")]
    pub tool_version: String,
    /// Target process id.
    #[prost(uint32, tag = "3")]
    pub pid: u32,
    /// Target command line.
    #[prost(string, tag = "4")]
    pub command: String,
    /// Interpreter, e.g. `CPython 3.11.7`.
    #[prost(string, tag = "5")]
    pub python: String,
    /// Sampling mode: `wall`, `cpu` or `gil`.
    #[prost(string, tag = "6")]
    pub mode: String,
    /// Requested ticks per second.
    #[prost(double, tag = "7")]
    pub rate_hz: f64,
    /// When sampling started, in seconds since the Unix epoch.
    #[prost(uint64, tag = "8")]
    pub started_unix_secs: u64,
}

/// A frame as shown to the user; ids are consecutive from 0 in file order.
#[derive(Clone, PartialEq, prost::Message)]
pub struct FrameRecord {
    /// The id stacks refer to it by.
    #[prost(uint32, tag = "1")]
    pub id: u32,
    /// Function name.
    #[prost(string, tag = "2")]
    pub name: String,
    /// Source file.
    #[prost(string, tag = "3")]
    pub filename: String,
    /// Line being executed (0: none).
    #[prost(uint32, tag = "4")]
    pub line: u32,
    /// First line of the function.
    #[prost(uint32, tag = "5")]
    pub first_line: u32,
}

/// A thread's name.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ThreadName {
    /// The thread's `threading.get_ident()`.
    #[prost(uint64, tag = "1")]
    pub python_id: u64,
    /// Its `threading.Thread.name`.
    #[prost(string, tag = "2")]
    pub name: String,
    /// Its process.
    #[prost(uint32, tag = "3")]
    pub pid: u32,
}

/// A process of the recording.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ProcessRecord {
    /// Its id.
    #[prost(uint32, tag = "1")]
    pub pid: u32,
    /// Its command line.
    #[prost(string, tag = "2")]
    pub command: String,
}

/// A source file as the target had it.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SourceRecord {
    /// The file's name, as frames name it.
    #[prost(string, tag = "1")]
    pub filename: String,
    /// Its text (UTF-8; bytes that are not are replaced with U+FFFD).
    #[prost(string, tag = "2")]
    pub text: String,
}

/// A distinct stack of one thread; ids are consecutive from 0 in file order.
#[derive(Clone, PartialEq, prost::Message)]
pub struct StackRecord {
    /// The id samples refer to it by.
    #[prost(uint32, tag = "1")]
    pub id: u32,
    /// The thread's `threading.get_ident()`.
    #[prost(uint64, tag = "2")]
    pub python_id: u64,
    /// The thread's kernel id, when known.
    #[prost(uint32, optional, tag = "3")]
    pub os_id: Option<u32>,
    /// The thread was idle (wall mode).
    #[prost(bool, tag = "4")]
    pub idle: bool,
    /// Frame ids, root first.
    #[prost(uint32, repeated, tag = "5")]
    pub frames: Vec<u32>,
    /// The thread's process.
    #[prost(uint32, tag = "6")]
    pub pid: u32,
    /// What the idle thread waited for (`sleep`, `gil`, `lock`, `poll`, `io`, `child`);
    /// empty where the kernel did not say.
    #[prost(string, tag = "7")]
    pub wait: String,
}

/// Samples as two parallel lists.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SampleBatch {
    /// Each sample's stack id.
    #[prost(uint32, repeated, tag = "1")]
    pub stacks: Vec<u32>,
    /// Each sample's time in microseconds since sampling started, as the difference
    /// from the previous sample in the file (samples of one tick differ by 0).
    #[prost(uint64, repeated, tag = "2")]
    pub time_deltas_us: Vec<u64>,
}

/// The counts at the end of a recording.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Summary {
    /// Wall-clock seconds sampled.
    #[prost(double, tag = "1")]
    pub duration_secs: f64,
    /// Ticks at which the target was read.
    #[prost(uint64, tag = "2")]
    pub ticks: u64,
    /// Stacks recorded.
    #[prost(uint64, tag = "3")]
    pub samples: u64,
    /// Stacks dropped because they could not be read consistently.
    #[prost(uint64, tag = "4")]
    pub errors: u64,
    /// Ticks skipped because the sampler fell behind.
    #[prost(uint64, tag = "5")]
    pub dropped_ticks: u64,
}
