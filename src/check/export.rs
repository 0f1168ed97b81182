//! `glimpse check --export DIR`: every op case written so that another WebGPU runtime
//! (the browser runner in `web/`) can replay exactly the launches glimpse makes and
//! judge them by the same rule.
//!
//! Layout of DIR:
//! - `manifest.json`: the tolerance rule, each kernel's file and a hash of its text,
//!   and per case its inputs, the reference output and one or more variants (the
//!   dispatches: kernel, override constants, Params bytes, bindings, grid);
//! - `data/<case>.bin`: the case's inputs, then the CPU reference's output, as
//!   little-endian f32.
//!
//! The launches are recorded, not re-derived: each case is encoded on this adapter
//! opened with WebGPU's default limits (the browser's), and the [`Recipe`] of every
//! [`Dispatch`] is written out. Kernel choice follows the device: where a case's
//! kernels use subgroups, the case is also encoded for every other subgroup width the
//! subgroup kernels take (4 to 64 lanes: kernel choice and the kernels' layouts follow
//! the width, see [`GpuOptions::encode_for_subgroup_width`]), so a runtime with those
//! lanes (SwiftShader's 4) runs its own subgroup launches; those are recorded, not run
//! here, as the lanes here differ. And it is encoded with subgroups off, which gives the
//! portable kernels for runtimes with no subgroups of a fixed width the kernels take.

use super::{compare, encode_case, Comparison, OP_TOLERANCE};
use crate::gpu::{Dispatch, Gpu, GpuOptions, GpuTensor, Kernel, Recipe, SUBGROUP_WIDTHS};
use crate::ops::Case;
use crate::{Error, Result, Tensor};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

/// The rule [`compare`] applies, in words a runner implements; `rel` comes with it.
pub const TOLERANCE_RULE: &str = "every element: |got - want| <= rel * (|want| + rms(want)), \
     rms over the whole reference tensor; NaN never passes; the shapes must match";

/// One exported case as it ran here.
#[derive(Debug)]
pub struct ExportedCase {
    /// Op name.
    pub op: &'static str,
    /// The case label.
    pub label: String,
    /// One entry per variant: kernels, how it compared here and its time here.
    pub variants: Vec<VariantRun>,
}

/// A variant as exported: run here where this adapter can, else recorded only.
#[derive(Debug)]
pub struct VariantRun {
    /// The kernels it launches, in order (repeats collapsed).
    pub kernels: Vec<&'static str>,
    /// Subgroup size its kernels are written for, if any.
    pub subgroup_size: Option<u32>,
    /// Against the reference; `None` for a variant encoded for subgroups of another width.
    pub comparison: Option<Comparison>,
    /// Upload, launch and read back, pipelines already compiled, in milliseconds (when run).
    pub millis: Option<f64>,
}

/// The devices an export encodes on: all the same adapter, opened with WebGPU's default limits.
pub struct ExportGpus {
    /// With the adapter's own subgroups: its variants run here too.
    pub native: Gpu,
    /// Subgroups off: the portable kernels, run here too.
    pub portable: Gpu,
    /// Encoding for every other width from [`SUBGROUP_WIDTHS`] (empty where the adapter has no
    /// subgroup operations): recorded, not run.
    pub other_widths: Vec<Gpu>,
}

impl ExportGpus {
    /// Opens the default adapter (WGPU_BACKEND / WGPU_ADAPTER_NAME) once per variant kind.
    pub fn open() -> Result<ExportGpus> {
        let native = Gpu::with_options(GpuOptions::webgpu_defaults())?;
        let portable = Gpu::with_options(GpuOptions { subgroups: false, ..GpuOptions::webgpu_defaults() })?;
        let mut other_widths = Vec::new();
        if native.has_subgroups() {
            let widths = SUBGROUP_WIDTHS.filter(|w| w.is_power_of_two() && native.subgroup_size() != Some(*w));
            for width in widths {
                let options = GpuOptions { encode_for_subgroup_width: Some(width), ..GpuOptions::webgpu_defaults() };
                other_widths.push(Gpu::with_options(options)?);
            }
        }
        Ok(ExportGpus { native, portable, other_widths })
    }
}

/// Exports `cases` into `dir`, running each variant this adapter can run (so the export
/// never holds such launches failing on the adapter that recorded them) and recording the
/// subgroup variants for other widths.
pub fn export_cases(dir: &Path, cases: &[Case], gpus: &ExportGpus, seed: u64) -> Result<Vec<ExportedCase>> {
    let ExportGpus { native, portable, other_widths } = gpus;
    let io = |what: &str, path: &Path, e: std::io::Error| Error::File {
        path: path.display().to_string(),
        msg: format!("{what}: {e}"),
    };
    let data_dir = dir.join("data");
    std::fs::create_dir_all(&data_dir).map_err(|e| io("cannot create", &data_dir, e))?;
    let mut kernels = BTreeMap::new();
    let mut manifest_cases = Vec::new();
    let mut runs = Vec::new();
    for (index, case) in cases.iter().enumerate() {
        let inputs: Vec<&Tensor> = case.inputs.iter().collect();
        let want = case.op.reference(&inputs)?;
        let mut variants = Vec::new();
        let mut variant_runs = Vec::new();
        let (native_json, native_run) = record_variant(native, case, &want, &mut kernels, true)?;
        let needs_subgroups = native_run.subgroup_size.is_some();
        variants.push(native_json);
        variant_runs.push(native_run);
        let mut portable_missing = Value::Null;
        if needs_subgroups {
            // Every width the subgroup kernels take must encode: a failure here is a bug, not a gap.
            for gpu in other_widths {
                let (json, run) = record_variant(gpu, case, &want, &mut kernels, false)?;
                // Where this width gets the portable kernels, the portable variant below serves it.
                if run.subgroup_size.is_some() {
                    variants.push(json);
                    variant_runs.push(run);
                }
            }
            // A case that asks for the subgroup kernel by name has no portable launch.
            match record_variant(portable, case, &want, &mut kernels, true) {
                Ok((json, run)) => {
                    variants.push(json);
                    variant_runs.push(run);
                }
                Err(e) => portable_missing = json!(e.to_string()),
            }
        }
        let file = format!("data/{index:04}.bin");
        let mut bytes = Vec::new();
        let mut tensor_entry = |t: &Tensor| {
            let entry = json!({ "shape": t.shape().dims(), "offset": bytes.len() });
            bytes.extend(t.data().iter().flat_map(|v| v.to_le_bytes()));
            entry
        };
        let inputs_json: Vec<Value> = inputs.iter().map(|t| tensor_entry(t)).collect();
        let want_json = tensor_entry(&want);
        let path = dir.join(&file);
        std::fs::write(&path, &bytes).map_err(|e| io("cannot write", &path, e))?;
        let shapes: Vec<String> = inputs.iter().map(|t| t.shape().to_string()).collect();
        manifest_cases.push(json!({
            "op": case.op.name(),
            "label": case.label,
            "shapes": shapes.join(", "),
            "data": file,
            "inputs": inputs_json,
            "want": want_json,
            "variants": variants,
            "no_portable_variant": portable_missing,
            // Its grids fold past this many workgroups per dimension (null: WebGPU's 65535).
            "grid_limit": case.grid_limit,
        }));
        runs.push(ExportedCase { op: case.op.name(), label: case.label.clone(), variants: variant_runs });
    }
    let manifest = json!({
        "format": 1,
        "seed": seed,
        "recorded_on": native.adapter().to_string(),
        "run_here_subgroup_size": native.subgroup_size(),
        "other_subgroup_sizes": other_widths.iter().map(|g| g.subgroup_size()).collect::<Vec<_>>(),
        "limits": "WebGPU defaults",
        "tolerance": { "rel": OP_TOLERANCE.rel, "rule": TOLERANCE_RULE },
        "kernels": kernels,
        "cases": manifest_cases,
    });
    let path = dir.join("manifest.json");
    let text = serde_json::to_string_pretty(&manifest).map_err(|e| Error::invalid("export", e.to_string()))?;
    std::fs::write(&path, text).map_err(|e| io("cannot write", &path, e))?;
    Ok(runs)
}

/// Encodes `case` on `gpu`, runs it when `run` (output poisoned with NaN; it must match
/// `want`) and describes its launches.
fn record_variant(
    gpu: &Gpu,
    case: &Case,
    want: &Tensor,
    kernels: &mut BTreeMap<&'static str, Value>,
    run: bool,
) -> Result<(Value, VariantRun)> {
    let inputs: Vec<GpuTensor> = case.inputs.iter().map(|t| gpu.upload(t)).collect::<Result<_>>()?;
    let bound: Vec<&GpuTensor> = inputs.iter().collect();
    let output = gpu.empty(want.shape())?;
    let dispatches = encode_case(gpu, case, &bound, &output)?;
    let (mut comparison, mut millis) = (None, None);
    if run {
        // Once to compile the pipelines, once timed: the time is the launch, not the compiler.
        let _ = run_once(gpu, &dispatches, &output)?;
        let start = Instant::now();
        let got = run_once(gpu, &dispatches, &output)?;
        millis = Some(start.elapsed().as_secs_f64() * 1e3);
        let c = compare(&got, want, OP_TOLERANCE);
        if !c.passed {
            return Err(Error::invalid(
                case.op.name(),
                format!(
                    "case {:?} differs from its reference on {} (err/tol {:.3})",
                    case.label,
                    gpu.adapter(),
                    c.worst
                ),
            ));
        }
        comparison = Some(c);
    }
    let mut launches = Vec::new();
    let mut names: Vec<&'static str> = Vec::new();
    let mut subgroup_size = None;
    let mut scratch = Vec::new();
    for d in &dispatches {
        let recipe = d.recipe();
        kernels.entry(recipe.kernel.name).or_insert_with(|| kernel_json(&recipe.kernel));
        if recipe.kernel.needs_subgroups() {
            subgroup_size = gpu.subgroup_size();
        }
        if names.last() != Some(&recipe.kernel.name) {
            names.push(recipe.kernel.name);
        }
        launches.push(dispatch_json(d, recipe, &bound, &output, &mut scratch)?);
    }
    let json = json!({
        "subgroup_size": subgroup_size,
        "dispatches": launches,
        "recorded_ms": millis,
    });
    Ok((json, VariantRun { kernels: names, subgroup_size, comparison, millis }))
}

/// Poisons the output, runs the launches and reads the output back.
fn run_once(gpu: &Gpu, dispatches: &[Dispatch], output: &GpuTensor) -> Result<Tensor> {
    gpu.fill(output, f32::NAN)?;
    Ok(gpu.run(dispatches, &[output])?.remove(0))
}

/// One launch: which tensor each binding is (input i, the output, or a buffer the encoder made,
/// numbered in `scratch` across the variant's launches: one launch may write what a later one reads,
/// as conv2d_phases' planes, repack_pixels' rows or Winograd's transforms), the rest verbatim.
fn dispatch_json<'a>(
    d: &Dispatch,
    recipe: &'a Recipe,
    inputs: &[&GpuTensor],
    output: &GpuTensor,
    scratch: &mut Vec<&'a GpuTensor>,
) -> Result<Value> {
    let bindings = recipe
        .bindings
        .iter()
        .map(|t| {
            if t.shares_buffer(output) {
                Ok(json!("output"))
            } else if let Some(i) = inputs.iter().position(|x| x.shares_buffer(t)) {
                Ok(json!(i))
            } else {
                // A buffer the encoder made itself: a slot the kernel declares but this case does
                // not read back (cbam_spatial_gate's side output with the map off), or one that
                // passes data between launches (conv2d_phases' planes, repack_pixels' rows,
                // Winograd's transforms): the same id, the same buffer.
                let id = match scratch.iter().position(|s| s.shares_buffer(t)) {
                    Some(id) => id,
                    None => {
                        scratch.push(t);
                        scratch.len() - 1
                    }
                };
                // The bound view's bytes, not the buffer's capacity: a device scratch slot's capacity
                // depends on what ran before in this process; the runner sizes each id's buffer to
                // the largest view of it.
                Ok(json!({ "scratch": t.shape().bytes(), "id": id }))
            }
        })
        .collect::<Result<Vec<_>>>()?;
    let constants: serde_json::Map<String, Value> =
        recipe.constants.iter().map(|(name, value)| (name.clone(), json!(value))).collect();
    Ok(json!({
        "kernel": recipe.kernel.name,
        "constants": constants,
        "params": recipe.params,
        "bindings": bindings,
        "workgroups": d.workgroups(),
    }))
}

/// Where a kernel's text lives and a hash of it, so a runner can tell that the file it
/// loads is the one this binary was built with.
fn kernel_json(kernel: &Kernel) -> Value {
    json!({
        "file": format!("shaders/{}.wgsl", kernel.name),
        "bytes": kernel.source.len(),
        "fnv1a32": fnv1a32(kernel.source.as_bytes()),
        "needs_subgroups": kernel.needs_subgroups(),
    })
}

/// 32-bit FNV-1a: small enough to write again in JavaScript.
pub fn fnv1a32(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5u32, |h, &b| (h ^ b as u32).wrapping_mul(0x0100_0193))
}

#[cfg(test)]
mod tests {
    use super::fnv1a32;

    #[test]
    fn fnv1a32_matches_published_vectors() {
        assert_eq!(fnv1a32(b""), 0x811c9dc5);
        assert_eq!(fnv1a32(b"a"), 0xe40c292c);
        assert_eq!(fnv1a32(b"foobar"), 0xbf9cf968);
    }
}
