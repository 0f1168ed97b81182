//! Random state_dicts under PyTorch's names, for the benchmark and for tests
//! that need full-width networks without a download.

use crate::tensorfile::TensorFile;
use crate::{Result, Shape, Tensor};
use fastrand::Rng;

/// Builds a state_dict tensor by tensor: conv and linear layers with PyTorch's
/// default initialisation range (uniform in +-1 / sqrt(fan_in), weights and
/// biases alike), BatchNorm with the statistics of a trained network
/// (positive variances, scales near 1).
pub struct RandomStateDict<'a> {
    file: TensorFile,
    rng: &'a mut Rng,
}

impl<'a> RandomStateDict<'a> {
    /// An empty state_dict drawing from `rng`.
    pub fn new(rng: &'a mut Rng) -> RandomStateDict<'a> {
        RandomStateDict { file: TensorFile::default(), rng }
    }

    fn put(&mut self, name: String, dims: &[usize], lo: f32, hi: f32) -> Result<()> {
        let t = Tensor::random(Shape::new(dims)?, self.rng, lo, hi);
        self.file.tensors.insert(name, t);
        Ok(())
    }

    /// nn.Conv2d: `{prefix}.weight` [out, in / groups, kh, kw] and, when `bias`, `{prefix}.bias` [out].
    pub fn conv(&mut self, prefix: &str, dims: [usize; 4], bias: bool) -> Result<()> {
        let bound = 1.0 / ((dims[1] * dims[2] * dims[3]) as f32).sqrt();
        self.put(format!("{prefix}.weight"), &dims, -bound, bound)?;
        if bias {
            self.put(format!("{prefix}.bias"), &[dims[0]], -bound, bound)?;
        }
        Ok(())
    }

    /// nn.Linear: `{prefix}.weight` [out, in] and `{prefix}.bias` [out].
    pub fn linear(&mut self, prefix: &str, out: usize, cin: usize) -> Result<()> {
        let bound = 1.0 / (cin as f32).sqrt();
        self.put(format!("{prefix}.weight"), &[out, cin], -bound, bound)?;
        self.put(format!("{prefix}.bias"), &[out], -bound, bound)
    }

    /// nn.BatchNorm2d in eval mode, its int `num_batches_tracked` counted as skipped
    /// (as [`TensorFile::read`] does with a real state_dict).
    pub fn batchnorm(&mut self, prefix: &str, c: usize) -> Result<()> {
        self.put(format!("{prefix}.weight"), &[c], 0.5, 1.5)?;
        self.put(format!("{prefix}.bias"), &[c], -0.1, 0.1)?;
        self.put(format!("{prefix}.running_mean"), &[c], -0.1, 0.1)?;
        self.put(format!("{prefix}.running_var"), &[c], 0.5, 1.5)?;
        self.file.skipped.insert(format!("{prefix}.num_batches_tracked"), "I64".into());
        Ok(())
    }

    /// A bias-free conv `{conv}` and BatchNorm `{bn}` after it.
    pub fn conv_bn(&mut self, conv: &str, bn: &str, dims: [usize; 4]) -> Result<()> {
        self.conv(conv, dims, false)?;
        self.batchnorm(bn, dims[0])
    }

    /// The state_dict.
    pub fn finish(self) -> TensorFile {
        self.file
    }
}
