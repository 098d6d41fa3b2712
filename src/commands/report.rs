//! `pyscry report`: show a saved recording as `record` would have, or line by line.

use std::io::Write;

use super::output::OutputFile;
use super::threads;
use crate::cli::ReportArgs;
use crate::error::{Error, Result};
use crate::record;
use crate::report::{lines, table, Format};

/// Run `pyscry report`; returns the exit code.
pub fn run(args: ReportArgs) -> Result<i32> {
    let format = args
        .output
        .as_deref()
        .map(|path| Format::choose(args.format, Some(path)));
    let keep_timeline = format.is_some_and(Format::needs_timeline);
    let recording =
        record::read_file(&args.file, keep_timeline).map_err(|source| Error::BadRecording {
            path: args.file.clone(),
            source,
        })?;
    let mut profile = recording.profile;
    if !recording.complete {
        eprintln!(
            "pyscry: {} ends without its summary: the recording was cut short (was pyscry \
             killed?); showing the {} samples it holds",
            args.file.display(),
            profile.total_samples()
        );
    }
    threads::select(&args.threads, &mut profile);
    if let (Some(path), Some(format)) = (&args.output, format) {
        if format == Format::Pyscry {
            let why =
                "report writes flamegraph or collapsed output; the input is already a recording";
            return Err(anyhow::anyhow!(why).into());
        }
        OutputFile::open(path, format)?.finish(&profile)?;
        eprintln!("pyscry: wrote {}", path.display());
    }
    let stdout = &mut std::io::stdout();
    match &args.lines {
        Some(name) => {
            if !lines::print_lines(&profile, name, stdout).map_err(anyhow::Error::from)? {
                let known: Vec<String> = table::function_rows(&profile)
                    .into_iter()
                    .take(5)
                    .map(|row| row.name)
                    .collect();
                return Err(Error::NoSuchFunction {
                    name: name.clone(),
                    path: args.file.clone(),
                    known: known.join(", "),
                });
            }
        }
        None => table::print_top(&profile, args.top, stdout).map_err(anyhow::Error::from)?,
    }
    stdout.flush().map_err(anyhow::Error::from)?;
    Ok(0)
}
