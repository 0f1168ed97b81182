//! Selective kernel (branch attention): the tutorial's SKConv and timm's
//! SelectiveKernel.
//!
//! The canonical graph is single ops: branch convs, BatchNorm affines, ReLUs,
//! adds, global pool, GEMMs, softmax, weighted sum. The fusion pass folds each
//! branch's BN + ReLU into its conv, and its SK rules (src/graph/fuse/sk.rs)
//! make the branch sum + global average one kernel and the attention MLP +
//! softmax over branches another.

use super::layers::{global_average, post};
use super::{make_divisible, map, param, Arch, Args, Builder, MapKind};
use crate::graph::ValueId;
use crate::ops::conv2d::Conv2d;
use crate::ops::eltwise::Eltwise;
use crate::ops::matmul::Matmul;
use crate::ops::narrow::Narrow;
use crate::ops::softmax::Softmax;
use crate::ops::weighted_sum::{WeightedSum, MAX_BRANCHES};
use crate::ops::Activation;
use crate::weights::Weights;
use crate::{Error, Result, Tensor};

/// Branch i of SKConv is a (3 + 2i)-wide kernel.
pub(crate) const SK_CONV_BRANCHES: &[&str] = &["k=3", "k=5", "k=7", "k=9"];
/// Branch i of timm's SelectiveKernel (keep_3x3) is a 3x3 with dilation i + 1.
pub(crate) const TIMM_SK_BRANCHES: &[&str] =
    &["3x3, dilation 1", "3x3, dilation 2", "3x3, dilation 3", "3x3, dilation 4"];

pub const SK_CONV: Arch = Arch {
    name: "SKConv",
    about: "the tutorial's selective-kernel conv: branches k = 3, 5, .. (conv+BN+ReLU), fc, per-branch fcs, softmax",
    params: &[
        param("features", "from convs.0.0.weight"),
        param("M", "2 (checked: convs.{i} present)"),
        param("G", "32 (checked against convs.0.0.weight)"),
        param("r", "16 (checked: d = max(features // r, L) rows of fc.weight)"),
        param("stride", "1"),
        param("L", "32 (checked with r)"),
    ],
    maps: &[map("branch", MapKind::Branch, SK_CONV_BRANCHES)],
    pretrained: None,
    build: sk_conv,
    random_weights: Some(random_sk_conv),
};

pub const TIMM_SK: Arch = Arch {
    name: "timm.SelectiveKernel",
    about: "timm's SelectiveKernel: 3x3 paths with dilation 1, 2, .., fc_reduce + BN + ReLU, fc_select, softmax",
    params: &[
        param("in_channels", "from the input"),
        param("out_channels", "from paths.0.conv.weight"),
        param("kernel_size", "3,5 (one per path; one size K is K,K as in timm)"),
        param("stride", "1"),
        param("dilation", "1"),
        param("groups", "1 (checked against paths.0.conv.weight)"),
        param("rd_ratio", "1/16 (checked against attn.fc_reduce.weight)"),
        param("rd_channels", "from attn.fc_reduce.weight"),
        param("rd_divisor", "8"),
        param("keep_3x3", "true"),
        param("split_input", "true"),
        param("act_layer", "relu"),
        param("norm_layer", "batchnorm2d"),
        param("aa_layer", "none"),
        param("drop_layer", "none (training only)"),
    ],
    maps: &[map("attn", MapKind::Branch, TIMM_SK_BRANCHES)],
    pretrained: None,
    build: timm_sk,
    random_weights: Some(random_timm_sk),
};

/// One branch: a conv with its weights and folded BatchNorm.
struct Branch {
    conv: Conv2d,
    weight: Tensor,
    affine: Tensor,
}

/// The attention MLP's weights.
struct AttentionWeights {
    fc: Tensor,                  // [D, C]
    fc_affine: Tensor,           // [2, D]: the tutorial's fc bias, or timm's folded attn.bn
    select: Tensor,              // [M*C, D], path-major
    select_bias: Option<Tensor>, // [M*C]: the tutorial's fcs biases; timm's fc_select has none
    activation: Activation,
}

fn sk_conv(b: &mut Builder, x: ValueId, args: &mut Args) -> Result<ValueId> {
    let stride = args.usize("stride", 1)?;
    let [_, c, _, _] = b.graph.shape(x).nchw("SKConv", "input x")?;
    let given = args.opt_usize("features")?;
    args.inferred("features", given, c, "input x")?;
    let m = (0..).take_while(|i| b.weights.has(&format!("convs.{i}.0.weight"))).count();
    let given = args.opt_usize("M")?;
    args.inferred("M", given, m, "the convs.{i} in the weights")?;
    check_branches("SKConv", m)?;
    let mut branches = Vec::new();
    for i in 0..m {
        let name = format!("convs.{i}.0.weight");
        let dims = b.weights.dims(&name)?;
        let (k, per_group) = (3 + 2 * i, dims[1]);
        if per_group == 0 || c % per_group != 0 {
            return Err(Error::invalid(
                "SKConv",
                format!("'{name}' is {dims:?}: {c} channels are not a multiple of {per_group}"),
            ));
        }
        let weight = b.weights.expect(&name, &[c, per_group, k, k])?;
        let bias = b.weights.expect(&format!("convs.{i}.0.bias"), &[c])?;
        let affine = b.weights.batchnorm(&format!("convs.{i}.1"), c, Some(&bias))?;
        let conv = Conv2d::new().stride([stride, stride]).padding([1 + i, 1 + i]).groups(c / per_group);
        branches.push(Branch { conv, weight, affine });
    }
    let per_group = b.weights.dims("convs.0.0.weight")?[1];
    let given = args.opt_usize("G")?;
    args.inferred("G", given, c / per_group.max(1), "convs.0.0.weight")?;
    let d = b.weights.dims("fc.weight")?[0];
    let (r, l) = (args.opt_usize("r")?, args.opt_usize("L")?);
    if r.is_some() || l.is_some() {
        let (r, l) = (r.unwrap_or(16).max(1), l.unwrap_or(32));
        let want = (c / r).max(l);
        if want != d {
            return Err(args.contradiction(
                "r",
                &r,
                format!("max({c} // {r}, L={l}) = {want}, fc.weight has {d} rows"),
            ));
        }
    }
    let fc = b.weights.expect("fc.weight", &[d, c])?;
    let fc_bias = b.weights.expect("fc.bias", &[d])?;
    let mut select = Vec::new();
    let mut select_bias = Vec::new();
    for i in 0..m {
        select.extend_from_slice(b.weights.expect(&format!("fcs.{i}.weight"), &[c, d])?.data());
        select_bias.extend_from_slice(b.weights.expect(&format!("fcs.{i}.bias"), &[c])?.data());
    }
    let attention = AttentionWeights {
        fc,
        fc_affine: Weights::bias_affine(&fc_bias)?,
        select: Tensor::from_vec(&[m * c, d], select)?,
        select_bias: Some(Tensor::from_vec(&[m * c], select_bias)?),
        activation: Activation::None,
    };
    let inputs = vec![x; m];
    select_branches(b, &inputs, branches, attention, "branch")
}

fn timm_sk(b: &mut Builder, x: ValueId, args: &mut Args) -> Result<ValueId> {
    let mut kernel_sizes = args.usizes("kernel_size", &[3, 5])?;
    // timm's _kernel_valid runs first, so an even size is named before the branch count.
    if let Some(k) = kernel_sizes.iter().find(|&&k| k % 2 == 0 || k < 3) {
        return Err(Error::invalid("timm.SelectiveKernel", format!("kernel_size {k} must be odd and at least 3")));
    }
    // timm: `if not isinstance(kernel_size, list): kernel_size = [kernel_size] * 2`.
    if let [k] = kernel_sizes[..] {
        kernel_sizes = vec![k, k];
    }
    let stride = args.usize("stride", 1)?;
    let dilation = args.usize("dilation", 1)?;
    let keep_3x3 = args.bool("keep_3x3", true)?;
    let split_input = args.bool("split_input", true)?;
    args.choice("act_layer", &["relu"])?;
    args.choice("norm_layer", &["batchnorm2d", "batchnorm"])?;
    args.choice("aa_layer", &["none"])?;
    args.training_only("drop_layer");
    let m = kernel_sizes.len();
    check_branches("timm.SelectiveKernel", m)?;
    let [_, c_in, _, _] = b.graph.shape(x).nchw("timm.SelectiveKernel", "input x")?;
    if split_input && c_in % m != 0 {
        return Err(Error::invalid(
            "timm.SelectiveKernel",
            format!("split_input needs {c_in} input channels divisible by {m} paths"),
        ));
    }
    let given = args.opt_usize("in_channels")?;
    args.inferred("in_channels", given, c_in, "input x")?;
    let path_in = if split_input { c_in / m } else { c_in };
    let c = b.weights.dims("paths.0.conv.weight")?[0];
    let given = args.opt_usize("out_channels")?;
    args.inferred("out_channels", given, c, "paths.0.conv.weight")?;
    let per_group = b.weights.dims("paths.0.conv.weight")?[1];
    let given = args.opt_usize("groups")?;
    args.inferred("groups", given, path_in / per_group.max(1), "paths.0.conv.weight")?;
    let mut branches = Vec::new();
    let mut inputs = Vec::new();
    for (i, &k) in kernel_sizes.iter().enumerate() {
        // timm: keep_3x3 turns kernel k into a 3x3 with dilation (k - 1) / 2.
        let (kernel, dil) = if keep_3x3 { (3, dilation * (k - 1) / 2) } else { (k, dilation) };
        let name = format!("paths.{i}.conv.weight");
        let per_group = b.weights.dims(&name)?[1];
        if per_group == 0 || path_in % per_group != 0 {
            return Err(Error::invalid(
                "timm.SelectiveKernel",
                format!("'{name}': {path_in} input channels per path are not a multiple of {per_group}"),
            ));
        }
        let weight = b.weights.expect(&name, &[c, per_group, kernel, kernel])?;
        let affine = b.weights.batchnorm(&format!("paths.{i}.bn"), c, None)?;
        let pad = ((stride - 1) + dil * (kernel - 1)) / 2; // timm's get_padding
        let conv =
            Conv2d::new().stride([stride, stride]).padding([pad, pad]).dilation([dil, dil]).groups(path_in / per_group);
        branches.push(Branch { conv, weight, affine });
        inputs.push(if split_input { b.graph.add(Narrow { first: i * path_in, count: path_in }, &[x])? } else { x });
    }
    let d = b.weights.dims("attn.fc_reduce.weight")?[0];
    let given = args.opt_usize("rd_channels")?;
    args.inferred("rd_channels", given, d, "attn.fc_reduce.weight")?;
    let (rd_ratio, rd_divisor) = (args.opt_f32("rd_ratio")?, args.opt_usize("rd_divisor")?);
    if given.is_none() && (rd_ratio.is_some() || rd_divisor.is_some()) {
        let (ratio, divisor) = (rd_ratio.unwrap_or(1.0 / 16.0), rd_divisor.unwrap_or(8));
        let want = make_divisible(c as f64 * ratio as f64, divisor, 0.9);
        if want != d {
            let why = format!("make_divisible({c} * {ratio}, {divisor}) = {want}, attn.fc_reduce has {d}");
            return Err(args.contradiction("rd_ratio", &ratio, why));
        }
    }
    let fc = b.weights.expect("attn.fc_reduce.weight", &[d, c, 1, 1])?.reshape(&[d, c])?;
    let fc_affine = b.weights.batchnorm("attn.bn", d, None)?;
    let select = b.weights.expect("attn.fc_select.weight", &[m * c, d, 1, 1])?.reshape(&[m * c, d])?;
    let attention = AttentionWeights { fc, fc_affine, select, select_bias: None, activation: Activation::Relu };
    select_branches(b, &inputs, branches, attention, "attn")
}

fn check_branches(arch: &str, m: usize) -> Result<()> {
    if !(2..=MAX_BRANCHES).contains(&m) {
        return Err(Error::invalid(arch, format!("{m} branches found; glimpse supports 2 to {MAX_BRANCHES}")));
    }
    Ok(())
}

/// The branch convs, the attention over branches (map `map_name`, [N, M, C])
/// and the weighted sum.
fn select_branches(
    b: &mut Builder,
    inputs: &[ValueId],
    branches: Vec<Branch>,
    att: AttentionWeights,
    map_name: &str,
) -> Result<ValueId> {
    let m = branches.len();
    let mut outs = Vec::new();
    for (branch, &input) in branches.into_iter().zip(inputs) {
        let w = b.constant(branch.weight);
        let y = b.graph.add(branch.conv, &[input, w])?;
        outs.push(post(b, y, Some(branch.affine), None, Activation::Relu)?);
    }
    let [n, c, _, _] = b.graph.shape(outs[0]).nchw("selective kernel", "branch")?;
    let d = att.fc.shape().dims()[0];

    let mut u = outs[0];
    for &o in &outs[1..] {
        u = b.graph.add(Eltwise::Add, &[u, o])?;
    }
    let s = global_average(b, u)?; // [N, C, 1, 1]

    let s = b.graph.view(s, &[1, n, c])?;
    let fc = b.constant(att.fc.reshape(&[1, d, c])?);
    let z = b.graph.add(Matmul::new(false, true), &[s, fc])?;
    let z = b.graph.view(z, &[n, d])?;
    let z = post(b, z, Some(att.fc_affine), None, att.activation)?;
    let z = b.graph.view(z, &[1, n, d])?;
    let select = b.constant(att.select.reshape(&[1, m * c, d])?);
    let logits = b.graph.add(Matmul::new(false, true), &[z, select])?;
    let logits = b.graph.view(logits, &[n, m * c])?;
    let bias = att.select_bias.as_ref().map(Weights::bias_affine).transpose()?;
    let logits = post(b, logits, bias, None, Activation::None)?;
    let logits = b.graph.view(logits, &[n, m, c])?;
    let weights = b.graph.add(Softmax { axis: 1 }, &[logits])?;
    b.map(map_name, weights);
    let mut sum_inputs = outs;
    sum_inputs.push(weights);
    b.graph.add(WeightedSum { branches: m }, &sum_inputs)
}

/// Random weights of timm's SelectiveKernel(in_channels, in_channels), the benchmark's.
fn random_timm_sk(args: &[String], rng: &mut fastrand::Rng) -> Result<crate::tensorfile::TensorFile> {
    let c = super::random_width("timm.SelectiveKernel", "in_channels", args)?;
    let mut f = crate::weights::RandomStateDict::new(rng);
    // Two 3 x 3 paths (dilation 1 and 2), each seeing half the input channels.
    let rd = (c / 16).div_ceil(8).max(1) * 8;
    for i in 0..2 {
        f.conv(&format!("paths.{i}.conv"), [c, c / 2, 3, 3], false)?;
        f.batchnorm(&format!("paths.{i}.bn"), c)?;
    }
    f.conv("attn.fc_reduce", [rd, c, 1, 1], false)?;
    f.batchnorm("attn.bn", rd)?;
    f.conv("attn.fc_select", [2 * c, rd, 1, 1], false)?;
    Ok(f.finish())
}

/// Random weights of SKConv(features, M=2, G=32, r=16, L=32), the benchmark's.
fn random_sk_conv(args: &[String], rng: &mut fastrand::Rng) -> Result<crate::tensorfile::TensorFile> {
    let c = super::random_width("SKConv", "features", args)?;
    let mut f = crate::weights::RandomStateDict::new(rng);
    let (groups, d) = (32.min(c), (c / 16).max(32));
    for i in 0..2 {
        f.conv(&format!("convs.{i}.0"), [c, c / groups, 3 + 2 * i, 3 + 2 * i], true)?;
        f.batchnorm(&format!("convs.{i}.1"), c)?;
        f.linear(&format!("fcs.{i}"), c, d)?;
    }
    f.linear("fc", d, c)?;
    Ok(f.finish())
}
