//! `pyscry record` gets time shares right and writes its outputs.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::{collapsed_shares, pyscry, script, Python, TempDir};

/// `pyscry record --rate 200 -o OUT_PATH -- PYTHON ratio.py UNIT ROUNDS 1,2,3 0.3`
/// (the format from the extension). The 0.3 s lead-in keeps a sampler that starts late
/// on a loaded machine from missing part of the first round.
fn record_ratio(python: &Python, out_path: &Path, unit: &str, rounds: &str) -> Output {
    common::record_script(
        python,
        &["--rate", "200"],
        out_path,
        "ratio.py",
        &[unit, rounds, "1,2,3", "0.3"],
    )
}

/// Record the 1:2:3 workload (0.1 s units, 3 rounds) on any interpreter into
/// `file_name` of a new scratch directory, which must succeed; `None`, reported as
/// skipped by `test`, when there is no interpreter.
fn ratio_recording(test: &str, file_name: &str) -> Option<(Python, TempDir, PathBuf)> {
    let Some(python) = common::any_python() else {
        common::skip(test, "no interpreter");
        return None;
    };
    let dir = TempDir::new(test);
    let out_path = dir.path(file_name);
    let out = record_ratio(&python, &out_path, "0.1", "3");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    Some((python, dir, out_path))
}

/// The samples in one, two and three must be within 3 points of 16.7 / 33.3 / 50 % of
/// their sum.
fn assert_one_two_three(counts: &[u64], what: &str) {
    let in_workload: u64 = counts.iter().sum();
    for (count, expected) in counts.iter().zip([100.0 / 6.0, 100.0 / 3.0, 50.0]) {
        let share = 100.0 * *count as f64 / in_workload as f64;
        assert!(
            (share - expected).abs() <= 3.0,
            "{what}: share {share:.1}% vs {expected:.1}% (counts {counts:?})"
        );
    }
}

/// Record the 1:2:3 workload in launch mode into folded stacks; the shares must hold.
fn shares_one_two_three(python: &Python) {
    let dir = TempDir::new(&format!("ratio-{}", python.name));
    let out_path = dir.path("ratio.txt");
    let out = record_ratio(python, &out_path, "0.15", "4");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{}: {stderr}", python.name);
    let text = std::fs::read_to_string(&out_path).unwrap();
    let (counts, total) = collapsed_shares(&text, &["one", "two", "three"]);
    assert!(total > 400, "{}: only {total} samples", python.name);
    assert_one_two_three(&counts, &python.name);
    // The summary and the table are printed.
    assert!(stderr.contains("samples"), "{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("burn"), "{}: table: {stdout}", python.name);
}

test_each_python!(one_two_three, super::shares_one_two_three);

#[test]
fn default_output_is_an_svg_flamegraph_named_after_the_script() {
    let Some(python) = common::any_python() else {
        return common::skip("default_output", "no interpreter");
    };
    let dir = TempDir::new("svg");
    let out = pyscry()
        .current_dir(&dir.0)
        .arg("record")
        .arg("--")
        .arg(&python.path)
        .arg(script("ratio.py"))
        .args(["0.05", "2"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let svgs: Vec<_> = std::fs::read_dir(&dir.0)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(svgs.len(), 1, "{svgs:?}");
    assert!(
        svgs[0].starts_with("pyscry-ratio-") && svgs[0].ends_with(".svg"),
        "{svgs:?}"
    );
    let svg = std::fs::read_to_string(dir.path(&svgs[0])).unwrap();
    assert!(svg.contains("<svg"), "not an SVG");
    assert!(svg.contains("three"), "flamegraph lacks the functions");
    assert!(
        svg.contains("wall mode"),
        "flamegraph does not say how it was made"
    );
}

#[test]
fn a_failing_program_is_reported_and_its_recording_kept() {
    let Some(python) = common::any_python() else {
        return common::skip("failing_program", "no interpreter");
    };
    let dir = TempDir::new("fail");
    let out_path = dir.path("fail.txt");
    let out = pyscry()
        .args(["record", "-f", "collapsed", "-o"])
        .arg(&out_path)
        .arg("--")
        .arg(&python.path)
        .arg(script("fail.py"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("exited with code 3"), "{stderr}");
    let text = std::fs::read_to_string(&out_path).unwrap();
    assert!(
        text.contains("busy"),
        "recording lacks the program's work: {text}"
    );
}

/// Check that `out` wrote folded stacks alone to standard output, `burner` among
/// them, and the table to standard error; `what` names the run.
fn assert_folded_on_stdout(out: &Output, what: &str) {
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{what}: {stderr}");
    let folded = stdout.lines().all(|line| {
        line.rsplit_once(' ')
            .is_some_and(|(stack, count)| !stack.is_empty() && count.parse::<u64>().is_ok())
    });
    assert!(folded && stdout.contains(";burner ("), "{what}: {stdout}");
    assert!(
        stderr.contains("own%") && stderr.contains("burner"),
        "{what}: {stderr}"
    );
}

/// In wall mode, each idle stack says what its thread waits for: a lock, a pipe, a
/// sleep (`select` on no file before 3.11), and the GIL, which two threads spinning in
/// turn wait for. A free-threaded build has its GIL off (never `gil`), unless it turns
/// it on (`PYTHON_GIL=1` here; an extension module that needs the GIL does the same).
fn idle_stacks_say_what_they_wait_for(python: &Python) {
    for (env, gil_on) in common::gil_environments(python) {
        recorded_waits(python, env, gil_on);
    }
}

/// The waits of `waits.py` recorded with `env` set, the GIL in force or not.
fn recorded_waits(python: &Python, env: &[(&str, &str)], gil_on: bool) {
    let name = format!("{}{env:?}", python.name);
    let dir = TempDir::new(&format!("waits-{}-{}", python.name, env.len()));
    let recording = dir.path("waits.pyscry");
    let out = common::record_script_in(
        env,
        python,
        &["--rate", "200"],
        &recording,
        "waits.py",
        &["1"],
    );
    assert!(
        out.status.success(),
        "{name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let folded = pyscry()
        .arg("report")
        .arg(&recording)
        .args(["-f", "collapsed", "-o", "-"])
        .output()
        .unwrap();
    let folded = String::from_utf8_lossy(&folded.stdout);
    // The samples of each thread's stacks by the mark of their innermost frame (`""`
    // when running).
    let marks = |function: &str| -> std::collections::BTreeMap<String, u64> {
        let mut marks = std::collections::BTreeMap::new();
        for line in folded.lines() {
            let Some((stack, count)) = line.rsplit_once(' ') else {
                continue;
            };
            let leaf = stack.rsplit(';').next().unwrap_or_default();
            if leaf.starts_with(&format!("{function} (")) {
                let mark = leaf.split_once(") ").map_or("", |(_, mark)| mark);
                *marks.entry(mark.to_string()).or_default() += count.parse::<u64>().unwrap();
            }
        }
        marks
    };
    let share = |marks: &std::collections::BTreeMap<String, u64>, mark: &str| {
        let total: u64 = marks.values().sum();
        marks.get(mark).copied().unwrap_or(0) as f64 / total.max(1) as f64
    };
    for (function, mark) in [
        ("hold_lock", "[idle: lock]"),
        ("read_pipe", "[idle: io]"),
        ("nap", "[idle: sleep]"),
    ] {
        let seen = marks(function);
        // A thread on its way into its wait, or waking for the GIL, may be seen
        // otherwise now and then.
        assert!(
            seen.values().sum::<u64>() >= 50 && share(&seen, mark) >= 0.9,
            "{name}: {function}: {seen:?}\n{folded}"
        );
    }
    // The table's idle line says the same, largest share first.
    let table = String::from_utf8_lossy(&out.stdout);
    let idle = table.lines().find(|line| line.starts_with("idle "));
    let idle = idle.unwrap_or_else(|| panic!("{name}: no idle line: {table}"));
    for wait in ["% lock", "% io", "% sleep"] {
        assert!(idle.contains(wait), "{name}: {idle}");
    }
    assert_eq!(idle.contains("% gil"), gil_on, "{name}: {idle}");
    let spin = marks("spin");
    assert!(spin.values().sum::<u64>() >= 100, "{name}: {spin:?}");
    assert!(share(&spin, "[idle: lock]") < 0.05, "{name}: {spin:?}");
    let gil = share(&spin, "[idle: gil]");
    if !gil_on {
        assert_eq!(gil, 0.0, "{name}: {spin:?}");
    } else {
        // One waits while the other holds it: asleep for much of that time, but on
        // 2.7 mostly awake, as each release wakes it only to find the GIL taken again.
        let least = if python.version().0 == 2 { 0.01 } else { 0.1 };
        assert!(gil >= least, "{name}: {spin:?}");
    }
}

test_each_python!(waits, super::idle_stacks_say_what_they_wait_for);

/// `-o -` writes the profile to standard output, which then holds nothing else: the
/// table and the launched program's own output go to standard error. `report -o -`
/// does the same.
#[test]
fn a_profile_on_standard_output_is_kept_apart() {
    let Some(python) = common::any_python() else {
        return common::skip("profile_on_stdout", "no interpreter");
    };
    let run = |options: &[&str]| {
        pyscry()
            .arg("record")
            .args(["--rate", "200"])
            .args(options)
            .arg("--")
            .arg(&python.path)
            .arg(script("sleep_burn.py"))
            .args(["0.1", "5"])
            .output()
            .unwrap()
    };
    let out = run(&["-f", "collapsed", "-o", "-"]);
    assert_folded_on_stdout(&out, "record -o -");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("truth sleeper="), "{stderr}");
    assert!(stderr.contains("wrote standard output"), "{stderr}");

    let dir = TempDir::new("profile-on-stdout");
    let recording = dir.path("run.pyscry");
    let recorded = run(&["-o", recording.to_str().unwrap()]);
    assert!(recorded.status.success());
    let report = |options: &[&str]| {
        let out = pyscry()
            .arg("report")
            .arg(&recording)
            .args(["-f", "collapsed", "-o", "-"])
            .args(options)
            .output()
            .unwrap();
        assert_folded_on_stdout(&out, &format!("report -o - {options:?}"));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    // A recording piped in (`report -`) reads as the file does.
    let piped = pyscry()
        .args(["report", "-"])
        .stdin(std::fs::File::open(&recording).unwrap())
        .output()
        .unwrap();
    let from_file = pyscry().arg("report").arg(&recording).output().unwrap();
    assert!(
        piped.status.success(),
        "{}",
        String::from_utf8_lossy(&piped.stderr)
    );
    assert_eq!(piped.stdout, from_file.stdout);
    let all = report(&[]);
    // time.sleep sleeps in the kernel (`select` on no file before 3.11).
    assert!(
        all.contains(";sleeper (") && all.contains(" [idle: sleep] "),
        "{all}"
    );
    // --no-idle keeps what ran: the burner, and the sleeper only where a tick caught
    // it running on its way into time.sleep.
    let busy = report(&["--no-idle"]);
    let (counts, total) = collapsed_shares(&busy, &["sleeper", "burner"]);
    assert!(
        !busy.contains("[idle") && counts[1] > 0 && counts[0] * 10 <= total,
        "{busy}"
    );
}

#[test]
fn duration_stops_a_launched_program() {
    let Some(python) = common::any_python() else {
        return common::skip("duration", "no interpreter");
    };
    let dir = TempDir::new("duration");
    let out_path = dir.path("d.txt");
    let start = std::time::Instant::now();
    let out = pyscry()
        .args(["record", "--duration", "1", "-f", "collapsed", "-o"])
        .arg(&out_path)
        .arg("--")
        .arg(&python.path)
        .arg(script("counter.py"))
        .stdout(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(start.elapsed().as_secs_f64() < 20.0);
    let text = std::fs::read_to_string(&out_path).unwrap();
    assert!(text.contains("work"), "{text}");
}

/// `-o FILE.pb.gz` writes a gzipped pprof profile whose samples hold the 1:2:3 shares,
/// with each function named once and its thread labelled.
#[test]
fn pprof_holds_the_shares() {
    use prost::Message;
    use pyscry::report::pprof::proto;
    use std::io::Read;

    let Some((_python, _dir, out_path)) = ratio_recording("pprof", "ratio.pb.gz") else {
        return;
    };
    let gzipped = std::fs::read(&out_path).unwrap();
    let mut bytes = Vec::new();
    flate2::read::GzDecoder::new(&gzipped[..])
        .read_to_end(&mut bytes)
        .expect("gzipped");
    let profile = proto::Profile::decode(&bytes[..]).expect("a pprof profile");
    let text = |id: i64| profile.string_table[id as usize].as_str();
    let function_name = |location_id: u64| {
        let location = &profile.location[location_id as usize - 1];
        assert_eq!(location.id, location_id);
        let function = &profile.function[location.line[0].function_id as usize - 1];
        text(function.name)
    };
    let mut counts = [0u64; 3];
    for sample in &profile.sample {
        let names: Vec<&str> = sample
            .location_id
            .iter()
            .map(|&l| function_name(l))
            .collect();
        for (i, wanted) in ["one", "two", "three"].iter().enumerate() {
            if names.contains(wanted) {
                counts[i] += sample.value[0] as u64;
            }
        }
        assert_eq!(sample.value[1], sample.value[0] * profile.period);
        let labels: Vec<&str> = sample.label.iter().map(|l| text(l.key)).collect();
        assert!(labels.contains(&"thread_id"), "{labels:?}");
    }
    assert!(counts.iter().sum::<u64>() > 300, "{counts:?}");
    assert_one_two_three(&counts, "pprof");
    let mut functions: Vec<(i64, i64, i64)> = profile
        .function
        .iter()
        .map(|f| (f.name, f.filename, f.start_line))
        .collect();
    let listed = functions.len();
    functions.sort();
    functions.dedup();
    assert_eq!(functions.len(), listed, "a function is listed twice");
    assert_eq!(text(profile.period_type.unwrap().r#type), "wall");
    assert_eq!(profile.period, 5_000_000);
}

/// Python's own `pstats` loads `-o FILE.pstats`: the 1:2:3 shares are in the
/// functions' cumulative times and sample counts, `burn`'s time is its own, and its
/// callers are the three.
#[test]
fn pstats_loads_in_python() {
    let Some((python, _dir, out_path)) = ratio_recording("pstats", "ratio.pstats") else {
        return;
    };
    let load = "import pstats, sys\n\
        stats = pstats.Stats(sys.argv[1]).stats\n\
        for (path, line, name), (cc, nc, tt, ct, callers) in stats.items():\n\
        \x20   callers = ','.join(sorted(c[2] for c in callers))\n\
        \x20   sys.stdout.write('%s %d %d %f %f %s\\n' % (name, cc, nc, tt, ct, callers or '-'))\n";
    let loaded = std::process::Command::new(&python.path)
        .args(["-c", load])
        .arg(&out_path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&loaded.stdout);
    assert!(
        loaded.status.success(),
        "{}",
        String::from_utf8_lossy(&loaded.stderr)
    );
    let row = |name: &str| -> Vec<String> {
        let row = text.lines().find(|l| l.split(' ').next() == Some(name));
        let row = row.unwrap_or_else(|| panic!("no {name} in:\n{text}"));
        row.split(' ').map(str::to_string).collect()
    };
    let number = |field: &String| field.parse::<f64>().unwrap();
    let counts: Vec<u64> = ["one", "two", "three"]
        .iter()
        .map(|name| number(&row(name)[2]) as u64)
        .collect();
    assert!(counts.iter().sum::<u64>() > 300, "{counts:?}");
    assert_one_two_three(&counts, "pstats sample counts");
    let seconds: Vec<u64> = ["one", "two", "three"]
        .iter()
        .map(|name| (number(&row(name)[4]) * 200.0).round() as u64)
        .collect();
    assert_eq!(seconds, counts, "cumulative time is samples / rate");
    let burn = row("burn");
    assert!(number(&burn[3]) >= 0.95 * number(&burn[4]), "{burn:?}");
    assert_eq!(burn[5], "one,three,two");
}

/// `-o FILE.json` writes speedscope JSON: one sampled profile per thread whose weights,
/// in seconds, hold the 1:2:3 shares.
#[test]
fn speedscope_holds_the_shares() {
    let Some((_python, _dir, out_path)) = ratio_recording("speedscope", "ratio.json") else {
        return;
    };
    let text = std::fs::read_to_string(&out_path).unwrap();
    let file: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(
        file["$schema"],
        "https://www.speedscope.app/file-format-schema.json"
    );
    let frames = file["shared"]["frames"].as_array().unwrap();
    let profiles = file["profiles"].as_array().unwrap();
    assert_eq!(profiles.len(), 1, "one thread");
    let main = &profiles[0];
    assert_eq!(main["type"], "sampled");
    assert_eq!(main["unit"], "seconds");
    let mut counts = [0u64; 3];
    let samples = main["samples"].as_array().unwrap();
    let weights = main["weights"].as_array().unwrap();
    assert_eq!(samples.len(), weights.len());
    for (stack, weight) in samples.iter().zip(weights) {
        let names: Vec<&str> = stack
            .as_array()
            .unwrap()
            .iter()
            .map(|i| {
                frames[i.as_u64().unwrap() as usize]["name"]
                    .as_str()
                    .unwrap()
            })
            .collect();
        for (i, wanted) in ["one", "two", "three"].iter().enumerate() {
            if names.contains(wanted) {
                counts[i] += (weight.as_f64().unwrap() * 200.0).round() as u64;
            }
        }
    }
    assert!(counts.iter().sum::<u64>() > 300, "{counts:?}");
    assert_one_two_three(&counts, "speedscope");
    // The samples are in time order: one, two, three, round after round.
    let mut order: Vec<&str> = Vec::new();
    for stack in samples {
        let stack = stack.as_array().unwrap();
        let names = stack
            .iter()
            .map(|i| frames[i.as_u64().unwrap() as usize]["name"].as_str());
        let call = names
            .flatten()
            .find(|n| ["one", "two", "three"].contains(n));
        if let Some(call) = call.filter(|&c| order.last() != Some(&c)) {
            order.push(call);
        }
    }
    assert_eq!(order, ["one", "two", "three"].repeat(3), "speedscope order");
}

/// `-o FILE.trace.json` writes a Chrome trace: the main thread's calls to one, two
/// and three come in that order, round after round, and last 0.1, 0.2 and 0.3 s.
#[test]
fn chrome_trace_lays_out_the_calls_in_time() {
    let Some((python, _dir, out_path)) = ratio_recording("chrome_trace", "ratio.trace.json") else {
        return;
    };
    let (slices, names) = common::trace_slices(&out_path);
    assert_eq!(slices.len(), 1, "one thread: {names:?}");
    let (tid, main) = slices.iter().next().unwrap();
    // The name is known once `threading` is imported; ratio.py does not import it.
    assert!(
        names.get(tid).is_none_or(|n| n == "MainThread"),
        "{names:?}"
    );
    // At 200 Hz: a slice starts and ends at samples 0–10 ms after the call does.
    let calls = common::calls_of(main, &["one", "two", "three"], 50.0);
    let order: Vec<&str> = calls.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(
        order,
        ["one", "two", "three"].repeat(3),
        "{}: {calls:?}",
        python.name
    );
    for (name, ms) in &calls {
        let expected = match name.as_str() {
            "one" => 100.0,
            "two" => 200.0,
            _ => 300.0,
        };
        assert!((ms - expected).abs() <= 25.0, "{}: {calls:?}", python.name);
    }
    let burns = main.iter().filter(|s| s.name == "burn").count();
    assert!(burns >= 9, "burn is a slice inside each call: {main:?}");
}

/// `record --native` puts native frames in the stacks, around and between the Python
/// frames where the eval loop runs them: the C sleep inside `inner`, C (`sorted`)
/// between `outer` and `inner`; and leaves the target running.
fn native_frames_in_samples(python: &Python) {
    let mut target = common::Target::start(python, &script("native.py"), &[]);
    target.wait_for_line("ready");
    std::thread::sleep(std::time::Duration::from_millis(200));
    let dir = TempDir::new(&format!("record-native-{}", python.name));
    let out_path = dir.path("native.txt");
    let pid = target.pid().to_string();
    let out_arg = out_path.to_str().unwrap();
    let out = common::run_pyscry(&[
        "record", "--pid", &pid, "--native", "-d", "2", "-o", out_arg,
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{}: {stderr}", python.name);
    let folded = std::fs::read_to_string(&out_path).unwrap();
    let is_python = |frame: &str| frame.contains(".py:");
    let mut samples = 0;
    let mut merged = 0;
    for line in folded.lines() {
        let (stack, count) = line.rsplit_once(' ').unwrap();
        let count: u64 = count.parse().unwrap();
        let frames: Vec<&str> = stack.split(';').collect();
        samples += count;
        let at = |name: &str| {
            frames
                .iter()
                .position(|f| f.starts_with(&format!("{name} (")))
        };
        let (Some(outer), Some(inner)) = (at("outer"), at("inner")) else {
            continue;
        };
        let sleeps = frames[inner + 1..]
            .iter()
            .any(|f| !is_python(f) && (f.contains("sleep") || f.contains("select")));
        let between = inner > outer + 1 && frames[outer + 1..inner].iter().all(|f| !is_python(f));
        let eval_left = frames.iter().any(|f| {
            f.starts_with("_PyEval_EvalFrameDefault") || f.starts_with("PyEval_EvalFrameEx")
        });
        if sleeps && between && !eval_left {
            merged += count;
        }
    }
    // 200 are due; a loaded machine (CI runs tests side by side) can take far fewer,
    // and a stack's share, not the count, is what this checks.
    assert!(
        samples >= 20,
        "{}: {samples} samples: {stderr}",
        python.name
    );
    if python.name == "3.15" {
        // See tests/dump.rs: Debian's stripped 3.15 cannot be merged; its samples keep
        // their Python frames.
        assert_eq!(merged, 0, "{}: {folded}", python.name);
        assert!(folded.contains("inner ("), "{}: {folded}", python.name);
    } else {
        assert!(
            merged * 10 >= samples * 9,
            "{}: {merged} of {samples}: {folded}",
            python.name
        );
    }
    // pyenv's builds keep their DWARF: the C frames name source lines.
    let pyenv = python
        .path
        .components()
        .any(|c| c.as_os_str() == "versions");
    let time_sleep_line = folded
        .split(';')
        .any(|f| f.starts_with("time_sleep (") && f.contains("timemodule.c:"));
    assert!(time_sleep_line || !pyenv, "{}: {folded}", python.name);
    std::thread::sleep(std::time::Duration::from_millis(100));
    let state = common::process_state(target.pid());
    assert!(
        matches!(state, Some('S' | 'R')),
        "{}: {state:?}",
        python.name
    );
}

test_each_python!(native_samples, super::native_frames_in_samples);
