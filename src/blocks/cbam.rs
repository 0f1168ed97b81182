//! CBAM: the tutorial's ChannelAttention, SpatialAttention and CBAM ResNet
//! BasicBlock, and timm's CbamModule.
//!
//! The canonical graph is single ops (global pool, matmuls, ReLU, sigmoid,
//! gates, channel pool, conv, affine, add); the fusion pass's CBAM rules
//! (src/graph/fuse/cbam.rs) turn it into global pool -> MLP + sigmoid ->
//! gate + channel pool -> k x k conv + sigmoid + both gates (+ residual +
//! ReLU): x is read three times and the output written once.

use super::layers::post;
use super::{make_divisible, map, param, Arch, Args, Builder, MapKind, MapSpec};
use crate::graph::ValueId;
use crate::ops::channel_pool::ChannelPool;
use crate::ops::conv2d::Conv2d;
use crate::ops::eltwise::Eltwise;
use crate::ops::gate::{Gate, GateMode};
use crate::ops::global_pool::GlobalPool;
use crate::ops::matmul::Matmul;
use crate::ops::Activation;
use crate::weights::Weights;
use crate::{Error, Result, Tensor};

/// CBAM's two maps: channel weights and the spatial map.
const CBAM_MAPS: &[MapSpec] = &[map("channel", MapKind::Channel, &[]), map("spatial", MapKind::Spatial, &[])];

pub const CHANNEL_ATTENTION: Arch = Arch {
    name: "ChannelAttention",
    about: "the tutorial's CBAM channel attention; y = N x C x 1 x 1 sigmoid weights",
    params: &[param("in_planes", "from sharedMLP.0.weight"), param("ratio", "16 (checked: in_planes // ratio hidden)")],
    maps: &[],
    pretrained: None,
    random_weights: None,
    build: |b, x, args| {
        let [n, c, _, _] = b.graph.shape(x).nchw("ChannelAttention", "input x")?;
        let in_planes = args.opt_usize("in_planes")?;
        args.inferred("in_planes", in_planes, c, "input x")?;
        let mlp = Mlp::load(b, "sharedMLP.0", "sharedMLP.2", c)?;
        if let Some(ratio) = args.opt_usize("ratio")? {
            if ratio == 0 || c / ratio != mlp.hidden() {
                let why = format!("{c} // {ratio} hidden channels, but sharedMLP.0.weight has {}", mlp.hidden());
                return Err(args.contradiction("ratio", &ratio, why));
            }
        }
        let ca = channel_attention(b, x, mlp)?;
        b.graph.view(ca, &[n, c, 1, 1])
    },
};

pub const SPATIAL_ATTENTION: Arch = Arch {
    name: "SpatialAttention",
    about: "the tutorial's CBAM spatial attention; y = N x 1 x H x W sigmoid map",
    params: &[param("kernel_size", "7 (3 or 7; checked against conv.weight)")],
    maps: &[],
    pretrained: None,
    random_weights: None,
    build: |b, x, args| {
        let (weight, k) = spatial_weight(b, "")?;
        let given = args.opt_usize("kernel_size")?;
        args.inferred("kernel_size", given, k, "conv.weight")?;
        let pooled = b.graph.add(ChannelPool, &[x])?;
        let w = b.constant(weight);
        let s = b.graph.add(Conv2d::new().padding([k / 2, k / 2]), &[pooled, w])?;
        b.graph.add(Eltwise::Sigmoid, &[s])
    },
};

pub const BASIC_BLOCK: Arch = Arch {
    name: "BasicBlock",
    about: "the CBAM ResNet BasicBlock: conv-BN-ReLU-conv-BN, channel and spatial attention, residual, ReLU",
    params: &[
        param("inplanes", "from conv1.weight"),
        param("planes", "from conv1.weight"),
        param("stride", "1"),
        param("downsample", "present when the weights hold downsample.*"),
    ],
    maps: CBAM_MAPS,
    pretrained: None,
    build: basic_block,
    random_weights: Some(random_basic_block),
};

/// timm's CbamModule / LightCbamModule constructor arguments.
const TIMM_CBAM_PARAMS: &[crate::blocks::Param] = &[
    param("channels", "from channel.fc1.weight"),
    param("rd_ratio", "1/16 (checked against channel.fc1.weight)"),
    param("rd_channels", "from channel.fc1.weight"),
    param("rd_divisor", "1"),
    param("spatial_kernel_size", "7 (checked against spatial.conv.conv.weight)"),
    param("act_layer", "relu"),
    param("gate_layer", "sigmoid"),
    param("mlp_bias", "false (checked: channel.fc1.bias present)"),
];

pub const TIMM_CBAM: Arch = Arch {
    name: "timm.CbamModule",
    about: "timm's CbamModule: channel attention (fc1/fc2) then spatial attention (conv + BN)",
    params: TIMM_CBAM_PARAMS,
    maps: CBAM_MAPS,
    pretrained: None,
    build: |b, x, args| cbam_module(b, x, args, false, None),
    random_weights: Some(random_timm_cbam),
};

pub const TIMM_LIGHT_CBAM: Arch = Arch {
    name: "timm.LightCbamModule",
    about: "timm's LightCbamModule: channel MLP on 0.5 avg + 0.5 max, spatial conv + BN on 0.5 mean + 0.5 max",
    params: TIMM_CBAM_PARAMS,
    maps: CBAM_MAPS,
    pretrained: None,
    build: |b, x, args| cbam_module(b, x, args, true, None),
    random_weights: None,
};

/// timm's CbamModule (or LightCbamModule when `light`) on `x`; with `residual`,
/// returns relu(cbam(x) + residual) as the ResNet blocks need (fused into the
/// spatial gate's kernel).
pub(crate) fn cbam_module(
    b: &mut Builder,
    x: ValueId,
    args: &mut Args,
    light: bool,
    residual: Option<ValueId>,
) -> Result<ValueId> {
    let arch = if light { "timm.LightCbamModule" } else { "timm.CbamModule" };
    let [_, c, _, _] = b.graph.shape(x).nchw(arch, "input x")?;
    let channels = args.opt_usize("channels")?;
    args.inferred("channels", channels, c, "input x")?;
    args.choice("act_layer", &["relu"])?;
    args.choice("gate_layer", &["sigmoid"])?;
    let mlp = b.scope("channel", |b| Mlp::load(b, "fc1", "fc2", c))?;
    let mlp_bias = args.opt_bool("mlp_bias")?;
    args.inferred("mlp_bias", mlp_bias, mlp.bias1.is_some(), "channel.fc1.bias present")?;
    let rd = args.opt_usize("rd_channels")?;
    args.inferred("rd_channels", rd, mlp.hidden(), "channel.fc1.weight")?;
    let (rd_ratio, rd_divisor) = (args.opt_f32("rd_ratio")?, args.opt_usize("rd_divisor")?);
    if rd.is_none() && (rd_ratio.is_some() || rd_divisor.is_some()) {
        let (ratio, divisor) = (rd_ratio.unwrap_or(1.0 / 16.0), rd_divisor.unwrap_or(1));
        let want = make_divisible(c as f64 * ratio as f64, divisor, 0.0);
        if want != mlp.hidden() {
            let why = format!("make_divisible({c} * {ratio}, {divisor}) = {want}, fc1 has {}", mlp.hidden());
            return Err(args.contradiction("rd_ratio", &ratio, why));
        }
    }
    let ca = if light { light_channel_attention(b, x, mlp)? } else { channel_attention(b, x, mlp)? };
    let (mut weight, k) = if light { light_spatial_weight(b)? } else { spatial_weight(b, "spatial.conv.")? };
    let given = args.opt_usize("spatial_kernel_size")?;
    args.inferred("spatial_kernel_size", given, k, "spatial.conv.conv.weight")?;
    if light {
        weight.data_mut().iter_mut().for_each(|w| *w *= 0.5);
    }
    let affine = b.weights.batchnorm("spatial.conv.bn", 1, None)?;
    apply(b, x, ca, weight, Some(affine), residual)
}

/// CBAM's shared MLP: 1x1 convs fc1 [R, C, 1, 1] and fc2 [C, R, 1, 1], with
/// their biases when the module was built with them (timm's mlp_bias).
struct Mlp {
    fc1: Tensor,
    fc2: Tensor,
    bias1: Option<Tensor>,
    bias2: Option<Tensor>,
}

impl Mlp {
    fn load(b: &mut Builder, fc1: &str, fc2: &str, c: usize) -> Result<Mlp> {
        let w1 = format!("{fc1}.weight");
        let r = match b.weights.dims(&w1)?[..] {
            [r, ci, 1, 1] if ci == c && r > 0 => r,
            ref d => {
                return Err(Error::invalid("channel attention", format!("'{w1}' is {d:?}, expected [R, {c}, 1, 1]")))
            }
        };
        let bias = |b: &mut Builder, name: String, n: usize| -> Result<Option<Tensor>> {
            if b.weights.has(&name) {
                Ok(Some(b.weights.expect(&name, &[n])?))
            } else {
                Ok(None)
            }
        };
        Ok(Mlp {
            fc1: b.weights.expect(&w1, &[r, c, 1, 1])?.reshape(&[r, c])?,
            fc2: b.weights.expect(&format!("{fc2}.weight"), &[c, r, 1, 1])?.reshape(&[c, r])?,
            bias1: bias(b, format!("{fc1}.bias"), r)?,
            bias2: bias(b, format!("{fc2}.bias"), c)?,
        })
    }

    fn hidden(&self) -> usize {
        self.fc1.shape().dims()[0]
    }

    /// `rows` [N, P, C] through fc1 -> ReLU -> fc2 as two batched GEMMs: [N, P, C].
    fn apply(self, b: &mut Builder, rows: ValueId) -> Result<ValueId> {
        let (r, c) = (self.hidden(), self.fc2.shape().dims()[0]);
        let w1 = b.constant(self.fc1.reshape(&[1, r, c])?);
        let w2 = b.constant(self.fc2.reshape(&[1, c, r])?);
        let layer = |b: &mut Builder, x: ValueId, w: ValueId, bias: Option<Tensor>, activation| {
            let y = b.graph.add(Matmul::new(false, true), &[x, w])?;
            let Some(bias) = bias else { return post(b, y, None, None, activation) };
            // The bias runs along the last dimension: seen as [N * P, out] it is dimension 1.
            let dims = b.graph.shape(y).dims().to_vec();
            let flat = b.graph.view(y, &[dims[0] * dims[1], dims[2]])?;
            let out = post(b, flat, Some(Weights::bias_affine(&bias)?), None, activation)?;
            b.graph.view(out, &dims)
        };
        let hidden = layer(b, rows, w1, self.bias1, Activation::Relu)?;
        layer(b, hidden, w2, self.bias2, Activation::None)
    }
}

/// `rows` [N, P, C] summed over P with `weights` (one per row) under a sigmoid: [N, C].
fn mix_rows(b: &mut Builder, rows: ValueId, weights: &[f32], sigmoid: bool) -> Result<ValueId> {
    let [n, p, c] = b.graph.shape(rows).dims()[..] else { unreachable!("rows are [N, P, C]") };
    debug_assert_eq!(p, weights.len());
    let mix = b.constant(Tensor::from_vec(&[1, 1, p], weights.to_vec())?);
    let mixed = b.graph.add(Matmul::new(false, false), &[mix, rows])?;
    let activation = if sigmoid { Activation::Sigmoid } else { Activation::None };
    let mixed = post(b, mixed, None, None, activation)?;
    b.graph.view(mixed, &[n, c])
}

/// The channel weights sigmoid(mlp(avg) + mlp(max)) as [N, C] (map "channel").
fn channel_attention(b: &mut Builder, x: ValueId, mlp: Mlp) -> Result<ValueId> {
    let pooled = b.graph.add(GlobalPool::default(), &[x])?; // [N, 2, C]: avg row, max row
                                                            // Both pooled rows through the MLP, then summed under a sigmoid.
    let logits = mlp.apply(b, pooled)?;
    let ca = mix_rows(b, logits, &[1.0, 1.0], true)?;
    b.map("channel", ca);
    Ok(ca)
}

/// timm's LightChannelAttn: sigmoid(mlp(0.5 avg + 0.5 max)) as [N, C] (map "channel").
fn light_channel_attention(b: &mut Builder, x: ValueId, mlp: Mlp) -> Result<ValueId> {
    let [n, c, _, _] = b.graph.shape(x).nchw("timm.LightCbamModule", "input x")?;
    let pooled = b.graph.add(GlobalPool::default(), &[x])?;
    let mixed = mix_rows(b, pooled, &[0.5, 0.5], false)?;
    let rows = b.graph.view(mixed, &[n, 1, c])?;
    let logits = mlp.apply(b, rows)?;
    let ca = mix_rows(b, logits, &[1.0], true)?;
    b.map("channel", ca);
    Ok(ca)
}

/// timm's LightSpatialAttn conv `spatial.conv.conv.weight` [1, 1, k, k] seen as the
/// [1, 2, k, k] conv over [mean, max] that computes conv(mean + max): the 0.5
/// weights are applied by the caller. Returns it with its kernel size.
fn light_spatial_weight(b: &mut Builder) -> Result<(Tensor, usize)> {
    let name = "spatial.conv.conv.weight";
    let k = match b.weights.dims(name)?[..] {
        [1, 1, k, kw] if k == kw && k % 2 == 1 => k,
        ref d => {
            let msg = format!("'{}{name}' is {d:?}, expected [1, 1, k, k] with k odd", b.weights.prefix());
            return Err(Error::invalid("timm.LightCbamModule", msg));
        }
    };
    let w = b.weights.expect(name, &[1, 1, k, k])?;
    let both: Vec<f32> = w.data().iter().chain(w.data()).copied().collect();
    Ok((Tensor::from_vec(&[1, 2, k, k], both)?, k))
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
    let w = b.constant(weight);
    let gated = b.graph.add(Gate::probabilities(GateMode::Channel), &[x, ca])?;
    let pooled = b.graph.add(ChannelPool, &[gated])?;
    let s = b.graph.add(Conv2d::new().padding([k / 2, k / 2]), &[pooled, w])?;
    let sa = post(b, s, affine, None, Activation::Sigmoid)?;
    b.map("spatial", sa);
    let out = b.graph.add(Gate::probabilities(GateMode::Pixel), &[gated, sa])?;
    let activation = if residual.is_some() { Activation::Relu } else { Activation::None };
    post(b, out, None, residual, activation)
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
    let given = args.opt_usize("inplanes")?;
    args.inferred("inplanes", given, inplanes, "input x")?;
    let given = args.opt_usize("planes")?;
    args.inferred("planes", given, planes, "conv1.weight")?;
    let given = args.opt_bool("downsample")?;
    args.inferred("downsample", given, b.weights.has("downsample.0.weight"), "downsample.0.weight present")?;
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
    let (w1, w2) = (b.constant(w1), b.constant(w2));
    let h = b.graph.add(Conv2d::new().stride([stride, stride]).padding([1, 1]), &[x, w1])?;
    let h = post(b, h, Some(bn1), None, Activation::Relu)?;
    let h = b.graph.add(Conv2d::new().padding([1, 1]), &[h, w2])?;
    let h = post(b, h, Some(bn2), None, Activation::None)?;
    let residual = if needs_downsample {
        let wd = b.weights.expect("downsample.0.weight", &[planes, inplanes, 1, 1])?;
        let bnd = b.weights.batchnorm("downsample.1", planes, None)?;
        let wd = b.constant(wd);
        let r = b.graph.add(Conv2d::new().stride([stride, stride]), &[x, wd])?;
        post(b, r, Some(bnd), None, Activation::None)?
    } else {
        x
    };
    let mlp = Mlp::load(b, "ca.sharedMLP.0", "ca.sharedMLP.2", planes)?;
    let ca = channel_attention(b, h, mlp)?;
    let (weight, _) = spatial_weight(b, "sa.")?;
    apply(b, h, ca, weight, None, Some(residual))
}

/// Random weights of timm's CbamModule(channels), the benchmark's.
fn random_timm_cbam(args: &[String], rng: &mut fastrand::Rng) -> Result<crate::tensorfile::TensorFile> {
    let c = super::random_width("timm.CbamModule", "channels", args)?;
    let mut f = crate::weights::RandomStateDict::new(rng);
    let rd = (c / 16).max(1);
    f.conv("channel.fc1", [rd, c, 1, 1], false)?;
    f.conv("channel.fc2", [c, rd, 1, 1], false)?;
    f.conv("spatial.conv.conv", [1, 2, 7, 7], false)?;
    f.batchnorm("spatial.conv.bn", 1)?;
    Ok(f.finish())
}

/// Random weights of the CBAM BasicBlock(inplanes, inplanes), the benchmark's.
fn random_basic_block(args: &[String], rng: &mut fastrand::Rng) -> Result<crate::tensorfile::TensorFile> {
    let c = super::random_width("BasicBlock", "inplanes", args)?;
    let mut f = crate::weights::RandomStateDict::new(rng);
    let r = (c / 16).max(1);
    f.conv("conv1", [c, c, 3, 3], false)?;
    f.batchnorm("bn1", c)?;
    f.conv("conv2", [c, c, 3, 3], false)?;
    f.batchnorm("bn2", c)?;
    f.conv("ca.sharedMLP.0", [r, c, 1, 1], false)?;
    f.conv("ca.sharedMLP.2", [c, r, 1, 1], false)?;
    f.conv("sa.conv", [1, 2, 7, 7], false)?;
    Ok(f.finish())
}
