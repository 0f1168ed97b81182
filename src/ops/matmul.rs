//! matmul: batched GEMM `out[b] = epilogue(op(a[b]) x op(b[b]))` with optional
//! transposes, a broadcast batch and a fused epilogue. 1x1 convolutions and
//! linear layers run on it (see [`Matmul::conv1x1`] and [`Matmul::linear`]).

use super::conv2d::Conv2d;
use super::{expect_inputs, expect_output, shapes_of, to_u32, Cost, Epilogue, Op, SubgroupTile};
use crate::gpu::{Dispatch, Gpu, GpuTensor, Kernel};
use crate::{ensure, kernel, Error, Result, Shape, Tensor};

/// Which dimension of the M x N output the epilogue's affine is indexed by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Axis {
    /// affine is [2, M]: a 1x1 convolution, where M is the output channels.
    Rows,
    /// affine is [2, N]: a linear layer `y = x W^T + b`, where N is the output features.
    Cols,
}

/// Which kernel runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    /// The fastest kernel valid for the shapes and layouts.
    Auto,
    /// One output per invocation: the baseline benchmarks compare against.
    Naive,
    /// The register-tiled kernel for any layout (8 x 8 outputs per invocation).
    Tiled,
    /// The vec4 register-tiled kernel (8 x 8 outputs per invocation): needs operand
    /// rows of whole vec4s.
    Vec4,
    /// The vec4 kernel that shares A across subgroup lanes (16, 32 or 64 x 4 outputs per
    /// invocation): needs whole vec4 rows and subgroups of one fixed width from 4 to 64 lanes.
    Subgroup,
    /// conv2d's kernel for the same 1 x 1 conv (the one [`crate::ops::choose::conv2d`] picks):
    /// for the stride-1 1 x 1 conv form only (see [`Matmul::conv1x1`]: a broadcast weight
    /// [1, M, K], b [N, K, HW], affine per row), at any N.
    ConvGemm,
    /// The 1 x 1 conv form with B's rows padded to whole vec4s by a repack pass (repack_pixels,
    /// into scratch) and the Subgroup kernel storing the real rows (matmul_repack.rs): any N, K a
    /// multiple of 4, subgroups as for Subgroup.
    Repack,
    /// matmul_rows_subgroup (matmul_rows.rs), whose lanes take 4 output rows by all the columns
    /// of a column tile: products with neither operand transposed (A shared or batched), any
    /// affine per row, M and K multiples of 4, N at most 52 or a multiple of 4 (column tiles);
    /// subgroups as for Subgroup. Auto takes it on CPU devices for short rows (a 7 x 7 map's 1 x 1
    /// conv, Winograd's GEMMs over few tiles, a batch-1 14 x 14 map's 1 x 1 conv).
    Rows,
}

/// Batched matrix multiply. Inputs: `a` [Ba, M, K] (or [Ba, K, M] when
/// `trans_a`), `b` [Bb, K, N] (or [Bb, N, K] when `trans_b`), where Ba and Bb
/// are equal or one of them is 1 (broadcast), then the epilogue's inputs:
/// `affine` [2, M] or [2, N] (per `epilogue_axis`) and `residual` [B, M, N].
/// Output [B, M, N] with B = max(Ba, Bb).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Matmul {
    /// `a` is stored as [Ba, K, M].
    pub trans_a: bool,
    /// `b` is stored as [Bb, N, K].
    pub trans_b: bool,
    /// Applied to each accumulated output before it is stored.
    pub epilogue: Epilogue,
    /// The output dimension the affine is indexed by.
    pub epilogue_axis: Axis,
    /// Which kernel runs.
    pub variant: Variant,
    /// matmul_subgroup's tile where forced (the tests run every tile the device's subgroups can
    /// take); None: the one [`crate::ops::choose::matmul_tile`] picks.
    pub tile: Option<SubgroupTile>,
}

/// Output rows and columns one workgroup of the tiled kernels covers.
const TILE: usize = 64;
/// Invocations per workgroup of the one-element-per-invocation kernels.
const WORKGROUP: u64 = 256;

/// The sizes of one product, validated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Dims {
    batch: usize,
    a_batch: usize,
    b_batch: usize,
    m: usize,
    n: usize,
    k: usize,
}

impl Matmul {
    /// A plain product with the given transposes: no epilogue, automatic kernel.
    pub fn new(trans_a: bool, trans_b: bool) -> Matmul {
        let (epilogue, epilogue_axis, variant) = (Epilogue::NONE, Axis::Rows, Variant::Auto);
        Matmul { trans_a, trans_b, epilogue, epilogue_axis, variant, tile: None }
    }

    /// A 1x1 convolution (stride 1, no groups): `a` = the weight [Cout, Cin]
    /// viewed as [1, Cout, Cin], `b` = x [N, Cin, H, W] viewed as [N, Cin, H*W];
    /// the output [N, Cout, H*W] is y [N, Cout, H, W]. `affine` [2, Cout] holds
    /// the folded BatchNorm scale and shift (or scale 1 and the bias);
    /// `residual` is [N, Cout, H*W].
    pub fn conv1x1(epilogue: Epilogue) -> Matmul {
        Matmul { epilogue, ..Matmul::new(false, false) }
    }

    /// A linear layer `y = x W^T + bias`: `a` = x [rows, in] viewed as
    /// [1, rows, in], `b` = the weight [out, in] viewed as [1, out, in]
    /// (PyTorch's layout, hence `trans_b`); the output is [1, rows, out].
    /// `affine` [2, out] holds scale 1 and the bias.
    pub fn linear(epilogue: Epilogue) -> Matmul {
        Matmul { epilogue, epilogue_axis: Axis::Cols, ..Matmul::new(false, true) }
    }

    /// The same product with `epilogue`, its affine indexed along `axis`.
    pub fn epilogue(self, epilogue: Epilogue, axis: Axis) -> Matmul {
        Matmul { epilogue, epilogue_axis: axis, ..self }
    }

    /// The same product forced onto `variant`.
    pub fn with_variant(self, variant: Variant) -> Matmul {
        Matmul { variant, ..self }
    }

    /// The same product on matmul_subgroup (the Subgroup variant) forced onto `tile`, one of
    /// [`crate::ops::subgroup_tiles`] for the device's subgroup width (else encoding it errs).
    pub fn with_tile(self, tile: SubgroupTile) -> Matmul {
        Matmul { variant: Variant::Subgroup, tile: Some(tile), ..self }
    }

    /// Validates the inputs' shapes (count, ranks, inner and batch sizes,
    /// epilogue inputs, 32-bit index range) and returns the sizes.
    fn dims(&self, inputs: &[&Shape]) -> Result<Dims> {
        expect_inputs(self, inputs)?;
        let name = self.name();
        let (a, b) = (inputs[0], inputs[1]);
        let (&[a_batch, a0, a1], &[b_batch, b0, b1]) = (a.dims(), b.dims()) else {
            return Err(Error::invalid(
                name,
                format!(
                    "a and b must be rank 3 ([batch x M x K] and [batch x K x N], or transposed), got a {a} and b {b}"
                ),
            ));
        };
        let (m, ka) = if self.trans_a { (a1, a0) } else { (a0, a1) };
        let (kb, n) = if self.trans_b { (b1, b0) } else { (b0, b1) };
        ensure!(
            ka == kb,
            name,
            "inner dimensions disagree: a {a} (trans_a {}) has K = {ka}, b {b} (trans_b {}) has K = {kb}",
            self.trans_a,
            self.trans_b
        );
        ensure!(
            a_batch == b_batch || a_batch == 1 || b_batch == 1,
            name,
            "batch sizes must be equal or 1: a {a} has {a_batch}, b {b} has {b_batch}"
        );
        let dims = Dims { batch: a_batch.max(b_batch), a_batch, b_batch, m, n, k: ka };
        let out = Shape::new(&[dims.batch, m, n])?;
        let mut rest = inputs[2..].iter();
        if self.epilogue.affine {
            let affine = rest.next().expect("expect_inputs counted the affine");
            let (axis, c) = match self.epilogue_axis {
                Axis::Rows => ("rows (M)", m),
                Axis::Cols => ("columns (N)", n),
            };
            ensure!(
                affine.dims() == [2, c],
                name,
                "affine must be [2 x {c}] (scale and shift per output {axis} of the {out} output), got {affine}"
            );
        }
        if self.epilogue.residual {
            let residual = rest.next().expect("expect_inputs counted the residual");
            ensure!(*residual == &out, name, "residual must match the output {out}, got {residual}");
        }
        // Shaders index every tensor with u32: each element count must fit.
        for (what, shape) in [("a", a), ("b", b), ("output", &out)] {
            to_u32(name, &format!("element count of {what} {shape}"), shape.numel())?;
        }
        Ok(dims)
    }

    /// The variant this configuration runs on `gpu` (Auto resolved as choose::matmul picks).
    fn resolved_variant(&self, gpu: &Gpu, d: &Dims) -> Variant {
        match self.variant {
            Variant::Auto => {
                let shape = super::choose::MatmulShape {
                    batch: d.batch,
                    m: d.m,
                    n: d.n,
                    k: d.k,
                    vec4_fits: self.vec4_fits(d),
                    untransposed: self.is_untransposed(),
                    shared_a: d.a_batch == 1,
                };
                super::choose::matmul(gpu.profile(), shape)
            }
            v => v,
        }
    }

    /// The kernel this configuration runs on `gpu` for these input shapes; a forced
    /// variant the shapes or the device cannot take is an error that says why.
    pub fn kernel_for(&self, gpu: &Gpu, inputs: &[&Shape]) -> Result<Kernel> {
        Ok(self.checked_variant(gpu, &self.dims(inputs)?)?.1)
    }

    /// The variant this configuration runs on `gpu` for dims `d`, and its kernel (the shader
    /// that writes the output); a forced variant the shapes or the device cannot take is an error.
    fn checked_variant(&self, gpu: &Gpu, d: &Dims) -> Result<(Variant, Kernel)> {
        let d = *d;
        let vec4 = self.vec4_fits(&d);
        let subgroups = super::choose::matmul_subgroups(gpu.profile());
        let name = self.name();
        let variant = self.resolved_variant(gpu, &d);
        let kernel = match variant {
            Variant::Rows if !self.is_untransposed() => {
                return Err(Error::invalid(
                    name,
                    "the Rows kernel runs only products with neither operand transposed and any affine per row"
                        .to_string(),
                ))
            }
            Variant::ConvGemm | Variant::Repack if !self.is_conv1x1(&d) => {
                return Err(Error::invalid(
                    name,
                    format!(
                        "the {variant:?} kernel runs only the 1 x 1 conv form: a [1, M, K] weight times b [N, K, HW], \
                         neither transposed, the affine per row"
                    ),
                ))
            }
            Variant::Repack => repack::check(name, gpu.profile(), [d.b_batch, d.m, d.k, d.n])?,
            Variant::Rows => rows::check(name, gpu.profile(), &d)?,
            Variant::ConvGemm => self.as_conv().resolved_kernel(gpu.profile(), &self.conv_shapes(&d)?)?.kernel(),
            Variant::Naive => kernel!("matmul_naive"),
            Variant::Tiled | Variant::Auto => kernel!("matmul"),
            Variant::Vec4 | Variant::Subgroup if !vec4 => {
                return Err(Error::invalid(
                    name,
                    format!("the {:?} kernel needs operand rows of whole vec4s: {}", self.variant, self.rows_of(&d)),
                ))
            }
            Variant::Vec4 => kernel!("matmul_vec4"),
            Variant::Subgroup if !subgroups => {
                return Err(Error::invalid(
                    name,
                    format!(
                        "the Subgroup kernel needs subgroups of one fixed power-of-two width from 4 to 64; \
                         {} has none",
                        gpu.adapter().name
                    ),
                ))
            }
            Variant::Subgroup => kernel!("matmul_subgroup"),
        };
        Ok((variant, kernel))
    }

    /// The operands' contiguous row lengths, for errors.
    fn rows_of(&self, d: &Dims) -> String {
        let a_row = if self.trans_a { ("M", d.m) } else { ("K", d.k) };
        let b_row = if self.trans_b { ("K", d.k) } else { ("N", d.n) };
        format!("a's rows hold {} = {}, b's {} = {}", a_row.0, a_row.1, b_row.0, b_row.1)
    }

    /// Whether the product is a stride-1 1 x 1 conv's GEMM ([`Matmul::conv1x1`]): a broadcast
    /// weight [1, M, K] times x [N, K, HW], nothing transposed, the affine per output row.
    fn is_conv1x1(&self, d: &Dims) -> bool {
        self.is_untransposed() && d.a_batch == 1
    }

    /// Whether neither operand is transposed and any affine is indexed by row (the layout
    /// matmul_rows_subgroup takes, A shared by the batch or not).
    fn is_untransposed(&self) -> bool {
        !self.trans_a && !self.trans_b && self.epilogue_axis == Axis::Rows
    }

    /// The 1 x 1 conv this product is (when `is_conv1x1`).
    fn as_conv(&self) -> Conv2d {
        Conv2d::new().epilogue(self.epilogue)
    }

    /// The conv's x [N, K, HW, 1] and weight [M, K, 1, 1].
    fn conv_shapes(&self, d: &Dims) -> Result<[Shape; 2]> {
        Ok([Shape::new(&[d.b_batch, d.k, d.n, 1])?, Shape::new(&[d.m, d.k, 1, 1])?])
    }

    /// Whether matmul_vec4 applies: each operand's contiguous rows (A: K, or M
    /// when transposed; B: N, or K when transposed) are whole vec4s.
    fn vec4_fits(&self, d: &Dims) -> bool {
        let a_row = if self.trans_a { d.m } else { d.k };
        let b_row = if self.trans_b { d.k } else { d.n };
        a_row % 4 == 0 && b_row % 4 == 0
    }

    /// Whether matmul_subgroup's column tiles run across the batch's images (its FLAT: A shared by
    /// the batch, B not transposed, N a multiple of 4; the shader decides the same from Params).
    fn flat_columns(&self, d: &Dims) -> bool {
        !self.trans_b && d.a_batch == 1 && d.n.is_multiple_of(4)
    }

    /// One dispatch of a tiled kernel (`kernel`: matmul, matmul_vec4 or matmul_subgroup; or
    /// matmul_naive) over `bindings` = [a, b, affine, residual, output], the output's rows `n_out`
    /// long (d.n, or fewer where matmul_repack padded B's rows: matmul_subgroup only).
    fn encode_tiled(
        &self,
        gpu: &Gpu,
        d: &Dims,
        kernel: &Kernel,
        bindings: [&GpuTensor; 5],
        n_out: usize,
    ) -> Result<Dispatch> {
        // matmul_subgroup's tile follows the subgroup width and the product's shape (choose.rs);
        // the other tiled kernels cover 64 x 64.
        let width = gpu.profile().subgroup_width;
        let flat = kernel.name == "matmul_subgroup" && self.flat_columns(d);
        let columns = if flat { d.batch * d.n } else { d.n };
        let tile = match (kernel.name, width, self.tile) {
            ("matmul_subgroup", Some(w), Some(t)) if !super::subgroup_tiles(w as usize).contains(&t) => {
                let why = format!("the tile {t:?} is none of matmul_subgroup's for subgroups of {w} lanes");
                return Err(Error::invalid(self.name(), why));
            }
            ("matmul_subgroup", Some(_), Some(t)) => t,
            ("matmul_subgroup", Some(w), None) => {
                super::choose::matmul_tile(gpu.profile(), w as usize, d.m, columns, if flat { 1 } else { d.batch })
            }
            _ => SubgroupTile::new([TILE, TILE]),
        };
        let params = self.params(d, self.epilogue.code(), tile.shape(), flat, n_out)?;
        let numel = (d.batch * d.m * d.n) as u64;
        let grid = if kernel.name == "matmul_naive" {
            gpu.grid_1d(self.name(), numel.div_ceil(WORKGROUP))?
        } else {
            let images = if flat { 1 } else { d.batch };
            gpu.grid_1d(self.name(), (images * (params.tiles_m * params.tiles_n) as usize) as u64)?
        };
        // The vec4 kernels are specialised per layout (and the subgroup one per width); the others
        // read the strides.
        let mut constants = Vec::new();
        if matches!(kernel.name, "matmul_vec4" | "matmul_subgroup") {
            constants.extend([("TRANS_A", self.trans_a as u8 as f64), ("TRANS_B", self.trans_b as u8 as f64)]);
        }
        if let ("matmul_subgroup", Some(w)) = (kernel.name, width) {
            // The store's layout and the epilogue too: lavapipe runs the unused branches otherwise.
            constants.extend([
                ("SUBGROUP_WIDTH", w as f64),
                ("OUT_VEC4", n_out.is_multiple_of(4) as u8 as f64),
                ("EPILOGUE", params.epilogue as f64),
                ("AXIS", params.axis as f64),
                ("TOUCH_OUT", super::choose::touch_outputs_first(gpu.profile(), n_out) as u8 as f64),
            ]);
            constants.extend(tile.constants(w as usize));
        }
        gpu.prepare(kernel, &constants, &params, &bindings, grid)
    }
}

impl Op for Matmul {
    fn name(&self) -> &'static str {
        "matmul"
    }

    fn input_names(&self) -> Vec<&'static str> {
        let mut names = vec!["a", "b"];
        names.extend(self.epilogue.input_names());
        names
    }

    fn output_shape(&self, inputs: &[&Shape]) -> Result<Shape> {
        let d = self.dims(inputs)?;
        Shape::new(&[d.batch, d.m, d.n])
    }

    fn reference(&self, inputs: &[&Tensor]) -> Result<Tensor> {
        let d = self.dims(&shapes_of(inputs))?;
        let (a, b) = (inputs[0].data(), inputs[1].data());
        let affine = self.epilogue.affine.then(|| inputs[2]);
        let residual = self.epilogue.residual.then(|| inputs[inputs.len() - 1].data());
        let channels = if self.epilogue_axis == Axis::Rows { d.m } else { d.n };
        let mut out = Vec::with_capacity(d.batch * d.m * d.n);
        for bi in 0..d.batch {
            let a_base = if d.a_batch == 1 { 0 } else { bi * d.m * d.k };
            let b_base = if d.b_batch == 1 { 0 } else { bi * d.k * d.n };
            for row in 0..d.m {
                for col in 0..d.n {
                    let mut acc = 0.0f64;
                    for kk in 0..d.k {
                        let av = if self.trans_a { a[a_base + kk * d.m + row] } else { a[a_base + row * d.k + kk] };
                        let bv = if self.trans_b { b[b_base + col * d.k + kk] } else { b[b_base + kk * d.n + col] };
                        acc += av as f64 * bv as f64;
                    }
                    let c = if self.epilogue_axis == Axis::Rows { row } else { col };
                    let r = residual.map_or(0.0, |r| r[out.len()]);
                    out.push(self.epilogue.apply(acc, c, channels, affine, r) as f32);
                }
            }
        }
        Tensor::new(Shape::new(&[d.batch, d.m, d.n])?, out)
    }

    fn encode(&self, gpu: &Gpu, inputs: &[&GpuTensor], output: &GpuTensor) -> Result<Vec<Dispatch>> {
        expect_output(self, inputs, output)?;
        let shapes: Vec<&Shape> = inputs.iter().map(|t| t.shape()).collect();
        let d = self.dims(&shapes)?;
        let (variant, kernel) = self.checked_variant(gpu, &d)?;
        let (a, b) = (inputs[0], inputs[1]);
        let affine = self.epilogue.affine.then(|| inputs[2]);
        let residual = self.epilogue.residual.then(|| inputs[inputs.len() - 1]);
        if variant == Variant::ConvGemm {
            // The ConvGemm variant: the same buffers viewed as the 1 x 1 conv's tensors.
            let [x_shape, w_shape] = self.conv_shapes(&d)?;
            let as_map = |t: &GpuTensor| t.reshape(&[d.batch, d.m, d.n, 1]);
            let mut views = vec![b.reshape(x_shape.dims())?, a.reshape(w_shape.dims())?];
            views.extend(affine.cloned());
            if let Some(r) = residual {
                views.push(as_map(r)?);
            }
            let refs: Vec<&GpuTensor> = views.iter().collect();
            return self.as_conv().encode(gpu, &refs, &as_map(output)?);
        }
        if variant == Variant::Rows {
            let bindings = [a, b, affine.unwrap_or(a), residual.unwrap_or(a), output];
            return Ok(vec![rows::encode(self, gpu, &d, bindings, d.n)?]);
        }
        if variant == Variant::Repack {
            // b [N, K, HW] viewed as x [N, K, HW, 1]: a stride-1 1 x 1 conv over an HW x 1 map.
            let x = b.reshape(&[d.b_batch, d.k, d.n, 1])?;
            let conv = repack::Repacked::pointwise(self.epilogue, [d.n, 1]);
            return conv.encode(gpu, self.name(), &x, a, affine, residual, output);
        }
        // The epilogue reads affine and residual in the same pass (5 storage
        // buffers); an unused slot holds a stand-in (A) that is never read.
        let bindings = [a, b, affine.unwrap_or(a), residual.unwrap_or(a), output];
        Ok(vec![self.encode_tiled(gpu, &d, &kernel, bindings, d.n)?])
    }

    fn cost(&self, inputs: &[&Shape]) -> Cost {
        let Ok(d) = self.dims(inputs) else { return Cost::default() };
        let read: u64 = inputs.iter().map(|s| s.bytes()).sum();
        let outputs = (d.batch * d.m * d.n) as u64; // fits: dims() checked it against u32
        Cost { flops: 2 * outputs * d.k as u64, bytes: read + 4 * outputs }
    }
}

#[path = "matmul_repack.rs"]
pub(crate) mod repack;

#[path = "matmul_params.rs"]
mod params;
pub use params::MatmulParams;

#[path = "matmul_rows.rs"]
pub(crate) mod rows;

#[path = "matmul_cases.rs"]
mod cases;
pub use cases::{cases, rows_cases, tile_cases};

#[cfg(test)]
#[path = "matmul_tests.rs"]
mod tests;
