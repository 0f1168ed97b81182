//! attention_rows: the Non-local attention's softmax rows for chosen query pixels, for visualising
//! where each of them looks, without computing the whole Q x K matrix.

use super::nonlocal_attention::{score_dims, softmax_row, split_work, ScoreDims};
use super::{expect_inputs, expect_output, gpu_shapes_of, random_input, shapes_of, Case, Cost, Op};
use crate::gpu::{Dispatch, Gpu, GpuTensor};
use crate::{ensure, kernel, Result, Shape, Tensor};

/// The rows f[q, :] = softmax_k(scale * sum_d theta[n, d, q] phi[n, d, k]) of the requested queries:
/// `theta` [N, D, Q], `phi` [N, D, K] -> [N, queries.len(), K] (reshape a row to the key grid, e.g.
/// H x W, to draw it). The same scores as [`super::nonlocal_attention::NonLocalAttention`].
#[derive(Clone, Debug, PartialEq)]
pub struct AttentionRows {
    /// Multiplies every score. Must be finite.
    pub scale: f32,
    /// Flat query pixel indices q = y * W + x, each < Q; at least one. Repeats are allowed.
    pub queries: Vec<usize>,
}

/// Rows one dispatch carries in its `Params` (the shader's `queries` array).
const ROWS_PER_DISPATCH: usize = 16;

/// Mirrors `struct Params` in shaders/attention_rows.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct AttentionRowsParams {
    d: u32,
    q: u32,
    k: u32,
    rows: u32,
    row_begin: u32,
    row_count: u32,
    n_begin: u32,
    n_end: u32,
    scale: f32,
    _pad: [u32; 3],
    queries: [u32; ROWS_PER_DISPATCH],
}

impl AttentionRows {
    /// Validates the inputs and the query list.
    fn dims(&self, inputs: &[&Shape]) -> Result<ScoreDims> {
        expect_inputs(self, inputs)?;
        let op = self.name();
        let dims = score_dims(op, self.scale, inputs[0], inputs[1])?;
        ensure!(!self.queries.is_empty(), op, "needs at least one query pixel");
        for (i, &q) in self.queries.iter().enumerate() {
            ensure!(q < dims.q, op, "query {i} is pixel {q}, but theta {} has Q = {} query pixels", inputs[0], dims.q);
        }
        let out = Shape::new(&[dims.n, self.queries.len(), dims.k])?;
        super::nonlocal_attention::dims3(op, "output", "N x rows x K", &out)?;
        Ok(dims)
    }
}

impl Op for AttentionRows {
    fn name(&self) -> &'static str {
        "attention_rows"
    }

    fn input_names(&self) -> Vec<&'static str> {
        vec!["theta", "phi"]
    }

    fn output_shape(&self, inputs: &[&Shape]) -> Result<Shape> {
        let dims = self.dims(inputs)?;
        Shape::new(&[dims.n, self.queries.len(), dims.k])
    }

    fn reference(&self, inputs: &[&Tensor]) -> Result<Tensor> {
        let shape = self.output_shape(&shapes_of(inputs))?;
        let dims = self.dims(&shapes_of(inputs))?;
        let mut out = Vec::with_capacity(shape.numel());
        for n in 0..dims.n {
            for &q in &self.queries {
                let row = softmax_row(inputs[0].data(), inputs[1].data(), dims, self.scale, n, q);
                out.extend(row.into_iter().map(|p| p as f32));
            }
        }
        Tensor::new(shape, out)
    }

    fn encode(&self, gpu: &Gpu, inputs: &[&GpuTensor], output: &GpuTensor) -> Result<Vec<Dispatch>> {
        expect_output(self, inputs, output)?;
        let dims = self.dims(&gpu_shapes_of(inputs))?;
        let per_row = 2 * dims.k as u64 * dims.d as u64;
        let rects = split_work(dims.n, self.queries.len(), 1, ROWS_PER_DISPATCH, per_row);
        let mut dispatches = Vec::with_capacity(rects.len());
        for (images, rows) in rects {
            let mut queries = [0u32; ROWS_PER_DISPATCH];
            for (slot, &q) in queries.iter_mut().zip(&self.queries[rows.clone()]) {
                *slot = q as u32; // < Q, which fits
            }
            // Every value fits: dims3 bounded theta, phi and the output below 2^32 elements.
            let params = AttentionRowsParams {
                d: dims.d as u32,
                q: dims.q as u32,
                k: dims.k as u32,
                rows: self.queries.len() as u32,
                row_begin: rows.start as u32,
                row_count: rows.len() as u32,
                n_begin: images.start as u32,
                n_end: images.end as u32,
                scale: self.scale,
                _pad: [0; 3],
                queries,
            };
            let grid = [rows.len() as u32, images.len() as u32, 1];
            let bindings = [inputs[0], inputs[1], output];
            dispatches.push(gpu.prepare(&kernel!("attention_rows"), &[], &params, &bindings, grid)?);
        }
        Ok(dispatches)
    }

    /// 2 FLOPs per multiply-add of the scores. Bytes: the requested theta columns and all of phi
    /// read once, the rows written once.
    fn cost(&self, inputs: &[&Shape]) -> Cost {
        let Ok(dims) = self.dims(inputs) else {
            return Cost::default();
        };
        let (n, d, k, r) = (dims.n as u64, dims.d as u64, dims.k as u64, self.queries.len() as u64);
        Cost { flops: 2 * n * r * k * d, bytes: 4 * n * (r * d + d * k + r * k) }
    }
}

/// Correctness cases: the pixel counts and channels of the Non-local cases, first, last and repeated
/// queries, more rows than one dispatch carries, sub-sampled keys, logits above 300 and a dominant key.
pub fn cases(rng: &mut fastrand::Rng) -> Vec<Case> {
    let mut cases = Vec::new();
    let random = |dims: &[usize], rng: &mut fastrand::Rng| random_input(rng, dims, -1.0, 1.0);
    // (n, d, q, k, queries)
    let many: Vec<usize> = (0..37).map(|i| i * 83 % 784).collect();
    for (n, d, q, k, queries) in [
        (1, 1, 1, 1, vec![0]),
        (3, 3, 49, 49, vec![0, 48, 24, 24]),
        (1, 65, 221, 221, vec![220, 3]),
        (3, 16, 784, 196, many),
        (1, 4, 3136, 3136, vec![0, 1000, 3135]),
    ] {
        for scale in [1.0, (d as f32).powf(-0.5)] {
            let op = AttentionRows { scale, queries: queries.clone() };
            let label = format!("D {d}, Q {q}, K {k}, {} rows, scale {scale}", queries.len());
            cases.push(Case::new(label, op, vec![random(&[n, d, q], rng), random(&[n, d, k], rng)]));
        }
    }
    // Logits of several hundred: integers in [-20, 20] at D = 16, exact scores (see nonlocal_attention).
    let (mut theta, mut phi) = (random(&[3, 16, 221], rng), random(&[3, 16, 221], rng));
    for v in theta.data_mut().iter_mut().chain(phi.data_mut()) {
        *v = rng.i32(-20..=20) as f32;
    }
    let op = AttentionRows { scale: 1.0, queries: vec![0, 17, 220] };
    cases.push(Case::new("logits above 300", op, vec![theta, phi]));
    // Key 100 dominates every row by about 160: rows close to one-hot.
    let (mut theta, mut phi) = (random(&[1, 16, 221], rng), random(&[1, 16, 221], rng));
    theta.data_mut().iter_mut().for_each(|v| *v = v.abs());
    (0..16).for_each(|c| phi.data_mut()[c * 221 + 100] = 20.0);
    let op = AttentionRows { scale: 1.0, queries: vec![5, 100, 200] };
    cases.push(Case::new("one dominant key", op, vec![theta, phi]));
    cases
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_matches_a_hand_computed_example() {
        // D = 1: query 0 scores [0, ln 3] -> [1/4, 3/4]; query 1 scores [0, 0] -> [1/2, 1/2].
        let theta = Tensor::from_vec(&[1, 1, 2], vec![1.0, 0.0]).unwrap();
        let phi = Tensor::from_vec(&[1, 1, 2], vec![0.0, 3f32.ln()]).unwrap();
        let rows = AttentionRows { scale: 1.0, queries: vec![1, 0] }.reference(&[&theta, &phi]).unwrap();
        assert_eq!(rows.shape(), &Shape::new(&[1, 2, 2]).unwrap());
        let want = [0.5, 0.5, 0.25, 0.75];
        assert!(rows.data().iter().zip(want).all(|(a, b)| (a - b).abs() < 1e-6), "{:?}", rows.data());
    }

    #[test]
    fn bad_inputs_are_rejected() {
        let (theta, phi) = (Shape::new(&[2, 8, 49]).unwrap(), Shape::new(&[2, 8, 12]).unwrap());
        let err = |op: AttentionRows, t: &Shape, p: &Shape| op.output_shape(&[t, p]).unwrap_err().to_string();
        let op = |queries: Vec<usize>| AttentionRows { scale: 1.0, queries };
        assert_eq!(op(vec![48, 0]).output_shape(&[&theta, &phi]).unwrap(), Shape::new(&[2, 2, 12]).unwrap());
        let e = err(op(vec![3, 49]), &theta, &phi);
        assert!(e.contains("attention_rows") && e.contains("query 1 is pixel 49") && e.contains("Q = 49"), "{e}");
        assert!(err(op(vec![]), &theta, &phi).contains("at least one query"));
        let e = err(op(vec![0]), &theta, &Shape::new(&[2, 7, 12]).unwrap());
        assert!(e.contains("phi [2 x 7 x 12]") && e.contains("D 8 vs 7"), "{e}");
        let e = err(op(vec![0]), &Shape::new(&[2, 8, 7, 7]).unwrap(), &phi);
        assert!(e.contains("theta must be N x D x Q"), "{e}");
        let e = err(AttentionRows { scale: f32::NAN, queries: vec![0] }, &theta, &phi);
        assert!(e.contains("scale must be finite"), "{e}");
        // Rows x K beyond 2^32 elements.
        let big = Shape::new(&[1, 1, 1 << 20]).unwrap();
        let e = err(op(vec![0; 5000]), &big, &big);
        assert!(e.contains("output [1 x 5000 x 1048576]") && e.contains("32-bit"), "{e}");
        let t = Tensor::zeros(theta);
        let e = op(vec![0]).reference(&[&t]).unwrap_err().to_string();
        assert!(e.contains("expects 2 inputs (theta, phi), got 1"), "{e}");
    }
}
