//! Every shader parsed and validated by naga (no GPU needed), each `Params`
//! struct's size held against its WGSL twin, and every pipeline compiled on
//! devices limited to WebGPU's defaults and to wgpu's downlevel baseline.

mod common;

use glimpse::gpu::{Gpu, GpuOptions, Kernel, ParamsBinding, COPY_PARAMS, ENTRY_POINT, PARAMS_STORAGE, PARAMS_UNIFORM};
use glimpse::ops::kernels;
use std::collections::BTreeSet;

/// Parses and validates `kernel` as wgpu will (with subgroup operations only for the
/// kernels that declare `enable subgroups;`).
fn parse(kernel: &Kernel) -> naga::Module {
    parse_source(kernel, &kernel.naga_source())
}

/// [`parse`] for `source`, a form of `kernel`'s.
fn parse_source(kernel: &Kernel, source: &str) -> naga::Module {
    let name = kernel.name;
    let module =
        naga::front::wgsl::parse_str(source).unwrap_or_else(|e| panic!("{name}.wgsl: {}", e.emit_to_string(source)));
    let capabilities =
        if kernel.needs_subgroups() { naga::valid::Capabilities::SUBGROUP } else { naga::valid::Capabilities::empty() };
    naga::valid::Validator::new(naga::valid::ValidationFlags::all(), capabilities)
        .validate(&module)
        .unwrap_or_else(|e| panic!("{name}.wgsl fails validation: {e:?}"));
    module
}

/// Size in bytes of the uniform at @group(0) @binding(0).
fn params_size(module: &naga::Module) -> u32 {
    binding_zero(module, naga::AddressSpace::Uniform)
}

/// Size in bytes of the variable at @group(0) @binding(0), which must be in `space`.
fn binding_zero(module: &naga::Module, space: naga::AddressSpace) -> u32 {
    let mut layouter = naga::proc::Layouter::default();
    layouter.update(module.to_ctx()).expect("layout should compute");
    let var = module
        .global_variables
        .iter()
        .map(|(_, v)| v)
        .find(|v| v.binding.as_ref().is_some_and(|b| b.group == 0 && b.binding == 0))
        .expect("binding 0 should be the Params");
    assert_eq!(var.space, space, "binding 0's address space");
    layouter[var.ty].size
}

/// The kernels' parameters are declared a uniform, in the one line lavapipe's storage form is
/// made from (src/gpu/params.rs): a kernel declaring them otherwise would keep a uniform there,
/// which lavapipe may recompile at every dispatch and keep (tests/leak.rs shows the leak).
#[test]
fn every_kernel_declares_its_params_in_the_line_lavapipe_rewrites() {
    for (kernel, rust_size) in kernels() {
        let source = kernel.naga_source();
        let name = kernel.name;
        assert_eq!(
            source.matches(PARAMS_UNIFORM).count(),
            1,
            "{name}.wgsl must declare its parameters exactly once as `{PARAMS_UNIFORM}`"
        );
        assert_eq!(source.matches(ENTRY_POINT).count(), 1, "{name}.wgsl must have one `{ENTRY_POINT}`");
        let storage = ParamsBinding::ReadOnlyStorage.apply(source.clone());
        assert!(storage.contains(PARAMS_STORAGE) && storage.contains(COPY_PARAMS), "{name}: not rewritten");
        assert_eq!(storage.lines().count(), source.lines().count(), "{name}: the rewrite moved lines");
        let module = parse_source(&kernel, &storage);
        // The copy must be main's first statement, not text inside a comment or another block:
        // otherwise `params` would stay zero on lavapipe alone, and still validate.
        let main = module.entry_points.iter().find(|e| e.name == "main").expect("an entry point named main");
        let first = main.function.body.iter().find(|s| !matches!(s, naga::Statement::Emit(_)));
        let copies_params = match first {
            Some(naga::Statement::Store { pointer, .. }) => match main.function.expressions[*pointer] {
                naga::Expression::GlobalVariable(g) => module.global_variables[g].name.as_deref() == Some("params"),
                _ => false,
            },
            _ => false,
        };
        assert!(copies_params, "{name}: main must begin with `{COPY_PARAMS}` in the storage form");
        let size = binding_zero(&module, naga::AddressSpace::Storage { access: naga::StorageAccess::LOAD });
        assert_eq!(size as usize, rust_size, "{name}: storage Params vs Rust struct size");
    }
}

#[test]
fn every_shader_validates_and_matches_its_params() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/shaders");
    let on_disk: BTreeSet<String> = std::fs::read_dir(dir)
        .expect("shaders/ should exist")
        .map(|e| e.expect("readable entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "wgsl"))
        .map(|p| p.file_stem().expect("stem").to_string_lossy().into_owned())
        .collect();
    let registered: BTreeSet<String> = kernels().iter().map(|(k, _)| k.name.to_string()).collect();
    assert_eq!(on_disk, registered, "every shader file is a registered kernel and vice versa");
    for (kernel, rust_size) in kernels() {
        let module = parse(&kernel);
        assert_eq!(params_size(&module) as usize, rust_size, "{}: WGSL Params vs Rust struct size", kernel.name);
    }
}

/// Kernels that bind more than the downlevel baseline's 4 storage buffers,
/// and why. Each still fits the WebGPU default of 8.
const OVER_DOWNLEVEL: &[(&str, &str)] = &[
    ("weighted_sum", "up to 4 branches, the weights and the output"),
    ("weighted_sum_vec4", "up to 4 branches, the weights and the output"),
    ("cbam_spatial_apply", "x, channel weights, the spatial map, residual and output"),
    ("cbam_spatial_apply_vec4", "x, channel weights, the spatial map, residual and output"),
    ("conv2d", "input, weights, epilogue affine, residual and output"),
    (
        "conv2d_gemm",
        "input, weights (scalar and vec4 views), epilogue affine, residual and output; \
         its two 8 KiB tiles are also over downlevel's 16352 bytes",
    ),
    (
        "conv2d_gemm_subgroup",
        "input, weights (scalar and vec4 views), epilogue affine, residual and output; \
         its two 8 KiB tiles are also over downlevel's 16352 bytes",
    ),
    ("conv2d_window_subgroup", "input, weights, epilogue affine, residual and output"),
    ("conv2d_phased_subgroup", "phase planes, padded weights, epilogue affine, residual and output"),
    ("matmul", "a, b, epilogue affine, residual and output"),
    ("matmul_naive", "a, b, epilogue affine, residual and output"),
    ("matmul_vec4", "a, b, epilogue affine, residual and output"),
    ("matmul_subgroup", "a, b, epilogue affine, residual and output"),
    ("matmul_rows_subgroup", "a, b, epilogue affine, residual and output"),
    ("sk_sum_pool", "up to 4 branches and the output, so M = 4 is one dispatch"),
    ("sk_sum_pool_vec4", "up to 4 branches and the output, so M = 4 is one dispatch"),
    (
        "sk_attention",
        "s, fc, its affine, select weights and bias, and the output in one dispatch; \
         z's 16 KiB of workgroup memory is also over downlevel's 16352 bytes",
    ),
];

/// The kernels with workgroup arrays, each checked to write every element it reads before
/// reading it: glimpse's pipelines do not zero workgroup memory (`Gpu::pipeline` says why).
const WORKGROUP_MEMORY_WRITTEN_BEFORE_READ: [&str; 9] = [
    "attention_rows",
    "cbam_channel_mlp",
    "cbam_channel_mlp_vec4",
    "conv2d_gemm",
    "conv2d_gemm_subgroup",
    "global_pool_tree",
    "nonlocal_attention_wide",
    "sk_attention",
    "softmax_row",
];

#[test]
fn every_kernel_with_workgroup_memory_was_checked_to_write_it_before_reading() {
    for (kernel, _) in kernels() {
        let module = parse(&kernel);
        let shared = module.global_variables.iter().any(|(_, v)| v.space == naga::AddressSpace::WorkGroup);
        assert_eq!(
            shared,
            WORKGROUP_MEMORY_WRITTEN_BEFORE_READ.contains(&kernel.name),
            "{}: a kernel with workgroup arrays must write each element before reading it (pipelines do not \
             zero them); check it and list it in WORKGROUP_MEMORY_WRITTEN_BEFORE_READ",
            kernel.name
        );
    }
}

#[test]
fn every_pipeline_compiles_within_portable_limits() {
    if common::gpu().is_none() {
        return; // the reason was printed
    }
    let webgpu = Gpu::with_options(GpuOptions::webgpu_defaults()).expect("the adapter should accept WebGPU's limits");
    let downlevel = Gpu::with_options(GpuOptions::downlevel()).expect("the adapter should accept downlevel limits");
    for (name, _) in OVER_DOWNLEVEL {
        assert!(kernels().iter().any(|(k, _)| k.name == *name), "OVER_DOWNLEVEL names no kernel {name}");
    }
    for (kernel, _) in kernels() {
        if kernel.needs_subgroups() && webgpu.subgroup_size().is_none() {
            let e = webgpu.compile(&kernel).expect_err("a subgroup kernel without subgroups");
            assert!(e.to_string().contains("needs subgroup operations"), "{}: {e}", kernel.name);
            continue;
        }
        webgpu.compile(&kernel).unwrap_or_else(|e| panic!("{} within WebGPU's default limits: {e}", kernel.name));
        let over = OVER_DOWNLEVEL.iter().any(|(name, _)| *name == kernel.name);
        match downlevel.compile(&kernel) {
            Ok(()) => assert!(!over, "{} now fits the downlevel limits: take it off OVER_DOWNLEVEL", kernel.name),
            Err(e) => assert!(over, "{} within downlevel limits: {e}", kernel.name),
        }
    }
}
