//! `--threads`, `--thread`, `--main-thread`, `--no-idle`, `--function` and
//! `--full-filenames`: how a profile's outputs show it.

use crate::cli::ViewArgs;
use crate::report::Profile;

/// Keep the threads `args` asks for, and set whether each gets its own subtree and
/// whether frames are told apart by line. A process's main thread is the one whose
/// kernel id is the process id.
pub fn apply(args: &ViewArgs, profile: &mut Profile) {
    profile.show_threads = args.split;
    profile.by_function = args.function;
    profile.full_filenames = args.full_filenames;
    if args.no_idle {
        profile.drop_idle();
    }
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
