//! The networks suite: whole timm networks at 1 x 3 x 224 x 224 and the
//! requested batch, with random weights of timm's names and shapes
//! ([`crate::blocks::Arch::random_weights`]), fused against unfused.
//! `tools/bench_torch.py --suite networks` times the same models in PyTorch
//! under the same row names.

use super::{Scale, Workload};
use crate::blocks::{self, BuildOptions};
use crate::graph::{Fusion, Graph, Tensors};
use crate::weights::Weights;
use crate::{Error, Result, Shape, Tensor};
use fastrand::Rng;

/// (row name, architecture, constructor arguments).
const NETWORKS: [(&str, &str, &[&str]); 3] = [
    ("timm.skresnet18", "timm.skresnet18", &[]),
    ("timm.skresnext50_32x4d", "timm.skresnext50_32x4d", &[]),
    ("timm.resnet50_cbam", "timm.resnet50", &["attn_layer=cbam"]),
];

/// timm's stage widths; a reduced instance (for the CPU check) divides them.
const CHANNELS: [usize; 4] = [64, 128, 256, 512];

/// Every network workload at batch 1 and `batch`.
pub fn workloads(batch: usize) -> Vec<Workload> {
    let mut list = Vec::new();
    for (row, arch, args) in NETWORKS {
        for n in super::ops::batches(batch) {
            list.push(Workload::pair("networks", row, &format!("{n}x3x224x224"), move |seed, scale, fused| {
                build(arch, args, n, seed, scale, fused)
            }));
        }
    }
    list
}

/// [`build`] for a row name of this suite (e.g. "timm.resnet50" for the plain network: no
/// constructor arguments).
pub(super) fn build_named(network: &str, n: usize, seed: u64, scale: Scale, fused: bool) -> Result<(Graph, Tensors)> {
    build(network, &[], n, seed, scale, fused)
}

/// The network's graph and a random input; the same `seed` gives the same
/// weights and input whatever `fused` is. A reduced `scale` divides the stage
/// widths (the CPU reference of a full network at 224 x 224 takes minutes).
fn build(arch: &str, args: &[&str], n: usize, seed: u64, scale: Scale, fused: bool) -> Result<(Graph, Tensors)> {
    let n = n.min(scale.batch);
    let mut rng = Rng::with_seed(seed);
    let mut make_args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    if scale.div > 1 {
        // At least 16 planes: skresnext's width floor(planes * 4 / 64) * 32 is 0 below that.
        let widths: Vec<String> = CHANNELS.iter().map(|c| (c / scale.div).max(16).to_string()).collect();
        make_args.push(format!("channels={}", widths.join(",")));
    }
    let found = blocks::arch(arch)?;
    let make = found.random_weights.ok_or_else(|| Error::invalid(arch, "makes no random weights"))?;
    let file = make(&make_args, &mut rng)?;
    let x = Tensor::random(Shape::new(&[n, 3, 224, 224])?, &mut rng, -1.0, 1.0);
    let fusion = if fused { Fusion::all() } else { Fusion::none() };
    let options = BuildOptions { fusion, ..Default::default() };
    let build_args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let graph =
        blocks::build(arch, x.shape(), Weights::new(file, format!("random {arch} weights")), &build_args, options)?;
    Ok((graph, Tensors::from([("x".to_string(), x)])))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_network_builds_fused_and_unfused_at_a_reduced_width() {
        let list = workloads(2);
        assert_eq!(list.len(), 2 * NETWORKS.len());
        let scale = Scale { batch: 1, div: 8 };
        for (row, arch, args) in NETWORKS {
            let (fused, feed) = build(arch, args, 2, 7, scale, true).unwrap_or_else(|e| panic!("{row}: {e}"));
            let (unfused, _) = build(arch, args, 2, 7, scale, false).unwrap();
            assert_eq!(feed["x"].shape().dims(), &[1, 3, 224, 224], "{row}");
            assert!(fused.cost().flops > 0 && fused.output_names() == unfused.output_names(), "{row}");
        }
    }
}
