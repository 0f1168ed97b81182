// conv2d: direct 2-D convolution (zero padding, stride, dilation, groups) with
// the fused epilogue y = act(scale[co] * acc + shift[co] + residual), all in
// one pass: the residual is read once as the output is stored (5 storage
// buffers, within WebGPU's default 8).
//
// One invocation computes a 4 x 8 register block: 4 output channels of one
// group x 8 consecutive output x positions of one output row, so each input
// value loaded feeds 4 channels and each weight 8 positions (on lavapipe every
// storage load is a per-lane gather: 4 x 8 ran about 1.4x faster than 4 x 4,
// and about 10x faster than one output per invocation). A workgroup is 64
// neighbouring blocks of one (image, channel block) output plane, numbered
// row-major (block p = oy * x_blocks + ox / 8): neighbouring invocations read
// neighbouring input x, and the weight indices depend only on the workgroup
// and loop counters (the same address in every lane). No workgroup memory and
// no barriers (on lavapipe a barrier is a coroutine switch per 8 lanes).
//
// Workgroup w (folded: wid.x + wid.y * nwg.x when the grid passes 65535) is
// w = (n * co_workgroups + cw) * plane_workgroups + pw; it holds channel blocks
// cw * 8 / S .. + 8 / S - 1 (one when the plane needs all 64 lanes, more on
// planes under 64 blocks: a 14x14 plane is 28), where channel block cb covers
// channels co0 .. co0 + 3 of group cb / co_blocks_per_group.
//
// Bindings, contiguous row-major f32:
//   1 x        [N, C_in, H, W]
//   2 weight   [C_out, C_in / groups, KH, KW]
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

// acc[k] += w[k] * v for the 4 channels: lo holds positions 0 .. 3, hi 4 .. 7.
fn tap(lo: ptr<function, array<vec4<f32>, 4>>, hi: ptr<function, array<vec4<f32>, 4>>, w: vec4<f32>,
       v: vec4<f32>, u: vec4<f32>) {
    (*lo)[0] += w.x * v;
    (*lo)[1] += w.y * v;
    (*lo)[2] += w.z * v;
    (*lo)[3] += w.w * v;
    (*hi)[0] += w.x * u;
    (*hi)[1] += w.y * u;
    (*hi)[2] += w.z * u;
    (*hi)[3] += w.w * u;
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

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    // A workgroup holds 8 / S channel blocks (S = subgroups_per_plane): lanes 8 j .. 8 j + 7 work on
    // channel block slot j / S, blocks 8 (j % S) .. + 7 of the plane range. With S = 8 that is one
    // channel block and 64 blocks of its plane.
    let spp = params.subgroups_per_plane;
    let per_wg = 8u / spp;
    let co_wgs = (params.co_blocks + per_wg - 1u) / per_wg;
    let wg = wid.x + wid.y * nwg.x;
    let plane_wg = wg % params.plane_workgroups;
    let n = wg / (params.plane_workgroups * co_wgs);
    let slot = (lid / 8u) / spp;
    let cb = ((wg / params.plane_workgroups) % co_wgs) * per_wg + slot;
    let p = plane_wg * 64u + ((lid / 8u) % spp) * 8u + lid % 8u;
    // The folded grid's tail, the last plane workgroup's unused lanes, unused slots and channel blocks.
    if (n >= params.n || p >= params.plane_blocks || slot >= per_wg || cb >= params.co_blocks) {
        return;
    }
    let g = cb / params.co_blocks_per_group;
    let co0 = g * params.cout_per_group + (cb % params.co_blocks_per_group) * 4u;
    let co_end = (g + 1u) * params.cout_per_group; // first channel of the next group
    let oy = p / params.x_blocks;
    let ox0 = (p % params.x_blocks) * 8u;

    // Channels past the group's end (partial block) reuse the last valid
    // channel's weights; their results are never stored.
    let w_stride = params.cin_per_group * params.kh * params.kw; // one output channel's weights
    let w0 = co0 * w_stride;
    let w1 = min(co0 + 1u, co_end - 1u) * w_stride;
    let w2 = min(co0 + 2u, co_end - 1u) * w_stride;
    let w3 = min(co0 + 3u, co_end - 1u) * w_stride;
    // Tap kx of position j reads padded-input x ix0 + j * s + kx * dil_x.
    let s = params.stride_x;
    let ix0 = ox0 * s;
    // When stride == dilation, tap kx + 1 of position j is tap kx of position
    // j + 1: slide the 8 loaded values by one and load one new value per tap.
    // The branch is taken per row, outside the tap loop: lavapipe runs both
    // sides of every branch under a lane mask.
    let slide = s == params.dil_x;

    var lo = array<vec4<f32>, 4>();
    var hi = array<vec4<f32>, 4>();
    for (var ci = 0u; ci < params.cin_per_group; ci++) {
        let plane = (n * params.c_in + g * params.cin_per_group + ci) * params.h;
        for (var ky = 0u; ky < params.kh; ky++) {
            let iy = oy * params.stride_y + ky * params.dil_y - params.pad_y; // wraps above the input
            let ok = iy < params.h;
            let row = (plane + min(iy, params.h - 1u)) * params.w;
            let w_row = (ci * params.kh + ky) * params.kw;
            if (slide) {
                // Primed one position left: the first slide brings in tap 0 of position 7.
                var v = vec4<f32>(0.0, load_x(row, ok, ix0), load_x(row, ok, ix0 + s), load_x(row, ok, ix0 + 2u * s));
                var u = vec4<f32>(load_x(row, ok, ix0 + 3u * s), load_x(row, ok, ix0 + 4u * s),
                                  load_x(row, ok, ix0 + 5u * s), load_x(row, ok, ix0 + 6u * s));
                for (var kx = 0u; kx < params.kw; kx++) {
                    v = vec4<f32>(v.yzw, u.x);
                    u = vec4<f32>(u.yzw, load_x(row, ok, ix0 + (kx + 7u) * s));
                    let t = w_row + kx;
                    tap(&lo, &hi, vec4<f32>(weight[w0 + t], weight[w1 + t], weight[w2 + t], weight[w3 + t]), v, u);
                }
            } else {
                for (var kx = 0u; kx < params.kw; kx++) {
                    let b = ix0 + kx * params.dil_x;
                    let v = vec4<f32>(load_x(row, ok, b), load_x(row, ok, b + s), load_x(row, ok, b + 2u * s),
                                      load_x(row, ok, b + 3u * s));
                    let u = vec4<f32>(load_x(row, ok, b + 4u * s), load_x(row, ok, b + 5u * s),
                                      load_x(row, ok, b + 6u * s), load_x(row, ok, b + 7u * s));
                    let t = w_row + kx;
                    tap(&lo, &hi, vec4<f32>(weight[w0 + t], weight[w1 + t], weight[w2 + t], weight[w3 + t]), v, u);
                }
            }
        }
    }

    let at = ((n * params.c_out + co0) * params.oh + oy) * params.ow + ox0;
    let plane_size = params.oh * params.ow; // next channel
    store(lo[0], co0, co_end, at, ox0);
    store(lo[1], co0 + 1u, co_end, at + plane_size, ox0);
    store(lo[2], co0 + 2u, co_end, at + 2u * plane_size, ox0);
    store(lo[3], co0 + 3u, co_end, at + 3u * plane_size, ox0);
    store(hi[0], co0, co_end, at + 4u, ox0 + 4u);
    store(hi[1], co0 + 1u, co_end, at + plane_size + 4u, ox0 + 4u);
    store(hi[2], co0 + 2u, co_end, at + 2u * plane_size + 4u, ox0 + 4u);
    store(hi[3], co0 + 3u, co_end, at + 3u * plane_size + 4u, ox0 + 4u);
}
