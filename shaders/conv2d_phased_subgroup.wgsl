enable subgroups; // WGSL and tint require it; wgpu's naga rejects it, so Kernel::naga_source blanks it

// conv2d_phased_subgroup: a K x K convolution (K = 3, 5 or 7) with stride 2, padding (K - 1) / 2,
// dilation 1, one group and any number of input channels (the 7 x 7 / 2 stem has 3), as an implicit
// GEMM without workgroup memory in conv2d_window_subgroup's structure, over x laid out by
// conv2d_phases as 4 phase planes per channel (even and odd rows x even and odd columns, bordered
// with zeros), for devices whose subgroups have one fixed power-of-two width SUBGROUP_WIDTH, 4 to 64:
//   out[n, co, pixels] = W' [C_out x K'] x X [K' x pixels],  k' = (ci, ky, kx) with kx padded to
// TAPS_ROW = 4 ceil(K / 4) (weights laid out so by conv2d_phases, the padding taps 0), the same sums
// in the same order as conv2d, then the fused epilogue.
//
// Why: conv2d_gemm_subgroup ran the stem at 27-28% of the GEMM on lavapipe (BENCHMARKS.md), and the
// windowed kernel needs C_in a multiple of 4 and 3 x 3 taps. In the phase planes an invocation's 4
// output pixels (a segment: 4 consecutive pixels of one output row) read, at tap (ky, kx), 4
// consecutive elements of one row of one plane; the taps of one (channel, ky) with even kx lie in 2
// aligned vec4s of one plane and those with odd kx in 2 of the other, at offsets known when the
// pipeline is created, so 4 loads serve K taps (7 of the stem's, with constant swizzles), and the
// border replaces every padding mask. Per 4 k a lane issues 2 weight loads (broadcast across lanes)
// and 2 x loads with TAPS_ROW = 8; the GEMM issues 6.
//
// Phase planes (host: conv2d_phased.rs): x's row 2 oy - PAD + ky has parity a = (ky + 2 BY - PAD)
// mod 2 and sits at row oy + (ky + 2 BY - PAD - a) / 2 of the planes of parity a, BY = ceil(PAD / 2)
// border rows above x's first; columns likewise (BX = BY columns), so that tap kx = 0 of a segment
// starting at output column ox0 (a multiple of 4) is element ox0 of its plane row: the even-kx taps
// are elements ox0 + kx / 2, the odd-kx ones ox0 + O1 + (kx - 1) / 2 of the other plane, O1 =
// (1 + 2 BX - PAD - B1) / 2 with B1 the odd taps' column parity. Every plane is ph x pw, pw a
// multiple of 4 reaching 2 vec4s past the last segment's start, so no read leaves its row.
//
// Layout (64 invocations; for W = 8 lanes): a workgroup covers TR = 16 (64 / W) / SC output channels
// by TC = max(64, 4 W) pixel slots, as conv2d_window_subgroup with stride 2 (segments never span two
// output rows: the last of a row is partial unless OW is a multiple of 4). Subgroup operations need
// every invocation: none returns before the stores unless the whole workgroup does; channels and
// pixels past the edge are clamped or masked and never stored.
// Bindings, contiguous row-major f32:
//   1 xp4      [N, C_in, 4, ph, pw] as vec4s
//   2 weight4  [C_out, C_in, K, TAPS_ROW] as vec4s (padding taps 0)
//   3 affine   [2, C_out]: row 0 scale, row 1 shift (bound to x when unused)
//   4 residual [N, C_out, OH, OW] (bound to x when unused)
//   5 out      [N, C_out, OH, OW]
// finish, shifted, mad, a_blocks, step and store repeat conv2d_window_subgroup's: WGSL has no
// includes.

override SUBGROUP_WIDTH: u32 = 8u;
override KSIZE: u32 = 7u;
override PAD: u32 = 3u;
// OUT_VEC4: a segment's 4 outputs of a channel are one aligned vec4 of out (OW a multiple of 4).
override OUT_VEC4: bool = false;

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
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> xp4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> weight4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> affine: array<f32>;
@group(0) @binding(4) var<storage, read> residual: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> out: array<vec4<f32>>;

// The fused epilogue for 4 outputs of one channel: acc scaled and shifted (1 and 0 when bit 0 of
// `epilogue` is clear), plus `res` (0 when bit 1 is clear), then the activation.
fn finish(acc: vec4<f32>, scale: f32, shift: f32, res: vec4<f32>) -> vec4<f32> {
    var v = fma(acc, vec4(scale), vec4(shift)) + res;
    let act = params.epilogue >> 2u;
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
    return weight4[min(r, params.c_out - 1u) * (params.c_in * KSIZE * taps_row() / 4u) + kq];
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

// The 16 x 4 accumulators of one invocation: rows r0 + 0, 4, 8, 12 (.. + 3) by its 4 pixels.
struct Acc {
    c0: mat4x4<f32>,
    c1: mat4x4<f32>,
    c2: mat4x4<f32>,
    c3: mat4x4<f32>,
}

// Accumulates the 4 k' of step kq: b0 .. b3 are X at those k' (4 pixels each).
fn step(acc: Acc, r0: u32, kq: u32, lane: u32, b0: vec4<f32>, b1: vec4<f32>, b2: vec4<f32>, b3: vec4<f32>) -> Acc {
    let b = transpose(mat4x4(b0, b1, b2, b3));
    let top = a_blocks(r0, kq, lane);
    let bottom = a_blocks(r0 + 8u, kq, lane);
    return Acc(mad(top.lo, b, acc.c0), mad(top.hi, b, acc.c1), mad(bottom.lo, b, acc.c2), mad(bottom.hi, b, acc.c3));
}

// Taps per kernel row in W' (K padded to whole vec4s).
fn taps_row() -> u32 {
    return 4u * ((KSIZE + 3u) / 4u);
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

// Stores a 4 x 4 block (column j = pixel j, row i = channel r0 + i) through the epilogue, where
// channels and pixels exist; each channel's scale and shift are loaded once.
fn store(r0: u32, px: Pixels, acc: mat4x4<f32>) {
    let residual_on = (params.epilogue & 2u) != 0u;
    let whole = OUT_VEC4 && all(px.live);
    for (var i = 0u; i < 4u; i++) {
        let co = r0 + i;
        if (co >= params.c_out) {
            break;
        }
        var scale = 1.0;
        var shift = 0.0;
        if ((params.epilogue & 1u) != 0u) {
            scale = affine[co];
            shift = affine[params.c_out + co];
        }
        let acc_row = vec4(acc[0][i], acc[1][i], acc[2][i], acc[3][i]);
        let at = px.out_at + co * params.out_plane;
        var res = vec4(0.0);
        if (whole) {
            if (residual_on) {
                res = residual[at / 4u];
            }
            out[at / 4u] = finish(acc_row, scale, shift, res);
        } else {
            for (var j = 0u; j < 4u; j++) {
                if (residual_on && px.live[j]) {
                    res[j] = residual[(at + j) / 4u][(at + j) % 4u];
                }
            }
            let v = finish(acc_row, scale, shift, res);
            for (var j = 0u; j < 4u; j++) {
                if (px.live[j]) {
                    out[(at + j) / 4u][(at + j) % 4u] = v[j];
                }
            }
        }
    }
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(subgroup_id) sg: u32, @builtin(subgroup_invocation_id) lane: u32) {
    let tile = wid.x + wid.y * nwg.x;
    if (tile >= params.tiles_m * params.tiles_n) {
        return; // the folded grid's tail: whole workgroups
    }
    // Tile and subgroup layout for SUBGROUP_WIDTH lanes: mirrors matmul_subgroup.
    let width = SUBGROUP_WIDTH;
    let tc = max(64u, 4u * width);
    let sc = tc / (4u * width);
    let tr = 16u * (64u / width) / sc;
    let r0 = (tile / params.tiles_n) * tr + (sg / sc) * 16u;
    let seg = (tile % params.tiles_n) * (tc / 4u) + (sg % sc) * width + lane;
    let px = pixels(seg);

    // The phase-plane geometry of the header, constant per pipeline.
    let by = (PAD + 1u) / 2u;
    let b0 = (2u * by - PAD) % 2u; // column parity of the even-kx taps (kx = 0)
    let b1 = 1u - b0;
    let o1 = (1u + 2u * by - PAD - b1) / 2u;
    let steps_row = taps_row() / 4u;
    // Vec4 index of (image, channel 0, plane 0, row oy, column ox0).
    let base = px.n * params.c_in * 4u * params.plane4 + px.oy * params.row4 + px.ox0 / 4u;

    var acc = Acc(mat4x4<f32>(), mat4x4<f32>(), mat4x4<f32>(), mat4x4<f32>());
    for (var ci = 0u; ci < params.c_in; ci++) {
        let at = base + ci * 4u * params.plane4;
        for (var ky = 0u; ky < KSIZE; ky++) {
            let a = (ky + 2u * by - PAD) % 2u;
            let row = at + (ky + 2u * by - PAD - a) / 2u * params.row4;
            let even = row + (2u * a + b0) * params.plane4;
            let odd = row + (2u * a + b1) * params.plane4;
            let e0 = xp4[even];
            let e1 = xp4[even + 1u];
            let o0 = xp4[odd];
            let o1v = xp4[odd + 1u];
            // Tap kx: even kx at element kx / 2 of (e0, e1), odd kx at o1 + (kx - 1) / 2 of (o0, o1v).
            let t0 = e0;
            let t1 = shifted(o0, o1v, o1);
            let t2 = shifted(e0, e1, 1u);
            var t3 = vec4(0.0);
            if (KSIZE > 3u) {
                t3 = shifted(o0, o1v, o1 + 1u);
            }
            let kq = (ci * KSIZE + ky) * steps_row;
            acc = step(acc, r0, kq, lane, t0, t1, t2, t3);
            if (KSIZE > 4u) {
                let t4 = shifted(e0, e1, 2u);
                var t5 = vec4(0.0);
                var t6 = vec4(0.0);
                if (KSIZE > 5u) {
                    t5 = shifted(o0, o1v, o1 + 2u);
                    t6 = shifted(e0, e1, 3u);
                }
                acc = step(acc, r0, kq + 1u, lane, t4, t5, t6, vec4(0.0));
            }
        }
    }

    store(r0, px, acc.c0);
    store(r0 + 4u, px, acc.c1);
    store(r0 + 8u, px, acc.c2);
    store(r0 + 12u, px, acc.c3);
}
