//! Non-local blocks (embedded Gaussian, Wang et al. 2018): the tutorial's NonLocal and timm's
//! NonLocalAttn. Both compute z = W(y) + x with y = softmax_k(scale * theta^T phi) g.
//!
//! The canonical graph is single ops: one 1x1 GEMM + bias affine per conv, max pools, scores =
//! theta^T phi as a GEMM (scaled by an affine when the scale is not 1), softmax over keys, y = f g
//! as a GEMM, the W GEMM, its BatchNorm affine and the residual add. Memory O(HW^2): where the
//! N x Q x K scores exceed the device's binding limit, an unfused plan fails with
//! [`crate::Error::TooLarge`]. The fusion pass (src/graph/fuse/nonlocal.rs) makes it the flash
//! attention kernel (online softmax: the Q x K matrix is never stored), theta, phi and g one GEMM
//! with stacked weights (channel windows cut out by narrow after one 2x2 max pool when
//! sub-sampled), and W (+ BN) + residual one GEMM epilogue. Memory O(HW * C).
//!
//! Map `attention` [N, queries, Hk, Wk]: the softmax rows of the query pixels (x, y) in
//! [`Builder::queries`] (the center pixel (W / 2, H / 2) when none are given) over the key grid
//! Hk x Wk (H / 2 x W / 2, floored, when sub-sampled).

use super::layers::post;
use super::{make_divisible, map, param, Arch, Args, Builder, MapKind};
use crate::graph::ValueId;
use crate::ops::attention_rows::AttentionRows;
use crate::ops::matmul::Matmul;
use crate::ops::max_pool2d::MaxPool2d;
use crate::ops::softmax::Softmax;
use crate::ops::{Activation, Epilogue};
use crate::weights::Weights;
use crate::{Error, Result, Tensor};

/// The tutorial's NonLocal block (the reference code's `_NonLocalBlockND`, 2-D, embedded Gaussian).
pub const NON_LOCAL: Arch = Arch {
    name: "NonLocal",
    about: "the tutorial's embedded-Gaussian Non-local block: theta, phi, g 1x1 convs, softmax(theta^T phi) g, \
            W (+BN) + x; map rows for --query X,Y pixels (default: the center pixel W/2,H/2)",
    params: &[
        param("in_channels", "from theta.weight"),
        param("inter_channels", "in_channels // 2 (checked against theta.weight)"),
        param("dimension", "2 (only 2)"),
        param("sub_sample", "true (checked: phi.0 vs phi)"),
        param("bn_layer", "true (checked: W.1 present)"),
    ],
    maps: &[map("attention", MapKind::Attention, &[])],
    pretrained: None,
    build: non_local,
    random_weights: Some(random_non_local),
};

/// timm's `timm.layers.non_local_attn.NonLocalAttn`.
pub const TIMM_NON_LOCAL: Arch = Arch {
    name: "timm.NonLocalAttn",
    about: "timm's NonLocalAttn: t, p, g 1x1 convs, softmax(C^-0.5 t^T p) g, z conv + BN + x; map rows for \
            --query X,Y pixels (default: the center pixel W/2,H/2)",
    params: &[
        param("in_channels", "from t.weight"),
        param("use_scale", "true"),
        param("rd_ratio", "1/8 (checked against t.weight)"),
        param("rd_channels", "from t.weight"),
        param("rd_divisor", "8"),
    ],
    maps: &[map("attention", MapKind::Attention, &[])],
    pretrained: None,
    build: timm_non_local,
    random_weights: Some(random_timm_non_local),
};

/// A 1x1 conv with bias: weight [Cout, Cin], bias [Cout].
struct Conv {
    weight: Tensor,
    bias: Tensor,
}

/// A block's weights in the layout the graph uses.
struct NonLocalWeights {
    theta: Conv,
    phi: Conv,
    g: Conv,
    /// W (timm: z) as [C, inter].
    out: Tensor,
    /// W's bias, or W's bias folded into the BatchNorm after it, as an epilogue affine [2, C].
    out_affine: Tensor,
    /// Multiplies every score.
    scale: f64,
    /// phi and g pass a 2x2 max pool.
    sub_sample: bool,
}

fn non_local(b: &mut Builder, x: ValueId, args: &mut Args) -> Result<ValueId> {
    let arch = "NonLocal";
    let sub_sample = args.bool("sub_sample", true)?;
    let [_, c, _, _] = b.graph.shape(x).nchw(arch, "input x")?;
    // The reference code wraps phi and g in nn.Sequential(conv, MaxPool2d) when sub-sampling.
    let (found, want) = if sub_sample { ("phi.weight", "phi.0.weight") } else { ("phi.0.weight", "phi.weight") };
    if !b.weights.has(want) && b.weights.has(found) {
        let hint = if sub_sample { "a block built with sub_sample=False" } else { "a sub-sampled block" };
        return Err(Error::invalid(
            arch,
            format!(
                "sub_sample={sub_sample} expects '{want}', but the weights hold '{found}' ({hint}): \
                 pass sub_sample={}",
                !sub_sample
            ),
        ));
    }
    let sub = if sub_sample { ".0" } else { "" };
    let theta = conv1x1(b, arch, "theta", c, None)?;
    let inter = theta.weight.shape().dims()[0];
    let given = args.opt_usize("in_channels")?;
    args.inferred("in_channels", given, c, "input x")?;
    let given = args.opt_usize("inter_channels")?;
    args.inferred("inter_channels", given, inter, "theta.weight")?;
    if args.usize("dimension", 2)? != 2 {
        return Err(Error::invalid(arch, "dimension must be 2: glimpse runs 2-D Non-local blocks only"));
    }
    let given = args.opt_bool("bn_layer")?;
    args.inferred("bn_layer", given, b.weights.has("W.1.weight"), "W.1.weight present")?;
    let phi = conv1x1(b, arch, &format!("phi{sub}"), c, Some(inter))?;
    let g = conv1x1(b, arch, &format!("g{sub}"), c, Some(inter))?;
    let (out, out_affine) = if b.weights.has("W.0.weight") {
        let w = conv1x1(b, arch, "W.0", inter, Some(c))?;
        (w.weight, b.weights.batchnorm("W.1", c, Some(&w.bias))?)
    } else {
        let w = conv1x1(b, arch, "W", inter, Some(c))?;
        (w.weight, Weights::bias_affine(&w.bias)?)
    };
    let weights = NonLocalWeights { theta, phi, g, out, out_affine, scale: 1.0, sub_sample };
    non_local_graph(b, x, arch, weights)
}

fn timm_non_local(b: &mut Builder, x: ValueId, args: &mut Args) -> Result<ValueId> {
    let arch = "timm.NonLocalAttn";
    let use_scale = args.bool("use_scale", true)?;
    let [_, c, _, _] = b.graph.shape(x).nchw(arch, "input x")?;
    let theta = conv1x1(b, arch, "t", c, None)?;
    let rd = theta.weight.shape().dims()[0];
    let given = args.opt_usize("in_channels")?;
    args.inferred("in_channels", given, c, "input x")?;
    let given = args.opt_usize("rd_channels")?;
    args.inferred("rd_channels", given, rd, "t.weight")?;
    let (rd_ratio, rd_divisor) = (args.opt_f32("rd_ratio")?, args.opt_usize("rd_divisor")?);
    if given.is_none() && (rd_ratio.is_some() || rd_divisor.is_some()) {
        let (ratio, divisor) = (rd_ratio.unwrap_or(1.0 / 8.0), rd_divisor.unwrap_or(8));
        let want = make_divisible(c as f64 * ratio as f64, divisor, 0.9);
        if want != rd {
            let why = format!("make_divisible({c} * {ratio}, {divisor}) = {want}, t.weight has {rd}");
            return Err(args.contradiction("rd_ratio", &ratio, why));
        }
    }
    let phi = conv1x1(b, arch, "p", c, Some(rd))?;
    let g = conv1x1(b, arch, "g", c, Some(rd))?;
    let z = conv1x1(b, arch, "z", rd, Some(c))?;
    let out_affine = b.weights.batchnorm("norm", c, Some(&z.bias))?;
    // timm: self.scale = in_channels ** -0.5 if use_scale else 1.0.
    let scale = if use_scale { (c as f64).powf(-0.5) } else { 1.0 };
    let weights = NonLocalWeights { theta, phi, g, out: z.weight, out_affine, scale, sub_sample: false };
    non_local_graph(b, x, arch, weights)
}

/// The 1x1 conv `{prefix}.weight` [Cout, cin, 1, 1] (Cout inferred when `cout` is None) and its bias.
fn conv1x1(b: &mut Builder, arch: &str, prefix: &str, cin: usize, cout: Option<usize>) -> Result<Conv> {
    let name = format!("{prefix}.weight");
    let cout = match cout {
        Some(co) => co,
        None => match b.weights.dims(&name)?[..] {
            [co, ci, 1, 1] if ci == cin && co > 0 => co,
            ref d => {
                let msg = format!("'{name}' is {d:?}, expected a 1x1 conv [inter, {cin}, 1, 1] over {cin} channels");
                return Err(Error::invalid(arch, msg));
            }
        },
    };
    let weight = b.weights.expect(&name, &[cout, cin, 1, 1])?.reshape(&[cout, cin])?;
    let bias = b.weights.expect(&format!("{prefix}.bias"), &[cout])?;
    Ok(Conv { weight, bias })
}

/// The flat indices y * W + x of the query pixels, checked against the H x W map.
fn query_pixels(b: &Builder, arch: &str, h: usize, w: usize) -> Result<Vec<usize>> {
    if b.queries.is_empty() {
        return Ok(vec![(h / 2) * w + w / 2]);
    }
    let mut flat = Vec::with_capacity(b.queries.len());
    for (i, &[qx, qy]) in b.queries.iter().enumerate() {
        // Pixel (x, y) of a [gh, gw] grid falls in cell (x * w / gw, y * h / gh) of this one.
        let (qx, qy) = match b.query_grid {
            Some([gh, gw]) if gh > 0 && gw > 0 => (qx * w / gw, qy * h / gh),
            _ => (qx, qy),
        };
        if qx >= w || qy >= h {
            return Err(Error::invalid(
                arch,
                format!(
                    "query {i} at pixel ({qx}, {qy}) is outside the {h} x {w} (H x W) map: X must be below {w} \
                     and Y below {h}"
                ),
            ));
        }
        flat.push(qy * w + qx);
    }
    Ok(flat)
}

/// Adds the block to the graph as single ops and returns z [N, C, H, W].
fn non_local_graph(b: &mut Builder, x: ValueId, arch: &str, nl: NonLocalWeights) -> Result<ValueId> {
    let [n, c, h, w] = b.graph.shape(x).nchw(arch, "input x")?;
    let inter = nl.theta.weight.shape().dims()[0];
    let queries = query_pixels(b, arch, h, w)?;
    if nl.sub_sample && (h < 2 || w < 2) {
        return Err(Error::invalid(
            arch,
            format!("sub_sample pools 2x2 and needs H, W >= 2, got x {}", b.graph.shape(x)),
        ));
    }
    // PyTorch's MaxPool2d(2) floors: an odd last row or column is dropped.
    let (hk, wk) = if nl.sub_sample { (h / 2, w / 2) } else { (h, w) };
    let (q, k) = (h * w, hk * wk);
    let x_flat = b.graph.view(x, &[n, c, q])?;
    let mut projections = Vec::new();
    for (i, conv) in [nl.theta, nl.phi, nl.g].into_iter().enumerate() {
        let weight = b.constant(conv.weight.reshape(&[1, inter, c])?);
        let v = b.graph.add(Matmul::conv1x1(Epilogue::NONE), &[weight, x_flat])?; // [N, inter, Q]
        let v = post(b, v, Some(Weights::bias_affine(&conv.bias)?), None, Activation::None)?;
        projections.push(if nl.sub_sample && i > 0 {
            let v = b.graph.view(v, &[n, inter, h, w])?;
            let pooled = b.graph.add(MaxPool2d::new([2, 2], [0, 0]), &[v])?;
            b.graph.view(pooled, &[n, inter, k])?
        } else {
            v
        });
    }
    let [theta, phi, g] = projections[..] else { unreachable!("three projections") };

    if b.maps {
        let rows = queries.len();
        let att = b.graph.add(AttentionRows { scale: nl.scale as f32, queries }, &[theta, phi])?;
        let att = b.graph.view(att, &[n, rows, hk, wk])?;
        b.map("attention", att);
    }

    let mut scores = b.graph.add(Matmul::new(true, false), &[theta, phi])?; // [N, Q, K]
    if nl.scale != 1.0 {
        // The same factor for every score: an affine over the query rows with scale s and shift 0.
        let scale = [vec![nl.scale as f32; q], vec![0.0; q]].concat();
        scores = post(b, scores, Some(Tensor::from_vec(&[2, q], scale)?), None, Activation::None)?;
    }
    let f = b.graph.add(Softmax { axis: 2 }, &[scores])?;
    let y = b.graph.add(Matmul::new(false, true), &[g, f])?; // [N, inter, Q]
    let out = b.constant(nl.out.reshape(&[1, c, inter])?);
    let z = b.graph.add(Matmul::conv1x1(Epilogue::NONE), &[out, y])?;
    let z = post(b, z, Some(nl.out_affine), Some(x_flat), Activation::None)?;
    b.graph.view(z, &[n, c, h, w])
}

/// Random weights of NonLocal(in_channels) (sub-sampled, with BatchNorm), the benchmark's.
fn random_non_local(args: &[String], rng: &mut fastrand::Rng) -> Result<crate::tensorfile::TensorFile> {
    let c = super::random_width("NonLocal", "in_channels", args)?;
    let mut f = crate::weights::RandomStateDict::new(rng);
    let inter = (c / 2).max(1);
    f.conv("theta", [inter, c, 1, 1], true)?;
    f.conv("phi.0", [inter, c, 1, 1], true)?;
    f.conv("g.0", [inter, c, 1, 1], true)?;
    f.conv("W.0", [c, inter, 1, 1], true)?;
    f.batchnorm("W.1", c)?;
    Ok(f.finish())
}

/// Random weights of timm's NonLocalAttn(in_channels), the benchmark's.
fn random_timm_non_local(args: &[String], rng: &mut fastrand::Rng) -> Result<crate::tensorfile::TensorFile> {
    let c = super::random_width("timm.NonLocalAttn", "in_channels", args)?;
    let mut f = crate::weights::RandomStateDict::new(rng);
    let rd = (c / 8).div_ceil(8).max(1) * 8;
    for name in ["t", "p", "g"] {
        f.conv(name, [rd, c, 1, 1], true)?;
    }
    f.conv("z", [c, rd, 1, 1], true)?;
    f.batchnorm("norm", c)?;
    Ok(f.finish())
}

#[cfg(test)]
mod tests {
    use crate::blocks::{build, BuildOptions};
    use crate::graph::{Fusion, Graph, Tensors};
    use crate::tensorfile::TensorFile;
    use crate::weights::{Weights, BN_EPS};
    use crate::{Shape, Tensor};
    use std::collections::BTreeMap;

    type StateDict = BTreeMap<String, Tensor>;

    /// Random NonLocal weights over `c` channels (inter = c / 2), named as the reference code does.
    fn state_dict(c: usize, sub_sample: bool, bn: bool) -> StateDict {
        let mut rng = fastrand::Rng::with_seed(7);
        let ci = c / 2;
        let mut sd = StateDict::new();
        let mut put = |name: String, dims: &[usize], lo: f32, hi: f32| {
            sd.insert(name, Tensor::random(Shape::new(dims).unwrap(), &mut rng, lo, hi));
        };
        let sub = if sub_sample { ".0" } else { "" };
        for prefix in ["theta".to_string(), format!("phi{sub}"), format!("g{sub}")] {
            put(format!("{prefix}.weight"), &[ci, c, 1, 1], -1.0, 1.0);
            put(format!("{prefix}.bias"), &[ci], -0.2, 0.2);
        }
        let w = if bn { "W.0" } else { "W" };
        put(format!("{w}.weight"), &[c, ci, 1, 1], -1.0, 1.0);
        put(format!("{w}.bias"), &[c], -0.2, 0.2);
        if bn {
            put("W.1.weight".into(), &[c], 0.8, 1.2);
            put("W.1.bias".into(), &[c], -0.2, 0.2);
            put("W.1.running_mean".into(), &[c], -0.2, 0.2);
            put("W.1.running_var".into(), &[c], 0.5, 1.5);
        }
        sd
    }

    fn graph(sd: &StateDict, x: &Shape, args: &[&str], fusion: Fusion, queries: &[[usize; 2]]) -> crate::Result<Graph> {
        let weights = Weights::new(TensorFile { tensors: sd.clone(), ..TensorFile::default() }, "test");
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        build("NonLocal", x, weights, &args, BuildOptions { fusion, maps: true, queries: queries.to_vec() })
    }

    fn err(sd: &StateDict, x: &[usize], args: &[&str], queries: &[[usize; 2]]) -> String {
        graph(sd, &Shape::new(x).unwrap(), args, Fusion::all(), queries).unwrap_err().to_string()
    }

    /// The block written out directly in f64: z [N, C, H, W] and the rows of the flat `queries`.
    fn naive(sd: &StateDict, x: &Tensor, queries: &[usize]) -> (Vec<f64>, Vec<f64>) {
        let [n, c, h, w] = x.shape().nchw("test", "x").unwrap();
        let (ci, p, sub) = (c / 2, h * w, sd.contains_key("phi.0.weight"));
        let conv = |name: &str, input: &[f64], cin: usize| -> Vec<f64> {
            let (wt, bias) = (sd[&format!("{name}.weight")].data(), sd[&format!("{name}.bias")].data());
            let cout = bias.len();
            let mut out = vec![0.0; n * cout * p];
            for (b, o, i) in (0..n).flat_map(|b| (0..cout).flat_map(move |o| (0..p).map(move |i| (b, o, i)))) {
                let acc: f64 = (0..cin).map(|k| wt[o * cin + k] as f64 * input[(b * cin + k) * p + i]).sum();
                out[(b * cout + o) * p + i] = acc + bias[o] as f64;
            }
            out
        };
        // 2x2 max pool, floor: [N * ci planes of H x W] -> H/2 x W/2.
        let (hk, wk) = if sub { (h / 2, w / 2) } else { (h, w) };
        let pool = |v: Vec<f64>| -> Vec<f64> {
            if !sub {
                return v;
            }
            let mut out = Vec::new();
            for (plane, i, j) in (0..n * ci).flat_map(|pl| (0..hk).flat_map(move |i| (0..wk).map(move |j| (pl, i, j))))
            {
                let at = |di: usize, dj: usize| v[plane * p + (2 * i + di) * w + 2 * j + dj];
                out.push(at(0, 0).max(at(0, 1)).max(at(1, 0)).max(at(1, 1)));
            }
            out
        };
        let xs: Vec<f64> = x.data().iter().map(|&v| v as f64).collect();
        let sub = if sub { ".0" } else { "" };
        let theta = conv("theta", &xs, c);
        let (phi, g) = (pool(conv(&format!("phi{sub}"), &xs, c)), pool(conv(&format!("g{sub}"), &xs, c)));
        let k = hk * wk;
        let (mut y, mut rows) = (vec![0.0; n * ci * p], Vec::new());
        for (b, q) in (0..n).flat_map(|b| (0..p).map(move |q| (b, q))) {
            let s: Vec<f64> = (0..k)
                .map(|j| (0..ci).map(|d| theta[(b * ci + d) * p + q] * phi[(b * ci + d) * k + j]).sum())
                .collect();
            let max = s.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let e: Vec<f64> = s.iter().map(|v| (v - max).exp()).collect();
            let f: Vec<f64> = e.iter().map(|v| v / e.iter().sum::<f64>()).collect();
            for d in 0..ci {
                y[(b * ci + d) * p + q] = (0..k).map(|j| f[j] * g[(b * ci + d) * k + j]).sum();
            }
            if queries.contains(&q) {
                rows.push((q, b, f));
            }
        }
        // The map is ordered [N, queries]: image first, then the queries in the order given.
        let mut map = Vec::new();
        for b in 0..n {
            for &q in queries {
                map.extend(rows.iter().find(|r| r.0 == q && r.1 == b).unwrap().2.iter());
            }
        }
        let mut z = conv("W.0", &y, ci);
        for (i, v) in z.iter_mut().enumerate() {
            let ch = i / p % c;
            let bn = |s: &str| sd[&format!("W.1.{s}")].data()[ch] as f64;
            *v = (*v - bn("running_mean")) / (bn("running_var") + BN_EPS).sqrt() * bn("weight") + bn("bias") + xs[i];
        }
        (z, map)
    }

    #[test]
    fn odd_sizes_sub_sample_with_floor_and_both_graphs_match_the_naive_block() {
        let sd = state_dict(6, true, true);
        let x = Tensor::random(Shape::new(&[2, 6, 5, 7]).unwrap(), &mut fastrand::Rng::with_seed(3), -1.0, 1.0);
        let feed = Tensors::from([("x".to_string(), x.clone())]);
        // (x, y) = (6, 4) is the last pixel, flat 4 * 7 + 6 = 34; no queries means the center (3, 2) = 17.
        for (queries, flat) in [(vec![[6, 4], [0, 0]], vec![34, 0]), (vec![], vec![17])] {
            let (want_y, want_map) = naive(&sd, &x, &flat);
            for fusion in [Fusion::all(), Fusion::none()] {
                let out = graph(&sd, x.shape(), &[], fusion.clone(), &queries).unwrap().run_cpu(&feed).unwrap();
                // Keys: 5 x 7 pooled 2x2 with floor is 2 x 3.
                assert_eq!(out["attention"].shape().dims(), [2, flat.len(), 2, 3], "{fusion:?}");
                assert_eq!(out["y"].shape(), x.shape());
                for (name, want) in [("y", &want_y), ("attention", &want_map)] {
                    let got = out[name].data();
                    let worst = got.iter().zip(want.iter()).map(|(&a, b)| (a as f64 - b).abs()).fold(0.0, f64::max);
                    assert!(worst < 1e-5, "{name} {fusion:?}: max error {worst}");
                }
            }
        }
    }

    #[test]
    fn sub_sample_must_agree_with_the_weight_names() {
        let e = err(&state_dict(4, false, false), &[1, 4, 6, 6], &[], &[]);
        assert!(e.contains("NonLocal: sub_sample=true expects 'phi.0.weight'"), "{e}");
        assert!(e.contains("'phi.weight'") && e.contains("pass sub_sample=false"), "{e}");
        let e = err(&state_dict(4, true, true), &[1, 4, 6, 6], &["sub_sample=false"], &[]);
        assert!(e.contains("sub_sample=false expects 'phi.weight'") && e.contains("pass sub_sample=true"), "{e}");
        let x = Shape::new(&[1, 4, 6, 6]).unwrap();
        graph(&state_dict(4, false, false), &x, &["sub_sample=false"], Fusion::all(), &[]).unwrap();
    }

    #[test]
    fn bad_inputs_are_named() {
        let sd = state_dict(4, true, false);
        let e = err(&sd, &[1, 4, 5, 7], &[], &[[1, 1], [7, 0]]);
        assert!(e.contains("NonLocal: query 1 at pixel (7, 0) is outside the 5 x 7 (H x W) map"), "{e}");
        let e = err(&sd, &[1, 4, 5, 7], &[], &[[0, 5]]);
        assert!(e.contains("query 0 at pixel (0, 5)") && e.contains("Y below 5"), "{e}");
        let e = err(&sd, &[1, 4, 1, 7], &[], &[[0, 0]]);
        assert!(e.contains("sub_sample pools 2x2 and needs H, W >= 2, got x [1 x 4 x 1 x 7]"), "{e}");
        let e = err(&sd, &[1, 6, 4, 4], &[], &[]);
        assert!(e.contains("'theta.weight' is [2, 4, 1, 1], expected a 1x1 conv [inter, 6, 1, 1]"), "{e}");
        let mut no_bn = state_dict(4, true, true);
        no_bn.remove("W.1.running_var");
        assert!(err(&no_bn, &[1, 4, 4, 4], &[], &[]).contains("missing tensor 'W.1.running_var'"));
        let e = err(&sd, &[1, 4, 4, 4], &["sub_sample=true", "use_scale=false"], &[]);
        assert!(e.contains("unknown argument(s) use_scale; valid: in_channels, inter_channels"), "{e}");
    }
}
