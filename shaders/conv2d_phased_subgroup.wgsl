enable subgroups; // WGSL and tint require it; wgpu's naga rejects it, so Kernel::naga_source blanks it

// conv2d_phased_subgroup: the 7 x 7 / 2 stem (stride 2, padding 3, dilation 1, one group, any
// number of input channels: the stem has 3) as an implicit GEMM without workgroup memory in
// conv2d_window_subgroup's structure, over x laid out by conv2d_phases as 4 phase planes per channel
// (even and odd rows x even and odd columns, bordered with zeros), for devices whose subgroups have
// one fixed power-of-two width SUBGROUP_WIDTH from 4 to 64:
//   out[n, co, pixels] = W [C_out x K] x X [K x pixels],  K = 56 C_in, k = (ci, ky, kx) in order with
// kx = 0 .. 7, W's tap rows of 7 padded to 8 with a zero (by conv2d_phases), the same sums in the same
// order as conv2d, then the fused epilogue.
//
// Why: conv2d_gemm_subgroup ran the stem at 27-28% of the GEMM on lavapipe (BENCHMARKS.md), and the
// windowed kernel needs C_in a multiple of 4 and 3 x 3 taps. In the phase planes an invocation's 4
// output pixels (a segment: 4 consecutive pixels of one output row) read, at tap (ky, kx), 4
// consecutive elements of one row of one plane: the 4 even-kx taps of one (channel, ky) lie in 2
// aligned vec4s of one plane and the 3 odd-kx ones in 2 of the other, at constant offsets, so 4
// loads and constant swizzles serve 7 k, and the zero border replaces every padding mask. A tap row
// padded to 8 taps is 2 steps of 4 k, the loop's body: per 4 k a lane issues 2 weight loads per 16
// channels (broadcast across lanes) and 2 x loads. The padding tap costs 1/8 of the multiply-adds,
// and buys a body of 2 steps where 4 unpadded tap rows (28 k) made 7: with 64 channels per subgroup
// that body's code (7 x 1,024 multiply-adds per lane, unrolled) outgrew the host CPU's instruction
// cache on lavapipe, and the stem ran at 56-62% of the GEMM beside it against 85-91% now
// (BENCHMARKS.md, "The stem's loop body").
//
// Phase planes (host: conv2d_phased.rs): plane 2 a + b of channel ci holds x[ci, 2 (i - 2) + a,
// 2 (j - 2) + b] at (i, j), 0 outside x (2 border rows and columns); each is ph x pw, pw a multiple
// of 4 reaching 2 vec4s past the last segment's start, ph = OH + 3, so no read leaves its plane.
//
// Layout (as matmul_subgroup's: G = WORKGROUP_SIZE / W subgroups, 64 invocations or one subgroup):
// a workgroup covers TR = R G / SC output channels by TC = 4 W SC pixel slots, R = SUBGROUP_ROWS
// (16, 32 or 64) channels per subgroup and SC = COLUMN_GROUPS subgroups side by side (unset: R = 16, TC = max(64, 4 W)); the host picks both
// with choose::matmul_tile (the stem on 8 lanes: 64 x 256, R = 64; on lavapipe the batch-8 stem
// took 73-76 ms against 85 with R = 16, BENCHMARKS.md "Taller subgroup tiles", measured with the
// old 7-step loop body, under which 16 and 64 channels later ran alike on one thread). Segments never
// span two output rows: the last of a row is partial unless OW is a multiple of 4. Subgroup operations need
// every invocation: none returns before the stores unless the whole workgroup does; channels and
// pixels past the edge are clamped or masked and never stored.
// Bindings, contiguous row-major f32:
//   1 xp4      [N, C_in, 4, ph, pw] as vec4s
//   2 weight4  [C_out, 14 C_in] as vec4s: [C_out, C_in, 7, 8], the 8th tap 0
//   3 affine   [2, C_out]: row 0 scale, row 1 shift, as vec4s (bound to x when unused)
//   4 residual [N, C_out, OH, OW] (bound to x when unused)
//   5 out      [N, C_out, OH, OW]
// finish, shifted, mad, a_blocks, affine_part, channel_affine and store repeat
// conv2d_window_subgroup's (step and store_all are its 16-row ones taken to R rows, Rows16 and mad16
// matmul_subgroup's, touch_rows matmul_subgroup's over this kernel's output layout): WGSL has no
// includes.

override SUBGROUP_WIDTH: u32 = 8u;
override SUBGROUP_ROWS: u32 = 16u;  // R (see Layout): 16, 32 or 64
override COLUMN_GROUPS: u32 = 0u;   // SC (see Layout); 0: max(64, 4 W) / 4 W
override WORKGROUP_SIZE: u32 = 64u; // G W (see Layout): 64, or W (one subgroup)
// OUT_VEC4: a segment's 4 outputs of a channel are one aligned vec4 of out (OW a multiple of 4).
override OUT_VEC4: bool = false;
override TOUCH_OUT: bool = false; // load the output lines before the loop (CPU devices: touch_rows)
// The epilogue (Params' `epilogue` bits, which this kernel does not read), fixed at pipeline
// creation: lavapipe runs both sides of a branch it cannot prove uniform, so unused epilogue code
// costs every store (as in matmul_subgroup).
override EPILOGUE: u32 = 0u;

struct Params {
    c_in: u32,
    c_out: u32,
    ow: u32,
    out_plane: u32, // oh * ow
    seg_row: u32,   // ceil(ow / 4) segments per output row
    segs: u32,      // segments per image
    cols: u32,      // n * segs
    tiles_m: u32,   // ceil(c_out / TR)
    tiles_n: u32,   // ceil(cols * 4 / TC)
    row4: u32,      // pw / 4: vec4s per phase-plane row
    plane4: u32,    // ph * pw / 4: vec4s per phase plane
    epilogue: u32,  // bit 0 affine, bit 1 residual, bits 2.. activation (0 none, 1 relu, 2 sigmoid)
    zero: u32,      // always 0 (see touch_rows)
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> xp4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> weight4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> affine: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> residual: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> out: array<vec4<f32>>;

// The fused epilogue for 4 outputs of one channel: acc scaled and shifted where bit 0 of EPILOGUE
// is set, plus `res` (0 when bit 1 is clear), then the activation.
fn finish(acc: vec4<f32>, scale: f32, shift: f32, res: vec4<f32>) -> vec4<f32> {
    var v = acc;
    if ((EPILOGUE & 1u) != 0u) {
        v = fma(v, vec4(scale), vec4(shift));
    }
    v += res;
    let act = EPILOGUE >> 2u;
    if (act == 1u) {
        v = max(v, vec4(0.0));
    } else if (act == 2u) {
        // exp overflows f32 past 88: clamping keeps the sigmoid finite and exact to f32.
        v = 1.0 / (1.0 + exp(-clamp(v, vec4(-88.0), vec4(88.0))));
    }
    return v;
}

// The 4 consecutive elements from element offset s (0..3, a constant here) of the aligned pair lo, hi.
fn shifted(lo: vec4<f32>, hi: vec4<f32>, s: u32) -> vec4<f32> {
    let one = select(lo, vec4(lo.yzw, hi.x), s == 1u);
    let two = select(one, vec4(lo.zw, hi.xy), s == 2u);
    return select(two, vec4(lo.w, hi.xyz), s >= 3u);
}

// a b + c as fused multiply-adds chained into the accumulator (column j of b: 4 k of pixel j;
// column t of a: 4 rows at k t).
fn mad(a: mat4x4<f32>, b: mat4x4<f32>, c: mat4x4<f32>) -> mat4x4<f32> {
    return mat4x4(mad_col(a, b[0], c[0]), mad_col(a, b[1], c[1]), mad_col(a, b[2], c[2]), mad_col(a, b[3], c[3]));
}

fn mad_col(a: mat4x4<f32>, b: vec4<f32>, c: vec4<f32>) -> vec4<f32> {
    return fma(a[3], vec4(b.w), fma(a[2], vec4(b.z), fma(a[1], vec4(b.y), fma(a[0], vec4(b.x), c))));
}

// Rows r0 .. r0 + 3 (lo) and r0 + 4 .. r0 + 7 (hi) of W' at k' = 4 kq .. + 3, each as a mat4x4 whose
// column t holds the 4 rows at k' 4 kq + t. With 8 or more lanes, lane l loads row r0 + l % 8 and
// broadcasts from lanes 0 .. 7 hand the rows out; with 4 lanes, lane l loads rows r0 + l and
// r0 + 4 + l. Rows past C_out repeat the last one (never stored).
struct ABlocks {
    lo: mat4x4<f32>,
    hi: mat4x4<f32>,
}

fn a_row(r: u32, kq: u32) -> vec4<f32> {
    return weight4[min(r, params.c_out - 1u) * weight_steps() + kq];
}

fn a_blocks(r0: u32, kq: u32, lane: u32) -> ABlocks {
    if (SUBGROUP_WIDTH >= 8u) {
        let v = a_row(r0 + (lane & 7u), kq);
        let lo = mat4x4(subgroupBroadcast(v, 0u), subgroupBroadcast(v, 1u), subgroupBroadcast(v, 2u),
                        subgroupBroadcast(v, 3u));
        let hi = mat4x4(subgroupBroadcast(v, 4u), subgroupBroadcast(v, 5u), subgroupBroadcast(v, 6u),
                        subgroupBroadcast(v, 7u));
        return ABlocks(transpose(lo), transpose(hi));
    }
    let v = a_row(r0 + (lane & 3u), kq);
    let u = a_row(r0 + 4u + (lane & 3u), kq);
    let lo = mat4x4(subgroupBroadcast(v, 0u), subgroupBroadcast(v, 1u), subgroupBroadcast(v, 2u),
                    subgroupBroadcast(v, 3u));
    let hi = mat4x4(subgroupBroadcast(u, 0u), subgroupBroadcast(u, 1u), subgroupBroadcast(u, 2u),
                    subgroupBroadcast(u, 3u));
    return ABlocks(transpose(lo), transpose(hi));
}

// One invocation's accumulators for 16 channels r .. r + 15: a_i holds channels r + 4 i .. + 3 by
// its 4 pixels.
struct Rows16 {
    a0: mat4x4<f32>,
    a1: mat4x4<f32>,
    a2: mat4x4<f32>,
    a3: mat4x4<f32>,
}

// acc plus W'[channels r .. r + 15, k' step kq] times b (X's 4 k' by the lane's 4 pixels).
fn mad16(acc: Rows16, r: u32, kq: u32, lane: u32, b: mat4x4<f32>) -> Rows16 {
    let top = a_blocks(r, kq, lane);
    let bottom = a_blocks(r + 8u, kq, lane);
    return Rows16(mad(top.lo, b, acc.a0), mad(top.hi, b, acc.a1), mad(bottom.lo, b, acc.a2),
                  mad(bottom.hi, b, acc.a3));
}

// The R x 4 accumulators of one invocation: c_i holds channels r0 + 16 i .. + 15, i < R / 16 (the
// rest stay unused and compile out: R is an override constant).
struct Acc {
    c0: Rows16,
    c1: Rows16,
    c2: Rows16,
    c3: Rows16,
}

// Accumulates the 4 k' of step kq: b0 .. b3 are X at those k' (4 pixels each).
fn step(acc: Acc, r0: u32, kq: u32, lane: u32, b0: vec4<f32>, b1: vec4<f32>, b2: vec4<f32>, b3: vec4<f32>) -> Acc {
    let b = transpose(mat4x4(b0, b1, b2, b3));
    var a = acc;
    a.c0 = mad16(a.c0, r0, kq, lane, b);
    if (SUBGROUP_ROWS >= 32u) {
        a.c1 = mad16(a.c1, r0 + 16u, kq, lane, b);
    }
    if (SUBGROUP_ROWS >= 64u) {
        a.c2 = mad16(a.c2, r0 + 32u, kq, lane, b);
        a.c3 = mad16(a.c3, r0 + 48u, kq, lane, b);
    }
    return a;
}

// Steps of 4 k in a row of W': K = 56 C_in (tap rows of 8).
fn weight_steps() -> u32 {
    return 14u * params.c_in;
}

// The 7 taps kx = 0 .. 6 of tap row `row` = 7 ci + ky for the segment whose (channel 0, plane 0,
// row oy, column ox0) is vec4 `base` of xp4 (row < 7 C_in). With PAD = 3 (BY = BX = 2), x's
// row 2 oy - 3 + ky is row oy + (ky + 1 - a) / 2 of the planes of row parity a = (ky + 1) % 2, and
// the even-kx taps lie in the odd-column plane from element ox0 on, the odd-kx taps in the
// even-column plane from ox0 + 1 on.
struct Row7 {
    t0: vec4<f32>,
    t1: vec4<f32>,
    t2: vec4<f32>,
    t3: vec4<f32>,
    t4: vec4<f32>,
    t5: vec4<f32>,
    t6: vec4<f32>,
}

fn taps(base: u32, row: u32) -> Row7 {
    let ci = row / 7u;
    let ky = row % 7u;
    let a = (ky + 1u) % 2u;
    let at = base + ci * 4u * params.plane4 + (ky + 1u - a) / 2u * params.row4;
    let odd_cols = at + (2u * a + 1u) * params.plane4;
    let even_cols = at + 2u * a * params.plane4;
    let e0 = xp4[odd_cols];
    let e1 = xp4[odd_cols + 1u];
    let o0 = xp4[even_cols];
    let o1 = xp4[even_cols + 1u];
    return Row7(e0, shifted(o0, o1, 1u), shifted(e0, e1, 1u), shifted(o0, o1, 2u), shifted(e0, e1, 2u),
                shifted(o0, o1, 3u), shifted(e0, e1, 3u));
}

// Where this invocation's segment of 4 output pixels is: image, output row, first column, the
// element offset of (image, channel 0, pixel 0) in out, and which of the 4 pixels exist.
struct Pixels {
    n: u32,
    oy: u32,
    ox0: u32,
    out_at: u32,
    live: vec4<bool>,
}

fn pixels(seg: u32) -> Pixels {
    var px: Pixels;
    let s = min(seg, params.cols - 1u);
    px.n = s / params.segs;
    let r = s % params.segs;
    px.oy = r / params.seg_row;
    px.ox0 = 4u * (r % params.seg_row);
    px.out_at = px.n * params.c_out * params.out_plane + px.oy * params.ow + px.ox0;
    for (var j = 0u; j < 4u; j++) {
        px.live[j] = seg < params.cols && px.ox0 + j < params.ow;
    }
    return px;
}

// Part j (0 .. 7) of the affine of channels r0 .. r0 + 15: j < 4 the scales of channels r0 + 4 j ..
// + 3, j >= 4 the shifts of channels r0 + 4 (j - 4) .. + 3; one aligned vec4 where the 4 channels
// are whole and C_out % 4 == 0, else 4 clamped elements (channels past C_out are never stored).
fn affine_part(r0: u32, j: u32) -> vec4<f32> {
    let m = params.c_out;
    let r = r0 + 4u * (j & 3u);
    let base = select(0u, m, j >= 4u);
    if ((m & 3u) == 0u && r + 3u < m) {
        return affine[(base + r) / 4u];
    }
    let c = min(vec4(r) + vec4(0u, 1u, 2u, 3u), vec4(m - 1u)) + vec4(base);
    return vec4(affine[c.x / 4u][c.x % 4u], affine[c.y / 4u][c.y % 4u], affine[c.z / 4u][c.z % 4u],
                affine[c.w / 4u][c.w % 4u]);
}

// Scales (column i: channels r0 + 4 i .. + 3) and shifts of channels r0 .. r0 + 15. They are the
// same for the whole subgroup (r0 is), so each lane loads one part (with 4 lanes two) and
// broadcasts hand them out: 1 load per invocation where reading per channel in the stores cost 32
// scalar loads, each a loop over the lanes on lavapipe (matmul_subgroup's row_affine).
struct ChannelAffine {
    scale: mat4x4<f32>,
    shift: mat4x4<f32>,
}

fn channel_affine(r0: u32, lane: u32) -> ChannelAffine {
    if ((EPILOGUE & 1u) == 0u) {
        return ChannelAffine(mat4x4<f32>(), mat4x4<f32>());
    }
    if (SUBGROUP_WIDTH >= 8u) {
        let v = affine_part(r0, lane & 7u);
        return ChannelAffine(
            mat4x4(subgroupBroadcast(v, 0u), subgroupBroadcast(v, 1u), subgroupBroadcast(v, 2u), subgroupBroadcast(v, 3u)),
            mat4x4(subgroupBroadcast(v, 4u), subgroupBroadcast(v, 5u), subgroupBroadcast(v, 6u), subgroupBroadcast(v, 7u)));
    }
    let v = affine_part(r0, lane & 3u);
    let u = affine_part(r0, (lane & 3u) + 4u);
    return ChannelAffine(
        mat4x4(subgroupBroadcast(v, 0u), subgroupBroadcast(v, 1u), subgroupBroadcast(v, 2u), subgroupBroadcast(v, 3u)),
        mat4x4(subgroupBroadcast(u, 0u), subgroupBroadcast(u, 1u), subgroupBroadcast(u, 2u), subgroupBroadcast(u, 3u)));
}

// Stores a 4 x 4 block (column j = pixel j, row i = channel r0 + i) through the epilogue (`scale`
// and `shift`: its channels' affine), where channels and pixels exist. Where OUT_VEC4 a segment's
// pixels are all live or none, stored as one aligned vec4 per channel; the per-pixel path is
// compiled out there (lavapipe would run it under a mask for every store).
fn store(r0: u32, px: Pixels, acc: mat4x4<f32>, scale: vec4<f32>, shift: vec4<f32>) {
    let residual_on = (EPILOGUE & 2u) != 0u;
    for (var i = 0u; i < 4u; i++) {
        let co = r0 + i;
        if (co >= params.c_out) {
            break;
        }
        let acc_row = vec4(acc[0][i], acc[1][i], acc[2][i], acc[3][i]);
        let at = px.out_at + co * params.out_plane;
        var res = vec4(0.0);
        if (OUT_VEC4) {
            if (all(px.live)) {
                if (residual_on) {
                    res = residual[at / 4u];
                }
                out[at / 4u] = finish(acc_row, scale[i], shift[i], res);
            }
        } else {
            for (var j = 0u; j < 4u; j++) {
                if (residual_on && px.live[j]) {
                    res[j] = residual[(at + j) / 4u][(at + j) % 4u];
                }
            }
            let v = finish(acc_row, scale[i], shift[i], res);
            for (var j = 0u; j < 4u; j++) {
                if (px.live[j]) {
                    out[(at + j) / 4u][(at + j) % 4u] = v[j];
                }
            }
        }
    }
}

// 16 channels' outputs from r0 through the epilogue (in uniform control flow: the affine's
// broadcasts need every lane).
fn store16(r0: u32, px: Pixels, lane: u32, acc: Rows16) {
    let ca = channel_affine(r0, lane);
    store(r0, px, acc.a0, ca.scale[0], ca.shift[0]);
    store(r0 + 4u, px, acc.a1, ca.scale[1], ca.shift[1]);
    store(r0 + 8u, px, acc.a2, ca.scale[2], ca.shift[2]);
    store(r0 + 12u, px, acc.a3, ca.scale[3], ca.shift[3]);
}

// One load of each output row (channel) this lane will store, OR-ed into a value the caller ANDs
// with params.zero (0) so the compiler keeps the loads: on CPU devices (TOUCH_OUT) the lines' misses
// then overlap the multiply-adds instead of stalling the stores (matmul_subgroup's touch_rows).
fn touch_rows(r0: u32, px: Pixels) -> u32 {
    var touch = 0u;
    for (var r = 0u; r < SUBGROUP_ROWS; r++) {
        let co = min(r0 + r, params.c_out - 1u);
        touch |= bitcast<u32>(out[(px.out_at + co * params.out_plane) / 4u].x);
    }
    return touch;
}

// The invocation's R x 4 outputs.
fn store_all(r0: u32, px: Pixels, acc: Acc, lane: u32) {
    store16(r0, px, lane, acc.c0);
    if (SUBGROUP_ROWS >= 32u) {
        store16(r0 + 16u, px, lane, acc.c1);
    }
    if (SUBGROUP_ROWS >= 64u) {
        store16(r0 + 32u, px, lane, acc.c2);
        store16(r0 + 48u, px, lane, acc.c3);
    }
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(subgroup_id) sg: u32, @builtin(subgroup_invocation_id) lane: u32) {
    let tile = wid.x + wid.y * nwg.x;
    if (tile >= params.tiles_m * params.tiles_n) {
        return; // the folded grid's tail: whole workgroups
    }
    // Tile and subgroup layout for SUBGROUP_WIDTH lanes: mirrors matmul_subgroup.
    let width = SUBGROUP_WIDTH;
    let sc = select(max(64u, 4u * width) / (4u * width), COLUMN_GROUPS, COLUMN_GROUPS != 0u);
    let tc = 4u * width * sc;
    let tr = SUBGROUP_ROWS * (WORKGROUP_SIZE / width) / sc;
    let r0 = (tile / params.tiles_n) * tr + (sg / sc) * SUBGROUP_ROWS;
    let seg = (tile % params.tiles_n) * (tc / 4u) + (sg % sc) * width + lane;
    var px = pixels(seg);
    if (TOUCH_OUT) {
        px.out_at += touch_rows(r0, px) & params.zero; // adds 0, keeps the loads
    }

    // Vec4 index of (image, channel 0, plane 0, row oy, column ox0).
    let base = px.n * params.c_in * 4u * params.plane4 + px.oy * params.row4 + px.ox0 / 4u;
    let rows = params.c_in * 7u;
    var acc: Acc;
    // One tap row (7 k and the zero tap) = 2 steps; no branch inside (lavapipe masks every
    // accumulator update under a branch it cannot prove uniform).
    let zero = vec4(0.0);
    for (var row = 0u; row < rows; row++) {
        let t = taps(base, row);
        acc = step(acc, r0, 2u * row, lane, t.t0, t.t1, t.t2, t.t3);
        acc = step(acc, r0, 2u * row + 1u, lane, t.t4, t.t5, t.t6, zero);
    }

    store_all(r0, px, acc, lane);
}
