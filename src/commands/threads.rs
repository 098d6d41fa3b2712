//! `--threads`, `--thread` and `--main-thread`: which threads a profile's outputs show.

use crate::cli::ThreadArgs;
use crate::report::Profile;

/// Keep the threads `args` asks for and set whether each gets its own subtree. A
/// process's main thread is the one whose kernel id is the process id.
pub fn select(args: &ThreadArgs, profile: &mut Profile) {
    profile.show_threads = args.split;
    if args.main_thread {
        profile.retain_threads(|thread, _| thread.os_id == Some(thread.pid));
    }
    if !args.only.is_empty() {
        profile.retain_threads(|thread, name| {
            args.only.iter().any(|wanted| {
                Some(wanted.as_str()) == name
                    || thread.os_id.is_some_and(|tid| tid.to_string() == *wanted)
            })
        });
    }
}
