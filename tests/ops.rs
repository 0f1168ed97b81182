//! Every GPU op against its CPU reference on fresh random inputs
//! (`<op>_should_match_reference`), and the folded-grid cases checked to fold.

mod common;

use glimpse::check::encode_case;
use glimpse::gpu::{Gpu, GpuTensor};
use glimpse::ops::{self, Case};
use glimpse::{Shape, Tensor};

/// The grids `case` launches on `gpu`, at the case's grid limit when `folded`, else at the device's own.
fn grids(gpu: &Gpu, case: &Case, folded: bool) -> Vec<[u32; 3]> {
    let inputs: Vec<GpuTensor> = case.inputs.iter().map(|t| gpu.upload(t).unwrap()).collect();
    let bound: Vec<&GpuTensor> = inputs.iter().collect();
    let output = gpu.empty(&case.op.output_shape(&ops::gpu_shapes_of(&bound)).unwrap()).unwrap();
    let dispatches =
        if folded { encode_case(gpu, case, &bound, &output) } else { case.op.encode(gpu, &bound, &output) };
    dispatches.unwrap().iter().map(|d| d.workgroups()).collect()
}

/// Fails unless `case` folds at its grid limit: a launch fills one grid dimension to the limit
/// and spills into the next, and (where the device allows more) the grids differ from the
/// unfolded ones.
fn assert_folds(gpu: &Gpu, case: &Case) {
    let what = format!("{} [{}]", case.op.name(), case.label);
    let limit = case.grid_limit.unwrap_or_else(|| panic!("{what} has no grid limit")).min(gpu.max_workgroups_per_dim());
    let folded = grids(gpu, case, true);
    let spills = |g: &[u32; 3]| (g[0] == limit && g[1] > 1) || (g[1] == limit && g[2] > 1);
    assert!(folded.iter().any(spills), "{what} does not fold at {limit} workgroups per dimension: grids {folded:?}");
    if limit < gpu.max_workgroups_per_dim() {
        let unfolded = grids(gpu, case, false);
        assert_ne!(folded, unfolded, "{what}: the grid limit changes no grid");
    }
}

#[test]
fn every_folded_grid_case_folds() {
    let gpu = gpu_or_skip!();
    let folded: Vec<Case> = ops::all_cases(&mut common::rng()).into_iter().filter(|c| c.grid_limit.is_some()).collect();
    let mut names: Vec<&str> = folded.iter().map(|c| c.op.name()).collect();
    names.dedup();
    // Every op whose kernels take a folded grid has a case for it.
    let want = [
        "eltwise",
        "max_pool2d",
        "avg_pool2d",
        "center_crop",
        "hard_mask",
        "channel_affine",
        "channel_pool",
        "global_pool",
        "gate",
        "softmax",
        "weighted_sum",
        "narrow",
        "conv2d",
        "cbam_channel_mlp",
        "cbam_gate_pool",
        "cbam_spatial_gate",
        "sk_sum_pool",
        "sk_attention",
        "render_overlay",
    ];
    assert_eq!(names, want, "ops with folded-grid cases");
    for case in &folded {
        assert_folds(gpu, case);
    }
}

/// The folded path at WebGPU's real limit (65535 workgroups per dimension), once per way a grid
/// folds: a linear index into y (eltwise), a plane index from y into z (gate). Native only:
/// hundreds of millions of invocations are too slow for the browser suite's CPU device.
#[test]
fn grids_fold_at_webgpus_limit() {
    let gpu = gpu_or_skip!();
    let mut rng = common::rng();
    let limit = 65535;
    let x = Tensor::random(Shape::new(&[65535 * 256 + 1]).unwrap(), &mut rng, -1.0, 1.0);
    let linear = Case::new("relu, 65535 x 256 + 1 elements", ops::eltwise::Eltwise::Relu, vec![x]);
    let gate = ops::gate::Gate::logits(ops::gate::GateMode::Channel);
    let dims = [1, 65537, 1, 1];
    let x = Tensor::random(Shape::new(&dims).unwrap(), &mut rng, -1.0, 1.0);
    let g = Tensor::random(Shape::new(&[1, 65537]).unwrap(), &mut rng, -6.0, 6.0);
    let planes = Case::new("channel logits, 65537 planes", gate, vec![x, g]);
    let cases = vec![linear.with_grid_limit(limit), planes.with_grid_limit(limit)];
    for case in &cases {
        assert_folds(gpu, case);
    }
    common::check_cases(gpu, cases);
}

#[test]
fn attention_rows_should_match_reference() {
    let gpu = gpu_or_skip!();
    common::check_cases(gpu, ops::attention_rows::cases(&mut common::rng()));
}

#[test]
fn avg_pool2d_should_match_reference() {
    let gpu = gpu_or_skip!();
    common::check_cases(gpu, ops::avg_pool2d::cases(&mut common::rng()));
}

#[test]
fn cbam_channel_mlp_should_match_reference() {
    let gpu = gpu_or_skip!();
    common::check_cases(gpu, ops::cbam_channel_mlp::cases(&mut common::rng()));
}

#[test]
fn cbam_gate_pool_should_match_reference() {
    let gpu = gpu_or_skip!();
    common::check_cases(gpu, ops::cbam_gate_pool::cases(&mut common::rng()));
}

#[test]
fn cbam_spatial_gate_should_match_reference() {
    let gpu = gpu_or_skip!();
    common::check_cases(gpu, ops::cbam_spatial_gate::cases(&mut common::rng()));
}

#[test]
fn center_crop_should_match_reference() {
    let gpu = gpu_or_skip!();
    common::check_cases(gpu, ops::center_crop::cases(&mut common::rng()));
}

#[test]
fn channel_affine_should_match_reference() {
    let gpu = gpu_or_skip!();
    common::check_cases(gpu, ops::channel_affine::cases(&mut common::rng()));
}

#[test]
fn channel_pool_should_match_reference() {
    let gpu = gpu_or_skip!();
    common::check_cases(gpu, ops::channel_pool::cases(&mut common::rng()));
}

#[test]
fn conv2d_should_match_reference() {
    let gpu = gpu_or_skip!();
    common::check_cases(gpu, ops::conv2d::cases(&mut common::rng()));
}

/// conv2d's repacked path forced onto convs Auto never gives it, where the adapter has subgroups of
/// one fixed width (the path's GEMM is matmul_subgroup; elsewhere forcing it is an error).
#[test]
fn conv2d_repacked_should_match_reference() {
    let gpu = gpu_or_skip!();
    if common::subgroup_width(gpu).is_none() {
        return;
    }
    common::check_cases(gpu, ops::conv2d::repacked_cases(&mut common::rng()));
}

/// matmul_rows_subgroup forced onto column tiles Auto never gives it, where the adapter has
/// subgroups of one fixed width (elsewhere forcing it is an error).
#[test]
fn matmul_rows_forced_should_match_reference() {
    let gpu = gpu_or_skip!();
    if common::subgroup_width(gpu).is_none() {
        return;
    }
    common::check_cases(gpu, ops::matmul::rows_cases(&mut common::rng()));
}

/// matmul_subgroup forced onto every tile it can take at the adapter's subgroup width, where the
/// adapter has subgroups of one fixed width (elsewhere forcing it is an error).
#[test]
fn matmul_tiles_forced_should_match_reference() {
    let gpu = gpu_or_skip!();
    let Some(width) = common::subgroup_width(gpu) else { return };
    common::check_cases(gpu, ops::matmul::tile_cases(&mut common::rng(), width));
}

#[test]
fn eltwise_should_match_reference() {
    let gpu = gpu_or_skip!();
    common::check_cases(gpu, ops::eltwise::cases(&mut common::rng()));
}

#[test]
fn gate_should_match_reference() {
    let gpu = gpu_or_skip!();
    common::check_cases(gpu, ops::gate::cases(&mut common::rng()));
}

#[test]
fn global_pool_should_match_reference() {
    let gpu = gpu_or_skip!();
    common::check_cases(gpu, ops::global_pool::cases(&mut common::rng()));
}

#[test]
fn hard_mask_should_match_reference() {
    let gpu = gpu_or_skip!();
    common::check_cases(gpu, ops::hard_mask::cases(&mut common::rng()));
}

#[test]
fn matmul_should_match_reference() {
    let gpu = gpu_or_skip!();
    common::check_cases(gpu, ops::matmul::cases(&mut common::rng()));
}

#[test]
fn max_pool2d_should_match_reference() {
    let gpu = gpu_or_skip!();
    common::check_cases(gpu, ops::max_pool2d::cases(&mut common::rng()));
}

#[test]
fn narrow_should_match_reference() {
    let gpu = gpu_or_skip!();
    common::check_cases(gpu, ops::narrow::cases(&mut common::rng()));
}

#[test]
fn nonlocal_attention_should_match_reference() {
    let gpu = gpu_or_skip!();
    common::check_cases(gpu, ops::nonlocal_attention::cases(&mut common::rng()));
}

#[test]
fn render_overlay_should_match_reference() {
    let gpu = gpu_or_skip!();
    common::check_cases(gpu, ops::render_overlay::cases(&mut common::rng()));
}

#[test]
fn sk_attention_should_match_reference() {
    let gpu = gpu_or_skip!();
    common::check_cases(gpu, ops::sk_attention::cases(&mut common::rng()));
}

#[test]
fn sk_sum_pool_should_match_reference() {
    let gpu = gpu_or_skip!();
    common::check_cases(gpu, ops::sk_sum_pool::cases(&mut common::rng()));
}

#[test]
fn softmax_should_match_reference() {
    let gpu = gpu_or_skip!();
    common::check_cases(gpu, ops::softmax::cases(&mut common::rng()));
}

#[test]
fn weighted_sum_should_match_reference() {
    let gpu = gpu_or_skip!();
    common::check_cases(gpu, ops::weighted_sum::cases(&mut common::rng()));
}

/// The device's scratch slots (conv2d's Winograd transforms share them): a request that fits reuses
/// the slot's buffer, viewed as the new shape; a larger one gets a new buffer, which the slot keeps.
#[test]
fn scratch_slots_reuse_a_buffer_that_fits_and_grow_past_it() {
    let gpu = gpu_or_skip!();
    let shape = |dims: &[usize]| Shape::new(dims).unwrap();
    let big = gpu.scratch("test slot", &shape(&[16, 64])).unwrap();
    let small = gpu.scratch("test slot", &shape(&[8, 8])).unwrap();
    assert!(small.shares_buffer(&big) && small.shape() == &shape(&[8, 8]));
    let bigger = gpu.scratch("test slot", &shape(&[32, 64])).unwrap();
    assert!(!bigger.shares_buffer(&big));
    assert!(gpu.scratch("test slot", &shape(&[16, 64])).unwrap().shares_buffer(&bigger));
    assert!(!gpu.scratch("another slot", &shape(&[8, 8])).unwrap().shares_buffer(&bigger));
}
