//! `pyscry record --pid` samples a running process and leaves it running, unharmed.

mod common;

use common::{collapsed_shares, pyscry, script, Python, Target, TempDir};

fn attach_leaves_target_running(python: &Python) {
    let mut target = Target::start(python, &script("counter.py"), &[]);
    let before: u64 = target.next_line().parse().unwrap();
    let dir = TempDir::new(&format!("attach-{}", python.name));
    let out_path = dir.path("attach.txt");
    let out = pyscry()
        .args(["record", "--duration", "1.5", "-f", "collapsed", "--pid"])
        .arg(target.pid().to_string())
        .arg("-o")
        .arg(&out_path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}: {}",
        python.name,
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&out_path).unwrap();
    let (counts, total) = collapsed_shares(&text, &["work", "main"]);
    assert!(total > 50, "{}: {total} samples", python.name);
    assert!(
        counts[1] * 10 >= total * 9,
        "{}: main in {counts:?} of {total}",
        python.name
    );

    // Still alive, not stopped, and still counting.
    assert!(
        matches!(target.state(), 'R' | 'S'),
        "{}: state {}",
        python.name,
        target.state()
    );
    let mut after: u64 = before;
    for _ in 0..5 {
        after = target.next_line().parse().unwrap();
    }
    assert!(
        after > before,
        "{}: no progress after pyscry exited",
        python.name
    );
    assert!(target.child.try_wait().unwrap().is_none(), "target died");
}

test_each_python!(leaves_target_running, super::attach_leaves_target_running);

#[test]
fn target_exiting_during_recording_keeps_what_was_recorded() {
    let Some((name, Some(path))) = common::expected_pythons()
        .into_iter()
        .find(|(_, p)| p.is_some())
    else {
        return common::skip("target_exiting", "no interpreter");
    };
    let python = Python { name, path };
    let mut target = Target::start(&python, &script("counter.py"), &["1.0"]);
    target.next_line();
    let dir = TempDir::new("exiting");
    let out_path = dir.path("exit.txt");
    let out = pyscry()
        .args(["record", "--duration", "30", "-f", "collapsed", "--pid"])
        .arg(target.pid().to_string())
        .arg("-o")
        .arg(&out_path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("exited"), "{stderr}");
    let text = std::fs::read_to_string(&out_path).unwrap();
    assert!(text.contains("work"), "{text}");
}
