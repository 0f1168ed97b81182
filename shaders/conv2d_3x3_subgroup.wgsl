enable subgroups; // WGSL and tint require it; wgpu's naga rejects it, so Kernel::naga_source blanks it

// conv2d_3x3_subgroup: conv2d (same Params, bindings, grid, 4 x 8 register block per invocation and
// epilogue) for 3 x 3 kernels on devices whose subgroups have exactly 8 lanes (the host checks).
// Why: the weights depend only on the workgroup and the input channel, so every lane loads the same
// ones, and on lavapipe each storage-buffer load is a loop over the SIMD lanes (conv2d spends 36 of
// its 66 loads per input channel on weights). Here lane l loads tap l (ky = l / 3, kx = l % 3) of
// the block's 4 output channels as one vec4, all lanes load tap 8, and subgroupBroadcast (a register
// extract on lavapipe) hands the taps out: 8 weight loads per input channel instead of 36.
// Small planes (14x14: 28 blocks of 8 positions) would leave most of a 64-lane workgroup idle, so a
// workgroup packs 8 / S channel blocks, S subgroups each (S = subgroups_per_plane, from the host).
// Subgroup operations need every lane of the subgroup active: no invocation returns early unless
// its whole workgroup does; blocks past the plane's end compute on the last block and never store.
// Params, load_x, finish, tap and store repeat conv2d's: WGSL has no includes.
// Bindings, contiguous row-major f32:
//   1 x        [N, C_in, H, W]
//   2 weight   [C_out, C_in / groups, 3, 3]
//   3 affine   [2, C_out]: row 0 scale, row 1 shift (bound to x when unused)
//   4 residual [N, C_out, OH, OW] (bound to x when unused)
//   5 out      [N, C_out, OH, OW]

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
    co_blocks_per_group: u32, // ceil(cout_per_group / 4)
    co_blocks: u32,           // groups * co_blocks_per_group
    x_blocks: u32,            // ceil(ow / 8)
    plane_blocks: u32,        // oh * x_blocks
    plane_workgroups: u32,    // ceil(plane_blocks / 64)
    epilogue: u32,            // bit 0 affine, bit 1 residual, bits 2.. activation (0 none, 1 relu, 2 sigmoid)
    subgroups_per_plane: u32, // S: groups of 8 lanes one plane takes in a workgroup (<= 8)
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> weight: array<f32>;
@group(0) @binding(3) var<storage, read> affine: array<f32>;
@group(0) @binding(4) var<storage, read> residual: array<f32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;

// One input element of the current row, 0 in the padding. `ix` counts from the
// left edge of the padded row; ix - pad_x wraps to a huge u32 left of the input,
// so one comparison rejects both sides (the host keeps padded sizes within u32).
// The load itself is clamped so that it stays branch-free and in bounds.
fn load_x(row: u32, row_ok: bool, ix: u32) -> f32 {
    let i = ix - params.pad_x;
    let v = x[row + min(i, params.w - 1u)];
    return select(0.0, v, row_ok && i < params.w);
}

// The fused epilogue of channel co for the output stored at out_index.
fn finish(acc: f32, co: u32, out_index: u32) -> f32 {
    var v = acc;
    if ((params.epilogue & 1u) != 0u) {
        v = affine[co] * v + affine[params.c_out + co];
    }
    if ((params.epilogue & 2u) != 0u) {
        v += residual[out_index];
    }
    let act = params.epilogue >> 2u;
    if (act == 1u) {
        v = max(v, 0.0);
    } else if (act == 2u) {
        // exp overflows f32 past 88: clamping keeps the sigmoid finite and exact to f32.
        v = 1.0 / (1.0 + exp(-clamp(v, -88.0, 88.0)));
    }
    return v;
}

// acc[k] += w[k] * v for the 8 channels (w holds channels 0 .. 3, w2 channels 4 .. 7): lo holds
// positions 0 .. 3, hi 4 .. 7.
fn tap(lo: ptr<function, array<vec4<f32>, 8>>, hi: ptr<function, array<vec4<f32>, 8>>, w: vec4<f32>,
       w2: vec4<f32>, v: vec4<f32>, u: vec4<f32>) {
    (*lo)[0] += w.x * v;
    (*lo)[1] += w.y * v;
    (*lo)[2] += w.z * v;
    (*lo)[3] += w.w * v;
    (*lo)[4] += w2.x * v;
    (*lo)[5] += w2.y * v;
    (*lo)[6] += w2.z * v;
    (*lo)[7] += w2.w * v;
    (*hi)[0] += w.x * u;
    (*hi)[1] += w.y * u;
    (*hi)[2] += w.z * u;
    (*hi)[3] += w.w * u;
    (*hi)[4] += w2.x * u;
    (*hi)[5] += w2.y * u;
    (*hi)[6] += w2.z * u;
    (*hi)[7] += w2.w * u;
}

// Stores positions ox .. ox + 3 of channel co (those inside the row, and only
// for a channel of the block's group) through the epilogue; `at` indexes ox.
fn store(acc: vec4<f32>, co: u32, co_end: u32, at: u32, ox: u32) {
    if (co >= co_end) {
        return;
    }
    for (var j = 0u; j < 4u; j++) {
        if (ox + j < params.ow) {
            out[at + j] = finish(acc[j], co, at + j);
        }
    }
}

// The three taps of kernel row ky (weights wa, wb, wc of the 4 channels for kx = 0, 1, 2) for the
// 8 positions from padded-input x ix0 of output row oy, input plane `plane` (its first row index).
fn row_taps(lo: ptr<function, array<vec4<f32>, 8>>, hi: ptr<function, array<vec4<f32>, 8>>, plane: u32,
            oy: u32, ky: u32, ix0: u32, wa: vec4<f32>, wa2: vec4<f32>, wb: vec4<f32>, wb2: vec4<f32>,
            wc: vec4<f32>, wc2: vec4<f32>) {
    let iy = oy * params.stride_y + ky * params.dil_y - params.pad_y; // wraps above the input
    let ok = iy < params.h;
    let row = (plane + min(iy, params.h - 1u)) * params.w;
    let s = params.stride_x;
    if (s == params.dil_x) {
        // Tap kx + 1 of position j is tap kx of position j + 1: slide the 8 values by one per tap.
        var v = vec4<f32>(load_x(row, ok, ix0), load_x(row, ok, ix0 + s), load_x(row, ok, ix0 + 2u * s),
                          load_x(row, ok, ix0 + 3u * s));
        var u = vec4<f32>(load_x(row, ok, ix0 + 4u * s), load_x(row, ok, ix0 + 5u * s),
                          load_x(row, ok, ix0 + 6u * s), load_x(row, ok, ix0 + 7u * s));
        tap(lo, hi, wa, wa2, v, u);
        v = vec4<f32>(v.yzw, u.x);
        u = vec4<f32>(u.yzw, load_x(row, ok, ix0 + 8u * s));
        tap(lo, hi, wb, wb2, v, u);
        v = vec4<f32>(v.yzw, u.x);
        u = vec4<f32>(u.yzw, load_x(row, ok, ix0 + 9u * s));
        tap(lo, hi, wc, wc2, v, u);
        return;
    }
    let d = params.dil_x;
    for (var kx = 0u; kx < 3u; kx++) {
        let b = ix0 + kx * d;
        let v = vec4<f32>(load_x(row, ok, b), load_x(row, ok, b + s), load_x(row, ok, b + 2u * s),
                          load_x(row, ok, b + 3u * s));
        let u = vec4<f32>(load_x(row, ok, b + 4u * s), load_x(row, ok, b + 5u * s), load_x(row, ok, b + 6u * s),
                          load_x(row, ok, b + 7u * s));
        tap(lo, hi, select(select(wc, wb, kx == 1u), wa, kx == 0u), select(select(wc2, wb2, kx == 1u), wa2, kx == 0u), v, u);
    }
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(subgroup_id) sg: u32, @builtin(subgroup_invocation_id) lane: u32) {
    // A workgroup holds 8 / S channel blocks of one (image, plane range): subgroup sg works on channel
    // block slot sg / S, blocks 8 (sg % S) .. + 7 of the plane range. With S = 8 that is one channel
    // block and 64 blocks of its plane, as in conv2d.
    let spp = params.subgroups_per_plane;
    let per_wg = 8u / spp;
    let co_wgs = (params.co_blocks + per_wg - 1u) / per_wg;
    let wg = wid.x + wid.y * nwg.x;
    let plane_wg = wg % params.plane_workgroups;
    let cbw = (wg / params.plane_workgroups) % co_wgs;
    let n = wg / (params.plane_workgroups * co_wgs);
    if (n >= params.n) {
        return; // the folded grid's tail: whole workgroups
    }
    // Lanes past the plane's end, slots past per_wg (when S does not divide 8) and channel blocks past
    // the last compute on valid blocks and store nothing.
    let slot = sg / spp;
    let cb_raw = cbw * per_wg + slot;
    let cb = min(cb_raw, params.co_blocks - 1u);
    let p_raw = plane_wg * 64u + (sg % spp) * 8u + lane;
    let live = p_raw < params.plane_blocks && slot < per_wg && cb_raw < params.co_blocks;
    let p = min(p_raw, params.plane_blocks - 1u);
    let g = cb / params.co_blocks_per_group;
    let co0 = g * params.cout_per_group + (cb % params.co_blocks_per_group) * 8u;
    let co_end = (g + 1u) * params.cout_per_group; // first channel of the next group
    let oy = p / params.x_blocks;
    let ox0 = (p % params.x_blocks) * 8u;

    // Channels past the group's end (partial block) reuse the last valid channel's weights; their
    // results are never stored.
    let w_stride = params.cin_per_group * 9u; // one output channel's weights
    let wb = vec4<u32>(co0, min(co0 + 1u, co_end - 1u), min(co0 + 2u, co_end - 1u), min(co0 + 3u, co_end - 1u)) * w_stride;
    let wb2 = min(vec4<u32>(co0 + 4u) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(co_end - 1u)) * w_stride;
    let ix0 = ox0 * params.stride_x;

    var lo = array<vec4<f32>, 8>();
    var hi = array<vec4<f32>, 8>();
    for (var ci = 0u; ci < params.cin_per_group; ci++) {
        let plane = (n * params.c_in + g * params.cin_per_group + ci) * params.h;
        let t = ci * 9u + lane; // tap `lane` of input channel ci
        let wv = vec4<f32>(weight[wb.x + t], weight[wb.y + t], weight[wb.z + t], weight[wb.w + t]);
        let wv2 = vec4<f32>(weight[wb2.x + t], weight[wb2.y + t], weight[wb2.z + t], weight[wb2.w + t]);
        let t8 = ci * 9u + 8u;
        let w8 = vec4<f32>(weight[wb.x + t8], weight[wb.y + t8], weight[wb.z + t8], weight[wb.w + t8]);
        let w82 = vec4<f32>(weight[wb2.x + t8], weight[wb2.y + t8], weight[wb2.z + t8], weight[wb2.w + t8]);
        row_taps(&lo, &hi, plane, oy, 0u, ix0, subgroupBroadcast(wv, 0u), subgroupBroadcast(wv2, 0u), subgroupBroadcast(wv, 1u), subgroupBroadcast(wv2, 1u), subgroupBroadcast(wv, 2u), subgroupBroadcast(wv2, 2u));
        row_taps(&lo, &hi, plane, oy, 1u, ix0, subgroupBroadcast(wv, 3u), subgroupBroadcast(wv2, 3u), subgroupBroadcast(wv, 4u), subgroupBroadcast(wv2, 4u), subgroupBroadcast(wv, 5u), subgroupBroadcast(wv2, 5u));
        row_taps(&lo, &hi, plane, oy, 2u, ix0, subgroupBroadcast(wv, 6u), subgroupBroadcast(wv2, 6u), subgroupBroadcast(wv, 7u), subgroupBroadcast(wv2, 7u), w8, w82);
    }
    if (!live) {
        return;
    }
    let at = ((n * params.c_out + co0) * params.oh + oy) * params.ow + ox0;
    let plane_size = params.oh * params.ow; // next channel
    store(lo[0], co0 + 0u, co_end, at + 0u * plane_size, ox0);
    store(hi[0], co0 + 0u, co_end, at + 0u * plane_size + 4u, ox0 + 4u);
    store(lo[1], co0 + 1u, co_end, at + 1u * plane_size, ox0);
    store(hi[1], co0 + 1u, co_end, at + 1u * plane_size + 4u, ox0 + 4u);
    store(lo[2], co0 + 2u, co_end, at + 2u * plane_size, ox0);
    store(hi[2], co0 + 2u, co_end, at + 2u * plane_size + 4u, ox0 + 4u);
    store(lo[3], co0 + 3u, co_end, at + 3u * plane_size, ox0);
    store(hi[3], co0 + 3u, co_end, at + 3u * plane_size + 4u, ox0 + 4u);
    store(lo[4], co0 + 4u, co_end, at + 4u * plane_size, ox0);
    store(hi[4], co0 + 4u, co_end, at + 4u * plane_size + 4u, ox0 + 4u);
    store(lo[5], co0 + 5u, co_end, at + 5u * plane_size, ox0);
    store(hi[5], co0 + 5u, co_end, at + 5u * plane_size + 4u, ox0 + 4u);
    store(lo[6], co0 + 6u, co_end, at + 6u * plane_size, ox0);
    store(hi[6], co0 + 6u, co_end, at + 6u * plane_size + 4u, ox0 + 4u);
    store(lo[7], co0 + 7u, co_end, at + 7u * plane_size, ox0);
    store(hi[7], co0 + 7u, co_end, at + 7u * plane_size + 4u, ox0 + 4u);
}
