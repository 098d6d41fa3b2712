//! `pyscry top` driven under tmux: the live table and its keys, the exited state, and a
//! terminal left sane however top ends.

mod common;

use std::process::{Command, Output};
use std::time::Duration;

use common::{script, wait_until, TempDir};

/// How long the view may take to show what a test waits for.
const SHOW_TIMEOUT: Duration = Duration::from_secs(30);

/// A tmux server of its own running `pyscry top` in a 160x45 pane, with a shell script
/// around it that records the exit code and the terminal settings afterwards, then
/// keeps the pane open (on `cat`, until the server goes). Dropping it kills the server,
/// and the target if it is still there.
struct Tmux {
    socket: String,
    dir: TempDir,
    /// pyscry top's PID, once known.
    top: Option<u32>,
    /// The target's PID, once known.
    target: Option<u32>,
}

impl Tmux {
    /// Start `pyscry top ARGS` for `test`, or report the test skipped if tmux is missing.
    fn start(test: &str, args: &[&str]) -> Option<Tmux> {
        if Command::new("tmux").arg("-V").output().is_err() {
            common::skip(test, "tmux not found");
            return None;
        }
        let dir = TempDir::new(&format!("top-{test}"));
        let top: Vec<String> = std::iter::once(env!("CARGO_BIN_EXE_pyscry"))
            .chain(std::iter::once("top"))
            .chain(args.iter().copied())
            .map(quote)
            .collect();
        let run = format!(
            "{}\necho \"EXIT=$?\" > {}\nstty -a > {}\necho top has ended\nexec cat > /dev/null\n",
            top.join(" "),
            quote(dir.path("exit.txt").to_str().unwrap()),
            quote(dir.path("stty.txt").to_str().unwrap()),
        );
        std::fs::write(dir.path("run.sh"), run).unwrap();
        std::fs::write(dir.path("tmux.conf"), "set -g status off\n").unwrap();
        // A server of its own: one that ends (`kill-server` when dropped) while the next
        // starts on the same socket makes the new one fail ("server exited unexpectedly").
        static SERVERS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let server = SERVERS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tmux = Tmux {
            socket: format!("pyscry-{test}-{}-{server}", std::process::id()),
            dir,
            top: None,
            target: None,
        };
        let conf = tmux.dir.path("tmux.conf");
        let script = tmux.dir.path("run.sh");
        let out = tmux.command(
            &["-f", conf.to_str().unwrap()],
            &[
                "new-session",
                "-d",
                "-x",
                "160",
                "-y",
                "45",
                "sh",
                script.to_str().unwrap(),
            ],
        );
        assert!(out.status.success(), "tmux: {}", stderr(&out));
        Some(tmux)
    }

    fn command(&self, options: &[&str], args: &[&str]) -> Output {
        Command::new("tmux")
            .env_remove("TMUX")
            .args(["-L", &self.socket])
            .args(options)
            .args(args)
            .output()
            .expect("running tmux")
    }

    /// The pane as shown.
    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.command(&[], &["capture-pane", "-p"]).stdout).into_owned()
    }

    /// Type `keys` (tmux key names).
    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys"];
        args.extend(keys);
        assert!(self.command(&[], &args).status.success());
    }

    /// Wait until the screen satisfies `check`; fail with `what` and the screen if it
    /// never does. Returns the screen.
    fn wait_for(&self, what: &str, check: impl Fn(&Screen) -> bool) -> Screen {
        let mut last = String::new();
        let shown = wait_until(SHOW_TIMEOUT, || {
            last = self.screen();
            check(&Screen(last.clone()))
        });
        assert!(shown, "never saw {what}; the screen:\n{last}");
        Screen(last)
    }

    /// Wait for the first live table; remember top's PID (the child of the pane's
    /// shell) and the target's (from the header).
    fn wait_for_table(&mut self) -> Screen {
        let screen = self.wait_for("a table led by burn", |s| {
            s.rows().first().is_some_and(|r| r.function == "burn")
        });
        self.target = Some(screen.pid());
        let shell = self.command(&[], &["display-message", "-p", "#{pane_pid}"]);
        let shell = String::from_utf8_lossy(&shell.stdout).trim().to_string();
        let children = std::fs::read_to_string(format!("/proc/{shell}/task/{shell}/children"))
            .expect("the pane's shell has children");
        self.top = children
            .split_whitespace()
            .next()
            .and_then(|p| p.parse().ok());
        assert!(self.top.is_some(), "top is not running");
        screen
    }

    /// The exit code that the shell around top recorded.
    fn exit_code(&self) -> String {
        let path = self.dir.path("exit.txt");
        let written = wait_until(Duration::from_secs(15), || {
            std::fs::read_to_string(&path).is_ok_and(|t| t.ends_with('\n'))
        });
        assert!(written, "top did not end; the screen:\n{}", self.screen());
        std::fs::read_to_string(path).unwrap().trim().to_string()
    }

    /// Quit `top`, whose target's PID `shown` gives, and check that it ended cleanly.
    fn quit(&mut self, shown: &Screen) {
        self.target = Some(shown.pid());
        self.keys(&["q"]);
        self.assert_ended_cleanly();
    }

    /// Check that top exited with 0, left the terminal as it found it, and stopped the
    /// target.
    fn assert_ended_cleanly(&self) {
        assert_eq!(self.exit_code(), "EXIT=0");
        let screen = self.wait_for("the shell's output", |s| s.0.contains("top has ended"));
        assert!(!screen.0.contains("pyscry top  pid"), "{}", screen.0);
        let alternate = self.command(&[], &["capture-pane", "-a", "-p"]);
        assert!(
            !alternate.status.success(),
            "the pane is still on the alternate screen:\n{}",
            String::from_utf8_lossy(&alternate.stdout)
        );
        let cursor = self.command(&[], &["display-message", "-p", "#{cursor_flag}"]);
        assert_eq!(String::from_utf8_lossy(&cursor.stdout).trim(), "1");
        let stty = std::fs::read_to_string(self.dir.path("stty.txt")).unwrap();
        for setting in ["icanon", "echo", "isig"] {
            let words: Vec<&str> = stty.split_whitespace().collect();
            assert!(words.contains(&setting), "{setting} not restored: {stty}");
        }
        let pid = self.target.expect("the target's PID was seen");
        assert!(gone(pid), "the target {pid} is still running");
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.command(&[], &["kill-server"]);
        // The hangup ends top, which stops the target; should either survive, kill it.
        for pid in [self.top, self.target].into_iter().flatten() {
            if !gone(pid) {
                let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            }
        }
    }
}

/// Whether `pid` is gone (or a zombie), waiting up to 5 s for it to go.
fn gone(pid: u32) -> bool {
    wait_until(Duration::from_secs(5), || {
        common::process_state(pid).is_none_or(|s| s == 'Z')
    })
}

/// A captured pane.
struct Screen(String);

/// One row of the table.
#[derive(Debug)]
struct Row {
    own_percent: f64,
    total_percent: f64,
    function: String,
    line: u32,
}

impl Screen {
    /// The table's rows, as far as they parse.
    fn rows(&self) -> Vec<Row> {
        self.0
            .lines()
            .skip_while(|l| !l.contains("file:line"))
            .skip(1)
            .map_while(|line| {
                let fields: Vec<&str> = line.split_whitespace().collect();
                let percent = |f: &str| f.strip_suffix('%')?.parse().ok();
                Some(Row {
                    own_percent: percent(fields.first()?)?,
                    total_percent: percent(fields.get(1)?)?,
                    function: fields.get(4)?.to_string(),
                    // A native function's location is its file alone: line 0.
                    line: match fields.get(5)?.rsplit_once(':') {
                        Some((_, line)) => line.parse().ok()?,
                        None => 0,
                    },
                })
            })
            .collect()
    }

    fn functions(&self) -> Vec<String> {
        self.rows().into_iter().map(|r| r.function).collect()
    }

    /// The target's PID, from the header.
    fn pid(&self) -> u32 {
        let words: Vec<&str> = self.0.split_whitespace().collect();
        let at = words
            .iter()
            .position(|w| *w == "pid")
            .expect("pid in header");
        words[at + 1].parse().expect("numeric pid")
    }
}

fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The line of `def burn` in ratio.py.
fn burn_def_line() -> u32 {
    let text = std::fs::read_to_string(script("ratio.py")).unwrap();
    let index = text
        .lines()
        .position(|l| l.starts_with("def burn"))
        .unwrap();
    index as u32 + 1
}

/// `top -- PYTHON ratio.py UNIT ROUNDS` under tmux, once its first table shows; `None`
/// when the test is skipped.
fn start_ratio(test: &str, unit: &str, rounds: &str) -> Option<(Tmux, Screen)> {
    let Some(python) = common::any_python() else {
        common::skip(test, "no interpreter");
        return None;
    };
    let (python, script) = (python.path.display().to_string(), script("ratio.py"));
    let args = ["--", &python, script.to_str().unwrap(), unit, rounds];
    let mut tmux = Tmux::start(test, &args)?;
    let first = tmux.wait_for_table();
    Some((tmux, first))
}

#[test]
fn the_hottest_function_leads_and_keys_sort_and_split_by_line() {
    let Some((tmux, first)) = start_ratio("keys", "0.2", "1000") else {
        return;
    };
    let def_line = burn_def_line();
    let burn = &first.rows()[0];
    assert!(burn.own_percent > 80.0, "{}", first.0);
    assert_eq!(burn.line, def_line, "{}", first.0);

    // 5: by function name, A to Z; again: Z to A.
    tmux.keys(&["5"]);
    let by_name = tmux.wait_for("rows by name", |s| {
        let names = s.functions();
        let mut sorted = names.clone();
        sorted.sort_by_key(|n| n.to_lowercase());
        s.0.contains("function▲") && names.len() > 1 && names == sorted
    });
    assert_ne!(by_name.functions()[0], "burn", "{}", by_name.0);
    tmux.keys(&["5"]);
    tmux.wait_for("rows by name, Z to A", |s| {
        s.0.contains("function▼") && s.functions().first().is_some_and(|f| f == "two")
    });

    // 2: by total share, largest first.
    tmux.keys(&["2"]);
    tmux.wait_for("rows by total", |s| {
        let totals: Vec<f64> = s.rows().iter().map(|r| r.total_percent).collect();
        s.0.contains("total%▼") && totals.len() > 1 && totals.windows(2).all(|w| w[0] >= w[1])
    });

    // l: one row per line; burn's rows are lines of its body.
    tmux.keys(&["1", "l"]);
    let by_line = tmux.wait_for("rows per line", |s| {
        s.0.contains("per line") && s.rows().first().is_some_and(|r| r.function == "burn")
    });
    let burn_lines: Vec<u32> = by_line
        .rows()
        .iter()
        .filter(|r| r.function == "burn")
        .map(|r| r.line)
        .collect();
    assert!(
        burn_lines
            .iter()
            .all(|&l| l > def_line && l <= def_line + 4),
        "{burn_lines:?}: {}",
        by_line.0
    );
    tmux.keys(&["l"]);
    tmux.wait_for("rows per function again", |s| {
        s.0.contains("per function")
            && s.rows().iter().filter(|r| r.function == "burn").count() == 1
    });
    // `i` leaves idle samples out; the burning function runs, so it stays.
    tmux.keys(&["i"]);
    tmux.wait_for("running samples only, led by burn", |s| {
        s.0.contains("all threads, running only")
            && s.rows().first().is_some_and(|r| r.function == "burn")
    });

    tmux.keys(&["q"]);
    tmux.assert_ended_cleanly();
}

#[test]
fn resizing_redraws_and_a_tiny_terminal_gets_a_message() {
    let Some((tmux, _)) = start_ratio("resize", "0.2", "1000") else {
        return;
    };
    let resize = |x: &str, y: &str| {
        let out = tmux.command(&[], &["resize-window", "-x", x, "-y", y]);
        assert!(out.status.success(), "tmux: {}", stderr(&out));
    };
    resize("50", "10");
    tmux.wait_for("the too-small message", |s| {
        s.0.contains("needs a terminal")
    });
    resize("100", "20");
    let table = tmux.wait_for("the table again", |s| {
        s.rows().first().is_some_and(|r| r.function == "burn")
    });
    let widest = table.0.lines().map(|l| l.chars().count()).max().unwrap();
    assert!(widest <= 100, "{}", table.0);
    tmux.keys(&["q"]);
    tmux.assert_ended_cleanly();
}

#[test]
fn a_target_that_exits_leaves_its_final_numbers() {
    // Three rounds of 0.1 + 0.2 + 0.3 s: about 2 s.
    let Some((tmux, _)) = start_ratio("exited", "0.1", "3") else {
        return;
    };
    tmux.wait_for("the exited state", |s| {
        s.0.contains("target exited with code 0")
    });
    std::thread::sleep(Duration::from_millis(2500));
    let later = tmux.screen();
    assert!(later.contains("target exited"), "{later}");
    assert_eq!(Screen(later).functions()[0], "burn");
    tmux.keys(&["q"]);
    tmux.assert_ended_cleanly();
}

#[test]
fn sigterm_restores_the_terminal_and_stops_the_target() {
    let Some((tmux, _)) = start_ratio("sigterm", "0.2", "1000") else {
        return;
    };
    let top = tmux.top.unwrap().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &top])
        .status()
        .unwrap()
        .success());
    tmux.assert_ended_cleanly();
}

#[test]
fn a_terminal_that_hangs_up_ends_top_and_the_target() {
    let Some((tmux, _)) = start_ratio("hangup", "0.2", "1000") else {
        return;
    };
    let (top, target) = (tmux.top.unwrap(), tmux.target.unwrap());
    assert!(tmux.command(&[], &["kill-server"]).status.success());
    assert!(gone(top), "top {top} outlived its terminal");
    assert!(gone(target), "the target {target} outlived top");
}

#[test]
fn without_a_terminal_top_refuses_before_launching_anything() {
    let out = common::run_pyscry(&["top", "--", "/nonexistent/python", "x.py"]);
    let text = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert_eq!(text.lines().count(), 1, "{text}");
    // Exit code 1, not "cannot run": nothing was launched.
    assert!(
        text.contains("needs a terminal") && text.contains("pyscry record"),
        "{text}"
    );
}

#[test]
fn native_frames_lead_with_native() {
    let test = "native";
    let Some(python) = common::any_python() else {
        common::skip(test, "no interpreter");
        return;
    };
    let (python, script) = (python.path.display().to_string(), script("native.py"));
    let args = ["--native", "--", &python, script.to_str().unwrap()];
    let Some(mut tmux) = Tmux::start(test, &args) else {
        return;
    };
    // native.py sleeps in C: a C function of the sleep leads the own-time table.
    let screen = tmux.wait_for("a table led by the C sleep", |s| {
        s.rows().first().is_some_and(|r| {
            r.line == 0 && ["sleep", "select"].iter().any(|n| r.function.contains(n))
        })
    });
    tmux.quit(&screen);
}

/// The header says what the idle threads wait for: waits.py has one thread on a
/// lock, one on a pipe and the main one asleep (select before 3.11).
#[test]
fn the_header_says_what_idle_threads_wait_for() {
    let test = "waits";
    let Some(python) = common::any_python() else {
        common::skip(test, "no interpreter");
        return;
    };
    let (python, script) = (python.path.display().to_string(), script("waits.py"));
    let args = ["--", &python, script.to_str().unwrap(), "60"];
    let Some(mut tmux) = Tmux::start(test, &args) else {
        return;
    };
    // The two spinners run in every window, each for part of it where there is a GIL.
    let screen = tmux.wait_for("the three waits", |s| {
        s.0.contains("(2 running, 3 idle: 1 sleep, 1 lock, 1 io)")
    });
    tmux.quit(&screen);
}

/// `top -- PYTHON SCRIPT ARGS` under tmux for `test`, PYTHON the last interpreter
/// present that has a GIL; `None` when the test is skipped.
fn start_with_a_gil(test: &str, script_name: &str, args: &[&str]) -> Option<Tmux> {
    let pythons = common::pythons(test);
    let Some(python) = pythons.iter().rev().find(|p| !p.free_threaded()) else {
        common::skip(test, "no interpreter with a GIL");
        return None;
    };
    let (python, script) = (python.path.display().to_string(), script(script_name));
    let mut top = vec!["--", &python, script.to_str().unwrap()];
    top.extend(args);
    Tmux::start(test, &top)
}

/// The GIL figures of the header, `GIL held 98%, 0.6 waiting`: the share and the
/// threads waiting; `None` when it shows none.
fn gil_figures(screen: &Screen) -> Option<(f64, f64)> {
    let rest = screen.0.split("GIL held ").nth(1)?;
    let (held, rest) = rest.split_once("%, ")?;
    let waiting = rest.split_once(" waiting")?.0;
    Some((held.parse().ok()?, waiting.parse().ok()?))
}

/// With a GIL, the header says how many threads wait for it: here one spinner while
/// the other holds it, for much of the time.
#[test]
fn the_header_says_how_many_threads_wait_for_the_gil() {
    if let Some(tmux) = start_with_a_gil("gil_waiters", "waits.py", &["60"]) {
        see_gil_waiters_and_quit(tmux);
    }
}

/// Wait for `tmux`'s `top` of `waits.py` to show one spinner waiting for the GIL while
/// the other holds it (0.2 to 2 threads waiting in a window), then quit it.
fn see_gil_waiters_and_quit(mut tmux: Tmux) {
    let screen = tmux.wait_for("threads waiting for the GIL", |s| {
        gil_figures(s).is_some_and(|(_, waiting)| (0.2..=2.0).contains(&waiting))
    });
    tmux.quit(&screen);
}

/// A free-threaded build runs without its GIL, and the header says nothing of one;
/// with it turned on (`PYTHON_GIL=1`, or later by an extension module that needs it),
/// the header tells its share and its waiters as for any build.
#[test]
fn a_free_threaded_build_shows_its_gil_only_when_it_is_on() {
    let test = "free_threaded_gil";
    let pythons = common::pythons(test);
    let Some(python) = pythons.iter().rev().find(|p| p.free_threaded()) else {
        return common::skip(test, "no free-threaded interpreter");
    };
    let (python, script) = (python.path.display().to_string(), script("waits.py"));
    let script = script.to_str().unwrap();
    let Some(mut off) = Tmux::start(test, &["--", &python, script, "60"]) else {
        return;
    };
    let screen = off.wait_for("samples of the spinners", |s| s.0.contains("spin"));
    // A few more windows, where a GIL would have been held.
    std::thread::sleep(Duration::from_secs(2));
    let later = Screen(off.screen());
    assert!(gil_figures(&later).is_none(), "{}", later.0);
    off.quit(&screen);

    let on = ["--", "env", "PYTHON_GIL=1", &python, script, "60"];
    if let Some(tmux) = Tmux::start(test, &on) {
        see_gil_waiters_and_quit(tmux);
    }

    // Turned on while `top` watches: by a module that needs it, 5 s in.
    let Some(later) = Tmux::start(test, &["--", &python, script, "60", "5"]) else {
        return;
    };
    let screen = later.wait_for("samples of the spinners", |s| s.0.contains("spin"));
    assert!(gil_figures(&screen).is_none(), "{}", screen.0);
    see_gil_waiters_and_quit(later);
}

/// The GIL's share is of the ticks whose samples are in, so it never passes 100 %: not
/// even in the last, short window of a target that exits, where samples that arrived
/// after their ticks were counted in an earlier window once made it 119 %.
#[test]
fn the_gil_share_never_passes_every_tick() {
    let Some(mut tmux) = start_with_a_gil("gil_share", "ratio.py", &["0.1", "3"]) else {
        return;
    };
    let held = std::cell::RefCell::new(Vec::new());
    let screen = tmux.wait_for("the exited state", |s| {
        held.borrow_mut()
            .extend(gil_figures(s).map(|(held, _)| held));
        s.0.contains("target exited with code 0")
    });
    tmux.target = Some(screen.pid());
    let held = held.into_inner();
    assert!(
        !held.is_empty() && held.iter().all(|&held| held <= 100.0),
        "{held:?}"
    );
    tmux.keys(&["q"]);
    tmux.assert_ended_cleanly();
}

#[test]
fn subprocesses_add_their_functions() {
    let test = "top_subprocesses";
    let Some(python) = common::any_python() else {
        common::skip(test, "no interpreter");
        return;
    };
    let (python, script) = (python.path.display().to_string(), script("pool.py"));
    // Two pool workers burn for 3 s in child_work while the target waits for them.
    let args = [
        "--subprocesses",
        "--",
        &python,
        script.to_str().unwrap(),
        "3",
    ];
    let Some(mut tmux) = Tmux::start(test, &args) else {
        return;
    };
    // The header counts the processes sampled: the target and its two workers at
    // least (3.8+ also runs multiprocessing's resource tracker).
    let screen = tmux.wait_for("child_work, in three processes or more", |s| {
        let processes = s.0.split("processes ").nth(1);
        let processes = processes.and_then(|rest| rest.split(' ').next()?.parse().ok());
        s.rows().iter().any(|r| r.function == "child_work") && processes >= Some(3)
    });
    tmux.quit(&screen);
}

#[test]
fn subprocesses_of_a_shell_are_sampled() {
    let test = "top_subprocesses_of_a_shell";
    let Some(python) = common::any_python() else {
        common::skip(test, "no interpreter");
        return;
    };
    // The target is a shell, which runs no Python; its child pool.py does, and so do
    // that one's two workers, which burn for 8 s in child_work. top waits 3 s for the
    // shell to exec Python before it shows the view.
    let command = format!(
        "{} {} 8; true",
        quote(&python.path.display().to_string()),
        quote(script("pool.py").to_str().unwrap())
    );
    let args = ["--subprocesses", "--", "sh", "-c", &command];
    let Some(mut tmux) = Tmux::start(test, &args) else {
        return;
    };
    // The header counts the Python processes sampled, and the CPU of the whole tree
    // (the shell alone uses none).
    let screen = tmux.wait_for("child_work, in three processes, using CPU", |s| {
        let after = |label: &str| {
            let rest = s.0.split(label).nth(1)?;
            rest.split(['%', ' ']).next()?.parse::<f64>().ok()
        };
        s.rows().iter().any(|r| r.function == "child_work")
            && after("processes ") >= Some(3.0)
            && after("CPU ") >= Some(1.0)
    });
    assert!(
        screen.0.contains("no Python in the target itself"),
        "{}",
        screen.0
    );
    tmux.quit(&screen);
}
