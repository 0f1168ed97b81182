//! Reading a network's constructor arguments against its weights: what the
//! weights reveal (depths, widths, classes, stem, downsample, attention layer)
//! is read from them, a user's argument that contradicts them is an error
//! naming both, and options glimpse does not implement are refused by name.

use super::{Attn, Block, Net};
use crate::blocks::{Args, Builder};
use crate::graph::ValueId;
use crate::{Error, Result};

/// What the whole network's blocks share.
pub(super) struct Plan<'a> {
    pub(super) net: &'a Net,
    pub(super) attn: Attn,
    pub(super) sk_args: Vec<String>,
}

/// How many blocks stage `stage` has in the weights.
pub(super) fn blocks_in(b: &Builder, stage: usize) -> usize {
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
pub(super) fn check_args<'a>(b: &Builder, x: ValueId, args: &mut Args, net: &'a Net) -> Result<Plan<'a>> {
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
