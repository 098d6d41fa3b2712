//! Chrome's trace event format (JSON), for Perfetto (<https://ui.perfetto.dev>) and
//! `chrome://tracing`: each thread's calls laid out in time, one slice per call.
//!
//! A slice opens at the first sample whose stack holds the function at that depth and
//! closes at the first sample that no longer does, so a slice spans whole sample
//! periods: what a sampling profiler can know of a call's length. Lines within one
//! function do not split its slice. A wall-mode sample of an idle thread adds an
//! innermost `[idle: KIND]` slice (`[idle]` where the wait is not known).

use std::collections::{BTreeMap, HashMap};
use std::io::Write;

use serde::Serialize;
use serde_json::{json, Value};

use super::timeline::Timeline;
use super::{Profile, Renderer};
use crate::sampler::ThreadKey;

/// The Chrome trace renderer; it needs the profile's timeline.
pub struct ChromeTrace;

impl Renderer for ChromeTrace {
    fn render(&self, profile: &Profile, out: &mut dyn Write) -> anyhow::Result<()> {
        let timeline = profile
            .timeline
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("a Chrome trace needs the samples in time order"))?;
        let mut events = EventWriter::start(out)?;
        write_trace(profile, timeline, &mut events)?;
        events.finish(profile)
    }
}

/// A thread's longest absence, in sample periods, that its slices span. Ticks fall at
/// a random point of each period, so two in a row are at most 2 periods apart; a
/// longer gap means the thread was not sampled (it was off the CPU in cpu mode, or
/// ticks were dropped), and its slices end one period after its last sample.
const MAX_GAP_PERIODS: f64 = 3.0;

/// One thread's open slices, as function indices, root first, and the time of its
/// last sample.
#[derive(Default)]
struct Track {
    open: Vec<usize>,
    last_us: Option<u64>,
}

fn write_trace(
    profile: &Profile,
    timeline: &Timeline,
    events: &mut EventWriter<'_>,
) -> anyhow::Result<()> {
    // A slice stands for a function: name and file, by (name, file, first line); or
    // for an idle sample's wait, named by its mark, with no file.
    let mut functions: Vec<(&str, Option<&str>)> = Vec::new();
    let mut idle_ids: HashMap<&str, usize> = HashMap::new();
    let mut function_ids: HashMap<(&str, &str, u32), usize> = HashMap::new();
    // Each distinct stack as its slices' functions, root first, with the line each
    // frame was at (shown on the slice that opens there).
    let paths: Vec<Vec<(usize, u32)>> = timeline
        .stacks()
        .iter()
        .map(|stack| {
            let mut path: Vec<(usize, u32)> = stack
                .frames
                .iter()
                .map(|&id| {
                    let frame = profile.frame(id);
                    let key = (
                        frame.name.as_str(),
                        frame.filename.as_str(),
                        frame.first_line,
                    );
                    let index = *function_ids.entry(key).or_insert_with(|| {
                        functions.push((key.0, Some(key.1)));
                        functions.len() - 1
                    });
                    (index, frame.line)
                })
                .collect();
            if let Some(mark) = stack.idle_mark() {
                let index = *idle_ids.entry(mark).or_insert_with(|| {
                    functions.push((mark.trim_start(), None));
                    functions.len() - 1
                });
                path.push((index, 0));
            }
            path
        })
        .collect();

    let mut tracks: BTreeMap<ThreadKey, Track> = BTreeMap::new();
    for stack in timeline.stacks() {
        tracks.entry(stack.thread).or_default();
    }
    for thread in tracks.keys() {
        events.name_thread(profile, thread)?;
    }
    let period_us = 1e6 * profile.seconds_per_sample();
    let end_of = |last_us: u64| last_us + period_us.round() as u64;
    for sample in timeline.samples() {
        let stack = &timeline.stacks()[sample.stack as usize];
        let path = &paths[sample.stack as usize];
        let track = tracks
            .get_mut(&stack.thread)
            .expect("every thread has a track");
        if let Some(last_us) = track.last_us {
            if sample.time_us.saturating_sub(last_us) as f64 > MAX_GAP_PERIODS * period_us {
                events.close(&stack.thread, &mut track.open, 0, end_of(last_us))?;
            }
        }
        let kept = track
            .open
            .iter()
            .zip(path)
            .take_while(|(open, (function, _))| *open == function)
            .count();
        events.close(&stack.thread, &mut track.open, kept, sample.time_us)?;
        for &(function, line) in &path[kept..] {
            let (name, args, category) = match functions[function] {
                (name, Some(file)) => (name, json!({ "file": file, "line": line }), "python"),
                (name, None) => (name, Value::Null, "idle"),
            };
            events.event(&Event {
                name,
                cat: Some(category),
                ph: "B",
                ts: Some(sample.time_us),
                pid: stack.thread.pid,
                tid: thread_id(&stack.thread),
                args,
            })?;
            track.open.push(function);
        }
        track.last_us = Some(sample.time_us);
    }
    for (thread, track) in &mut tracks {
        let end = end_of(track.last_us.unwrap_or(0));
        events.close(thread, &mut track.open, 0, end)?;
    }
    Ok(())
}

/// The `tid` a thread shows as: its kernel id, else its Python id.
fn thread_id(thread: &ThreadKey) -> u64 {
    thread.os_id.map_or(thread.python_id, u64::from)
}

/// One trace event.
#[derive(Serialize)]
struct Event<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    cat: Option<&'a str>,
    ph: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    ts: Option<u64>,
    pid: u32,
    tid: u64,
    #[serde(skip_serializing_if = "Value::is_null")]
    args: Value,
}

/// Writes the events one by one into the file's `traceEvents` list, so that a long
/// timeline is never held as JSON in memory.
struct EventWriter<'a> {
    out: &'a mut dyn Write,
    written: u64,
    /// Processes already named.
    named: Vec<u32>,
}

impl<'a> EventWriter<'a> {
    fn start(out: &'a mut dyn Write) -> anyhow::Result<EventWriter<'a>> {
        out.write_all(b"{\"traceEvents\":[\n")?;
        Ok(EventWriter {
            out,
            written: 0,
            named: Vec::new(),
        })
    }

    fn event(&mut self, event: &Event<'_>) -> anyhow::Result<()> {
        if self.written > 0 {
            self.out.write_all(b",\n")?;
        }
        serde_json::to_writer(&mut *self.out, event)?;
        self.written += 1;
        Ok(())
    }

    /// Name `thread`, if its name is known, and its process the first time.
    fn name_thread(&mut self, profile: &Profile, thread: &ThreadKey) -> anyhow::Result<()> {
        let pid = thread.pid;
        let metadata = |name, args| Event {
            name,
            cat: None,
            ph: "M",
            ts: None,
            pid,
            tid: thread_id(thread),
            args,
        };
        if !self.named.contains(&pid) {
            self.named.push(pid);
            let command = match profile.processes.get(&pid) {
                Some(command) => command.as_str(),
                None => profile.info.command.as_str(),
            };
            self.event(&metadata("process_name", json!({ "name": command })))?;
        }
        // A thread without a known name shows as its tid.
        match profile.thread_name(thread) {
            Some(name) => self.event(&metadata("thread_name", json!({ "name": name }))),
            None => Ok(()),
        }
    }

    /// End the slices of `open` from depth `keep` on, innermost first, at `ts`.
    fn close(
        &mut self,
        thread: &ThreadKey,
        open: &mut Vec<usize>,
        keep: usize,
        ts: u64,
    ) -> anyhow::Result<()> {
        while open.len() > keep {
            open.pop();
            self.event(&Event {
                name: "",
                cat: None,
                ph: "E",
                ts: Some(ts),
                pid: thread.pid,
                tid: thread_id(thread),
                args: Value::Null,
            })?;
        }
        Ok(())
    }

    /// Close the list and add what produced the trace.
    fn finish(self, profile: &Profile) -> anyhow::Result<()> {
        self.out
            .write_all(b"\n],\"displayTimeUnit\":\"ms\",\"otherData\":")?;
        serde_json::to_writer(
            &mut *self.out,
            &json!({ "profiler": "pyscry", "profile": profile.describe() }),
        )?;
        self.out.write_all(b"}\n")?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixtures::{frame, sample_at, waiting_sample_at};
    use crate::report::ProfileInfo;
    use crate::target::activity::WaitKind;

    /// The trace of `profile` as (phase, name, time in ms, tid) per event.
    fn events(profile: &Profile) -> Vec<(String, String, u64, u64)> {
        let mut out = Vec::new();
        ChromeTrace.render(profile, &mut out).unwrap();
        let file: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(file["displayTimeUnit"], "ms");
        let text = |v: &Value| v.as_str().unwrap_or("").to_string();
        file["traceEvents"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                let ts = e["ts"].as_u64().map_or(0, |us| us / 1000);
                (
                    text(&e["ph"]),
                    text(&e["name"]),
                    ts,
                    e["tid"].as_u64().unwrap(),
                )
            })
            .collect()
    }

    fn profile() -> Profile {
        let mut profile = Profile::new(ProfileInfo {
            rate_hz: 100.0,
            command: "python3 w.py".into(),
            ..ProfileInfo::default()
        });
        profile.keep_timeline();
        profile.frames = vec![
            frame("main", 3, 1),
            frame("work", 7, 6),
            frame("work", 8, 6),
        ];
        profile.thread_names.insert((1, 1), "MainThread".into());
        profile
    }

    fn event(ph: &str, name: &str, ms: u64, tid: u64) -> (String, String, u64, u64) {
        (ph.into(), name.into(), ms, tid)
    }

    #[test]
    fn a_call_is_one_slice_from_the_sample_that_shows_it_to_the_one_that_does_not() {
        let mut profile = profile();
        // work on line 7, then 8: still one call; then main alone; then work again.
        for (ms, frames) in [(0, &[0, 1][..]), (10, &[0, 2]), (20, &[0]), (30, &[0, 1])] {
            sample_at(&mut profile, 1, false, frames, ms);
        }
        assert_eq!(
            events(&profile),
            [
                event("M", "process_name", 0, 11),
                event("M", "thread_name", 0, 11),
                event("B", "main", 0, 11),
                event("B", "work", 0, 11),
                event("E", "", 20, 11),
                event("B", "work", 30, 11),
                event("E", "", 40, 11),
                event("E", "", 40, 11),
            ]
        );
    }

    #[test]
    fn idleness_is_an_inner_slice_and_a_thread_not_sampled_ends_its_slices() {
        let mut profile = profile();
        sample_at(&mut profile, 2, false, &[0], 0);
        sample_at(&mut profile, 2, true, &[0], 10);
        // Idle in a known wait: a slice of its own.
        waiting_sample_at(&mut profile, 2, WaitKind::Lock, &[0], 20);
        // Absent for 10 periods (cpu mode, off the CPU): its slices end one period
        // after its last sample.
        sample_at(&mut profile, 2, false, &[0], 120);
        assert_eq!(
            events(&profile),
            [
                event("M", "process_name", 0, 12),
                event("B", "main", 0, 12),
                event("B", "[idle]", 10, 12),
                event("E", "", 20, 12),
                event("B", "[idle: lock]", 20, 12),
                event("E", "", 30, 12),
                event("E", "", 30, 12),
                event("B", "main", 120, 12),
                event("E", "", 130, 12),
            ]
        );
    }
}
