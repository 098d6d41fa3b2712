//! `pyscry record` gets time shares right and writes its outputs.

mod common;

use common::{collapsed_shares, pyscry, script, Python, TempDir};

/// Record the 1:2:3 workload in launch mode; the shares must be within 3 points of
/// 16.7 / 33.3 / 50.
fn shares_one_two_three(python: &Python) {
    let dir = TempDir::new(&format!("ratio-{}", python.name));
    let out_path = dir.path("ratio.txt");
    let out = pyscry()
        .args(["record", "--rate", "200", "--format", "collapsed", "-o"])
        .arg(&out_path)
        .arg("--")
        .arg(&python.path)
        .arg(script("ratio.py"))
        .args(["0.15", "4"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{}: {stderr}", python.name);
    let text = std::fs::read_to_string(&out_path).unwrap();
    let (counts, total) = collapsed_shares(&text, &["one", "two", "three"]);
    assert!(total > 400, "{}: only {total} samples", python.name);
    let in_workload: u64 = counts.iter().sum();
    for (count, expected) in counts.iter().zip([100.0 / 6.0, 100.0 / 3.0, 50.0]) {
        let share = 100.0 * *count as f64 / in_workload as f64;
        assert!(
            (share - expected).abs() <= 3.0,
            "{}: share {share:.1}% vs {expected:.1}% (counts {counts:?}, total {total})",
            python.name
        );
    }
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
