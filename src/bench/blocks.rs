//! The blocks suite: every attention block at the three ResNet stages
//! (256 x 56 x 56, 512 x 28 x 28, 1024 x 14 x 14), batch 1 and the requested
//! batch, built by `blocks::build` with random weights under PyTorch's
//! state_dict names, fused and unfused.

use super::{Scale, Workload};
use crate::blocks::{self, BuildOptions};
use crate::graph::{Fusion, Graph, Tensors};
use crate::tensorfile::TensorFile;
use crate::weights::{RandomStateDict, Weights};
use crate::{Result, Shape, Tensor};
use fastrand::Rng;

/// (channels, height = width) of the three stages.
const STAGES: [(usize, usize); 3] = [(256, 56), (512, 28), (1024, 14)];

/// The blocks benchmarked, with the constructor each weight set stands for
/// (tools/bench_torch.py builds the same ones).
const ARCHS: [&str; 6] =
    ["timm.CbamModule", "timm.SelectiveKernel", "SKConv", "BasicBlock", "NonLocal", "timm.NonLocalAttn"];

/// Every block workload whose architecture this build of glimpse knows.
pub fn workloads(batch: usize) -> Vec<Workload> {
    let mut list = Vec::new();
    for arch in ARCHS.into_iter().filter(|a| blocks::arch(a).is_ok()) {
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

/// Random weights for `arch` at `c` channels under its state_dict names, with
/// the constructor's defaults: timm CbamModule(c), SelectiveKernel(c, c),
/// SKConv(c, M=2, G=32, r=16, L=32), BasicBlock(c, c), NonLocal(c) (sub-sampled,
/// BatchNorm), NonLocalAttn(c).
pub fn random_weights(arch: &str, c: usize, rng: &mut Rng) -> Result<TensorFile> {
    let mut f = RandomStateDict::new(rng);
    match arch {
        "timm.CbamModule" => {
            let rd = (c / 16).max(1);
            f.conv("channel.fc1", [rd, c, 1, 1], false)?;
            f.conv("channel.fc2", [c, rd, 1, 1], false)?;
            f.conv("spatial.conv.conv", [1, 2, 7, 7], false)?;
            f.batchnorm("spatial.conv.bn", 1)?;
        }
        "timm.SelectiveKernel" => {
            // Two 3 x 3 paths (dilation 1 and 2), each seeing half the input channels.
            let rd = (c / 16).div_ceil(8).max(1) * 8;
            for i in 0..2 {
                f.conv(&format!("paths.{i}.conv"), [c, c / 2, 3, 3], false)?;
                f.batchnorm(&format!("paths.{i}.bn"), c)?;
            }
            f.conv("attn.fc_reduce", [rd, c, 1, 1], false)?;
            f.batchnorm("attn.bn", rd)?;
            f.conv("attn.fc_select", [2 * c, rd, 1, 1], false)?;
        }
        "SKConv" => {
            let (groups, d) = (32.min(c), (c / 16).max(32));
            for i in 0..2 {
                f.conv(&format!("convs.{i}.0"), [c, c / groups, 3 + 2 * i, 3 + 2 * i], true)?;
                f.batchnorm(&format!("convs.{i}.1"), c)?;
                f.linear(&format!("fcs.{i}"), c, d)?;
            }
            f.linear("fc", d, c)?;
        }
        "BasicBlock" => {
            let r = (c / 16).max(1);
            f.conv("conv1", [c, c, 3, 3], false)?;
            f.batchnorm("bn1", c)?;
            f.conv("conv2", [c, c, 3, 3], false)?;
            f.batchnorm("bn2", c)?;
            f.conv("ca.sharedMLP.0", [r, c, 1, 1], false)?;
            f.conv("ca.sharedMLP.2", [c, r, 1, 1], false)?;
            f.conv("sa.conv", [1, 2, 7, 7], false)?;
        }
        "NonLocal" => {
            let inter = (c / 2).max(1);
            f.conv("theta", [inter, c, 1, 1], true)?;
            f.conv("phi.0", [inter, c, 1, 1], true)?;
            f.conv("g.0", [inter, c, 1, 1], true)?;
            f.conv("W.0", [c, inter, 1, 1], true)?;
            f.batchnorm("W.1", c)?;
        }
        "timm.NonLocalAttn" => {
            let rd = (c / 8).div_ceil(8).max(1) * 8;
            for name in ["t", "p", "g"] {
                f.conv(name, [rd, c, 1, 1], true)?;
            }
            f.conv("z", [c, rd, 1, 1], true)?;
            f.batchnorm("norm", c)?;
        }
        other => {
            return Err(crate::Error::invalid("bench", format!("no random weights for architecture '{other}'")));
        }
    }
    Ok(f.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every known block builds from its random weights (every name used,
    /// no shape mismatch), fused and unfused, at a small size.
    #[test]
    fn random_weights_match_every_known_block() {
        for arch in ARCHS.into_iter().filter(|a| blocks::arch(a).is_ok()) {
            for fused in [true, false] {
                let scale = Scale { batch: 1, div: 8 };
                build(arch, [2, 256, 9, 9], 1, scale, fused).unwrap_or_else(|e| panic!("{arch}: {e}"));
            }
        }
    }
}
