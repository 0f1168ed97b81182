//! Every GPU op against its CPU reference on fresh random inputs
//! (`<op>_should_match_reference`).

mod common;

use glimpse::ops;

#[test]
fn eltwise_should_match_reference() {
    let gpu = gpu_or_skip!();
    common::check_cases(gpu, ops::eltwise::cases(&mut common::rng()));
}

#[test]
fn max_pool2d_should_match_reference() {
    let gpu = gpu_or_skip!();
    common::check_cases(gpu, ops::max_pool2d::cases(&mut common::rng()));
}

#[test]
fn center_crop_should_match_reference() {
    let gpu = gpu_or_skip!();
    common::check_cases(gpu, ops::center_crop::cases(&mut common::rng()));
}

#[test]
fn hard_mask_should_match_reference() {
    let gpu = gpu_or_skip!();
    common::check_cases(gpu, ops::hard_mask::cases(&mut common::rng()));
}

#[test]
fn nonlocal_attention_should_match_reference() {
    let gpu = gpu_or_skip!();
    common::check_cases(gpu, ops::nonlocal_attention::cases(&mut common::rng()));
}

#[test]
fn attention_rows_should_match_reference() {
    let gpu = gpu_or_skip!();
    common::check_cases(gpu, ops::attention_rows::cases(&mut common::rng()));
}
