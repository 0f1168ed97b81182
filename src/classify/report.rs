//! What `glimpse classify` writes: per image the top classes or the error, as JSON or CSV,
//! each written atomically and never over an input.

use crate::tensorfile::write_atomically;
use crate::Result;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// One of an image's most probable classes.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Ranked {
    /// The class index.
    pub index: usize,
    /// Its name.
    pub label: String,
    /// Its softmax probability, 0 to 1.
    pub prob: f64,
}

/// What became of one image.
#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    /// The image file.
    pub path: PathBuf,
    /// Its top classes, or why it could not be classified.
    pub result: std::result::Result<Vec<Ranked>, String>,
}

/// One object per image: `{"path", "topk": [{"index", "label", "prob"}]}`, or `{"path", "error"}`.
pub fn json(outcomes: &[Outcome]) -> String {
    let list: Vec<serde_json::Value> = outcomes
        .iter()
        .map(|o| {
            let path = o.path.display().to_string();
            match &o.result {
                Ok(topk) => serde_json::json!({ "path": path, "topk": topk }),
                Err(e) => serde_json::json!({ "path": path, "error": e }),
            }
        })
        .collect();
    let mut text = serde_json::to_string_pretty(&list).expect("JSON values always serialise");
    text.push('\n');
    text
}

/// `path,rank,index,label,prob`, one row per class of each classified image (rank from 1);
/// images that failed have no rows (their errors go to stderr and the JSON report).
pub fn csv(outcomes: &[Outcome]) -> String {
    let mut text = String::from("path,rank,index,label,prob\n");
    for o in outcomes {
        let Ok(topk) = &o.result else { continue };
        let path = csv_field(&o.path.display().to_string());
        for (rank, r) in topk.iter().enumerate() {
            text += &format!("{path},{},{},{},{}\n", rank + 1, r.index, csv_field(&r.label), r.prob);
        }
    }
    text
}

/// RFC 4180 quoting: ImageNet's labels hold commas ("tench, Tinca tinca").
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// Writes `text` to `out` through a temporary file renamed into place.
pub fn write(out: &Path, text: &str) -> Result<()> {
    write_atomically(out, text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_commas_and_quotes() {
        assert_eq!(csv_field("tench, Tinca tinca"), "\"tench, Tinca tinca\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("plain"), "plain");
    }
}
