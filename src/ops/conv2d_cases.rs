//! conv2d's correctness cases: every kernel (Auto, Direct, Gemm) over awkward shapes,
//! groups, dilation, strides, padding, epilogues and a folded grid.

use super::{Conv2d, ConvKernel};
use crate::ops::{random_input, Activation, Case, Epilogue, SMALL_GRID};

/// A case with fresh inputs in [-1, 1] (affine and residual included when the
/// epilogue asks for them).
pub(super) fn case(rng: &mut fastrand::Rng, label: &str, conv: Conv2d, x: &[usize], weight: &[usize]) -> Case {
    let mut random = |dims: &[usize]| random_input(rng, dims, -1.0, 1.0);
    let mut inputs = vec![random(x), random(weight)];
    let g = conv.geometry(inputs[0].shape(), inputs[1].shape()).expect("case geometry is valid");
    if conv.epilogue.affine {
        inputs.push(random(&[2, weight[0]]));
    }
    if conv.epilogue.residual {
        inputs.push(random(&conv.output_dims(&g)));
    }
    Case::new(label, conv, inputs)
}

/// Correctness cases: odd sizes (no multiple of the 4 x 8 block or the 64-wide
/// workgroup), every kernel path (sliding and reloaded taps), groups, depthwise,
/// every epilogue (the fused residual on both tap paths, with groups and
/// depthwise), and a batch whose grid folds (past [`SMALL_GRID`] workgroups).
pub fn cases(rng: &mut fastrand::Rng) -> Vec<Case> {
    use Activation::{Relu, Sigmoid};
    let c = Conv2d::new();
    let epi = |affine, activation, residual| c.epilogue(Epilogue { affine, activation, residual });
    let table: Vec<(&str, Conv2d, &[usize], &[usize])> = vec![
        ("1x1 input and kernel, affine+relu", epi(true, Relu, false), &[1, 3, 1, 1], &[65, 3, 1, 1]),
        ("3x3 pad 1, batch 3", c.padding([1, 1]), &[3, 3, 7, 7], &[65, 3, 3, 3]),
        ("56x56 3x3 pad 1, affine+relu", epi(true, Relu, false).padding([1, 1]), &[1, 65, 56, 56], &[65, 65, 3, 3]),
        ("5x5 stride 2 pad 3", c.stride([2, 2]).padding([3, 3]), &[3, 3, 13, 17], &[3, 3, 5, 5]),
        ("3x3 dilation 2, sigmoid", epi(false, Sigmoid, false).dilation([2, 2]), &[1, 65, 13, 17], &[3, 65, 3, 3]),
        (
            "3x3 stride 2 dilation 2 pad 2",
            c.stride([2, 2]).dilation([2, 2]).padding([2, 2]),
            &[1, 3, 13, 17],
            &[65, 3, 3, 3],
        ),
        ("7x7 pad 3, affine+sigmoid", epi(true, Sigmoid, false).padding([3, 3]), &[3, 2, 13, 17], &[1, 2, 7, 7]),
        ("3x1 kernel pad [1, 0]", c.padding([1, 0]), &[1, 3, 13, 17], &[65, 3, 3, 1]),
        ("groups 2, pad 1", c.groups(2).padding([1, 1]), &[3, 6, 13, 17], &[10, 3, 3, 3]),
        ("groups 4 (5 channels each)", c.groups(4), &[1, 12, 7, 7], &[20, 3, 3, 3]),
        ("14x14, 3 channel blocks packed 2 per workgroup", c.padding([1, 1]), &[2, 16, 14, 14], &[20, 16, 3, 3]),
        ("groups 2 (12 channels each), pad 1", c.groups(2).padding([1, 1]), &[1, 6, 13, 17], &[24, 3, 3, 3]),
        (
            "groups 3 (9 channels each), dilation 2 pad 2, residual",
            epi(false, Activation::None, true).groups(3).dilation([2, 2]).padding([2, 2]),
            &[3, 6, 13, 17],
            &[27, 2, 3, 3],
        ),
        ("depthwise, affine+relu", epi(true, Relu, false).groups(65).padding([1, 1]), &[3, 65, 13, 17], &[65, 1, 3, 3]),
        ("affine+residual+relu", epi(true, Relu, true).padding([1, 1]), &[3, 65, 7, 7], &[65, 65, 3, 3]),
        ("residual+sigmoid, stride 2", epi(false, Sigmoid, true).stride([2, 2]), &[1, 3, 13, 17], &[3, 3, 3, 3]),
        (
            "56x56 3x3 pad 1, affine+residual+relu",
            epi(true, Relu, true).padding([1, 1]),
            &[1, 65, 56, 56],
            &[65, 65, 3, 3],
        ),
        (
            "residual only, groups 2, dilation 2 pad 2",
            epi(false, Activation::None, true).groups(2).dilation([2, 2]).padding([2, 2]),
            &[3, 6, 13, 17],
            &[10, 3, 3, 3],
        ),
        ("depthwise, residual+relu", epi(false, Relu, true).groups(65).padding([1, 1]), &[1, 65, 7, 9], &[65, 1, 3, 3]),
        ("1x1 stride 2, affine", epi(true, Activation::None, false).stride([2, 2]), &[1, 65, 13, 17], &[3, 65, 1, 1]),
        ("7x7 on a 1x1 input, pad 3", c.padding([3, 3]), &[1, 1, 1, 1], &[3, 1, 7, 7]),
        ("1 channel, 5x5 pad 1", c.padding([1, 1]), &[3, 1, 13, 17], &[3, 1, 5, 5]),
        // The implicit GEMM's edges: 130 channels (three row tiles, the last of 2), pixels spanning
        // images in one column tile, K = 20 x 9 (a partial K slice), a 7 x 7 stride-2 stem (K = 147,
        // no multiple of 4), a strided 1 x 1 downsample, grouped convs of 8 channels per group.
        (
            "130 channels, batch 2, affine+residual+relu",
            epi(true, Relu, true).padding([1, 1]),
            &[2, 20, 9, 11],
            &[130, 20, 3, 3],
        ),
        (
            "7x7 stem stride 2 pad 3, affine+relu",
            epi(true, Relu, false).stride([2, 2]).padding([3, 3]),
            &[2, 3, 29, 31],
            &[20, 3, 7, 7],
        ),
        (
            "1x1 stride 2, batch 3, affine",
            epi(true, Activation::None, false).stride([2, 2]),
            &[3, 24, 13, 15],
            &[40, 24, 1, 1],
        ),
        (
            "groups 4 of 8 channels, stride 2 pad 1",
            c.groups(4).stride([2, 2]).padding([1, 1]),
            &[2, 32, 11, 13],
            &[32, 8, 3, 3],
        ),
        (
            "groups 2 of 9 channels, dilation 2 pad 2, stride 2, residual",
            epi(false, Activation::None, true).groups(2).dilation([2, 2]).padding([2, 2]).stride([2, 2]),
            &[1, 6, 15, 14],
            &[18, 3, 3, 3],
        ),
        ("5x3 kernel pad [2, 1], 70 input channels", c.padding([2, 1]), &[1, 70, 10, 7], &[9, 70, 5, 3]),
        // conv2d_gemm_subgroup's vec4 stores (output planes of whole vec4s, here 8 x 8 spanning two
        // images in one column tile) with the residual read as vec4s, and its unaligned weight rows
        // (K = 3 x 5 x 5 = 75) with them.
        (
            "1x1 stride 2, 8x8 output, batch 2, affine+residual+relu",
            epi(true, Relu, true).stride([2, 2]),
            &[2, 32, 16, 16],
            &[24, 32, 1, 1],
        ),
        (
            "5x5 pad 2, K = 75, 12x12 output, residual+sigmoid",
            epi(false, Sigmoid, true).padding([2, 2]),
            &[2, 3, 12, 12],
            &[33, 3, 5, 5],
        ),
        // Output rows of whole quads (conv2d_gemm_subgroup's QUAD_STRIDE: 4 pixels 1 or 2 apart per
        // staged vec4, masked at the padding on both sides; with the stride-2 1 x 1 and the stem
        // cases above), groups and dilation too, and a stride-1 1 x 1 conv (ONE_TAP).
        (
            "groups 2 of 8 channels, dilation 2 pad 2, 10x12, batch 2, residual",
            epi(false, Activation::None, true).groups(2).dilation([2, 2]).padding([2, 2]),
            &[2, 16, 10, 12],
            &[16, 8, 3, 3],
        ),
        ("5x3 kernel pad [2, 1], 7x8, batch 2", c.padding([2, 1]), &[2, 9, 7, 8], &[12, 9, 5, 3]),
        (
            "3x3 stride 2 pad 1, groups 2 of 8, 8x8 output, batch 2, affine+residual+relu",
            epi(true, Relu, true).groups(2).stride([2, 2]).padding([1, 1]),
            &[2, 16, 15, 16],
            &[16, 8, 3, 3],
        ),
        ("1x1 stride 1, 4x12", epi(true, Activation::None, false), &[1, 20, 4, 12], &[16, 20, 1, 1]),
        // conv2d_window_subgroup (Auto on CPU devices with subgroups: 3 x 3 with padding = dilation
        // = 1 or 2, or 1 x 1 without padding, stride 1 or 2, one group, input channels a multiple of
        // 4; `choose::window_fits`): planes of whole vec4s (the
        // window offsets then constants) at every W % 4 and both dilations, planes that are not
        // (per-lane offsets; segments of 4 pixels end with each image), one-row maps, output
        // channels past a 16-row block and a 64-row tile, batches whose segments span column tiles.
        (
            "window: 12x12, batch 2, 20 -> 70 channels, affine+residual+relu",
            epi(true, Relu, true).padding([1, 1]),
            &[2, 20, 12, 12],
            &[70, 20, 3, 3],
        ),
        (
            "window: dilation 2, 10x14, batch 3, residual+sigmoid",
            epi(false, Sigmoid, true).dilation([2, 2]).padding([2, 2]),
            &[3, 8, 10, 14],
            &[24, 8, 3, 3],
        ),
        ("window: 4x7 (W % 4 = 3), batch 2", c.padding([1, 1]), &[2, 4, 4, 7], &[9, 4, 3, 3]),
        (
            "window: dilation 2, 8x7",
            epi(true, Activation::None, false).dilation([2, 2]).padding([2, 2]),
            &[1, 8, 8, 7],
            &[16, 8, 3, 3],
        ),
        (
            "window: 4x13 (W % 4 = 1), affine+relu",
            epi(true, Relu, false).padding([1, 1]),
            &[1, 8, 4, 13],
            &[17, 8, 3, 3],
        ),
        (
            "window: 7x7 planes, batch 3, affine+relu",
            epi(true, Relu, false).padding([1, 1]),
            &[3, 12, 7, 7],
            &[33, 12, 3, 3],
        ),
        (
            "window: dilation 2, 5x9 planes, batch 2, residual",
            epi(false, Activation::None, true).dilation([2, 2]).padding([2, 2]),
            &[2, 4, 5, 9],
            &[9, 4, 3, 3],
        ),
        ("window: one row of 13, batch 2", c.padding([1, 1]), &[2, 4, 1, 13], &[8, 4, 3, 3]),
        (
            "window: 28x28, 32 -> 64, affine+relu",
            epi(true, Relu, false).padding([1, 1]),
            &[1, 32, 28, 28],
            &[64, 32, 3, 3],
        ),
        // Stride 2: segments of one output row (whole vec4 rows of x: constant offsets; else per lane).
        (
            "window: stride 2, 16x16, batch 2, affine+residual+relu",
            epi(true, Relu, true).stride([2, 2]).padding([1, 1]),
            &[2, 8, 16, 16],
            &[20, 8, 3, 3],
        ),
        (
            "window: stride 2 dilation 2, 12x12 (6-pixel output rows), residual",
            epi(false, Activation::None, true).stride([2, 2]).dilation([2, 2]).padding([2, 2]),
            &[1, 8, 12, 12],
            &[16, 8, 3, 3],
        ),
        ("window: stride 2, 14x14, batch 3", c.stride([2, 2]).padding([1, 1]), &[3, 12, 14, 14], &[24, 12, 3, 3]),
        (
            "window: stride 2 dilation 2, 13x11, batch 2, affine+sigmoid",
            epi(true, Sigmoid, false).stride([2, 2]).dilation([2, 2]).padding([2, 2]),
            &[2, 4, 13, 11],
            &[9, 4, 3, 3],
        ),
        ("window: stride 2, 7x7, 70 outputs", c.stride([2, 2]).padding([1, 1]), &[1, 12, 7, 7], &[70, 12, 3, 3]),
        // 1 x 1 windows: one aligned load per channel (stride 1, planes of whole vec4s), two with a
        // shift (7 x 7 planes), every other element (stride 2, constant or per-lane offsets).
        ("window 1x1: 8x8, batch 2", epi(true, Relu, true), &[2, 8, 8, 8], &[20, 8, 1, 1]),
        (
            "window 1x1: 7x7 planes, batch 3, affine",
            epi(true, Activation::None, false),
            &[3, 12, 7, 7],
            &[24, 12, 1, 1],
        ),
        (
            "window 1x1: stride 2, 16x16, batch 2, affine+residual+relu",
            epi(true, Relu, true).stride([2, 2]),
            &[2, 8, 16, 16],
            &[24, 8, 1, 1],
        ),
        ("window 1x1: stride 2, 14x14, batch 2", c.stride([2, 2]), &[2, 16, 14, 14], &[17, 16, 1, 1]),
        (
            "window 1x1: stride 2, 13x11, sigmoid",
            epi(false, Sigmoid, false).stride([2, 2]),
            &[1, 4, 13, 11],
            &[9, 4, 1, 1],
        ),
        // conv2d_phased_subgroup (Auto on CPU devices with subgroups: the 7 x 7 / 2 stem, padding 3,
        // any C_in; `choose::phased_fits`): odd maps, a 1 x 1 input (every tap but the centre in the
        // border), 70 outputs (a partial 64-row tile), C_in = 1, 3, 4 and 5 (7 to 35 tap rows),
        // output rows of whole vec4s (vec4 stores) and not, every epilogue, and tiles of each
        // subgroup height.
        (
            "phased: 7x7/2 stem, 23x19, batch 3, residual+sigmoid",
            epi(false, Sigmoid, true).stride([2, 2]).padding([3, 3]),
            &[3, 3, 23, 19],
            &[70, 3, 7, 7],
        ),
        ("phased: 7x7/2 on a 1x1 input", c.stride([2, 2]).padding([3, 3]), &[2, 3, 1, 1], &[8, 3, 7, 7]),
        (
            "phased: 7x7/2 stem, 16x32 (4-pixel output rows), affine+residual+relu",
            epi(true, Relu, true).stride([2, 2]).padding([3, 3]),
            &[2, 3, 16, 32],
            &[16, 3, 7, 7],
        ),
        (
            "phased: 7x7/2, 1 channel, 9x14, affine",
            epi(true, Activation::None, false).stride([2, 2]).padding([3, 3]),
            &[2, 1, 9, 14],
            &[12, 1, 7, 7],
        ),
        (
            "phased: 7x7/2, 4 channels, 12x8, affine+relu",
            epi(true, Relu, false).stride([2, 2]).padding([3, 3]),
            &[1, 4, 12, 8],
            &[9, 4, 7, 7],
        ),
        ("phased: 7x7/2, 5 channels, 6x5", c.stride([2, 2]).padding([3, 3]), &[1, 5, 6, 5], &[20, 5, 7, 7]),
        // Taller subgroups (choose::matmul_tile on 8 lanes and 2 threads: 64 x 256 tiles of 64-row
        // subgroups for 60 outputs, 32 x 256 of 32-row ones for 30; 2 workgroups each).
        (
            "phased: 7x7/2 stem, 32x32, batch 2, 60 outputs, affine+residual+relu",
            epi(true, Relu, true).stride([2, 2]).padding([3, 3]),
            &[2, 3, 32, 32],
            &[60, 3, 7, 7],
        ),
        (
            "phased: 7x7/2 stem, 32x32, batch 2, 30 outputs, affine",
            epi(true, Activation::None, false).stride([2, 2]).padding([3, 3]),
            &[2, 3, 32, 32],
            &[30, 3, 7, 7],
        ),
        // One-subgroup tiles (choose::matmul_tile on 8 lanes and 2 threads: 50 workgroups of 64 x 32
        // for 120 outputs over 784 pixel slots, where 7 of 128 x 128 would leave a thread idle; a
        // partial row tile and a partial column tile).
        (
            "phased: 7x7/2 stem, 56x55, 120 outputs (one-subgroup tiles), affine+relu",
            epi(true, Relu, false).stride([2, 2]).padding([3, 3]),
            &[1, 3, 56, 55],
            &[120, 3, 7, 7],
        ),
        // The subsampled window (3 x 3 / 2, dilation 2, C_in a multiple of 4: the stride-1 windowed
        // kernel over x's even rows and columns; Auto takes it on CPU devices below Winograd's 16
        // tiles or 8 input channels): odd maps (a last even row and column), 7 x 7 (a 4 x 4 even
        // phase) and a 2 x 2 map (1 x 1 phase), one row, batches.
        (
            "subsampled window: 15x9 (12 tiles), affine+relu",
            epi(true, Relu, false).stride([2, 2]).dilation([2, 2]).padding([2, 2]),
            &[1, 8, 15, 9],
            &[20, 8, 3, 3],
        ),
        (
            "subsampled window: 7x7, 70 outputs, affine+residual+relu",
            epi(true, Relu, true).stride([2, 2]).dilation([2, 2]).padding([2, 2]),
            &[2, 12, 7, 7],
            &[70, 12, 3, 3],
        ),
        (
            "subsampled window: 2x2, batch 2",
            c.stride([2, 2]).dilation([2, 2]).padding([2, 2]),
            &[2, 4, 2, 2],
            &[8, 4, 3, 3],
        ),
        (
            "subsampled window: one row of 17, sigmoid",
            epi(false, Sigmoid, false).stride([2, 2]).dilation([2, 2]).padding([2, 2]),
            &[1, 4, 1, 17],
            &[9, 4, 3, 3],
        ),
        // repack_pixels + matmul_subgroup (Auto for strided 1 x 1 convs on CPU devices with
        // subgroups, `choose::repack_fits`; it also takes the stride-2 1 x 1 windows above): output
        // maps of 1, 4, 42 (padded to 44), 45 (to 48) and 49 (to 52) pixels, aligned 8 x 8, stride 3
        // and [1, 2], batches, every epilogue.
        (
            "repack: stride 2, 2x2 input, batch 3, affine+relu",
            epi(true, Relu, false).stride([2, 2]),
            &[3, 8, 2, 2],
            &[20, 8, 1, 1],
        ),
        (
            "repack: stride 2, 3x3 input, batch 2, sigmoid",
            epi(false, Sigmoid, false).stride([2, 2]),
            &[2, 4, 3, 3],
            &[9, 4, 1, 1],
        ),
        (
            "repack: stride 2, 14x14 (49 pixels), batch 2, affine+residual+relu",
            epi(true, Relu, true).stride([2, 2]),
            &[2, 16, 14, 14],
            &[70, 16, 1, 1],
        ),
        (
            "repack: stride 2, 13x11, residual+sigmoid",
            epi(false, Sigmoid, true).stride([2, 2]),
            &[1, 12, 13, 11],
            &[24, 12, 1, 1],
        ),
        ("repack: stride 2, 16x16, batch 2", c.stride([2, 2]), &[2, 20, 16, 16], &[36, 20, 1, 1]),
        (
            "repack: stride 3, 1x1 input, affine",
            epi(true, Activation::None, false).stride([3, 3]),
            &[1, 4, 1, 1],
            &[8, 4, 1, 1],
        ),
        // 41-wide output rows (odd, no vec4 quads: each pixel stepped on its own across rows).
        (
            "repack: stride 2, 10x82 (41-wide rows), affine",
            epi(true, Activation::None, false).stride([2, 2]),
            &[1, 4, 10, 82],
            &[12, 4, 1, 1],
        ),
        (
            "repack: stride [1, 2], 9x10, batch 2, residual",
            epi(false, Activation::None, true).stride([1, 2]),
            &[2, 8, 9, 10],
            &[16, 8, 1, 1],
        ),
        // im2col (repack_pixels gathering 3 x 3 taps, then matmul_subgroup): Auto for 3 x 3 / 2 convs
        // with padding 1 on small output maps on CPU devices with subgroups (`choose::conv2d`'s
        // im2col): 7 x 7 outputs over 2 images, a 5 x 6 output (30 pixels, packed to 32), a 1 x 1
        // one, and with few channels a 20 x 20 one.
        (
            "im2col: 3x3/2 pad 1, 14x14, 12 -> 20, batch 2, affine+residual+relu",
            epi(true, Relu, true).stride([2, 2]).padding([1, 1]),
            &[2, 12, 14, 14],
            &[20, 12, 3, 3],
        ),
        (
            "im2col: 3x3/2 pad 1, 9x11, 8 -> 9, sigmoid",
            epi(false, Sigmoid, false).stride([2, 2]).padding([1, 1]),
            &[1, 8, 9, 11],
            &[9, 8, 3, 3],
        ),
        (
            "im2col: 3x3/2 pad 1, 1x1 input, 4 -> 8, batch 3",
            c.stride([2, 2]).padding([1, 1]),
            &[3, 4, 1, 1],
            &[8, 4, 3, 3],
        ),
        // 20 x 20 outputs (400 pixels): few channels reach past 14 x 14 maps.
        (
            "im2col: 3x3/2 pad 1, 40x40, 8 -> 16, affine",
            epi(true, Activation::None, false).stride([2, 2]).padding([1, 1]),
            &[1, 8, 40, 40],
            &[16, 8, 3, 3],
        ),
    ];
    // Every case runs on Auto (whatever choose::conv2d picks for the device: on CPU devices Winograd,
    // the windowed, phased or repacked kernels; the implicit GEMM on GPUs; the direct kernel for
    // narrow groups) and on each portable kernel, with fresh inputs.
    let mut cases = Vec::new();
    for (label, conv, x, weight) in table {
        for kernel in [ConvKernel::Direct, ConvKernel::Gemm] {
            let forced = Conv2d { kernel, ..conv };
            cases.push(case(rng, &format!("{label}, {kernel:?}"), forced, x, weight));
        }
        cases.push(case(rng, label, conv, x, weight));
    }
    // 17 images of 8 x 8: past SMALL_GRID workgroups every kernel's grid folds into y.
    for kernel in [ConvKernel::Direct, ConvKernel::Gemm, ConvKernel::Auto] {
        let folded =
            case(rng, &format!("folded grid, {kernel:?}"), Conv2d { kernel, ..c }, &[17, 1, 8, 8], &[1, 1, 1, 1]);
        cases.push(folded.with_grid_limit(SMALL_GRID));
    }
    // A strided 1 x 1 conv (the repacked path on CPU devices with subgroups: both its launches fold).
    let strided = c.stride([2, 2]).epilogue(Epilogue { affine: true, activation: Relu, residual: true });
    let folded = case(rng, "folded grid, 1x1 stride 2, Auto", strided, &[17, 8, 16, 16], &[16, 8, 1, 1]);
    cases.push(folded.with_grid_limit(SMALL_GRID));
    cases.extend(super::winograd::cases(rng));
    cases
}

/// conv2d's repacked path (repack_pixels as im2col, then matmul_subgroup or, on small output maps,
/// matmul_rows_subgroup) forced onto taps,
/// padding, dilation and strides Auto never gives it (Auto takes it for 1 x 1 convs and 3 x 3 / 2
/// ones on small maps): for devices with subgroups only, where the forced kernel runs (tests/ops.rs).
pub fn repacked_cases(rng: &mut fastrand::Rng) -> Vec<Case> {
    use Activation::Relu;
    let c = Conv2d { kernel: ConvKernel::RepackSubgroup, ..Conv2d::new() };
    let epi = |affine, activation, residual| c.epilogue(Epilogue { affine, activation, residual });
    let table: Vec<(&str, Conv2d, &[usize], &[usize])> = vec![
        ("5x5 stride 2 pad 3, batch 2", c.stride([2, 2]).padding([3, 3]), &[2, 4, 13, 17], &[10, 4, 5, 5]),
        (
            "3x3 dilation 2 pad 2, affine+residual+relu",
            epi(true, Relu, true).dilation([2, 2]).padding([2, 2]),
            &[1, 8, 9, 10],
            &[12, 8, 3, 3],
        ),
        (
            "3x3 stride [1, 2] pad [0, 1] dilation [2, 1], batch 2",
            c.stride([1, 2]).padding([0, 1]).dilation([2, 1]),
            &[2, 4, 11, 9],
            &[6, 4, 3, 3],
        ),
        (
            "7x7 stride 2 pad 3, 4 channels, affine+relu",
            epi(true, Relu, false).stride([2, 2]).padding([3, 3]),
            &[1, 4, 20, 20],
            &[16, 4, 7, 7],
        ),
        ("1x3 pad [0, 1]", c.padding([0, 1]), &[1, 4, 5, 7], &[8, 4, 1, 3]),
        ("3x3 stride 2 pad 1, 28x28, 16 -> 70", c.stride([2, 2]).padding([1, 1]), &[1, 16, 28, 28], &[70, 16, 3, 3]),
        // Output maps of at most 52 pixels and output channels a multiple of 4: the GEMM is
        // matmul_rows_subgroup, B's rows padded to whole vec4s (49 -> 52, 9 -> 12), 35 unpadded.
        (
            "3x3 stride 2 pad 1, 13x13 -> 7x7, 8 -> 36, affine+residual+relu, batch 2",
            epi(true, Relu, true).stride([2, 2]).padding([1, 1]),
            &[2, 8, 13, 13],
            &[36, 8, 3, 3],
        ),
        ("1x1 stride 2, 14x14 -> 7x7, batch 3", c.stride([2, 2]), &[3, 12, 14, 14], &[20, 12, 1, 1]),
        // A 14 x 14 output at batch 1: the rows kernel in column tiles (196 = 3 x 52 + 40).
        ("1x1 stride 2, 28x28 -> 14x14", c.stride([2, 2]), &[1, 8, 28, 28], &[12, 8, 1, 1]),
        ("3x3 stride 2, 5x5 -> 3x3, 4 -> 8", c.stride([2, 2]).padding([1, 1]), &[1, 4, 5, 5], &[8, 4, 3, 3]),
    ];
    table
        .into_iter()
        .map(|(label, conv, x, weight)| case(rng, &format!("forced repack: {label}"), conv, x, weight))
        .collect()
}
