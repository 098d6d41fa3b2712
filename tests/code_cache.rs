//! The code-object cache stays right when code objects are freed and their memory is
//! reused by other functions.

mod common;

use common::{pyscry, script, Python, TempDir};

fn churned_code_objects_are_never_confused(python: &Python) {
    let dir = TempDir::new(&format!("churn-{}", python.name));
    let out_path = dir.path("churn.txt");
    let out = pyscry()
        .args(["record", "-r", "200", "-f", "collapsed", "-o"])
        .arg(&out_path)
        .arg("--")
        .arg(&python.path)
        .arg(script("code_churn.py"))
        .arg("100")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}: {}",
        python.name,
        String::from_utf8_lossy(&out.stderr)
    );
    let reuse = stdout
        .lines()
        .find(|l| l.starts_with("distinct code addresses"))
        .unwrap();
    let distinct: u32 = reuse.split_whitespace().nth(3).unwrap().parse().unwrap();
    assert!(
        distinct < 100,
        "{}: no address was reused ({reuse}); the test proves nothing",
        python.name
    );

    let text = std::fs::read_to_string(&out_path).unwrap();
    let mut per_function = std::collections::HashMap::<u32, u64>::new();
    for line in text.lines() {
        let (stack, count) = line.rsplit_once(' ').unwrap();
        let leaf = stack.rsplit(';').next().unwrap();
        let Some(rest) = leaf.strip_prefix("churn_") else {
            continue;
        };
        // churn_K (<churn-K>:LINE)
        let (k, location) = rest.split_once(" (<churn-").unwrap();
        let k: u32 = k.parse().unwrap();
        let (file_k, line) = location.trim_end_matches(')').split_once(">:").unwrap();
        let line: u32 = line.parse().unwrap();
        assert_eq!(
            file_k.parse::<u32>().unwrap(),
            k,
            "{}: name and file disagree: {leaf}",
            python.name
        );
        // The loop's lines, or the `def` line (k + 1) for a frame caught as it entered,
        // at its RESUME instruction.
        assert!(
            (k + 1..=k + 3).contains(&line),
            "{}: churn_{k} shown at line {line}: {leaf}",
            python.name
        );
        *per_function.entry(k).or_default() += count.parse::<u64>().unwrap();
    }
    // Each function runs about 20 ms: about 4 samples at 200 Hz. A stale cache entry
    // would pile later functions' samples onto an earlier name, far beyond what the
    // time that function really ran (a loaded machine can stretch it) explains.
    assert!(
        per_function.len() >= 60,
        "{}: only {} functions seen",
        python.name,
        per_function.len()
    );
    for (k, samples) in &per_function {
        let ran: f64 = stdout
            .lines()
            .find_map(|l| l.strip_prefix(&format!("ran {k} ")))
            .map_or(0.0, |s| s.parse().unwrap());
        let most = (ran * 200.0 * 1.5) as u64 + 4;
        assert!(
            *samples <= most,
            "{}: churn_{k} ran {ran:.3} s but got {samples} samples",
            python.name
        );
    }
}

test_each_python!(churn, super::churned_code_objects_are_never_confused);
