//! `pyscry report`: show saved recordings as `record` would have, line by line, or
//! against an earlier recording.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::output::{table_output, OutputFile, STANDARD_STREAM};
use super::view;
use crate::cli::ReportArgs;
use crate::error::{Error, Result};
use crate::record;
use crate::report::{calls, diff, lines, table, Format, Profile};

/// A view of the functions of one name: false when the profile has none.
type FunctionView = fn(&Profile, &str, &mut dyn Write) -> std::io::Result<bool>;

/// Run `pyscry report`; returns the exit code.
pub fn run(args: ReportArgs) -> Result<i32> {
    let format = args
        .output
        .as_deref()
        .map(|path| Format::choose(args.format, Some(path)));
    let shows_time = format.is_some_and(Format::needs_timeline);
    if shows_time && (args.files.len() > 1 || args.diff.is_some()) {
        let why = "speedscope and chrometrace show one recording's samples in time; \
                   merged or compared recordings have no one timeline";
        return Err(anyhow::anyhow!(why).into());
    }
    let window = (args.from.is_some() || args.to.is_some())
        .then(|| (args.from.unwrap_or(0.0), args.to.unwrap_or(f64::INFINITY)));
    if window.is_some() && args.files.len() > 1 {
        let why = "--from and --to cut one recording; merged recordings have no one timeline";
        return Err(anyhow::anyhow!(why).into());
    }
    let mut profile = read_merged(&args.files, shows_time || window.is_some())?;
    if let Some((from, to)) = window {
        keep_window(&mut profile, from, to)?;
    }
    view::apply(&args.view, &mut profile);
    if let Some(before) = &args.diff {
        let mut before = read(before, false)?;
        view::apply(&args.view, &mut before);
        return compare(&args, &before, &profile, format);
    }
    let mut profile_on_stdout = false;
    if let (Some(path), Some(format)) = (&args.output, format) {
        if format == Format::Pyscry {
            let why = "report writes the other formats; the input is already a recording";
            return Err(anyhow::anyhow!(why).into());
        }
        let output = OutputFile::open(path, format)?;
        let name = output.name();
        profile_on_stdout = output.is_standard_output();
        output.finish(&profile)?;
        eprintln!("pyscry: wrote {name}");
    }
    let stdout = &mut table_output(profile_on_stdout);
    // A view of one function: its lines, or its callers and callees.
    let one_function = match (&args.lines, &args.calls) {
        (Some(name), _) => Some((name, lines::print_lines as FunctionView)),
        (None, Some(name)) => Some((name, calls::print_calls as FunctionView)),
        (None, None) => None,
    };
    match one_function {
        Some((name, view)) => {
            if !view(&profile, name, stdout).map_err(anyhow::Error::from)? {
                let known: Vec<String> = table::function_rows(&profile)
                    .into_iter()
                    .take(5)
                    .map(|row| row.name)
                    .collect();
                return Err(Error::NoSuchFunction {
                    name: name.clone(),
                    recordings: describe_files(&args.files),
                    known: known.join(", "),
                });
            }
        }
        None => table::print_top(&profile, args.table.top, args.table.sort, stdout)
            .map_err(anyhow::Error::from)?,
    }
    stdout.flush().map_err(anyhow::Error::from)?;
    Ok(0)
}

/// Keep the samples from `from` to `to` seconds into the recording; an empty or
/// reversed window, or one that starts after the recording ends, is refused.
fn keep_window(profile: &mut Profile, from: f64, to: f64) -> Result<()> {
    let length = profile.info.duration_secs;
    if from >= to {
        let why = format!("--from {from} is not before --to {to}");
        return Err(anyhow::anyhow!(why).into());
    }
    if from >= length {
        let why = format!("the recording is {length:.1} s long: --from {from} is past its end");
        return Err(anyhow::anyhow!(why).into());
    }
    profile.keep_window(from, to);
    Ok(())
}

/// The recording at `path` (standard input for `-`), with a warning if it was cut
/// short.
fn read(path: &Path, keep_timeline: bool) -> Result<Profile> {
    let stdin = path == Path::new(STANDARD_STREAM);
    let read = match stdin {
        true => record::read_stream(std::io::stdin().lock(), keep_timeline),
        false => record::read_file(path, keep_timeline),
    };
    let recording = read.map_err(|source| Error::BadRecording {
        path: match stdin {
            true => PathBuf::from("standard input"),
            false => path.to_path_buf(),
        },
        source,
    })?;
    if !recording.complete {
        eprintln!(
            "pyscry: {} ends without its summary: the recording was cut short (was pyscry \
             killed?); showing the {} samples it holds",
            path.display(),
            recording.profile.total_samples()
        );
    }
    Ok(recording.profile)
}

/// The recordings at `paths` merged into one profile.
fn read_merged(paths: &[PathBuf], keep_timeline: bool) -> Result<Profile> {
    let mut profile = read(&paths[0], keep_timeline)?;
    for path in &paths[1..] {
        profile.merge(read(path, false)?).map_err(|why| {
            anyhow::anyhow!(
                "{} and {}: {why}",
                describe_files(&paths[..1]),
                path.display()
            )
        })?;
    }
    Ok(profile)
}

fn describe_files(paths: &[PathBuf]) -> String {
    let names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    names.join(", ")
}

/// `report --diff`: the table of changes, and the differential output if asked for.
fn compare(
    args: &ReportArgs,
    before: &Profile,
    after: &Profile,
    format: Option<Format>,
) -> Result<i32> {
    let mut profile_on_stdout = false;
    if let (Some(path), Some(format)) = (&args.output, format) {
        if !matches!(format, Format::Flamegraph | Format::Collapsed) {
            let why = "--diff writes a differential flamegraph (.svg) or folded stacks \
                       with both counts (.txt)";
            return Err(anyhow::anyhow!(why).into());
        }
        let output = OutputFile::open(path, format)?;
        let name = output.name();
        profile_on_stdout = output.is_standard_output();
        output.write_with(|out| match format {
            Format::Flamegraph => diff::draw_flamegraph(before, after, out),
            _ => {
                for line in diff::differential_lines(before, after)? {
                    writeln!(out, "{line}")?;
                }
                Ok(())
            }
        })?;
        eprintln!("pyscry: wrote {name}");
    }
    let stdout = &mut table_output(profile_on_stdout);
    diff::print_changes(before, after, args.table.top, stdout).map_err(anyhow::Error::from)?;
    stdout.flush().map_err(anyhow::Error::from)?;
    Ok(0)
}
