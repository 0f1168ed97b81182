//! Reading and writing named tensors as .safetensors: weights, `glimpse run`'s
//! input and output, golden fixtures and raw attention maps.
//!
//! The safetensors crate validates the container (header size, contiguous
//! offsets, no holes or overflow); on top of it every tensor is converted to
//! f32, checked for a non-empty shape and finite values, and copied (so
//! misaligned data is fine). A truncated file and a tensor listed twice in the
//! header are named before the crate parses it ([`header`]). Writes go to a temporary file renamed into place,
//! so a failed run never leaves a partial file.

mod header;

use crate::{Error, Result, Shape, Tensor};
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

/// The named f32 tensors of one file and its string metadata.
#[derive(Clone, Debug, Default)]
pub struct TensorFile {
    /// Tensors by name. Integer tensors are kept out (see [`TensorFile::skipped`]).
    pub tensors: BTreeMap<String, Tensor>,
    /// The file's `__metadata__` strings.
    pub metadata: BTreeMap<String, String>,
    /// Integer tensors that were present but not loaded, by name, with their
    /// dtype ("I64"): BatchNorm's `num_batches_tracked` bookkeeping, or an
    /// integer tensor where a float one was meant (then named with its dtype).
    pub skipped: BTreeMap<String, String>,
}

fn file_error(path: &Path, msg: impl std::fmt::Display) -> Error {
    Error::File { path: path.display().to_string(), msg: msg.to_string() }
}

impl TensorFile {
    /// Reads a .safetensors file.
    pub fn read(path: &Path) -> Result<TensorFile> {
        let bytes = std::fs::read(path).map_err(|e| file_error(path, e))?;
        TensorFile::parse(&bytes).map_err(|msg| file_error(path, msg))
    }

    /// Parses safetensors bytes; the error says what is wrong with which tensor.
    pub fn parse(bytes: &[u8]) -> std::result::Result<TensorFile, String> {
        header::check(bytes)?;
        let st = SafeTensors::deserialize(bytes).map_err(|e| format!("not a valid safetensors file: {e}"))?;
        let (_, header) = SafeTensors::read_metadata(bytes).map_err(|e| format!("bad header: {e}"))?;
        let mut file = TensorFile::default();
        if let Some(meta) = header.metadata() {
            file.metadata = meta.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        }
        for (name, view) in st.tensors() {
            match to_f32(&view).map_err(|msg| format!("tensor '{name}': {msg}"))? {
                Some(data) => {
                    let shape = Shape::new(view.shape()).map_err(|e| format!("tensor '{name}': {e}"))?;
                    if let Some(i) = data.iter().position(|v| !v.is_finite()) {
                        return Err(format!(
                            "tensor '{name}' {shape} holds a non-finite value ({}) at element {i}",
                            data[i]
                        ));
                    }
                    let tensor = Tensor::new(shape, data).map_err(|e| e.to_string())?;
                    file.tensors.insert(name, tensor);
                }
                None => {
                    file.skipped.insert(name, view.dtype().to_string());
                }
            }
        }
        Ok(file)
    }

    /// The tensor called `name`, or an error listing what the file holds.
    pub fn get(&self, name: &str) -> Result<&Tensor> {
        self.tensors.get(name).ok_or_else(|| {
            if let Some(why) = self.integer_note(name) {
                return Error::invalid("tensor file", why);
            }
            let names: Vec<&str> = self.tensors.keys().map(String::as_str).collect();
            Error::invalid("tensor file", format!("no tensor named '{name}'; it holds: {}", names.join(", ")))
        })
    }

    /// When `name` is one of the integer tensors not loaded: a sentence saying
    /// so, for errors that would otherwise call it missing.
    pub fn integer_note(&self, name: &str) -> Option<String> {
        self.skipped
            .get(name)
            .map(|dtype| format!("tensor '{name}' is {dtype}, an integer type; glimpse needs {FLOAT_DTYPES}"))
    }

    /// Writes `tensors` (f32) with `metadata` to `path` atomically. Two tensors with one name
    /// are an error (safetensors' serializer would index out of bounds on them).
    pub fn write(path: &Path, tensors: &[(&str, &Tensor)], metadata: &BTreeMap<String, String>) -> Result<()> {
        let mut names = BTreeSet::new();
        if let Some((name, _)) = tensors.iter().find(|(name, _)| !names.insert(*name)) {
            return Err(file_error(path, format!("two tensors are named '{name}'; tensor names must be unique")));
        }
        let views = tensors
            .iter()
            .map(|(name, t)| {
                let view = TensorView::new(Dtype::F32, t.shape().dims().to_vec(), bytemuck::cast_slice(t.data()))
                    .map_err(|e| file_error(path, format!("tensor '{name}': {e}")))?;
                Ok((name.to_string(), view))
            })
            .collect::<Result<Vec<_>>>()?;
        let meta: HashMap<String, String> = metadata.clone().into_iter().collect();
        let bytes = safetensors::serialize(views, Some(meta)).map_err(|e| file_error(path, e))?;
        write_atomically(path, &bytes)
    }
}

/// Writes `bytes` to a temporary file beside `path`, then renames it into place; an
/// interrupt (Ctrl-C) waits until the temporary file is gone ([`crate::interrupt`]).
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    write_all_atomically(&[(path, bytes)])
}

/// [`write_atomically`] for several files as one step: every temporary file is written, then
/// each renamed into place, with no interrupt in between. So reports of the same run (a JSON
/// and a CSV) never stop one rewrite apart. A failure to write any of them replaces none
/// (every file is written before the first rename); the temporary files are always removed.
pub fn write_all_atomically(files: &[(&Path, &[u8])]) -> Result<()> {
    let mut staged = Vec::with_capacity(files.len());
    for &(path, _) in files {
        let name = path.file_name().ok_or_else(|| file_error(path, "not a file path"))?;
        staged.push(path.with_file_name(format!(".{}.tmp", name.to_string_lossy())));
    }
    crate::interrupt::uninterrupted(|| {
        let remove_all = || staged.iter().for_each(|tmp| drop(std::fs::remove_file(tmp)));
        for ((path, bytes), tmp) in files.iter().zip(&staged) {
            if let Err(e) = std::fs::write(tmp, bytes) {
                remove_all();
                return Err(file_error(path, format!("cannot write: {e}")));
            }
        }
        for ((path, _), tmp) in files.iter().zip(&staged) {
            if let Err(e) = std::fs::rename(tmp, path) {
                remove_all();
                return Err(file_error(path, format!("cannot move the finished file into place: {e}")));
            }
        }
        Ok(())
    })
}

/// The dtypes read (each converted to f32), for messages.
pub const FLOAT_DTYPES: &str = "F32, F16, BF16 or F64";

/// Float data as f32; integer tensors give None (bookkeeping, never weights).
fn to_f32(view: &TensorView<'_>) -> std::result::Result<Option<Vec<f32>>, String> {
    let bytes = view.data();
    // Copy element by element: the data may be misaligned for a direct cast.
    let data = match view.dtype() {
        Dtype::F32 => bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect(),
        Dtype::F64 => {
            bytes.chunks_exact(8).map(|b| f64::from_le_bytes(b.try_into().expect("chunks of 8")) as f32).collect()
        }
        Dtype::F16 => bytes.chunks_exact(2).map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32()).collect(),
        Dtype::BF16 => bytes.chunks_exact(2).map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32()).collect(),
        Dtype::I64 | Dtype::I32 | Dtype::U8 | Dtype::BOOL => return Ok(None),
        other => return Err(format!("dtype {other} is not supported (use {FLOAT_DTYPES})")),
    };
    Ok(Some(data))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_written_together_are_all_replaced_or_none() {
        let dir = std::env::temp_dir().join(format!("glimpse-write-all-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (a, b) = (dir.join("a.json"), dir.join("b.csv"));
        write_all_atomically(&[(&a, b"one"), (&b, b"two")]).unwrap();
        assert_eq!((std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap()), (b"one".to_vec(), b"two".to_vec()));
        let missing = dir.join("no/such/folder/c.csv");
        let err = write_all_atomically(&[(&a, b"new"), (&missing, b"x")]).unwrap_err().to_string();
        assert!(err.contains("c.csv") && err.contains("cannot write"), "{err}");
        assert_eq!(std::fs::read(&a).unwrap(), b"one", "nothing is replaced when one file fails");
        let names: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names.len(), 2, "no temporary file is left: {names:?}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
