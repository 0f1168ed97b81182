//! matmul's correctness cases: every kernel (Naive, Tiled, Vec4, Subgroup, Repack and Rows through
//! Auto, ConvGemm)
//! over awkward M, N, K, every transpose, broadcast and full batches and each epilogue.

use super::{Axis, Dims, Matmul, Variant};
use crate::ops::{random_input, subgroup_tiles, Activation, Case, Epilogue};

/// A case of `op` on fresh inputs: `a` with batch `ba` and `b` with batch `bb` (M x N x K),
/// stored transposed as `op` says, plus the epilogue's inputs.
fn case(rng: &mut fastrand::Rng, label: &str, op: Matmul, [ba, bb, m, n, k]: [usize; 5]) -> Case {
    let mut random = |dims: &[usize]| random_input(rng, dims, -1.0, 1.0);
    let a = if op.trans_a { random(&[ba, k, m]) } else { random(&[ba, m, k]) };
    let b = if op.trans_b { random(&[bb, n, k]) } else { random(&[bb, k, n]) };
    let mut inputs = vec![a, b];
    if op.epilogue.affine {
        inputs.push(random(&[2, if op.epilogue_axis == Axis::Rows { m } else { n }]));
    }
    if op.epilogue.residual {
        inputs.push(random(&[ba.max(bb), m, n]));
    }
    let label = format!("{label}, {:?}, ta {}, tb {}", op.variant, op.trans_a as u8, op.trans_b as u8);
    Case::new(label, op, inputs)
}

/// The variants that can run an M x N x K product of `op`'s layout (A's batch `a_batch`): every
/// kernel for any layout, Vec4 where rows are whole vec4s, ConvGemm for the 1 x 1 conv form, and
/// Auto (Subgroup on 8-lane devices).
fn variants_for(op: Matmul, a_batch: usize, m: usize, n: usize, k: usize) -> Vec<Variant> {
    let d = Dims { batch: 1, a_batch, b_batch: 1, m, n, k };
    let mut variants = vec![Variant::Naive, Variant::Tiled, Variant::Auto];
    if op.vec4_fits(&d) {
        variants.push(Variant::Vec4);
    }
    if op.is_conv1x1(&d) {
        variants.push(Variant::ConvGemm);
    }
    variants
}

/// Correctness cases: awkward M, N, K (no multiple of the 64 tile or the 8-wide
/// invocation block), every transpose combination, broadcast and full batches
/// and each epilogue (affine and residual together included, fused in one
/// pass), on every kernel.
pub fn cases(rng: &mut fastrand::Rng) -> Vec<Case> {
    let mut cases = Vec::new();
    let transposes = [(false, false), (true, false), (false, true), (true, true)];
    let shapes = [(1, 1, 1), (3, 7, 13), (17, 65, 7), (65, 17, 257), (257, 13, 65), (13, 257, 3), (7, 3, 17)];
    for &(m, n, k) in &shapes {
        for &(ta, tb) in &transposes {
            for variant in variants_for(Matmul::new(ta, tb), 1, m, n, k) {
                let op = Matmul::new(ta, tb).with_variant(variant);
                cases.push(case(rng, &format!("{m}x{n}x{k}"), op, [1, 1, m, n, k]));
            }
        }
    }
    // Row lengths that are whole vec4s (but no multiple of 8, 16 or 64) take the vec4
    // kernels; K = 7 leaves a k tail, possible only with trans_a and not trans_b.
    for &(m, n, k) in &[(4, 4, 4), (20, 260, 12), (260, 12, 68), (36, 68, 7), (68, 132, 260)] {
        for &(ta, tb) in &transposes {
            for variant in variants_for(Matmul::new(ta, tb), 1, m, n, k) {
                let op = Matmul::new(ta, tb).with_variant(variant);
                cases.push(case(rng, &format!("{m}x{n}x{k}"), op, [1, 1, m, n, k]));
            }
        }
    }
    for (i, &(ba, bb)) in [(3, 3), (1, 3), (3, 1)].iter().enumerate() {
        let (ta, tb) = transposes[i + 1];
        for [m, n, k] in [[13, 17, 7], [12, 20, 8]] {
            for variant in variants_for(Matmul::new(ta, tb), ba, m, n, k) {
                let op = Matmul::new(ta, tb).with_variant(variant);
                cases.push(case(rng, &format!("batch {ba} x {bb}"), op, [ba, bb, m, n, k]));
            }
        }
    }
    let relu = Activation::Relu;
    let epilogues = [
        ("affine rows", Epilogue { affine: true, ..Epilogue::NONE }, Axis::Rows),
        ("affine cols", Epilogue { affine: true, ..Epilogue::NONE }, Axis::Cols),
        ("sigmoid", Epilogue { activation: Activation::Sigmoid, ..Epilogue::NONE }, Axis::Rows),
        ("residual+relu", Epilogue { residual: true, activation: relu, ..Epilogue::NONE }, Axis::Rows),
        ("affine+residual+relu", Epilogue { affine: true, residual: true, activation: relu }, Axis::Cols),
        ("affine rows+residual+relu", Epilogue { affine: true, residual: true, activation: relu }, Axis::Rows),
        (
            "affine+residual+sigmoid",
            Epilogue { affine: true, residual: true, activation: Activation::Sigmoid },
            Axis::Rows,
        ),
    ];
    for (label, epilogue, epilogue_axis) in epilogues {
        let mut layouts = vec![(false, false, [2, 2])];
        if epilogue.affine && epilogue.residual {
            // Both epilogue inputs with transposes and a broadcast operand.
            layouts.extend([(true, true, [1, 3]), (true, true, [3, 1])]);
        }
        for (ta, tb, [ba, bb]) in layouts {
            for [m, n, k] in [[17, 65, 13], [12, 68, 16]] {
                let plain = Matmul { epilogue, epilogue_axis, ..Matmul::new(ta, tb) };
                for variant in variants_for(plain, ba, m, n, k) {
                    cases.push(case(rng, label, plain.with_variant(variant), [ba, bb, m, n, k]));
                }
            }
        }
    }
    // The 1 x 1 conv form on maps whose pixel count is no multiple of 4 (7 x 7, 3 x 5): a broadcast
    // weight over a batch of 3, with every epilogue input; 20 rows (ConvGemm's implicit GEMM) and
    // 5 (fewer than its 8 rows per group: conv2d's direct kernel). 68 and 36 rows (multiples of 4,
    // no multiple of 16) take matmul_subgroup's aligned vec4 affine reads, the last 16-row block
    // partly past m.
    let full = Epilogue { affine: true, residual: true, activation: Activation::Relu };
    for [m, n, k] in [[20, 49, 36], [5, 15, 7], [70, 49, 130], [68, 36, 64], [36, 196, 8]] {
        let op = Matmul::conv1x1(full);
        for variant in variants_for(op, 1, m, n, k) {
            cases.push(case(rng, "1x1 conv form", op.with_variant(variant), [1, 3, m, n, k]));
        }
    }
    // The repacked path (Auto on CPU devices with subgroups: the 1 x 1 conv form with N % 4 != 0
    // and K % 4 == 0, see matmul_repack.rs): maps of 1, 2, 9, 13 and 49 pixels (padded to 4, 4,
    // 12, 16 and 52), M past a 16-row block, batches of 1 to 3, each epilogue.
    let affine = Epilogue { affine: true, ..Epilogue::NONE };
    let sigmoid = Epilogue { activation: Activation::Sigmoid, ..Epilogue::NONE };
    let residual_relu = Epilogue { residual: true, activation: Activation::Relu, ..Epilogue::NONE };
    let full_sigmoid = Epilogue { activation: Activation::Sigmoid, ..full };
    for (label, epilogue, [m, n, k], bb) in [
        ("repack, no epilogue", Epilogue::NONE, [17, 49, 12], 3),
        ("repack, affine, 1 pixel", affine, [70, 1, 8], 2),
        ("repack, sigmoid, 3x3 map", sigmoid, [9, 9, 4], 1),
        ("repack, residual+relu, 13 pixels", residual_relu, [24, 13, 16], 2),
        ("repack, affine+residual+relu", full, [33, 49, 20], 3),
        ("repack, affine+residual+sigmoid, 1x2 map", full_sigmoid, [16, 2, 4], 2),
    ] {
        let op = Matmul::conv1x1(epilogue);
        for variant in variants_for(op, 1, m, n, k) {
            cases.push(case(rng, label, op.with_variant(variant), [1, bb, m, n, k]));
        }
    }
    // matmul_rows_subgroup (Auto on CPU devices with subgroups: the 1 x 1 conv form with at most
    // 52 columns, M and K multiples of 4): 1 to 52 columns (quads of a lane's 4 rows straddling
    // two rows wherever N % 4 != 0), M past a workgroup's 4 W rows at 4 to 16 lanes, batches of
    // 1 to 3, each epilogue.
    for (label, epilogue, [m, n, k], bb) in [
        ("rows, no epilogue, 1 column", Epilogue::NONE, [4, 1, 4], 2),
        ("rows, affine, 5 columns", affine, [36, 5, 20], 3),
        ("rows, sigmoid, 13 columns", sigmoid, [100, 13, 8], 1),
        ("rows, residual+relu, 48 columns", residual_relu, [8, 48, 4], 1),
        ("rows, affine+residual+relu, 7x7 map", full, [132, 49, 68], 2),
        ("rows, affine+residual+sigmoid, 52 columns", full_sigmoid, [64, 52, 12], 3),
        ("rows, affine, 33 columns", affine, [260, 33, 16], 2),
    ] {
        let op = Matmul::conv1x1(epilogue);
        for variant in variants_for(op, 1, m, n, k) {
            cases.push(case(rng, label, op.with_variant(variant), [1, bb, m, n, k]));
        }
    }
    // Rows longer than 52 in column tiles (Auto: at most 196 columns over the images side by side,
    // tiles of at least 48): a 14 x 14 map (4 tiles of 52, the last 40), 100 columns (52 and 48).
    for (label, epilogue, [m, n, k]) in [
        ("rows in column tiles, 14x14 map", full, [36, 196, 20]),
        ("rows in column tiles, 100 columns, sigmoid", sigmoid, [8, 100, 8]),
    ] {
        let op = Matmul::conv1x1(epilogue);
        for variant in variants_for(op, 1, m, n, k) {
            cases.push(case(rng, label, op.with_variant(variant), [1, 1, m, n, k]));
        }
    }
    // The same kernel with A batched (Winograd's GEMMs), B batched or broadcast.
    for (label, [ba, bb, m, n, k]) in [
        ("rows, A and B batched", [3, 3, 36, 49, 20]),
        ("rows, B broadcast", [3, 1, 12, 13, 8]),
        ("rows in column tiles, A and B batched", [2, 2, 12, 104, 12]),
    ] {
        let op = Matmul::new(false, false).epilogue(full, Axis::Rows);
        for variant in variants_for(op, ba, m, n, k) {
            cases.push(case(rng, label, op.with_variant(variant), [ba, bb, m, n, k]));
        }
    }
    // Winograd's transposed GEMMs (both operands transposed, batched): 16 x 256 tiles, the last
    // partly past N, K = 20.
    let op = Matmul::new(true, true).epilogue(full, Axis::Rows);
    cases.push(case(rng, "tile 16x256, A and B transposed", op, [3, 3, 12, 252, 20]));
    // matmul_subgroup's columns across images (A shared, N % 4 == 0) with A transposed, the last
    // column tile partly past the batch's columns, and K = 7's tail (over 16- and, at 248 rows,
    // 64-row subgroups).
    for [m, n, k] in [[20, 12, 7], [8, 44, 12], [248, 24, 7]] {
        let op = Matmul::new(true, false).epilogue(full, Axis::Rows);
        for variant in variants_for(op, 1, m, n, k) {
            cases.push(case(rng, "shared A, columns across images", op.with_variant(variant), [1, 5, m, n, k]));
        }
    }
    cases
}

/// matmul_rows_subgroup forced onto column tiles Auto never gives it (narrower than 48 columns: 2
/// tiles of 32, 32 and 28, 28 and 28), every epilogue input: for devices with subgroups only, where
/// the forced kernel runs (tests/ops.rs).
pub fn rows_cases(rng: &mut fastrand::Rng) -> Vec<Case> {
    let full = Epilogue { affine: true, residual: true, activation: Activation::Relu };
    [[2, 36, 64, 20], [1, 8, 60, 8], [3, 12, 56, 4]]
        .into_iter()
        .map(|[bb, m, n, k]| {
            let op = Matmul::conv1x1(full).with_variant(Variant::Rows);
            case(rng, &format!("forced rows, {n} columns"), op, [1, bb, m, n, k])
        })
        .collect()
}

/// matmul_subgroup forced onto each of its tiles for subgroups of `width` lanes
/// ([`subgroup_tiles`]: every subgroup height and column-group count, and the one-subgroup tile),
/// whichever choose::matmul_tile would pick: the last row and column tiles partly past M and N,
/// alternately across images (A shared, 2 images of B: the column tiles run over both) and per
/// image (A and B batched), every epilogue input. For devices with subgroups of that width only,
/// where the forced kernel runs (tests/ops.rs).
pub fn tile_cases(rng: &mut fastrand::Rng, width: usize) -> Vec<Case> {
    let full = Epilogue { affine: true, residual: true, activation: Activation::Relu };
    subgroup_tiles(width)
        .into_iter()
        .enumerate()
        .map(|(i, tile)| {
            let (m, n, k) = (tile.rows + tile.rows / 2 - 4, tile.cols + tile.cols / 2 + 4, [12, 20, 36][i % 3]);
            let label = format!("forced tile {tile:?}, {m}x{n}x{k}");
            match i % 2 {
                0 => case(
                    rng,
                    &format!("{label}, across images"),
                    Matmul::conv1x1(full).with_tile(tile),
                    [1, 2, m, n, k],
                ),
                _ => {
                    let op = Matmul::new(false, false).epilogue(full, Axis::Rows).with_tile(tile);
                    case(rng, &format!("{label}, per image"), op, [2, 2, m, n, k])
                }
            }
        })
        .collect()
}
