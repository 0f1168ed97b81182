//! Every GPU op against its CPU reference on fresh random inputs
//! (`<op>_should_match_reference`).

mod common;

use glimpse::ops;

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
