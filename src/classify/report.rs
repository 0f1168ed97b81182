//! What `glimpse classify` writes: per image the top classes or the error, as JSON or CSV,
//! each written atomically and never over an input.

use crate::tensorfile::write_all_atomically;
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

/// `{"images": [...]}`, one object per image: `{"path", "topk": [{"index", "label", "prob"}]}`
/// or `{"path", "error"}`. A report rewritten while the run goes on (and so one an interrupt
/// left) lists the images done so far and says so in `"unfinished"`, e.g. "8 of 200 image(s) done".
pub fn json(outcomes: &[Outcome], unfinished: Option<&str>) -> String {
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
    let mut report = serde_json::json!({ "images": list });
    if let Some(note) = unfinished {
        report["unfinished"] = note.into();
    }
    let mut text = serde_json::to_string_pretty(&report).expect("JSON values always serialise");
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

/// Writes the reports asked for (`--json`, `--csv`) of `outcomes`, together (an interrupt never
/// leaves one a rewrite ahead of the other), each through a temporary file renamed into place.
/// `unfinished` marks a report written while the run goes on (see [`json`]); the CSV has no
/// room for the mark and holds the same images.
pub fn write(
    json_path: Option<&Path>,
    csv_path: Option<&Path>,
    outcomes: &[Outcome],
    unfinished: Option<&str>,
) -> Result<()> {
    let json_text = json_path.map(|_| json(outcomes, unfinished));
    let csv_text = csv_path.map(|_| csv(outcomes));
    let files: Vec<(&Path, &[u8])> = [(json_path, &json_text), (csv_path, &csv_text)]
        .into_iter()
        .filter_map(|(path, text)| Some((path?, text.as_deref()?.as_bytes())))
        .collect();
    write_all_atomically(&files)
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
