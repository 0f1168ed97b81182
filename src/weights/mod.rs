//! PyTorch weights by state_dict name: lookup with shape checks, BatchNorm
//! folding, and an account of every tensor so that a missing or unexpected
//! name is an error naming it.

mod random;

pub use random::RandomStateDict;

use crate::tensorfile::TensorFile;
use crate::{Error, Result, Tensor};
use std::collections::BTreeSet;
use std::path::Path;

/// PyTorch's BatchNorm default epsilon.
pub const BN_EPS: f64 = 1e-5;

/// A state_dict being consumed by a block builder.
#[derive(Debug)]
pub struct Weights {
    file: TensorFile,
    source: String,
    used: BTreeSet<String>,
    /// Prepended to every name looked up: the block's place in a network ("layer1.0.").
    prefix: String,
}

impl Weights {
    /// Loads a .safetensors state_dict.
    pub fn load(path: &Path) -> Result<Weights> {
        Ok(Weights::new(TensorFile::read(path)?, path.display().to_string()))
    }

    /// Wraps tensors already read; `source` names them in errors.
    pub fn new(file: TensorFile, source: impl Into<String>) -> Weights {
        Weights { file, source: source.into(), used: BTreeSet::new(), prefix: String::new() }
    }

    /// No weights at all (for blocks that have none).
    pub fn empty() -> Weights {
        Weights::new(TensorFile::default(), "no weights")
    }

    fn error(&self, msg: String) -> Error {
        Error::invalid("weights", format!("{}: {msg}", self.source))
    }

    /// The error for a tensor the architecture needs and the file lacks, in the
    /// manner of PyTorch's load_state_dict: the first missing name and the
    /// file's tensors not used so far (how many, and the first), or the
    /// DataParallel `module.` prefix when that is what differs.
    fn missing(&self, name: &str, detail: &str) -> Error {
        if let Some(why) = self.file.integer_note(name) {
            return self.error(format!("{why}{detail}"));
        }
        if self.file.tensors.contains_key(&format!("module.{name}")) {
            return self.error(format!(
                "missing tensor '{name}', but 'module.{name}' is present: this state_dict was saved from \
                 DataParallel / DistributedDataParallel (every name starts with 'module.'); save \
                 model.module.state_dict() instead, or strip the prefix"
            ));
        }
        let unused: Vec<&String> = self.file.tensors.keys().filter(|n| !self.used.contains(*n)).collect();
        let hint = match unused.first() {
            Some(first) => format!(
                "; {} of the file's {} tensors are not used so far, the first '{first}' (weights of another \
                 architecture or another configuration?)",
                unused.len(),
                self.file.tensors.len()
            ),
            None => String::new(),
        };
        self.error(format!("missing tensor '{name}'{detail}{hint}"))
    }

    /// Looks every later name up under `prefix` (e.g. "layer1.0." inside a network).
    pub fn set_prefix(&mut self, prefix: &str) {
        self.prefix = prefix.to_string();
    }

    /// The prefix every name is looked up under ("layer1.0.", or empty).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Keeps only the tensors whose names start with `prefix` (a block inside
    /// a whole state_dict); an error when there are none.
    pub fn only_under(mut self, prefix: &str) -> Result<Weights> {
        let prefix = if prefix.is_empty() || prefix.ends_with('.') { prefix.to_string() } else { format!("{prefix}.") };
        self.file.tensors.retain(|name, _| name.starts_with(&prefix));
        self.file.skipped.retain(|name, _| name.starts_with(&prefix));
        if self.file.tensors.is_empty() {
            return Err(self.error(format!("no tensor's name starts with '{prefix}'")));
        }
        Ok(self)
    }

    /// Whether any tensor's name starts with `{prefix}{start}` (a submodule is present).
    pub fn any_under(&self, start: &str) -> bool {
        let full = format!("{}{start}", self.prefix);
        self.file.tensors.range(full.clone()..).next().is_some_and(|(name, _)| name.starts_with(&full))
    }

    /// Fails when every name starts with `module.`: a state_dict saved from
    /// DataParallel / DistributedDataParallel, whose names match no architecture.
    pub fn reject_data_parallel(&self) -> Result<()> {
        let mut names = self.file.tensors.keys();
        if names.len() > 0 && names.all(|n| n.starts_with("module.")) {
            return Err(self.error(
                "every tensor name starts with 'module.': this state_dict was saved from DataParallel / \
                 DistributedDataParallel; save model.module.state_dict() instead, or strip the prefix"
                    .into(),
            ));
        }
        Ok(())
    }

    /// Whether `name` is present.
    pub fn has(&self, name: &str) -> bool {
        self.file.tensors.contains_key(&format!("{}{name}", self.prefix))
    }

    /// The dimensions of `name`, or an error saying it is missing.
    pub fn dims(&self, name: &str) -> Result<Vec<usize>> {
        let name = &format!("{}{name}", self.prefix);
        match self.file.tensors.get(name) {
            Some(t) => Ok(t.shape().dims().to_vec()),
            None => Err(self.missing(name, "")),
        }
    }

    /// The tensor `name` of any shape (the caller infers from it), marked used.
    pub fn take(&mut self, name: &str) -> Result<Tensor> {
        let name = &format!("{}{name}", self.prefix);
        let tensor = self.file.tensors.get(name).cloned().ok_or_else(|| self.missing(name, ""))?;
        self.used.insert(name.to_string());
        Ok(tensor)
    }

    /// The tensor `name`, which must have exactly `dims`.
    pub fn expect(&mut self, name: &str, dims: &[usize]) -> Result<Tensor> {
        let name = &format!("{}{name}", self.prefix);
        let tensor = match self.file.tensors.get(name) {
            Some(t) => t.clone(),
            None => return Err(self.missing(name, &format!(" (expected shape {dims:?})"))),
        };
        if tensor.shape().dims() != dims {
            return Err(self.error(format!("tensor '{name}' has shape {}, expected {dims:?}", tensor.shape())));
        }
        self.used.insert(name.to_string());
        Ok(tensor)
    }

    /// BatchNorm `prefix`.{weight,bias,running_mean,running_var} over `channels`
    /// folded (eval mode) with an optional preceding bias into the [2, C]
    /// affine of an epilogue: scale = gamma / sqrt(var + eps),
    /// shift = beta + (bias - mean) * scale.
    pub fn batchnorm(&mut self, prefix: &str, channels: usize, bias: Option<&Tensor>) -> Result<Tensor> {
        let gamma = self.expect(&format!("{prefix}.weight"), &[channels])?;
        let beta = self.expect(&format!("{prefix}.bias"), &[channels])?;
        let mean = self.expect(&format!("{prefix}.running_mean"), &[channels])?;
        let var = self.expect(&format!("{prefix}.running_var"), &[channels])?;
        if let Some(i) = var.data().iter().position(|&v| v < 0.0) {
            return Err(self.error(format!("'{prefix}.running_var' is negative ({}) at channel {i}", var.data()[i])));
        }
        let mut affine = vec![0.0f32; 2 * channels];
        for c in 0..channels {
            let scale = gamma.data()[c] as f64 / (var.data()[c] as f64 + BN_EPS).sqrt();
            let b = bias.map_or(0.0, |t| t.data()[c] as f64);
            affine[c] = scale as f32;
            affine[channels + c] = (beta.data()[c] as f64 + (b - mean.data()[c] as f64) * scale) as f32;
        }
        Tensor::from_vec(&[2, channels], affine)
    }

    /// A plain bias as an affine [2, C]: scale 1, shift bias.
    pub fn bias_affine(bias: &Tensor) -> Result<Tensor> {
        let c = bias.shape().numel();
        let mut affine = vec![1.0f32; 2 * c];
        affine[c..].copy_from_slice(bias.data());
        Tensor::from_vec(&[2, c], affine)
    }

    /// Succeeds when every tensor was used; otherwise names the unexpected
    /// ones. BatchNorm's `num_batches_tracked` counters are ignored.
    pub fn finish(self) -> Result<()> {
        let unexpected: Vec<&str> = self
            .file
            .tensors
            .keys()
            .filter(|n| !self.used.contains(*n))
            .chain(self.file.skipped.keys().filter(|n| !n.ends_with("num_batches_tracked")))
            .map(String::as_str)
            .collect();
        match unexpected.len() {
            0 => Ok(()),
            n if n <= 8 => {
                Err(self.error(format!("unexpected tensor(s) {} for this architecture", unexpected.join(", "))))
            }
            n => Err(self.error(format!(
                "{n} unexpected tensor(s) for this architecture, the first {} (weights of another architecture?)",
                unexpected[..3].join(", ")
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn weights(entries: &[(&str, &[usize], Vec<f32>)]) -> Weights {
        let mut file = TensorFile::default();
        for (name, dims, data) in entries {
            file.tensors.insert(name.to_string(), Tensor::from_vec(dims, data.clone()).unwrap());
        }
        Weights::new(file, "test.safetensors")
    }

    #[test]
    fn batchnorm_folds_into_scale_and_shift() {
        let mut w = weights(&[
            ("bn.weight", &[1], vec![2.0]),
            ("bn.bias", &[1], vec![0.5]),
            ("bn.running_mean", &[1], vec![1.0]),
            ("bn.running_var", &[1], vec![4.0 - BN_EPS as f32]),
        ]);
        let bias = Tensor::from_vec(&[1], vec![3.0]).unwrap();
        let affine = w.batchnorm("bn", 1, Some(&bias)).unwrap();
        // scale = 2 / 2 = 1; shift = 0.5 + (3 - 1) * 1 = 2.5
        assert!((affine.data()[0] - 1.0).abs() < 1e-6 && (affine.data()[1] - 2.5).abs() < 1e-6, "{affine:?}");
        w.finish().unwrap();
    }

    #[test]
    fn missing_misshaped_and_unexpected_tensors_are_named() {
        let mut w = weights(&[("a", &[2], vec![1.0, 2.0]), ("b", &[1], vec![0.0])]);
        let e = w.expect("c", &[2]).unwrap_err().to_string();
        assert!(e.contains("missing tensor 'c'") && e.contains("test.safetensors"), "{e}");
        let e = w.expect("a", &[3]).unwrap_err().to_string();
        assert!(e.contains("'a' has shape [2], expected [3]"), "{e}");
        w.expect("a", &[2]).unwrap();
        w.set_prefix("b");
        assert!(w.has("") && !w.has("a"));
        let e = w.finish().unwrap_err().to_string();
        assert!(e.contains("unexpected tensor(s) b"), "{e}");
    }
}
