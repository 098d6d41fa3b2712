//! The source files of the sampled code, as a recording keeps them.
//!
//! A per-line table or a heatmap shows each line's text. The file it comes from may
//! be gone by the time a recording is rendered: the code was edited, the report is
//! read on another machine, or the target ran in a container whose paths this
//! machine does not have. So a recording keeps a copy of each sampled file, read
//! while the target ran, and falls back to the path only for files it has no copy of.

use std::collections::BTreeMap;

/// Source text by file name, as the interpreter named each file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceFiles {
    files: BTreeMap<String, String>,
}

impl SourceFiles {
    /// Keep `text` as the source of `filename`; a file already kept keeps its first
    /// copy (the one nearest to the code that ran).
    pub fn insert(&mut self, filename: String, text: String) {
        self.files.entry(filename).or_insert(text);
    }

    /// Whether a copy of `filename` is kept.
    pub fn contains(&self, filename: &str) -> bool {
        self.files.contains_key(filename)
    }

    /// Every file kept, with its text, in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.files
            .iter()
            .map(|(name, text)| (name.as_str(), text.as_str()))
    }

    /// Add the files of `other` that this one lacks.
    pub fn extend(&mut self, other: SourceFiles) {
        for (filename, text) in other.files {
            self.insert(filename, text);
        }
    }

    /// Whether the copy kept of `filename` differs from the file at that path here
    /// (edited since it was recorded); false when there is no copy or no file.
    pub fn changed_since(&self, filename: &str) -> bool {
        self.files
            .get(filename)
            .is_some_and(|kept| std::fs::read_to_string(filename).is_ok_and(|now| &now != kept))
    }

    /// The lines of `filename`: the copy kept, else the file at that path here;
    /// `None` when there is neither.
    pub fn lines(&self, filename: &str) -> Option<Vec<String>> {
        let read;
        let text = match self.files.get(filename) {
            Some(text) => text,
            None => {
                read = std::fs::read_to_string(filename).ok()?;
                &read
            }
        };
        Some(text.lines().map(str::to_string).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_copy_kept_comes_before_the_file_and_the_first_copy_stays() {
        let dir = std::env::temp_dir().join(format!("pyscry-sources-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("w.py");
        std::fs::write(&path, "on disk\n").unwrap();
        let name = path.to_str().unwrap().to_string();

        let mut sources = SourceFiles::default();
        assert_eq!(sources.lines(&name), Some(vec!["on disk".to_string()]));
        sources.insert(name.clone(), "kept\nsecond\n".into());
        sources.insert(name.clone(), "later copy\n".into());
        assert_eq!(
            sources.lines(&name),
            Some(vec!["kept".to_string(), "second".to_string()])
        );
        assert!(sources.contains(&name));
        assert!(sources.changed_since(&name));
        std::fs::write(&path, "kept\nsecond\n").unwrap();
        assert!(!sources.changed_since(&name));
        assert_eq!(sources.lines("/nonexistent/pyscry/x.py"), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
