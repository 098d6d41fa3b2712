//! A profile: every distinct stack with its sample count, plus what produced it.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::Hash;

use rustc_hash::FxHashMap;

use super::paths::distinct_short_paths;
use super::sources::SourceFiles;
use super::timeline::Timeline;
use crate::sampler::{Sample, SamplerEvent, ThreadKey};
use crate::symbolize::{Frame, FrameId};
use crate::target::activity::WaitKind;

/// What produced a profile, shown in every output.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ProfileInfo {
    /// Target process id.
    pub pid: u32,
    /// Target command line.
    pub command: String,
    /// Interpreter, e.g. `CPython 3.11.7`.
    pub python: String,
    /// Sampling mode: `wall`, `cpu` or `gil`.
    pub mode: String,
    /// Requested ticks per second.
    pub rate_hz: f64,
    /// Wall-clock seconds sampled.
    pub duration_secs: f64,
    /// Ticks at which the target was read.
    pub ticks: u64,
    /// Stacks recorded.
    pub samples: u64,
    /// Stacks dropped because they could not be read consistently.
    pub errors: u64,
    /// Ticks skipped because the sampler fell behind.
    pub dropped_ticks: u64,
    /// When sampling started, in seconds since the Unix epoch.
    pub started_unix_secs: u64,
    /// The part of the recording kept (`report --from/--to`), in seconds since
    /// sampling started; `None` for all of it.
    pub window: Option<(f64, f64)>,
}

/// One distinct stack of one thread.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StackKey {
    /// The thread it was seen in.
    pub thread: ThreadKey,
    /// Whether the thread was idle (wall mode only).
    pub idle: bool,
    /// What the idle thread waited for, where the kernel said.
    pub wait: Option<WaitKind>,
    /// Frame ids, root first.
    pub frames: Vec<FrameId>,
}

impl StackKey {
    /// The stack `sample` is a sample of.
    pub fn of(sample: &Sample) -> StackKey {
        StackKey {
            thread: sample.thread,
            idle: sample.idle,
            wait: sample.wait,
            frames: sample.frames.iter().rev().copied().collect(),
        }
    }

    /// What ends the innermost frame's name in an idle stack: ` [idle]`, or
    /// ` [idle: lock]` (sleep, gil, poll, io, child) where the kernel said what the thread
    /// waited for; `None` for a running thread's stack.
    pub fn idle_mark(&self) -> Option<&'static str> {
        if !self.idle {
            return None;
        }
        Some(match self.wait {
            None => " [idle]",
            Some(WaitKind::Sleep) => " [idle: sleep]",
            Some(WaitKind::Gil) => " [idle: gil]",
            Some(WaitKind::Lock) => " [idle: lock]",
            Some(WaitKind::Poll) => " [idle: poll]",
            Some(WaitKind::Io) => " [idle: io]",
            Some(WaitKind::Child) => " [idle: child]",
        })
    }
}

/// Samples that something (a function, a line, a call) stands for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Samples in which it was the innermost frame's.
    pub own: u64,
    /// Samples in which it was anywhere on the stack (once per sample).
    pub total: u64,
}

/// Aggregated stacks.
#[derive(Debug, Clone, Default)]
pub struct Profile {
    /// What produced it.
    pub info: ProfileInfo,
    /// Frame table, indexed by [`FrameId`].
    pub frames: Vec<Frame>,
    /// Sample count per stack.
    pub stacks: FxHashMap<StackKey, u64>,
    /// Thread names by process and Python thread id, where known.
    pub thread_names: HashMap<(u32, u64), String>,
    /// Command lines of the processes sampled besides the target itself
    /// (`record --subprocesses`), by process id.
    pub processes: BTreeMap<u32, String>,
    /// Whether stack outputs start each stack with a `thread NAME (tid)` frame.
    pub show_threads: bool,
    /// Whether stack outputs tell frames apart by function only: a frame then shows
    /// its function's first line rather than the line it was at (`--function`).
    pub by_function: bool,
    /// Whether stack outputs show each file's whole path (`--full-filenames`) rather
    /// than its short form (see [`distinct_short_paths`]).
    pub full_filenames: bool,
    /// Every sample in order, kept only for the outputs that show time
    /// ([`Profile::keep_timeline`]).
    pub timeline: Option<Timeline>,
    /// Copies of the sampled source files, for the outputs that show source lines.
    pub sources: SourceFiles,
}

impl Profile {
    /// An empty profile.
    pub fn new(info: ProfileInfo) -> Profile {
        Profile {
            info,
            ..Profile::default()
        }
    }

    /// Keep every sample from now on, in order, besides counting it.
    pub fn keep_timeline(&mut self) {
        self.timeline.get_or_insert_with(Timeline::default);
    }

    /// Take one event of the sampler, its frame ids in one numbering for every
    /// process (one process's sampler, or [`crate::symbolize::FrameMerger`]).
    pub fn add_event(&mut self, event: &SamplerEvent) {
        match event {
            SamplerEvent::NewFrame { id, frame, .. } => {
                let index = *id as usize;
                if self.frames.len() <= index {
                    self.frames.resize(index + 1, Frame::default());
                }
                self.frames[index] = frame.clone();
            }
            SamplerEvent::Sample(sample) => self.add_sample(sample),
            SamplerEvent::ThreadName {
                pid,
                python_id,
                name,
            } => {
                self.thread_names.insert((*pid, *python_id), name.clone());
            }
            SamplerEvent::Process { pid, command } => {
                self.processes.insert(*pid, command.clone());
            }
        }
    }

    /// Add the samples of `other`, a recording made with the same mode and rate (of
    /// the same program elsewhere, or of the same process at another time): its frames
    /// join this frame table, equal frames taking one id; counts and times add up. The
    /// timeline, which orders one recording's samples, is dropped.
    pub fn merge(&mut self, other: Profile) -> Result<(), String> {
        let (mine, theirs) = (&self.info, &other.info);
        if mine.mode != theirs.mode || mine.rate_hz != theirs.rate_hz {
            return Err(format!(
                "recordings made differently cannot be merged: {} mode at {} Hz, and {} mode at {} Hz",
                mine.mode, mine.rate_hz, theirs.mode, theirs.rate_hz
            ));
        }
        let mut ids: HashMap<Frame, FrameId> = HashMap::new();
        for (id, frame) in self.frames.iter().enumerate() {
            ids.entry(frame.clone()).or_insert(id as FrameId);
        }
        let merged_ids: Vec<FrameId> = other
            .frames
            .into_iter()
            .map(|frame| {
                let next = self.frames.len() as FrameId;
                *ids.entry(frame.clone()).or_insert_with(|| {
                    self.frames.push(frame);
                    next
                })
            })
            .collect();
        for (mut key, count) in other.stacks {
            for id in &mut key.frames {
                *id = merged_ids[*id as usize];
            }
            *self.stacks.entry(key).or_default() += count;
        }
        self.thread_names.extend(other.thread_names);
        self.processes.extend(other.processes);
        self.sources.extend(other.sources);
        let info = &mut self.info;
        info.duration_secs += other.info.duration_secs;
        info.ticks += other.info.ticks;
        info.samples += other.info.samples;
        info.errors += other.info.errors;
        info.dropped_ticks += other.info.dropped_ticks;
        self.timeline = None;
        Ok(())
    }

    /// The name of `thread`, where known.
    pub fn thread_name(&self, thread: &ThreadKey) -> Option<&str> {
        self.thread_names
            .get(&(thread.pid, thread.python_id))
            .map(String::as_str)
    }

    /// Count one stack.
    pub fn add_sample(&mut self, sample: &Sample) {
        let key = StackKey::of(sample);
        if let Some(timeline) = &mut self.timeline {
            timeline.push(&key, sample.elapsed.as_micros() as u64);
        }
        *self.stacks.entry(key).or_default() += 1;
    }

    /// Keep only the stacks of threads for which `keep(thread, name)` holds.
    pub fn retain_threads(&mut self, keep: impl Fn(&ThreadKey, Option<&str>) -> bool) {
        let names = &self.thread_names;
        let kept = |key: &StackKey| {
            let name = names.get(&(key.thread.pid, key.thread.python_id));
            keep(&key.thread, name.map(String::as_str))
        };
        retain_stacks(&mut self.stacks, self.timeline.as_mut(), kept);
    }

    /// Keep only the samples of threads the kernel had running (`--no-idle`): in wall
    /// mode, what `--mode cpu` records.
    pub fn drop_idle(&mut self) {
        retain_stacks(&mut self.stacks, self.timeline.as_mut(), |key| !key.idle);
    }

    /// Keep only the samples taken from `from` to `to` seconds after sampling
    /// started (`report --from/--to`), rebuilding the counts from the timeline, which
    /// must be kept. The duration becomes the window's, the ticks the sample times in
    /// it.
    pub fn keep_window(&mut self, from: f64, to: f64) {
        let Some(timeline) = &mut self.timeline else {
            return;
        };
        let to = to.min(self.info.duration_secs).max(from);
        let micros = |secs: f64| (secs * 1e6).round() as u64;
        let window = micros(from)..micros(to);
        timeline.retain(|_, time_us| window.contains(&time_us));
        self.stacks.clear();
        let mut last_time = None;
        let mut ticks = 0;
        for sample in timeline.samples() {
            let key = &timeline.stacks()[sample.stack as usize];
            *self.stacks.entry(key.clone()).or_default() += 1;
            if last_time != Some(sample.time_us) {
                ticks += 1;
                last_time = Some(sample.time_us);
            }
        }
        self.info.samples = self.total_samples();
        self.info.ticks = ticks;
        self.info.duration_secs = to - from;
        self.info.window = Some((from, to));
    }

    /// Own and total samples per key. `key_at(frames, depth)` says what the frame at
    /// `depth` of a stack (root first) stands for, or `None`; a key counts toward
    /// "total" once per sample however often it recurs in the stack, and toward "own"
    /// when it is the innermost frame's. Every per-function and per-line table is
    /// counted this way.
    pub fn counts_by<'a, K: Hash + Eq + Clone>(
        &'a self,
        key_at: impl Fn(&'a [FrameId], usize) -> Option<K>,
    ) -> HashMap<K, Counts> {
        let mut counts: HashMap<K, Counts> = HashMap::new();
        let mut seen: HashSet<K> = HashSet::new();
        for (stack, &count) in &self.stacks {
            seen.clear();
            let frames = stack.frames.as_slice();
            for depth in 0..frames.len() {
                let Some(key) = key_at(frames, depth) else {
                    continue;
                };
                let entry = counts.entry(key.clone()).or_default();
                if depth + 1 == frames.len() {
                    entry.own += count;
                }
                if seen.insert(key) {
                    entry.total += count;
                }
            }
        }
        counts
    }

    /// The frame with id `id`.
    pub fn frame(&self, id: FrameId) -> &Frame {
        &self.frames[id as usize]
    }

    /// Wall-clock seconds one sample stands for: one period at the requested rate.
    pub fn seconds_per_sample(&self) -> f64 {
        if self.info.rate_hz > 0.0 {
            1.0 / self.info.rate_hz
        } else {
            0.0
        }
    }

    /// Total samples over all stacks.
    pub fn total_samples(&self) -> u64 {
        self.stacks.values().sum()
    }

    /// Every stack as a list of labels (root first) with its count, equal label lists
    /// merged, in label order. This is what stack-based outputs draw.
    pub fn labelled_stacks(&self) -> BTreeMap<Vec<String>, u64> {
        self.labelled_stacks_naming(&label_file_names(&[self]))
    }

    /// [`Profile::labelled_stacks`], with files named as `names` says (see
    /// [`label_file_names`]); files it lacks are named whole.
    pub fn labelled_stacks_naming(
        &self,
        names: &HashMap<&str, &str>,
    ) -> BTreeMap<Vec<String>, u64> {
        let mut out = BTreeMap::new();
        for (key, &count) in &self.stacks {
            let mut labels = Vec::with_capacity(key.frames.len() + 2);
            if !self.processes.is_empty() {
                labels.push(self.process_label(key.thread.pid));
            }
            if self.show_threads {
                labels.push(self.thread_label(&key.thread));
            }
            labels.extend(key.frames.iter().map(|&id| self.label(id, names)));
            if let (Some(mark), Some(leaf)) = (key.idle_mark(), labels.last_mut()) {
                leaf.push_str(mark);
            }
            *out.entry(labels).or_default() += count;
        }
        out
    }

    /// A frame's label in stack-based outputs: `name (file:line)`, `name (module)`
    /// for a native frame without a line, or `<GC>`; the file as `names` names it
    /// (see [`distinct_short_paths`]), else whole ([`Profile::full_filenames`]).
    fn label(&self, id: FrameId, names: &HashMap<&str, &str>) -> String {
        let frame = self.frame(id);
        let path = names
            .get(frame.filename.as_str())
            .copied()
            .unwrap_or(&frame.filename);
        let label = frame.label_with_path(self.shown_line(frame), path);
        label.replace(';', ":")
    }

    /// The line stack outputs show for `frame`: its own, or with
    /// [`Profile::by_function`] its function's first.
    pub fn shown_line(&self, frame: &Frame) -> u32 {
        if self.by_function {
            frame.first_line
        } else {
            frame.line
        }
    }

    /// A process's root label, when several were sampled: `process PID: COMMAND`.
    pub fn process_label(&self, pid: u32) -> String {
        let command = match self.processes.get(&pid) {
            Some(command) => command.as_str(),
            None if pid == self.info.pid => self.info.command.as_str(),
            None => "?",
        };
        format!("process {pid}: {command}").replace(';', ":")
    }

    /// A thread's root label: `thread NAME (tid)`.
    pub fn thread_label(&self, thread: &ThreadKey) -> String {
        let name = self.thread_name(thread).unwrap_or("?");
        match thread.os_id {
            Some(tid) => format!("thread {name} ({tid})"),
            None => format!("thread {name} ({:#x})", thread.python_id),
        }
        .replace(';', ":")
    }

    /// What share of the samples were idle, and of which waits, largest first (`idle
    /// 60.2% of samples: 30.1% gil, 20.0% lock, 10.1% sleep`; `unknown` where the
    /// kernel did not say); `None` when none was (always in cpu and gil modes).
    pub fn idle_summary(&self) -> Option<String> {
        let mut by_wait: BTreeMap<Option<WaitKind>, u64> = BTreeMap::new();
        for (stack, &count) in self.stacks.iter().filter(|(stack, _)| stack.idle) {
            *by_wait.entry(stack.wait).or_default() += count;
        }
        let idle: u64 = by_wait.values().sum();
        if idle == 0 {
            return None;
        }
        let total = self.total_samples() as f64;
        let mut waits: Vec<_> = by_wait.into_iter().collect();
        // Stable: equal shares keep the order of the kinds, the unknown last.
        waits.sort_by_key(|&(wait, count)| (std::cmp::Reverse(count), wait.is_none()));
        let waits: Vec<String> = waits
            .iter()
            .map(|&(wait, count)| {
                let name = wait.map_or("unknown", WaitKind::name);
                format!("{:.1}% {name}", 100.0 * count as f64 / total)
            })
            .collect();
        Some(format!(
            "idle {:.1}% of samples: {}",
            100.0 * idle as f64 / total,
            waits.join(", ")
        ))
    }

    /// A one-line description of how the profile was made.
    pub fn describe(&self) -> String {
        let i = &self.info;
        let window = match i.window {
            Some((from, to)) => format!(" ({from:.1}–{to:.1} s of the recording)"),
            None => String::new(),
        };
        format!(
            "{} samples, {} mode, {} Hz, {:.1} s{window}, pid {}, {}",
            self.total_samples(),
            i.mode,
            i.rate_hz,
            i.duration_secs,
            i.pid,
            i.python
        )
    }
}

/// How the stack labels of `profiles` name each of their files: short (see
/// [`distinct_short_paths`], over the files of all of them, so that profiles compared
/// side by side name a file alike), or whole where the first asks for whole paths
/// ([`Profile::full_filenames`]).
pub fn label_file_names<'a>(profiles: &[&'a Profile]) -> HashMap<&'a str, &'a str> {
    if profiles
        .first()
        .is_none_or(|profile| profile.full_filenames)
    {
        return HashMap::new();
    }
    let cwd = std::env::current_dir().ok();
    let files = profiles.iter().flat_map(|profile| &profile.frames);
    distinct_short_paths(files.map(|frame| frame.filename.as_str()), cwd.as_deref())
}

/// Keep only the samples whose stack passes `keep`, in the counts and the timeline.
fn retain_stacks(
    stacks: &mut FxHashMap<StackKey, u64>,
    timeline: Option<&mut Timeline>,
    keep: impl Fn(&StackKey) -> bool,
) {
    stacks.retain(|key, _| keep(key));
    if let Some(timeline) = timeline {
        timeline.retain(|stack, _| keep(stack));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile_with_two_threads() -> Profile {
        let mut profile = Profile::new(ProfileInfo::default());
        profile.frames = vec![
            Frame {
                name: "main".into(),
                filename: "m.py".into(),
                line: 3,
                first_line: 1,
            },
            Frame {
                name: "work".into(),
                filename: "m.py".into(),
                line: 9,
                first_line: 8,
            },
        ];
        let a = ThreadKey {
            pid: 1,
            python_id: 1,
            os_id: Some(10),
        };
        let b = ThreadKey {
            pid: 1,
            python_id: 2,
            os_id: None,
        };
        profile.thread_names.insert((1, 1), "MainThread".into());
        for (thread, idle, count) in [(a, false, 3), (b, false, 2), (b, true, 1)] {
            let key = StackKey {
                thread,
                idle,
                wait: None,
                frames: vec![0, 1],
            };
            profile.stacks.insert(key, count);
        }
        profile
    }

    #[test]
    fn stacks_merge_across_threads_unless_threads_are_shown() {
        let mut profile = profile_with_two_threads();
        let merged = profile.labelled_stacks();
        let busy = vec!["main (m.py:3)".to_string(), "work (m.py:9)".to_string()];
        let idle = vec![
            "main (m.py:3)".to_string(),
            "work (m.py:9) [idle]".to_string(),
        ];
        assert_eq!(merged[&busy], 5);
        assert_eq!(merged[&idle], 1);
        profile.show_threads = true;
        let split = profile.labelled_stacks();
        assert_eq!(split.len(), 3);
        assert!(split.keys().any(|k| k[0] == "thread MainThread (10)"));
        assert!(split.keys().any(|k| k[0] == "thread ? (0x2)"));
    }

    #[test]
    fn merged_profiles_share_one_frame_table_and_add_up() {
        let mut a = profile_with_two_threads();
        let mut b = profile_with_two_threads();
        // b numbers its frames the other way round, and has one frame a lacks.
        b.frames.reverse();
        b.frames.push(Frame {
            name: "extra".into(),
            filename: "m.py".into(),
            line: 12,
            first_line: 11,
        });
        b.stacks = b
            .stacks
            .into_iter()
            .map(|(mut key, count)| {
                key.frames = vec![1, 0, 2];
                (key, count)
            })
            .collect();
        b.info.samples = 6;
        a.info.samples = 6;
        a.merge(b.clone()).unwrap();
        assert_eq!(a.frames.len(), 3);
        assert_eq!(a.info.samples, 12);
        let stacks = a.labelled_stacks();
        let deeper = vec![
            "main (m.py:3)".to_string(),
            "work (m.py:9)".to_string(),
            "extra (m.py:12)".to_string(),
        ];
        assert_eq!(stacks[&deeper], 5);
        b.info.mode = "cpu".into();
        let refused = a.merge(b).unwrap_err();
        assert!(refused.contains("cpu mode"), "{refused}");
    }

    #[test]
    fn by_function_the_lines_of_a_function_are_one_frame() {
        let mut profile = profile_with_two_threads();
        profile.frames.push(Frame {
            line: 10,
            ..profile.frames[1].clone()
        });
        crate::report::fixtures::add_stack(&mut profile, 1, false, &[0, 2], 1);
        assert_eq!(profile.labelled_stacks().len(), 3);
        profile.by_function = true;
        let stacks = profile.labelled_stacks();
        let work = vec!["main (m.py:1)".to_string(), "work (m.py:8)".to_string()];
        assert_eq!(stacks[&work], 6);
    }

    #[test]
    fn labels_name_library_files_short_unless_asked_for_whole_paths() {
        let mut profile = profile_with_two_threads();
        profile.frames[1].filename = "/usr/lib/python3.11/json/decoder.py".into();
        let leaf = |profile: &Profile| {
            let stacks = profile.labelled_stacks();
            stacks
                .keys()
                .map(|k| k[1].clone())
                .find(|l| !l.ends_with("[idle]"))
        };
        assert_eq!(leaf(&profile).unwrap(), "work (json/decoder.py:9)");
        profile.full_filenames = true;
        let whole = leaf(&profile).unwrap();
        assert_eq!(whole, "work (/usr/lib/python3.11/json/decoder.py:9)");
        // Another file of the same short name: both are named whole.
        profile.full_filenames = false;
        profile.frames[0].filename = "/usr/lib/python3.12/json/decoder.py".into();
        let roots: Vec<String> = profile
            .labelled_stacks()
            .keys()
            .map(|k| k[0].clone())
            .collect();
        assert!(roots
            .iter()
            .all(|root| root.contains("/usr/lib/python3.12/json/decoder.py")));
        assert_eq!(leaf(&profile).unwrap(), whole);
    }

    #[test]
    fn an_idle_stack_is_marked_with_its_wait() {
        let key = |idle, wait| StackKey {
            thread: ThreadKey {
                pid: 1,
                python_id: 1,
                os_id: None,
            },
            idle,
            wait,
            frames: vec![0],
        };
        assert_eq!(key(false, None).idle_mark(), None);
        assert_eq!(key(true, None).idle_mark(), Some(" [idle]"));
        for kind in WaitKind::ALL {
            let mark = format!(" [idle: {}]", kind.name());
            assert_eq!(key(true, Some(kind)).idle_mark(), Some(mark.as_str()));
        }
    }

    #[test]
    fn idle_samples_can_be_dropped() {
        let mut profile = profile_with_two_threads();
        let idle: u64 = profile
            .stacks
            .iter()
            .filter(|(k, _)| k.idle)
            .map(|(_, c)| c)
            .sum();
        let all = profile.total_samples();
        assert!(idle > 0);
        profile.drop_idle();
        assert_eq!(profile.total_samples(), all - idle);
        assert!(profile.stacks.keys().all(|key| !key.idle));
    }

    #[test]
    fn threads_can_be_filtered_by_name() {
        let mut profile = profile_with_two_threads();
        profile.retain_threads(|_, name| name == Some("MainThread"));
        assert_eq!(profile.total_samples(), 3);
    }
}
