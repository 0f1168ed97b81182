//! `glimpse run --arch A --arg KEY=VALUE ...`: every architecture with its fixture weights,
//! an input shape and argument list from the fuzzer, built into a graph (shape inference and
//! every argument check): an error or a graph, never a panic.
#![no_main]

use glimpse::blocks::{self, BuildOptions};
use glimpse::graph::Fusion;
use glimpse::tensorfile::TensorFile;
use glimpse::weights::Weights;
use glimpse::Shape;
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

/// (architecture, weights fixture or "" for none) pairs the first byte chooses from.
const ARCHS: &[(&str, &str)] = &[
    ("BasicBlock", "BasicBlock_s2_ds"),
    ("ChannelAttention", "ChannelAttention_r4"),
    ("SpatialAttention", "SpatialAttention_k7"),
    ("SKConv", "SKConv_M2_G4_s2"),
    ("NonLocal", "NonLocal_sub_bn"),
    ("timm.CbamModule", "timm.CbamModule"),
    ("timm.LightCbamModule", "timm.CbamModule"),
    ("timm.SelectiveKernel", "timm.SelectiveKernel"),
    ("timm.NonLocalAttn", "timm.NonLocalAttn"),
    ("timm.resnet18", "networks/timm.resnet18_cbam"),
    ("timm.resnet26d", "networks/timm.resnet26d_nl"),
    ("CenterCrop", ""),
    ("MaxPool2d", ""),
    ("GlobalAvgPool", ""),
];

fn weights(i: usize) -> &'static TensorFile {
    static FILES: OnceLock<Vec<TensorFile>> = OnceLock::new();
    let files = FILES.get_or_init(|| {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/");
        ARCHS
            .iter()
            .map(|(_, name)| match name.is_empty() {
                true => TensorFile::default(),
                false => TensorFile::read(std::path::Path::new(&format!("{dir}{name}.weights.safetensors"))).unwrap(),
            })
            .collect()
    });
    &files[i]
}

fuzz_target!(|data: &[u8]| {
    let [pick, n, c, h, w, rest @ ..] = data else { return };
    let i = *pick as usize % ARCHS.len();
    // Small shapes (up to 2 x 96 x 64 x 64): the checks, not the sizes, are under test.
    let dims = [1 + *n as usize % 2, 1 + *c as usize % 96, 1 + *h as usize % 64, 1 + *w as usize % 64];
    let Ok(shape) = Shape::new(&dims) else { return };
    let Ok(text) = std::str::from_utf8(rest) else { return };
    let args: Vec<String> = text.split('\n').filter(|a| !a.is_empty()).map(String::from).collect();
    let weights = Weights::new(weights(i).clone(), ARCHS[i].1);
    let options = BuildOptions { fusion: Fusion::all(), maps: true, queries: vec![] };
    let _ = blocks::build(ARCHS[i].0, &shape, weights, &args, options);
});
