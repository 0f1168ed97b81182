//! The fusion pass, rule by rule: each rule fires on its pattern (and the
//! fused graph agrees with the canonical one on the CPU executor and, with a
//! GPU, in a plan), and does not fuse through an intermediate another node
//! reads or that is a requested output. Then the dispatch counts of the
//! benchmarked blocks and networks: no higher than before the pass existed,
//! and no higher with maps on than off (plus Non-local's attention rows).

mod common;

use glimpse::check::{compare, OP_TOLERANCE};
use glimpse::graph::{fuse, Fusion, Graph, Plan, Report, Rule, Tensors, ValueId};
use glimpse::ops::channel_affine::ChannelAffine;
use glimpse::ops::channel_pool::ChannelPool;
use glimpse::ops::conv2d::Conv2d;
use glimpse::ops::eltwise::Eltwise;
use glimpse::ops::gate::{Gate, GateMode};
use glimpse::ops::global_pool::GlobalPool;
use glimpse::ops::matmul::Matmul;
use glimpse::ops::max_pool2d::MaxPool2d;
use glimpse::ops::narrow::Narrow;
use glimpse::ops::nonlocal_attention::NonLocalAttention;
use glimpse::ops::softmax::Softmax;
use glimpse::ops::Epilogue;
use glimpse::{Shape, Tensor};

/// What to do with a pattern's tapped intermediate.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Tap {
    /// Nothing: the rule should fire.
    None,
    /// A second reader (a ReLU, itself an output).
    Reader,
    /// Mark it as a requested output (a map).
    Map,
}

/// A pattern: builds its canonical graph on `g` (inputs named in `feed`) and
/// returns the intermediate to tap.
type Pattern = fn(&mut Graph, &mut Tensors, &mut fastrand::Rng) -> ValueId;

fn random(rng: &mut fastrand::Rng, dims: &[usize], lo: f32, hi: f32) -> Tensor {
    Tensor::random(Shape::new(dims).unwrap(), rng, lo, hi)
}

fn input(g: &mut Graph, feed: &mut Tensors, name: &str, t: Tensor) -> ValueId {
    let v = g.input(name, t.shape().clone());
    feed.insert(name.to_string(), t);
    v
}

/// Builds the pattern twice (canonical and with `rule` alone applied), checks
/// fused == canonical on the CPU (and on the GPU when there is one), and
/// returns the report and the node counts before and after.
fn run(pattern: Pattern, rule: Rule, tap: Tap) -> (Report, usize, usize) {
    let build = || {
        let (mut g, mut feed, mut rng) = (Graph::new(), Tensors::new(), fastrand::Rng::with_seed(5));
        let tapped = pattern(&mut g, &mut feed, &mut rng);
        match tap {
            Tap::None => {}
            Tap::Reader => {
                let r = g.add(Eltwise::Relu, &[tapped]).unwrap();
                g.output("reader", r);
            }
            Tap::Map => g.output("map", tapped),
        }
        (g, feed)
    };
    let (canonical, feed) = build();
    let (mut fused, _) = build();
    let report = fuse(&mut fused, &Fusion::only(&[rule])).unwrap();
    let want = canonical.run_cpu(&feed).unwrap();
    let got = fused.run_cpu(&feed).unwrap();
    for (name, t) in &want {
        let c = compare(&got[name], t, OP_TOLERANCE);
        assert!(c.passed, "{rule:?} {tap:?}: '{name}' fused differs from canonical on the CPU: {c:?}");
    }
    if let Some(gpu) = common::gpu() {
        let got = Plan::compile(gpu, &fused).and_then(|p| p.run(gpu, &feed)).unwrap();
        for (name, t) in &want {
            let c = compare(&got[name], t, OP_TOLERANCE);
            assert!(c.passed, "{rule:?} {tap:?}: '{name}' fused GPU plan differs from the CPU: {c:?}");
        }
    }
    (report, canonical.node_count(), fused.node_count())
}

/// Fires once on the plain pattern; is refused with `why` when the tapped
/// intermediate has a second reader or is a requested output.
fn check_rule(pattern: Pattern, rule: Rule, fused_away: usize) {
    let (report, before, after) = run(pattern, rule, Tap::None);
    assert_eq!(report.fired(rule), 1, "{rule:?} should fire once:\n{report}");
    assert_eq!(before - after, fused_away, "{rule:?}: nodes before {before}, after {after}");
    for (tap, why) in [(Tap::Reader, "readers"), (Tap::Map, "needed as the output 'map'")] {
        let (report, _, _) = run(pattern, rule, tap);
        assert_eq!(report.fired(rule), 0, "{rule:?} must not fire with {tap:?}:\n{report}");
        let refusals = report.refusals(rule);
        assert!(refusals.iter().any(|r| r.contains(why)), "{rule:?} {tap:?}: {refusals:?}");
    }
}

/// conv -> BN affine: the tapped value is the conv's output.
fn conv_affine(g: &mut Graph, feed: &mut Tensors, rng: &mut fastrand::Rng) -> ValueId {
    let x = input(g, feed, "x", random(rng, &[2, 3, 7, 9], -1.0, 1.0));
    let w = g.constant(random(rng, &[5, 3, 3, 3], -0.5, 0.5));
    let y = g.add(Conv2d::new().padding([1, 1]), &[x, w]).unwrap();
    let a = g.constant(random(rng, &[2, 5], 0.5, 1.5));
    let out = g.add(ChannelAffine, &[y, a]).unwrap();
    g.output("y", out);
    y
}

/// 1x1 conv as GEMM -> + residual (through NCHW views).
fn gemm_residual(g: &mut Graph, feed: &mut Tensors, rng: &mut fastrand::Rng) -> ValueId {
    let x = input(g, feed, "x", random(rng, &[2, 4, 5, 3], -1.0, 1.0));
    let r = input(g, feed, "r", random(rng, &[2, 6, 5, 3], -1.0, 1.0));
    let rows = g.view(x, &[2, 4, 15]).unwrap();
    let w = g.constant(random(rng, &[1, 6, 4], -0.5, 0.5));
    let y = g.add(Matmul::conv1x1(Epilogue::NONE), &[w, rows]).unwrap();
    let y4 = g.view(y, &[2, 6, 5, 3]).unwrap();
    let out = g.add(Eltwise::Add, &[y4, r]).unwrap();
    g.output("y", out);
    y
}

/// conv -> sigmoid.
fn conv_sigmoid(g: &mut Graph, feed: &mut Tensors, rng: &mut fastrand::Rng) -> ValueId {
    let x = input(g, feed, "x", random(rng, &[1, 2, 6, 6], -1.0, 1.0));
    let w = g.constant(random(rng, &[1, 2, 7, 7], -0.5, 0.5));
    let y = g.add(Conv2d::new().padding([3, 3]), &[x, w]).unwrap();
    let out = g.add(Eltwise::Sigmoid, &[y]).unwrap();
    g.output("y", out);
    y
}

/// CBAM's channel attention: pools -> fc1 -> ReLU -> fc2 -> row sum -> sigmoid; tapped: the ReLU's output.
fn channel_mlp(g: &mut Graph, feed: &mut Tensors, rng: &mut fastrand::Rng) -> ValueId {
    let x = input(g, feed, "x", random(rng, &[2, 8, 5, 5], -1.0, 1.0));
    let pooled = g.add(GlobalPool::default(), &[x]).unwrap();
    let w1 = g.constant(random(rng, &[1, 2, 8], -0.5, 0.5));
    let w2 = g.constant(random(rng, &[1, 8, 2], -0.5, 0.5));
    let h = g.add(Matmul::new(false, true), &[pooled, w1]).unwrap();
    let h = g.add(Eltwise::Relu, &[h]).unwrap();
    let l = g.add(Matmul::new(false, true), &[h, w2]).unwrap();
    let ones = g.constant(Tensor::from_vec(&[1, 1, 2], vec![1.0, 1.0]).unwrap());
    let s = g.add(Matmul::new(false, false), &[ones, l]).unwrap();
    let ca = g.add(Eltwise::Sigmoid, &[s]).unwrap();
    let ca = g.view(ca, &[2, 8]).unwrap();
    g.output("y", ca);
    h
}

/// CBAM's spatial attention on a channel-gated x with BN, residual and ReLU;
/// tapped: the spatial map sa.
fn spatial_gate(g: &mut Graph, feed: &mut Tensors, rng: &mut fastrand::Rng) -> ValueId {
    let x = input(g, feed, "x", random(rng, &[2, 5, 6, 8], -1.0, 1.0));
    let ca = input(g, feed, "ca", random(rng, &[2, 5], 0.0, 1.0));
    let r = input(g, feed, "r", random(rng, &[2, 5, 6, 8], -1.0, 1.0));
    let gated = g.add(Gate::probabilities(GateMode::Channel), &[x, ca]).unwrap();
    let pooled = g.add(ChannelPool, &[gated]).unwrap();
    let w = g.constant(random(rng, &[1, 2, 7, 7], -0.5, 0.5));
    let s = g.add(Conv2d::new().padding([3, 3]), &[pooled, w]).unwrap();
    let a = g.constant(Tensor::from_vec(&[2, 1], vec![1.3, -0.2]).unwrap());
    let s = g.add(ChannelAffine, &[s, a]).unwrap();
    let sa = g.add(Eltwise::Sigmoid, &[s]).unwrap();
    let out = g.add(Gate::probabilities(GateMode::Pixel), &[gated, sa]).unwrap();
    let out = g.add(Eltwise::Add, &[out, r]).unwrap();
    let out = g.add(Eltwise::Relu, &[out]).unwrap();
    g.output("y", out);
    sa
}

/// gate(x, ca) -> channel_pool; tapped: x * ca.
fn gate_pool(g: &mut Graph, feed: &mut Tensors, rng: &mut fastrand::Rng) -> ValueId {
    let x = input(g, feed, "x", random(rng, &[2, 5, 6, 7], -1.0, 1.0));
    let ca = input(g, feed, "ca", random(rng, &[2, 5], 0.0, 1.0));
    let gated = g.add(Gate::probabilities(GateMode::Channel), &[x, ca]).unwrap();
    let pooled = g.add(ChannelPool, &[gated]).unwrap();
    g.output("y", pooled);
    gated
}

/// Three branches summed, global pool, average row; tapped: the sum.
fn sum_pool(g: &mut Graph, feed: &mut Tensors, rng: &mut fastrand::Rng) -> ValueId {
    let b: Vec<ValueId> =
        (0..3).map(|i| input(g, feed, &format!("b{i}"), random(rng, &[2, 6, 5, 4], -1.0, 1.0))).collect();
    let u = g.add(Eltwise::Add, &[b[0], b[1]]).unwrap();
    let u = g.add(Eltwise::Add, &[u, b[2]]).unwrap();
    let pooled = g.add(GlobalPool::default(), &[u]).unwrap();
    let rows = g.view(pooled, &[2, 2, 6, 1]).unwrap();
    let avg = g.add(Narrow { first: 0, count: 1 }, &[rows]).unwrap();
    let s = g.view(avg, &[2, 6]).unwrap();
    g.output("y", s);
    u
}

/// SK attention: fc -> BN -> ReLU -> select -> softmax over 2 branches; tapped: the ReLU's output.
fn sk_attention(g: &mut Graph, feed: &mut Tensors, rng: &mut fastrand::Rng) -> ValueId {
    let (n, c, d, m) = (2, 6, 4, 2);
    let s = input(g, feed, "s", random(rng, &[n, c], -1.0, 1.0));
    let rows = g.view(s, &[1, n, c]).unwrap();
    let fc = g.constant(random(rng, &[1, d, c], -0.5, 0.5));
    let z = g.add(Matmul::new(false, true), &[rows, fc]).unwrap();
    let z = g.view(z, &[n, d]).unwrap();
    let a = g.constant(random(rng, &[2, d], 0.5, 1.5));
    let z = g.add(ChannelAffine, &[z, a]).unwrap();
    let z = g.add(Eltwise::Relu, &[z]).unwrap();
    let tapped = z;
    let z = g.view(z, &[1, n, d]).unwrap();
    let select = g.constant(random(rng, &[1, m * c, d], -0.5, 0.5));
    let logits = g.add(Matmul::new(false, true), &[z, select]).unwrap();
    let logits = g.view(logits, &[n, m, c]).unwrap();
    let att = g.add(Softmax { axis: 1 }, &[logits]).unwrap();
    g.output("y", att);
    tapped
}

/// softmax(s * theta^T phi) g^T; tapped: the attention matrix.
fn flash(g: &mut Graph, feed: &mut Tensors, rng: &mut fastrand::Rng) -> ValueId {
    let theta = input(g, feed, "theta", random(rng, &[2, 4, 15], -1.0, 1.0));
    let phi = input(g, feed, "phi", random(rng, &[2, 4, 6], -1.0, 1.0));
    let v = input(g, feed, "g", random(rng, &[2, 5, 6], -1.0, 1.0));
    let scores = g.add(Matmul::new(true, false), &[theta, phi]).unwrap();
    let scale = g.constant(Tensor::from_vec(&[2, 15], [vec![0.5; 15], vec![0.0; 15]].concat()).unwrap());
    let scores = g.add(ChannelAffine, &[scores, scale]).unwrap();
    let f = g.add(Softmax { axis: 2 }, &[scores]).unwrap();
    let y = g.add(Matmul::new(false, true), &[v, f]).unwrap();
    g.output("y", y);
    f
}

/// theta, phi, g 1x1 convs + biases over one x, phi and g max-pooled, into a
/// flash attention; tapped: phi before its pool.
fn projections(g: &mut Graph, feed: &mut Tensors, rng: &mut fastrand::Rng) -> ValueId {
    let (n, c, i, h, w) = (2, 6, 3, 4, 6);
    let x = input(g, feed, "x", random(rng, &[n, c, h, w], -1.0, 1.0));
    let rows = g.view(x, &[n, c, h * w]).unwrap();
    let mut parts = Vec::new();
    let mut tapped = None;
    for k in 0..3 {
        let wt = g.constant(random(rng, &[1, i, c], -0.5, 0.5));
        let v = g.add(Matmul::conv1x1(Epilogue::NONE), &[wt, rows]).unwrap();
        let a = g.constant(random(rng, &[2, i], 0.5, 1.5));
        let v = g.add(ChannelAffine, &[v, a]).unwrap();
        parts.push(if k > 0 {
            if k == 1 {
                tapped = Some(v);
            }
            let v = g.view(v, &[n, i, h, w]).unwrap();
            let p = g.add(MaxPool2d::new([2, 2], [0, 0]), &[v]).unwrap();
            g.view(p, &[n, i, h * w / 4]).unwrap()
        } else {
            v
        });
    }
    let y = g.add(NonLocalAttention::new(0.7), &parts).unwrap();
    g.output("y", y);
    tapped.unwrap()
}

#[test]
fn epilogue_affine_fires_on_conv_then_bn_and_not_through_shared_values() {
    check_rule(conv_affine, Rule::EpilogueAffine, 1);
}

#[test]
fn epilogue_residual_fires_on_gemm_then_add_and_not_through_shared_values() {
    check_rule(gemm_residual, Rule::EpilogueResidual, 1);
}

#[test]
fn epilogue_activation_fires_on_conv_then_sigmoid_and_not_through_shared_values() {
    check_rule(conv_sigmoid, Rule::EpilogueActivation, 1);
}

#[test]
fn cbam_channel_mlp_fires_on_its_chain_and_not_through_shared_values() {
    check_rule(channel_mlp, Rule::CbamChannelMlp, 4);
}

#[test]
fn cbam_gate_pool_fires_on_its_chain_and_not_through_shared_values() {
    check_rule(gate_pool, Rule::CbamGatePool, 1);
}

#[test]
fn sk_sum_pool_fires_on_its_chain_and_not_through_shared_values() {
    check_rule(sum_pool, Rule::SkSumPool, 3);
}

#[test]
fn sk_attention_fires_on_its_chain_and_not_through_shared_values() {
    check_rule(sk_attention, Rule::SkAttention, 4);
}

#[test]
fn nonlocal_flash_fires_on_its_chain_and_not_through_shared_values() {
    check_rule(flash, Rule::NonLocalFlash, 3);
}

#[test]
fn nonlocal_projections_fire_on_three_convs_and_not_through_shared_values() {
    // 3 GEMMs + 3 affines + 2 pools become 1 GEMM + 1 pool + 3 narrows.
    check_rule(projections, Rule::NonLocalProjections, 3);
}

/// The spatial gate keeps a requested map as a side output of its kernel, and
/// a conv read elsewhere by leaving the conv in place: it fires either way.
#[test]
fn cbam_spatial_gate_writes_a_requested_map_as_a_side_output() {
    let rule = Rule::CbamSpatialGate;
    let (report, before, after) = run(spatial_gate, rule, Tap::None);
    assert_eq!((report.fired(rule), before - after), (1, 5), "{report}");
    // With the map requested, the same nodes go: the kernel writes sa too.
    let (report, before, after) = run(spatial_gate, rule, Tap::Map);
    assert_eq!((report.fired(rule), before - after), (1, 5), "{report}");
    // A second reader of sa: conv, affine and sigmoid stay, the kernel recomputes the map.
    let (report, before, after) = run(spatial_gate, rule, Tap::Reader);
    assert_eq!((report.fired(rule), before - after), (1, 2), "{report}");
}

/// Dispatches of the fused plan (maps off, maps on) for `arch` on `input` with random weights,
/// not counting a kernel's auxiliary launches ([`Dispatch::auxiliary`]: layout passes, Winograd's
/// transforms and GEMMs), which kernel choice adds per device, not fusion.
///
/// [`Dispatch::auxiliary`]: glimpse::gpu::Dispatch::auxiliary
fn fused_dispatches(gpu: &glimpse::gpu::Gpu, arch: &str, args: &[&str], input: &[usize]) -> [usize; 2] {
    use glimpse::blocks::{self, BuildOptions};
    use glimpse::weights::Weights;
    let mut rng = fastrand::Rng::with_seed(1);
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let file = if input[1] == 3 {
        (blocks::arch(arch).unwrap().random_weights.unwrap())(&args, &mut rng).unwrap()
    } else {
        glimpse::bench::random_weights(arch, input[1], &mut rng).unwrap()
    };
    let shape = Shape::new(input).unwrap();
    [false, true].map(|maps| {
        let options = BuildOptions { fusion: Fusion::all(), maps, queries: vec![] };
        let graph = blocks::build(arch, &shape, Weights::new(file.clone(), "random"), &args, options).unwrap();
        let plan = Plan::compile(gpu, &graph).unwrap();
        plan.dispatches().iter().filter(|d| !d.auxiliary()).count()
    })
}

/// The fused dispatch counts recorded before fusion became a pass (the block
/// builders chose fused kernels themselves; `cargo run --example
/// dispatch_counts` at commit 292ecb8) must not grow; with maps on, only
/// Non-local's attention rows (one dispatch per block) may be added.
#[test]
fn fused_dispatch_counts_do_not_grow_and_maps_cost_no_extra_dispatches() {
    let gpu = gpu_or_skip!();
    let block = [1, 256, 56, 56];
    let net = [1, 3, 224, 224];
    // (arch, args, input, dispatches before the pass, dispatches the maps may add)
    type Row = (&'static str, &'static [&'static str], [usize; 4], usize, usize);
    let rows: [Row; 9] = [
        ("BasicBlock", &[], block, 6, 0),
        ("SKConv", &[], block, 5, 0),
        ("NonLocal", &[], block, 13, 1),
        ("timm.CbamModule", &[], block, 4, 0),
        ("timm.SelectiveKernel", &[], block, 7, 0),
        ("timm.NonLocalAttn", &[], block, 12, 1),
        ("timm.skresnet18", &[], net, 72, 0),
        ("timm.skresnext50_32x4d", &[], net, 121, 0),
        ("timm.resnet50", &["attn_layer=cbam"], net, 121, 0),
    ];
    let mut problems = Vec::new();
    for (arch, args, input, before, map_rows) in rows {
        let [off, on] = fused_dispatches(gpu, arch, args, &input);
        if off > before || on > off + map_rows {
            problems.push(format!("{arch} {args:?}: {off} dispatches (was {before}), {on} with maps"));
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

/// conv -> bias affine -> BatchNorm affine: the second folds into the first
/// (constant folding), one conv is left, and it computes the same.
fn conv_two_affines(g: &mut Graph, feed: &mut Tensors, rng: &mut fastrand::Rng) -> ValueId {
    let x = input(g, feed, "x", random(rng, &[1, 4, 5, 6], -1.0, 1.0));
    let w = g.constant(random(rng, &[4, 1, 3, 3], -0.5, 0.5));
    let y = g.add(Conv2d::new().padding([1, 1]).groups(4), &[x, w]).unwrap();
    let bias = g.constant(Tensor::from_vec(&[2, 4], vec![1.0, 1.0, 1.0, 1.0, 0.1, -0.2, 0.3, -0.4]).unwrap());
    let y = g.add(ChannelAffine, &[y, bias]).unwrap();
    let bn = g.constant(random(rng, &[2, 4], -1.5, 1.5));
    let out = g.add(ChannelAffine, &[y, bn]).unwrap();
    g.output("y", out);
    y
}

#[test]
fn epilogue_affine_composes_two_affines_into_one_conv() {
    let (report, before, after) = run(conv_two_affines, Rule::EpilogueAffine, Tap::None);
    assert_eq!((report.fired(Rule::EpilogueAffine), before, after), (2, 3, 1), "{report}");
}

/// An affine over another axis of a conv's output (its view [N * C, H, W] has
/// H as dimension 1) is no per-channel BatchNorm: refused, and the graph unchanged.
#[test]
fn epilogue_affine_is_refused_over_another_axis() {
    let mut rng = fastrand::Rng::with_seed(3);
    let mut g = Graph::new();
    let x = g.input("x", Shape::new(&[1, 4, 5, 6]).unwrap());
    let w = g.constant(random(&mut rng, &[4, 4, 3, 3], -0.5, 0.5));
    let y = g.add(Conv2d::new().padding([1, 1]), &[x, w]).unwrap();
    let planes = g.view(y, &[4, 5, 6]).unwrap();
    let a = g.constant(random(&mut rng, &[2, 5], -1.0, 1.0));
    let out = g.add(ChannelAffine, &[planes, a]).unwrap();
    g.output("y", out);
    let report = fuse(&mut g, &Fusion::only(&[Rule::EpilogueAffine])).unwrap();
    assert_eq!((report.fired(Rule::EpilogueAffine), g.node_count()), (0, 2), "{report}");
    assert!(report.refusals(Rule::EpilogueAffine)[0].contains("other channels"), "{report}");
}
