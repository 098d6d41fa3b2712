//! The `.pyscry` recording format: written while `record` samples, read by `report`.
//!
//! A recording keeps every distinct stack once and each sample as a reference to one,
//! so it grows by a few bytes per sample, and it is streamed: what was flushed before
//! pyscry was killed can still be read.

pub mod messages;
pub mod reader;
pub mod writer;

pub use reader::{read_file, read_stream, Recording, RecordingError};
pub use writer::RecordingWriter;

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use prost::Message;

    use super::messages::{self, Entry, Header, Record, FORMAT_VERSION, MAGIC};
    use super::reader::read_bytes;
    use super::*;
    use crate::report::collapsed::folded_lines;
    use crate::report::timeline::{TimedSample, Timeline};
    use crate::report::Renderer;
    use crate::report::{Profile, ProfileInfo};
    use crate::sampler::{Sample, SamplerEvent, ThreadKey};
    use crate::symbolize::Frame;
    use crate::target::activity::WaitKind;

    fn info() -> ProfileInfo {
        ProfileInfo {
            pid: 42,
            command: "python3 w.py".into(),
            python: "CPython 3.12.1".into(),
            mode: "wall".into(),
            rate_hz: 100.0,
            started_unix_secs: 1_700_000_000,
            ..ProfileInfo::default()
        }
    }

    /// Frames 0 and 1, then `ticks` ticks 10 ms apart; each samples thread 1 (stack
    /// main → work) and thread 2 (main, idle).
    fn events(ticks: u64) -> Vec<SamplerEvent> {
        let frame = |name: &str, line| Frame {
            name: name.into(),
            filename: "w.py".into(),
            line,
            first_line: line,
        };
        let mut events = vec![
            SamplerEvent::NewFrame {
                pid: 42,
                id: 0,
                frame: frame("main", 1),
            },
            SamplerEvent::NewFrame {
                pid: 42,
                id: 1,
                frame: frame("work", 5),
            },
            SamplerEvent::Process {
                pid: 43,
                command: "python3 -c work".into(),
            },
            SamplerEvent::ThreadName {
                pid: 42,
                python_id: 1,
                name: "MainThread".into(),
            },
        ];
        for tick in 0..ticks {
            let sample = |python_id, frames: Vec<u32>, idle| {
                SamplerEvent::Sample(Sample {
                    elapsed: Duration::from_millis(10 * tick),
                    thread: ThreadKey {
                        pid: 42,
                        python_id,
                        os_id: Some(python_id as u32 + 100),
                    },
                    thread_state: 0,
                    frames,
                    idle,
                    wait: idle.then_some(WaitKind::Lock),
                    holds_gil: false,
                })
            };
            events.push(sample(1, vec![1, 0], false));
            events.push(sample(2, vec![0], true));
        }
        events
    }

    /// A whole recording's bytes and the profile `record` would have built.
    fn recording(ticks: u64) -> (Vec<u8>, Profile) {
        let mut profile = Profile::new(info());
        profile.keep_timeline();
        let mut writer = RecordingWriter::new(Vec::new(), &profile.info).unwrap();
        let source = "def main():\n    work()\n";
        writer.add_source("w.py", source).unwrap();
        profile.sources.insert("w.py".into(), source.into());
        for event in events(ticks) {
            writer.add_event(&event).unwrap();
            profile.add_event(&event);
        }
        profile.info.duration_secs = ticks as f64 / 100.0;
        profile.info.ticks = ticks;
        profile.info.samples = 2 * ticks;
        profile.info.errors = 3;
        (writer.finish(&profile.info).unwrap(), profile)
    }

    #[test]
    fn a_recording_reads_back_as_the_profile_it_was_made_from() {
        let (bytes, profile) = recording(10_000);
        let read = read_bytes(&bytes, true).unwrap();
        assert!(read.complete);
        assert_eq!(read.tool_version, env!("CARGO_PKG_VERSION"));
        let back = read.profile;
        assert_eq!(back.describe(), profile.describe());
        assert_eq!(back.info.errors, 3);
        assert_eq!(back.info.started_unix_secs, 1_700_000_000);
        assert_eq!(back.info.command, "python3 w.py");
        assert_eq!(back.stacks, profile.stacks);
        assert_eq!(back.thread_names, profile.thread_names);
        assert_eq!(back.processes, profile.processes);
        assert_eq!(back.sources, profile.sources);
        assert_eq!(folded_lines(&back), folded_lines(&profile));
        // The samples come back in order, at their times.
        let (timeline, back_timeline) = (profile.timeline.unwrap(), back.timeline.unwrap());
        let stack_at =
            |t: &Timeline, s: TimedSample| (s.time_us, t.stacks()[s.stack as usize].clone());
        let sent: Vec<_> = timeline.samples().map(|s| stack_at(&timeline, s)).collect();
        let read: Vec<_> = back_timeline
            .samples()
            .map(|s| stack_at(&back_timeline, s))
            .collect();
        assert_eq!(sent.len(), 20_000);
        assert_eq!(read, sent);
        // Each sample costs a few bytes: the stacks are stored once.
        assert!(bytes.len() < 20_000 * 4, "{} bytes", bytes.len());
    }

    #[test]
    fn a_recording_cut_short_keeps_its_whole_records() {
        let (bytes, _) = recording(10_000);
        // Without the summary, and cut in the middle of a batch of samples.
        for (cut, all_samples) in [(bytes.len() - 20, true), (bytes.len() / 2, false)] {
            let read = read_bytes(&bytes[..cut], false).unwrap();
            assert!(!read.complete);
            let samples = read.profile.total_samples();
            assert!(
                samples > 0 && (samples == 20_000) == all_samples,
                "{samples} at {cut}"
            );
            assert_eq!(read.profile.info.samples, samples);
            // Two samples per tick, one tick every 10 ms.
            assert_eq!(read.profile.info.ticks, samples / 2);
            let last_tick_secs = (samples / 2 - 1) as f64 / 100.0;
            assert!((read.profile.info.duration_secs - last_tick_secs).abs() < 1e-6);
        }
    }

    #[test]
    fn what_is_not_a_recording_is_refused() {
        assert!(matches!(
            read_bytes(b"<svg>", false),
            Err(RecordingError::NotARecording)
        ));
        let error = read_bytes(MAGIC, false).unwrap_err().to_string();
        assert!(error.contains("ends before its header"), "{error}");
    }

    #[test]
    fn corruption_is_reported_with_its_place() {
        let (bytes, _) = recording(100);
        let mut garbage = MAGIC.to_vec();
        garbage.extend([0xff; 64]);
        let error = read_bytes(&garbage, false).unwrap_err().to_string();
        assert!(error.starts_with("corrupt at byte 8:"), "{error}");
        // A record of the right length whose contents are wrong.
        let mut flipped = bytes.clone();
        let at = bytes.len() / 2;
        flipped[at..at + 8].fill(0xff);
        assert!(
            matches!(
                read_bytes(&flipped, false),
                Err(RecordingError::Corrupt { .. })
            ),
            "{:?}",
            read_bytes(&flipped, false).map(|r| r.complete)
        );
        // A sample of a stack that was never defined.
        let mut orphan = MAGIC.to_vec();
        let record = |entry| Record { entry: Some(entry) }.encode_length_delimited_to_vec();
        orphan.extend(record(Entry::Header(Header {
            format_version: FORMAT_VERSION,
            ..Header::default()
        })));
        orphan.extend(record(Entry::Samples(messages::SampleBatch {
            stacks: vec![7],
            time_deltas_us: vec![0],
        })));
        let error = read_bytes(&orphan, false).unwrap_err().to_string();
        assert!(error.contains("unknown stack 7"), "{error}");
    }

    /// Random damage to a real recording never panics the reader, and what it reads
    /// can be rendered: every id a stack uses resolves.
    #[test]
    fn damaged_recordings_are_read_or_refused_never_panicked_on() {
        let (bytes, _) = recording(300);
        let mut rng = fastrand::Rng::with_seed(5);
        let mut outcomes = [0u32; 2];
        for _ in 0..3000 {
            let mut damaged = bytes.clone();
            match rng.u8(0..3) {
                0 => {
                    for _ in 0..rng.usize(1..8) {
                        let at = rng.usize(MAGIC.len()..damaged.len());
                        damaged[at] = rng.u8(..);
                    }
                }
                1 => damaged.truncate(rng.usize(0..bytes.len())),
                _ => {
                    let at = rng.usize(MAGIC.len()..damaged.len());
                    let len = rng.usize(1..64).min(damaged.len() - at);
                    damaged.drain(at..at + len);
                }
            }
            match read_bytes(&damaged, true) {
                Ok(read) => {
                    outcomes[0] += 1;
                    let profile = &read.profile;
                    let _ = folded_lines(profile);
                    let _ = crate::report::table::function_rows(profile);
                    let _ = crate::report::pprof::build(profile);
                    let _ = crate::report::pstats::function_stats(profile);
                    let _ = crate::report::lines::function_lines(profile, "work");
                    let _ = crate::report::speedscope::build(profile).unwrap();
                    crate::report::chrome::ChromeTrace
                        .render(profile, &mut std::io::sink())
                        .unwrap();
                }
                Err(_) => outcomes[1] += 1,
            }
        }
        // Both outcomes happen: the damage reaches the checks.
        assert!(outcomes.iter().all(|&n| n > 100), "{outcomes:?}");
    }

    #[test]
    fn a_kind_of_record_from_a_later_build_is_skipped() {
        let (bytes, profile) = recording(10);
        // After the header: a record whose only field (15, bytes "abc") this build
        // does not know.
        let header_end = {
            let mut cursor = &bytes[MAGIC.len()..];
            let len = prost::encoding::decode_varint(&mut cursor).unwrap() as usize;
            bytes.len() - cursor.len() + len
        };
        let mut later = bytes[..header_end].to_vec();
        later.extend([5, 15 << 3 | 2, 3, b'a', b'b', b'c']);
        later.extend(&bytes[header_end..]);
        let read = read_bytes(&later, false).unwrap();
        assert!(read.complete);
        assert_eq!(read.profile.stacks, profile.stacks);
        // An empty record is still damage.
        let mut empty = bytes[..header_end].to_vec();
        empty.push(0);
        let error = read_bytes(&empty, false).unwrap_err().to_string();
        assert!(error.contains("empty record"), "{error}");
    }

    #[test]
    fn a_newer_format_is_named() {
        let mut bytes = MAGIC.to_vec();
        let header = Entry::Header(Header {
            format_version: FORMAT_VERSION + 1,
            tool_version: "9.0.0".into(),
            ..Header::default()
        });
        bytes.extend(
            Record {
                entry: Some(header),
            }
            .encode_length_delimited_to_vec(),
        );
        let error = read_bytes(&bytes, false).unwrap_err().to_string();
        assert!(error.contains("by pyscry 9.0.0"), "{error}");
    }
}
