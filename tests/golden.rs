//! Every block against PyTorch: each fixture in tests/fixtures (written by
//! tools/make_fixtures.py from PyTorch and timm, outputs computed in float64)
//! runs on the CPU executor, the GPU fused plan and the GPU unfused plan, and
//! `y` and every attention map must be within relative L2 error
//! BLOCK_REL_L2 (1e-4) of PyTorch's.

mod common;

use glimpse::blocks::{self, BuildOptions};
use glimpse::check::{compare, BLOCK_REL_L2, OP_TOLERANCE};
use glimpse::graph::{Fusion, Plan, Tensors};
use glimpse::tensorfile::TensorFile;
use glimpse::weights::Weights;
use glimpse::{Error, Shape, Tensor};
use std::path::{Path, PathBuf};

struct Fixture {
    name: String,
    arch: String,
    args: Vec<String>,
    queries: Vec<[usize; 2]>,
    io: TensorFile,
    weights: Option<PathBuf>,
}

fn fixtures() -> Vec<Fixture> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut found: Vec<Fixture> = std::fs::read_dir(&dir)
        .expect("tests/fixtures should exist")
        .filter_map(|e| {
            let path = e.expect("readable entry").path();
            let name = path.file_name()?.to_str()?.strip_suffix(".io.safetensors")?.to_string();
            let io = TensorFile::read(&path).expect("fixture should parse");
            let meta = |k: &str| io.metadata.get(k).cloned().unwrap_or_default();
            let args = meta("args").split_whitespace().map(String::from).collect();
            let queries = meta("queries")
                .split(';')
                .filter(|q| !q.is_empty())
                .map(|q| {
                    let v: Vec<usize> = q.split(',').map(|n| n.trim().parse().expect("query coordinate")).collect();
                    [v[0], v[1]]
                })
                .collect();
            let weights = dir.join(format!("{name}.weights.safetensors"));
            Some(Fixture { name, arch: meta("arch"), args, queries, io, weights: weights.exists().then_some(weights) })
        })
        .collect();
    found.sort_by(|a, b| a.name.cmp(&b.name));
    assert!(!found.is_empty(), "no fixtures found in {}", dir.display());
    found
}

/// Runs one fixture in one mode; returns the worst relative L2 error over its
/// outputs and a description of each mismatch.
fn check(f: &Fixture, mode: &str) -> (f64, Vec<String>) {
    let weights = match &f.weights {
        Some(p) => Weights::load(p).expect("fixture weights should load"),
        None => Weights::empty(),
    };
    let x = f.io.get("x").expect("fixture input x");
    // The CPU executor runs the canonical graph (single ops) and, as "cpu-fused", the fused one.
    let fusion = if mode.ends_with("-fused") { Fusion::all() } else { Fusion::none() };
    let options = BuildOptions { fusion, maps: true, queries: f.queries.clone() };
    let graph = match blocks::build(&f.arch, x.shape(), weights, &f.args, options) {
        Ok(g) => g,
        Err(e) => return (f64::INFINITY, vec![format!("{} [{mode}]: build failed: {e}", f.name)]),
    };
    let feed = Tensors::from([("x".to_string(), x.clone())]);
    let result = match mode {
        "cpu" | "cpu-fused" => graph.run_cpu(&feed),
        _ => {
            let gpu = common::gpu().expect("GPU modes run only with a GPU");
            Plan::compile(gpu, &graph).and_then(|p| p.run(gpu, &feed))
        }
    };
    let got = match result {
        Ok(t) => t,
        Err(e) => return (f64::INFINITY, vec![format!("{} [{mode}]: run failed: {e}", f.name)]),
    };
    let mut problems = Vec::new();
    let mut worst = 0.0f64;
    for (key, want) in &f.io.tensors {
        let name = match key.as_str() {
            "y" => "y",
            k => match k.strip_prefix("map.") {
                Some(map) => map,
                None => continue,
            },
        };
        match got.get(name) {
            None => problems.push(format!("{} [{mode}]: no output '{name}' (outputs: {:?})", f.name, got.keys())),
            Some(t) if t.shape() != want.shape() => {
                problems.push(format!("{} [{mode}]: '{name}' is {}, PyTorch's is {}", f.name, t.shape(), want.shape()))
            }
            Some(t) => {
                let rel = compare(t, want, OP_TOLERANCE).rel_l2;
                worst = worst.max(rel);
                if rel.is_nan() || rel > BLOCK_REL_L2 {
                    problems.push(format!("{} [{mode}]: '{name}' relative L2 error {rel:.2e}", f.name));
                }
            }
        }
    }
    (worst, problems)
}

fn check_all(archs: &dyn Fn(&str) -> bool) {
    let modes: &[&str] =
        if common::gpu().is_some() { &["cpu", "cpu-fused", "gpu-fused", "gpu-unfused"] } else { &["cpu", "cpu-fused"] };
    let mut problems = Vec::new();
    let mut worst = vec![0.0f64; modes.len()];
    let mut ran = 0;
    for f in fixtures().iter().filter(|f| archs(&f.arch)) {
        for (i, mode) in modes.iter().enumerate() {
            let (rel, found) = check(f, mode);
            worst[i] = worst[i].max(rel);
            problems.extend(found);
            ran += 1;
        }
    }
    assert!(ran > 0, "no fixture matched");
    let worst: Vec<String> = modes.iter().zip(&worst).map(|(m, w)| format!("{m} {w:.1e}")).collect();
    eprintln!("{ran} fixture runs; worst relative L2 error against PyTorch: {}", worst.join(", "));
    assert!(problems.is_empty(), "{} problems:\n{}", problems.len(), problems.join("\n"));
}

const HARD: &[&str] = &["CenterCrop", "MaxPool2d"];
const CBAM: &[&str] = &["ChannelAttention", "SpatialAttention", "BasicBlock", "timm.CbamModule"];
const SK: &[&str] = &["SKConv", "timm.SelectiveKernel"];
const NON_LOCAL: &[&str] = &["NonLocal", "timm.NonLocalAttn"];

#[test]
fn every_fixture_is_checked_by_a_test_below() {
    for f in fixtures() {
        let covered = [HARD, CBAM, SK, NON_LOCAL].iter().any(|family| family.contains(&f.arch.as_str()));
        assert!(covered, "fixture {} (arch '{}') is checked by no test", f.name, f.arch);
    }
}

#[test]
fn hard_attention_matches_pytorch() {
    check_all(&|a| HARD.contains(&a));
}

#[test]
fn cbam_blocks_match_pytorch() {
    check_all(&|a| CBAM.contains(&a));
}

#[test]
fn selective_kernel_blocks_match_pytorch() {
    check_all(&|a| SK.contains(&a));
}

#[test]
fn nonlocal_blocks_match_pytorch() {
    check_all(&|a| NON_LOCAL.contains(&a));
}

/// The unfused Non-local plan stores the N x Q x K scores: past the device's binding limit its
/// compilation must fail with the clear TooLarge error, while the fused plan (flash attention, no
/// Q x K buffer) compiles and runs at the same size.
#[test]
fn nonlocal_unfused_plan_over_the_binding_limit_is_a_clear_error() {
    let gpu = gpu_or_skip!();
    let limit = gpu.max_binding_bytes();
    // The smallest square image whose (H W)^2 f32 scores exceed one binding.
    let side = (1usize..).find(|&s| (s as u64).pow(4) * 4 > limit).expect("some side exceeds the limit");
    let x = Tensor::random(Shape::new(&[1, 2, side, side]).unwrap(), &mut common::rng(), -1.0, 1.0);
    let mut rng = fastrand::Rng::with_seed(1);
    let mut file = TensorFile::default();
    for (name, dims) in [("theta", [1, 2]), ("phi", [1, 2]), ("g", [1, 2]), ("W", [2, 1])] {
        let weight = Shape::new(&[dims[0], dims[1], 1, 1]).unwrap();
        let bias = Shape::new(&[dims[0]]).unwrap();
        file.tensors.insert(format!("{name}.weight"), Tensor::random(weight, &mut rng, -1.0, 1.0));
        file.tensors.insert(format!("{name}.bias"), Tensor::random(bias, &mut rng, -0.2, 0.2));
    }
    let args = vec!["sub_sample=false".to_string()];
    let graph = |fusion: Fusion| {
        let weights = Weights::new(file.clone(), "random");
        let options = BuildOptions { fusion, maps: false, queries: vec![] };
        blocks::build("NonLocal", x.shape(), weights, &args, options).expect("the graph builds")
    };
    let q = side * side;
    match Plan::compile(gpu, &graph(Fusion::none())) {
        Err(e @ Error::TooLarge { .. }) => {
            let msg = e.to_string();
            eprintln!("unfused at {side} x {side}: {msg}");
            assert!(msg.contains(&format!("[1 x {q} x {q}]")) && msg.contains(&limit.to_string()), "{msg}");
        }
        other => panic!("expected a TooLarge error at {side} x {side}, got {other:?}"),
    }
    let plan = Plan::compile(gpu, &graph(Fusion::all())).expect("the fused plan fits");
    assert!(plan.activation_bytes() < 64 * x.shape().bytes(), "{} activation bytes", plan.activation_bytes());
    let y = plan.run(gpu, &Tensors::from([("x".to_string(), x.clone())])).expect("the fused plan runs");
    assert!(y["y"].data().iter().all(|v| v.is_finite()));
}
