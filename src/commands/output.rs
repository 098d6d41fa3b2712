//! The file `record` writes: a rendering of the whole profile at the end, or a
//! recording streamed while sampling goes on.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::record::RecordingWriter;
use crate::report::{Format, Profile, ProfileInfo};
use crate::sampler::SamplerEvent;

/// An output file, opened before sampling so that an unwritable path fails first.
pub struct OutputFile {
    path: PathBuf,
    file: File,
    format: Format,
    /// The recording being streamed, once sampling has started (`Format::Pyscry`).
    stream: Option<RecordingWriter<BufWriter<File>>>,
}

impl OutputFile {
    /// Open `path` for writing without truncating it: a run that fails before it has
    /// anything to write must not destroy an earlier file. [`STANDARD_STREAM`] is
    /// standard output.
    pub fn open(path: &Path, format: Format) -> Result<OutputFile> {
        let file = match path == Path::new(STANDARD_STREAM) {
            true => standard_output(),
            false => std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .open(path),
        };
        let file = file.map_err(|source| not_writable(path, source))?;
        Ok(OutputFile {
            path: path.to_path_buf(),
            file,
            format,
            stream: None,
        })
    }

    /// The file's name for messages: its path, or `standard output`.
    pub fn name(&self) -> String {
        match self.path == Path::new(STANDARD_STREAM) {
            true => "standard output".to_string(),
            false => self.path.display().to_string(),
        }
    }

    /// Whether this is where standard output goes (`-o -`, `-o /dev/stdout`): then
    /// nothing else may be printed there.
    pub fn is_standard_output(&self) -> bool {
        let identity = |file: &File| file.metadata().map(|m| (m.dev(), m.ino())).ok();
        let stdout = standard_output().ok();
        identity(&self.file).is_some_and(|id| stdout.as_ref().and_then(identity) == Some(id))
    }

    /// The format it is written in.
    pub fn format(&self) -> Format {
        self.format
    }

    /// Sampling starts: a recording begins with the header made from `info`.
    pub fn start(&mut self, info: &ProfileInfo) -> Result<()> {
        if self.format == Format::Pyscry && self.stream.is_none() {
            let stream = self
                .truncate()
                .and_then(|()| self.file.try_clone())
                .and_then(|file| RecordingWriter::new(BufWriter::new(file), info))
                .map_err(|e| not_writable(&self.path, e))?;
            self.stream = Some(stream);
        }
        Ok(())
    }

    /// Take one event of the sampler (a recording writes it; renderings wait for the
    /// end).
    pub fn add_event(&mut self, event: &SamplerEvent) -> Result<()> {
        match &mut self.stream {
            Some(stream) => stream
                .add_event(event)
                .map_err(|e| not_writable(&self.path, e)),
            None => Ok(()),
        }
    }

    /// Keep a copy of the source file `filename` (a recording writes it; a heatmap
    /// takes it from the profile at the end).
    pub fn add_source(&mut self, filename: &str, text: &str) -> Result<()> {
        match &mut self.stream {
            Some(stream) => stream
                .add_source(filename, text)
                .map_err(|e| not_writable(&self.path, e)),
            None => Ok(()),
        }
    }

    /// Push what a recording holds so far to the file, so that it survives pyscry
    /// being killed.
    pub fn flush(&mut self) -> Result<()> {
        match &mut self.stream {
            Some(stream) => stream.flush().map_err(|e| not_writable(&self.path, e)),
            None => Ok(()),
        }
    }

    /// Write the end: a recording's summary, or the whole rendering of `profile`.
    pub fn finish(mut self, profile: &Profile) -> Result<()> {
        self.start(&profile.info)?;
        let written = match self.stream.take() {
            Some(stream) => stream.finish(&profile.info).map(drop).map_err(Into::into),
            None => self.render(profile),
        };
        written.map_err(|e| not_writable(&self.path, io::Error::other(e.to_string())))
    }

    fn render(&self, profile: &Profile) -> anyhow::Result<()> {
        let Some(renderer) = self.format.renderer() else {
            return Ok(());
        };
        self.write_all(|out| renderer.render(profile, out))
    }

    /// Write the whole file with `write`, for what is not one profile's rendering (a
    /// comparison of two).
    pub fn write_with(
        self,
        write: impl FnOnce(&mut dyn Write) -> anyhow::Result<()>,
    ) -> Result<()> {
        self.write_all(write)
            .map_err(|e| not_writable(&self.path, io::Error::other(e.to_string())))
    }

    fn write_all(
        &self,
        write: impl FnOnce(&mut dyn Write) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        self.truncate()?;
        let mut out = BufWriter::new(&self.file);
        write(&mut out)?;
        Ok(out.flush()?)
    }

    /// Empty a regular file before writing it; a pipe or device (`-o /dev/stdout`)
    /// cannot be truncated and need not be.
    fn truncate(&self) -> io::Result<()> {
        if self.file.metadata()?.is_file() {
            self.file.set_len(0)?;
        }
        Ok(())
    }
}

/// Where tables and summaries go: standard output, or standard error when the
/// profile itself is written to standard output.
pub fn table_output(profile_on_stdout: bool) -> Box<dyn Write> {
    match profile_on_stdout {
        true => Box::new(io::stderr()),
        false => Box::new(io::stdout()),
    }
}

/// The path that means standard output (`-o -`), or standard input (`report -`).
pub const STANDARD_STREAM: &str = "-";

/// A file handle of our standard output.
fn standard_output() -> io::Result<File> {
    Ok(File::from(io::stdout().as_fd().try_clone_to_owned()?))
}

fn not_writable(path: &Path, source: io::Error) -> Error {
    Error::OutputNotWritable {
        path: path.to_path_buf(),
        source,
    }
}
