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
fn matmul_should_match_reference() {
    let gpu = gpu_or_skip!();
    common::check_cases(gpu, ops::matmul::cases(&mut common::rng()));
}
