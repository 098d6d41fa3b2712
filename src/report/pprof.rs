//! pprof profiles (gzipped `profile.proto`), read by `go tool pprof`, Pyroscope,
//! Grafana and most continuous-profiling services.

use std::collections::HashMap;
use std::io::Write;

use flate2::write::GzEncoder;
use prost::Message;

use super::{Profile, Renderer};
use crate::symbolize::FrameId;

/// A gzipped pprof protobuf: one sample per distinct stack with its count and the
/// time it stands for, labelled with its thread and, in wall mode, idleness and what
/// an idle thread waited for.
pub struct Pprof;

impl Renderer for Pprof {
    fn render(&self, profile: &Profile, out: &mut dyn Write) -> anyhow::Result<()> {
        let bytes = build(profile).encode_to_vec();
        let mut gzip = GzEncoder::new(out, flate2::Compression::default());
        gzip.write_all(&bytes)?;
        gzip.finish()?;
        Ok(())
    }
}

/// The subset of pprof's `profile.proto` (github.com/google/pprof) that pyscry writes;
/// field numbers are the proto's.
pub mod proto {
    /// `perftools.profiles.Profile`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Profile {
        /// What each of a sample's values counts.
        #[prost(message, repeated, tag = "1")]
        pub sample_type: Vec<ValueType>,
        /// The samples.
        #[prost(message, repeated, tag = "2")]
        pub sample: Vec<Sample>,
        /// Code locations (here: a function at a line).
        #[prost(message, repeated, tag = "4")]
        pub location: Vec<Location>,
        /// Functions.
        #[prost(message, repeated, tag = "5")]
        pub function: Vec<Function>,
        /// Every string, referred to by index; entry 0 is "".
        #[prost(string, repeated, tag = "6")]
        pub string_table: Vec<String>,
        /// When the profile was taken, in nanoseconds since the Unix epoch.
        #[prost(int64, tag = "9")]
        pub time_nanos: i64,
        /// How long it covers, in nanoseconds.
        #[prost(int64, tag = "10")]
        pub duration_nanos: i64,
        /// What the sampling period is measured in.
        #[prost(message, optional, tag = "11")]
        pub period_type: Option<ValueType>,
        /// The time between samples.
        #[prost(int64, tag = "12")]
        pub period: i64,
        /// Free-form comments (string indices).
        #[prost(int64, repeated, tag = "13")]
        pub comment: Vec<i64>,
    }

    /// A value's kind and unit (string indices).
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ValueType {
        /// E.g. `samples`, `wall`.
        #[prost(int64, tag = "1")]
        pub r#type: i64,
        /// E.g. `count`, `nanoseconds`.
        #[prost(int64, tag = "2")]
        pub unit: i64,
    }

    /// A stack with its values.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Sample {
        /// Location ids, innermost first.
        #[prost(uint64, repeated, tag = "1")]
        pub location_id: Vec<u64>,
        /// One value per sample type.
        #[prost(int64, repeated, tag = "2")]
        pub value: Vec<i64>,
        /// Labels: thread, idleness, wait.
        #[prost(message, repeated, tag = "3")]
        pub label: Vec<Label>,
    }

    /// A key with a string or a number.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Label {
        /// Key (string index).
        #[prost(int64, tag = "1")]
        pub key: i64,
        /// String value (string index), or 0.
        #[prost(int64, tag = "2")]
        pub str: i64,
        /// Numeric value, when `str` is 0.
        #[prost(int64, tag = "3")]
        pub num: i64,
    }

    /// A place in the code.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Location {
        /// Id, from 1.
        #[prost(uint64, tag = "1")]
        pub id: u64,
        /// The function and line.
        #[prost(message, repeated, tag = "4")]
        pub line: Vec<Line>,
    }

    /// A line of a function.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Line {
        /// The function's id.
        #[prost(uint64, tag = "1")]
        pub function_id: u64,
        /// The line number.
        #[prost(int64, tag = "2")]
        pub line: i64,
    }

    /// A function.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Function {
        /// Id, from 1.
        #[prost(uint64, tag = "1")]
        pub id: u64,
        /// Name (string index).
        #[prost(int64, tag = "2")]
        pub name: i64,
        /// Name as the system knows it (string index): the same here.
        #[prost(int64, tag = "3")]
        pub system_name: i64,
        /// Source file (string index).
        #[prost(int64, tag = "4")]
        pub filename: i64,
        /// First line of the function.
        #[prost(int64, tag = "5")]
        pub start_line: i64,
    }
}

/// Strings by index, each stored once; index 0 is "", as pprof requires.
struct StringTable {
    strings: Vec<String>,
    index: HashMap<String, i64>,
}

impl StringTable {
    fn new() -> StringTable {
        StringTable {
            strings: vec![String::new()],
            index: HashMap::from([(String::new(), 0)]),
        }
    }

    fn id(&mut self, text: &str) -> i64 {
        if let Some(&id) = self.index.get(text) {
            return id;
        }
        let id = self.strings.len() as i64;
        self.strings.push(text.to_string());
        self.index.insert(text.to_string(), id);
        id
    }
}

/// The pprof message for `profile`.
pub fn build(profile: &Profile) -> proto::Profile {
    let mut strings = StringTable::new();
    let info = &profile.info;
    // A sample stands for one period of its thread's time.
    let period = (profile.seconds_per_sample() * 1e9).round() as i64;
    let time_kind = if info.mode == "cpu" { "cpu" } else { "wall" };
    let value_type = |strings: &mut StringTable, kind: &str, unit: &str| proto::ValueType {
        r#type: strings.id(kind),
        unit: strings.id(unit),
    };
    let sample_type = vec![
        value_type(&mut strings, "samples", "count"),
        value_type(&mut strings, time_kind, "nanoseconds"),
    ];
    let period_type = Some(value_type(&mut strings, time_kind, "nanoseconds"));
    let mut functions: HashMap<(&str, &str, u32), u64> = HashMap::new();
    let mut function = Vec::new();
    let mut location = Vec::new();
    let mut location_ids: HashMap<FrameId, u64> = HashMap::new();
    let mut sample = Vec::with_capacity(profile.stacks.len());
    let (thread_key, thread_id_key, idle_key, wait_key) = (
        strings.id("thread"),
        strings.id("thread_id"),
        strings.id("idle"),
        strings.id("wait"),
    );
    let mut stacks: Vec<_> = profile.stacks.iter().collect();
    stacks.sort_by(|a, b| {
        let (a, b) = (a.0, b.0);
        (&a.thread, a.idle, a.wait, &a.frames).cmp(&(&b.thread, b.idle, b.wait, &b.frames))
    });
    for (stack, &count) in stacks {
        let mut location_id = Vec::with_capacity(stack.frames.len());
        for &id in stack.frames.iter().rev() {
            let next = location.len() as u64 + 1;
            let loc = *location_ids.entry(id).or_insert(next);
            if loc == next {
                let frame = profile.frame(id);
                let key = (
                    frame.name.as_str(),
                    frame.filename.as_str(),
                    frame.first_line,
                );
                let next_function = function.len() as u64 + 1;
                let function_id = *functions.entry(key).or_insert(next_function);
                if function_id == next_function {
                    let name = strings.id(&frame.name);
                    function.push(proto::Function {
                        id: function_id,
                        name,
                        system_name: name,
                        filename: strings.id(&frame.filename),
                        start_line: frame.first_line.into(),
                    });
                }
                location.push(proto::Location {
                    id: loc,
                    line: vec![proto::Line {
                        function_id,
                        line: frame.line.into(),
                    }],
                });
            }
            location_id.push(loc);
        }
        let mut label = vec![];
        if let Some(name) = profile.thread_name(&stack.thread) {
            label.push(proto::Label {
                key: thread_key,
                str: strings.id(name),
                num: 0,
            });
        }
        if let Some(tid) = stack.thread.os_id {
            label.push(proto::Label {
                key: thread_id_key,
                str: 0,
                num: tid.into(),
            });
        }
        if stack.idle {
            label.push(proto::Label {
                key: idle_key,
                str: strings.id("true"),
                num: 0,
            });
        }
        if let Some(wait) = stack.wait {
            label.push(proto::Label {
                key: wait_key,
                str: strings.id(wait.name()),
                num: 0,
            });
        }
        sample.push(proto::Sample {
            location_id,
            value: vec![count as i64, count as i64 * period],
            label,
        });
    }
    let comment = vec![strings.id(&format!("pyscry: {}", profile.describe()))];
    proto::Profile {
        sample_type,
        sample,
        location,
        function,
        string_table: strings.strings,
        time_nanos: (info.started_unix_secs as i64).saturating_mul(1_000_000_000),
        duration_nanos: (info.duration_secs * 1e9) as i64,
        period_type,
        period,
        comment,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixtures::{add_stack, frame};
    use crate::report::ProfileInfo;

    #[test]
    fn stacks_become_samples_of_shared_locations_and_functions() {
        let mut profile = Profile::new(ProfileInfo {
            rate_hz: 100.0,
            mode: "wall".into(),
            ..ProfileInfo::default()
        });
        profile.frames = vec![
            frame("main", 3, 1),
            frame("work", 7, 1),
            frame("work", 8, 1),
        ];
        profile.thread_names.insert((1, 1), "MainThread".into());
        add_stack(&mut profile, 1, false, &[0, 1], 3);
        add_stack(&mut profile, 1, true, &[0, 2], 2);
        let pprof = build(&profile);
        let text = |id: i64| pprof.string_table[id as usize].as_str();
        assert_eq!(text(0), "");
        assert_eq!(pprof.period, 10_000_000);
        assert_eq!(pprof.location.len(), 3);
        // "work" at two lines is one function.
        assert_eq!(pprof.function.len(), 2);
        let busy = &pprof.sample[0];
        assert_eq!(busy.value, vec![3, 30_000_000]);
        let leaf = &pprof.location[busy.location_id[0] as usize - 1];
        assert_eq!(leaf.line[0].line, 7);
        let function = &pprof.function[leaf.line[0].function_id as usize - 1];
        assert_eq!(text(function.name), "work");
        let labels: Vec<(&str, &str, i64)> = pprof.sample[1]
            .label
            .iter()
            .map(|l| (text(l.key), text(l.str), l.num))
            .collect();
        assert_eq!(
            labels,
            vec![
                ("thread", "MainThread", 0),
                ("thread_id", "", 11),
                ("idle", "true", 0)
            ]
        );
        // The gzipped bytes decode to the same message.
        let mut bytes = Vec::new();
        Pprof.render(&profile, &mut bytes).unwrap();
        let mut plain = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&bytes[..]), &mut plain)
            .unwrap();
        assert_eq!(proto::Profile::decode(&plain[..]).unwrap(), pprof);
    }
}
