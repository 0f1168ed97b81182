//! Unit tests of the matmul op (no GPU): bad inputs, a hand example, the
//! conv1x1 and linear helpers, the cost model.

use super::*;
use crate::ops::Activation;

fn shape(dims: &[usize]) -> Shape {
    Shape::new(dims).unwrap()
}

fn view(t: &Tensor, dims: &[usize]) -> Tensor {
    t.clone().reshape(dims).unwrap()
}

fn err(op: Matmul, inputs: &[&[usize]]) -> String {
    let shapes: Vec<Shape> = inputs.iter().map(|d| shape(d)).collect();
    op.output_shape(&shapes.iter().collect::<Vec<_>>()).unwrap_err().to_string()
}

#[test]
fn wrong_rank_is_rejected() {
    let e = err(Matmul::new(false, false), &[&[3, 4], &[1, 4, 5]]);
    assert!(e.starts_with("matmul:") && e.contains("rank 3") && e.contains("[3 x 4]"), "{e}");
}

#[test]
fn inner_dimensions_must_agree() {
    let e = err(Matmul::new(true, false), &[&[1, 4, 3], &[1, 5, 6]]);
    assert!(e.contains("[1 x 4 x 3]") && e.contains("[1 x 5 x 6]") && e.contains("trans_a true"), "{e}");
    assert!(e.contains("K = 4") && e.contains("K = 5") && e.contains("trans_b false"), "{e}");
}

#[test]
fn batch_sizes_must_be_equal_or_one() {
    let e = err(Matmul::new(false, false), &[&[2, 3, 4], &[3, 4, 5]]);
    assert!(e.contains("batch") && e.contains("[2 x 3 x 4]") && e.contains("[3 x 4 x 5]"), "{e}");
    let ok = Matmul::new(false, false).output_shape(&[&shape(&[1, 3, 4]), &shape(&[7, 4, 5])]).unwrap();
    assert_eq!(ok, shape(&[7, 3, 5]));
}

#[test]
fn epilogue_inputs_are_checked() {
    let affine = Matmul::conv1x1(Epilogue { affine: true, ..Epilogue::NONE });
    let e = err(affine, &[&[1, 3, 4], &[2, 4, 5], &[2, 5]]);
    assert!(e.contains("affine must be [2 x 3]") && e.contains("[2 x 5]"), "{e}");
    let cols = Matmul { epilogue_axis: Axis::Cols, ..affine };
    assert!(cols.output_shape(&[&shape(&[1, 3, 4]), &shape(&[2, 4, 5]), &shape(&[2, 5])]).is_ok());
    let residual = Matmul::conv1x1(Epilogue { residual: true, ..Epilogue::NONE });
    let e = err(residual, &[&[1, 3, 4], &[2, 4, 5], &[1, 3, 5]]);
    assert!(e.contains("residual must match the output [2 x 3 x 5]") && e.contains("[1 x 3 x 5]"), "{e}");
}

#[test]
fn wrong_input_count_is_rejected() {
    let e = err(Matmul::new(false, false), &[&[1, 3, 4]]);
    assert!(e.contains("expects 2 inputs (a, b), got 1"), "{e}");
    let both = Matmul::conv1x1(Epilogue { affine: true, residual: true, activation: Activation::Relu });
    let e = err(both, &[&[1, 3, 4], &[1, 4, 5], &[2, 3]]);
    assert!(e.contains("expects 4 inputs (a, b, affine, residual), got 3"), "{e}");
}

#[test]
fn sizes_past_u32_indexing_are_rejected() {
    // 65536 x 65537 elements: the output's element count needs 33 bits.
    let e = err(Matmul::new(false, false), &[&[1, 65536, 1], &[1, 1, 65537]]);
    assert!(e.contains("output [1 x 65536 x 65537]") && e.contains("32-bit"), "{e}");
    let e = err(Matmul::new(false, false), &[&[1, 1, 1 << 32], &[1, 1 << 32, 1]]);
    assert!(e.contains("element count of a"), "{e}");
}

#[test]
fn reference_matches_hand_computation() {
    // a = [[1, 2], [3, 4]] stored transposed; b = [[5, 6], [7, 8]]; relu(a b - 40).
    let a = Tensor::from_vec(&[1, 2, 2], vec![1.0, 3.0, 2.0, 4.0]).unwrap();
    let b = Tensor::from_vec(&[1, 2, 2], vec![5.0, 6.0, 7.0, 8.0]).unwrap();
    let affine = Tensor::from_vec(&[2, 2], vec![1.0, 1.0, -40.0, -40.0]).unwrap();
    let op = Matmul {
        epilogue: Epilogue { affine: true, activation: Activation::Relu, residual: false },
        ..Matmul::new(true, false)
    };
    let y = op.reference(&[&a, &b, &affine]).unwrap();
    // a b = [[19, 22], [43, 50]].
    assert_eq!(y.data(), &[0.0, 0.0, 3.0, 10.0]);
}

#[test]
fn conv1x1_equals_a_direct_convolution() {
    let mut rng = fastrand::Rng::with_seed(7);
    let (n, cin, cout, hw) = (2, 3, 4, 5);
    let w = Tensor::random(shape(&[cout, cin]), &mut rng, -1.0, 1.0);
    let x = Tensor::random(shape(&[n, cin, 1, hw]), &mut rng, -1.0, 1.0);
    let affine = Tensor::random(shape(&[2, cout]), &mut rng, -1.0, 1.0);
    let op = Matmul::conv1x1(Epilogue { affine: true, ..Epilogue::NONE });
    let y = op.reference(&[&view(&w, &[1, cout, cin]), &view(&x, &[n, cin, hw]), &affine]).unwrap();
    let (w, x, s) = (w.data(), x.data(), affine.data());
    for (i, &got) in y.data().iter().enumerate() {
        let (b, o, p) = (i / (cout * hw), i / hw % cout, i % hw);
        let sum: f64 = (0..cin).map(|c| w[o * cin + c] as f64 * x[(b * cin + c) * hw + p] as f64).sum();
        let want = s[o] as f64 * sum + s[cout + o] as f64;
        assert!((got as f64 - want).abs() < 1e-6, "element {i}: {got} vs {want}");
    }
}

#[test]
fn linear_equals_a_direct_computation() {
    let mut rng = fastrand::Rng::with_seed(8);
    let (rows, inp, outp) = (3, 5, 4);
    let x = Tensor::random(shape(&[rows, inp]), &mut rng, -1.0, 1.0);
    let w = Tensor::random(shape(&[outp, inp]), &mut rng, -1.0, 1.0);
    let bias = Tensor::random(shape(&[outp]), &mut rng, -1.0, 1.0);
    let mut affine = vec![1.0; outp];
    affine.extend_from_slice(bias.data());
    let affine = Tensor::from_vec(&[2, outp], affine).unwrap();
    let op = Matmul::linear(Epilogue { affine: true, ..Epilogue::NONE });
    let y = op.reference(&[&view(&x, &[1, rows, inp]), &view(&w, &[1, outp, inp]), &affine]).unwrap();
    assert_eq!(y.shape(), &shape(&[1, rows, outp]));
    let (x, w, bias) = (x.data(), w.data(), bias.data());
    for (i, &got) in y.data().iter().enumerate() {
        let (r, o) = (i / outp, i % outp);
        let want: f64 = (0..inp).map(|c| x[r * inp + c] as f64 * w[o * inp + c] as f64).sum::<f64>() + bias[o] as f64;
        assert!((got as f64 - want).abs() < 1e-6, "element {i}: {got} vs {want}");
    }
}

#[test]
fn cost_counts_flops_and_bytes() {
    let c = Matmul::new(false, false).cost(&[&shape(&[1, 2, 3]), &shape(&[4, 3, 5])]);
    assert_eq!(c, Cost { flops: 2 * 4 * 2 * 5 * 3, bytes: 4 * (6 + 60 + 40) });
}

#[test]
fn every_subgroup_tile_holds_each_output_once() {
    for width in [4, 8, 16, 32, 64] {
        for tile in crate::ops::subgroup_tiles(width) {
            crate::ops::check_tile_layout(width, tile);
        }
    }
}
