//! Unit tests of conv2d: shape errors and the CPU reference on hand-computed examples.

use super::*;

fn shape(dims: &[usize]) -> Shape {
    Shape::new(dims).unwrap()
}

/// The error `conv` gives for these input shapes.
fn error(conv: Conv2d, dims: &[&[usize]]) -> String {
    let shapes: Vec<Shape> = dims.iter().map(|d| shape(d)).collect();
    conv.output_shape(&shapes.iter().collect::<Vec<_>>()).unwrap_err().to_string()
}

fn assert_mentions(err: &str, parts: &[&str]) {
    assert!(err.starts_with("conv2d: "), "{err}");
    for part in parts {
        assert!(err.contains(part), "{err:?} should mention {part:?}");
    }
}

#[test]
fn output_size_follows_pytorch() {
    let conv = Conv2d::new().stride([2, 1]).padding([3, 0]).dilation([1, 2]);
    let out = conv.output_shape(&[&shape(&[2, 3, 13, 17]), &shape(&[8, 3, 5, 3])]).unwrap();
    // (13 + 6 - 4 - 1) / 2 + 1 = 8, (17 + 0 - 4 - 1) / 1 + 1 = 13.
    assert_eq!(out, shape(&[2, 8, 8, 13]));
}

#[test]
fn bad_ranks_and_counts_are_rejected() {
    let c = Conv2d::new();
    assert_mentions(&error(c, &[&[3, 7, 7], &[8, 3, 3, 3]]), &["x", "[3 x 7 x 7]"]);
    assert_mentions(&error(c, &[&[1, 3, 7, 7], &[8, 3, 3]]), &["weight", "[8 x 3 x 3]"]);
    assert_mentions(&error(c, &[&[1, 3, 7, 7]]), &["expects 2 inputs", "got 1"]);
    let affine = Epilogue { affine: true, activation: Activation::None, residual: false };
    assert_mentions(&error(c.epilogue(affine), &[&[1, 3, 7, 7], &[8, 3, 3, 3]]), &["affine", "got 2"]);
}

#[test]
fn bad_groups_are_rejected() {
    let c = Conv2d::new();
    let err = error(c.groups(2), &[&[1, 3, 7, 7], &[8, 1, 3, 3]]);
    assert_mentions(&err, &["[1 x 3 x 7 x 7]", "not divisible by groups 2"]);
    let err = error(c.groups(2), &[&[1, 4, 7, 7], &[7, 2, 3, 3]]);
    assert_mentions(&err, &["[7 x 2 x 3 x 3]", "7 output channels", "groups 2"]);
    let err = error(c, &[&[1, 4, 7, 7], &[8, 3, 3, 3]]);
    assert_eq!(
        err,
        "conv2d: weight [8 x 3 x 3 x 3] expects 3 input channels per group, x [1 x 4 x 7 x 7] has 4 with groups 1"
    );
    assert_mentions(&error(c.groups(0), &[&[1, 4, 7, 7], &[8, 4, 3, 3]]), &["groups must be positive"]);
}

#[test]
fn bad_stride_dilation_and_kernel_size_are_rejected() {
    let c = Conv2d::new();
    let ok: &[&[usize]] = &[&[1, 3, 7, 7], &[8, 3, 3, 3]];
    assert_mentions(&error(c.stride([1, 0]), ok), &["stride", "[1, 0]"]);
    assert_mentions(&error(c.dilation([0, 1]), ok), &["dilation", "[0, 1]"]);
    // 7 + 2 * 1 = 9 < 5 * 2 + 1 = 11: no output pixel.
    let err = error(c.padding([1, 1]).dilation([1, 2]), &[&[1, 3, 7, 7], &[8, 3, 3, 6]]);
    assert_mentions(&err, &["[8 x 3 x 3 x 6]", "[1 x 3 x 7 x 7]", "empty"]);
    // Overflowing arithmetic is the same error, not a panic.
    let err = error(c.dilation([usize::MAX, 1]), ok);
    assert_mentions(&err, &["empty"]);
}

#[test]
fn bad_epilogue_inputs_are_rejected() {
    let e = Epilogue { affine: true, activation: Activation::Relu, residual: true };
    let c = Conv2d::new().padding([1, 1]).epilogue(e);
    let err = error(c, &[&[1, 3, 7, 7], &[8, 3, 3, 3], &[8, 2], &[1, 8, 7, 7]]);
    assert_mentions(&err, &["affine", "[2 x 8]", "[8 x 2]"]);
    let err = error(c, &[&[1, 3, 7, 7], &[8, 3, 3, 3], &[2, 8], &[1, 8, 5, 5]]);
    assert_mentions(&err, &["residual", "[1 x 8 x 7 x 7]", "[1 x 8 x 5 x 5]"]);
    assert!(c
        .output_shape(&[&shape(&[1, 3, 7, 7]), &shape(&[8, 3, 3, 3]), &shape(&[2, 8]), &shape(&[1, 8, 7, 7])])
        .is_ok());
}

#[test]
fn indices_past_u32_are_rejected() {
    let c = Conv2d::new();
    let g = c.geometry(&shape(&[1, 1, 70000, 70000]), &shape(&[1, 1, 1, 1])).unwrap();
    let err = c.params(&g, BLOCK_CO).unwrap_err().to_string();
    assert_mentions(&err, &["element count", "32-bit"]);
    let g = c.geometry(&shape(&[65537, 1, 1, 1]), &shape(&[1, 1, 1, 1])).unwrap();
    assert_eq!(c.params(&g, BLOCK_CO).unwrap().1, 65537, "one workgroup per image");
    // A huge stride is named as the stride, not as a padded width.
    let c = Conv2d::new().stride([1, 1 << 30]);
    let g = c.geometry(&shape(&[1, 1, 4, 4]), &shape(&[1, 1, 1, 1])).unwrap();
    assert_mentions(&c.params(&g, BLOCK_CO).unwrap_err().to_string(), &["stride 1073741824", "32-bit"]);
}

#[test]
fn reference_matches_hand_computed_example() {
    // x = 1..9 as 3 x 3, a 2 x 2 kernel of ones, stride 2, padding 1: the
    // windows hold {1}, {2, 3}, {4, 7}, {5, 6, 8, 9}.
    let x = Tensor::from_vec(&[1, 1, 3, 3], (1..=9).map(|v| v as f32).collect()).unwrap();
    let w = Tensor::from_vec(&[1, 1, 2, 2], vec![1.0; 4]).unwrap();
    let c = Conv2d::new().stride([2, 2]).padding([1, 1]);
    assert_eq!(c.reference(&[&x, &w]).unwrap().data(), &[1.0, 5.0, 11.0, 28.0]);
    // Epilogue: relu(2 * acc - 10 + residual) with residual 1.
    let e = Epilogue { affine: true, activation: Activation::Relu, residual: true };
    let affine = Tensor::from_vec(&[2, 1], vec![2.0, -10.0]).unwrap();
    let residual = Tensor::full(shape(&[1, 1, 2, 2]), 1.0);
    let y = c.epilogue(e).reference(&[&x, &w, &affine, &residual]).unwrap();
    assert_eq!(y.data(), &[0.0, 1.0, 13.0, 47.0]);
}

#[test]
fn cost_counts_multiply_adds_and_bytes() {
    let c = Conv2d::new().padding([1, 1]).groups(2);
    let cost = c.cost(&[&shape(&[1, 4, 5, 5]), &shape(&[6, 2, 3, 3])]);
    assert_eq!(cost.flops, 2 * 6 * 25 * 2 * 9);
    assert_eq!(cost.bytes, 4 * (100 + 108 + 150));
}

#[test]
fn forced_strided_kernels_reject_convs_they_do_not_take() {
    let lavapipe = DeviceProfile::described("lavapipe", true, Some(8));
    let x_w = [shape(&[1, 8, 9, 9]), shape(&[16, 8, 3, 3])];
    let s2 = Conv2d::new().stride([2, 2]).padding([1, 1]);
    let phased = Conv2d { kernel: ConvKernel::PhasedSubgroup, ..s2 };
    let err = phased.resolved_kernel(&lavapipe, &x_w).unwrap_err().to_string();
    assert_mentions(&err, &["PhasedSubgroup", "7 x 7 convs with stride 2, padding 3", "got 3x3"]);
    let subsampled = Conv2d { kernel: ConvKernel::WindowSubsampled, ..s2 };
    let err = subsampled.resolved_kernel(&lavapipe, &x_w).unwrap_err().to_string();
    assert_mentions(&err, &["WindowSubsampled", "dilation 2", "dilation [1, 1]"]);
    // Taken: the stem, and the dilation-2 conv; without subgroups neither.
    let stem = Conv2d { kernel: ConvKernel::PhasedSubgroup, ..Conv2d::new().stride([2, 2]).padding([3, 3]) };
    let stem_shapes = [shape(&[1, 3, 32, 32]), shape(&[64, 3, 7, 7])];
    assert_eq!(stem.resolved_kernel(&lavapipe, &stem_shapes).unwrap(), ConvKernel::PhasedSubgroup);
    let d2 = Conv2d { kernel: ConvKernel::WindowSubsampled, ..s2.dilation([2, 2]).padding([2, 2]) };
    assert_eq!(d2.resolved_kernel(&lavapipe, &x_w).unwrap(), ConvKernel::WindowSubsampled);
    let gl = DeviceProfile::described("gl", true, None);
    assert_mentions(&stem.resolved_kernel(&gl, &stem_shapes).unwrap_err().to_string(), &["needs subgroups"]);
    // The stride-2 Winograd scheme takes padding 1 and dilation 1 only, on any device; F(2x2, 3x3)
    // takes the stride-2 dilation-2 conv (x's even phase) but no stride-2 dilation-1 one.
    let s2_winograd = Conv2d { kernel: ConvKernel::WinogradStride2, ..s2 };
    assert_eq!(s2_winograd.resolved_kernel(&gl, &x_w).unwrap(), ConvKernel::WinogradStride2);
    let err = Conv2d { kernel: ConvKernel::WinogradStride2, ..d2 }.resolved_kernel(&gl, &x_w).unwrap_err();
    assert_mentions(&err.to_string(), &["WinogradStride2", "padding 1, dilation 1", "dilation [2, 2]"]);
    let f2x2 = Conv2d { kernel: ConvKernel::Winograd, ..d2 };
    assert_eq!(f2x2.resolved_kernel(&gl, &x_w).unwrap(), ConvKernel::Winograd);
    let err = Conv2d { kernel: ConvKernel::Winograd, ..s2 }.resolved_kernel(&gl, &x_w).unwrap_err();
    assert_mentions(&err.to_string(), &["Winograd", "stride 2 and padding = dilation = 2", "stride [2, 2]"]);
}

#[test]
fn im2col_cases_reach_the_repacked_path_and_forcing_it_checks_k() {
    let lavapipe = DeviceProfile::described("lavapipe", true, Some(8));
    let s2 = Conv2d::new().stride([2, 2]).padding([1, 1]);
    // conv2d_cases' im2col rows: Auto takes the repacked path for them on lavapipe.
    let rows = [
        ([2, 12, 14, 14], [20, 12, 3, 3]),
        ([1, 8, 9, 11], [9, 8, 3, 3]),
        ([3, 4, 1, 1], [8, 4, 3, 3]),
        ([1, 8, 40, 40], [16, 8, 3, 3]),
    ];
    for (x, w) in rows {
        let shapes = [shape(&x), shape(&w)];
        assert_eq!(s2.resolved_kernel(&lavapipe, &shapes).unwrap(), ConvKernel::RepackSubgroup, "{x:?}");
    }
    // Forced, it takes any taps where K = channels x taps is whole vec4s (3 x 9 = 27 is not).
    let forced = Conv2d { kernel: ConvKernel::RepackSubgroup, ..s2.padding([3, 3]) };
    let five = [shape(&[1, 4, 13, 17]), shape(&[10, 4, 5, 5])];
    assert_eq!(forced.resolved_kernel(&lavapipe, &five).unwrap(), ConvKernel::RepackSubgroup);
    let err = forced.resolved_kernel(&lavapipe, &[shape(&[1, 3, 9, 9]), shape(&[8, 3, 3, 3])]).unwrap_err();
    assert_mentions(&err.to_string(), &["RepackSubgroup", "input channels x taps a multiple of 4", "3 input channels"]);
}
