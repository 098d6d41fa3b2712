//! Reading a `.pyscry` file back into a [`Profile`].

use std::path::Path;

use prost::Message;

use super::messages::{Entry, Header, Record, FORMAT_VERSION, MAGIC};
use crate::report::profile::StackKey;
use crate::report::sources::SourceFiles;
use crate::report::timeline::Timeline;
use crate::report::{Profile, ProfileInfo};
use crate::sampler::ThreadKey;
use crate::symbolize::Frame;
use crate::target::activity::WaitKind;

/// Records longer than this are taken for corruption, not data.
const MAX_RECORD: u64 = 256 << 20;

/// A recording read back.
#[derive(Debug)]
pub struct Recording {
    /// The aggregated stacks, with the header's and summary's information.
    pub profile: Profile,
    /// The pyscry version that wrote it.
    pub tool_version: String,
    /// Whether the file ends with its summary. A recording cut short (pyscry killed)
    /// has none: its duration is the last sample's time and its ticks are the ticks
    /// that have samples.
    pub complete: bool,
}

/// Why a file cannot be read as a recording.
#[derive(Debug, thiserror::Error)]
pub enum RecordingError {
    /// The file cannot be opened or read.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// The file does not start with [`MAGIC`].
    #[error("not a pyscry recording (those start with the bytes \\x89PYSCRY; `pyscry record -f pyscry` writes them)")]
    NotARecording,
    /// Written by a newer pyscry in a format this one does not know.
    #[error("written in format version {found} by pyscry {tool}; this pyscry reads versions up to {FORMAT_VERSION}: use a newer pyscry")]
    NewerFormat {
        /// The file's format version.
        found: u32,
        /// The pyscry that wrote it.
        tool: String,
    },
    /// The contents do not make sense.
    #[error("corrupt at byte {offset}: {reason}")]
    Corrupt {
        /// Where the bad record starts.
        offset: usize,
        /// What is wrong with it.
        reason: String,
    },
}

/// Read the recording at `path`; with `keep_timeline`, keep every sample in order too
/// (for the outputs that show time). A path that is not a regular file (a pipe) is
/// read whole.
pub fn read_file(path: &Path, keep_timeline: bool) -> Result<Recording, RecordingError> {
    let file = std::fs::File::open(path)?;
    let metadata = file.metadata()?;
    if metadata.is_dir() {
        return Err(std::io::Error::from(std::io::ErrorKind::IsADirectory).into());
    }
    if !metadata.is_file() {
        return read_stream(file, keep_timeline);
    }
    if metadata.len() == 0 {
        return Err(RecordingError::NotARecording);
    }
    // SAFETY: the map is only read; a file changed underneath gives wrong bytes, which
    // the parser rejects like any corrupt input.
    let map = unsafe { memmap2::Mmap::map(&file)? };
    read_bytes(&map, keep_timeline)
}

/// Read a recording from a stream that cannot be mapped (a pipe, standard input),
/// whole.
pub fn read_stream(
    mut stream: impl std::io::Read,
    keep_timeline: bool,
) -> Result<Recording, RecordingError> {
    let mut bytes = Vec::new();
    stream.read_to_end(&mut bytes)?;
    read_bytes(&bytes, keep_timeline)
}

/// Read a recording from its bytes; with `keep_timeline`, keep every sample in order.
pub fn read_bytes(bytes: &[u8], keep_timeline: bool) -> Result<Recording, RecordingError> {
    let body = bytes
        .strip_prefix(MAGIC.as_slice())
        .ok_or(RecordingError::NotARecording)?;
    let mut state = Reader {
        timeline: keep_timeline.then(Timeline::default),
        ..Reader::default()
    };
    let mut offset = MAGIC.len();
    let mut rest = body;
    while !rest.is_empty() {
        let corrupt = |reason: String| RecordingError::Corrupt { offset, reason };
        let mut cursor = rest;
        let Ok(len) = prost::encoding::decode_varint(&mut cursor) else {
            // A length cut off by the end of the file: the recording stopped mid-write.
            if rest.len() < 10 {
                break;
            }
            return Err(corrupt("bad record length".into()));
        };
        if len == 0 {
            return Err(corrupt("empty record".into()));
        }
        if len > MAX_RECORD {
            return Err(corrupt(format!("record length {len} is implausible")));
        }
        let start = rest.len() - cursor.len();
        let Some(end) = start.checked_add(len as usize).filter(|&e| e <= rest.len()) else {
            // The last record is incomplete: the recording stopped mid-write.
            break;
        };
        let record = Record::decode(&rest[start..end]).map_err(|e| corrupt(e.to_string()))?;
        if let Some(Entry::Header(header)) = &record.entry {
            if header.format_version > FORMAT_VERSION {
                return Err(RecordingError::NewerFormat {
                    found: header.format_version,
                    tool: header.tool_version.clone(),
                });
            }
        }
        state.take(record).map_err(corrupt)?;
        offset += end;
        rest = &rest[end..];
    }
    state.finish()
}

/// Check that a new `kind`'s `id` is the next one, `due`: ids count up from 0.
fn expect_id(kind: &str, id: u32, due: usize) -> Result<(), String> {
    if id as usize == due {
        Ok(())
    } else {
        Err(format!("{kind} id {id} where {due} was due"))
    }
}

/// What has been read so far.
#[derive(Default)]
struct Reader {
    header: Option<Header>,
    frames: Vec<Frame>,
    stacks: Vec<StackKey>,
    counts: Vec<u64>,
    thread_names: Vec<((u32, u64), String)>,
    processes: Vec<(u32, String)>,
    summary: Option<ProfileInfo>,
    time_us: u64,
    ticks_seen: u64,
    timeline: Option<Timeline>,
    sources: SourceFiles,
}

impl Reader {
    /// Take one record, checking that it fits what came before.
    fn take(&mut self, record: Record) -> Result<(), String> {
        // A kind of record this build does not know, from a later one: what it
        // holds is extra to what this build reads.
        let Some(entry) = record.entry else {
            return Ok(());
        };
        if self.summary.is_some() {
            return Err("data after the summary".into());
        }
        match (entry, self.header.is_some()) {
            (Entry::Header(header), false) => self.header = Some(header),
            (Entry::Header(_), true) => return Err("a second header".into()),
            (_, false) => return Err("the first record is not the header".into()),
            (Entry::Frame(frame), true) => {
                expect_id("frame", frame.id, self.frames.len())?;
                self.frames.push(Frame {
                    name: frame.name,
                    filename: frame.filename,
                    line: frame.line,
                    first_line: frame.first_line,
                });
            }
            (Entry::ThreadName(thread), true) => {
                let key = (thread.pid, thread.python_id);
                self.thread_names.push((key, thread.name));
            }
            (Entry::Stack(stack), true) => {
                expect_id("stack", stack.id, self.stacks.len())?;
                if let Some(bad) = stack
                    .frames
                    .iter()
                    .find(|&&f| f as usize >= self.frames.len())
                {
                    return Err(format!("stack {} uses unknown frame {bad}", stack.id));
                }
                self.stacks.push(StackKey {
                    thread: ThreadKey {
                        pid: stack.pid,
                        python_id: stack.python_id,
                        os_id: stack.os_id,
                    },
                    idle: stack.idle,
                    wait: WaitKind::from_name(&stack.wait),
                    frames: stack.frames,
                });
                self.counts.push(0);
            }
            (Entry::Samples(batch), true) => {
                if batch.stacks.len() != batch.time_deltas_us.len() {
                    return Err("a sample batch whose lists differ in length".into());
                }
                for (&stack, &delta) in batch.stacks.iter().zip(&batch.time_deltas_us) {
                    let count = self
                        .counts
                        .get_mut(stack as usize)
                        .ok_or_else(|| format!("a sample of unknown stack {stack}"))?;
                    *count += 1;
                    if delta > 0 || self.ticks_seen == 0 {
                        self.ticks_seen += 1;
                    }
                    self.time_us = self.time_us.saturating_add(delta);
                    if let Some(timeline) = &mut self.timeline {
                        timeline.push(&self.stacks[stack as usize], self.time_us);
                    }
                }
            }
            (Entry::Process(process), true) => {
                self.processes.push((process.pid, process.command));
            }
            (Entry::Source(source), true) => self.sources.insert(source.filename, source.text),
            (Entry::Summary(summary), true) => {
                self.summary = Some(ProfileInfo {
                    duration_secs: summary.duration_secs,
                    ticks: summary.ticks,
                    samples: summary.samples,
                    errors: summary.errors,
                    dropped_ticks: summary.dropped_ticks,
                    ..ProfileInfo::default()
                });
            }
        }
        Ok(())
    }

    /// The profile, once every record is read.
    fn finish(self) -> Result<Recording, RecordingError> {
        let header = self.header.ok_or(RecordingError::Corrupt {
            offset: MAGIC.len(),
            reason: "the file ends before its header is whole".into(),
        })?;
        let complete = self.summary.is_some();
        let counts = self.summary.unwrap_or_else(|| ProfileInfo {
            duration_secs: self.time_us as f64 / 1e6,
            ticks: self.ticks_seen,
            samples: self.counts.iter().sum(),
            ..ProfileInfo::default()
        });
        let info = ProfileInfo {
            pid: header.pid,
            command: header.command,
            python: header.python,
            mode: header.mode,
            rate_hz: header.rate_hz,
            started_unix_secs: header.started_unix_secs,
            ..counts
        };
        let mut profile = Profile::new(info);
        profile.timeline = self.timeline;
        profile.frames = self.frames;
        profile.thread_names = self.thread_names.into_iter().collect();
        profile.processes = self.processes.into_iter().collect();
        profile.sources = self.sources;
        profile.stacks = self
            .stacks
            .into_iter()
            .zip(self.counts)
            .filter(|&(_, count)| count > 0)
            .collect();
        Ok(Recording {
            profile,
            tool_version: header.tool_version,
            complete,
        })
    }
}
