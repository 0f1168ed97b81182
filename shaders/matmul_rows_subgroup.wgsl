enable subgroups; // WGSL and tint require it; wgpu's naga rejects it, so Kernel::naga_source blanks it

// matmul_rows_subgroup: out[b, m, n] = epilogue(sum_k A[m, k] B[b, k, n]) for products whose rows
// are short (N <= 52 columns: a 7 x 7 map's 1 x 1 conv, or its repacked downsample or im2col;
// Winograd's GEMMs over at most 52 tiles), or in column tiles of at most 52 (SEGMENTED: a batch-1
// 14 x 14 map's 196), neither operand transposed, on devices whose subgroups have one fixed
// power-of-two width SUBGROUP_WIDTH from 4 to 64 (the host sets it; CPU devices).
// Why: matmul_subgroup's lanes split the columns, 4 each, so a subgroup of 8 lanes covers 32 and a
// 49-column row fills two subgroups' 64 (77%; a batch's images side by side pad less); there
// lanes split the rows instead. Lane l of a workgroup (one subgroup) takes 4 rows, 4 (W t + l) ..
// + 3 of row tile t, by all N columns (SEGMENTED: a column tile's COLUMNS), in up to 13 mat4x4
// accumulators (acc[x]: columns 4 x .. 4 x + 3 by the 4 rows). Per step of 4 k a lane loads its 4
// rows' A (4 vec4s) and one eighth of the block of B (4 k by the columns) the whole subgroup
// shares, which subgroupBroadcast (a register extract on lavapipe) hands to every lane, as
// matmul_subgroup hands out A. The lane's 4 output rows are 4 N consecutive elements of out,
// stored as N aligned vec4s (matmul_subgroup stores a 49-column row one element at a time);
// SEGMENTED, 4 row segments of COLUMNS / 4 aligned vec4s.
// Every index into the accumulators and the block of B is a constant once N and NB are set (the
// quads are written out, 13 calls each, not looped): on lavapipe a prototype that looped over them
// kept the accumulators in indexed memory and ran 10x slower.
// The workgroup grid is 1-D over batch x row tiles (tiles_m = ceil(m / 4 W)) x column tiles
// (tiles_n: 1, or SEGMENTED ceil(N / COLUMNS)), folded into y past 65535: linear tile = wid.x +
// wid.y * nwg.x.
// Bindings (contiguous f32 viewed as vec4s; every tensor buffer is padded to whole vec4s):
//   a4       = A [batch, m, k] (a_sb = m k), or [m, k] shared by the batch (a_sb = 0: a conv's
//              weight); k a multiple of 4
//   b4       = B [batch, k, NB] (b_sb = k NB, or 0: broadcast): rows of NB elements, NB >= N
//              (columns N .. NB - 1 are padding: repack_pixels pads rows to whole vec4s), NB <= 52;
//              SEGMENTED: NB = N, a multiple of 4
//   affine   = [2, m] (row 0 scale, row 1 shift), read when bit 0 of EPILOGUE is set
//   residual = [batch, m, N], read when bit 1 is set
//   out      = [batch, m, N]; m a multiple of 4 (a lane's 4 rows are whole vec4s of out)
// Params is matmul_subgroup's (one Rust struct, MatmulParams, mirrors every matmul kernel's); this
// kernel reads m, k, batch, a_sb, b_sb, tiles_m and tiles_n. mad and mad_col repeat
// matmul_subgroup's, finish too (scale and shift per element here): WGSL has no includes.

override SUBGROUP_WIDTH: u32 = 8u;
override N: u32 = 49u;  // out's row length: 1 .. 52, or (SEGMENTED) any multiple of 4
override NB: u32 = 49u; // B's row length: N .. 52 (SEGMENTED: N)
// SEGMENTED: rows longer than 52 (N a multiple of 4) in column tiles of COLUMNS (a multiple of 4,
// at most 52): a lane's 4 rows by COLUMNS are 4 row segments of COLUMNS / 4 aligned vec4s (see
// store_segment), B's block 4 rows of COLUMNS / 4.
override SEGMENTED: bool = false;
// Columns a lane's accumulators hold: N, or (SEGMENTED) a column tile's.
override COLUMNS: u32 = 49u;
// Row length (elements) of the block of B a step shares, 4 rows: also the block's vec4s.
override BLOCK_ROW: u32 = select(NB, COLUMNS, SEGMENTED);
// The epilogue (bit 0 affine, bit 1 residual, bits 2.. activation: 0 none, 1 relu, 2 sigmoid),
// fixed at pipeline creation: lavapipe runs both sides of a branch it cannot prove uniform.
override EPILOGUE: u32 = 0u;

struct Params {
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
    epilogue: u32,
    axis: u32,
    tiles_m: u32,  // ceil(m / 4 W)
    tiles_n: u32,
    n_out: u32,
    zero: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> a4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> b4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> affine: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> residual: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> out: array<vec4<f32>>;

// The block of B at one step of 4 k (4 rows of NB, or SEGMENTED of COLUMNS: at most 52 vec4s) as 7
// groups of 8 vec4s (its vec4 j is [j / 8][j % 8]).
alias Block = array<array<vec4<f32>, 8>, 7>;
// The lane's accumulators: acc[x] holds columns 4 x .. 4 x + 3 (its columns) by the 4 rows.
alias Acc = array<mat4x4<f32>, 13>;

// Where the block's vec4 j lies in b4: flat, base + j (clamped to the block); SEGMENTED, row j / Q's
// quad j % Q of the column tile, Q = COLUMNS / 4 (B's rows are NB / 4 vec4s; quads past the row's
// `quads` clamped).
fn block_at(base: u32, j: u32, quads: u32) -> u32 {
    if (SEGMENTED) {
        let q = max(COLUMNS / 4u, 1u); // (COLUMNS >= 4 here; the max keeps the unused branch valid)
        let jj = min(j, COLUMNS - 1u);
        return base + (jj / q) * (NB / 4u) + min(jj % q, quads - 1u);
    }
    return base + min(j, NB - 1u);
}

// Group g of the block whose first vec4 is b4[base] (`quads`: the column tile's quads, SEGMENTED):
// with 8 or more lanes, lane l loads vec4 8 g + l % 8 and broadcasts from lanes 0 .. 7 hand the 8
// out (lanes past 8 repeat loads, never read); with 4 lanes each loads two. Groups past the block
// are zeros, never read.
fn group8(base: u32, g: u32, lane: u32, quads: u32) -> array<vec4<f32>, 8> {
    if (8u * g >= BLOCK_ROW) {
        return array<vec4<f32>, 8>();
    }
    if (SUBGROUP_WIDTH >= 8u) {
        let v = b4[block_at(base, 8u * g + (lane & 7u), quads)];
        return array(subgroupBroadcast(v, 0u), subgroupBroadcast(v, 1u), subgroupBroadcast(v, 2u),
                     subgroupBroadcast(v, 3u), subgroupBroadcast(v, 4u), subgroupBroadcast(v, 5u),
                     subgroupBroadcast(v, 6u), subgroupBroadcast(v, 7u));
    }
    let v = b4[block_at(base, 8u * g + (lane & 3u), quads)];
    let u = b4[block_at(base, 8u * g + 4u + (lane & 3u), quads)];
    return array(subgroupBroadcast(v, 0u), subgroupBroadcast(v, 1u), subgroupBroadcast(v, 2u),
                 subgroupBroadcast(v, 3u), subgroupBroadcast(u, 0u), subgroupBroadcast(u, 1u),
                 subgroupBroadcast(u, 2u), subgroupBroadcast(u, 3u));
}

// Vec4 j of the block.
fn block_vec4(b: Block, j: u32) -> vec4<f32> {
    return b[j / 8u][j % 8u];
}

// B's 4 elements from element e of the block (a row's quad: rows start at multiples of BLOCK_ROW,
// so a quad may straddle two vec4s; e is a constant, so the choice folds).
fn block_quad(b: Block, e: u32) -> vec4<f32> {
    let lo = block_vec4(b, e / 4u);
    let hi = block_vec4(b, min(e / 4u + 1u, 55u));
    switch (e % 4u) {
        case 0u: { return lo; }
        case 1u: { return vec4(lo.yzw, hi.x); }
        case 2u: { return vec4(lo.zw, hi.xy); }
        default: { return vec4(lo.w, hi.xyz); }
    }
}

// a b + c as fused multiply-adds (a's column t: the 4 rows at k t; b's column j: column j's 4 k).
fn mad(a: mat4x4<f32>, b: mat4x4<f32>, c: mat4x4<f32>) -> mat4x4<f32> {
    return mat4x4(mad_col(a, b[0], c[0]), mad_col(a, b[1], c[1]), mad_col(a, b[2], c[2]), mad_col(a, b[3], c[3]));
}

fn mad_col(a: mat4x4<f32>, b: vec4<f32>, c: vec4<f32>) -> vec4<f32> {
    return fma(a[3], vec4(b.w), fma(a[2], vec4(b.z), fma(a[1], vec4(b.y), fma(a[0], vec4(b.x), c))));
}

// acc plus the 4 rows (a) times B's columns 4 x .. 4 x + 3 at the block's 4 k; quads past the
// lane's COLUMNS stay.
fn quad_mad(acc: mat4x4<f32>, a: mat4x4<f32>, b: Block, x: u32) -> mat4x4<f32> {
    if (4u * x >= COLUMNS) {
        return acc;
    }
    let r = BLOCK_ROW;
    let bt = mat4x4(block_quad(b, 4u * x), block_quad(b, r + 4u * x), block_quad(b, 2u * r + 4u * x),
                    block_quad(b, 3u * r + 4u * x));
    return mad(a, transpose(bt), acc);
}

// The epilogue for 4 outputs (component c: one of the lane's rows, with that row's scale, shift
// and residual).
fn finish(acc: vec4<f32>, scale: vec4<f32>, shift: vec4<f32>, res: vec4<f32>) -> vec4<f32> {
    var v = acc;
    if ((EPILOGUE & 1u) != 0u) {
        v = fma(v, scale, shift);
    }
    if ((EPILOGUE & 2u) != 0u) {
        v += res;
    }
    let act = EPILOGUE >> 2u;
    if (act == 1u) {
        v = max(v, vec4(0.0));
    } else if (act == 2u) {
        // Clamped so exp cannot overflow; sigmoid(+-88) is already 1 or 0 in f32.
        v = 1.0 / (1.0 + exp(-clamp(v, vec4(-88.0), vec4(88.0))));
    }
    return v;
}

// Element f of the lane's 4 N outputs (row f / N, column f % N), with its row.
fn element(acc: Acc, f: u32) -> f32 {
    let p = f % N;
    return acc[p / 4u][p % 4u][f / N];
}

// Vec4 q of the lane's 4 N outputs (its elements 4 q .. 4 q + 3: one row, or the end of one and
// the start of the next), stored at out4 + q where q < N. `scale` and `shift`: the 4 rows'.
fn store_vec4(acc: Acc, out4: u32, q: u32, scale: vec4<f32>, shift: vec4<f32>) {
    if (q >= N) {
        return;
    }
    let f = 4u * q;
    let rows = vec4(f / N, (f + 1u) / N, (f + 2u) / N, (f + 3u) / N);
    let v = vec4(element(acc, f), element(acc, f + 1u), element(acc, f + 2u), element(acc, f + 3u));
    var res = vec4(0.0);
    if ((EPILOGUE & 2u) != 0u) {
        res = residual[out4 + q];
    }
    let s = vec4(scale[rows.x], scale[rows.y], scale[rows.z], scale[rows.w]);
    let t = vec4(shift[rows.x], shift[rows.y], shift[rows.z], shift[rows.w]);
    out[out4 + q] = finish(v, s, t, res);
}

// SEGMENTED: quad q of row i of the lane's 4 (its columns 4 q .. + 3 of the column tile), stored at
// out4 + q where q < quads, with the row's scale and shift.
fn store_quad(acc: Acc, i: u32, q: u32, out4: u32, quads: u32, scale: f32, shift: f32) {
    if (q >= quads) {
        return;
    }
    let v = vec4(acc[q][0][i], acc[q][1][i], acc[q][2][i], acc[q][3][i]);
    var res = vec4(0.0);
    if ((EPILOGUE & 2u) != 0u) {
        res = residual[out4 + q];
    }
    out[out4 + q] = finish(v, vec4(scale), vec4(shift), res);
}

// SEGMENTED: row i's segment of the column tile, its first vec4 at out4 (13 quads written out).
fn store_segment(acc: Acc, i: u32, out4: u32, quads: u32, scale: f32, shift: f32) {
    store_quad(acc, i, 0u, out4, quads, scale, shift);
    store_quad(acc, i, 1u, out4, quads, scale, shift);
    store_quad(acc, i, 2u, out4, quads, scale, shift);
    store_quad(acc, i, 3u, out4, quads, scale, shift);
    store_quad(acc, i, 4u, out4, quads, scale, shift);
    store_quad(acc, i, 5u, out4, quads, scale, shift);
    store_quad(acc, i, 6u, out4, quads, scale, shift);
    store_quad(acc, i, 7u, out4, quads, scale, shift);
    store_quad(acc, i, 8u, out4, quads, scale, shift);
    store_quad(acc, i, 9u, out4, quads, scale, shift);
    store_quad(acc, i, 10u, out4, quads, scale, shift);
    store_quad(acc, i, 11u, out4, quads, scale, shift);
    store_quad(acc, i, 12u, out4, quads, scale, shift);
}

// Vec4s q .. q + 3 (see store_vec4).
fn store4(acc: Acc, out4: u32, q: u32, scale: vec4<f32>, shift: vec4<f32>) {
    store_vec4(acc, out4, q, scale, shift);
    store_vec4(acc, out4, q + 1u, scale, shift);
    store_vec4(acc, out4, q + 2u, scale, shift);
    store_vec4(acc, out4, q + 3u, scale, shift);
}

@compute @workgroup_size(SUBGROUP_WIDTH)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(subgroup_invocation_id) lane: u32) {
    let tile = wid.x + wid.y * nwg.x;
    let per_image = params.tiles_m * params.tiles_n;
    if (tile >= per_image * params.batch) {
        return;
    }
    let bi = tile / per_image;
    let t = tile % per_image;
    let row0 = (t / params.tiles_n) * 4u * SUBGROUP_WIDTH + 4u * lane;
    // The column tile (SEGMENTED; else the one tile, c0 = 0): columns c0 .. c0 + COLUMNS - 1,
    // `quads` of their quads inside the row.
    let c0 = (t % params.tiles_n) * COLUMNS;
    let quads = min((N - c0) / 4u, COLUMNS / 4u);
    let m = params.m;
    let k4 = params.k / 4u;
    // Rows past m read a clamped row of A and are never stored.
    let ra = bi * params.a_sb / 4u
        + vec4(min(row0, m - 1u), min(row0 + 1u, m - 1u), min(row0 + 2u, m - 1u), min(row0 + 3u, m - 1u)) * k4;
    var acc: Acc;
    for (var kq = 0u; kq < k4; kq++) {
        // Column t of a: the lane's 4 rows at k = 4 kq + t.
        let a = transpose(mat4x4(a4[ra.x + kq], a4[ra.y + kq], a4[ra.z + kq], a4[ra.w + kq]));
        let base = (bi * params.b_sb + 4u * kq * NB + c0) / 4u;
        let b = Block(group8(base, 0u, lane, quads), group8(base, 1u, lane, quads), group8(base, 2u, lane, quads),
                      group8(base, 3u, lane, quads), group8(base, 4u, lane, quads), group8(base, 5u, lane, quads),
                      group8(base, 6u, lane, quads));
        acc[0] = quad_mad(acc[0], a, b, 0u);
        acc[1] = quad_mad(acc[1], a, b, 1u);
        acc[2] = quad_mad(acc[2], a, b, 2u);
        acc[3] = quad_mad(acc[3], a, b, 3u);
        acc[4] = quad_mad(acc[4], a, b, 4u);
        acc[5] = quad_mad(acc[5], a, b, 5u);
        acc[6] = quad_mad(acc[6], a, b, 6u);
        acc[7] = quad_mad(acc[7], a, b, 7u);
        acc[8] = quad_mad(acc[8], a, b, 8u);
        acc[9] = quad_mad(acc[9], a, b, 9u);
        acc[10] = quad_mad(acc[10], a, b, 10u);
        acc[11] = quad_mad(acc[11], a, b, 11u);
        acc[12] = quad_mad(acc[12], a, b, 12u);
    }
    if (row0 >= m) {
        return;
    }
    var scale = vec4(0.0);
    var shift = vec4(0.0);
    if ((EPILOGUE & 1u) != 0u) {
        scale = affine[row0 / 4u];
        shift = affine[(m + row0) / 4u];
    }
    let c = acc;
    if (SEGMENTED) {
        let row4 = (bi * m + row0) * (N / 4u) + c0 / 4u; // row 0's segment
        store_segment(c, 0u, row4, quads, scale[0], shift[0]);
        store_segment(c, 1u, row4 + N / 4u, quads, scale[1], shift[1]);
        store_segment(c, 2u, row4 + 2u * (N / 4u), quads, scale[2], shift[2]);
        store_segment(c, 3u, row4 + 3u * (N / 4u), quads, scale[3], shift[3]);
        return;
    }
    // The lane's rows are out's elements (bi m + row0) N .. + 4 N - 1: N whole vec4s.
    let out4 = (bi * m + row0) * N / 4u;
    store4(c, out4, 0u, scale, shift);
    store4(c, out4, 4u, scale, shift);
    store4(c, out4, 8u, scale, shift);
    store4(c, out4, 12u, scale, shift);
    store4(c, out4, 16u, scale, shift);
    store4(c, out4, 20u, scale, shift);
    store4(c, out4, 24u, scale, shift);
    store4(c, out4, 28u, scale, shift);
    store4(c, out4, 32u, scale, shift);
    store4(c, out4, 36u, scale, shift);
    store4(c, out4, 40u, scale, shift);
    store4(c, out4, 44u, scale, shift);
    store4(c, out4, 48u, scale, shift);
}
