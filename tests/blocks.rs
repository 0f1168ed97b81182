//! Bad input to the block builders: every mistake a user can make with an
//! architecture, its weights, its arguments or its input is a clear error.

use glimpse::blocks::{self, BuildOptions};
use glimpse::tensorfile::TensorFile;
use glimpse::weights::Weights;
use glimpse::{Shape, Tensor};
use std::path::Path;

fn fixture(name: &str) -> TensorFile {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name);
    TensorFile::read(&path).expect("fixture should load")
}

fn build_err(arch: &str, input: &[usize], weights: TensorFile, args: &[&str]) -> String {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let shape = Shape::new(input).unwrap();
    match blocks::build(arch, &shape, Weights::new(weights, "w.safetensors"), &args, BuildOptions::default()) {
        Ok(_) => panic!("{arch} {input:?} {args:?} should fail"),
        Err(e) => e.to_string(),
    }
}

fn basic_block() -> TensorFile {
    fixture("BasicBlock_s1.weights.safetensors")
}

fn assert_has(err: &str, parts: &[&str]) {
    for p in parts {
        assert!(err.contains(p), "'{err}' should mention '{p}'");
    }
}

#[test]
fn the_fixture_block_builds() {
    let shape = Shape::new(&[2, 32, 9, 9]).unwrap();
    blocks::build("BasicBlock", &shape, Weights::new(basic_block(), "w"), &[], BuildOptions::default()).unwrap();
}

#[test]
fn an_unknown_architecture_lists_the_valid_ones() {
    let err = build_err("Basicblock", &[1, 32, 8, 8], TensorFile::default(), &[]);
    assert_has(&err, &["unknown architecture 'Basicblock'", "BasicBlock", "timm.CbamModule", "SKConv"]);
}

#[test]
fn missing_unexpected_and_misshaped_weights_are_named() {
    let mut w = basic_block();
    w.tensors.remove("bn2.running_var");
    assert_has(
        &build_err("BasicBlock", &[2, 32, 9, 9], w, &[]),
        &["missing tensor 'bn2.running_var'", "w.safetensors"],
    );

    let mut w = basic_block();
    w.tensors.insert("fc.weight".into(), Tensor::zeros(Shape::new(&[3, 3]).unwrap()));
    assert_has(&build_err("BasicBlock", &[2, 32, 9, 9], w, &[]), &["unexpected tensor(s) fc.weight"]);

    let mut w = basic_block();
    w.tensors.insert("conv2.weight".into(), Tensor::zeros(Shape::new(&[32, 32, 5, 5]).unwrap()));
    assert_has(
        &build_err("BasicBlock", &[2, 32, 9, 9], w, &[]),
        &["'conv2.weight' has shape [32 x 32 x 5 x 5]", "[32, 32, 3, 3]"],
    );

    let mut w = fixture("SpatialAttention_k7.weights.safetensors");
    let name = w.tensors.keys().next().unwrap().clone();
    w.tensors.insert(name, Tensor::zeros(Shape::new(&[1, 2, 4, 4]).unwrap()));
    assert_has(&build_err("SpatialAttention", &[1, 8, 9, 9], w, &[]), &["k odd"]);
}

#[test]
fn inputs_of_the_wrong_rank_or_channels_are_rejected() {
    assert_has(
        &build_err("BasicBlock", &[32, 9, 9], basic_block(), &[]),
        &["BasicBlock", "N x C x H x W", "[32 x 9 x 9]"],
    );
    assert_has(&build_err("BasicBlock", &[2, 16, 9, 9], basic_block(), &[]), &["conv1.weight", "[2 x 16 x 9 x 9]"]);
}

#[test]
fn bad_arguments_are_named() {
    assert_has(
        &build_err("BasicBlock", &[2, 32, 9, 9], basic_block(), &["strid=2"]),
        &["unknown argument(s) strid", "valid: inplanes, planes, stride, downsample"],
    );
    assert_has(&build_err("BasicBlock", &[2, 32, 9, 9], basic_block(), &["stride=two"]), &["stride=two"]);
    // stride 2 needs a downsample these weights do not have.
    assert_has(&build_err("BasicBlock", &[2, 32, 9, 9], basic_block(), &["stride=2"]), &["downsample"]);
    assert_has(
        &build_err("CenterCrop", &[1, 3, 5, 5], TensorFile::default(), &["size=7,6"]),
        &["center_crop", "[1 x 3 x 5 x 5]"],
    );
    assert_has(&build_err("CenterCrop", &[1, 3, 5, 5], TensorFile::default(), &[]), &["size=H,W"]);
    assert_has(
        &build_err("MaxPool2d", &[1, 3, 5, 5], TensorFile::default(), &["kernel_size=3", "padding=2"]),
        &["padding"],
    );
    let sk = fixture("timm.SelectiveKernel.weights.safetensors");
    assert_has(
        &build_err("timm.SelectiveKernel", &[2, 32, 9, 9], sk.clone(), &["kernel_size=3,4"]),
        &["kernel_size 4"],
    );
    // One even size (timm's `kernel_size=4`, two paths of 4) is named as even, not as a branch count.
    assert_has(
        &build_err("timm.SelectiveKernel", &[2, 32, 9, 9], sk.clone(), &["kernel_size=4"]),
        &["kernel_size 4 must be odd and at least 3"],
    );
    assert_has(&build_err("timm.SelectiveKernel", &[2, 32, 9, 9], sk, &["kernel_size=3,5,7,9,11"]), &["5 branches"]);
}

#[test]
fn weights_given_to_a_weightless_block_are_unexpected() {
    let err = build_err("MaxPool2d", &[1, 3, 8, 8], basic_block(), &["kernel_size=2"]);
    assert_has(&err, &["unexpected tensor(s) for this architecture, the first bn1.bias"]);
}

/// Builds the golden fixture `name` (weights and input shape) with `args`.
fn build_fixture(name: &str, args: &[&str]) -> Result<(), String> {
    let io = fixture(&format!("{name}.io.safetensors"));
    let shape = io.tensors["x"].shape().clone();
    let arch = io.metadata["arch"].clone();
    let mut all: Vec<String> = io.metadata["args"].split_whitespace().map(String::from).collect();
    all.extend(args.iter().map(|s| s.to_string()));
    let weights = Weights::new(fixture(&format!("{name}.weights.safetensors")), "w.safetensors");
    blocks::build(&arch, &shape, weights, &all, BuildOptions::default()).map(|_| ()).map_err(|e| e.to_string())
}

#[test]
fn pytorch_constructor_arguments_are_accepted_and_checked_against_the_weights() {
    let ok = [
        ("ChannelAttention_r8", &["ratio=8"][..]),
        ("ChannelAttention_r4", &["ratio=4"]),
        ("SpatialAttention_k3", &["kernel_size=3"]),
        ("SKConv_M3_G4", &["M=3", "G=4", "r=4", "L=8"]),
        ("NonLocal_sub_bn", &["bn_layer=true", "dimension=2", "inter_channels=8"]),
        ("NonLocal_nosub_nobn", &["bn_layer=False"]),
        ("timm.CbamModule", &["rd_ratio=1/16", "spatial_kernel_size=7", "act_layer=relu", "mlp_bias=False"]),
        ("timm.NonLocalAttn", &["rd_ratio=0.125", "rd_divisor=8"]),
        ("timm.SelectiveKernel", &["rd_ratio=1/16", "act_layer=relu", "drop_layer=None"]),
    ];
    for (name, args) in ok {
        build_fixture(name, args).unwrap_or_else(|e| panic!("{name} {args:?}: {e}"));
    }
    let contradicted = [
        ("ChannelAttention_r8", &["ratio=4"][..], "argument ratio=4 contradicts the weights"),
        ("SpatialAttention_k7", &["kernel_size=3"], "kernel_size=3 contradicts the weights: conv.weight gives 7"),
        ("SKConv_M3_G4", &["M=2"], "M=2 contradicts"),
        ("SKConv_M3_G4", &["G=32"], "G=32 contradicts"),
        ("SKConv_M3_G4", &["r=16"], "r=16 contradicts the weights: max(32 // 16, L=32) = 32, fc.weight has 8 rows"),
        ("NonLocal_sub_bn", &["bn_layer=false"], "bn_layer=false contradicts"),
        ("timm.CbamModule", &["rd_channels=3"], "rd_channels=3 contradicts"),
        ("timm.CbamModule", &["act_layer=gelu"], "act_layer=gelu: expected one of relu"),
        ("timm.NonLocalAttn", &["rd_ratio=0.5"], "rd_ratio=0.5 contradicts"),
    ];
    for (name, args, want) in contradicted {
        let e = build_fixture(name, args).expect_err(&format!("{name} {args:?} should fail"));
        assert!(e.contains(want), "{name} {args:?}: '{e}' should contain '{want}'");
    }
}
