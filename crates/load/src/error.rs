//! Error types: [`PlanError`] for plan files, [`LoadError`] for everything a run can hit.

use std::path::PathBuf;

/// Where in a plan file something went wrong (1-based, like editors show it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    /// 1-based line number.
    pub line: usize,
    /// 1-based column number (in characters).
    pub column: usize,
}

impl Location {
    /// Turns a byte offset into `src` into a line/column pair.
    pub fn from_offset(src: &str, offset: usize) -> Self {
        let offset = offset.min(src.len());
        let before = &src[..floor_char_boundary(src, offset)];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before[line_start..].chars().count() + 1;
        Self { line, column }
    }

    /// Finds the first occurrence of `needle` in `src`; used to point semantic errors (which serde
    /// cannot locate) at the text the user wrote.
    pub fn find(src: &str, needle: &str) -> Option<Self> {
        if needle.is_empty() {
            return None;
        }
        src.find(needle).map(|off| Self::from_offset(src, off))
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// A plan that cannot be used: unreadable, not TOML, wrong schema, or semantically invalid.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// The plan file could not be read.
    #[error("cannot read plan {path}: {source}")]
    Io {
        /// The file we tried to read.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// TOML syntax or schema error (unknown key, wrong type, bad duration ...).
    #[error("{origin}:{}: {message}", location.map_or_else(|| "?".to_string(), |l| l.to_string()))]
    Syntax {
        /// File name or other origin label given to the parser.
        origin: String,
        /// Position of the error when toml reported a span.
        location: Option<Location>,
        /// What went wrong.
        message: String,
    },
    /// The plan parses but makes no sense (zero weights, unknown variables, empty shape ...).
    #[error("{origin}:{}: {message}", location.map_or_else(|| "?".to_string(), |l| l.to_string()))]
    Invalid {
        /// File name or other origin label given to the parser.
        origin: String,
        /// Best-effort position of the offending text.
        location: Option<Location>,
        /// What is wrong and, where possible, how to fix it.
        message: String,
    },
}

impl PlanError {
    /// The line number of the error, when known.
    pub fn line(&self) -> Option<usize> {
        match self {
            PlanError::Io { .. } => None,
            PlanError::Syntax { location, .. } | PlanError::Invalid { location, .. } => {
                location.map(|l| l.line)
            }
        }
    }
}

/// Anything that can stop a run or a report from being produced (exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The plan is invalid.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// Options make the run impossible (no host, bad override ...).
    #[error("invalid options: {0}")]
    Options(String),
    /// Filesystem error while writing outputs or reading a run directory.
    #[error("{context}: {source}")]
    Io {
        /// What we were doing.
        context: String,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// The HTTP client could not be built.
    #[error("http client: {0}")]
    Http(#[from] reqwest::Error),
    /// A JSON document (summary.json) could not be read or written.
    #[error("json {context}: {source}")]
    Json {
        /// What we were doing.
        context: String,
        /// The underlying serde error.
        source: serde_json::Error,
    },
    /// An internal invariant failed (should not happen; please report it).
    #[error("internal error: {0}")]
    Internal(String),
    /// CSV output failed.
    #[error("csv: {0}")]
    Csv(#[from] csv::Error),
    /// A distributed run could not be coordinated (no workers, a refused worker, a message
    /// that does not parse).
    #[error("distributed run: {0}")]
    Distributed(String),
    /// Redis, which coordinates a distributed run, failed.
    #[error("redis (coordination of a distributed run): {0}")]
    Redis(#[from] redis::RedisError),
}

impl LoadError {
    /// Wraps an I/O error with what we were doing at the time.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        LoadError::Io {
            context: context.into(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_become_lines_and_columns() {
        let src = "a = 1\nbb = 2\n";
        assert_eq!(
            Location::from_offset(src, 0),
            Location { line: 1, column: 1 }
        );
        assert_eq!(
            Location::from_offset(src, 6),
            Location { line: 2, column: 1 }
        );
        assert_eq!(
            Location::from_offset(src, 9),
            Location { line: 2, column: 4 }
        );
        assert_eq!(Location::find(src, "bb").map(|l| l.line), Some(2));
    }
}
