//! A model file's `glimpse.network` JSON (input size, layers with their KEY=VALUE
//! arguments, labels, normalisation), parsed and built into a graph against the demo
//! model's weights: an error or a graph, never a panic.
#![no_main]

use glimpse::blocks::BuildOptions;
use glimpse::graph::Fusion;
use glimpse::models::{Model, NETWORK_KEY};
use glimpse::tensorfile::TensorFile;
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn demo() -> &'static TensorFile {
    static FILE: OnceLock<TensorFile> = OnceLock::new();
    FILE.get_or_init(|| {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/demo/model.safetensors");
        TensorFile::read(std::path::Path::new(path)).expect("the demo model")
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(json) = std::str::from_utf8(data) else { return };
    let mut file = demo().clone();
    file.metadata.insert(NETWORK_KEY.to_string(), json.to_string());
    if let Ok(model) = Model::from_file(file, "fuzz") {
        // Shapes only: building infers every layer's shape and checks every argument.
        for fusion in [Fusion::all(), Fusion::none()] {
            let _ = model.build(1, BuildOptions { fusion, maps: true, queries: vec![] });
        }
    }
});
