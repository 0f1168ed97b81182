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

mod random;

use crate::blocks::{
    cbam_module, conv_bn, map, param, Arch, Args, Builder, MapKind, MapSpec, Param, Pretrained, IMAGENET_MEAN,
    IMAGENET_STD, TIMM_SK_BRANCHES,
};
use crate::graph::ValueId;
use crate::ops::avg_pool2d::AvgPool2d;
use crate::ops::eltwise::Eltwise;
use crate::ops::max_pool2d::MaxPool2d;
use crate::ops::Activation;
use crate::{Error, Result};

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

/// What the whole network's blocks share.
struct Plan<'a> {
    net: &'a Net,
    attn: Attn,
    sk_args: Vec<String>,
}

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

/// How many blocks stage `stage` has in the weights.
fn blocks_in(b: &Builder, stage: usize) -> usize {
    (0..).take_while(|i| b.weights.any_under(&format!("layer{stage}.{i}."))).count()
}

/// The attention layer the weights hold in every block (read from layer1.0.se).
fn attn_in_weights(b: &Builder) -> Attn {
    if b.weights.has("layer1.0.se.t.weight") {
        Attn::NonLocal
    } else if b.weights.has("layer1.0.se.spatial.conv.conv.weight") {
        let light = b.weights.dims("layer1.0.se.spatial.conv.conv.weight").is_ok_and(|d| d.get(1) == Some(&1));
        if light {
            Attn::LightCbam
        } else {
            Attn::Cbam
        }
    } else {
        Attn::None
    }
}

/// Reads every argument, checks those the weights reveal, and refuses the
/// options glimpse does not implement (naming them).
fn check_args<'a>(b: &Builder, x: ValueId, args: &mut Args, net: &'a Net) -> Result<Plan<'a>> {
    let arch = format!("timm.{}", net.name);
    let unsupported = |what: &str| Err(Error::invalid(&arch, format!("{what} is not supported")));
    let layers: Vec<usize> = (1..=4).map(|s| blocks_in(b, s)).collect();
    let want = args.usizes("layers", &net.layers)?;
    if want != layers {
        let why = format!("the weights have {layers:?} blocks per stage, timm.{} has {want:?}", net.name);
        return Err(Error::invalid(&arch, format!("{why}: these are the weights of another depth")));
    }
    let deep = b.weights.has("conv1.0.weight");
    let stem = if deep { "deep" } else { "" };
    let want_stem = args.raw_str("stem_type", if net.deep_stem { "deep" } else { "" })?;
    let want_stem = want_stem.trim_matches(|c| c == '\'' || c == '"');
    if want_stem != stem {
        let found = if deep { "a deep stem (conv1.0.weight)" } else { "a 7x7 stem (conv1.weight)" };
        return Err(Error::invalid(&arch, format!("stem_type='{want_stem}' but the weights have {found}")));
    }
    let avg = b.weights.has("layer2.0.downsample.1.weight") && !b.weights.has("layer2.0.downsample.0.weight");
    let given = args.opt_bool("avg_down")?;
    args.inferred("avg_down", given.or(Some(net.avg_down)), avg, "layer2.0.downsample.*")?;
    let attn = attn_in_weights(b);
    let given = args.raw_str("attn_layer", attn.name())?;
    let given = given.trim_matches(|c| c == '\'' || c == '"').to_lowercase();
    let given = if given == "null" || given.is_empty() { "none".to_string() } else { given };
    if !Attn::NAMES.iter().any(|(n, _)| *n == given) {
        return Err(Error::invalid(&arch, format!("attn_layer={given}: expected one of cbam, lcbam, nl, none")));
    }
    args.inferred("attn_layer", Some(given.as_str()), attn.name(), "layer1.0.se.*")?;
    let [_, in_chans, _, _] = b.graph.shape(x).nchw(&arch, "input x")?;
    let given = args.opt_usize("in_chans")?;
    args.inferred("in_chans", given, in_chans, "input x")?;
    let classes = b.weights.dims("fc.weight")?[0];
    let given = args.opt_usize("num_classes")?;
    args.inferred("num_classes", given, classes, "fc.weight")?;
    if let Some(channels) = args.given("channels").then(|| args.usizes("channels", &[])).transpose()? {
        let found: Vec<usize> = (1..=4).map(|s| stage_planes(b, s, net.block)).collect::<Result<_>>()?;
        if channels != found {
            return Err(args.contradiction(
                "channels",
                &format!("{channels:?}"),
                format!("the weights have {found:?}"),
            ));
        }
    } else {
        args.usizes("channels", &[])?;
    }
    let stem_width = b.weights.dims(if deep { "conv1.0.weight" } else { "conv1.weight" })?[0];
    let given = args.opt_usize("stem_width")?;
    if deep {
        args.inferred("stem_width", given, stem_width, "conv1.0.weight")?;
    }
    let cardinality = args.usize("cardinality", net.cardinality)?;
    let base_width = args.usize("base_width", net.base_width)?;
    if (cardinality, base_width) != (net.cardinality, net.base_width) {
        let first = b.weights.dims(bottleneck_conv1(net.block))?;
        let planes = stage_planes(b, 1, net.block)?;
        let width = planes * base_width / 64 * cardinality;
        if matches!(net.block, Block::Bottleneck | Block::SkBottleneck) && first[0] != width {
            let why = format!("{planes} * {base_width} / 64 * {cardinality} = {width}, layer1.0 has {}", first[0]);
            return Err(args.contradiction("base_width", &base_width, why));
        }
    }
    if args.usize("output_stride", 32)? != 32 {
        return unsupported("output_stride other than 32 (dilated stages)");
    }
    if args.usize("block_reduce_first", 1)? != 1 || args.usize("down_kernel_size", 1)? != 1 {
        return unsupported("block_reduce_first or down_kernel_size other than 1");
    }
    if args.bool("replace_stem_pool", false)? {
        return unsupported("replace_stem_pool=true");
    }
    args.choice("global_pool", &["avg"])?;
    args.choice("act_layer", &["relu"])?;
    args.choice("norm_layer", &["batchnorm2d", "batchnorm"])?;
    args.choice("aa_layer", &["none"])?;
    for key in ["drop_rate", "drop_path_rate", "drop_block_rate", "zero_init_last"] {
        args.training_only(key);
    }
    let mut sk_args: Vec<String> = net.sk_args.iter().map(|s| s.to_string()).collect();
    for key in ["rd_ratio", "rd_divisor", "split_input"] {
        if let Some(v) = args.given(key).then(|| args.raw_str(key, "")).transpose()? {
            if net.sk_args.is_empty() {
                return Err(Error::invalid(&arch, format!("{key} is an SK net's sk_kwargs argument")));
            }
            sk_args.retain(|a| !a.starts_with(&format!("{key}=")));
            sk_args.push(format!("{key}={v}"));
        } else {
            args.training_only(key);
        }
    }
    Ok(Plan { net, attn, sk_args })
}

/// timm's `planes` of stage `stage`, read from its first block.
fn stage_planes(b: &Builder, stage: usize, block: Block) -> Result<usize> {
    let last = match block {
        Block::Basic => "conv2.weight",
        Block::SkBasic => "conv2.conv.weight",
        Block::Bottleneck => "conv3.weight",
        Block::SkBottleneck => "conv3.conv.weight",
    };
    let out = b.weights.dims(&format!("layer{stage}.0.{last}"))?[0];
    Ok(if matches!(block, Block::Bottleneck | Block::SkBottleneck) { out / 4 } else { out })
}

fn bottleneck_conv1(block: Block) -> &'static str {
    match block {
        Block::SkBottleneck | Block::SkBasic => "layer1.0.conv1.conv.weight",
        Block::Bottleneck | Block::Basic => "layer1.0.conv1.weight",
    }
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
            b.graph.add(Eltwise::AddRelu, &[z, shortcut])
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
