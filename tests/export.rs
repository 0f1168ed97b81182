//! `glimpse check --export`: what the browser runner (web/, `npm test`) replays must be the
//! launches glimpse makes. These checks need no browser: the manifest's launches name real
//! kernels with their Params sizes, bind only the case's inputs and output, and the data
//! files hold exactly the inputs and the reference output.

mod common;

use glimpse::check::export::{export_cases, fnv1a32, ExportGpus};
use glimpse::ops::{all_cases, kernels};
use serde_json::Value;

#[test]
fn exported_launches_are_the_encoders_and_the_data_matches_the_shapes() {
    let _ = gpu_or_skip!();
    let gpus = ExportGpus::open().unwrap();
    // A multi-dispatch op (attention_rows splits rows), a variant-choosing one (matmul) and
    // a view-binding one (narrow) and one binding a device scratch slot for its map when the map
    // is no side output (cbam_spatial_gate).
    let cases: Vec<_> = all_cases(&mut common::rng())
        .into_iter()
        .filter(|c| ["attention_rows", "narrow", "matmul", "cbam_spatial_gate"].contains(&c.op.name()))
        .collect();
    let dir = std::env::temp_dir().join(format!("glimpse-export-test-{}", std::process::id()));
    let runs = export_cases(&dir, &cases, &gpus, 1).unwrap();
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
                // Every launch writes the output, or a scratch buffer a later launch reads
                // (repack_pixels before matmul_subgroup).
                let bindings = d["bindings"].as_array().unwrap();
                let fills_scratch = bindings.iter().any(|b| b["id"].as_u64().is_some());
                assert!(bindings.contains(&Value::from("output")) || fills_scratch, "{kernel}");
            }
        }
    }
    assert!(multi_dispatch, "some case should need more than one dispatch");
    if gpus.native.subgroup_size().is_some() {
        check_subgroup_widths(&manifest, gpus.native.subgroup_size());
    }
    assert!(scratch_bound, "cbam_spatial_gate binds a scratch slot for its map");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn folded_grid_cases_are_recorded_folded() {
    let _ = gpu_or_skip!();
    let gpus = ExportGpus::open().unwrap();
    // One op whose grid folds into y, one whose plane index folds from y into z.
    let cases: Vec<_> = all_cases(&mut common::rng())
        .into_iter()
        .filter(|c| c.grid_limit.is_some() && ["sk_attention", "gate"].contains(&c.op.name()))
        .collect();
    assert!(cases.len() >= 2, "sk_attention and gate have folded-grid cases");
    let dir = std::env::temp_dir().join(format!("glimpse-export-fold-test-{}", std::process::id()));
    export_cases(&dir, &cases, &gpus, 1).unwrap();
    let manifest: Value = serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    for (case, c) in cases.iter().zip(manifest["cases"].as_array().unwrap()) {
        let limit = case.grid_limit.unwrap() as u64;
        assert_eq!(c["grid_limit"].as_u64(), Some(limit), "{}", c["label"]);
        for v in c["variants"].as_array().unwrap() {
            let grids: Vec<Vec<u64>> = v["dispatches"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d["workgroups"].as_array().unwrap().iter().map(|w| w.as_u64().unwrap()).collect())
                .collect();
            let spills = |g: &Vec<u64>| (g[0] == limit && g[1] > 1) || (g[1] == limit && g[2] > 1);
            assert!(grids.iter().any(spills), "{} [{}]: recorded grids {grids:?}", case.op.name(), case.label);
            assert!(grids.iter().flatten().all(|&w| w <= limit), "{}: {grids:?}", case.label);
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn launches_encoded_for_another_subgroup_width_are_refused_not_run() {
    let _ = gpu_or_skip!();
    let gpus = ExportGpus::open().unwrap();
    let Some(other) = gpus.other_widths.first() else {
        return; // no subgroups here: nothing is encoded for other widths
    };
    // The first matmul case whose launches use subgroups when encoded for that width.
    let (dispatches, output) = all_cases(&mut common::rng())
        .into_iter()
        .filter(|c| c.op.name() == "matmul")
        .find_map(|case| {
            let inputs: Vec<_> = case.inputs.iter().map(|t| other.upload(t).unwrap()).collect();
            let want = case.op.reference(&case.inputs.iter().collect::<Vec<_>>()).unwrap();
            let output = other.empty(want.shape()).unwrap();
            let dispatches = case.op.encode(other, &inputs.iter().collect::<Vec<_>>(), &output).unwrap();
            dispatches.iter().any(|d| d.recipe().kernel.needs_subgroups()).then_some((dispatches, output))
        })
        .expect("matmul picks its subgroup kernel where subgroups have a fixed width");
    let err = other.run(&dispatches, &[&output]).unwrap_err().to_string();
    assert!(err.contains("recorded, not run"), "{err}");
}

/// Every case whose launches use subgroups here has one variant per width from 4 to 64: the
/// adapter's own width run here, every other width recorded only, its SUBGROUP_WIDTH constants
/// set to that width; then the portable variant, run here.
fn check_subgroup_widths(manifest: &Value, own: Option<u32>) {
    let widths: Vec<u64> = vec![4, 8, 16, 32, 64];
    let mut subgroup_cases = 0;
    for c in manifest["cases"].as_array().unwrap() {
        let variants = c["variants"].as_array().unwrap();
        if variants[0]["subgroup_size"].is_null() {
            assert_eq!(variants.len(), 1, "{}: no subgroups, one variant", c["label"]);
            continue;
        }
        subgroup_cases += 1;
        let sizes: Vec<u64> = variants.iter().filter_map(|v| v["subgroup_size"].as_u64()).collect();
        let mut sorted = sizes.clone();
        sorted.sort();
        assert_eq!(sorted, widths, "{}: one variant per width", c["label"]);
        assert_eq!(sizes[0], own.unwrap() as u64, "{}: the adapter's own width first", c["label"]);
        for v in variants {
            let size = v["subgroup_size"].as_u64();
            let ran = v["recorded_ms"].is_number();
            assert_eq!(
                ran,
                size.is_none() || size == own.map(u64::from),
                "{}: run here only at {own:?} lanes",
                c["label"]
            );
            for d in v["dispatches"].as_array().unwrap() {
                if let Some(w) = d["constants"].get("SUBGROUP_WIDTH") {
                    assert_eq!(w.as_f64().map(|w| w as u64), size, "{}: SUBGROUP_WIDTH", c["label"]);
                }
            }
        }
        if c["no_portable_variant"].is_null() {
            assert!(variants.last().unwrap()["subgroup_size"].is_null(), "{}: the portable variant last", c["label"]);
        }
    }
    assert!(subgroup_cases > 0, "matmul's subgroup kernel should give cases with subgroup variants");
}
