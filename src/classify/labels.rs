//! Class names: ImageNet-1k's for 1000-class networks, a user's file, or `class N`.

use crate::{Error, Result};
use std::path::Path;

/// The 1000 ImageNet-1k class names in timm's order (index = class), one per line.
const IMAGENET1K: &str = include_str!("../models/imagenet1k_labels.txt");

/// Names for the classes of a classifier.
#[derive(Clone, Debug, PartialEq)]
pub struct Labels {
    names: Vec<String>,
}

impl Labels {
    /// The ImageNet-1k names (1000 of them).
    pub fn imagenet1k() -> Labels {
        Labels { names: IMAGENET1K.lines().map(String::from).collect() }
    }

    /// The names, class i at index i.
    pub fn into_names(self) -> Vec<String> {
        self.names
    }

    /// `class 0`, `class 1`, ... for `classes` classes.
    pub fn numbered(classes: usize) -> Labels {
        Labels { names: (0..classes).map(|i| format!("class {i}")).collect() }
    }

    /// One name per line of `text` (a final newline ends the last name; blank lines are names
    /// too, so that line i stays class i).
    pub fn parse(text: &str) -> Labels {
        Labels { names: text.lines().map(|l| l.trim_end_matches('\r').to_string()).collect() }
    }

    /// The names for a `classes`-way classifier: from `file` when given (its line count must be
    /// `classes`), else ImageNet-1k's for 1000 classes, else numbered.
    pub fn for_classes(classes: usize, file: Option<&Path>) -> Result<Labels> {
        let file_error = |path: &Path, msg: String| Error::File { path: path.display().to_string(), msg };
        match file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| file_error(path, format!("cannot read the labels: {e}")))?;
                let labels = Labels::parse(&text);
                if labels.len() != classes {
                    return Err(file_error(
                        path,
                        format!("{} labels for a network with {classes} classes (one label per line)", labels.len()),
                    ));
                }
                Ok(labels)
            }
            None if classes == 1000 => Ok(Labels::imagenet1k()),
            None => Ok(Labels::numbered(classes)),
        }
    }

    /// How many names.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The name of class `index`.
    pub fn get(&self, index: usize) -> &str {
        &self.names[index]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imagenet_has_1000_names_in_order() {
        let l = Labels::imagenet1k();
        assert_eq!(l.len(), 1000);
        assert_eq!(l.get(0), "tench, Tinca tinca");
        assert!(l.names.iter().all(|n| !n.is_empty()));
        assert_eq!(Labels::for_classes(1000, None).unwrap(), l);
        assert_eq!(Labels::for_classes(3, None).unwrap().get(2), "class 2");
    }

    #[test]
    fn parsed_lines_keep_their_index() {
        let l = Labels::parse("cat\r\n\ndog\n");
        assert_eq!(l.names, ["cat", "", "dog"]);
    }
}
