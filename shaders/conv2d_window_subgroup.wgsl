enable subgroups; // WGSL and tint require it; wgpu's naga rejects it, so Kernel::naga_source blanks it

// conv2d_window_subgroup: a 3 x 3 convolution with stride 1 or 2 and padding = dilation (1 or 2), or
// a 1 x 1 one with stride 1 or 2, one group, C_in a multiple of 4, as an implicit GEMM with no
// workgroup memory, in matmul_subgroup's
// structure, for devices whose subgroups have one fixed power-of-two width SUBGROUP_WIDTH from 4 to 64:
//   out[n, co, pixels] = W [C_out x K] x X [K x pixels],  K = C_in * 9, k = (ci, ky, kx) in order,
// (K = C_in for 1 x 1) the same sums in the same order as conv2d, then the fused epilogue.
//
// Why: on lavapipe every storage-buffer and workgroup-memory access is a loop over the SIMD lanes,
// and barriers switch coroutines; conv2d_gemm_subgroup staged both operands in workgroup memory and
// ran at about 45% of matmul_subgroup's rate (BENCHMARKS.md). Here nothing is staged: the weights are
// read as matmul_subgroup reads A (one vec4 per lane and 4 k, handed out by subgroupBroadcast), and X
// straight from x. An invocation's 4 pixels (a segment) read, at kernel row ky, elements of one row
// of x STRIDE apart: the 3 taps kx of one (ci, ky) lie in 3 aligned vec4s (4 with stride 2 and
// dilation 2), so 3 loads serve 3 k, as matmul_subgroup's B loads serve one k each. Per 36 k (4
// channels) a lane issues 18 weight loads and 36 x loads: 1.5 per k, matmul_subgroup's count.
// Stride 1 (the output as large as x): a segment is 4 consecutive pixels of the plane, whose flat
// offsets in x stay consecutive across rows (p + (ky - 1) DIL W + (kx - 1) DIL), the padding masked
// per pixel. Stride 2: a segment is 4 consecutive pixels of one output row. A 1 x 1 conv reads one
// tap per channel: 1 aligned vec4 where the segments are aligned in x (stride 1, planes of whole
// vec4s), else 2, or 2-3 with stride 2 (every other element: a 1 x 1 / 2 downsample reads twice
// what it uses).
//
// Layout (64 invocations; shown for W = 8 lanes): a workgroup covers TR = 16 (64 / W) / SC output
// channels by TC = max(64, 4 W) pixel slots, SC = TC / 4 W (64 x 64 for W <= 16), as matmul_subgroup.
// Pixel slots come in segments of 4 that never span two images (nor two rows with stride 2): the
// last one of a plane (row) is partial unless its size is a multiple of 4. Subgroup s takes
// channels 16 (s / SC) .. + 15 and segments W (s % SC) + lane: each invocation holds 16 x 4 outputs
// in four mat4x4 accumulators.
// Subgroup operations need every invocation: none returns before the stores unless the whole
// workgroup does; channels and pixels past the edge are clamped or masked and never stored.
// The workgroup grid is 1-D over row tiles x column tiles, folded into y past 65535.
// Bindings, contiguous row-major f32:
//   1 x4       [N, C_in, H, W] as vec4s (padded to whole vec4s)
//   2 weight4  [C_out, C_in, KSIZE, KSIZE] as vec4s: K = KSIZE^2 C_in is a multiple of 4 (C_in is), so
//              every row is whole vec4s
//   3 affine   [2, C_out]: row 0 scale, row 1 shift, as vec4s (bound to x when unused)
//   4 residual [N, C_out, OH, OW] (bound to x when unused)
//   5 out      [N, C_out, OH, OW]
// mad repeats conv2d_gemm_subgroup's (shifted and every_other its element choice, as selects),
// affine_part and channel_affine matmul_subgroup's row_affine: WGSL has no includes.

override SUBGROUP_WIDTH: u32 = 8u;
// Kernel size (3, or 1 for a 1 x 1 conv), stride (1 or 2), dilation and padding (3 x 3: both equal,
// 1 or 2; 1 x 1: dilation 1, padding 0): see the header.
override KSIZE: u32 = 3u;
override STRIDE: u32 = 1u;
override DIL: u32 = 1u;
override PAD: u32 = 1u;
// PHASED: the element offset of every tap row's first element inside its aligned window is the
// same for all lanes, PHASE0 .. PHASE2 for ky = 0 .. 2 (the host knows it from the shapes: x's
// planes and rows are whole vec4s where it matters), so the tap extraction folds to swizzles; else
// it is read per lane. OUT_VEC4: a segment's 4 outputs of a channel are one aligned vec4 of out.
override PHASED: bool = false;
override PHASE0: u32 = 0u;
override PHASE1: u32 = 0u;
override PHASE2: u32 = 0u;
override OUT_VEC4: bool = false;
// The epilogue (Params' `epilogue` bits, which this kernel does not read), fixed at pipeline
// creation: lavapipe runs both sides of a branch it cannot prove uniform, so unused epilogue code
// costs every store (as in matmul_subgroup).
override EPILOGUE: u32 = 0u;

struct Params {
    n: u32,
    c_in: u32,
    h: u32,
    w: u32,
    c_out: u32,
    oh: u32,
    ow: u32,
    plane: u32,    // h * w
    out_plane: u32,// oh * ow
    seg_row: u32,  // STRIDE 1: 0 (segments run through the plane); 2: ceil(ow / 4) segments per row
    segs: u32,     // segments per image
    cols: u32,     // n * segs
    tiles_m: u32,  // ceil(c_out / TR)
    tiles_n: u32,  // ceil(cols * 4 / TC)
    epilogue: u32, // bit 0 affine, bit 1 residual, bits 2.. activation (0 none, 1 relu, 2 sigmoid);
                   // unread here: the override EPILOGUE holds it
    _pad: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x4: array<vec4<f32>>;
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

// The 4 consecutive elements from element offset s (0..3; larger is taken as 3) of the aligned pair
// lo, hi. Selects, not a switch: s is per lane where the offsets are not constants, and Chromium's
// SwiftShader lost its device running the switch form here (4 lanes); constant s folds either way.
fn shifted(lo: vec4<f32>, hi: vec4<f32>, s: u32) -> vec4<f32> {
    let one = select(lo, vec4(lo.yzw, hi.x), s == 1u);
    let two = select(one, vec4(lo.zw, hi.xy), s == 2u);
    return select(two, vec4(lo.w, hi.xyz), s >= 3u);
}

// Elements s, s + 2, s + 4 and s + 6 (s = 0..3; larger is taken as 3) of the aligned triple lo,
// mid, hi (selects, as shifted).
fn every_other(lo: vec4<f32>, mid: vec4<f32>, hi: vec4<f32>, s: u32) -> vec4<f32> {
    let one = select(vec4(lo.xz, mid.xz), vec4(lo.yw, mid.yw), s == 1u);
    let two = select(one, vec4(lo.z, mid.xz, hi.x), s == 2u);
    return select(two, vec4(lo.w, mid.yw, hi.y), s >= 3u);
}

// Where this invocation's segment of 4 output pixels is: the element offset of (image, channel 0,
// pixel 0) in out, pixel 0's row and column, each pixel's row and column (as i32: taps subtract
// the padding) and whether it exists. STRIDE 1: the segment is 4 consecutive pixels of the plane
// (rows may change inside it: x's offsets stay consecutive, as the output is as wide as x);
// STRIDE 2: 4 consecutive pixels of one output row (the last segment of a row may be partial).
struct Pixels {
    n: u32,
    out_at: u32,
    oy: vec4<i32>,
    ox: vec4<i32>,
    live: vec4<bool>,
}

fn pixels(seg: u32) -> Pixels {
    var px: Pixels;
    let s = min(seg, params.cols - 1u);
    px.n = s / params.segs;
    let r = s % params.segs;
    var p0 = 4u * r; // pixel 0's index in the output plane
    var ox_end = params.out_plane; // pixels of the segment lie before this index
    if (STRIDE != 1u) {
        let oy = r / params.seg_row;
        let ox0 = 4u * (r % params.seg_row);
        p0 = oy * params.ow + ox0;
        ox_end = oy * params.ow + params.ow;
    }
    px.out_at = px.n * params.c_out * params.out_plane + p0;
    for (var j = 0u; j < 4u; j++) {
        let p = min(p0 + j, ox_end - 1u);
        px.oy[j] = i32(p / params.ow);
        px.ox[j] = i32(p % params.ow);
        px.live[j] = seg < params.cols && p0 + j < ox_end;
    }
    return px;
}

// The tap rows of one (channel, ky): x at the 4 pixels for kx = 0, 1, 2, each 0 where the tap lies in
// the padding (`ok`), from 3 aligned vec4 loads (4 with stride 2 and dilation 2). `first` is the flat
// element offset of tap kx = 0 for pixel 0 (pixel j's is STRIDE j further; may be "negative" at the
// start of the buffer: those vec4s hold only padding and their index is clamped to 0; at the end of
// the buffer a window may likewise reach past x's last vec4, for taps in the bottom padding only:
// those reads are left to WGSL's bounds-checked access, which returns a value from inside the buffer
// or 0, and `select` discards them), `phase` its offset inside the window when PHASED.
struct Taps {
    t0: vec4<f32>,
    t1: vec4<f32>,
    t2: vec4<f32>,
}

fn tap(v0: vec4<f32>, v1: vec4<f32>, v2: vec4<f32>, v3: vec4<f32>, o: u32) -> vec4<f32> {
    if (STRIDE == 1u) {
        return select(shifted(v0, v1, o), shifted(v1, v2, o - 4u), o >= 4u);
    }
    return select(every_other(v0, v1, v2, o), every_other(v1, v2, v3, o - 4u), o >= 4u);
}

fn taps(first: i32, phase: u32, ok0: vec4<bool>, ok1: vec4<bool>, ok2: vec4<bool>) -> Taps {
    let q = first >> 2u;
    let v0 = x4[max(q, 0)];
    let v1 = x4[max(q + 1, 0)];
    let v2 = x4[max(q + 2, 0)];
    var v3 = v2;
    if (STRIDE == 2u && DIL == 2u) {
        v3 = x4[max(q + 3, 0)];
    }
    var s = u32(first & 3);
    if (PHASED) {
        s = phase;
    }
    let a = tap(v0, v1, v2, v3, s);
    let b = tap(v0, v1, v2, v3, s + DIL);
    let c = tap(v0, v1, v2, v3, s + 2u * DIL);
    return Taps(select(vec4(0.0), a, ok0), select(vec4(0.0), b, ok1), select(vec4(0.0), c, ok2));
}

// A 1 x 1 conv's tap for one channel: x at the 4 pixels from `first` on (STRIDE apart), 0 where not
// `ok`: 1 aligned vec4 load when the offset is a constant 0 (PHASED) and stride 1, else 2 or 3.
fn one_tap(first: i32, phase: u32, ok: vec4<bool>) -> vec4<f32> {
    let q = first >> 2u;
    var s = u32(first & 3);
    if (PHASED) {
        s = phase;
    }
    let v0 = x4[max(q, 0)];
    var v: vec4<f32>;
    if (STRIDE == 1u && PHASED && phase == 0u) {
        v = v0;
    } else if (STRIDE == 1u) {
        v = shifted(v0, x4[max(q + 1, 0)], s);
    } else if (PHASED && phase == 0u) {
        let v1 = x4[max(q + 1, 0)];
        v = vec4(v0.xz, v1.xz);
    } else {
        v = every_other(v0, x4[max(q + 1, 0)], x4[max(q + 2, 0)], s);
    }
    return select(vec4(0.0), v, ok);
}

// Which of the 4 pixels' taps at (ky, kx) lie inside x: one mask per tap, computed once (a 1 x 1
// conv uses the first only).
struct Masks {
    m: array<vec4<bool>, 9>,
}

fn masks(px: Pixels) -> Masks {
    var ms: Masks;
    let d = i32(DIL);
    let pad = i32(PAD);
    let st = i32(STRIDE);
    let h = i32(params.h);
    let w = i32(params.w);
    for (var ky = 0; ky < 3; ky++) {
        let iy = st * px.oy + vec4(ky * d - pad);
        let row_ok = px.live & (iy >= vec4(0)) & (iy < vec4(h));
        for (var kx = 0; kx < 3; kx++) {
            let ix = st * px.ox + vec4(kx * d - pad);
            ms.m[ky * 3 + kx] = row_ok & (ix >= vec4(0)) & (ix < vec4(w));
        }
    }
    return ms;
}

// a b + c as fused multiply-adds chained into the accumulator (column j of b: 4 k of pixel j;
// column t of a: 4 rows at k t).
fn mad(a: mat4x4<f32>, b: mat4x4<f32>, c: mat4x4<f32>) -> mat4x4<f32> {
    return mat4x4(mad_col(a, b[0], c[0]), mad_col(a, b[1], c[1]), mad_col(a, b[2], c[2]), mad_col(a, b[3], c[3]));
}

fn mad_col(a: mat4x4<f32>, b: vec4<f32>, c: vec4<f32>) -> vec4<f32> {
    return fma(a[3], vec4(b.w), fma(a[2], vec4(b.z), fma(a[1], vec4(b.y), fma(a[0], vec4(b.x), c))));
}

// Rows r0 .. r0 + 3 (lo) and r0 + 4 .. r0 + 7 (hi) of W at k = 4 kq .. + 3, each as a mat4x4 whose
// column t holds the 4 rows at k 4 kq + t. With 8 or more lanes, lane l loads row r0 + l % 8 and
// broadcasts from lanes 0 .. 7 hand the rows out; with 4 lanes, lane l loads rows r0 + l and
// r0 + 4 + l. Rows past C_out repeat the last one (never stored).
struct ABlocks {
    lo: mat4x4<f32>,
    hi: mat4x4<f32>,
}

fn a_row(r: u32, kq: u32) -> vec4<f32> {
    return weight4[min(r, params.c_out - 1u) * (KSIZE * KSIZE * params.c_in / 4u) + kq];
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

// Accumulates the 4 k of step kq: b0 .. b3 are X at those k (4 pixels each).
fn step(acc: Acc, r0: u32, kq: u32, lane: u32, b0: vec4<f32>, b1: vec4<f32>, b2: vec4<f32>, b3: vec4<f32>) -> Acc {
    let b = transpose(mat4x4(b0, b1, b2, b3));
    let top = a_blocks(r0, kq, lane);
    let bottom = a_blocks(r0 + 8u, kq, lane);
    return Acc(mad(top.lo, b, acc.c0), mad(top.hi, b, acc.c1), mad(bottom.lo, b, acc.c2), mad(bottom.hi, b, acc.c3));
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

// The invocation's 16 x 4 outputs through the epilogue (in uniform control flow: the affine's
// broadcasts need every lane).
fn store_all(r0: u32, px: Pixels, acc: Acc, lane: u32) {
    let ca = channel_affine(r0, lane);
    store(r0, px, acc.c0, ca.scale[0], ca.shift[0]);
    store(r0 + 4u, px, acc.c1, ca.scale[1], ca.shift[1]);
    store(r0 + 8u, px, acc.c2, ca.scale[2], ca.shift[2]);
    store(r0 + 12u, px, acc.c3, ca.scale[3], ca.shift[3]);
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
    let ms = masks(px).m;

    // Flat x offsets of tap (ky, kx = 0) for channel 0 and pixel 0:
    // (n C_in) plane + (STRIDE oy - PAD + ky DIL) W + STRIDE ox - PAD.
    let row = i32(DIL * params.w);
    let f0 = i32(px.n * params.c_in * params.plane) + (i32(STRIDE) * px.oy.x - i32(PAD)) * i32(params.w)
        + i32(STRIDE) * px.ox.x - i32(PAD);
    let f1 = f0 + row;
    let f2 = f1 + row;
    let plane = i32(params.plane);
    let p0 = PHASE0;
    let p1 = PHASE1;
    let p2 = PHASE2;

    var acc = Acc(mat4x4<f32>(), mat4x4<f32>(), mat4x4<f32>(), mat4x4<f32>());
    if (KSIZE == 1u) {
        // 4 channels = 4 k per iteration.
        for (var ci = 0u; ci < params.c_in; ci += 4u) {
            let at = f0 + i32(ci) * plane;
            acc = step(acc, r0, ci / 4u, lane, one_tap(at, p0, ms[0]), one_tap(at + plane, p0, ms[0]),
                       one_tap(at + 2 * plane, p0, ms[0]), one_tap(at + 3 * plane, p0, ms[0]));
        }
        store_all(r0, px, acc, lane);
        return;
    }
    // 4 channels = 36 k = 9 steps of 4 k per iteration; k = 9 c + 3 ky + kx inside it.
    for (var ci = 0u; ci < params.c_in; ci += 4u) {
        let at = i32(ci) * plane;
        let a0 = taps(f0 + at, p0, ms[0], ms[1], ms[2]);
        let a1 = taps(f1 + at, p1, ms[3], ms[4], ms[5]);
        let a2 = taps(f2 + at, p2, ms[6], ms[7], ms[8]);
        let b0 = taps(f0 + at + plane, p0, ms[0], ms[1], ms[2]);
        let b1 = taps(f1 + at + plane, p1, ms[3], ms[4], ms[5]);
        let b2 = taps(f2 + at + plane, p2, ms[6], ms[7], ms[8]);
        let kq = 9u * ci / 4u;
        acc = step(acc, r0, kq, lane, a0.t0, a0.t1, a0.t2, a1.t0);
        acc = step(acc, r0, kq + 1u, lane, a1.t1, a1.t2, a2.t0, a2.t1);
        acc = step(acc, r0, kq + 2u, lane, a2.t2, b0.t0, b0.t1, b0.t2);
        acc = step(acc, r0, kq + 3u, lane, b1.t0, b1.t1, b1.t2, b2.t0);
        let c0 = taps(f0 + at + 2 * plane, p0, ms[0], ms[1], ms[2]);
        let c1 = taps(f1 + at + 2 * plane, p1, ms[3], ms[4], ms[5]);
        let c2 = taps(f2 + at + 2 * plane, p2, ms[6], ms[7], ms[8]);
        acc = step(acc, r0, kq + 4u, lane, b2.t1, b2.t2, c0.t0, c0.t1);
        acc = step(acc, r0, kq + 5u, lane, c0.t2, c1.t0, c1.t1, c1.t2);
        let d0 = taps(f0 + at + 3 * plane, p0, ms[0], ms[1], ms[2]);
        let d1 = taps(f1 + at + 3 * plane, p1, ms[3], ms[4], ms[5]);
        let d2 = taps(f2 + at + 3 * plane, p2, ms[6], ms[7], ms[8]);
        acc = step(acc, r0, kq + 6u, lane, c2.t0, c2.t1, c2.t2, d0.t0);
        acc = step(acc, r0, kq + 7u, lane, d0.t1, d0.t2, d1.t0, d1.t1);
        acc = step(acc, r0, kq + 8u, lane, d1.t2, d2.t0, d2.t1, d2.t2);
    }

    store_all(r0, px, acc, lane);
}
