enable subgroups; // WGSL and tint require it; wgpu's naga rejects it, so Kernel::naga_source blanks it

// conv2d_gemm_subgroup: conv2d as an implicit GEMM (no im2col buffer), for devices whose subgroups
// have one fixed power-of-two width SUBGROUP_WIDTH from 4 to 64 (an override constant the host sets
// from the adapter). Per group g of the convolution:
//   out[g rows, pixels] = W_g [cout_g x K] x X_g [K x (N * OH * OW)],  K = cin_g * KH * KW,
// where column p = (n, oy, ox) of X_g at k = (ci, ky, kx) is x[n, g cin_g + ci, oy sy - py + ky dy,
// ox sx - px + kx dx] (0 in the padding): read straight from x while staging, never stored whole.
// The same sums as conv2d, in k order (ci, ky, kx), then the fused epilogue.
//
// Why: a direct convolution reloads each input value for every channel block; a GEMM tile stages a
// K slice of both operands once in workgroup memory and every invocation reuses it 16 or 4 times.
//
// Layout (64 invocations, the tile sizes follow from the width W; shown for W = 8):
//   TC = max(64, 4 W) output columns (pixels) per workgroup, TR = 16 * (64 / W) / (TC / 4 W) output
//   rows (channels): 64 x 64 for W <= 16, 32 x 128 for W = 32, 16 x 256 for W = 64;
//   a K slice of KT = 2048 / TC (32, 16, 8) is staged per step: a_tile [TR][KT] and b_tile [KT][TC],
//   2048 floats each (16 KiB together, WebGPU's default limit).
//   Subgroup s takes rows 16 (s / SC) .. +15 and columns 4 W (s % SC) + 4 lane .. + 3 (SC = TC / 4 W
//   column groups): each invocation holds 16 x 4 outputs in four mat4x4 accumulators.
//   A's rows reach the lanes by subgroupBroadcast: per 4 k a lane reads one vec4 of a_tile per row
//   octet (two with 4 lanes), not 8. Subgroup ids, not the local index, decide the rows, so
//   correctness needs only that every subgroup has exactly SUBGROUP_WIDTH lanes (the host uses this
//   kernel only on adapters whose smallest and largest subgroup sizes agree).
// Subgroup operations and barriers need every invocation: none returns before the stores unless the
// whole workgroup does; rows and columns past the edge are clamped or zeroed and never stored.
//
// The workgroup grid is 1-D over groups x row tiles x column tiles, folded into y past 65535.
// Bindings, contiguous row-major f32:
//   1 x4       [N, C_in, H, W]
//   2 weight4  [C_out, C_in / groups, KH, KW] = per group a row-major [cout_g, K] matrix
//   3 affine   [2, C_out]: row 0 scale, row 1 shift (bound to x when unused)
//   4 residual [N, C_out, OH, OW] (bound to x when unused)
//   5 out      [N, C_out, OH, OW]
// residual and out are declared as vec4s (every tensor buffer is padded to whole vec4s): where
// OH * OW % 4 == 0 an invocation's 4 columns of a channel are one aligned vec4 of one image,
// stored (and their residual read) in one access instead of four; single components elsewhere.
// On lavapipe each access is a loop over the lanes: with small K (1 x 1 downsample convs) the
// scalar stores cost about as much as the multiply-adds.
// Params, stage_a, stage_b and mad repeat conv2d_gemm's (finish and store take vec4s here): WGSL
// has no includes.

override SUBGROUP_WIDTH: u32 = 8u;

struct Params {
    n: u32,
    c_in: u32,
    h: u32,
    w: u32,
    c_out: u32,
    oh: u32,
    ow: u32,
    kh: u32,
    kw: u32,
    stride_y: u32,
    stride_x: u32,
    pad_y: u32,
    pad_x: u32,
    dil_y: u32,
    dil_x: u32,
    cin_per_group: u32,
    cout_per_group: u32,
    groups: u32,
    k: u32,        // cin_per_group * kh * kw
    cols: u32,     // n * oh * ow
    tiles_m: u32,  // ceil(cout_per_group / TR)
    tiles_n: u32,  // ceil(cols / TC)
    epilogue: u32, // bit 0 affine, bit 1 residual, bits 2.. activation (0 none, 1 relu, 2 sigmoid);
                   // unread here: the override EPILOGUE holds it
    _pad: u32,
    inv_taps: f32, // 1 / (kh * kw) and 1 / kw, for divisions without integer division (see split)
    inv_kw: f32,
    _pad2: vec2<u32>,
}

@group(0) @binding(0) var<uniform> params: Params;
// x as vec4s (padded to whole vec4s): single elements are components; with QUAD_STRIDE a column
// quad's 4 pixels are two or three aligned vec4 loads and a shuffle (QUAD_STRIDE).
@group(0) @binding(1) var<storage, read> x4: array<vec4<f32>>;
// The weights as vec4s (padded to whole vec4s): aligned rows when A_VEC4 (K is a multiple of 4,
// so every row starts on a vec4), unaligned_weights otherwise.
@group(0) @binding(2) var<storage, read> weight4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> affine: array<f32>;
@group(0) @binding(4) var<storage, read> residual: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> out: array<vec4<f32>>;
// Whether K is a multiple of 4: the weights are staged a vec4 at a time (one load, not four).
override A_VEC4: bool = false;
// QUAD_STRIDE 1 or 2: every column quad is 4 neighbouring pixels of one output row (OW % 4 == 0, so
// quads never straddle rows or images) and stride_x is 1 or 2: a quad then reads input pixels
// QUAD_STRIDE apart in one row, staged with two (stride 1) or three (stride 2) aligned vec4 loads
// instead of four scalar ones. 0: any other layout, four scalar loads.
override QUAD_STRIDE: u32 = 0u;
// Whether the kernel is 1 x 1: k is the input channel, no tap arithmetic.
override ONE_TAP: bool = false;
// The epilogue (Params' `epilogue` bits, which this kernel does not read), fixed at pipeline
// creation: lavapipe runs both sides of a branch it cannot prove uniform, so unused epilogue code
// costs every store (as in matmul_subgroup).
override EPILOGUE: u32 = 0u;

// a_tile[r * KT / 4 + q] holds rows r, k = 4 q .. 4 q + 3 of the staged A slice;
// b_tile[k * TC / 4 + c] holds k, columns 4 c .. 4 c + 3 of the staged X slice.
var<workgroup> a_tile: array<vec4<f32>, 512>;
var<workgroup> b_tile: array<vec4<f32>, 512>;

// The fused epilogue for 4 outputs of one channel: acc scaled and shifted (scale and shift are the
// channel's, 1 and 0 when bit 0 of EPILOGUE is clear), plus `res`, their residuals (0 when bit 1
// is clear), then the activation.
fn finish(acc: vec4<f32>, scale: f32, shift: f32, res: vec4<f32>) -> vec4<f32> {
    var v = fma(acc, vec4(scale), vec4(shift)) + res;
    let act = EPILOGUE >> 2u;
    if (act == 1u) {
        v = max(v, vec4(0.0));
    } else if (act == 2u) {
        // exp overflows f32 past 88: clamping keeps the sigmoid finite and exact to f32.
        v = 1.0 / (1.0 + exp(-clamp(v, vec4(-88.0), vec4(88.0))));
    }
    return v;
}

// The 4 consecutive elements from element offset s (0..3) of the aligned pair lo, hi.
fn shifted(lo: vec4<f32>, hi: vec4<f32>, s: u32) -> vec4<f32> {
    switch s {
        case 0u: {
            return lo;
        }
        case 1u: {
            return vec4(lo.yzw, hi.x);
        }
        case 2u: {
            return vec4(lo.zw, hi.xy);
        }
        default: {
            return vec4(lo.w, hi.xyz);
        }
    }
}

// Elements s, s + 2, s + 4 and s + 6 (s = 0..3) of the aligned triple lo, mid, hi.
fn every_other(lo: vec4<f32>, mid: vec4<f32>, hi: vec4<f32>, s: u32) -> vec4<f32> {
    switch s {
        case 0u: {
            return vec4(lo.xz, mid.xz);
        }
        case 1u: {
            return vec4(lo.yw, mid.yw);
        }
        case 2u: {
            return vec4(lo.z, mid.xz, hi.x);
        }
        default: {
            return vec4(lo.w, mid.yw, hi.y);
        }
    }
}

// The 4 weights from element `first` on (any alignment: K % 4 != 0, the 7 x 7 stem's K = 147),
// the ones from the `left`-th on 0 (past the row's K): two aligned vec4 loads and a shift, not four
// scalar loads (each load is a loop over the lanes on lavapipe). The second vec4 may lie past the
// buffer's end only when all of its weights are past the row's end: then it is masked, and the
// read itself is bounds-checked by WGSL.
fn unaligned_weights(first: u32, left: u32) -> vec4<f32> {
    let v = shifted(weight4[first / 4u], weight4[first / 4u + 1u], first % 4u);
    return select(vec4(0.0), v, vec4(0u, 1u, 2u, 3u) < vec4(left));
}

// Stages A[rows row_base .., k = k0 .. k0 + KT) of group g into a_tile: rows past the group's
// channels repeat its last row (never stored), k past K is 0.
fn stage_a(lid: u32, g: u32, row_base: u32, k0: u32, tr: u32, kt: u32) {
    let ktq = kt / 4u;
    for (var e = lid; e < tr * ktq; e += 64u) {
        let row = min(row_base + e / ktq, params.cout_per_group - 1u);
        let at = (g * params.cout_per_group + row) * params.k;
        let kk = k0 + 4u * (e % ktq);
        if (A_VEC4) {
            let v = weight4[(at + min(kk, params.k - 4u)) / 4u];
            a_tile[e] = select(vec4(0.0), v, kk < params.k);
        } else {
            a_tile[e] = unaligned_weights(at + kk, params.k - min(kk, params.k));
        }
    }
}

// n / d and n % d for d = 1 / inv_d, without integer division (a loop over the lanes on a CPU
// device, where it cost more than the multiply-adds): the f32 quotient is within 1 of the true
// one for n < 2^24 (the host checks K), and one step each way corrects it.
fn split(n: u32, d: u32, inv_d: f32) -> vec2<u32> {
    var q = u32(f32(n) * inv_d);
    var r = i32(n) - i32(q * d);
    if (r < 0) {
        q -= 1u;
        r += i32(d);
    } else if (r >= i32(d)) {
        q += 1u;
        r -= i32(d);
    }
    return vec2(q, u32(r));
}

// Where the 4 staging columns of an invocation read x: the element offset of (n, first input
// channel of the group, row 0, column 0), the padded-input origin (oy sy - py, ox sx - px; wraps
// below 0, which the bounds test rejects) and whether the column exists.
struct Columns {
    base: vec4<u32>,
    iy0: vec4<u32>,
    ix0: vec4<u32>,
    live: vec4<bool>,
}

fn columns(g: u32, p0: u32) -> Columns {
    var c: Columns;
    let plane = params.oh * params.ow;
    for (var j = 0u; j < 4u; j++) {
        let p = p0 + j;
        let pc = min(p, params.cols - 1u);
        let n = pc / plane;
        let r = pc % plane;
        c.base[j] = (n * params.c_in + g * params.cin_per_group) * params.h * params.w;
        c.iy0[j] = (r / params.ow) * params.stride_y - params.pad_y;
        c.ix0[j] = (r % params.ow) * params.stride_x - params.pad_x;
        c.live[j] = p < params.cols;
    }
    return c;
}

// Stages X[k = k0 .. k0 + KT, this invocation's 4 columns] into b_tile: each invocation takes one
// column quad `sq` and k rows bk, bk + 64 / (TC / 4), ...; padding, missing columns and k past K are 0.
fn stage_b(cols: Columns, sq: u32, bk: u32, k0: u32, kt: u32, tcq: u32) {
    let taps = params.kh * params.kw;
    let hw = params.h * params.w;
    for (var kl = bk; kl < kt; kl += 64u / tcq) {
        let kk = k0 + kl;
        var ci = kk;
        var ky = 0u;
        var kx = 0u;
        if (!ONE_TAP) {
            let ci_tap = split(kk, taps, params.inv_taps);
            ci = ci_tap.x;
            let ky_kx = split(ci_tap.y, params.kw, params.inv_kw);
            ky = ky_kx.x;
            kx = ky_kx.y;
        }
        let iy = cols.iy0 + vec4(ky * params.dil_y);
        let ix = cols.ix0 + vec4(kx * params.dil_x);
        let ok = cols.live & (iy < vec4(params.h)) & (ix < vec4(params.w)) & vec4(kk < params.k);
        let plane_at = cols.base + vec4(min(ci, params.cin_per_group - 1u) * hw);
        if (QUAD_STRIDE != 0u) {
            // ix.x is "negative" (wrapped) in the left padding, so the quad's first element is
            // taken as signed: at the start of the buffer it lies before element 0. The vec4s
            // are indexed by floor(first / 4) (an arithmetic shift) and a vec4 wholly before
            // the buffer holds only padding, which the mask drops: its index is clamped to 0.
            // (Unsigned, that index wrapped to about 2^30: a read past the end, which runtimes
            // answer differently; Tint's clamping gave wrong pixels in the browser.)
            let first = bitcast<i32>(plane_at.x + min(iy.x, params.h - 1u) * params.w) + bitcast<i32>(ix.x);
            let q = first >> 2u;
            let s = u32(first & 3);
            var v: vec4<f32>;
            if (QUAD_STRIDE == 1u) {
                v = shifted(x4[max(q, 0)], x4[max(q + 1, 0)], s);
            } else {
                v = every_other(x4[max(q, 0)], x4[max(q + 1, 0)], x4[max(q + 2, 0)], s);
            }
            b_tile[kl * tcq + sq] = select(vec4(0.0), v, ok);
        } else {
            let at = plane_at + min(iy, vec4(params.h - 1u)) * params.w + min(ix, vec4(params.w - 1u));
            let v = vec4(x4[at.x / 4u][at.x % 4u], x4[at.y / 4u][at.y % 4u], x4[at.z / 4u][at.z % 4u],
                         x4[at.w / 4u][at.w % 4u]);
            b_tile[kl * tcq + sq] = select(vec4(0.0), v, ok);
        }
    }
}

// a b + c as fused multiply-adds chained into the accumulator (column j of b: 4 k of column j;
// column t of a: 4 rows at k t).
fn mad(a: mat4x4<f32>, b: mat4x4<f32>, c: mat4x4<f32>) -> mat4x4<f32> {
    return mat4x4(mad_col(a, b[0], c[0]), mad_col(a, b[1], c[1]), mad_col(a, b[2], c[2]), mad_col(a, b[3], c[3]));
}

fn mad_col(a: mat4x4<f32>, b: vec4<f32>, c: vec4<f32>) -> vec4<f32> {
    return fma(a[3], vec4(b.w), fma(a[2], vec4(b.z), fma(a[1], vec4(b.y), fma(a[0], vec4(b.x), c))));
}

// Rows r0 .. r0 + 3 (lo) and r0 + 4 .. r0 + 7 (hi) of the staged A at k = 4 kq .. + 3, each as a
// mat4x4 whose column t holds the 4 rows at k t.
struct ABlocks {
    lo: mat4x4<f32>,
    hi: mat4x4<f32>,
}

// With 8 or more lanes, lane l reads row r0 + l % 8 and the rows reach every lane by broadcasts
// from lanes 0 .. 7; with 4 lanes, lane l reads rows r0 + l and r0 + 4 + l. SUBGROUP_WIDTH is fixed
// at pipeline creation, so only one side is ever run.
fn a_blocks(r0: u32, kq: u32, ktq: u32, lane: u32) -> ABlocks {
    if (SUBGROUP_WIDTH >= 8u) {
        let v = a_tile[(r0 + (lane & 7u)) * ktq + kq];
        let lo = mat4x4(subgroupBroadcast(v, 0u), subgroupBroadcast(v, 1u), subgroupBroadcast(v, 2u),
                        subgroupBroadcast(v, 3u));
        let hi = mat4x4(subgroupBroadcast(v, 4u), subgroupBroadcast(v, 5u), subgroupBroadcast(v, 6u),
                        subgroupBroadcast(v, 7u));
        return ABlocks(transpose(lo), transpose(hi));
    }
    let v = a_tile[(r0 + (lane & 3u)) * ktq + kq];
    let u = a_tile[(r0 + 4u + (lane & 3u)) * ktq + kq];
    let lo = mat4x4(subgroupBroadcast(v, 0u), subgroupBroadcast(v, 1u), subgroupBroadcast(v, 2u),
                    subgroupBroadcast(v, 3u));
    let hi = mat4x4(subgroupBroadcast(u, 0u), subgroupBroadcast(u, 1u), subgroupBroadcast(u, 2u),
                    subgroupBroadcast(u, 3u));
    return ABlocks(transpose(lo), transpose(hi));
}

// Where this invocation's 4 output columns p0 .. p0 + 3 go: out's index of (n, channel 0, pixel)
// and whether the column exists. Computed once: integer division is a loop over the lanes on a CPU
// device.
struct OutColumns {
    at: vec4<u32>,
    live: vec4<bool>,
}

fn out_columns(p0: u32) -> OutColumns {
    var c: OutColumns;
    let plane = params.oh * params.ow;
    for (var j = 0u; j < 4u; j++) {
        let p = min(p0 + j, params.cols - 1u);
        c.at[j] = (p / plane) * params.c_out * plane + p % plane;
        c.live[j] = p0 + j < params.cols;
    }
    return c;
}

// Stores a 4 x 4 block (column j = output column j of `cols`, row i = group row r0 + i) through
// the epilogue, where rows and columns exist; each row's scale and shift are loaded once. `whole`:
// the 4 columns are one aligned vec4 of one image (see the bindings), stored at once.
fn store(g: u32, r0: u32, cols: OutColumns, whole: bool, acc: mat4x4<f32>) {
    let plane = params.oh * params.ow;
    let residual_on = (EPILOGUE & 2u) != 0u;
    for (var i = 0u; i < 4u; i++) {
        if (r0 + i >= params.cout_per_group) {
            break;
        }
        let co = g * params.cout_per_group + r0 + i;
        var scale = 1.0;
        var shift = 0.0;
        if ((EPILOGUE & 1u) != 0u) {
            scale = affine[co];
            shift = affine[params.c_out + co];
        }
        let acc_row = vec4(acc[0][i], acc[1][i], acc[2][i], acc[3][i]);
        let at = cols.at + vec4(co * plane);
        var res = vec4(0.0);
        if (whole) {
            if (residual_on) {
                res = residual[at.x / 4u];
            }
            out[at.x / 4u] = finish(acc_row, scale, shift, res);
        } else {
            for (var j = 0u; j < 4u; j++) {
                if (residual_on && cols.live[j]) {
                    res[j] = residual[at[j] / 4u][at[j] % 4u];
                }
            }
            let v = finish(acc_row, scale, shift, res);
            for (var j = 0u; j < 4u; j++) {
                if (cols.live[j]) {
                    out[at[j] / 4u][at[j] % 4u] = v[j];
                }
            }
        }
    }
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32, @builtin(subgroup_id) sg: u32,
        @builtin(subgroup_invocation_id) lane: u32) {
    let width = SUBGROUP_WIDTH;
    let tc = max(64u, 4u * width);
    let sc = tc / (4u * width);
    let tr = 16u * (64u / width) / sc;
    let kt = 2048u / tc;
    let tcq = tc / 4u;
    let ktq = kt / 4u;

    let tile = wid.x + wid.y * nwg.x;
    let per_group = params.tiles_m * params.tiles_n;
    if (tile >= per_group * params.groups) {
        return; // the folded grid's tail: whole workgroups
    }
    let g = tile / per_group;
    let t = tile % per_group;
    let row_base = (t / params.tiles_n) * tr;
    let col_base = (t % params.tiles_n) * tc;
    let row0 = (sg / sc) * 16u; // this subgroup's rows in the tile
    let colq = (sg % sc) * width + lane; // this invocation's column quad in the tile

    let sq = lid % tcq; // staging: column quad and first k row
    let cols = columns(g, col_base + 4u * sq);

    var c0 = mat4x4<f32>();
    var c1 = mat4x4<f32>();
    var c2 = mat4x4<f32>();
    var c3 = mat4x4<f32>();
    for (var k0 = 0u; k0 < params.k; k0 += kt) {
        stage_a(lid, g, row_base, k0, tr, kt);
        stage_b(cols, sq, lid / tcq, k0, kt, tcq);
        workgroupBarrier();
        for (var kq = 0u; kq < ktq; kq++) {
            let b = transpose(mat4x4(b_tile[4u * kq * tcq + colq], b_tile[(4u * kq + 1u) * tcq + colq],
                                     b_tile[(4u * kq + 2u) * tcq + colq], b_tile[(4u * kq + 3u) * tcq + colq]));
            let top = a_blocks(row0, kq, ktq, lane);
            let bottom = a_blocks(row0 + 8u, kq, ktq, lane);
            c0 = mad(top.lo, b, c0);
            c1 = mad(top.hi, b, c1);
            c2 = mad(bottom.lo, b, c2);
            c3 = mad(bottom.hi, b, c3);
        }
        workgroupBarrier();
    }

    let r = row_base + row0;
    let p0 = col_base + 4u * colq; // a multiple of 4
    let out_cols = out_columns(p0);
    let whole = ((params.oh * params.ow) & 3u) == 0u && p0 + 3u < params.cols;
    store(g, r, out_cols, whole, c0);
    store(g, r + 4u, out_cols, whole, c1);
    store(g, r + 8u, out_cols, whole, c2);
    store(g, r + 12u, out_cols, whole, c3);
}
