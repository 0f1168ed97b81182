//! Random weights for a network under timm's state_dict names and shapes, as
//! `timm.create_model(name, **kwargs)` would lay them out (the benchmark runs
//! full-width networks without a download). A test checks every name and
//! shape against the 18 timm fixtures and the hub's skresnet18 key set, so
//! this mirror of timm's constructors cannot drift from the builder.

use super::{Attn, Block, Net};
use crate::blocks::{make_divisible, Args};
use crate::tensorfile::TensorFile;
use crate::weights::RandomStateDict;
use crate::Result;
use fastrand::Rng;

/// timm's SelectiveKernel(in, out, groups, **sk_kwargs) under `p`.
struct Sk {
    rd_ratio: f32,
    rd_divisor: usize,
    split_input: bool,
}

impl Sk {
    fn add(&self, m: &mut RandomStateDict, p: &str, c_in: usize, c_out: usize, groups: usize) -> Result<()> {
        let path_in = if self.split_input { c_in / 2 } else { c_in };
        let groups = groups.min(c_out);
        for i in 0..2 {
            m.conv_bn(&format!("{p}.paths.{i}.conv"), &format!("{p}.paths.{i}.bn"), [c_out, path_in / groups, 3, 3])?;
        }
        let rd = make_divisible(c_out as f64 * self.rd_ratio as f64, self.rd_divisor, 0.9);
        m.conv_bn(&format!("{p}.attn.fc_reduce"), &format!("{p}.attn.bn"), [rd, c_out, 1, 1])?;
        m.conv(&format!("{p}.attn.fc_select"), [2 * c_out, rd, 1, 1], false)
    }
}

/// The attention layer `attn` over `c` channels under `p` (timm's create_attn defaults).
fn attention(m: &mut RandomStateDict, p: &str, attn: Attn, c: usize) -> Result<()> {
    match attn {
        Attn::None => Ok(()),
        Attn::Cbam | Attn::LightCbam => {
            let rd = make_divisible(c as f64 / 16.0, 1, 0.0);
            m.conv(&format!("{p}.channel.fc1"), [rd, c, 1, 1], false)?;
            m.conv(&format!("{p}.channel.fc2"), [c, rd, 1, 1], false)?;
            let inputs = if attn == Attn::Cbam { 2 } else { 1 };
            m.conv_bn(&format!("{p}.spatial.conv.conv"), &format!("{p}.spatial.conv.bn"), [1, inputs, 7, 7])
        }
        Attn::NonLocal => {
            let rd = make_divisible(c as f64 / 8.0, 8, 0.9);
            for name in ["t", "p", "g"] {
                m.conv(&format!("{p}.{name}"), [rd, c, 1, 1], true)?;
            }
            m.conv(&format!("{p}.z"), [c, rd, 1, 1], true)?;
            m.batchnorm(&format!("{p}.norm"), c)
        }
    }
}

/// A random state_dict of `net` built with the constructor arguments `args`
/// (channels, stem_width, num_classes, in_chans, attn_layer, cardinality,
/// base_width, rd_ratio, rd_divisor, split_input; timm's defaults otherwise).
pub(super) fn state_dict(net: &Net, items: &[String], rng: &mut Rng) -> Result<TensorFile> {
    let arch = format!("timm.{}", net.name);
    // The model's own sk_kwargs, unless the arguments override them.
    let given = |a: &str| items.iter().any(|i| i.split('=').next() == a.split('=').next());
    let mut all: Vec<String> = net.sk_args.iter().filter(|a| !given(a)).map(|s| s.to_string()).collect();
    all.extend_from_slice(items);
    let mut args = Args::parse(&arch, &all)?;
    let channels = args.usizes("channels", &[64, 128, 256, 512])?;
    let stem_width = args.usize("stem_width", if net.deep_stem { 32 } else { 64 })?;
    let classes = args.usize("num_classes", 1000)?;
    let in_chans = args.usize("in_chans", 3)?;
    let cardinality = args.usize("cardinality", net.cardinality)?;
    let base_width = args.usize("base_width", net.base_width)?;
    let attn = args.raw_str("attn_layer", "none")?;
    let attn = Attn::NAMES.iter().find(|(n, _)| *n == attn).map_or(Attn::None, |(_, a)| *a);
    let sk = Sk {
        rd_ratio: args.f32("rd_ratio", 1.0 / 16.0)?,
        rd_divisor: args.usize("rd_divisor", 8)?,
        split_input: args.bool("split_input", true)?,
    };
    args.finish()?;
    let mut m = RandomStateDict::new(rng);
    // The stem: timm keeps 64 channels for the 7x7 stem whatever stem_width says.
    let mut inplanes = if net.deep_stem {
        m.conv_bn("conv1.0", "conv1.1", [stem_width, in_chans, 3, 3])?;
        m.conv_bn("conv1.3", "conv1.4", [stem_width, stem_width, 3, 3])?;
        m.conv_bn("conv1.6", "bn1", [2 * stem_width, stem_width, 3, 3])?;
        2 * stem_width
    } else {
        m.conv_bn("conv1", "bn1", [64, in_chans, 7, 7])?;
        64
    };
    let expansion = if matches!(net.block, Block::Bottleneck | Block::SkBottleneck) { 4 } else { 1 };
    for (stage, (&planes, &depth)) in channels.iter().zip(&net.layers).enumerate() {
        let out = planes * expansion;
        for i in 0..depth {
            let p = format!("layer{}.{i}", stage + 1);
            let first_stride = stage > 0 && i == 0;
            if i == 0 && (first_stride || inplanes != out) {
                if net.avg_down {
                    m.conv_bn(&format!("{p}.downsample.1"), &format!("{p}.downsample.2"), [out, inplanes, 1, 1])?;
                } else {
                    m.conv_bn(&format!("{p}.downsample.0"), &format!("{p}.downsample.1"), [out, inplanes, 1, 1])?;
                }
            }
            let width = planes * base_width / 64 * cardinality;
            let c = |n: &str| format!("{p}.{n}");
            match net.block {
                Block::Basic => {
                    m.conv_bn(&c("conv1"), &c("bn1"), [planes, inplanes, 3, 3])?;
                    m.conv_bn(&c("conv2"), &c("bn2"), [out, planes, 3, 3])?;
                }
                Block::Bottleneck => {
                    m.conv_bn(&c("conv1"), &c("bn1"), [width, inplanes, 1, 1])?;
                    m.conv_bn(&c("conv2"), &c("bn2"), [width, width / cardinality, 3, 3])?;
                    m.conv_bn(&c("conv3"), &c("bn3"), [out, width, 1, 1])?;
                }
                Block::SkBasic => {
                    sk.add(&mut m, &c("conv1"), inplanes, planes, 1)?;
                    m.conv_bn(&c("conv2.conv"), &c("conv2.bn"), [out, planes, 3, 3])?;
                }
                Block::SkBottleneck => {
                    m.conv_bn(&c("conv1.conv"), &c("conv1.bn"), [width, inplanes, 1, 1])?;
                    sk.add(&mut m, &c("conv2"), width, width, cardinality)?;
                    m.conv_bn(&c("conv3.conv"), &c("conv3.bn"), [out, width, 1, 1])?;
                }
            }
            attention(&mut m, &c("se"), attn, out)?;
            inplanes = out;
        }
    }
    m.linear("fc", classes, inplanes)?;
    Ok(m.finish())
}
