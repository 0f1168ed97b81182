//! The output tiles of the register-tiled subgroup GEMMs: the fixed one of conv2d_gemm_subgroup and
//! conv2d_window_subgroup, and the ones matmul_subgroup and conv2d_phased_subgroup can take
//! ([`SubgroupTile`]), with the layout check the tests replay on the CPU.

use std::fmt;

/// Output rows x columns one 64-invocation workgroup of the register-tiled subgroup GEMMs
/// (conv2d_gemm*, conv2d_window_subgroup, conv2d_phased_subgroup; matmul_subgroup on GPUs, while
/// on CPU devices it picks among [`subgroup_tiles`] by shape) covers with subgroups of `width`
/// lanes: each subgroup holds 16 rows by 4 columns per lane, and a workgroup is at least 64 columns
/// wide (64 x 64 up to 16 lanes, 32 x 128 at 32, 16 x 256 at 64). Mirrors `tr` and `tc` in those
/// shaders.
pub fn subgroup_tile(width: usize) -> [usize; 2] {
    let cols = (4 * width).max(64);
    let col_groups = cols / (4 * width);
    [16 * (64 / width) / col_groups, cols]
}

/// Rows per subgroup matmul_subgroup and conv2d_phased_subgroup can hold (their SUBGROUP_ROWS):
/// each lane holds that many rows by 4 columns. The other subgroup GEMMs hold 16.
pub const SUBGROUP_ROWS: [usize; 3] = [16, 32, 64];

/// Rows of the one-subgroup tile ([`SubgroupTile::one_subgroup`]): the tallest subgroup, whose
/// multiply-adds are the cheapest on CPU devices (choose::matmul_tile).
pub const ONE_SUBGROUP_ROWS: usize = 64;

/// An output tile of matmul_subgroup and conv2d_phased_subgroup: `rows` x `cols` outputs per
/// workgroup of `invocations` (whole subgroups), each invocation holding
/// [`Self::rows_per_subgroup`] rows by 4 columns. Subgroups side by side along the columns (their
/// COLUMN_GROUPS, each 4 x width columns wide) and stacked below. 64 invocations, but for the
/// one-subgroup tile ([`Self::one_subgroup`]).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct SubgroupTile {
    pub rows: usize,
    pub cols: usize,
    pub invocations: usize,
}

impl SubgroupTile {
    /// A tile of a 64-invocation workgroup.
    pub const fn new([rows, cols]: [usize; 2]) -> SubgroupTile {
        SubgroupTile { rows, cols, invocations: 64 }
    }

    /// A workgroup of one subgroup of `width` lanes, [`ONE_SUBGROUP_ROWS`] rows by 4 `width`
    /// columns: the smallest tile at the tallest subgroup's rate, for products of few tiles on
    /// CPU devices (choose::matmul_tile).
    pub const fn one_subgroup(width: usize) -> SubgroupTile {
        SubgroupTile { rows: ONE_SUBGROUP_ROWS, cols: 4 * width, invocations: width }
    }

    /// [rows, columns].
    pub fn shape(self) -> [usize; 2] {
        [self.rows, self.cols]
    }

    /// R (SUBGROUP_ROWS): the rows each invocation holds, by 4 columns.
    pub fn rows_per_subgroup(self) -> usize {
        self.rows * self.cols / (4 * self.invocations)
    }

    /// The override constants that give matmul_subgroup and conv2d_phased_subgroup this tile for
    /// subgroups of `width` lanes: rows per subgroup, column groups and the workgroup's size.
    pub fn constants(self, width: usize) -> [(&'static str, f64); 3] {
        [
            ("SUBGROUP_ROWS", self.rows_per_subgroup() as f64),
            ("COLUMN_GROUPS", (self.cols / (4 * width)) as f64),
            ("WORKGROUP_SIZE", self.invocations as f64),
        ]
    }
}

/// `[rows, cols]`, and the invocations where they are not 64 (the tables the tests print).
impl fmt::Debug for SubgroupTile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}, {}]", self.rows, self.cols)?;
        if self.invocations != 64 {
            write!(f, " of {} invocations", self.invocations)?;
        }
        Ok(())
    }
}

/// Every tile matmul_subgroup can cover with subgroups of `width` lanes: in a 64-invocation
/// workgroup, `col_groups` subgroups side by side (1 to 64 / width, its COLUMN_GROUPS), each 4 x
/// width columns wide, and R rows per subgroup ([`SUBGROUP_ROWS`]) stacked below: [R x (64 /
/// width) / col_groups, 4 x width x col_groups], widest last for each R (8 lanes: 128 x 32, 64 x
/// 64, 32 x 128, 16 x 256, then 256 x 32 .. 32 x 256 and 512 x 32 .. 64 x 256); then the
/// one-subgroup tile (at 64 lanes one of those already). [`subgroup_tile`] is one of them.
pub fn subgroup_tiles(width: usize) -> Vec<SubgroupTile> {
    let mut tiles: Vec<SubgroupTile> = SUBGROUP_ROWS
        .into_iter()
        .flat_map(|rows| {
            (0..)
                .map(|i| 1usize << i)
                .take_while(|&col_groups| col_groups <= 64 / width)
                .map(move |col_groups| SubgroupTile::new([rows * (64 / width) / col_groups, 4 * width * col_groups]))
        })
        .collect();
    let one = SubgroupTile::one_subgroup(width);
    if !tiles.contains(&one) {
        tiles.push(one);
    }
    tiles
}

/// The subgroup tile layout shared by matmul_subgroup, conv2d_gemm_subgroup and
/// conv2d_window_subgroup, replayed on the CPU for subgroups of `width` lanes (the index arithmetic
/// of their `main` and `a_blocks`; only 4, 8 and 16 lanes run on this repository's devices): every
/// 4-column quad of the [`subgroup_tile`] is held by exactly one invocation (16 rows each), and the
/// rows each subgroup's broadcasts hand out are the 8 rows of each octet it needs.
#[cfg(test)]
pub(crate) fn check_subgroup_layout(width: usize) {
    check_tile_layout(width, SubgroupTile::new(subgroup_tile(width)));
}

/// [`check_subgroup_layout`] for any tile of [`subgroup_tiles`] (matmul_subgroup's COLUMN_GROUPS,
/// SUBGROUP_ROWS and WORKGROUP_SIZE).
#[cfg(test)]
pub(crate) fn check_tile_layout(width: usize, tile: SubgroupTile) {
    let SubgroupTile { rows: tr, cols: tc, invocations } = tile;
    let sc = tc / (4 * width);
    let rows = tile.rows_per_subgroup();
    let subgroups = invocations / width;
    assert!(SUBGROUP_ROWS.contains(&rows), "width {width}, tile {tile:?}");
    assert_eq!(tr, rows * subgroups / sc, "width {width}");
    let mut held = vec![0u8; tr * (tc / 4)];
    for sg in 0..subgroups {
        for lane in 0..width {
            let (r0, quad) = ((sg / sc) * rows, (sg % sc) * width + lane);
            for r in r0..r0 + rows {
                held[r * (tc / 4) + quad] += 1;
            }
        }
        for r0 in ((sg / sc) * rows..(sg / sc + 1) * rows).step_by(8) {
            let mut got: Vec<usize> = if width >= 8 {
                (0..8).map(|lane: usize| r0 + (lane & 7)).collect()
            } else {
                (0..4).flat_map(|lane: usize| [r0 + (lane & 3), r0 + 4 + (lane & 3)]).collect()
            };
            got.sort();
            assert_eq!(got, (r0..r0 + 8).collect::<Vec<_>>(), "width {width}, subgroup {sg}");
        }
    }
    assert!(held.iter().all(|&n| n == 1), "width {width}: each output held once");
}
