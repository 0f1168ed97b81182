//! Whole networks from a model file: built from the same blocks, run on the
//! GPU and the CPU alike, maps named by layer, bad files named.

mod common;

use glimpse::blocks::BuildOptions;
use glimpse::check::{compare, BLOCK_REL_L2, OP_TOLERANCE};
use glimpse::graph::{Fusion, Plan, Tensors};
use glimpse::models::{Model, NETWORK_KEY};
use glimpse::ops::random_input;
use glimpse::tensorfile::TensorFile;

use std::path::Path;

/// stem (3 -> 32, stride 2) -> the BasicBlock fixture's weights -> pool -> fc (32 -> 4).
fn tiny_network(rng: &mut fastrand::Rng) -> TensorFile {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let block = TensorFile::read(&dir.join("BasicBlock_s1.weights.safetensors")).unwrap();
    let mut file = TensorFile::default();
    for (name, t) in block.tensors {
        file.tensors.insert(format!("layer1.0.{name}"), t);
    }
    file.tensors.insert("stem.conv.weight".into(), random_input(rng, &[32, 3, 3, 3], -0.3, 0.3));
    common::batchnorm(&mut file, rng, "stem.bn", 32);
    file.tensors.insert("fc.weight".into(), random_input(rng, &[4, 32], -0.5, 0.5));
    file.tensors.insert("fc.bias".into(), random_input(rng, &[4], -0.1, 0.1));
    let spec = r#"{"name": "tiny", "input": [3, 19, 17],
        "layers": [{"arch": "ConvBnAct", "prefix": "stem.", "args": ["stride=2"]},
                   {"arch": "BasicBlock", "prefix": "layer1.0."},
                   {"arch": "GlobalAvgPool"}, {"arch": "Linear", "prefix": "fc."}],
        "labels": ["a", "b", "c", "d"]}"#;
    file.metadata.insert(NETWORK_KEY.into(), spec.into());
    file
}

#[test]
fn a_network_runs_the_same_on_gpu_fused_unfused_and_cpu() {
    let mut rng = common::rng();
    let model = Model::from_file(tiny_network(&mut rng), "tiny").unwrap();
    let options = |fusion| BuildOptions { fusion, maps: true, queries: vec![] };
    let graph = model.build(2, options(Fusion::all())).unwrap();
    let mut names = graph.output_names();
    names.sort();
    assert_eq!(names, ["layer1.0.channel", "layer1.0.spatial", "y"]);
    let feed = Tensors::from([("x".to_string(), random_input(&mut rng, &[2, 3, 19, 17], -1.0, 1.0))]);
    let want = graph.run_cpu(&feed).unwrap();
    assert_eq!(want["y"].shape().dims(), &[2, 4]);
    let Some(gpu) = common::gpu() else { return };
    for fusion in [Fusion::all(), Fusion::none()] {
        let plan = Plan::compile(gpu, &model.build(2, options(fusion.clone())).unwrap()).unwrap();
        let got = plan.run(gpu, &feed).unwrap();
        for (name, w) in &want {
            let rel = compare(&got[name], w, OP_TOLERANCE).rel_l2;
            assert!(rel <= BLOCK_REL_L2, "{name} ({fusion:?}): {rel:e}");
        }
    }
}

#[test]
fn bad_model_files_are_named() {
    let mut rng = common::rng();
    let mut file = tiny_network(&mut rng);
    file.metadata.clear();
    let err = Model::from_file(file, "plain.safetensors").unwrap_err().to_string();
    assert!(err.contains("plain.safetensors") && err.contains("no 'glimpse.network' metadata"), "{err}");

    let mut file = tiny_network(&mut rng);
    file.metadata.insert(NETWORK_KEY.into(), "{\"name\": 3}".into());
    assert!(Model::from_file(file, "m").unwrap_err().to_string().contains("not a valid network"));

    let mut file = tiny_network(&mut rng);
    let huge = file.metadata[NETWORK_KEY].replace("[3, 19, 17]", "[3, 100000, 100000]");
    file.metadata.insert(NETWORK_KEY.into(), huge);
    let err = Model::from_file(file, "m").unwrap_err().to_string();
    assert!(err.contains("[3, 100000, 100000] is larger than glimpse accepts"), "{err}");

    let mut file = tiny_network(&mut rng);
    file.tensors.remove("layer1.0.bn2.bias");
    let model = Model::from_file(file, "m").unwrap();
    let err = model.build(1, BuildOptions::default()).unwrap_err().to_string();
    assert!(err.contains("layer 1 (BasicBlock at 'layer1.0.')") && err.contains("layer1.0.bn2.bias"), "{err}");

    let mut file = tiny_network(&mut rng);
    file.tensors.insert("extra.weight".into(), random_input(&mut rng, &[2], 0.0, 1.0));
    let err = Model::from_file(file, "m").unwrap().build(1, BuildOptions::default()).unwrap_err().to_string();
    assert!(err.contains("unexpected tensor(s) extra.weight"), "{err}");
}

#[test]
fn a_prefix_shared_by_two_layers_with_maps_is_rejected_at_load() {
    let mut rng = common::rng();
    let mut file = tiny_network(&mut rng);
    // The same BasicBlock twice: both would name their maps layer1.0.channel, layer1.0.spatial.
    let twice = file.metadata[NETWORK_KEY].replace(
        r#"{"arch": "BasicBlock", "prefix": "layer1.0."},"#,
        r#"{"arch": "BasicBlock", "prefix": "layer1.0."}, {"arch": "BasicBlock", "prefix": "layer1.0"},"#,
    );
    assert_ne!(twice, file.metadata[NETWORK_KEY]);
    file.metadata.insert(NETWORK_KEY.into(), twice);
    let err = Model::from_file(file, "dup.safetensors").unwrap_err().to_string();
    assert!(err.contains("dup.safetensors") && err.contains("layers 1 and 2 both use the prefix"), "{err}");

    // Layers without maps may share a prefix (the file's own business; weights decide).
    let mut file = tiny_network(&mut rng);
    let shared = file.metadata[NETWORK_KEY]
        .replace(r#"{"arch": "GlobalAvgPool"}"#, r#"{"arch": "GlobalAvgPool"}, {"arch": "GlobalAvgPool"}"#);
    file.metadata.insert(NETWORK_KEY.into(), shared);
    Model::from_file(file, "m").unwrap();
}
