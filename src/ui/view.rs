//! Drawing the live view: header, table, footer, and the help and filter overlays.

use std::path::Path;

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span as Text};
use ratatui::widgets::{Block, Clear, Paragraph, Row, Table};
use ratatui::Frame;

use super::app::{App, Column, Header};
use super::window::Span;
use crate::report::paths::{keep_end, short_path};
use crate::report::table::FunctionRow;

/// The smallest terminal the view draws in; below it a message says so.
pub const MIN_SIZE: (u16, u16) = (60, 12);

/// Lines above the table.
const HEADER_LINES: u16 = 4;

/// The function column is at least this wide.
const MIN_NAME_WIDTH: usize = 12;

/// Width of each numeric column.
const NUMBER_WIDTHS: [u16; 4] = [7, 7, 9, 10];

/// The keys, for the help box: key, what it does.
const KEYS: [(&str, &str); 14] = [
    ("1-6", "sort by that column; again to reverse"),
    ("< >", "sort by the column to the left / right"),
    ("l", "rows per source line / per function"),
    ("i", "hide / show idle samples"),
    ("c", "last window / cumulative since start"),
    ("t", "next thread / all threads"),
    ("p", "pause the display (sampling goes on)"),
    ("r", "reset: forget every sample so far"),
    ("/", "filter by function or file (Enter, Esc)"),
    ("↑ ↓", "scroll by a row"),
    ("PgUp PgDn", "scroll by a page"),
    ("Home End", "first / last row"),
    ("?", "this help"),
    ("q Ctrl-C", "quit"),
];

/// The footer: the most used keys.
const FOOTER: &str =
    "q quit  ? help  1-6 sort  l lines  c cumulative  t thread  p pause  r reset  / filter";

/// Draw the whole view. Keeps the scroll position within the rows, and remembers how
/// many rows fit, for scrolling by pages.
pub fn draw(frame: &mut Frame, app: &mut App) {
    let area = frame.area();
    if area.width < MIN_SIZE.0 || area.height < MIN_SIZE.1 {
        let message = format!(
            "pyscry top needs a terminal of at least {}x{}; this one is {}x{}. q quits.",
            MIN_SIZE.0, MIN_SIZE.1, area.width, area.height
        );
        frame.render_widget(
            Paragraph::new(message).wrap(ratatui::widgets::Wrap { trim: true }),
            area,
        );
        return;
    }
    let [header, table, footer] = Layout::vertical([
        Constraint::Length(HEADER_LINES),
        Constraint::Min(2),
        Constraint::Length(1),
    ])
    .areas(area);
    frame.render_widget(Paragraph::new(header_lines(app)), header);
    draw_table(frame, app, table);
    frame.render_widget(Paragraph::new(footer_line(app)), footer);
    if app.help {
        draw_help(frame, area);
    }
}

fn header_lines(app: &App) -> Vec<Line<'static>> {
    let h: &Header = &app.header;
    let bold = Style::new().add_modifier(Modifier::BOLD);
    let state = match (&h.ended, app.paused) {
        (Some(how), _) => Text::styled(
            format!(" target {how}; final numbers "),
            Style::new().add_modifier(Modifier::REVERSED),
        ),
        (None, true) => Text::styled(" PAUSED ", Style::new().add_modifier(Modifier::REVERSED)),
        (None, false) => Text::raw(""),
    };
    let first = Line::from(vec![
        Text::styled(format!("pyscry top  pid {}  ", h.pid), bold),
        Text::raw(format!("{}  ", h.command)),
        state,
    ]);
    let second = format!(
        "{}  {} mode  {} Hz  elapsed {}  {} samples  {} errors  {} dropped ticks",
        h.python,
        h.mode,
        h.rate_hz,
        seconds(h.elapsed.as_secs_f64()),
        h.samples,
        h.errors,
        h.dropped_ticks
    );
    let threads = &h.threads;
    let idle = threads.sampled - threads.running.min(threads.sampled);
    // What the idle threads wait for, where the kernel said: `: 2 lock, 1 sleep`.
    let waits: Vec<String> = threads
        .idle_by_wait
        .iter()
        .filter_map(|(wait, n)| Some(format!("{n} {}", wait.as_ref()?.name())))
        .collect();
    let waits = match waits.is_empty() {
        true => String::new(),
        false => format!(": {}", waits.join(", ")),
    };
    // `GIL held 98%, 1.6 waiting`: how busy the GIL was, and how contended.
    let gil = (h.gil_percent.zip(h.gil_waiters)).map_or(String::new(), |(held, waiting)| {
        format!("  GIL held {held:.0}%, {waiting:.1} waiting")
    });
    let processes = h
        .processes
        .map_or(String::new(), |n| format!("processes {n}  "));
    let third = format!(
        "{processes}threads {} ({} running, {idle} idle{waits}){gil}  CPU {}  RSS {}",
        threads.sampled,
        threads.running,
        h.cpu_percent
            .map_or("-".to_string(), |cpu| format!("{cpu:.1}%")),
        h.rss_bytes.map_or("-".to_string(), bytes)
    );
    let span = match app.span {
        Span::Window => format!("last {}", seconds(app.table.duration.as_secs_f64())),
        Span::SinceStart => format!("cumulative {}", seconds(app.table.duration.as_secs_f64())),
    };
    let fourth = format!(
        "showing: {span}  per {}  {}{}  {} samples{}",
        if app.by_line { "line" } else { "function" },
        app.thread
            .as_ref()
            .map_or("all threads", |(_, label)| label.as_str()),
        if app.running_only {
            ", running only"
        } else {
            ""
        },
        app.table.samples,
        if app.filter.is_empty() {
            String::new()
        } else {
            format!("  filter \"{}\"", app.filter)
        }
    );
    vec![first, second.into(), third.into(), fourth.into()]
}

fn draw_table(frame: &mut Frame, app: &mut App, area: Rect) {
    let rows = app.rows();
    let page = usize::from(area.height.saturating_sub(1));
    let scroll = app.scroll.min(rows.len().saturating_sub(page));
    let spacing = 1;
    let fixed: u16 = NUMBER_WIDTHS.iter().sum::<u16>() + spacing * 5;
    let text_width = area.width.saturating_sub(fixed);
    // Names as wide as the longest needs, up to half; locations get the rest.
    let longest = rows
        .iter()
        .map(|r| r.name.chars().count())
        .max()
        .unwrap_or(0);
    let name_width = (longest.max(MIN_NAME_WIDTH) as u16).min(text_width / 2);
    let location_width = text_width - name_width;
    let widths = NUMBER_WIDTHS
        .iter()
        .copied()
        .chain([name_width, location_width])
        .map(Constraint::Length);
    let headings = Column::ALL.iter().enumerate().map(|(i, &column)| {
        let mut title = column.title().to_string();
        if column == app.sort.column {
            title.push(if app.sort.descending { '▼' } else { '▲' });
        }
        match NUMBER_WIDTHS.get(i) {
            Some(&width) => right(&title, width),
            None => title,
        }
    });
    let total = app.table.samples.max(1) as f64;
    let sample_secs = app.table.sample_secs;
    let cwd = std::env::current_dir().ok();
    let body: Vec<Row> = rows
        .iter()
        .skip(scroll)
        .take(page)
        .map(|row| {
            let percent = |n: u64| format!("{:.1}%", 100.0 * n as f64 / total);
            let time = |n: u64| seconds(n as f64 * sample_secs);
            let numbers = [
                percent(row.own),
                percent(row.total),
                time(row.own),
                time(row.total),
            ];
            let numbers = numbers.iter().zip(NUMBER_WIDTHS).map(|(n, w)| right(n, w));
            Row::new(numbers.chain([
                row.name.clone(),
                location(row, cwd.as_deref(), usize::from(location_width)),
            ]))
        })
        .collect();
    let empty = body.is_empty();
    let table = Table::new(body, widths)
        .column_spacing(spacing)
        .header(Row::new(headings).style(Style::new().add_modifier(Modifier::REVERSED)));
    frame.render_widget(table, area);
    if empty {
        let why = if app.table.samples == 0 {
            "no Python stacks in this span yet"
        } else {
            "no row matches the filter"
        };
        let below_heading = Rect {
            y: area.y + 1,
            height: 1,
            ..area
        };
        frame.render_widget(Paragraph::new(why), below_heading);
    }
    app.scroll = scroll;
    app.page = page.max(1);
}

fn footer_line(app: &App) -> Line<'static> {
    match &app.editing {
        Some(text) => Line::from(vec![
            Text::styled("filter: ", Style::new().add_modifier(Modifier::BOLD)),
            Text::raw(format!("{text}█")),
            Text::raw("   Enter apply, Esc cancel"),
        ]),
        None => Line::styled(FOOTER, Style::new().add_modifier(Modifier::REVERSED)),
    }
}

fn draw_help(frame: &mut Frame, area: Rect) {
    let key_width = KEYS
        .iter()
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(0);
    let lines: Vec<Line> = KEYS
        .iter()
        .map(|(key, what)| Line::from(format!(" {key:<key_width$}  {what}")))
        .collect();
    let width = (lines.iter().map(Line::width).max().unwrap_or(0) as u16 + 3).min(area.width);
    let height = (lines.len() as u16 + 2).min(area.height);
    let popup = Rect {
        x: area.x + (area.width - width) / 2,
        y: area.y + (area.height - height) / 2,
        width,
        height,
    };
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(lines).block(Block::bordered().title(" keys (any key closes) ")),
        popup,
    );
}

/// `text` right-aligned in `width` columns.
fn right(text: &str, width: u16) -> String {
    format!("{text:>width$}", width = usize::from(width))
}

/// `file:line`, short (see [`short_path`]), and cut at the front to `width` so that
/// the file name stays; a native function's file alone.
fn location(row: &FunctionRow, cwd: Option<&Path>, width: usize) -> String {
    let path = short_path(&row.filename, cwd);
    match row.first_line {
        0 => keep_end(path, width),
        line => keep_end(&format!("{path}:{line}"), width),
    }
}

/// Seconds in a short, fixed-precision form: `0.42s`, `12.3s`, `4m05s`.
fn seconds(secs: f64) -> String {
    match secs {
        s if s < 10.0 => format!("{s:.2}s"),
        s if s < 100.0 => format!("{s:.1}s"),
        s => format!("{}m{:02}s", (s / 60.0) as u64, (s % 60.0) as u64),
    }
}

/// A byte count in KiB, MiB or GiB.
fn bytes(n: u64) -> String {
    let n = n as f64;
    match n {
        n if n < 1024.0 * 1024.0 => format!("{:.0} KiB", n / 1024.0),
        n if n < 1024.0 * 1024.0 * 1024.0 => format!("{:.1} MiB", n / (1024.0 * 1024.0)),
        n => format!("{:.2} GiB", n / (1024.0 * 1024.0 * 1024.0)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ratatui::backend::TestBackend;
    use ratatui::Terminal;

    fn screen(width: u16, height: u16, app: &mut App) -> String {
        let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
        terminal.draw(|frame| draw(frame, app)).unwrap();
        let buffer = terminal.backend().buffer().clone();
        (0..height)
            .map(|y| {
                (0..width)
                    .map(|x| buffer[(x, y)].symbol().to_string())
                    .collect::<String>()
                    + "\n"
            })
            .collect()
    }

    fn app() -> App {
        let mut app = App::new(Header {
            pid: 42,
            command: "python3 work.py".into(),
            python: "CPython 3.12.1".into(),
            mode: "wall".into(),
            rate_hz: 100.0,
            ..Header::default()
        });
        app.table.samples = 100;
        app.table.sample_secs = 0.01;
        app.table.rows = (0..30)
            .map(|i| FunctionRow {
                name: format!("f{i:02}"),
                filename: "/srv/app/work.py".into(),
                first_line: i + 1,
                own: 30 - u64::from(i),
                total: 40,
            })
            .collect();
        app
    }

    #[test]
    fn the_table_shows_shares_times_and_locations() {
        let text = screen(100, 20, &mut app());
        assert!(
            text.contains("pyscry top  pid 42  python3 work.py"),
            "{text}"
        );
        assert!(text.contains("CPython 3.12.1  wall mode  100 Hz"), "{text}");
        assert!(text.contains("own%▼"), "{text}");
        let first = text.lines().find(|l| l.contains("f00")).unwrap();
        assert!(
            first.contains("30.0%") && first.contains("40.0%"),
            "{first}"
        );
        assert!(
            first.contains("0.30s") && first.contains("/srv/app/work.py:1"),
            "{first}"
        );
        assert!(text.contains("q quit"), "{text}");
    }

    #[test]
    fn the_header_says_how_busy_and_contended_the_gil_was() {
        let mut app = app();
        app.header.gil_percent = Some(97.6);
        app.header.gil_waiters = Some(1.55);
        let text = screen(120, 20, &mut app);
        assert!(text.contains("  GIL held 98%, 1.6 waiting  "), "{text}");
        // No GIL (a free-threaded build): nothing said of it.
        app.header.gil_percent = None;
        app.header.gil_waiters = None;
        assert!(!screen(120, 20, &mut app).contains("GIL"));
    }

    #[test]
    fn a_small_terminal_gets_a_message() {
        let text = screen(30, 5, &mut app());
        assert!(text.contains("needs a terminal"), "{text}");
    }

    #[test]
    fn scrolling_is_clamped_to_the_last_page() {
        let mut app = app();
        app.scroll = 1000;
        let text = screen(100, 20, &mut app);
        // 20 lines: 4 header, 1 heading, 14 rows, 1 footer.
        assert_eq!(app.page, 14);
        assert_eq!(app.scroll, 16);
        assert!(text.contains("f29") && !text.contains("f15"), "{text}");
    }

    #[test]
    fn help_and_exit_state_are_shown() {
        let mut app = app();
        app.help = true;
        app.header.ended = Some("exited with code 0".into());
        let text = screen(100, 30, &mut app);
        assert!(text.contains("target exited with code 0; final"), "{text}");
        assert!(text.contains("pause the display"), "{text}");
    }

    #[test]
    fn long_locations_keep_their_end() {
        let row = FunctionRow {
            name: "f".into(),
            filename: format!("/{}/x.py", "d".repeat(50)),
            first_line: 7,
            own: 0,
            total: 0,
        };
        let text = location(&row, None, 12);
        assert_eq!(text.chars().count(), 12);
        assert!(text.starts_with('…') && text.ends_with("/x.py:7"));
        let cwd = Path::new("/dd");
        let inside = FunctionRow {
            filename: "/dd/a/b.py".into(),
            ..row
        };
        assert_eq!(location(&inside, Some(cwd), 40), "a/b.py:7");
    }

    #[test]
    fn numbers_are_short() {
        assert_eq!(seconds(0.421), "0.42s");
        assert_eq!(seconds(12.34), "12.3s");
        assert_eq!(seconds(245.0), "4m05s");
        assert_eq!(bytes(10 * 1024 * 1024), "10.0 MiB");
    }
}
