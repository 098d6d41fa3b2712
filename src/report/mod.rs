//! Aggregated profiles and every way of rendering them.
//!
//! Renderers only see a [`Profile`]; they never read process memory.

pub mod calls;
pub mod chrome;
pub mod collapsed;
pub mod diff;
pub mod flamegraph;
pub mod heatmap;
pub mod lines;
pub mod paths;
pub mod pprof;
pub mod profile;
pub mod pstats;
pub mod sources;
pub mod speedscope;
pub mod table;
pub mod timeline;

use std::io::Write;

pub use profile::{Profile, ProfileInfo};

/// Hand-made profiles for the renderers' unit tests.
#[cfg(test)]
pub(crate) mod fixtures {
    use super::profile::StackKey;
    use super::Profile;
    use crate::sampler::{Sample, ThreadKey};
    use crate::symbolize::{Frame, FrameId};
    use crate::target::activity::WaitKind;

    /// A frame of `w.py`.
    pub fn frame(name: &str, line: u32, first_line: u32) -> Frame {
        Frame {
            name: name.into(),
            filename: "w.py".into(),
            line,
            first_line,
        }
    }

    /// Count `count` samples of `frames` (root first) in thread `python_id` of process
    /// 1, whose kernel id is `python_id + 10`.
    pub fn add_stack(
        profile: &mut Profile,
        python_id: u64,
        idle: bool,
        frames: &[FrameId],
        count: u64,
    ) {
        let key = StackKey {
            thread: ThreadKey {
                pid: 1,
                python_id,
                os_id: Some(python_id as u32 + 10),
            },
            idle,
            wait: None,
            frames: frames.to_vec(),
        };
        *profile.stacks.entry(key).or_default() += count;
    }

    /// Take one sample of `frames` (root first) in thread `python_id` of process 1
    /// (kernel id `python_id + 10`), `time_ms` after the start, as the sampler would.
    pub fn sample_at(
        profile: &mut Profile,
        python_id: u64,
        idle: bool,
        frames: &[FrameId],
        time_ms: u64,
    ) {
        let sample = sample_of(python_id, idle, frames, time_ms);
        profile.add_sample(&sample);
    }

    /// [`sample_at`] of an idle thread that waits for `wait`.
    pub fn waiting_sample_at(
        profile: &mut Profile,
        python_id: u64,
        wait: WaitKind,
        frames: &[FrameId],
        time_ms: u64,
    ) {
        let sample = Sample {
            wait: Some(wait),
            ..sample_of(python_id, true, frames, time_ms)
        };
        profile.add_sample(&sample);
    }

    fn sample_of(python_id: u64, idle: bool, frames: &[FrameId], time_ms: u64) -> Sample {
        Sample {
            elapsed: std::time::Duration::from_millis(time_ms),
            thread: ThreadKey {
                pid: 1,
                python_id,
                os_id: Some(python_id as u32 + 10),
            },
            thread_state: 0,
            frames: frames.iter().rev().copied().collect(),
            idle,
            wait: None,
            holds_gil: false,
        }
    }
}

/// An output format that a whole profile can be written in.
pub trait Renderer {
    /// Write `profile` to `out`.
    fn render(&self, profile: &Profile, out: &mut dyn Write) -> anyhow::Result<()>;
}

/// The file formats `record --format` offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// An interactive SVG flamegraph.
    Flamegraph,
    /// Folded stacks: `root;…;leaf COUNT` per line, for other flamegraph tools.
    Collapsed,
    /// pprof (gzipped protobuf), for `go tool pprof`, Pyroscope and Grafana.
    Pprof,
    /// cProfile's pstats file, for `pstats.Stats`, snakeviz, tuna and gprof2dot.
    Pstats,
    /// speedscope JSON, one profile per thread, samples in time order.
    Speedscope,
    /// Chrome trace JSON, each thread's calls in time, for Perfetto and chrome://tracing.
    Chrometrace,
    /// An HTML page of the sampled source files, each line shaded by its share of the
    /// samples, with its own and total time.
    Heatmap,
    /// The recording itself, streamed as it is made, for `pyscry report`.
    Pyscry,
}

impl Format {
    /// The renderer for this format; `None` for a recording, which is not rendered
    /// from a profile but written while sampling (`crate::record`).
    pub fn renderer(self) -> Option<Box<dyn Renderer>> {
        match self {
            Format::Flamegraph => Some(Box::new(flamegraph::Flamegraph)),
            Format::Collapsed => Some(Box::new(collapsed::Collapsed)),
            Format::Pprof => Some(Box::new(pprof::Pprof)),
            Format::Pstats => Some(Box::new(pstats::Pstats)),
            Format::Speedscope => Some(Box::new(speedscope::Speedscope)),
            Format::Chrometrace => Some(Box::new(chrome::ChromeTrace)),
            Format::Heatmap => Some(Box::new(heatmap::Heatmap)),
            Format::Pyscry => None,
        }
    }

    /// The usual file extension.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Flamegraph => "svg",
            Format::Collapsed => "txt",
            Format::Pprof => "pb.gz",
            Format::Pstats => "pstats",
            Format::Speedscope => "speedscope.json",
            Format::Chrometrace => "trace.json",
            Format::Heatmap => "html",
            Format::Pyscry => "pyscry",
        }
    }

    /// Whether the format shows time, and so needs the profile's timeline: every
    /// sample kept in order ([`Profile::keep_timeline`]).
    pub fn needs_timeline(self) -> bool {
        matches!(self, Format::Speedscope | Format::Chrometrace)
    }

    /// Whether the format shows source lines, and so keeps a copy of the sampled
    /// source files ([`Profile::sources`]): a recording, for the reports made from
    /// it, and a heatmap.
    pub fn shows_source(self) -> bool {
        matches!(self, Format::Pyscry | Format::Heatmap)
    }

    /// The format `--format` names, or else the one `path`'s extension implies
    /// (`.pyscry`, `.txt`/`.folded`/`.collapsed`, `.pb.gz`/`.pprof`,
    /// `.pstats`/`.prof`, `.trace.json`, `.json`, `.html`), or else a flamegraph.
    pub fn choose(given: Option<Format>, path: Option<&std::path::Path>) -> Format {
        let by_extension = || {
            let name = path?.file_name()?.to_str()?;
            let (_, extension) = name.rsplit_once('.')?;
            match extension {
                "pyscry" => Some(Format::Pyscry),
                "txt" | "folded" | "collapsed" => Some(Format::Collapsed),
                "pprof" => Some(Format::Pprof),
                "pstats" | "prof" => Some(Format::Pstats),
                "json" if name.ends_with(".trace.json") => Some(Format::Chrometrace),
                "json" => Some(Format::Speedscope),
                "gz" if name.ends_with(".pb.gz") => Some(Format::Pprof),
                "html" | "htm" => Some(Format::Heatmap),
                _ => None,
            }
        };
        given.or_else(by_extension).unwrap_or(Format::Flamegraph)
    }
}

#[cfg(test)]
mod tests {
    use super::Format;
    use std::path::Path;

    #[test]
    fn the_format_follows_the_option_then_the_extension() {
        let choose = |given, path: &str| Format::choose(given, Some(Path::new(path)));
        assert_eq!(choose(None, "a.pyscry"), Format::Pyscry);
        assert_eq!(choose(None, "a.folded"), Format::Collapsed);
        assert_eq!(choose(None, "a.svg"), Format::Flamegraph);
        assert_eq!(choose(None, "a"), Format::Flamegraph);
        assert_eq!(choose(None, "a.pb.gz"), Format::Pprof);
        assert_eq!(choose(None, "a.pprof"), Format::Pprof);
        assert_eq!(choose(None, "a.tar.gz"), Format::Flamegraph);
        assert_eq!(choose(None, "a.prof"), Format::Pstats);
        assert_eq!(choose(None, "a.speedscope.json"), Format::Speedscope);
        assert_eq!(choose(None, "a.json"), Format::Speedscope);
        assert_eq!(choose(None, "a.trace.json"), Format::Chrometrace);
        assert_eq!(choose(Some(Format::Collapsed), "a.svg"), Format::Collapsed);
        assert_eq!(Format::choose(None, None), Format::Flamegraph);
    }
}
