//! Copies of the source files a recording samples, read while the target runs.
//!
//! The outputs that show source lines (a recording, a heatmap) keep a copy of each
//! sampled file (see [`crate::report::sources`]). The copy is read through the
//! sampled process, the first time a frame of the file is seen: its container's
//! files and its working directory are the ones its file names mean, and later the
//! process, or the file as it ran, may be gone.

use std::collections::HashSet;

use crate::sampler::SamplerEvent;
use crate::target::process;

/// A larger file is not kept: no hand-written Python source is this large.
const MAX_FILE_BYTES: u64 = 4 << 20;

/// Copies stop once they add up to this, however many files a program samples.
const MAX_TOTAL_BYTES: u64 = 64 << 20;

/// A source file's copy: its name as frames give it, and its text.
pub type SourceCopy = (String, String);

/// Reads each sampled source file once.
#[derive(Debug, Default)]
pub struct SourceCollector {
    /// Files already looked for, found or not.
    seen: HashSet<String>,
    /// Bytes kept so far.
    total_bytes: u64,
}

impl SourceCollector {
    /// A copy of the source file of `event`'s frame, when it is a Python frame of a
    /// file not looked for before that the process can still show.
    pub fn collect(&mut self, event: &SamplerEvent) -> Option<SourceCopy> {
        let SamplerEvent::NewFrame { pid, frame, .. } = event else {
            return None;
        };
        if !is_source_file(&frame.filename, frame.first_line)
            || !self.seen.insert(frame.filename.clone())
        {
            return None;
        }
        let room = MAX_TOTAL_BYTES.checked_sub(self.total_bytes)?;
        let bytes = process::read_file_of(*pid, &frame.filename, MAX_FILE_BYTES.min(room))?;
        self.total_bytes += bytes.len() as u64;
        let text = String::from_utf8(bytes)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
        Some((frame.filename.clone(), text))
    }
}

/// Whether a frame of `filename` whose code starts on `first_line` is Python code
/// from a file: native frames start on line 0, and code compiled from a string or
/// frozen into the interpreter has a name in angle brackets (`<string>`,
/// `<frozen importlib._bootstrap>`).
fn is_source_file(filename: &str, first_line: u32) -> bool {
    first_line > 0 && !filename.is_empty() && !filename.starts_with('<')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::symbolize::Frame;

    fn new_frame(filename: &str, first_line: u32) -> SamplerEvent {
        SamplerEvent::NewFrame {
            pid: std::process::id(),
            id: 0,
            frame: Frame {
                name: "f".into(),
                filename: filename.into(),
                line: first_line + 1,
                first_line,
            },
        }
    }

    #[test]
    fn each_python_source_file_is_copied_once_through_the_process() {
        let manifest = env!("CARGO_MANIFEST_DIR");
        let file = format!("{manifest}/tests/scripts/ratio.py");
        let mut collector = SourceCollector::default();
        let (name, text) = collector.collect(&new_frame(&file, 1)).unwrap();
        assert_eq!(name, file);
        assert_eq!(text, std::fs::read_to_string(&file).unwrap());
        assert_eq!(collector.collect(&new_frame(&file, 5)), None);
        // Relative to the process's working directory (the crate's, under cargo test).
        let relative = collector.collect(&new_frame("tests/scripts/lines.py", 1));
        assert!(relative.is_some_and(|(name, _)| name == "tests/scripts/lines.py"));
        assert_eq!(collector.collect(&new_frame("<string>", 1)), None);
        assert_eq!(collector.collect(&new_frame("/usr/lib/libc.so.6", 0)), None);
        assert_eq!(collector.collect(&new_frame("/nonexistent/x.py", 1)), None);
    }
}
