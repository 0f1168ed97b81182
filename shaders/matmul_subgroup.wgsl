enable subgroups; // WGSL and tint require it; wgpu's naga rejects it, so Kernel::naga_source blanks it

// matmul_subgroup (register-tiled, vec4 loads, A shared through subgroup broadcasts):
// out[b, m, n] = epilogue(sum_k A[b, m, k] * B[b, k, n]), the product matmul_vec4 computes,
// for the same layouts (A's and B's contiguous rows are whole vec4s; the host checks) on
// devices whose subgroups have one fixed power-of-two width SUBGROUP_WIDTH from 4 to 64
// (lavapipe on AVX2: 8, SwiftShader: 4, NVIDIA: 32; the host sets it from the adapter).
// Why: on lavapipe every storage-buffer load is a loop over the SIMD lanes, and loads,
// not multiply-adds, bound matmul_vec4, whose 8 lanes of a SIMD row all load the same A
// rows. Here the 8 lanes of a subgroup share their rows: each lane loads one vec4 of A
// per row octet and k step, and subgroupBroadcast (a register extract on lavapipe) hands
// it to the others. Per step of 4 k a lane issues 2 A loads and 4 B loads for 256
// multiply-adds with 16 rows per subgroup, against 16 loads for 256 in matmul_vec4 (measured:
// 1.5-1.8x faster).
// Layout: a workgroup is WORKGROUP_SIZE invocations = G = WORKGROUP_SIZE / W subgroups of W lanes
// (64, or one subgroup: see below) and covers a TR x TC output tile of SC column groups side by
// side (COLUMN_GROUPS, from 1 to G; the host picks it by the product's shape, see
// choose::matmul_tile): TC = 4 W SC columns and TR = R * G / SC rows, R = SUBGROUP_ROWS (16, 32 or
// 64) rows per subgroup. Unset (0), SC = max(64, 4 W) / 4 W: with R = 16, 64 x 64 for W <= 16, 32
// x 128 for W = 32, 16 x 256 for W = 64; on CPU devices the host picks among every SC and R, and a
// workgroup of one subgroup (64 x 4 W, R = 64) where a product has so few 64-invocation tiles that
// the threads would idle (ops::subgroup_tiles).
// Subgroup s takes rows R (s / SC) .. + R - 1 and columns 4 W (s % SC) ..; its lane l takes
// columns 4 l .. 4 l + 3 of those, so each invocation holds R x 4 outputs in R / 4 mat4x4
// accumulators (column = output column). Subgroup ids, not the local index, decide
// the rows, so correctness needs only that every subgroup has SUBGROUP_WIDTH lanes.
// Why taller subgroups: a lane's 4 B loads per k step feed R x 16 multiply-adds while its A loads
// (R / 8, shared) grow with R, so loads per multiply-add fall from 6 / 256 (R = 16) to 8 / 512 and
// 12 / 1024; on lavapipe, where loads bound this loop, the 512^3 GEMM ran about 1.2x faster at each
// step (R = 128 was slower again: BENCHMARKS.md, "Taller subgroup tiles"). Products whose rows pad
// less in shorter tiles keep them (Winograd's transposed GEMMs over a few tiles).
// Override constants TRANS_A / TRANS_B pick the layout at pipeline creation.
// The workgroup grid is 1-D over batch x row tiles x column tiles (row tiles x column tiles of
// the batch's columns side by side where FLAT, see main), folded into y past 65535: linear tile =
// wid.x + wid.y * nwg.x.
// Bindings (contiguous f32 viewed as vec4; batch strides a_sb, b_sb are 0 for a
// broadcast operand and multiples of 4 otherwise):
//   a4  = A: [batch, m, k], or [batch, k, m] when TRANS_A
//   b4  = B: [batch, k, n], or [batch, n, k] when TRANS_B
//   affine   = [2, C] (row 0 scale, row 1 shift) viewed as vec4s, read when bit 0 of `epilogue` is set
//   residual = [batch, m, n], read when bit 1 is set
//   out      = [batch, m, n]
// residual and out are declared as vec4s (every tensor buffer is padded to whole vec4s): where
// n_out % 4 == 0 an invocation's 4 columns of a row are one aligned vec4, stored (and their residual
// read) in one access instead of four; elsewhere single components. On lavapipe each access is a
// loop over the lanes, and with K = 64 (ResNet's 1 x 1 convs) the scalar stores cost about as much
// as the multiply-adds. OUT_VEC4 (the host sets it where n_out % 4 == 0) compiles the scalar path out:
// lavapipe runs both sides of an `if` it cannot prove uniform under a lane mask, and the unused
// scalar path alone cost the K = 64 GEMMs about 40% of their time (BENCHMARKS.md, "Small-K 1x1
// GEMMs").
// An unused affine or residual slot holds a stand-in (A) that is never read.
// B's rows may be longer than out's (n > n_out): matmul_repack pads a 7 x 7 map's 49 pixels to 52 so
// that B's rows are whole vec4s; the padding columns are computed and never stored.
// Params, b_block, mad and outer repeat matmul_vec4's (finish and store take vec4s here): WGSL
// has no includes, and one Rust struct (MatmulParams) mirrors every matmul kernel's Params.

override TRANS_A: bool = false;
override SUBGROUP_WIDTH: u32 = 8u; // lanes per subgroup, a power of two from 4 to 64 (the host sets it)
override TRANS_B: bool = false;
override OUT_VEC4: bool = false; // n_out % 4 == 0: every stored row segment is one aligned vec4
// The epilogue (Params' `epilogue` and `axis`, which this kernel does not read), fixed at pipeline
// creation for the reason OUT_VEC4 is: the column-indexed affine's 8 scalar loads and the sigmoid,
// never used by a 1 x 1 conv, slowed it as much as its scalar stores did.
override EPILOGUE: u32 = 0u;
override AXIS: u32 = 0u;
override COLUMN_GROUPS: u32 = 0u; // SC (see Layout); 0: max(64, 4 W) / 4 W
override SUBGROUP_ROWS: u32 = 16u; // R (see Layout): 16, 32 or 64
override WORKGROUP_SIZE: u32 = 64u; // G W (see Layout): 64, or W (one subgroup)
override TOUCH_OUT: bool = false; // load the output lines before the loop (CPU devices: touch_rows)

struct Params {
    m: u32,
    n: u32,
    k: u32,
    batch: u32,
    a_sb: u32,     // A strides in elements; a_sb = 0 broadcasts A over the batch
    a_sm: u32,
    a_sk: u32,
    b_sb: u32,     // B strides; b_sb = 0 broadcasts B
    b_sk: u32,
    b_sn: u32,
    epilogue: u32, // bit 0 affine, bit 1 residual, bits 2.. activation (0 none, 1 relu, 2 sigmoid);
                   // unread here: the override EPILOGUE holds it
    axis: u32,     // affine indexed by 0: row (m), 1: column (n); unread here (AXIS)
    tiles_m: u32,  // ceil(m / TR)
    tiles_n: u32,  // ceil(n / TC); ceil(batch n / TC) where FLAT (see main)
    n_out: u32,    // out's and residual's row length: n, or fewer where the host padded B's rows
                   // to whole vec4s (matmul_repack: columns n_out .. n - 1 are computed, not stored)
    zero: u32,     // always 0 (see touch_rows)
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> a4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> b4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> affine: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> residual: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> out: array<vec4<f32>>;

// affine's element i (the buffer is padded to whole vec4s, so it is viewed as vec4s: the row-axis
// epilogue reads 4 rows' scales or shifts in one access).
fn affine_at(i: u32) -> f32 {
    return affine[i / 4u][i % 4u];
}

// The epilogue for 4 outputs of one row, columns col .. col + 3 (columns past n read a clamped
// affine and are never stored); `scale` and `shift` are the row's affine when it is indexed by row
// (see row_affine), `res` the outputs' residuals when bit 1 of `epilogue` is set.
fn finish(acc: vec4<f32>, col: u32, scale: f32, shift: f32, res: vec4<f32>) -> vec4<f32> {
    var v = acc;
    if ((EPILOGUE & 1u) != 0u) {
        if (AXIS == 1u) {
            let c = min(vec4(col) + vec4(0u, 1u, 2u, 3u), vec4(params.n_out - 1u));
            let n = params.n_out;
            let scale4 = vec4(affine_at(c.x), affine_at(c.y), affine_at(c.z), affine_at(c.w));
            let shift4 = vec4(affine_at(n + c.x), affine_at(n + c.y), affine_at(n + c.z), affine_at(n + c.w));
            v = fma(v, scale4, shift4);
        } else {
            v = fma(v, vec4(scale), vec4(shift));
        }
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

// Part j (0 .. 7) of the row-indexed affine of rows r0 .. r0 + 15: j < 4 the scales of rows
// r0 + 4 j .. + 3, j >= 4 the shifts of rows r0 + 4 (j - 4) .. + 3; one aligned vec4 where the 4
// rows are whole and m % 4 == 0 (every ResNet conv), else 4 clamped elements (rows past m are never
// stored).
fn row_affine_part(r0: u32, j: u32) -> vec4<f32> {
    let m = params.m;
    let r = r0 + 4u * (j & 3u);
    let base = select(0u, m, j >= 4u);
    if ((m & 3u) == 0u && r + 3u < m) {
        return affine[(base + r) / 4u];
    }
    let c = min(vec4(r) + vec4(0u, 1u, 2u, 3u), vec4(m - 1u));
    return vec4(affine_at(base + c.x), affine_at(base + c.y), affine_at(base + c.z), affine_at(base + c.w));
}

// Scales (column i: rows r0 + 4 i .. + 3) and shifts of rows r0 .. r0 + 15, when the affine is
// indexed by row. Those rows are the same for the whole subgroup, so, as with A, each lane loads one
// part (with 4 lanes two) and broadcasts hand them out: 1 load per invocation instead of the 32
// scalar loads (each a loop over the lanes on lavapipe) that reading per row in finish cost.
struct RowAffine {
    scale: mat4x4<f32>,
    shift: mat4x4<f32>,
}

fn row_affine(r0: u32, lane: u32) -> RowAffine {
    if (SUBGROUP_WIDTH >= 8u) {
        let v = row_affine_part(r0, lane & 7u);
        return RowAffine(
            mat4x4(subgroupBroadcast(v, 0u), subgroupBroadcast(v, 1u), subgroupBroadcast(v, 2u), subgroupBroadcast(v, 3u)),
            mat4x4(subgroupBroadcast(v, 4u), subgroupBroadcast(v, 5u), subgroupBroadcast(v, 6u), subgroupBroadcast(v, 7u)));
    }
    let v = row_affine_part(r0, lane & 3u);
    let u = row_affine_part(r0, (lane & 3u) + 4u);
    return RowAffine(
        mat4x4(subgroupBroadcast(v, 0u), subgroupBroadcast(v, 1u), subgroupBroadcast(v, 2u), subgroupBroadcast(v, 3u)),
        mat4x4(subgroupBroadcast(u, 0u), subgroupBroadcast(u, 1u), subgroupBroadcast(u, 2u), subgroupBroadcast(u, 3u)));
}

// B[k = 4 kq .. 4 kq + 3, columns c0 .. c0 + 3] as a mat4x4 whose column j is
// column c0 + j over the 4 k. Clamped like a_block.
fn b_block(base: u32, c0: u32, kq: u32) -> mat4x4<f32> {
    let n = params.n;
    let k = params.k;
    if (TRANS_B) {
        // Stored [n, k]: each column holds a vec4 along k.
        let c = vec4(min(c0, n - 1u), min(c0 + 1u, n - 1u), min(c0 + 2u, n - 1u), min(c0 + 3u, n - 1u));
        let at = base + c * (k / 4u) + kq;
        return mat4x4(b4[at.x], b4[at.y], b4[at.z], b4[at.w]);
    }
    // Stored [k, n]: each k holds a vec4 of 4 consecutive columns; neighbouring
    // lanes read neighbouring vec4s.
    let at = base + min(c0, n - 4u) / 4u + 4u * kq * (n / 4u);
    return transpose(mat4x4(b4[at], b4[at + n / 4u], b4[at + 2u * (n / 4u)], b4[at + 3u * (n / 4u)]));
}

// a b + c as fused multiply-adds chained into the accumulator (c += a * b
// would add a separate product, 5 operations per 4 multiply-adds).
fn mad(a: mat4x4<f32>, b: mat4x4<f32>, c: mat4x4<f32>) -> mat4x4<f32> {
    return mat4x4(mad_col(a, b[0], c[0]), mad_col(a, b[1], c[1]), mad_col(a, b[2], c[2]), mad_col(a, b[3], c[3]));
}

fn mad_col(a: mat4x4<f32>, b: vec4<f32>, c: vec4<f32>) -> vec4<f32> {
    return fma(a[3], vec4(b.w), fma(a[2], vec4(b.z), fma(a[1], vec4(b.y), fma(a[0], vec4(b.x), c))));
}

// The outer product a b^T as a mat4x4 (column j = a * b[j]).
fn outer(a: vec4<f32>, b: vec4<f32>) -> mat4x4<f32> {
    return mat4x4(a * b.x, a * b.y, a * b.z, a * b.w);
}

// Applies the epilogue to a 4 x 4 block (column = output column; `scale` and `shift` hold its
// rows' affine when indexed by row) and stores the elements inside the output: one vec4 per row
// where the 4 columns are whole and aligned (n_out % 4 == 0), single components otherwise (never
// where OUT_VEC4: there n_out = n and c0 is a multiple of 4, so a block is whole or wholly past n).
// Rows of out and residual are n_out long: columns n_out .. n - 1 (B's padding) are dropped.
fn store(bi: u32, r0: u32, c0: u32, acc: mat4x4<f32>, scale: vec4<f32>, shift: vec4<f32>) {
    let n = params.n_out;
    let whole = (n & 3u) == 0u && c0 + 3u < n;
    let residual_on = (EPILOGUE & 2u) != 0u;
    for (var i = 0u; i < 4u; i++) {
        let row = r0 + i;
        if (row >= params.m) {
            break;
        }
        let idx = (bi * params.m + row) * n + c0;
        let acc_row = vec4(acc[0][i], acc[1][i], acc[2][i], acc[3][i]);
        if (whole) {
            var res = vec4(0.0);
            if (residual_on) {
                res = residual[idx / 4u];
            }
            out[idx / 4u] = finish(acc_row, c0, scale[i], shift[i], res);
        } else if (!OUT_VEC4) {
            var res = vec4(0.0);
            for (var j = 0u; j < 4u; j++) {
                if (residual_on && c0 + j < n) {
                    res[j] = residual[(idx + j) / 4u][(idx + j) % 4u];
                }
            }
            let v = finish(acc_row, c0, scale[i], shift[i], res);
            for (var j = 0u; j < 4u; j++) {
                if (c0 + j < n) {
                    out[(idx + j) / 4u][(idx + j) % 4u] = v[j];
                }
            }
        }
    }
}

// What lane `lane` loads of A for rows r0 .. r0 + 7 at k step kq (one vec4; rows past
// the edge are clamped and their results never stored):
//   row-major A: row r0 + lane, k = 4 kq .. 4 kq + 3;
//   TRANS_A:     rows r0 + 4 (lane / 4) .. + 3, k = 4 kq + lane % 4.
fn a_lane(base: u32, r0: u32, kq: u32, lane: u32) -> vec4<f32> {
    let m = params.m;
    if (TRANS_A) {
        let kk = 4u * kq + (lane & 3u);
        return a4[base + kk * (m / 4u) + min(r0 + 4u * (lane >> 2u), m - 4u) / 4u];
    }
    return a4[base + min(r0 + lane, m - 1u) * (params.k / 4u) + kq];
}

// A[rows r0 .. r0 + 3, k = 4 kq .. + 3] (lo) and A[rows r0 + 4 .. + 7, same k] (hi), each
// as a mat4x4 whose column t holds the 4 rows at k = 4 kq + t, assembled from the lanes'
// loads `v` (see a_lane).
struct ABlocks {
    lo: mat4x4<f32>,
    hi: mat4x4<f32>,
}

fn broadcast_blocks(v: vec4<f32>, u: vec4<f32>) -> ABlocks {
    let lo = mat4x4(subgroupBroadcast(v, 0u), subgroupBroadcast(v, 1u), subgroupBroadcast(v, 2u),
                    subgroupBroadcast(v, 3u));
    let hi = mat4x4(subgroupBroadcast(u, 0u), subgroupBroadcast(u, 1u), subgroupBroadcast(u, 2u),
                    subgroupBroadcast(u, 3u));
    if (TRANS_A) {
        return ABlocks(lo, hi); // lane 4 h + t loaded the 4 rows at k = 4 kq + t
    }
    return ABlocks(transpose(lo), transpose(hi)); // lane 4 h + i loaded row 4 h + i
}

// The 8 rows from r0 at k step kq. With 8 or more lanes, lane l loads what a_lane gives lane l % 8
// and broadcasts from lanes 0 .. 7 hand them out (lanes past 8 repeat loads, never read); with 4
// lanes, lane l loads the parts of lanes l and l + 4. SUBGROUP_WIDTH is fixed at pipeline creation,
// so only one side ever runs.
fn a_blocks(base: u32, r0: u32, kq: u32, lane: u32) -> ABlocks {
    if (SUBGROUP_WIDTH >= 8u) {
        let v = a_lane(base, r0, kq, lane & 7u);
        let lo = mat4x4(subgroupBroadcast(v, 0u), subgroupBroadcast(v, 1u), subgroupBroadcast(v, 2u),
                        subgroupBroadcast(v, 3u));
        let hi = mat4x4(subgroupBroadcast(v, 4u), subgroupBroadcast(v, 5u), subgroupBroadcast(v, 6u),
                        subgroupBroadcast(v, 7u));
        if (TRANS_A) {
            return ABlocks(lo, hi);
        }
        return ABlocks(transpose(lo), transpose(hi));
    }
    return broadcast_blocks(a_lane(base, r0, kq, lane & 3u), a_lane(base, r0, kq, (lane & 3u) + 4u));
}

// One invocation's accumulators for 16 rows r .. r + 15 of a subgroup: a_i holds rows r + 4 i .. + 3
// by its 4 columns.
struct Rows16 {
    a0: mat4x4<f32>,
    a1: mat4x4<f32>,
    a2: mat4x4<f32>,
    a3: mat4x4<f32>,
}

// acc plus A[rows r .. r + 15, k step kq] times b (B's 4 k by the lane's 4 columns).
fn mad16(acc: Rows16, a_base: u32, r: u32, kq: u32, lane: u32, b: mat4x4<f32>) -> Rows16 {
    let top = a_blocks(a_base, r, kq, lane);
    let bottom = a_blocks(a_base, r + 8u, kq, lane);
    return Rows16(mad(top.lo, b, acc.a0), mad(top.hi, b, acc.a1), mad(bottom.lo, b, acc.a2),
                  mad(bottom.hi, b, acc.a3));
}

// acc plus A[rows r .. r + 15, one k] (TRANS_A; at: that k's row of A, rows clamped like a_lane)
// times b (B at that k, the lane's 4 columns), as outer products.
fn outer16(acc: Rows16, at: u32, r: u32, b: vec4<f32>) -> Rows16 {
    let last = params.m - 4u;
    return Rows16(acc.a0 + outer(a4[at + min(r, last) / 4u], b),
                  acc.a1 + outer(a4[at + min(r + 4u, last) / 4u], b),
                  acc.a2 + outer(a4[at + min(r + 8u, last) / 4u], b),
                  acc.a3 + outer(a4[at + min(r + 12u, last) / 4u], b));
}

// The epilogue and stores of rows r0 .. r0 + 15, in uniform control flow (params and r0 are
// uniform over the subgroup, as row_affine's broadcasts need).
fn store16(bi: u32, r0: u32, col0: u32, lane: u32, acc: Rows16) {
    var ra = RowAffine(mat4x4<f32>(), mat4x4<f32>());
    if ((EPILOGUE & 1u) != 0u && AXIS == 0u) {
        ra = row_affine(r0, lane);
    }
    store(bi, r0, col0, acc.a0, ra.scale[0], ra.shift[0]);
    store(bi, r0 + 4u, col0, acc.a1, ra.scale[1], ra.shift[1]);
    store(bi, r0 + 8u, col0, acc.a2, ra.scale[2], ra.shift[2]);
    store(bi, r0 + 12u, col0, acc.a3, ra.scale[3], ra.shift[3]);
}

// One load of each output row this lane will store (its column col, row clamped), OR-ed into a
// value the caller ANDs with params.zero (0) so the compiler keeps the loads. Why (TOUCH_OUT, set on
// CPU devices): on lavapipe a subgroup's stores at the end walk R rows a map apart, each a store
// stream, more than the host CPU's prefetchers follow, and each line missed stalls the stores; a
// load of the same lines before the multiply-adds overlaps those misses with them (1 x 1 conv,
// 8 x 64 x 56 x 56 > 256, one thread: 73-77 -> 49-51 ms; BENCHMARKS.md, "Output lines touched first").
fn touch_rows(bi: u32, row0: u32, col: u32) -> u32 {
    var touch = 0u;
    for (var r = 0u; r < SUBGROUP_ROWS; r++) {
        let row = min(row0 + r, params.m - 1u);
        touch |= bitcast<u32>(out[((bi * params.m + row) * params.n_out + col) / 4u].x);
    }
    return touch;
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(subgroup_id) sg: u32, @builtin(subgroup_invocation_id) lane: u32) {
    let tile = wid.x + wid.y * nwg.x;
    let m = params.m;
    let n = params.n;
    let k = params.k;
    // Columns across images (FLAT): with A shared by the batch (a_sb = 0, a 1 x 1 conv's weight),
    // B not transposed and n % 4 == 0, the column tiles run over the batch's batch x n columns
    // (the host sets tiles_n to match), since a lane's 4 columns never straddle two images: a
    // 196-column map no longer fills a fourth 64-column tile with 4 columns per image. Each lane
    // then finds its own image.
    let flat = !TRANS_B && params.a_sb == 0u && (n & 3u) == 0u;
    let per_batch = params.tiles_m * params.tiles_n;
    if (tile >= per_batch * select(params.batch, 1u, flat)) {
        return;
    }
    var bi = tile / per_batch;
    let t = tile % per_batch;
    // Tile and subgroup layout for SUBGROUP_WIDTH lanes: mirrors ops::subgroup_tiles (the host's
    // tiles_m and tiles_n count tiles of the same size).
    let width = SUBGROUP_WIDTH;
    let sc = select(max(64u, 4u * width) / (4u * width), COLUMN_GROUPS, COLUMN_GROUPS != 0u);
    let tc = 4u * width * sc;
    let tr = SUBGROUP_ROWS * (WORKGROUP_SIZE / width) / sc;
    let row0 = (t / params.tiles_n) * tr + (sg / sc) * SUBGROUP_ROWS;
    let col_flat = (t % params.tiles_n) * tc + (sg % sc) * 4u * width + lane * 4u;
    // col0: the lane's first column within image bi; past the batch's columns, n (nothing stored,
    // B's reads clamped).
    var col0 = col_flat;
    if (flat) {
        if (col_flat < params.batch * n) {
            bi = col_flat / n;
            col0 = col_flat % n;
        } else {
            bi = params.batch - 1u;
            col0 = n;
        }
    }

    // c0..c3: rows row0 + 16 i .. + 15 by columns col0 .. col0 + 3; those past SUBGROUP_ROWS are
    // never touched (the override constant is known when the pipeline is built, so the branches
    // on it and the unused accumulators compile out).
    var c0: Rows16;
    var c1: Rows16;
    var c2: Rows16;
    var c3: Rows16;
    let a_base = bi * params.a_sb / 4u;
    let b_base = bi * params.b_sb / 4u;
    let k4 = k / 4u;
    if (TOUCH_OUT) {
        bi += touch_rows(bi, row0, min(col0, params.n_out - 1u)) & params.zero; // adds 0, keeps the loads
    }
    for (var kq = 0u; kq < k4; kq++) {
        let b = b_block(b_base, col0, kq);
        c0 = mad16(c0, a_base, row0, kq, lane, b);
        if (SUBGROUP_ROWS >= 32u) {
            c1 = mad16(c1, a_base, row0 + 16u, kq, lane, b);
        }
        if (SUBGROUP_ROWS >= 64u) {
            c2 = mad16(c2, a_base, row0 + 32u, kq, lane, b);
            c3 = mad16(c3, a_base, row0 + 48u, kq, lane, b);
        }
    }
    // The last k % 4 steps, possible only when k is contiguous in neither operand
    // (TRANS_A without TRANS_B): one k at a time, as outer products of direct loads.
    for (var kk = 4u * k4; kk < k; kk++) {
        let at = a_base + kk * (m / 4u);
        let b = b4[b_base + kk * (n / 4u) + min(col0, n - 4u) / 4u];
        c0 = outer16(c0, at, row0, b);
        if (SUBGROUP_ROWS >= 32u) {
            c1 = outer16(c1, at, row0 + 16u, b);
        }
        if (SUBGROUP_ROWS >= 64u) {
            c2 = outer16(c2, at, row0 + 32u, b);
            c3 = outer16(c3, at, row0 + 48u, b);
        }
    }

    store16(bi, row0, col0, lane, c0);
    if (SUBGROUP_ROWS >= 32u) {
        store16(bi, row0 + 16u, col0, lane, c1);
    }
    if (SUBGROUP_ROWS >= 64u) {
        store16(bi, row0 + 32u, col0, lane, c2);
        store16(bi, row0 + 48u, col0, lane, c3);
    }
}
