//! Whole timm networks against timm: every case in tests/fixtures/networks
//! (narrow versions of the real models with random weights, written by
//! tools/make_network_fixtures.py; logits and maps computed in float64) runs
//! on the CPU executor and the GPU fused and unfused plans, and the logits
//! and every attention map must be within BLOCK_REL_L2 (1e-4) of timm's.
//! Also: the exact key set of the hub's skresnet18 loads, and weights of the
//! wrong kind fail with errors naming what is wrong.

mod common;

use glimpse::blocks::{self, BuildOptions, ARCHS};
use glimpse::check::{compare, BLOCK_REL_L2, OP_TOLERANCE};
use glimpse::graph::{Fusion, Plan, Tensors};
use glimpse::tensorfile::TensorFile;
use glimpse::weights::Weights;
use glimpse::{Shape, Tensor};
use std::path::{Path, PathBuf};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/networks")
}

/// (case name, io file) for every fixture.
fn cases() -> Vec<(String, TensorFile)> {
    let mut found: Vec<(String, TensorFile)> = std::fs::read_dir(dir())
        .expect("tests/fixtures/networks should exist")
        .filter_map(|e| {
            let path = e.expect("readable entry").path();
            let name = path.file_name()?.to_str()?.strip_suffix(".io.safetensors")?.to_string();
            Some((name, TensorFile::read(&path).expect("fixture should parse")))
        })
        .collect();
    found.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(found.len() >= 18, "expected the 18 network cases, found {}", found.len());
    found
}

/// Runs one case in one mode; returns the worst relative L2 error and the problems found.
fn check(name: &str, io: &TensorFile, mode: &str) -> (f64, Vec<String>) {
    let weights = Weights::load(&dir().join(format!("{name}.weights.safetensors"))).expect("weights load");
    let args: Vec<String> = io.metadata["args"].split_whitespace().map(String::from).collect();
    let x = io.get("x").expect("fixture input x");
    // The CPU executor runs the canonical graph (single ops) and, as "cpu-fused", the fused one.
    let fusion = if mode.ends_with("-fused") { Fusion::all() } else { Fusion::none() };
    let options = BuildOptions { fusion, maps: true, queries: vec![] };
    let graph = match blocks::build(&io.metadata["arch"], x.shape(), weights, &args, options) {
        Ok(g) => g,
        Err(e) => return (f64::INFINITY, vec![format!("{name} [{mode}]: build failed: {e}")]),
    };
    let feed = Tensors::from([("x".to_string(), x.clone())]);
    let got = match mode {
        "cpu" | "cpu-fused" => graph.run_cpu(&feed),
        _ => {
            let gpu = common::gpu().expect("GPU modes run only with a GPU");
            Plan::compile(gpu, &graph).and_then(|p| p.run(gpu, &feed))
        }
    };
    let got = match got {
        Ok(t) => t,
        Err(e) => return (f64::INFINITY, vec![format!("{name} [{mode}]: run failed: {e}")]),
    };
    let (mut worst, mut problems, mut maps) = (0.0f64, Vec::new(), 0);
    for (key, want) in &io.tensors {
        let out = match key.as_str() {
            "y" => "y",
            k => match k.strip_prefix("map.") {
                Some(m) => m,
                None => continue,
            },
        };
        maps += usize::from(out != "y");
        match got.get(out) {
            None => problems.push(format!("{name} [{mode}]: no output '{out}'")),
            Some(t) if t.shape() != want.shape() => {
                problems.push(format!("{name} [{mode}]: '{out}' is {}, timm's is {}", t.shape(), want.shape()))
            }
            Some(t) => {
                let rel = compare(t, want, OP_TOLERANCE).rel_l2;
                worst = worst.max(rel);
                if rel.is_nan() || rel > BLOCK_REL_L2 {
                    problems.push(format!("{name} [{mode}]: '{out}' relative L2 error {rel:.2e}"));
                }
            }
        }
    }
    // Networks with attention must output a map per attention block; NL maps are not in the fixtures.
    let glimpse_maps = got.keys().filter(|k| *k != "y").count();
    if maps > glimpse_maps {
        problems.push(format!("{name} [{mode}]: {glimpse_maps} maps, timm's fixture has {maps}"));
    }
    (worst, problems)
}

fn check_family(filter: &dyn Fn(&str) -> bool) {
    let modes: &[&str] =
        if common::gpu().is_some() { &["cpu", "cpu-fused", "gpu-fused", "gpu-unfused"] } else { &["cpu", "cpu-fused"] };
    let mut problems = Vec::new();
    let mut ran = 0;
    for (name, io) in cases().iter().filter(|(n, _)| filter(n)) {
        let mut worst = Vec::new();
        for mode in modes {
            let (rel, found) = check(name, io, mode);
            worst.push(format!("{mode} {rel:.1e}"));
            problems.extend(found);
            ran += 1;
        }
        eprintln!("{name}: worst relative L2 against timm: {}", worst.join(", "));
    }
    assert!(ran > 0, "no case matched");
    assert!(problems.is_empty(), "{} problems:\n{}", problems.len(), problems.join("\n"));
}

#[test]
fn sk_resnets_match_timm() {
    check_family(&|n| n.starts_with("timm.sk"));
}

#[test]
fn basic_block_resnets_with_attention_match_timm() {
    check_family(&|n| ["timm.resnet18", "timm.resnet34"].iter().any(|p| n.starts_with(p)));
}

#[test]
fn bottleneck_resnets_with_attention_match_timm() {
    check_family(&|n| ["timm.resnet26", "timm.resnet50", "timm.resnet101"].iter().any(|p| n.starts_with(p)));
}

#[test]
fn every_network_has_a_fixture() {
    let names: Vec<String> = cases().into_iter().map(|(_, io)| io.metadata["arch"].clone()).collect();
    for arch in ARCHS.iter().filter(|a| a.pretrained.is_some()) {
        assert!(names.iter().any(|n| n == arch.name), "{} has no fixture in tests/fixtures/networks", arch.name);
    }
}

/// Random weights with exactly the key set (names and shapes) of the hub's
/// `timm/skresnet18.ra_in1k` model.safetensors, from the list
/// tools/make_network_fixtures.py wrote.
fn skresnet18_state_dict() -> TensorFile {
    let text = std::fs::read_to_string(dir().join("timm.skresnet18.keys.json")).expect("key list");
    let keys: Vec<(String, Vec<usize>, String)> = serde_json::from_str(&text).expect("key list parses");
    let mut rng = common::rng();
    let mut file = TensorFile::default();
    for (name, dims, dtype) in keys {
        if dtype.contains("int") {
            file.skipped.push(name);
            continue;
        }
        let fan_in: usize = dims.iter().skip(1).product::<usize>().max(1);
        let bound = if name.ends_with("running_var") || name.ends_with("bn.weight") || name.contains("bn1.weight") {
            0.0
        } else {
            (3.0 / fan_in as f32).sqrt()
        };
        let t = if bound == 0.0 {
            Tensor::full(Shape::new(&dims).unwrap(), 1.0)
        } else {
            Tensor::random(Shape::new(&dims).unwrap(), &mut rng, -bound, bound)
        };
        file.tensors.insert(name, t);
    }
    file
}

#[test]
fn the_hub_skresnet18_key_set_loads_and_runs() {
    let file = skresnet18_state_dict();
    assert!(file.tensors.len() > 150, "{} tensors", file.tensors.len());
    let x = Tensor::random(Shape::new(&[1, 3, 64, 64]).unwrap(), &mut common::rng(), -1.0, 1.0);
    let options = BuildOptions { maps: true, ..Default::default() };
    let graph = blocks::build("timm.skresnet18", x.shape(), Weights::new(file, "hub keys"), &[], options)
        .expect("every tensor of the hub file is used and none is missing");
    let names = graph.output_names();
    assert!(names.contains(&"layer2.0.conv1.attn") && names.contains(&"layer4.1.conv1.attn"), "{names:?}");
    assert_eq!(names.len(), 9, "y and one SK map per block: {names:?}");
    let gpu = gpu_or_skip!();
    let plan = Plan::compile(gpu, &graph).expect("plan");
    let y = plan.run(gpu, &Tensors::from([("x".to_string(), x)])).expect("run");
    assert_eq!(y["y"].shape().dims(), &[1, 1000]);
    assert!(y["y"].data().iter().all(|v| v.is_finite()));
}

fn build_err(arch: &str, file: TensorFile, args: &[&str]) -> String {
    let x = Shape::new(&[1, 3, 64, 64]).unwrap();
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    match blocks::build(arch, &x, Weights::new(file, "model.safetensors"), &args, BuildOptions::default()) {
        Ok(_) => panic!("{arch} {args:?} should fail"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn wrong_weights_and_contradicting_arguments_are_named() {
    let sk18 = skresnet18_state_dict();
    // Another architecture's weights: the first missing tensor and the unused ones.
    let e = build_err("timm.resnet18", sk18.clone(), &[]);
    assert!(e.contains("missing tensor 'layer1.0.conv1.weight'") && e.contains("not used so far"), "{e}");
    // Another depth of the same family.
    let e = build_err("timm.skresnet34", sk18.clone(), &[]);
    assert!(e.contains("[2, 2, 2, 2] blocks per stage") && e.contains("[3, 4, 6, 3]"), "{e}");
    // DataParallel's module. prefix.
    let tensors = sk18.tensors.iter().map(|(k, v)| (format!("module.{k}"), v.clone())).collect();
    let dp = TensorFile { tensors, ..Default::default() };
    let e = build_err("timm.skresnet18", dp, &[]);
    assert!(e.contains("DataParallel") && e.contains("module."), "{e}");
    // Arguments that contradict the weights, and options glimpse does not implement.
    let e = build_err("timm.skresnet18", sk18.clone(), &["num_classes=10"]);
    assert!(e.contains("num_classes=10 contradicts the weights: fc.weight gives 1000"), "{e}");
    let e = build_err("timm.skresnet18", sk18.clone(), &["attn_layer=cbam"]);
    assert!(e.contains("attn_layer=cbam contradicts the weights"), "{e}");
    let e = build_err("timm.skresnet18", sk18.clone(), &["stem_type=deep"]);
    assert!(e.contains("stem_type='deep'") && e.contains("7x7 stem"), "{e}");
    let e = build_err("timm.skresnet18", sk18.clone(), &["output_stride=16"]);
    assert!(e.contains("output_stride other than 32"), "{e}");
    let e = build_err("timm.skresnet18", sk18.clone(), &["rd_ratio=1/4"]);
    assert!(e.contains("rd_ratio=0.25 contradicts") && e.contains("layer2.0.conv1: timm.SelectiveKernel"), "{e}");
    let e = build_err("timm.skresnet18", sk18.clone(), &["ratio=8"]);
    assert!(e.contains("unknown argument(s) ratio") && e.contains("num_classes"), "{e}");
    // The accepted ones, including training-only arguments.
    let x = Shape::new(&[1, 3, 64, 64]).unwrap();
    let ok: Vec<String> = ["num_classes=1000", "drop_rate=0.2", "channels=64,128,256,512", "rd_ratio=0.125"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    blocks::build("timm.skresnet18", &x, Weights::new(sk18, "hub"), &ok, BuildOptions::default()).unwrap();
}

/// The names and shapes of a state_dict, int bookkeeping included.
fn key_set(file: &TensorFile) -> Vec<(String, Vec<usize>)> {
    let mut keys: Vec<(String, Vec<usize>)> =
        file.tensors.iter().map(|(k, t)| (k.clone(), t.shape().dims().to_vec())).collect();
    keys.extend(file.skipped.iter().map(|k| (k.clone(), vec![])));
    keys.sort();
    keys
}

/// The benchmark's random weights have exactly timm's names and shapes: for every
/// fixture's constructor arguments, and for the hub's skresnet18 at full width.
#[test]
fn random_weights_have_timms_key_sets() {
    for (name, io) in cases() {
        let arch = blocks::arch(&io.metadata["arch"]).unwrap();
        let kwargs: serde_json::Value = serde_json::from_str(&io.metadata["timm_kwargs"]).unwrap();
        let list = |v: &serde_json::Value| v.as_array().unwrap().iter().map(|c| c.to_string()).collect::<Vec<_>>();
        let mut args = vec![format!("channels={}", list(&kwargs["channels"]).join(","))];
        args.push(format!("num_classes={}", kwargs["num_classes"]));
        if let Some(w) = kwargs.get("stem_width") {
            args.push(format!("stem_width={w}"));
        }
        args.extend(io.metadata["args"].split_whitespace().map(String::from));
        let make = arch.random_weights.expect("networks make random weights");
        let random = make(&args, &mut common::rng()).unwrap_or_else(|e| panic!("{name} {args:?}: {e}"));
        let timm = TensorFile::read(&dir().join(format!("{name}.weights.safetensors"))).unwrap();
        assert_eq!(key_set(&random), key_set(&timm), "{name} {args:?}");
    }
    let make = blocks::arch("timm.skresnet18").unwrap().random_weights.unwrap();
    assert_eq!(key_set(&make(&[], &mut common::rng()).unwrap()), key_set(&skresnet18_state_dict()));
}
