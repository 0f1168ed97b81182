//! Which picture files a command reads: the files named, and the pictures inside the folders
//! named, for `glimpse map` (subfolders too) and `glimpse classify` (one level). Each real
//! folder is listed once, by its canonical path, so symlink loops (`ln -s . again`) and
//! diamonds end instead of branching.

use crate::{Error, Result};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The file extensions glimpse decodes (case-insensitive).
pub const IMAGE_EXTENSIONS: [&str; 3] = ["png", "jpg", "jpeg"];

/// Extensions of pictures glimpse does not decode: found in a folder they are reported
/// (skipped, unsupported format) rather than passed over like a text file.
pub const OTHER_PICTURE_EXTENSIONS: [&str; 14] =
    ["webp", "bmp", "tif", "tiff", "gif", "avif", "heic", "heif", "jxl", "tga", "ico", "ppm", "pgm", "qoi"];

/// How deep into the folders named to look.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Depth {
    /// Only the files directly inside each folder named.
    OneLevel,
    /// Subfolders too (each real folder once).
    Recursive,
}

/// What a walk found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Found {
    /// The files named (kept even when missing: they fail when decoded, and the rest go on),
    /// then the PNG / JPEG files of each folder, sorted by name within a folder.
    pub images: Vec<PathBuf>,
    /// Pictures in a folder in a format glimpse does not read ([`OTHER_PICTURE_EXTENSIONS`]).
    pub unsupported: Vec<PathBuf>,
}

fn has_extension(path: &Path, list: &[&str]) -> bool {
    path.extension().and_then(|e| e.to_str()).is_some_and(|e| list.iter().any(|x| e.eq_ignore_ascii_case(x)))
}

fn file_error(path: &Path, msg: impl std::fmt::Display) -> Error {
    Error::File { path: path.display().to_string(), msg: msg.to_string() }
}

/// The pictures among `paths` and in the folders among them, to `depth`, leaving out the
/// folder `skip` (a canonical path: the output folder a job writes into).
pub fn collect(paths: &[PathBuf], depth: Depth, skip: Option<&Path>) -> Result<Found> {
    let mut visited = BTreeSet::new();
    let mut found = Found::default();
    for p in paths {
        if p.is_dir() {
            walk(p, depth, skip, &mut visited, &mut found)?;
        } else {
            found.images.push(p.clone());
        }
    }
    Ok(found)
}

impl Found {
    /// Keeps the first of the paths that name one file (named and in a folder, or reached
    /// through a link). `glimpse classify` keeps a file named twice (two rows, as asked).
    pub fn dedup(&mut self) {
        let mut seen = BTreeSet::new();
        for list in [&mut self.images, &mut self.unsupported] {
            list.retain(|p| seen.insert(p.canonicalize().unwrap_or_else(|_| p.clone())));
        }
    }
}

fn walk(
    dir: &Path,
    depth: Depth,
    skip: Option<&Path>,
    visited: &mut BTreeSet<PathBuf>,
    found: &mut Found,
) -> Result<()> {
    let real = dir.canonicalize().map_err(|e| file_error(dir, format!("cannot resolve the folder: {e}")))?;
    if skip == Some(real.as_path()) || !visited.insert(real) {
        return Ok(());
    }
    let entries = std::fs::read_dir(dir).map_err(|e| file_error(dir, format!("cannot list the folder: {e}")))?;
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for p in paths {
        if p.is_dir() {
            if depth == Depth::Recursive {
                walk(&p, depth, skip, visited, found)?;
            }
        } else if has_extension(&p, &IMAGE_EXTENSIONS) {
            found.images.push(p);
        } else if has_extension(&p, &OTHER_PICTURE_EXTENSIONS) {
            found.unsupported.push(p);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("glimpse-walk-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn names(list: &[PathBuf]) -> Vec<String> {
        list.iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect()
    }

    #[cfg(unix)]
    #[test]
    fn symlink_loops_are_walked_once() {
        let dir = scratch("loops");
        std::fs::write(dir.join("a.png"), b"").unwrap();
        std::fs::write(dir.join("b.webp"), b"").unwrap();
        std::fs::write(dir.join("notes.txt"), b"").unwrap();
        // Each link to `.` doubles the tree a naive walk sees: 40 would never finish.
        for i in 0..40 {
            std::os::unix::fs::symlink(".", dir.join(format!("self{i:02}"))).unwrap();
        }
        let found = collect(std::slice::from_ref(&dir), Depth::Recursive, None).unwrap();
        assert_eq!(names(&found.images), ["a.png"]);
        assert_eq!(names(&found.unsupported), ["b.webp"]);
        let found = collect(&[dir.clone(), dir.join("self00")], Depth::OneLevel, None).unwrap();
        assert_eq!(names(&found.images), ["a.png"]);
        let mut found = collect(&[dir.join("a.png"), dir.clone()], Depth::OneLevel, None).unwrap();
        assert_eq!(found.images.len(), 2, "a file named and found in a folder");
        found.dedup();
        assert_eq!(names(&found.images), ["a.png"]);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn the_skipped_folder_is_left_out() {
        let dir = scratch("skip");
        std::fs::create_dir_all(dir.join("out")).unwrap();
        std::fs::write(dir.join("out/x.png"), b"").unwrap();
        std::fs::write(dir.join("y.JPG"), b"").unwrap();
        let out = dir.join("out").canonicalize().unwrap();
        let found = collect(std::slice::from_ref(&dir), Depth::Recursive, Some(&out)).unwrap();
        assert_eq!(names(&found.images), ["y.JPG"]);
        let _ = std::fs::remove_dir_all(dir);
    }
}
