//! `glimpse check --export`: what the browser runner (web/, `npm test`) replays must be the
//! launches glimpse makes. These checks need no browser: the manifest's launches name real
//! kernels with their Params sizes, bind only the case's inputs and output, and the data
//! files hold exactly the inputs and the reference output.

mod common;

use glimpse::check::export::{export_cases, fnv1a32};
use glimpse::gpu::{Gpu, GpuOptions};
use glimpse::ops::{all_cases, kernels};
use serde_json::Value;

#[test]
fn exported_launches_are_the_encoders_and_the_data_matches_the_shapes() {
    let _ = gpu_or_skip!();
    let native = Gpu::with_options(GpuOptions::webgpu_defaults()).unwrap();
    let portable = Gpu::with_options(GpuOptions { subgroups: false, ..GpuOptions::webgpu_defaults() }).unwrap();
    // A multi-dispatch op (attention_rows splits rows), a variant-choosing one (matmul) and
    // a view-binding one (narrow) and one binding a scratch buffer for its unused side output
    // (cbam_spatial_gate).
    let cases: Vec<_> = all_cases(&mut common::rng())
        .into_iter()
        .filter(|c| ["attention_rows", "narrow", "matmul", "cbam_spatial_gate"].contains(&c.op.name()))
        .collect();
    let dir = std::env::temp_dir().join(format!("glimpse-export-test-{}", std::process::id()));
    let runs = export_cases(&dir, &cases, &native, &portable, 1).unwrap();
    assert_eq!(runs.len(), cases.len());
    let manifest: Value = serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["tolerance"]["rel"].as_f64(), Some(glimpse::check::OP_TOLERANCE.rel));

    let sizes: std::collections::HashMap<&str, usize> = kernels().iter().map(|(k, size)| (k.name, *size)).collect();
    for (name, k) in manifest["kernels"].as_object().unwrap() {
        let text = std::fs::read(format!("{}/{}", env!("CARGO_MANIFEST_DIR"), k["file"].as_str().unwrap())).unwrap();
        assert_eq!(k["fnv1a32"].as_u64(), Some(fnv1a32(&text) as u64), "{name}: hash of the file on disk");
    }
    let (mut multi_dispatch, mut scratch_bound) = (false, false);
    for (case, c) in cases.iter().zip(manifest["cases"].as_array().unwrap()) {
        assert_eq!(c["op"], case.op.name());
        let numel = |t: &Value| t["shape"].as_array().unwrap().iter().map(|d| d.as_u64().unwrap()).product::<u64>();
        let inputs = c["inputs"].as_array().unwrap();
        let data_len = std::fs::metadata(dir.join(c["data"].as_str().unwrap())).unwrap().len();
        let want_numel = numel(&c["want"]);
        assert_eq!(data_len, 4 * (inputs.iter().map(numel).sum::<u64>() + want_numel), "{}", c["label"]);
        for v in c["variants"].as_array().unwrap() {
            let dispatches = v["dispatches"].as_array().unwrap();
            multi_dispatch |= dispatches.len() > 1;
            for d in dispatches {
                let kernel = d["kernel"].as_str().unwrap();
                assert_eq!(d["params"].as_array().unwrap().len(), sizes[kernel], "{kernel}: Params bytes");
                for b in d["bindings"].as_array().unwrap() {
                    let scratch = b["scratch"].as_u64().is_some_and(|bytes| bytes > 0);
                    scratch_bound |= scratch;
                    let input = b.as_u64().is_some_and(|i| (i as usize) < inputs.len());
                    assert!(b == "output" || input || scratch, "{kernel}: {b}");
                }
                assert!(d["bindings"].as_array().unwrap().contains(&Value::from("output")), "{kernel}");
            }
        }
    }
    assert!(multi_dispatch, "some case should need more than one dispatch");
    assert!(scratch_bound, "cbam_spatial_gate binds a scratch buffer for its map slot");
    std::fs::remove_dir_all(&dir).unwrap();
}
