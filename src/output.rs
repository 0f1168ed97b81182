//! Checks every command makes on the files it is about to write, before the work starts:
//! an output is never one of the inputs, never a folder or device, and its folder exists
//! and is writable (so a long run does not fail at its very end).

use crate::{Error, Result};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How often a long run rewrites its report while it works (`map`'s index.html, `classify`'s
/// --json / --csv): often enough that an interrupt loses little, seldom enough that rewriting
/// stays a small share of the work.
pub const REWRITE_EVERY: Duration = Duration::from_secs(2);

fn file_error(path: &Path, msg: impl std::fmt::Display) -> Error {
    Error::File { path: path.display().to_string(), msg: msg.to_string() }
}

/// Fails unless `out` can take a new file: not one of `inputs` (by canonical path and, on
/// Unix, by file identity, so a hard link counts), not a folder or special file (such as
/// /dev/null), in a folder that exists and is writable.
pub fn check_output(out: &Path, inputs: &[PathBuf]) -> Result<()> {
    if let Ok(meta) = std::fs::metadata(out) {
        if !meta.is_file() {
            return Err(file_error(out, "exists and is not a regular file; glimpse never writes over it"));
        }
        if let Some(input) = inputs.iter().find(|i| same_file(out, i)) {
            return Err(file_error(out, format!("is the input {}; inputs are never overwritten", input.display())));
        }
    }
    let name = out.file_name().ok_or_else(|| file_error(out, "not a file path"))?;
    let dir = out.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    if !dir.is_dir() {
        return Err(file_error(out, format!("the folder {} does not exist", dir.display())));
    }
    let probe = out.with_file_name(format!(".{}.probe", name.to_string_lossy()));
    probe_writable(&probe).map_err(|e| file_error(out, format!("cannot write there ({e})")))
}

/// Creates and removes the empty file `probe`: whether its folder takes new files. An
/// interrupt waits for the removal, so the probe is never left behind.
pub fn probe_writable(probe: &Path) -> std::io::Result<()> {
    crate::interrupt::uninterrupted(|| {
        std::fs::write(probe, b"")?;
        std::fs::remove_file(probe)
    })
}

/// [`check_output`] for each of several outputs, which must also name different files.
/// Each output comes with the flag that named it, for the message.
pub fn check_outputs(outputs: &[(&str, &Path)], inputs: &[PathBuf]) -> Result<()> {
    for (i, (flag, out)) in outputs.iter().enumerate() {
        check_output(out, inputs).map_err(|e| Error::invalid(*flag, e.to_string()))?;
        if let Some((other, _)) = outputs[..i].iter().find(|(_, o)| resolved(o) == resolved(out)) {
            return Err(Error::invalid(*flag, format!("{} is also the {other} output", out.display())));
        }
    }
    Ok(())
}

/// The path with its folder canonicalised, so `a/../x` and `x` compare equal even before
/// `x` exists.
fn resolved(p: &Path) -> PathBuf {
    let dir = p.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    match (dir.canonicalize(), p.file_name()) {
        (Ok(dir), Some(name)) => dir.join(name),
        _ => p.to_path_buf(),
    }
}

/// Whether two paths name the same existing file.
pub fn same_file(a: &Path, b: &Path) -> bool {
    if let (Ok(ca), Ok(cb)) = (a.canonicalize(), b.canonicalize()) {
        if ca == cb {
            return true;
        }
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if let (Ok(ma), Ok(mb)) = (std::fs::metadata(a), std::fs::metadata(b)) {
            return ma.dev() == mb.dev() && ma.ino() == mb.ino();
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("glimpse-output-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn an_output_is_never_an_input_a_folder_or_a_device() {
        let dir = scratch();
        let input = dir.join("in.safetensors");
        std::fs::write(&input, b"x").unwrap();
        let err = check_output(&input, std::slice::from_ref(&input)).unwrap_err().to_string();
        assert!(err.contains("is the input"), "{err}");
        let via_dots = dir.join("..").join(dir.file_name().unwrap()).join("in.safetensors");
        assert!(check_output(&via_dots, std::slice::from_ref(&input)).is_err());
        #[cfg(unix)]
        {
            let link = dir.join("hard-link.safetensors");
            let _ = std::fs::remove_file(&link);
            std::fs::hard_link(&input, &link).unwrap();
            let err = check_output(&link, std::slice::from_ref(&input)).unwrap_err().to_string();
            assert!(err.contains("is the input"), "{err}");
            let err = check_output(Path::new("/dev/null"), &[]).unwrap_err().to_string();
            assert!(err.contains("not a regular file"), "{err}");
        }
        let err = check_output(&dir, &[]).unwrap_err().to_string();
        assert!(err.contains("not a regular file"), "{err}");
        let err = check_output(&dir.join("missing/out.json"), &[]).unwrap_err().to_string();
        assert!(err.contains("does not exist"), "{err}");
        assert!(check_output(&dir.join("out.json"), std::slice::from_ref(&input)).is_ok());
        assert!(!dir.join(".out.json.probe").exists(), "the probe is removed");
    }

    #[test]
    fn two_outputs_may_not_name_one_file() {
        let dir = scratch();
        let a = dir.join("a.json");
        let b = dir.join(".").join("a.json");
        let err = check_outputs(&[("--json", &a), ("--csv", &b)], &[]).unwrap_err().to_string();
        assert!(err.contains("--csv") && err.contains("--json"), "{err}");
        assert!(check_outputs(&[("--json", &a), ("--csv", &dir.join("a.csv"))], &[]).is_ok());
    }
}
