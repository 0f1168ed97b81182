//! The plain layers networks need around their attention blocks: a conv with
//! folded BatchNorm and activation (stems, transitions), global average
//! pooling, and the linear classifier.

use super::{param, Arch, Args, Builder};
use crate::graph::ValueId;
use crate::ops::channel_affine::ChannelAffine;
use crate::ops::conv2d::Conv2d;
use crate::ops::eltwise::Eltwise;
use crate::ops::global_pool::GlobalPool;
use crate::ops::matmul::Matmul;
use crate::ops::narrow::Narrow;
use crate::ops::{Activation, Epilogue};
use crate::weights::Weights;
use crate::{Error, Result, Tensor};

pub const CONV_BN_ACT: Arch = Arch {
    name: "ConvBnAct",
    about: "conv (conv.weight, optional conv.bias) + BatchNorm (bn.*) + activation",
    params: &[param("stride", "1"), param("padding", "K/2"), param("dilation", "1"), param("act", "relu (or none)")],
    maps: &[],
    pretrained: None,
    build: conv_bn_act,
    random_weights: None,
};

pub const GLOBAL_AVG_POOL: Arch = Arch {
    name: "GlobalAvgPool",
    about: "average over H x W: N x C x H x W -> N x C x 1 x 1; no weights",
    params: &[],
    maps: &[],
    pretrained: None,
    build: global_avg_pool,
    random_weights: None,
};

pub const LINEAR: Arch = Arch {
    name: "Linear",
    about: "a linear layer (weight [out, in], bias [out]) on N x C x 1 x 1 or N x C -> N x out",
    params: &[
        param("in_features", "from weight"),
        param("out_features", "from weight"),
        param("bias", "true (only true)"),
    ],
    maps: &[],
    pretrained: None,
    build: linear,
    random_weights: None,
};

fn conv_bn_act(b: &mut Builder, x: ValueId, args: &mut Args) -> Result<ValueId> {
    let [_, c_in, _, _] = b.graph.shape(x).nchw("ConvBnAct", "input x")?;
    let dims = b.weights.dims("conv.weight")?;
    let [c_out, per_group, kh, kw] = dims[..] else {
        return Err(Error::invalid("ConvBnAct", format!("'conv.weight' is {dims:?}, expected 4 dimensions")));
    };
    if per_group == 0 || c_in % per_group != 0 {
        return Err(Error::invalid("ConvBnAct", format!("'conv.weight' {dims:?} does not fit {c_in} input channels")));
    }
    let stride = args.pair("stride", [1, 1])?;
    let padding = args.pair("padding", [kh / 2, kw / 2])?;
    let dilation = args.pair("dilation", [1, 1])?;
    let activation = match args.raw_str("act", "relu")?.as_str() {
        "relu" => Activation::Relu,
        "none" => Activation::None,
        other => return Err(Error::invalid("ConvBnAct", format!("act={other}: expected relu or none"))),
    };
    let weight = b.weights.expect("conv.weight", &dims)?;
    let bias = if b.weights.has("conv.bias") { Some(b.weights.expect("conv.bias", &[c_out])?) } else { None };
    let affine = b.weights.batchnorm("bn", c_out, bias.as_ref())?;
    let conv = Conv2d::new().stride(stride).padding(padding).dilation(dilation).groups(c_in / per_group);
    let w = b.constant(weight);
    let y = b.graph.add(conv, &[x, w])?;
    post(b, y, Some(affine), None, activation)
}

/// What follows a conv or GEMM in the canonical graph, as single ops:
/// `act(affine(y) + residual)` with `affine` [2, C] over the channels
/// (dimension 1 of `y`). The fusion pass folds them into the producer's epilogue.
pub(crate) fn post(
    b: &mut Builder,
    y: ValueId,
    affine: Option<Tensor>,
    residual: Option<ValueId>,
    activation: Activation,
) -> Result<ValueId> {
    let mut y = y;
    if let Some(affine) = affine {
        let a = b.constant(affine);
        y = b.graph.add(ChannelAffine, &[y, a])?;
    }
    if let Some(r) = residual {
        y = b.graph.add(Eltwise::Add, &[y, r])?;
    }
    match activation {
        Activation::None => Ok(y),
        Activation::Relu => b.graph.add(Eltwise::Relu, &[y]),
        Activation::Sigmoid => b.graph.add(Eltwise::Sigmoid, &[y]),
    }
}

fn global_avg_pool(b: &mut Builder, x: ValueId, _: &mut Args) -> Result<ValueId> {
    global_average(b, x)
}

/// The average over H x W of `x` [N, C, H, W]: [N, C, 1, 1] (the average row
/// of the global pool, cut out by narrow).
pub(crate) fn global_average(b: &mut Builder, x: ValueId) -> Result<ValueId> {
    let [n, c, _, _] = b.graph.shape(x).nchw("GlobalAvgPool", "input x")?;
    let pooled = b.graph.add(GlobalPool::default(), &[x])?; // [N, 2, C]: avg, max
    let rows = b.graph.view(pooled, &[n, 2, c, 1])?;
    let avg = b.graph.add(Narrow { first: 0, count: 1 }, &[rows])?;
    b.graph.view(avg, &[n, c, 1, 1])
}

fn linear(b: &mut Builder, x: ValueId, args: &mut Args) -> Result<ValueId> {
    let dims = b.graph.shape(x).dims().to_vec();
    let (n, c) = match dims[..] {
        [n, c] | [n, c, 1, 1] => (n, c),
        _ => return Err(Error::invalid("Linear", format!("input must be N x C or N x C x 1 x 1, got {dims:?}"))),
    };
    let out = b.weights.dims("weight")?[0];
    let given = args.opt_usize("in_features")?;
    args.inferred("in_features", given, c, "the input")?;
    let given = args.opt_usize("out_features")?;
    args.inferred("out_features", given, out, "weight")?;
    if !args.bool("bias", true)? {
        return Err(Error::invalid("Linear", "bias=false is not supported: glimpse's Linear always has a bias"));
    }
    let weight = b.weights.expect("weight", &[out, c])?.reshape(&[1, out, c])?;
    let bias = b.weights.expect("bias", &[out])?;
    let rows = b.graph.view(x, &[1, n, c])?;
    let w = b.constant(weight);
    let y = b.graph.add(Matmul::new(false, true), &[rows, w])?;
    let y = b.graph.view(y, &[n, out])?;
    post(b, y, Some(Weights::bias_affine(&bias)?), None, Activation::None)
}

/// `{conv}.weight` (no bias) then BatchNorm `{bn}`: `act(bn(conv(x)) [+ residual])`
/// as single ops (the epilogue rules make conv + BN (+ residual) + ReLU one dispatch). Channels, kernel and groups come from the weight; the
/// padding is timm's `get_padding(k, stride)`, as in its ResNets.
pub(crate) fn conv_bn(
    b: &mut Builder,
    x: ValueId,
    names: [&str; 2],
    stride: usize,
    activation: Activation,
    residual: Option<ValueId>,
) -> Result<ValueId> {
    let [conv, bn] = names;
    let [_, c_in, _, _] = b.graph.shape(x).nchw("conv", "input x")?;
    let name = format!("{conv}.weight");
    let dims = b.weights.dims(&name)?;
    let [c_out, per_group, kh, kw] = dims[..] else {
        return Err(Error::invalid(
            "conv",
            format!("'{}{name}' is {dims:?}, expected 4 dimensions", b.weights.prefix()),
        ));
    };
    if per_group == 0 || c_in % per_group != 0 || kh != kw {
        let msg = format!("'{}{name}' {dims:?} does not fit an input of {c_in} channels", b.weights.prefix());
        return Err(Error::invalid("conv", msg));
    }
    let weight = b.weights.expect(&name, &dims)?;
    let affine = b.weights.batchnorm(bn, c_out, None)?;
    let pad = ((stride - 1) + (kh - 1)) / 2;
    if kh == 1 && stride == 1 && per_group == c_in {
        // A 1x1 conv is a GEMM over the pixels: with the tiled (subgroup) GEMM kernels, timm.resnet50 +
        // CBAM took 1602 ms of GPU time per image against 3894 with the direct conv kernel on lavapipe
        // (`cargo run --release --example network_kernels -- timm.resnet50 attn_layer=cbam`, before/after).
        let [n, _, h, w] = b.graph.shape(x).nchw("conv", "input x")?;
        let rows = b.graph.view(x, &[n, c_in, h * w])?;
        let wt = b.constant(weight.reshape(&[1, c_out, c_in])?);
        let y = b.graph.add(Matmul::conv1x1(Epilogue::NONE), &[wt, rows])?;
        let y = b.graph.view(y, &[n, c_out, h, w])?;
        return post(b, y, Some(affine), residual, activation);
    }
    let op = Conv2d::new().stride([stride, stride]).padding([pad, pad]).groups(c_in / per_group);
    let w = b.constant(weight);
    let y = b.graph.add(op, &[x, w])?;
    post(b, y, Some(affine), residual, activation)
}
