//! Owning the terminal: taking it over for the live view and giving it back however
//! pyscry leaves (normally, on error, or on a panic), and keeping a launched program
//! off the screen.

use std::fs::File;
use std::io::{self, BufWriter, Stdout};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::Once;

use crossterm::cursor::{Hide, Show};
use crossterm::execute;
use crossterm::terminal::{
    disable_raw_mode, enable_raw_mode, EnterAlternateScreen, LeaveAlternateScreen,
};
use ratatui::backend::CrosstermBackend;
use ratatui::Terminal;

/// The terminal the live view draws on. Each frame is buffered and written at once, so
/// the screen never shows half a frame.
pub type Tui = Terminal<CrosstermBackend<BufWriter<Stdout>>>;

/// Big enough for a full frame of a large terminal.
const FRAME_BUFFER: usize = 1 << 18;

/// The terminal in raw mode on the alternate screen with the cursor hidden; dropping
/// the guard restores it. A panic restores it too, before the panic message prints.
pub struct TerminalGuard {
    /// Where to draw.
    pub terminal: Tui,
}

impl TerminalGuard {
    /// Take the terminal over.
    pub fn enter() -> io::Result<TerminalGuard> {
        static PANIC_HOOK: Once = Once::new();
        PANIC_HOOK.call_once(|| {
            let previous = std::panic::take_hook();
            std::panic::set_hook(Box::new(move |info| {
                restore();
                previous(info);
            }));
        });
        enable_raw_mode()?;
        let entered = execute!(io::stdout(), EnterAlternateScreen, Hide).and_then(|()| {
            let out = BufWriter::with_capacity(FRAME_BUFFER, io::stdout());
            Terminal::new(CrosstermBackend::new(out))
        });
        match entered {
            Ok(terminal) => Ok(TerminalGuard { terminal }),
            Err(error) => {
                restore();
                Err(error)
            }
        }
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore();
    }
}

/// Leave raw mode and the alternate screen and show the cursor. Harmless when the
/// terminal is already restored.
fn restore() {
    let _ = disable_raw_mode();
    let _ = execute!(io::stdout(), LeaveAlternateScreen, Show);
}

/// Run `start` with stdin, stdout and stderr on `/dev/null`, so that a program it
/// launches inherits those rather than the terminal the live view owns (its output
/// would scribble over the screen and it would compete for keys). Ours are put back
/// before this returns.
pub fn with_stdio_detached<T>(start: impl FnOnce() -> T) -> io::Result<T> {
    let null = File::options().read(true).write(true).open("/dev/null")?;
    let saved = SavedStdio::redirect_to(&null)?;
    let result = start();
    drop(saved);
    Ok(result)
}

/// Copies of file descriptors 0, 1 and 2, put back in place on drop.
struct SavedStdio(Vec<OwnedFd>);

impl SavedStdio {
    fn redirect_to(target: &File) -> io::Result<SavedStdio> {
        let mut saved = Vec::with_capacity(3);
        for fd in 0..3 {
            // SAFETY: duplicating a descriptor we own; close-on-exec so that the
            // program being launched does not inherit the copy.
            let copy = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3) };
            if copy < 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: `copy` is a new descriptor that nothing else owns.
            saved.push(unsafe { OwnedFd::from_raw_fd(copy) });
        }
        let saved = SavedStdio(saved);
        for fd in 0..3 {
            // SAFETY: dup2 onto our own standard descriptors; `saved` restores them.
            if unsafe { libc::dup2(target.as_raw_fd(), fd) } < 0 {
                return Err(io::Error::last_os_error());
            }
        }
        Ok(saved)
    }
}

impl Drop for SavedStdio {
    fn drop(&mut self) {
        for (fd, copy) in (0..).zip(&self.0) {
            // SAFETY: putting our own descriptor back.
            unsafe { libc::dup2(copy.as_raw_fd(), fd) };
        }
    }
}
