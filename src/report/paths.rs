//! Source paths as people read them in labels and tables: `json/decoder.py` rather
//! than `/usr/lib/python3.11/json/decoder.py`.

use std::collections::HashMap;
use std::path::Path;

/// Directories whose contents are named by module path: third-party packages.
const PACKAGE_DIRS: [&str; 2] = ["/site-packages/", "/dist-packages/"];

/// `path` as labels and tables show it: below the `site-packages` (or
/// `dist-packages`) or standard library directory that holds it (`requests/api.py`,
/// `threading.py`), else relative to `cwd` when inside it (what the user typed,
/// usually), else whole. Names that are not paths (`<frozen …>`, `<string>`) stay.
pub fn short_path<'a>(path: &'a str, cwd: Option<&Path>) -> &'a str {
    let below_packages = PACKAGE_DIRS
        .iter()
        .filter_map(|dir| path.rfind(dir).map(|at| &path[at + dir.len()..]))
        .min_by_key(|rest| rest.len());
    below_packages
        .or_else(|| below_stdlib(path))
        .filter(|rest| !rest.is_empty())
        .or_else(|| {
            cwd.and_then(|dir| Path::new(path).strip_prefix(dir).ok())
                .and_then(Path::to_str)
        })
        .unwrap_or(path)
}

/// How each of `paths` is named in labels: its [`short_path`], unless another of
/// `paths` has the same short name (`utils.py` in the working directory and in
/// `site-packages`), in which case both keep their whole path, so that their frames
/// are never drawn as one.
pub fn distinct_short_paths<'a>(
    paths: impl IntoIterator<Item = &'a str>,
    cwd: Option<&Path>,
) -> HashMap<&'a str, &'a str> {
    let mut by_short: HashMap<&str, Vec<&str>> = HashMap::new();
    for path in paths {
        let paths = by_short.entry(short_path(path, cwd)).or_default();
        if !paths.contains(&path) {
            paths.push(path);
        }
    }
    let mut names = HashMap::new();
    for (short, paths) in by_short {
        let unique = paths.len() == 1;
        for path in paths {
            names.insert(path, if unique { short } else { path });
        }
    }
    names
}

/// The part of `path` below a standard library directory: `…/lib/python3.11/`,
/// `…/lib64/python3.14t/`, `…/lib/python2.7/`.
fn below_stdlib(path: &str) -> Option<&str> {
    ["/lib/python", "/lib64/python"]
        .iter()
        .filter_map(|dir| {
            let at = path.rfind(dir)? + dir.len();
            let rest = &path[at..];
            let version_end = rest.find('/')?;
            let version = &rest[..version_end];
            // `3.11`, `2.7`, with an ABI suffix such as `t` or `d`.
            let digits = version.trim_end_matches(|c: char| c.is_ascii_lowercase());
            let (major, minor) = digits.split_once('.')?;
            let numeric = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit());
            (numeric(major) && numeric(minor)).then(|| &rest[version_end + 1..])
        })
        .min_by_key(|rest| rest.len())
}

/// `text` cut at the front to at most `max` characters, with `…` where it was cut:
/// the end of a path is the part that tells files apart.
pub fn keep_end(text: &str, max: usize) -> String {
    let count = text.chars().count();
    if count <= max || max == 0 {
        return text.to_string();
    }
    let tail: String = text.chars().skip(count - (max - 1)).collect();
    format!("…{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn library_files_are_named_below_their_directory() {
        let cases = [
            ("/usr/lib/python3.11/json/decoder.py", "json/decoder.py"),
            (
                "/root/.pyenv/versions/2.7.18/lib/python2.7/threading.py",
                "threading.py",
            ),
            (
                "/opt/py/lib64/python3.14t/asyncio/tasks.py",
                "asyncio/tasks.py",
            ),
            (
                "/venv/lib/python3.12/site-packages/requests/api.py",
                "requests/api.py",
            ),
            (
                "/usr/lib/python3/dist-packages/yaml/__init__.py",
                "yaml/__init__.py",
            ),
            // A vendored package inside another: the innermost directory names it.
            (
                "/v/lib/python3.9/site-packages/pip/_vendor/x/site-packages/y.py",
                "y.py",
            ),
        ];
        for (path, short) in cases {
            assert_eq!(short_path(path, None), short, "{path}");
        }
    }

    #[test]
    fn other_files_are_relative_to_the_directory_or_whole() {
        let cwd = Path::new("/srv/app");
        assert_eq!(short_path("/srv/app/jobs/run.py", Some(cwd)), "jobs/run.py");
        assert_eq!(
            short_path("/srv/other/run.py", Some(cwd)),
            "/srv/other/run.py"
        );
        // Not a version: the path is left alone.
        assert_eq!(
            short_path("/x/lib/pythonic/a.py", None),
            "/x/lib/pythonic/a.py"
        );
        assert_eq!(
            short_path("<frozen importlib._bootstrap>", Some(cwd)),
            "<frozen importlib._bootstrap>"
        );
        assert_eq!(short_path("<string>", None), "<string>");
    }

    #[test]
    fn files_whose_short_names_collide_keep_their_whole_paths() {
        let cwd = Path::new("/srv/app");
        let paths = [
            "/srv/app/utils.py",
            "/venv/lib/python3.12/site-packages/utils.py",
            "/venv/lib/python3.12/site-packages/requests/api.py",
            "/srv/app/utils.py",
        ];
        let names = distinct_short_paths(paths, Some(cwd));
        assert_eq!(names.len(), 3);
        assert_eq!(names["/srv/app/utils.py"], "/srv/app/utils.py");
        let installed = "/venv/lib/python3.12/site-packages/utils.py";
        assert_eq!(names[installed], installed);
        let api = "/venv/lib/python3.12/site-packages/requests/api.py";
        assert_eq!(names[api], "requests/api.py");
    }

    #[test]
    fn long_text_keeps_its_end() {
        assert_eq!(keep_end("/a/b/c.py", 60), "/a/b/c.py");
        let short = keep_end(&format!("/{}/x.py", "d".repeat(100)), 20);
        assert_eq!(short.chars().count(), 20);
        assert!(short.starts_with('…') && short.ends_with("/x.py"));
    }
}
