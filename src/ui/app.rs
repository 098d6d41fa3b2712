//! The live view's state: the numbers on screen, how they are shown, and what each key
//! does to that.

use std::cmp::Ordering;
use std::time::Duration;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::window::{Query, Span, Table, ThreadCounts};
use crate::report::table::FunctionRow;
use crate::sampler::ThreadKey;

/// A column of the table, in screen order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Column {
    /// Share of samples in which the function was innermost.
    OwnPercent,
    /// Share of samples in which the function was on the stack.
    TotalPercent,
    /// Time innermost.
    OwnTime,
    /// Time on the stack.
    TotalTime,
    /// Function name.
    Function,
    /// Source file and line.
    Location,
}

impl Column {
    /// Every column, in screen order; key `1` sorts by the first.
    pub const ALL: [Column; 6] = [
        Column::OwnPercent,
        Column::TotalPercent,
        Column::OwnTime,
        Column::TotalTime,
        Column::Function,
        Column::Location,
    ];

    /// The column's heading.
    pub fn title(self) -> &'static str {
        match self {
            Column::OwnPercent => "own%",
            Column::TotalPercent => "total%",
            Column::OwnTime => "own time",
            Column::TotalTime => "total time",
            Column::Function => "function",
            Column::Location => "file:line",
        }
    }

    /// Numbers sort largest first, names alphabetically.
    fn descending_first(self) -> bool {
        !matches!(self, Column::Function | Column::Location)
    }

    /// Ascending order of two rows by this column.
    fn compare(self, a: &FunctionRow, b: &FunctionRow) -> Ordering {
        match self {
            Column::OwnPercent | Column::OwnTime => a.own.cmp(&b.own),
            Column::TotalPercent | Column::TotalTime => a.total.cmp(&b.total),
            // Case-insensitive, so that `Class.method` sorts among the functions.
            Column::Function => (a.name.chars().map(|c| c.to_ascii_lowercase()))
                .cmp(b.name.chars().map(|c| c.to_ascii_lowercase())),
            Column::Location => (&a.filename, a.first_line).cmp(&(&b.filename, b.first_line)),
        }
    }

    fn index(self) -> usize {
        Column::ALL.iter().position(|&c| c == self).unwrap_or(0)
    }
}

/// The order rows are shown in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sort {
    /// The column sorted by.
    pub column: Column,
    /// Largest (or last) first.
    pub descending: bool,
}

/// What the header shows, captured at each refresh.
#[derive(Debug, Clone, Default)]
pub struct Header {
    /// Target process id.
    pub pid: u32,
    /// Target command line.
    pub command: String,
    /// Interpreter, e.g. `CPython 3.11.7`.
    pub python: String,
    /// Sampling mode.
    pub mode: String,
    /// Requested samples per second.
    pub rate_hz: f64,
    /// Time since sampling started.
    pub elapsed: Duration,
    /// Stacks sampled.
    pub samples: u64,
    /// Stacks dropped because they could not be read consistently.
    pub errors: u64,
    /// Ticks skipped because the sampler fell behind.
    pub dropped_ticks: u64,
    /// Threads sampled in the last window, how many of them ran, and what the
    /// others waited for.
    pub threads: ThreadCounts,
    /// With `--subprocesses`, the processes sampled in the last window.
    pub processes: Option<usize>,
    /// The target's CPU use over the last window, in percent.
    pub cpu_percent: Option<f64>,
    /// The target's resident memory in bytes.
    pub rss_bytes: Option<u64>,
    /// Whether the interpreter's GIL is on for good (free-threaded builds run without
    /// it unless they turn it on), since `top` attached or from when it was turned on.
    pub has_gil: bool,
    /// Share of the last window's ticks at which the GIL was held by a thread running
    /// Python code.
    pub gil_percent: Option<f64>,
    /// How many threads waited for the GIL at a tick of the last window, on average.
    pub gil_waiters: Option<f64>,
    /// How the target ended, once it has: "exited with code 0", "was killed by …".
    pub ended: Option<String>,
}

/// What the event loop should do after a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Nothing changed.
    Nothing,
    /// Only the presentation changed: draw again.
    Redraw,
    /// The query changed: recompute the table from the samples kept.
    Requery,
    /// The display was resumed: refresh the numbers now.
    Resume,
    /// Forget every sample so far.
    Reset,
    /// Leave.
    Quit,
}

/// Everything the live view shows and how.
#[derive(Debug, Clone)]
pub struct App {
    /// The header's numbers.
    pub header: Header,
    /// The current table, unfiltered and unsorted.
    pub table: Table,
    /// Row order.
    pub sort: Sort,
    /// Last window or since the start.
    pub span: Span,
    /// Rows per line rather than per function.
    pub by_line: bool,
    /// Idle samples left out.
    pub running_only: bool,
    /// The thread shown, with its label, or all threads.
    pub thread: Option<(ThreadKey, String)>,
    /// Whether refreshes are held back (sampling goes on).
    pub paused: bool,
    /// Rows whose function or file contains this (case-insensitive) are shown.
    pub filter: String,
    /// The filter being typed, if any.
    pub editing: Option<String>,
    /// Index of the first row shown.
    pub scroll: usize,
    /// Rows that fit on screen, as of the last drawing (the view keeps `scroll` within
    /// the rows).
    pub page: usize,
    /// Whether the key help is shown.
    pub help: bool,
}

impl App {
    /// The initial state for a target described by `header`.
    pub fn new(header: Header) -> App {
        App {
            header,
            table: Table::default(),
            sort: Sort {
                column: Column::OwnPercent,
                descending: true,
            },
            span: Span::Window,
            by_line: false,
            running_only: false,
            thread: None,
            paused: false,
            filter: String::new(),
            editing: None,
            scroll: 0,
            page: 1,
            help: false,
        }
    }

    /// The table the current settings ask for.
    pub fn query(&self) -> Query {
        Query {
            span: self.span,
            thread: self.thread.as_ref().map(|(key, _)| *key),
            by_line: self.by_line,
            running_only: self.running_only,
        }
    }

    /// The rows to show: filtered, then sorted (ties by own, then total time, then name).
    pub fn rows(&self) -> Vec<&FunctionRow> {
        let needle = self.filter.to_lowercase();
        let mut rows: Vec<&FunctionRow> = self
            .table
            .rows
            .iter()
            .filter(|r| {
                needle.is_empty()
                    || r.name.to_lowercase().contains(&needle)
                    || r.filename.to_lowercase().contains(&needle)
            })
            .collect();
        let Sort { column, descending } = self.sort;
        rows.sort_by(|a, b| {
            let order = column.compare(a, b);
            let order = if descending { order.reverse() } else { order };
            order
                .then_with(|| (b.own, b.total).cmp(&(a.own, a.total)))
                .then_with(|| a.name.cmp(&b.name))
                .then_with(|| a.first_line.cmp(&b.first_line))
        });
        rows
    }

    /// Answer a key. `threads` are the threads `t` cycles through, with their labels.
    pub fn handle_key(&mut self, key: KeyEvent, threads: &[(ThreadKey, String)]) -> Effect {
        if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
            return Effect::Quit;
        }
        if self.editing.is_some() {
            return self.edit_filter(key.code);
        }
        if self.help {
            self.help = false;
            return match key.code {
                KeyCode::Char('q') => Effect::Quit,
                _ => Effect::Redraw,
            };
        }
        match key.code {
            KeyCode::Char('q') => Effect::Quit,
            KeyCode::Char('?') => {
                self.help = true;
                Effect::Redraw
            }
            KeyCode::Char(digit @ '1'..='6') => {
                let column = Column::ALL[digit as usize - '1' as usize];
                self.sort = if self.sort.column == column {
                    Sort {
                        column,
                        descending: !self.sort.descending,
                    }
                } else {
                    Sort {
                        column,
                        descending: column.descending_first(),
                    }
                };
                self.scroll = 0;
                Effect::Redraw
            }
            KeyCode::Char(c @ ('<' | '>')) => {
                let step = if c == '<' { Column::ALL.len() - 1 } else { 1 };
                let column = Column::ALL[(self.sort.column.index() + step) % Column::ALL.len()];
                self.sort = Sort {
                    column,
                    descending: column.descending_first(),
                };
                self.scroll = 0;
                Effect::Redraw
            }
            KeyCode::Char('l') => {
                self.by_line = !self.by_line;
                self.scroll = 0;
                Effect::Requery
            }
            KeyCode::Char('i') => {
                self.running_only = !self.running_only;
                self.scroll = 0;
                Effect::Requery
            }
            KeyCode::Char('c') => {
                self.span = match self.span {
                    Span::Window => Span::SinceStart,
                    Span::SinceStart => Span::Window,
                };
                Effect::Requery
            }
            KeyCode::Char('t') => {
                self.thread = next_thread(self.thread.as_ref(), threads);
                self.scroll = 0;
                Effect::Requery
            }
            KeyCode::Char('p') => {
                self.paused = !self.paused;
                if self.paused {
                    Effect::Redraw
                } else {
                    Effect::Resume
                }
            }
            KeyCode::Char('r') => {
                self.scroll = 0;
                Effect::Reset
            }
            KeyCode::Char('/') => {
                self.editing = Some(self.filter.clone());
                Effect::Redraw
            }
            KeyCode::Up => self.scroll_by(-1),
            KeyCode::Down => self.scroll_by(1),
            KeyCode::PageUp => self.scroll_by(-(self.page as isize)),
            KeyCode::PageDown => self.scroll_by(self.page as isize),
            KeyCode::Home => self.scroll_by(isize::MIN),
            KeyCode::End => self.scroll_by(isize::MAX),
            _ => Effect::Nothing,
        }
    }

    fn scroll_by(&mut self, delta: isize) -> Effect {
        self.scroll = self.scroll.saturating_add_signed(delta);
        Effect::Redraw
    }

    fn edit_filter(&mut self, code: KeyCode) -> Effect {
        let Some(text) = self.editing.as_mut() else {
            return Effect::Nothing;
        };
        match code {
            KeyCode::Enter => {
                self.filter = self.editing.take().unwrap_or_default();
                self.scroll = 0;
            }
            KeyCode::Esc => self.editing = None,
            KeyCode::Backspace => {
                text.pop();
            }
            KeyCode::Char(c) => text.push(c),
            _ => return Effect::Nothing,
        }
        Effect::Redraw
    }
}

/// All threads → the first thread → … → the last thread → all threads.
fn next_thread(
    current: Option<&(ThreadKey, String)>,
    threads: &[(ThreadKey, String)],
) -> Option<(ThreadKey, String)> {
    let next = match current {
        None => 0,
        Some((key, _)) => match threads.iter().position(|(k, _)| k == key) {
            Some(i) => i + 1,
            None => return None,
        },
    };
    threads.get(next).cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn press(app: &mut App, code: KeyCode) -> Effect {
        app.handle_key(KeyEvent::new(code, KeyModifiers::NONE), &[])
    }

    fn row(name: &str, own: u64, total: u64) -> FunctionRow {
        FunctionRow {
            name: name.into(),
            filename: format!("{name}.py"),
            first_line: 1,
            own,
            total,
        }
    }

    fn app() -> App {
        let mut app = App::new(Header::default());
        app.table.rows = vec![row("b", 5, 5), row("a", 1, 10), row("c", 3, 4)];
        app
    }

    fn names(app: &App) -> Vec<&str> {
        app.rows().iter().map(|r| r.name.as_str()).collect()
    }

    #[test]
    fn digits_sort_by_their_column_and_again_reverse_it() {
        let mut app = app();
        assert_eq!(names(&app), ["b", "c", "a"]);
        assert_eq!(press(&mut app, KeyCode::Char('2')), Effect::Redraw);
        assert_eq!(names(&app), ["a", "b", "c"]);
        press(&mut app, KeyCode::Char('5'));
        assert_eq!(names(&app), ["a", "b", "c"]);
        press(&mut app, KeyCode::Char('5'));
        assert_eq!(names(&app), ["c", "b", "a"]);
        press(&mut app, KeyCode::Char('<'));
        assert_eq!(app.sort.column, Column::TotalTime);
        press(&mut app, KeyCode::Char('>'));
        press(&mut app, KeyCode::Char('>'));
        assert_eq!(app.sort.column, Column::Location);
        press(&mut app, KeyCode::Char('>'));
        assert_eq!(app.sort.column, Column::OwnPercent);
    }

    #[test]
    fn the_filter_applies_on_enter_and_esc_cancels_it() {
        let mut app = app();
        press(&mut app, KeyCode::Char('/'));
        for c in "C.PY".chars() {
            press(&mut app, KeyCode::Char(c));
        }
        // Typing does not quit or sort.
        press(&mut app, KeyCode::Char('q'));
        press(&mut app, KeyCode::Backspace);
        assert_eq!(names(&app).len(), 3);
        press(&mut app, KeyCode::Enter);
        assert_eq!(names(&app), ["c"]);
        press(&mut app, KeyCode::Char('/'));
        press(&mut app, KeyCode::Backspace);
        press(&mut app, KeyCode::Esc);
        assert_eq!(app.filter, "C.PY");
    }

    #[test]
    fn query_keys_ask_for_a_new_table() {
        let mut app = app();
        assert_eq!(press(&mut app, KeyCode::Char('l')), Effect::Requery);
        assert_eq!(press(&mut app, KeyCode::Char('c')), Effect::Requery);
        assert_eq!(press(&mut app, KeyCode::Char('i')), Effect::Requery);
        let query = app.query();
        assert!(query.by_line && query.running_only);
        assert_eq!(query.span, Span::SinceStart);
        assert_eq!(press(&mut app, KeyCode::Char('p')), Effect::Redraw);
        assert!(app.paused);
        assert_eq!(press(&mut app, KeyCode::Char('p')), Effect::Resume);
        assert_eq!(press(&mut app, KeyCode::Char('r')), Effect::Reset);
        assert_eq!(press(&mut app, KeyCode::Char('q')), Effect::Quit);
        let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
        assert_eq!(app.handle_key(ctrl_c, &[]), Effect::Quit);
    }

    #[test]
    fn t_cycles_through_the_threads_and_back_to_all() {
        let mut app = app();
        let key = |id| ThreadKey {
            pid: 1,
            python_id: id,
            os_id: None,
        };
        let threads = [(key(1), "one".to_string()), (key(2), "two".to_string())];
        let t = KeyEvent::new(KeyCode::Char('t'), KeyModifiers::NONE);
        let mut seen = Vec::new();
        for _ in 0..3 {
            app.handle_key(t, &threads);
            seen.push(app.query().thread);
        }
        assert_eq!(seen, [Some(key(1)), Some(key(2)), None]);
    }

    #[test]
    fn help_closes_on_any_key_and_pages_scroll_by_a_page() {
        let mut app = app();
        press(&mut app, KeyCode::Char('?'));
        assert!(app.help);
        assert_eq!(press(&mut app, KeyCode::Char('l')), Effect::Redraw);
        assert!(!app.help && !app.by_line);
        app.page = 10;
        press(&mut app, KeyCode::PageDown);
        press(&mut app, KeyCode::Down);
        assert_eq!(app.scroll, 11);
        press(&mut app, KeyCode::PageUp);
        press(&mut app, KeyCode::PageUp);
        assert_eq!(app.scroll, 0);
    }
}
