//! The uniform block every matmul kernel reads, and its values for one product.

use super::{Axis, Dims, Matmul};
use crate::ops::{to_u32, Op};
use crate::Result;

/// Mirrors `struct Params` in shaders/matmul*.wgsl (one struct for all three kernels).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub struct MatmulParams {
    m: u32,
    n: u32,
    k: u32,
    batch: u32,
    a_sb: u32,
    a_sm: u32,
    a_sk: u32,
    b_sb: u32,
    b_sk: u32,
    b_sn: u32,
    pub(super) epilogue: u32,
    pub(super) axis: u32,
    pub(super) tiles_m: u32,
    pub(super) tiles_n: u32,
    /// The output's row length: n, or fewer where B's rows were padded (matmul_subgroup reads it;
    /// the other kernels' Params call it _pad0).
    n_out: u32,
    /// Always 0: matmul_subgroup ANDs the output lines it touches first with it (see its
    /// touch_rows); the other kernels' Params call it _pad1.
    zero: u32,
}

impl Matmul {
    /// `tile` = [rows, columns] of output one workgroup covers; `flat`: column tiles over all
    /// batch x N columns (matmul_subgroup's FLAT), else per image; `n_out`: the output's rows' length.
    pub(super) fn params(
        &self,
        d: &Dims,
        epilogue: u32,
        tile: [usize; 2],
        flat: bool,
        n_out: usize,
    ) -> Result<MatmulParams> {
        let u = |what: &str, v: usize| to_u32(self.name(), what, v);
        let (m, n, k) = (d.m, d.n, d.k);
        // Element strides of A (b, m, k) and B (b, k, n); a batch of 1 broadcasts.
        let (a_sm, a_sk) = if self.trans_a { (1, m) } else { (k, 1) };
        let (b_sk, b_sn) = if self.trans_b { (1, k) } else { (n, 1) };
        Ok(MatmulParams {
            m: u("M", m)?,
            n: u("N", n)?,
            k: u("K", k)?,
            batch: u("batch", d.batch)?,
            a_sb: u("a batch stride", if d.a_batch == 1 { 0 } else { m * k })?,
            a_sm: u("a row stride", a_sm)?,
            a_sk: u("a k stride", a_sk)?,
            b_sb: u("b batch stride", if d.b_batch == 1 { 0 } else { k * n })?,
            b_sk: u("b k stride", b_sk)?,
            b_sn: u("b column stride", b_sn)?,
            epilogue,
            axis: (self.epilogue_axis == Axis::Cols) as u32,
            tiles_m: u("row tiles", m.div_ceil(tile[0]))?,
            tiles_n: u("column tiles", if flat { d.batch * n } else { n }.div_ceil(tile[1]))?,
            n_out: u("output row length", n_out)?,
            zero: 0,
        })
    }
}
