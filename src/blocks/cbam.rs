//! CBAM: the tutorial's ChannelAttention, SpatialAttention and CBAM ResNet
//! BasicBlock, and timm's CbamModule.
//!
//! Fused (rules CbamChannelMlp, CbamGatePool, CbamSpatialGate): global pool ->
//! MLP + sigmoid -> gate + channel pool -> k x k conv + sigmoid + both gates
//! (+ residual + ReLU): x is read three times and the output written once.
//! Unfused: the same maths from single ops (matmuls, gates, channel pool, conv).

use super::{Arch, Args, Builder};
use crate::graph::{Rule, ValueId};
use crate::ops::cbam_channel_mlp::CbamChannelMlp;
use crate::ops::cbam_gate_pool::CbamGatePool;
use crate::ops::cbam_spatial_gate::CbamSpatialGate;
use crate::ops::channel_pool::ChannelPool;
use crate::ops::conv2d::Conv2d;
use crate::ops::eltwise::Eltwise;
use crate::ops::gate::{Gate, GateMode};
use crate::ops::global_pool::GlobalPool;
use crate::ops::matmul::{Axis, Matmul};
use crate::ops::{Activation, Epilogue};
use crate::{Error, Result, Tensor};

pub const CHANNEL_ATTENTION: Arch = Arch {
    name: "ChannelAttention",
    about: "the tutorial's CBAM channel attention; y = N x C x 1 x 1 sigmoid weights",
    args: "none (in_planes and ratio come from sharedMLP.{0,2}.weight)",
    maps: &[],
    pretrained: None,
    build: |b, x, _| {
        let [n, c, _, _] = b.graph.shape(x).nchw("ChannelAttention", "input x")?;
        let ca = channel_attention(b, x, "sharedMLP.0.weight", "sharedMLP.2.weight")?;
        b.graph.view(ca, &[n, c, 1, 1])
    },
};

pub const SPATIAL_ATTENTION: Arch = Arch {
    name: "SpatialAttention",
    about: "the tutorial's CBAM spatial attention; y = N x 1 x H x W sigmoid map",
    args: "none (kernel_size 3 or 7 comes from conv.weight)",
    maps: &[],
    pretrained: None,
    build: |b, x, _| {
        let (weight, k) = spatial_weight(b, "")?;
        let pooled = b.graph.add(ChannelPool, &[x])?;
        let w = b.constant(weight);
        let conv = Conv2d::new().padding([k / 2, k / 2]).epilogue(sigmoid_epilogue(false));
        b.graph.add(conv, &[pooled, w])
    },
};

pub const BASIC_BLOCK: Arch = Arch {
    name: "BasicBlock",
    about: "the CBAM ResNet BasicBlock: conv-BN-ReLU-conv-BN, channel and spatial attention, residual, ReLU",
    args: "stride=1 (inplanes, planes and the downsample come from the weights)",
    maps: &["channel", "spatial"],
    pretrained: None,
    build: basic_block,
};

pub const TIMM_CBAM: Arch = Arch {
    name: "timm.CbamModule",
    about: "timm's CbamModule: channel attention (fc1/fc2) then spatial attention (conv + BN)",
    args: "none (channels, rd_channels and the spatial kernel size come from the weights)",
    maps: &["channel", "spatial"],
    pretrained: None,
    build: |b, x, _| {
        let ca = channel_attention(b, x, "channel.fc1.weight", "channel.fc2.weight")?;
        let (weight, _) = spatial_weight(b, "spatial.conv.")?;
        let affine = b.weights.batchnorm("spatial.conv.bn", 1, None)?;
        apply(b, x, ca, weight, Some(affine), None)
    },
};

fn sigmoid_epilogue(affine: bool) -> Epilogue {
    Epilogue { affine, activation: Activation::Sigmoid, residual: false }
}

/// The shared MLP's weights (1x1 convs [R, C, 1, 1] and [C, R, 1, 1]) and the
/// channel weights sigmoid(mlp(avg) + mlp(max)) as [N, C].
fn channel_attention(b: &mut Builder, x: ValueId, fc1: &str, fc2: &str) -> Result<ValueId> {
    let [n, c, _, _] = b.graph.shape(x).nchw("channel attention", "input x")?;
    let r = match b.weights.dims(fc1)?[..] {
        [r, ci, 1, 1] if ci == c => r,
        ref d => return Err(Error::invalid("channel attention", format!("'{fc1}' is {d:?}, expected [R, {c}, 1, 1]"))),
    };
    let w1 = b.weights.expect(fc1, &[r, c, 1, 1])?.reshape(&[r, c])?;
    let w2 = b.weights.expect(fc2, &[c, r, 1, 1])?.reshape(&[c, r])?;
    let pooled = b.graph.add(GlobalPool::default(), &[x])?; // [N, 2, C]: avg row, max row
    let ca = if b.fusion.allows(Rule::CbamChannelMlp) {
        let (w1, w2) = (b.constant(w1), b.constant(w2));
        b.graph.add(CbamChannelMlp, &[pooled, w1, w2])?
    } else {
        // Both pooled rows through fc1 -> ReLU -> fc2 as one batched GEMM each,
        // then the two rows summed (a GEMM with [1, 1]) under a sigmoid.
        let w1 = b.constant(w1.reshape(&[1, r, c])?);
        let w2 = b.constant(w2.reshape(&[1, c, r])?);
        let relu = Epilogue { activation: Activation::Relu, ..Epilogue::NONE };
        let hidden = b.graph.add(Matmul::new(false, true).epilogue(relu, Axis::Cols), &[pooled, w1])?;
        let logits = b.graph.add(Matmul::new(false, true), &[hidden, w2])?;
        let ones = b.constant(Tensor::from_vec(&[1, 1, 2], vec![1.0, 1.0])?);
        let summed =
            b.graph.add(Matmul::new(false, false).epilogue(sigmoid_epilogue(false), Axis::Cols), &[ones, logits])?;
        b.graph.view(summed, &[n, c])?
    };
    b.map("channel", ca);
    Ok(ca)
}

/// The spatial attention conv `{prefix}conv.weight` ([1, 2, k, k], k odd; the
/// tutorial's code also calls it conv1) and its kernel size.
fn spatial_weight(b: &mut Builder, prefix: &str) -> Result<(Tensor, usize)> {
    let name = [format!("{prefix}conv.weight"), format!("{prefix}conv1.weight")]
        .into_iter()
        .find(|n| b.weights.has(n))
        .unwrap_or_else(|| format!("{prefix}conv.weight"));
    let k = match b.weights.dims(&name)?[..] {
        [1, 2, k, kw] if k == kw && k % 2 == 1 => k,
        ref d => {
            return Err(Error::invalid(
                "spatial attention",
                format!("'{name}' is {d:?}, expected [1, 2, k, k] with k odd"),
            ))
        }
    };
    Ok((b.weights.expect(&name, &[1, 2, k, k])?, k))
}

/// out = x * ca * sigmoid(conv(pool(x * ca))) (+ residual, then ReLU).
fn apply(
    b: &mut Builder,
    x: ValueId,
    ca: ValueId,
    weight: Tensor,
    affine: Option<Tensor>,
    residual: Option<ValueId>,
) -> Result<ValueId> {
    let k = weight.shape().dims()[3];
    let has_affine = affine.is_some();
    let w = b.constant(weight);
    let affine = affine.map(|a| b.constant(a));
    let extras: Vec<ValueId> = affine.into_iter().chain(residual).collect();
    let mut gated = None; // x * ca, materialised only without CbamGatePool
    let pooled = if b.fusion.allows(Rule::CbamGatePool) {
        b.graph.add(CbamGatePool, &[x, ca])?
    } else {
        let g = b.graph.add(Gate::probabilities(GateMode::Channel), &[x, ca])?;
        gated = Some(g);
        b.graph.add(ChannelPool, &[g])?
    };
    let spatial_conv = Conv2d::new().padding([k / 2, k / 2]).epilogue(sigmoid_epilogue(has_affine));
    let sa_inputs: Vec<ValueId> = [pooled, w].into_iter().chain(affine).collect();
    if b.fusion.allows(Rule::CbamSpatialGate) {
        if b.maps {
            let sa = b.graph.add(spatial_conv, &sa_inputs)?;
            b.map("spatial", sa);
        }
        let gate =
            CbamSpatialGate { kernel: k, affine: has_affine, residual: residual.is_some(), relu: residual.is_some() };
        let inputs: Vec<ValueId> = [x, ca, pooled, w].into_iter().chain(extras).collect();
        return b.graph.add(gate, &inputs);
    }
    let sa = b.graph.add(spatial_conv, &sa_inputs)?;
    b.map("spatial", sa);
    let gated = match gated {
        Some(g) => g,
        None => b.graph.add(Gate::probabilities(GateMode::Channel), &[x, ca])?,
    };
    let out = b.graph.add(Gate::probabilities(GateMode::Pixel), &[gated, sa])?;
    match residual {
        Some(r) => b.graph.add(Eltwise::AddRelu, &[out, r]),
        None => Ok(out),
    }
}

/// conv3x3(stride)-BN-ReLU-conv3x3-BN, CBAM, + residual (downsample when the
/// weights have one), ReLU.
fn basic_block(b: &mut Builder, x: ValueId, args: &mut Args) -> Result<ValueId> {
    let stride = args.usize("stride", 1)?;
    let [_, inplanes, _, _] = b.graph.shape(x).nchw("BasicBlock", "input x")?;
    let conv1 = b.weights.dims("conv1.weight")?;
    if conv1.len() != 4 || conv1[1] != inplanes {
        let x = b.graph.shape(x);
        return Err(Error::invalid(
            "BasicBlock",
            format!("input x {x} has {inplanes} channels; 'conv1.weight' {conv1:?} expects [planes, inplanes, 3, 3]"),
        ));
    }
    let planes = conv1[0];
    let w1 = b.weights.expect("conv1.weight", &[planes, inplanes, 3, 3])?;
    let bn1 = b.weights.batchnorm("bn1", planes, None)?;
    let w2 = b.weights.expect("conv2.weight", &[planes, planes, 3, 3])?;
    let bn2 = b.weights.batchnorm("bn2", planes, None)?;
    let needs_downsample = stride != 1 || inplanes != planes;
    if needs_downsample != b.weights.has("downsample.0.weight") {
        return Err(Error::invalid(
            "BasicBlock",
            format!(
                "stride {stride} with {inplanes} -> {planes} channels {} a downsample, but the weights {} downsample.0.weight",
                if needs_downsample { "needs" } else { "has no" },
                if needs_downsample { "lack" } else { "have" }
            ),
        ));
    }
    let relu_bn = Epilogue { affine: true, activation: Activation::Relu, residual: false };
    let bn = Epilogue { affine: true, ..Epilogue::NONE };
    let (w1, bn1, w2, bn2) = (b.constant(w1), b.constant(bn1), b.constant(w2), b.constant(bn2));
    let h = b.graph.add(Conv2d::new().stride([stride, stride]).padding([1, 1]).epilogue(relu_bn), &[x, w1, bn1])?;
    let h = b.graph.add(Conv2d::new().padding([1, 1]).epilogue(bn), &[h, w2, bn2])?;
    let residual = if needs_downsample {
        let wd = b.weights.expect("downsample.0.weight", &[planes, inplanes, 1, 1])?;
        let bnd = b.weights.batchnorm("downsample.1", planes, None)?;
        let (wd, bnd) = (b.constant(wd), b.constant(bnd));
        b.graph.add(Conv2d::new().stride([stride, stride]).epilogue(bn), &[x, wd, bnd])?
    } else {
        x
    };
    let ca = channel_attention(b, h, "ca.sharedMLP.0.weight", "ca.sharedMLP.2.weight")?;
    let (weight, _) = spatial_weight(b, "sa.")?;
    apply(b, h, ca, weight, None, Some(residual))
}
