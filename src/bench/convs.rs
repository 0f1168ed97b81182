//! The convs suite: every distinct convolution (shapes and arguments) of timm.skresnet18 and
//! timm.resnet50 at 1 x 3 x 224 x 224 and the requested batch, each timed alone on the kernel
//! `Auto` picks, so each row's % of the compute ceiling is its share of the same run's best GEMM.
//! The list is read from the networks' fused graphs (every `conv2d` node; stride-1 1 x 1 convs
//! are GEMMs there, `matmul` nodes, and not listed). Rows are named `conv2d` with the shape
//! `NxCxHxW>Cout KHxKW/stride` (plus `g<groups>` and `d<dilation>` where not 1) and the networks
//! holding the conv as the variant.

use super::{OpInstance, Workload};
use crate::ops::conv2d::Conv2d;
use crate::{Result, Shape, Tensor};
use fastrand::Rng;

/// (network short name, network row in the networks suite).
const NETWORKS: [(&str, &str); 2] = [("skresnet18", "timm.skresnet18"), ("resnet50", "timm.resnet50")];

/// One distinct convolution: the op and its x and weight shapes.
#[derive(Clone, Debug, PartialEq)]
struct ConvCase {
    conv: Conv2d,
    x: [usize; 4],
    weight: [usize; 4],
}

impl ConvCase {
    fn label(&self) -> String {
        let [n, c, h, w] = self.x;
        let [co, _, kh, kw] = self.weight;
        let mut s = format!("{n}x{c}x{h}x{w}>{co} {kh}x{kw}/{}", self.conv.stride[0]);
        if self.conv.groups > 1 {
            s += &format!(" g{}", self.conv.groups);
        }
        if self.conv.dilation != [1, 1] {
            s += &format!(" d{}", self.conv.dilation[0]);
        }
        s
    }

    /// The case with channels divided by `div` (groups kept; at least one channel per group)
    /// and batch 1 where `div` > 1: the reduced instance the CPU reference checks.
    fn scaled(&self, div: usize) -> ConvCase {
        if div == 1 {
            return self.clone();
        }
        let g = self.conv.groups;
        let per = |c: usize| (c / g / div).max(1) * g;
        let [_, c, h, w] = self.x;
        let [co, _, kh, kw] = self.weight;
        let (c, co) = (per(c), per(co));
        ConvCase { conv: self.conv, x: [1, c, h, w], weight: [co, c / g, kh, kw] }
    }

    /// Fresh inputs: x in [-1, 1], weights scaled by 1 / sqrt(fan_in), the epilogue's inputs.
    fn instance(&self, rng: &mut Rng) -> Result<OpInstance> {
        let random = |dims: &[usize], rng: &mut Rng, bound: f32| -> Result<Tensor> {
            Ok(Tensor::random(Shape::new(dims)?, rng, -bound, bound))
        };
        let fan_in = self.weight[1] * self.weight[2] * self.weight[3];
        let mut inputs = vec![random(&self.x, rng, 1.0)?, random(&self.weight, rng, 1.0 / (fan_in as f32).sqrt())?];
        let e = self.conv.epilogue;
        if e.affine {
            let c = self.weight[0];
            let mut data: Vec<f32> = (0..c).map(|_| 0.5 + rng.f32()).collect();
            data.extend((0..c).map(|_| 0.2 * (rng.f32() - 0.5)));
            inputs.push(Tensor::from_vec(&[2, c], data)?);
        }
        if e.residual {
            use crate::ops::Op;
            let shapes = [inputs[0].shape(), inputs[1].shape()];
            let bare = Conv2d { epilogue: crate::ops::Epilogue::NONE, ..self.conv };
            let out = bare.output_shape(&shapes)?;
            inputs.push(random(out.dims(), rng, 1.0)?);
        }
        Ok(OpInstance { op: Box::new(self.conv), inputs })
    }
}

/// The distinct convs of `network` at batch `n`, in first-use order.
fn convs_of(network: &str, n: usize) -> Result<Vec<ConvCase>> {
    let (graph, _) = super::networks::build_named(network, n, 1, super::Scale::FULL, true)?;
    let mut list: Vec<ConvCase> = Vec::new();
    for (op, shapes) in graph.ops() {
        let Some(&conv) = op.as_any().downcast_ref::<Conv2d>() else { continue };
        let dims = |s: &Shape| -> [usize; 4] { s.dims().try_into().expect("conv2d inputs are rank 4") };
        let case = ConvCase { conv, x: dims(shapes[0]), weight: dims(shapes[1]) };
        if !list.contains(&case) {
            list.push(case);
        }
    }
    Ok(list)
}

/// Every distinct conv of the two networks at batch 1 and `batch`; a conv both hold is listed
/// once, its variant naming both. A network that fails to build is a listed error row, not a
/// silent gap.
pub fn workloads(batch: usize) -> Vec<Workload> {
    let mut list: Vec<(ConvCase, Vec<&str>)> = Vec::new();
    let mut failures = Vec::new();
    for n in super::ops::batches(batch) {
        for (short, network) in NETWORKS {
            match convs_of(network, n) {
                Ok(convs) => {
                    for case in convs {
                        match list.iter_mut().find(|(c, _)| *c == case) {
                            Some((_, names)) => names.push(short),
                            None => list.push((case, vec![short])),
                        }
                    }
                }
                Err(e) => failures.push((format!("{network} {n}"), e.to_string())),
            }
        }
    }
    let mut workloads: Vec<Workload> = list
        .into_iter()
        .map(|(case, names)| {
            let label = case.label();
            Workload::op("convs", "conv2d", &label, &names.join("+"), move |rng, div| case.scaled(div).instance(rng))
        })
        .collect();
    for (what, reason) in failures {
        workloads.push(Workload::op("convs", "conv2d", &what, "build", move |_, _| {
            Err(crate::Error::invalid("convs", format!("could not list the convs: {reason}")))
        }));
    }
    workloads
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_resnet50s_convs_once_each_with_strided_and_stem_shapes() {
        let convs = convs_of("timm.resnet50", 1).unwrap();
        let labels: Vec<String> = convs.iter().map(|c| c.label()).collect();
        assert!(labels.contains(&"1x3x224x224>64 7x7/2".to_string()), "{labels:?}");
        assert!(labels.iter().any(|l| l.ends_with(" 3x3/2")), "{labels:?}");
        assert!(labels.iter().any(|l| l.ends_with(" 1x1/2")), "{labels:?}");
        let mut unique = convs.clone();
        unique.dedup();
        assert_eq!(unique.len(), convs.len());
        // A reduced instance keeps the kernel, stride and spatial size.
        let small = convs[0].scaled(8);
        assert_eq!((small.x[0], small.x[2], small.weight[2]), (1, 224, 7));
    }
}
