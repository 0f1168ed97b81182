//! The blocks suite: every attention block at the three ResNet stages
//! (256 x 56 x 56, 512 x 28 x 28, 1024 x 14 x 14), batch 1 and the requested
//! batch, built by `blocks::build` with random weights under PyTorch's
//! state_dict names, fused and unfused.

use super::{Scale, Workload};
use crate::blocks::{self, BuildOptions};
use crate::graph::{Fusion, Graph, Tensors};
use crate::tensorfile::TensorFile;
use crate::weights::Weights;
use crate::{Result, Shape, Tensor};
use fastrand::Rng;

/// (channels, height = width) of the three stages.
const STAGES: [(usize, usize); 3] = [(256, 56), (512, 28), (1024, 14)];

/// The blocks benchmarked: every architecture that makes random weights and is
/// no network (tools/bench_torch.py builds the same six constructors).
fn benchmarked() -> impl Iterator<Item = &'static blocks::Arch> {
    blocks::ARCHS.iter().filter(|a| a.pretrained.is_none() && a.random_weights.is_some())
}

/// Every block workload whose architecture this build of glimpse knows.
pub fn workloads(batch: usize) -> Vec<Workload> {
    let mut list = Vec::new();
    for arch in benchmarked().map(|a| a.name) {
        for (c, hw) in STAGES {
            for n in super::ops::batches(batch) {
                list.push(Workload::pair("blocks", arch, &format!("{n}x{c}x{hw}x{hw}"), move |seed, scale, fused| {
                    build(arch, [n, c, hw, hw], seed, scale, fused)
                }));
            }
        }
    }
    list
}

/// The block's graph and a random input `x`; the same `seed` gives the same
/// weights and input whatever `fused` is.
fn build(arch: &str, dims: [usize; 4], seed: u64, scale: Scale, fused: bool) -> Result<(Graph, Tensors)> {
    let [n, c, h, w] = dims;
    let (n, c) = (n.min(scale.batch), c / scale.div);
    let mut rng = Rng::with_seed(seed);
    let file = random_weights(arch, c, &mut rng)?;
    let x = Tensor::random(Shape::new(&[n, c, h, w])?, &mut rng, -1.0, 1.0);
    let fusion = if fused { Fusion::all() } else { Fusion::none() };
    let options = BuildOptions { fusion, ..Default::default() };
    let graph = blocks::build(arch, x.shape(), Weights::new(file, format!("random {arch} weights")), &[], options)?;
    Ok((graph, Tensors::from([("x".to_string(), x)])))
}

/// Random weights for the block `arch` at `c` channels under its state_dict
/// names, with the constructor's other defaults (the block's own
/// [`blocks::Arch::random_weights`], given its width argument).
pub fn random_weights(arch: &str, c: usize, rng: &mut Rng) -> Result<TensorFile> {
    let found = blocks::arch(arch)?;
    let (Some(make), Some(width)) = (found.random_weights, found.params.first()) else {
        return Err(crate::Error::invalid("bench", format!("no random weights for architecture '{arch}'")));
    };
    make(&[format!("{}={c}", width.name)], rng)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every known block builds from its random weights (every name used,
    /// no shape mismatch), fused and unfused, at a small size.
    #[test]
    fn random_weights_match_every_known_block() {
        let names: Vec<&str> = benchmarked().map(|a| a.name).collect();
        assert_eq!(names.len(), 6, "the six blocks bench_torch.py builds: {names:?}");
        for arch in names {
            for fused in [true, false] {
                let scale = Scale { batch: 1, div: 8 };
                build(arch, [2, 256, 9, 9], 1, scale, fused).unwrap_or_else(|e| panic!("{arch}: {e}"));
            }
        }
    }
}
