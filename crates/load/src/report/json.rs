//! summary.json: the machine-readable run record.

use std::path::Path;

use super::Summary;
use crate::error::LoadError;

/// Writes the summary as pretty JSON.
pub fn write(path: &Path, s: &Summary) -> Result<(), LoadError> {
    let text = serde_json::to_string_pretty(s).map_err(|source| LoadError::Json {
        context: format!("encode {}", path.display()),
        source,
    })?;
    std::fs::write(path, text).map_err(|e| LoadError::io(format!("write {}", path.display()), e))
}

/// Reads a summary written by [`write`]; `path` may be the run directory or the file.
pub fn read(path: &Path) -> Result<Summary, LoadError> {
    let file = if path.is_dir() {
        path.join("summary.json")
    } else {
        path.to_path_buf()
    };
    let text = std::fs::read_to_string(&file)
        .map_err(|e| LoadError::io(format!("read {}", file.display()), e))?;
    serde_json::from_str(&text).map_err(|source| LoadError::Json {
        context: format!("decode {}", file.display()),
        source,
    })
}
