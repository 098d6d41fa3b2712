//! `record -f pyscry` streams a recording that `report` shows as `record` did, line by
//! line, in other formats, and after pyscry was killed mid-recording.

mod common;

use std::path::Path;
use std::process::{Output, Stdio};
use std::time::Duration;

use common::{marked_line, pyscry, script, wait_until, Python, Target, TempDir};

/// Exit codes, as documented in docs/exit-codes.md.
const OUTPUT_NOT_WRITABLE: i32 = 8;
const BAD_RECORDING: i32 = 10;
const NO_SUCH_FUNCTION: i32 = 11;

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn succeeded(out: Output, what: &str) -> Output {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{what}: {stderr}");
    assert!(!stderr.contains("panicked"), "{what}: {stderr}");
    out
}

/// `pyscry record --rate 200 -f pyscry -o RECORDING -- PYTHON SCRIPT ARGS…`, which
/// must succeed.
fn record_script(python: &Python, recording: &Path, name: &str, args: &[&str]) -> Output {
    let options = ["--rate", "200", "-f", "pyscry"];
    let out = common::record_script(python, &options, recording, name, args);
    succeeded(out, &python.name)
}

/// `pyscry report` with `args`.
fn report(args: &[&str]) -> Output {
    pyscry().arg("report").args(args).output().unwrap()
}

/// The (own %, total %, source) of the row for `line` in a per-line table.
fn line_row(table: &str, line: u32) -> (f64, f64, String) {
    let row = table
        .lines()
        .find(|row| row.split_whitespace().next() == Some(&line.to_string()))
        .unwrap_or_else(|| panic!("no row for line {line} in:\n{table}"));
    let mut fields = row.split_whitespace();
    fields.next();
    let pct = |field: Option<&str>| field.unwrap().trim_end_matches('%').parse::<f64>().unwrap();
    let own = pct(fields.next());
    let total = pct(fields.next());
    (own, total, fields.collect::<Vec<_>>().join(" "))
}

/// Record lines.py into a `.pyscry` file; `report` prints the table `record` printed,
/// and `report --lines work` gives the heavy and the light call line 3:1 of the time,
/// with their source.
fn lines_of_a_function(python: &Python) {
    // The 3:1 split is of the script's time on a CPU: it has one to itself.
    let _serial = common::serial();
    let dir = TempDir::new(&format!("lines-{}", python.name));
    let recording = dir.path("lines.pyscry");
    let lines = script("lines.py");
    let recorded = record_script(python, &recording, "lines.py", &["1.5"]);
    let file = recording.to_str().unwrap();
    let reported = succeeded(report(&[file]), &python.name);
    assert_eq!(stdout(&reported), stdout(&recorded), "{}", python.name);
    assert!(stdout(&recorded).contains("spin"), "{}", stdout(&recorded));

    let table = stdout(&succeeded(report(&[file, "--lines", "work"]), &python.name));
    let heavy = line_row(&table, marked_line(&lines, "heavy"));
    let light = line_row(&table, marked_line(&lines, "light"));
    assert!(
        heavy.2.starts_with("spin(3000)"),
        "{}: {table}",
        python.name
    );
    assert!(
        light.2.starts_with("spin(1000)"),
        "{}: {table}",
        python.name
    );
    let share = heavy.1 / (heavy.1 + light.1);
    assert!(
        (share - 0.75).abs() <= 0.1,
        "{}: heavy line {share:.2} of the two:\n{table}",
        python.name
    );
    // The calls' time is spin's own, not the lines'.
    assert!(heavy.0 < 5.0 && light.0 < 5.0, "{}: {table}", python.name);
    assert!(
        table.contains("def work(seconds):"),
        "{}: {table}",
        python.name
    );

    // Stack outputs name work's frames by line, or with --function by its first line.
    let folded = recording.with_extension("txt");
    let folded_arg = folded.to_str().unwrap();
    let work_lines = |options: &[&str]| -> Vec<u32> {
        let mut args = vec![file, "-o", folded_arg];
        args.extend_from_slice(options);
        succeeded(report(&args), &python.name);
        let text = std::fs::read_to_string(&folded).unwrap();
        let mut lines: Vec<u32> = text
            .split(';')
            .filter_map(|frame| frame.strip_prefix("work ("))
            .map(|rest| rest.split([':', ')']).nth(1).unwrap().parse().unwrap())
            .collect();
        lines.sort();
        lines.dedup();
        lines
    };
    let (heavy, light) = (marked_line(&lines, "heavy"), marked_line(&lines, "light"));
    let by_line = work_lines(&[]);
    assert!(
        by_line.contains(&heavy) && by_line.contains(&light),
        "{}: {by_line:?}",
        python.name
    );
    assert_eq!(work_lines(&["--function"]), [heavy - 3], "{}", python.name);
}

test_each_python!(lines, super::lines_of_a_function);

/// `report -o` writes the other formats, and the thread options apply to them.
#[test]
fn report_writes_other_formats_per_thread() {
    let Some(python) = common::any_python() else {
        return common::skip("report_formats", "no interpreter");
    };
    let dir = TempDir::new("report-formats");
    let recording = dir.path("two.pyscry");
    record_script(&python, &recording, "two_threads.py", &["0.05", "3"]);
    let file = recording.to_str().unwrap();
    let folded = dir.path("two.txt");
    let folded_arg = folded.to_str().unwrap();
    succeeded(report(&[file, "--threads", "-o", folded_arg]), "collapsed");
    let text = std::fs::read_to_string(&folded).unwrap();
    for name in ["worker-a", "worker-b"] {
        assert!(text.contains(&format!("thread {name} (")), "{text}");
    }
    // Files are named short: the standard library's below its directory, the script
    // relative to the working directory (the crate's, where it lives); whole with
    // --full-filenames.
    let script = script("two_threads.py");
    let cwd = std::env::current_dir().unwrap();
    let relative = script.strip_prefix(&cwd).unwrap().to_str().unwrap();
    assert!(text.contains(" (threading.py:"), "{text}");
    assert!(text.contains(&format!("burn ({relative}:")), "{text}");
    assert!(!text.contains("/threading.py:"), "{text}");
    let full = report(&[
        file,
        "--full-filenames",
        "-f",
        "collapsed",
        "-o",
        folded_arg,
    ]);
    succeeded(full, "full filenames");
    let text = std::fs::read_to_string(&folded).unwrap();
    assert!(
        text.contains(&format!("burn ({}:", script.display())),
        "{text}"
    );
    let stdlib = text.lines().any(|l| {
        l.split(';')
            .any(|frame| frame.contains("/threading.py:") && frame.contains("/python"))
    });
    assert!(stdlib, "{text}");
    let one_thread = report(&[
        file,
        "--thread",
        "worker-a",
        "-f",
        "collapsed",
        "-o",
        folded_arg,
    ]);
    succeeded(one_thread, "one thread");
    let text = std::fs::read_to_string(&folded).unwrap();
    let (counts, total) = common::collapsed_shares(&text, &["one", "two", "three"]);
    assert!(
        total > 50 && counts[2] > counts[0],
        "{counts:?} of {total}: {text}"
    );
    // Without --threads, but filtered: only worker-a's samples.
    assert!(!text.contains("thread "), "{text}");
    // A Chrome trace of one thread: its calls in order, as long as they were.
    let trace = dir.path("two.trace.json");
    let trace_arg = trace.to_str().unwrap();
    succeeded(
        report(&[file, "--thread", "worker-a", "-o", trace_arg]),
        "trace",
    );
    let (slices, names) = common::trace_slices(&trace);
    assert_eq!(names.values().collect::<Vec<_>>(), ["worker-a"]);
    assert_eq!(slices.len(), 1, "{names:?}");
    let calls = common::calls_of(
        slices.values().next().unwrap(),
        &["one", "two", "three"],
        30.0,
    );
    let order: Vec<&str> = calls.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(order, ["one", "two", "three"].repeat(3), "{calls:?}");
    for ((_, ms), expected) in calls.iter().zip([50.0, 100.0, 150.0].repeat(3)) {
        assert!((ms - expected).abs() <= 25.0, "{calls:?}");
    }
    // The heatmap shows the script, where nearly all the time goes, with the burn
    // loop's line shaded and its source escaped.
    let html = dir.path("two.html");
    succeeded(report(&[file, "-o", html.to_str().unwrap()]), "heatmap");
    let html = std::fs::read_to_string(&html).unwrap();
    let heading = html
        .lines()
        .find(|l| l.starts_with("<h2") && l.contains("two_threads.py"))
        .unwrap_or_else(|| panic!("no heading of the script: {html}"));
    let share: f64 = heading
        .rsplit(" — ")
        .next()
        .and_then(|share| share.split('%').next()?.parse().ok())
        .unwrap_or_else(|| panic!("no share in {heading}"));
    assert!(share > 50.0, "{heading}");
    let row = html
        .lines()
        .find(|l| l.contains("<td>    while time.time() &lt; end:</td>"))
        .unwrap_or_else(|| panic!("no row of the burn loop: {html}"));
    assert!(row.contains("background:rgba"), "{row}");
    let svg = dir.path("two.svg");
    succeeded(report(&[file, "-o", svg.to_str().unwrap()]), "svg");
    let svg = std::fs::read_to_string(&svg).unwrap();
    assert!(
        svg.contains("<svg") && svg.contains("three"),
        "not a flamegraph"
    );
}

/// A recording keeps the source of what it sampled: once the script is rewritten,
/// `report --lines` and the heatmap still show the lines that ran; with
/// `--no-sources` they read the file as it is now.
#[test]
fn a_recording_keeps_the_source_that_ran() {
    let Some(python) = common::any_python() else {
        return common::skip("a_recording_keeps_the_source_that_ran", "no interpreter");
    };
    let dir = TempDir::new("sources");
    let copy = dir.path("work.py");
    std::fs::copy(script("lines.py"), &copy).unwrap();
    let record = |recording: &Path, extra: &[&str]| {
        let out = pyscry()
            .args(["record", "--rate", "200", "-o"])
            .arg(recording)
            .args(extra)
            .arg("--")
            .arg(&python.path)
            .arg(&copy)
            .arg("0.5")
            .output()
            .unwrap();
        succeeded(out, &python.name);
    };
    let kept = dir.path("kept.pyscry");
    let read_later = dir.path("later.pyscry");
    record(&kept, &[]);
    record(&read_later, &["--no-sources"]);
    // The script is rewritten: its lines now say something else.
    let rewritten: String = std::fs::read_to_string(&copy)
        .unwrap()
        .lines()
        .map(|line| format!("# rewritten: {line}\n"))
        .collect();
    std::fs::write(&copy, rewritten).unwrap();

    let heavy = marked_line(&script("lines.py"), "heavy");
    let table = |recording: &Path| {
        let args = [recording.to_str().unwrap(), "--lines", "work"];
        stdout(&succeeded(report(&args), &python.name))
    };
    let kept_table = table(&kept);
    let row = line_row(&kept_table, heavy);
    assert!(row.2.starts_with("spin(3000)"), "{kept_table}");
    assert!(kept_table.contains("has changed since"), "{kept_table}");
    let later_table = table(&read_later);
    let row = line_row(&later_table, heavy);
    assert!(row.2.starts_with("# rewritten:"), "{later_table}");

    // The heatmap made from the recording shows the lines that ran too.
    let html = dir.path("kept.html");
    let args = [kept.to_str().unwrap(), "-o", html.to_str().unwrap()];
    succeeded(report(&args), "heatmap");
    let html = std::fs::read_to_string(&html).unwrap();
    assert!(html.contains("spin(3000)  # at: heavy"), "{html}");
    assert!(!html.contains("# rewritten:"), "{html}");
    assert!(html.contains("the file has changed since"), "{html}");
}

/// A recording of an attached process stopped by `signal` once samples are on disk;
/// returns `report`'s output on it, and checks that the target runs on.
fn stop_recording_with(signal: &str) -> Output {
    let Some(python) = common::any_python() else {
        panic!("no interpreter");
    };
    let dir = TempDir::new(&format!("report-{signal}"));
    let recording = dir.path("stopped.pyscry");
    let mut target = Target::start(&python, &script("counter.py"), &[]);
    target.next_line();
    let mut recorder = pyscry()
        .args(["record", "--rate", "200", "-o"])
        .arg(&recording)
        .args(["--pid", &target.pid().to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until a flush has put samples in the file, then signal pyscry.
    let flushed = wait_until(Duration::from_secs(20), || {
        std::fs::metadata(&recording).is_ok_and(|m| m.len() > 2000)
    });
    std::thread::sleep(Duration::from_millis(300));
    let signalled = std::process::Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(recorder.id().to_string())
        .status()
        .unwrap();
    assert!(signalled.success());
    let status = recorder.wait().unwrap();
    assert!(flushed, "SIG{signal}: no samples were written");
    assert_eq!(status.success(), signal != "KILL", "SIG{signal}: {status}");
    let out = succeeded(report(&[recording.to_str().unwrap()]), signal);
    assert!(stdout(&out).contains("work"), "{}", stdout(&out));
    assert!(common::process_state(target.pid()).is_some_and(|s| s != 'T' && s != 't'));
    let before = target.next_line();
    assert_ne!(target.next_line(), before, "the target stopped counting");
    out
}

/// pyscry killed while recording leaves a recording that `report` reads, saying it
/// was cut short; the target runs on.
#[test]
fn a_recording_cut_short_is_still_readable() {
    if common::any_python().is_none() {
        return common::skip("report_cut_short", "no interpreter");
    }
    let out = stop_recording_with("KILL");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cut short"), "{stderr}");
}

/// Ctrl-C (and SIGTERM) end a recording properly: it has its summary.
#[test]
fn an_interrupted_recording_is_complete() {
    if common::any_python().is_none() {
        return common::skip("report_interrupted", "no interpreter");
    }
    for signal in ["INT", "TERM"] {
        let out = stop_recording_with(signal);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("cut short"), "SIG{signal}: {stderr}");
    }
}

/// What cannot be read as a recording gets one clear error line and exit code 10.
#[test]
fn unreadable_recordings_are_refused() {
    let dir = TempDir::new("report-bad");
    let text = dir.path("notes.txt");
    std::fs::write(&text, "hello\n").unwrap();
    let corrupt = dir.path("corrupt.pyscry");
    let mut bytes = b"\x89PYSCRY\n".to_vec();
    bytes.extend([0xff; 32]);
    std::fs::write(&corrupt, bytes).unwrap();
    let missing = dir.path("missing.pyscry");
    for (path, message) in [
        (&text, "not a pyscry recording"),
        (&corrupt, "corrupt at byte 8"),
        (&missing, "No such file"),
    ] {
        let out = report(&[path.to_str().unwrap()]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(BAD_RECORDING), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        let line = stderr.trim_end();
        assert!(!line.contains('\n'), "more than one line: {stderr}");
        assert!(line.starts_with("pyscry: error: cannot read "), "{stderr}");
        assert!(line.contains(message), "{stderr}");
    }
}

/// `report --calls`: the callers of burn split its time 1:2:3 as the workload does,
/// and two's time goes to burn; `--sort total` orders the table by total time.
#[test]
fn callers_and_callees_of_a_function() {
    let Some(python) = common::any_python() else {
        return common::skip("callers_and_callees_of_a_function", "no interpreter");
    };
    let _serial = common::serial();
    let dir = TempDir::new("report-calls");
    let recording = dir.path("ratio.pyscry");
    record_script(&python, &recording, "ratio.py", &["0.05", "8"]);
    let file = recording.to_str().unwrap();
    let view = |name: &str| stdout(&succeeded(report(&[file, "--calls", name]), name));
    // The share of a row naming `function`, in the section that `heading` opens.
    let share = |text: &str, heading: &str, function: &str| -> f64 {
        let section = text
            .split(heading)
            .nth(1)
            .unwrap_or_else(|| panic!("{text}"));
        let row = section
            .lines()
            .skip(1)
            .take_while(|line| line.starts_with("  "))
            .find(|line| line.contains(&format!("%  {function} (")))
            .unwrap_or_else(|| panic!("no {function} under {heading}:\n{text}"));
        row.trim().split('%').next().unwrap().parse().unwrap()
    };
    let burn = view("burn");
    let callers = ["one", "two", "three"].map(|f| share(&burn, "called by", f));
    let sum: f64 = callers.iter().sum();
    for (share, expected) in callers.iter().zip([1.0 / 6.0, 1.0 / 3.0, 0.5]) {
        assert!(
            (share / sum - expected).abs() <= 0.05,
            "{callers:?}\n{burn}"
        );
    }
    assert!(
        burn.contains("(nothing: all its time is its own)"),
        "{burn}"
    );
    let two = view("two");
    let total: f64 = two
        .lines()
        .find_map(|line| line.split("total ").nth(1)?.split('%').next()?.parse().ok())
        .unwrap();
    let to_burn = share(&two, "calls (", "burn");
    assert!((to_burn - total).abs() <= 1.0, "{two}");
    // The table ordered by total time, as pstats' cumulative.
    let table = stdout(&succeeded(report(&[file, "--sort", "total"]), "sort"));
    let totals: Vec<f64> = table
        .lines()
        .skip(2)
        .map(|row| row.split_whitespace().nth(1).unwrap())
        .map(|total| total.trim_end_matches('%').parse().unwrap())
        .collect();
    let descending = totals.windows(2).all(|pair| pair[0] >= pair[1]);
    assert!(totals.len() >= 5 && descending, "{table}");
    let conflicting = report(&[file, "--calls", "burn", "--lines", "burn"]);
    assert_eq!(conflicting.status.code(), Some(2));
}

/// `report --from/--to` keeps a stretch of the recording: of ratio.py's one round
/// (one 0.3 s, two 0.6 s, three 0.9 s, in turn), the stretch from 1.1 s to 1.7 s is
/// all three's; the time outputs keep the samples' times.
#[test]
fn a_stretch_of_a_recording() {
    let Some(python) = common::any_python() else {
        return common::skip("a_stretch_of_a_recording", "no interpreter");
    };
    let _serial = common::serial();
    let dir = TempDir::new("report-window");
    let recording = dir.path("seq.pyscry");
    record_script(&python, &recording, "ratio.py", &["0.3", "1"]);
    let file = recording.to_str().unwrap();
    let window = ["--from", "1.1", "--to", "1.7"];
    let folded = dir.path("window.txt");
    let mut args = vec![file, "-o", folded.to_str().unwrap()];
    args.extend(window);
    let table = stdout(&succeeded(report(&args), "window"));
    assert!(
        table.contains("0.6 s (1.1–1.7 s of the recording)"),
        "{table}"
    );
    let text = std::fs::read_to_string(&folded).unwrap();
    let (counts, total) = common::collapsed_shares(&text, &["one", "two", "three"]);
    assert!(total >= 60, "{text}");
    assert!(
        counts[2] as f64 >= 0.95 * total as f64,
        "{counts:?} of {total}: {text}"
    );

    let trace = dir.path("window.trace.json");
    let mut args = vec![file, "-o", trace.to_str().unwrap()];
    args.extend(window);
    succeeded(report(&args), "trace");
    let (slices, _) = common::trace_slices(&trace);
    let all: Vec<&common::TraceSlice> = slices.values().flatten().collect();
    assert!(!all.is_empty());
    for slice in all {
        let inside = slice.start_ms >= 1100.0 && slice.end_ms <= 1700.0 + 10.0;
        assert!(
            inside,
            "{} at {}–{} ms",
            slice.name, slice.start_ms, slice.end_ms
        );
    }

    let out = report(&[file, "--from", "100"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("past its end"), "{stderr}");
}

/// `--lines` with a name no sample ran says which functions there are; an output
/// path that cannot be written is refused.
#[test]
fn an_unknown_function_is_named() {
    let Some(python) = common::any_python() else {
        return common::skip("report_unknown_function", "no interpreter");
    };
    let dir = TempDir::new("report-unknown");
    let recording = dir.path("r.pyscry");
    record_script(&python, &recording, "lines.py", &["0.5"]);
    let out = report(&[recording.to_str().unwrap(), "--lines", "nosuch"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(NO_SUCH_FUNCTION), "{stderr}");
    assert!(stderr.contains("no function named `nosuch`"), "{stderr}");
    assert!(stderr.contains("spin"), "{stderr}");
    let out = report(&[recording.to_str().unwrap(), "--calls", "nosuch"]);
    assert_eq!(out.status.code(), Some(NO_SUCH_FUNCTION));
    let out = report(&[recording.to_str().unwrap(), "-o", "/nonexistent-dir/r.svg"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(OUTPUT_NOT_WRITABLE), "{stderr}");
    assert!(
        stderr.contains("cannot write /nonexistent-dir/r.svg"),
        "{stderr}"
    );
}

/// Two recordings of the 1:2:3 workload, the second with the calls' lengths as 3:2:1:
/// `report --diff` shows `one` gaining and `three` losing a third of the time, and
/// writes differential outputs; both recordings merged give each call a third.
#[test]
fn recordings_compare_and_merge() {
    let Some(python) = common::any_python() else {
        return common::skip("recordings_compare_and_merge", "no interpreter");
    };
    let dir = TempDir::new("report-diff");
    let [before, after] = [("before", "1,2,3"), ("after", "3,2,1")].map(|(name, units)| {
        let path = dir.path(&format!("{name}.pyscry"));
        record_script(&python, &path, "ratio.py", &["0.05", "3", units, "0.3"]);
        path.to_str().unwrap().to_string()
    });
    let table = stdout(&succeeded(
        report(&[&after, "--diff", &before, "--top", "100"]),
        "diff",
    ));
    let total_change = |name: &str| -> f64 {
        let row = table
            .lines()
            .find(|row| row.split_whitespace().nth(6) == Some(name))
            .unwrap_or_else(|| panic!("no {name} in:\n{table}"));
        row.split_whitespace().nth(5).unwrap().parse().unwrap()
    };
    // The calls take 0.9 s of the 1.2 s, after the 0.3 s lead-in: one goes from a
    // sixth to a half of that, three the other way.
    let third = 100.0 / 3.0;
    let moved = third * 0.9 / 1.2;
    for (name, expected) in [("one", moved), ("two", 0.0), ("three", -moved)] {
        let change = total_change(name);
        assert!(
            (change - expected).abs() <= 5.0,
            "{name} {change}:\n{table}"
        );
    }
    let svg = dir.path("diff.svg");
    let svg_arg = svg.to_str().unwrap();
    succeeded(report(&[&after, "--diff", &before, "-o", svg_arg]), "svg");
    let svg = std::fs::read_to_string(&svg).unwrap();
    assert!(
        svg.contains("<svg") && svg.contains("three"),
        "not a flamegraph"
    );
    let folded = dir.path("diff.txt");
    let folded_arg = folded.to_str().unwrap();
    succeeded(
        report(&[&after, "--diff", &before, "-o", folded_arg]),
        "folded",
    );
    let (mut before_three, mut after_three) = (0u64, 0u64);
    for line in std::fs::read_to_string(&folded).unwrap().lines() {
        let mut fields = line.rsplitn(3, ' ');
        let after_count: u64 = fields.next().unwrap().parse().unwrap();
        let before_count: u64 = fields.next().unwrap().parse().unwrap();
        if fields.next().unwrap().contains(";three (") {
            before_three += before_count;
            after_three += after_count;
        }
    }
    assert!(
        before_three > 2 * after_three,
        "{before_three} → {after_three}"
    );

    // Merged: each call has (1 + 3) / 12, (2 + 2) / 12, (3 + 1) / 12 of the calls' time.
    succeeded(report(&[&before, &after, "-o", folded_arg]), "merge");
    let text = std::fs::read_to_string(&folded).unwrap();
    let (counts, _) = common::collapsed_shares(&text, &["one", "two", "three"]);
    let calls: u64 = counts.iter().sum();
    for count in &counts {
        let share = 100.0 * *count as f64 / calls as f64;
        assert!((share - third).abs() <= 4.0, "{counts:?}");
    }
    let merged = stdout(&succeeded(report(&[&before, &after]), "merged table"));
    let one_alone = stdout(&succeeded(report(&[&before]), "table"));
    let samples =
        |table: &str| -> u64 { table.split_whitespace().next().unwrap().parse().unwrap() };
    assert!(samples(&merged) > samples(&one_alone) + 100, "{merged}");

    // What cannot be: a timeline of two recordings, or recordings made differently.
    let trace = dir.path("merged.trace.json");
    let out = report(&[&before, &after, "-o", trace.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("in time"));
    let slower = dir.path("slower.pyscry");
    let options = ["--rate", "50", "-f", "pyscry"];
    let out = common::record_script(&python, &options, &slower, "ratio.py", &["0.02", "1"]);
    succeeded(out, "at 50 Hz");
    let out = report(&[&before, slower.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("cannot be merged"),
        "{stderr}"
    );
}
