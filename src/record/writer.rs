//! Writing a `.pyscry` file while the recording goes on.

use std::io::{self, Write};

use prost::Message;
use rustc_hash::FxHashMap;

use super::messages::{
    Entry, FrameRecord, Header, ProcessRecord, Record, SampleBatch, SourceRecord, StackRecord,
    Summary, ThreadName, FORMAT_VERSION, MAGIC,
};
use crate::report::profile::StackKey;
use crate::report::ProfileInfo;
use crate::sampler::{Sample, SamplerEvent};
use crate::target::activity::WaitKind;

/// Samples held before a batch is written even without a flush.
const BATCH_SAMPLES: usize = 4096;

/// Streams a recording to `out`: frames and stacks as they are first seen, samples in
/// batches. Frame ids must be in one numbering for all processes (one sampler's, or
/// [`crate::symbolize::FrameMerger`]'s). What [`RecordingWriter::flush`] has written is readable even if pyscry is
/// killed before [`RecordingWriter::finish`].
pub struct RecordingWriter<W: Write> {
    out: W,
    stacks: FxHashMap<StackKey, u32>,
    batch: SampleBatch,
    /// Time of the last sample put in a batch, in microseconds.
    last_time_us: u64,
}

impl<W: Write> RecordingWriter<W> {
    /// Start a file on `out` with the header made from `info`.
    pub fn new(mut out: W, info: &ProfileInfo) -> io::Result<RecordingWriter<W>> {
        out.write_all(MAGIC)?;
        let mut writer = RecordingWriter {
            out,
            stacks: FxHashMap::default(),
            batch: SampleBatch::default(),
            last_time_us: 0,
        };
        writer.write(Entry::Header(Header {
            format_version: FORMAT_VERSION,
            tool_version: env!("CARGO_PKG_VERSION").to_string(),
            pid: info.pid,
            command: info.command.clone(),
            python: info.python.clone(),
            mode: info.mode.clone(),
            rate_hz: info.rate_hz,
            started_unix_secs: info.started_unix_secs,
        }))?;
        Ok(writer)
    }

    /// Record one event of the sampler.
    pub fn add_event(&mut self, event: &SamplerEvent) -> io::Result<()> {
        match event {
            SamplerEvent::NewFrame { id, frame, .. } => self.write(Entry::Frame(FrameRecord {
                id: *id,
                name: frame.name.clone(),
                filename: frame.filename.clone(),
                line: frame.line,
                first_line: frame.first_line,
            })),
            SamplerEvent::ThreadName {
                pid,
                python_id,
                name,
            } => self.write(Entry::ThreadName(ThreadName {
                python_id: *python_id,
                name: name.clone(),
                pid: *pid,
            })),
            SamplerEvent::Process { pid, command } => self.write(Entry::Process(ProcessRecord {
                pid: *pid,
                command: command.clone(),
            })),
            SamplerEvent::Sample(sample) => self.add_sample(sample),
        }
    }

    /// Keep a copy of the source file `filename`.
    pub fn add_source(&mut self, filename: &str, text: &str) -> io::Result<()> {
        self.write(Entry::Source(SourceRecord {
            filename: filename.to_string(),
            text: text.to_string(),
        }))
    }

    fn add_sample(&mut self, sample: &Sample) -> io::Result<()> {
        let key = StackKey::of(sample);
        let stack = match self.stacks.get(&key) {
            Some(&id) => id,
            None => {
                let id = self.stacks.len() as u32;
                self.write(Entry::Stack(StackRecord {
                    id,
                    python_id: key.thread.python_id,
                    os_id: key.thread.os_id,
                    idle: key.idle,
                    frames: key.frames.clone(),
                    pid: key.thread.pid,
                    wait: key.wait.map_or("", WaitKind::name).to_string(),
                }))?;
                self.stacks.insert(key, id);
                id
            }
        };
        let time_us = sample.elapsed.as_micros() as u64;
        self.batch.stacks.push(stack);
        self.batch
            .time_deltas_us
            .push(time_us.saturating_sub(self.last_time_us));
        self.last_time_us = time_us.max(self.last_time_us);
        if self.batch.stacks.len() >= BATCH_SAMPLES {
            self.write_batch()?;
        }
        Ok(())
    }

    /// Write the samples held so far and push everything to the file.
    pub fn flush(&mut self) -> io::Result<()> {
        self.write_batch()?;
        self.out.flush()
    }

    /// End the file with the final counts from `info`.
    pub fn finish(mut self, info: &ProfileInfo) -> io::Result<W> {
        self.write_batch()?;
        self.write(Entry::Summary(Summary {
            duration_secs: info.duration_secs,
            ticks: info.ticks,
            samples: info.samples,
            errors: info.errors,
            dropped_ticks: info.dropped_ticks,
        }))?;
        self.out.flush()?;
        Ok(self.out)
    }

    fn write_batch(&mut self) -> io::Result<()> {
        if self.batch.stacks.is_empty() {
            return Ok(());
        }
        let batch = std::mem::take(&mut self.batch);
        self.write(Entry::Samples(batch))
    }

    fn write(&mut self, entry: Entry) -> io::Result<()> {
        let bytes = Record { entry: Some(entry) }.encode_length_delimited_to_vec();
        self.out.write_all(&bytes)
    }
}
