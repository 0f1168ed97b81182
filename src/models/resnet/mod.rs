//! timm's ResNet family, written the way timm writes it (models/resnet.py,
//! models/sknet.py): a stem (7x7, or the deep `d` stem of three 3x3 convs),
//! a 3x3 max pool, four stages of blocks, global average pooling and `fc`.
//! One [`Net`] description per model name; widths, depths, classes, groups
//! and the attention layer are read from the weights, so timm models built
//! with other `channels` or `num_classes` load as they are, and every
//! constructor argument the user passes is checked against them.
//!
//! Blocks: timm's BasicBlock / Bottleneck with `attn_layer` ('cbam', 'lcbam',
//! 'nl') under `se.` after the last BatchNorm, and SKNet's
//! SelectiveKernelBasic / SelectiveKernelBottleneck. Conv + folded BN + ReLU,
//! and conv + BN + residual + ReLU, are one dispatch each; with CBAM the
//! residual and ReLU ride in the spatial gate's kernel.

mod check;
mod random;

use check::{blocks_in, check_args, Plan};

use crate::blocks::{
    cbam_module, conv_bn, map, param, Arch, Args, Builder, MapKind, MapSpec, Param, Pretrained, IMAGENET_MEAN,
    IMAGENET_STD, TIMM_SK_BRANCHES,
};
use crate::graph::ValueId;
use crate::ops::avg_pool2d::AvgPool2d;
use crate::ops::eltwise::Eltwise;
use crate::ops::max_pool2d::MaxPool2d;
use crate::ops::Activation;
use crate::Result;

/// The residual block a network is made of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Block {
    Basic,
    Bottleneck,
    SkBasic,
    SkBottleneck,
}

/// timm's `create_attn` names for the attention layer in every block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Attn {
    None,
    Cbam,
    LightCbam,
    NonLocal,
}

impl Attn {
    const NAMES: [(&'static str, Attn); 4] =
        [("none", Attn::None), ("cbam", Attn::Cbam), ("lcbam", Attn::LightCbam), ("nl", Attn::NonLocal)];

    fn name(self) -> &'static str {
        Self::NAMES.iter().find(|(_, a)| *a == self).map_or("none", |(n, _)| n)
    }
}

/// One timm model: what its model function passes to `ResNet(...)`.
struct Net {
    name: &'static str,
    block: Block,
    layers: [usize; 4],
    deep_stem: bool,
    avg_down: bool,
    cardinality: usize,
    base_width: usize,
    /// The model function's `sk_kwargs`, as timm.SelectiveKernel arguments.
    sk_args: &'static [&'static str],
}

/// ResNet's constructor arguments (timm's `ResNet.__init__`), the SK nets'
/// `sk_kwargs` and the ResNets' `block_args=dict(attn_layer=...)`.
const PARAMS: &[Param] = &[
    param("layers", "the model's (checked against the weights)"),
    param("num_classes", "from fc.weight"),
    param("in_chans", "3 (from conv1)"),
    param("channels", "64,128,256,512 (from the weights)"),
    param("cardinality", "the model's (checked)"),
    param("base_width", "the model's (checked)"),
    param("stem_width", "64, or 32 for d (from the stem)"),
    param("stem_type", "'' or 'deep' for d (from the stem)"),
    param("avg_down", "false, or true for d (from downsample.*)"),
    param("attn_layer", "none (cbam, lcbam, nl; from layer1.0.se.*)"),
    param("rd_ratio", "SK nets: sk_kwargs rd_ratio"),
    param("rd_divisor", "SK nets: sk_kwargs rd_divisor"),
    param("split_input", "SK nets: sk_kwargs split_input"),
    param("output_stride", "32 (only 32)"),
    param("block_reduce_first", "1 (only 1)"),
    param("down_kernel_size", "1 (only 1)"),
    param("replace_stem_pool", "false (only false)"),
    param("global_pool", "avg (only avg)"),
    param("act_layer", "relu (only relu)"),
    param("norm_layer", "batchnorm2d (only)"),
    param("aa_layer", "none (only none)"),
    param("drop_rate", "0 (training only)"),
    param("drop_path_rate", "0 (training only)"),
    param("drop_block_rate", "0 (training only)"),
    param("zero_init_last", "true (training only)"),
];

/// Every block's SK map (`layer2.0.conv1.attn`; `conv2.attn` in bottlenecks).
const SK_MAPS: &[MapSpec] = &[map("attn", MapKind::Branch, TIMM_SK_BRANCHES)];
/// Every block's attention layer maps (`layer1.0.se.spatial`).
const ATTN_MAPS: &[MapSpec] = &[
    map("se.channel", MapKind::Channel, &[]),
    map("se.spatial", MapKind::Spatial, &[]),
    map("se.attention", MapKind::Attention, &[]),
];

/// timm's `_cfg`-based pretrained configs: bilinear 0.875 (`_cfg`), bicubic
/// 0.875 (`_ttcfg`, the SK nets) and bicubic 0.95 (`_rcfg`, the a1 recipes).
const fn cfg(interpolation: &'static str, crop_pct: f32, size: usize) -> Option<Pretrained> {
    Some(Pretrained {
        input_size: [3, size, size],
        crop_pct,
        interpolation,
        mean: IMAGENET_MEAN,
        std: IMAGENET_STD,
        num_classes: 1000,
    })
}

macro_rules! network {
    ($name:literal, $about:literal, $maps:expr, $cfg:expr, $net:expr) => {
        Arch {
            name: $name,
            about: $about,
            params: PARAMS,
            maps: $maps,
            pretrained: $cfg,
            build: |b, x, args| build(b, x, args, &$net),
            random_weights: Some(|args, rng| random::state_dict(&$net, args, rng)),
        }
    };
}

const fn net(name: &'static str, block: Block, layers: [usize; 4], d: bool) -> Net {
    Net { name, block, layers, deep_stem: d, avg_down: d, cardinality: 1, base_width: 64, sk_args: &[] }
}

const SK18: &[&str] = &["rd_ratio=1/8", "rd_divisor=16", "split_input=true"];
const SK50: &[&str] = &["split_input=true"];
const SKX50: &[&str] = &["rd_ratio=1/16", "rd_divisor=32", "split_input=false"];
const L18: [usize; 4] = [2, 2, 2, 2];
const L26: [usize; 4] = [2, 2, 2, 2];
const L34: [usize; 4] = [3, 4, 6, 3];
const L101: [usize; 4] = [3, 4, 23, 3];

pub const SKRESNET18: Arch = network!(
    "timm.skresnet18",
    "timm's skresnet18: SelectiveKernelBasic [2, 2, 2, 2], split input, rd 1/8",
    SK_MAPS,
    cfg("bicubic", 0.875, 224),
    Net { sk_args: SK18, ..net("skresnet18", Block::SkBasic, L18, false) }
);
pub const SKRESNET34: Arch = network!(
    "timm.skresnet34",
    "timm's skresnet34: SelectiveKernelBasic [3, 4, 6, 3], split input, rd 1/8",
    SK_MAPS,
    cfg("bicubic", 0.875, 224),
    Net { sk_args: SK18, ..net("skresnet34", Block::SkBasic, L34, false) }
);
pub const SKRESNET50: Arch = network!(
    "timm.skresnet50",
    "timm's skresnet50: SelectiveKernelBottleneck [3, 4, 6, 3], split input",
    SK_MAPS,
    cfg("bicubic", 0.875, 224),
    Net { sk_args: SK50, ..net("skresnet50", Block::SkBottleneck, L34, false) }
);
pub const SKRESNET50D: Arch = network!(
    "timm.skresnet50d",
    "timm's skresnet50d: skresnet50 with the deep stem and average-pool downsample",
    SK_MAPS,
    cfg("bicubic", 0.875, 224),
    Net { sk_args: SK50, ..net("skresnet50d", Block::SkBottleneck, L34, true) }
);
pub const SKRESNEXT50_32X4D: Arch = network!(
    "timm.skresnext50_32x4d",
    "timm's skresnext50_32x4d: SelectiveKernelBottleneck [3, 4, 6, 3], 32 groups x 4",
    SK_MAPS,
    cfg("bicubic", 0.875, 224),
    Net { sk_args: SKX50, cardinality: 32, base_width: 4, ..net("skresnext50_32x4d", Block::SkBottleneck, L34, false) }
);

macro_rules! resnet {
    ($const:ident, $name:literal, $about:literal, $cfg:expr, $block:expr, $layers:expr, $d:expr) => {
        pub const $const: Arch = network!($name, $about, ATTN_MAPS, $cfg, net($name, $block, $layers, $d));
    };
}

resnet!(
    RESNET18,
    "timm.resnet18",
    "timm's resnet18 (BasicBlock [2, 2, 2, 2]); attn_layer in every block",
    cfg("bicubic", 0.95, 224),
    Block::Basic,
    L18,
    false
);
resnet!(
    RESNET18D,
    "timm.resnet18d",
    "timm's resnet18d: deep stem, average-pool downsample",
    cfg("bicubic", 0.875, 224),
    Block::Basic,
    L18,
    true
);
resnet!(
    RESNET26,
    "timm.resnet26",
    "timm's resnet26 (Bottleneck [2, 2, 2, 2])",
    cfg("bicubic", 0.875, 224),
    Block::Bottleneck,
    L26,
    false
);
resnet!(
    RESNET26D,
    "timm.resnet26d",
    "timm's resnet26d: deep stem, average-pool downsample",
    cfg("bicubic", 0.875, 224),
    Block::Bottleneck,
    L26,
    true
);
resnet!(
    RESNET34,
    "timm.resnet34",
    "timm's resnet34 (BasicBlock [3, 4, 6, 3])",
    cfg("bicubic", 0.95, 224),
    Block::Basic,
    L34,
    false
);
resnet!(
    RESNET34D,
    "timm.resnet34d",
    "timm's resnet34d: deep stem, average-pool downsample",
    cfg("bicubic", 0.875, 224),
    Block::Basic,
    L34,
    true
);
resnet!(
    RESNET50,
    "timm.resnet50",
    "timm's resnet50 (Bottleneck [3, 4, 6, 3])",
    cfg("bicubic", 0.95, 224),
    Block::Bottleneck,
    L34,
    false
);
resnet!(
    RESNET50D,
    "timm.resnet50d",
    "timm's resnet50d: deep stem, average-pool downsample",
    cfg("bicubic", 0.875, 224),
    Block::Bottleneck,
    L34,
    true
);
resnet!(
    RESNET101,
    "timm.resnet101",
    "timm's resnet101 (Bottleneck [3, 4, 23, 3])",
    cfg("bicubic", 0.95, 224),
    Block::Bottleneck,
    L101,
    false
);
resnet!(
    RESNET101D,
    "timm.resnet101d",
    "timm's resnet101d: deep stem, average-pool downsample",
    cfg("bicubic", 0.95, 256),
    Block::Bottleneck,
    L101,
    true
);

fn build(b: &mut Builder, x: ValueId, args: &mut Args, net: &Net) -> Result<ValueId> {
    let plan = check_args(b, x, args, net)?;
    let deep = b.weights.has("conv1.0.weight");
    let mut h = if deep {
        let h = conv_bn(b, x, ["conv1.0", "conv1.1"], 2, Activation::Relu, None)?;
        let h = conv_bn(b, h, ["conv1.3", "conv1.4"], 1, Activation::Relu, None)?;
        conv_bn(b, h, ["conv1.6", "bn1"], 1, Activation::Relu, None)?
    } else {
        conv_bn(b, x, ["conv1", "bn1"], 2, Activation::Relu, None)?
    };
    h = b.graph.add(MaxPool2d::new([3, 3], [1, 1]).with_stride([2, 2]), &[h])?;
    for stage in 1..=4 {
        for i in 0..blocks_in(b, stage) {
            let stride = if stage > 1 && i == 0 { 2 } else { 1 };
            h = b.scope(&format!("layer{stage}.{i}"), |b| block(b, h, stride, &plan))?;
        }
    }
    let pooled = b.block("GlobalAvgPool", h, &[], "")?;
    b.block("Linear", pooled, &[], "fc")
}

/// One residual block in the current scope ("layer2.0").
fn block(b: &mut Builder, x: ValueId, stride: usize, plan: &Plan) -> Result<ValueId> {
    let shortcut = downsample(b, x, stride)?.unwrap_or(x);
    let relu = Activation::Relu;
    let h = match plan.net.block {
        Block::Basic => conv_bn(b, x, ["conv1", "bn1"], stride, relu, None)?,
        Block::Bottleneck => {
            let h = conv_bn(b, x, ["conv1", "bn1"], 1, relu, None)?;
            conv_bn(b, h, ["conv2", "bn2"], stride, relu, None)?
        }
        Block::SkBasic => sk(b, x, stride, plan, "conv1")?,
        Block::SkBottleneck => {
            let h = conv_bn(b, x, ["conv1.conv", "conv1.bn"], 1, relu, None)?;
            sk(b, h, stride, plan, "conv2")?
        }
    };
    let last = match plan.net.block {
        Block::Basic => ["conv2", "bn2"],
        Block::Bottleneck => ["conv3", "bn3"],
        Block::SkBasic => ["conv2.conv", "conv2.bn"],
        Block::SkBottleneck => ["conv3.conv", "conv3.bn"],
    };
    match plan.attn {
        // relu(bn(conv(h)) + shortcut): one dispatch.
        Attn::None => conv_bn(b, h, last, 1, relu, Some(shortcut)),
        attn => {
            let h = conv_bn(b, h, last, 1, Activation::None, None)?;
            b.scope("se", |b| attention(b, h, attn, shortcut))
        }
    }
}

/// relu(attn(h) + shortcut) for the attention layer under `se`.
fn attention(b: &mut Builder, h: ValueId, attn: Attn, shortcut: ValueId) -> Result<ValueId> {
    match attn {
        Attn::Cbam | Attn::LightCbam => {
            let light = attn == Attn::LightCbam;
            let name = if light { "timm.LightCbamModule" } else { "timm.CbamModule" };
            let mut args = Args::none(name);
            cbam_module(b, h, &mut args, light, Some(shortcut))
        }
        Attn::NonLocal => {
            let z = b.block("timm.NonLocalAttn", h, &[], "")?;
            let sum = b.graph.add(Eltwise::Add, &[z, shortcut])?;
            b.graph.add(Eltwise::Relu, &[sum])
        }
        Attn::None => unreachable!("blocks without attention add no se"),
    }
}

/// timm's SelectiveKernel under `name` with the network's sk_kwargs.
fn sk(b: &mut Builder, x: ValueId, stride: usize, plan: &Plan, name: &str) -> Result<ValueId> {
    let mut args = plan.sk_args.clone();
    args.push(format!("stride={stride}"));
    b.block("timm.SelectiveKernel", x, &args, name)
}

/// The shortcut's downsample: `downsample.0` conv + `downsample.1` BN, or
/// (avg_down) a 2x2 ceil-mode average pool then `downsample.1` conv + `.2` BN.
fn downsample(b: &mut Builder, x: ValueId, stride: usize) -> Result<Option<ValueId>> {
    if b.weights.has("downsample.0.weight") {
        return conv_bn(b, x, ["downsample.0", "downsample.1"], stride, Activation::None, None).map(Some);
    }
    if !b.weights.has("downsample.1.weight") {
        return Ok(None);
    }
    let pooled = if stride > 1 { avg_down(b, x, stride)? } else { x };
    conv_bn(b, pooled, ["downsample.1", "downsample.2"], 1, Activation::None, None).map(Some)
}

/// timm's `nn.AvgPool2d(2, stride, ceil_mode=True, count_include_pad=False)`:
/// an odd last row or column is averaged over its real elements only.
fn avg_down(b: &mut Builder, x: ValueId, stride: usize) -> Result<ValueId> {
    let pool = AvgPool2d::new([2, 2]).with_stride([stride, stride]).with_ceil_mode(true).with_count_include_pad(false);
    b.graph.add(pool, &[x])
}
