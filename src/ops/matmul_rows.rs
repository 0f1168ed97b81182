//! matmul_rows_subgroup: a GEMM A [batch or 1, M, K] x B [batch, K, NB], neither transposed, whose
//! output rows are short (at most [`ROWS_MAX_COLUMNS`] columns: a 7 x 7 map's 1 x 1 conv, a
//! repacked conv's GEMM there, Winograd's GEMMs over few tiles; longer ones in column tiles), its
//! lanes taking 4 output rows each by all the columns of a tile, where matmul_subgroup's lanes take
//! 4 columns each and pad a 49-column row to 64 (see the shader's header and
//! [`crate::ops::choose::matmul_rows`] for the figures).

use super::{Dims, Matmul};
use crate::gpu::{DeviceProfile, Dispatch, Gpu, GpuTensor, Kernel};
use crate::ops::choose::ROWS_MAX_COLUMNS;
use crate::ops::Op;
use crate::{kernel, Error, Result};

/// The kernel, where the device and the shapes allow it: subgroups of one fixed width, B's rows
/// (d.n) at most [`ROWS_MAX_COLUMNS`] long or a multiple of 4 (column tiles), M and K multiples of
/// 4; else an error naming what is missing.
pub(super) fn check(op: &str, profile: &DeviceProfile, d: &Dims) -> Result<Kernel> {
    let missing = if profile.subgroup_width.is_none() {
        format!("subgroups of one fixed width from 4 to 64; {} has none", profile.name)
    } else if d.n > ROWS_MAX_COLUMNS && !d.n.is_multiple_of(4) {
        format!(
            "at most {ROWS_MAX_COLUMNS} columns (its lanes hold 4 rows by 13 column quads), or a multiple of 4 \
             (column tiles of at most 52), got {}",
            d.n
        )
    } else if !d.m.is_multiple_of(4) || !d.k.is_multiple_of(4) {
        format!("M and K multiples of 4 (whole vec4s of the output and of A's rows), got M = {}, K = {}", d.m, d.k)
    } else {
        return Ok(kernel!("matmul_rows_subgroup"));
    };
    Err(Error::invalid(op, format!("the Rows kernel needs {missing}")))
}

/// One dispatch of matmul_rows_subgroup for `op`'s product `d` (B [batch, k, d.n], A batched or
/// shared) over `bindings` = [a, b, affine, residual, output], the output's rows `n_out` long
/// (d.n, or fewer where repack_pixels padded B's rows to whole vec4s). The caller has checked the
/// shapes ([`check`]).
pub(super) fn encode(op: &Matmul, gpu: &Gpu, d: &Dims, bindings: [&GpuTensor; 5], n_out: usize) -> Result<Dispatch> {
    let kernel = check(op.name(), gpu.profile(), d)?;
    let width = gpu.profile().subgroup_width.expect("check found subgroups") as usize;
    // A workgroup is one subgroup: 4 W rows by all the columns (one column tile), or by column
    // tiles of at most 52 where the rows are longer (SEGMENTED: check let only multiples of 4
    // through; choose::rows_column_tile splits them).
    let segmented = d.n > ROWS_MAX_COLUMNS;
    if segmented && n_out != d.n {
        // The column tiles store whole vec4s of rows as long as B's: a padded B has short rows.
        return Err(Error::invalid(
            op.name(),
            format!("the Rows kernel's column tiles need B's rows ({}) as long as the output's ({n_out})", d.n),
        ));
    }
    let tile_columns = crate::ops::choose::rows_column_tile(d.n);
    let params = op.params(d, op.epilogue.code(), [4 * width, tile_columns], false, n_out)?;
    let grid = gpu.grid_1d(op.name(), (params.tiles_m as usize * params.tiles_n as usize * d.batch) as u64)?;
    let constants = [
        ("SUBGROUP_WIDTH", width as f64),
        ("N", n_out as f64),
        ("NB", d.n as f64),
        ("SEGMENTED", segmented as u8 as f64),
        ("COLUMNS", tile_columns as f64),
        ("EPILOGUE", params.epilogue as f64),
    ];
    gpu.prepare(&kernel, &constants, &params, &bindings, grid)
}
