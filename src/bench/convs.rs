//! The convs suite: every distinct convolution (shapes and arguments) of timm.skresnet18 and
//! timm.resnet50 at 1 x 3 x 224 x 224 and the requested batch, each on the kernel `Auto` picks,
//! timed interleaved with the ceiling GEMM (512^3 matmul, alternating runs): each row's share of
//! the GEMM compares the fastest run of each, measured under the same load.
//! The list is read from the networks' fused graphs: every `conv2d` node, and every stride-1
//! 1 x 1 conv, which the networks run as a GEMM (`matmul` node, [`Matmul::conv1x1`]) and which is
//! listed as that GEMM. Rows are named `conv2d` (or `conv1x1` for the GEMM form) with the shape
//! `NxCxHxW>Cout KHxKW/stride` (plus `g<groups>` and `d<dilation>` where not 1) and the networks
//! holding the conv as the variant.

use super::{OpInstance, Workload};
use crate::ops::conv2d::Conv2d;
use crate::ops::matmul::Matmul;
use crate::ops::{Epilogue, Op};
use crate::{Result, Shape, Tensor};
use fastrand::Rng;

/// (network short name, network row in the networks suite).
const NETWORKS: [(&str, &str); 2] = [("skresnet18", "timm.skresnet18"), ("resnet50", "timm.resnet50")];

/// How the network runs a conv: the conv2d op, or (stride-1 1 x 1, no groups) the GEMM
/// weight [1, Cout, Cin] x x [N, Cin, H * W].
#[derive(Clone, Copy, Debug, PartialEq)]
enum ConvOp {
    Conv(Conv2d),
    Gemm(Matmul),
}

/// One distinct convolution: the op and its x and weight shapes as a conv2d sees them
/// (x [N, Cin, H * W, 1] and weight [Cout, Cin, 1, 1] for the GEMM form).
#[derive(Clone, Debug, PartialEq)]
struct ConvCase {
    op: ConvOp,
    x: [usize; 4],
    weight: [usize; 4],
}

impl ConvCase {
    fn label(&self) -> String {
        let [n, c, h, _] = self.x;
        let co = self.weight[0];
        let conv = match self.op {
            ConvOp::Conv(conv) => conv,
            ConvOp::Gemm(_) => {
                // H * W as H x W where the map is square (every map of these networks is).
                let side = (h as f64).sqrt().round() as usize;
                let map = if side * side == h { format!("{side}x{side}") } else { h.to_string() };
                return format!("{n}x{c}x{map}>{co} 1x1/1");
            }
        };
        conv.label(&self.x, &self.weight)
    }

    fn groups(&self) -> usize {
        match self.op {
            ConvOp::Conv(conv) => conv.groups,
            ConvOp::Gemm(_) => 1,
        }
    }

    fn epilogue(&self) -> Epilogue {
        match self.op {
            ConvOp::Conv(conv) => conv.epilogue,
            ConvOp::Gemm(m) => m.epilogue,
        }
    }

    /// The case with channels divided by `div` (groups kept; at least one channel per group)
    /// and batch 1 where `div` > 1: the reduced instance the CPU reference checks.
    fn scaled(&self, div: usize) -> ConvCase {
        if div == 1 {
            return self.clone();
        }
        let g = self.groups();
        let per = |c: usize| (c / g / div).max(1) * g;
        let [_, c, h, w] = self.x;
        let [co, _, kh, kw] = self.weight;
        let (c, co) = (per(c), per(co));
        ConvCase { op: self.op, x: [1, c, h, w], weight: [co, c / g, kh, kw] }
    }

    /// Fresh inputs: x in [-1, 1], weights scaled by 1 / sqrt(fan_in), the epilogue's inputs.
    fn instance(&self, rng: &mut Rng) -> Result<OpInstance> {
        let random = |dims: &[usize], rng: &mut Rng, bound: f32| -> Result<Tensor> {
            Ok(Tensor::random(Shape::new(dims)?, rng, -bound, bound))
        };
        let fan_in = self.weight[1] * self.weight[2] * self.weight[3];
        let (x, weight) = match self.op {
            ConvOp::Conv(_) => (self.x.to_vec(), self.weight.to_vec()),
            ConvOp::Gemm(_) => (self.x[..3].to_vec(), vec![1, self.weight[0], self.weight[1]]),
        };
        let x = random(&x, rng, 1.0)?;
        let weight = random(&weight, rng, 1.0 / (fan_in as f32).sqrt())?;
        // The GEMM's operands are weight x x; the conv's x, weight.
        let (op, mut inputs, mut weights): (Box<dyn Op>, _, _) = match self.op {
            ConvOp::Conv(conv) => (Box::new(conv), vec![x, weight], vec![1]),
            ConvOp::Gemm(m) => (Box::new(m), vec![weight, x], vec![0]),
        };
        let e = self.epilogue();
        if e.affine {
            weights.push(inputs.len());
            let c = self.weight[0];
            let mut data: Vec<f32> = (0..c).map(|_| 0.5 + rng.f32()).collect();
            data.extend((0..c).map(|_| 0.2 * (rng.f32() - 0.5)));
            inputs.push(Tensor::from_vec(&[2, c], data)?);
        }
        if e.residual {
            // The output's shape: the op's own, from its operands alone (no epilogue inputs).
            let shapes = [inputs[0].shape(), inputs[1].shape()];
            let out = match self.op {
                ConvOp::Conv(conv) => Conv2d { epilogue: Epilogue::NONE, ..conv }.output_shape(&shapes)?,
                ConvOp::Gemm(m) => Matmul { epilogue: Epilogue::NONE, ..m }.output_shape(&shapes)?,
            };
            inputs.push(random(out.dims(), rng, 1.0)?);
        }
        Ok(OpInstance { op, inputs, weights })
    }
}

/// The distinct convs of `network` at batch `n`, in first-use order: every conv2d node, and every
/// GEMM node of the 1 x 1 conv form (a broadcast [1, Cout, Cin] weight times x [N, Cin, H * W]).
fn convs_of(network: &str, n: usize) -> Result<Vec<ConvCase>> {
    let (graph, _) = super::networks::build_named(network, n, 1, super::Scale::FULL, true)?;
    let mut list: Vec<ConvCase> = Vec::new();
    for (op, shapes) in graph.ops() {
        let dims = |s: &Shape| -> [usize; 4] { s.dims().try_into().expect("conv2d inputs are rank 4") };
        let case = if let Some(&conv) = op.as_any().downcast_ref::<Conv2d>() {
            ConvCase { op: ConvOp::Conv(conv), x: dims(shapes[0]), weight: dims(shapes[1]) }
        } else if let Some(&m) = op.as_any().downcast_ref::<Matmul>() {
            let (&[1, co, ci], &[batch, ci2, hw]) = (shapes[0].dims(), shapes[1].dims()) else { continue };
            if m != Matmul::conv1x1(m.epilogue) || ci != ci2 {
                continue;
            }
            ConvCase { op: ConvOp::Gemm(m), x: [batch, ci, hw, 1], weight: [co, ci, 1, 1] }
        } else {
            continue;
        };
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
            let name = if matches!(case.op, ConvOp::Gemm(_)) { "conv1x1" } else { "conv2d" };
            Workload::op("convs", name, &label, &names.join("+"), move |rng, div| case.scaled(div).instance(rng))
                .against(super::ops::reference_gemm)
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
        // Stride-1 1 x 1 convs are listed in their GEMM form.
        assert!(labels.contains(&"1x64x56x56>256 1x1/1".to_string()), "{labels:?}");
        let mut unique = convs.clone();
        unique.dedup();
        assert_eq!(unique.len(), convs.len());
        // A reduced instance keeps the kernel, stride and spatial size.
        let small = convs[0].scaled(8);
        assert_eq!((small.x[0], small.x[2], small.weight[2]), (1, 224, 7));
    }

    /// The scratch a network's Winograd convs allocate at batch 8 on lavapipe: the device's
    /// scratch slots of V and M ([`crate::gpu::Gpu::scratch`]) grow to each conv that needs more
    /// than the slot holds, in the order the plan encodes them (U, computed from the constant
    /// weights once, has a buffer per conv, counted with the weights: printed beside). Printed,
    /// and held to the figure recorded in BENCHMARKS.md "Winograd F(2x2, 3x3)" (a rise there is a
    /// choice to make on purpose): about one large conv's, where one buffer set per conv was
    /// 353-468 MiB.
    #[test]
    fn winograd_scratch_of_the_networks_at_batch_8() {
        use crate::ops::conv2d::{ConvKernel, WinogradSizes};
        let lavapipe = crate::gpu::DeviceProfile::described("lavapipe", true, Some(8));
        for (network, most_mib) in [("timm.skresnet18", 96), ("timm.resnet50", 96)] {
            let (graph, _) =
                super::super::networks::build_named(network, 8, 1, super::super::Scale::FULL, true).unwrap();
            let (mut convs, mut slots, mut allocated, mut prepared) = (0, [0u64; 2], 0, 0);
            for (op, shapes) in graph.ops() {
                let Some(conv) = op.as_any().downcast_ref::<Conv2d>() else { continue };
                let kernel = conv.resolved_kernel(&lavapipe, &[shapes[0].clone(), shapes[1].clone()]).unwrap();
                if !matches!(kernel, ConvKernel::Winograd | ConvKernel::WinogradStride2) {
                    continue;
                }
                let out = conv.output_shape(&shapes).unwrap();
                let [n, c_out, oh, ow] = out.dims().try_into().unwrap();
                let sizes = WinogradSizes::new(n, shapes[0].dims()[1], [oh, ow], conv.stride[0], conv.dilation[0]);
                convs += 1;
                let [u, v, m] = sizes.scratch_dims(c_out).map(|dims| Shape::new(&dims).unwrap());
                prepared += crate::gpu::GpuTensor::buffer_bytes(&u);
                for (slot, shape) in slots.iter_mut().zip([v, m]) {
                    let after = crate::gpu::slot_bytes_after(*slot, &shape);
                    if after > *slot {
                        (*slot, allocated) = (after, allocated + after);
                    }
                }
            }
            let mib = allocated as f64 / (1 << 20) as f64;
            let u_mib = prepared as f64 / (1 << 20) as f64;
            println!("{network} at batch 8: {convs} Winograd convs, {mib:.1} MiB of scratch, {u_mib:.1} MiB of U");
            assert!(convs > 0 && allocated <= most_mib << 20, "{network}: {convs} convs, {mib:.1} MiB");
        }
    }
}
