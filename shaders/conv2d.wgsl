// conv2d: direct 2-D convolution (zero padding, stride, dilation, groups) with
// the fused epilogue y = act(scale[co] * acc + shift[co] + residual).
//
// One invocation computes a 4 x 4 register block: 4 output channels of one
// group x 4 consecutive output x positions of one output row. A workgroup is
// 64 neighbouring blocks of one (image, channel block) output plane, numbered
// row-major (block p = oy * x_blocks + ox / 4), so neighbouring invocations
// read neighbouring input x (coalesced) and every weight index depends only on
// the workgroup and loop counters: one uniform load broadcast to all lanes.
// No workgroup memory and no barriers (on lavapipe a barrier is a coroutine
// switch per 8 lanes).
//
// Workgroup w (folded: wid.x + wid.y * nwg.x when the grid passes 65535) is
// w = (n * co_blocks + cb) * plane_workgroups + pw, where channel block cb
// covers channels co0 .. co0 + 3 of group cb / co_blocks_per_group.
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
    x_blocks: u32,            // ceil(ow / 4)
    plane_blocks: u32,        // oh * x_blocks
    plane_workgroups: u32,    // ceil(plane_blocks / 64)
    epilogue: u32,            // bit 0 affine, bit 1 residual, bits 2.. activation (0 none, 1 relu, 2 sigmoid)
    _pad0: u32,
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

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let wg = wid.x + wid.y * nwg.x;
    let plane_wg = wg % params.plane_workgroups;
    let cb = (wg / params.plane_workgroups) % params.co_blocks;
    let n = wg / (params.plane_workgroups * params.co_blocks);
    let p = plane_wg * 64u + lid;
    // The folded grid's tail, and the last plane workgroup's unused lanes.
    if (n >= params.n || p >= params.plane_blocks) {
        return;
    }
    let g = cb / params.co_blocks_per_group;
    let co0 = g * params.cout_per_group + (cb % params.co_blocks_per_group) * 4u;
    let co_end = (g + 1u) * params.cout_per_group; // first channel of the next group
    let oy = p / params.x_blocks;
    let ox0 = (p % params.x_blocks) * 4u;

    // Channels past the group's end (partial block) reuse the last valid
    // channel's weights; their results are never stored.
    let taps = params.kh * params.kw;
    let w_stride = params.cin_per_group * taps; // one output channel's weights
    var w_base = vec4<u32>(0u);
    for (var k = 0u; k < 4u; k++) {
        w_base[k] = min(co0 + k, co_end - 1u) * w_stride;
    }
    // Padded-input x of the block's first tap; tap kx of position j is at
    // ix0 + j * stride_x + kx * dil_x.
    let ix0 = ox0 * params.stride_x;
    // When stride == dilation, tap kx + 1 of position j is tap kx of position
    // j + 1: slide the 4 loaded values by one and load only one new value.
    let slide = params.stride_x == params.dil_x;

    var acc = array<vec4<f32>, 4>(); // acc[k][j]: channel co0 + k, position ox0 + j
    for (var ci = 0u; ci < params.cin_per_group; ci++) {
        let plane = (n * params.c_in + g * params.cin_per_group + ci) * params.h;
        for (var ky = 0u; ky < params.kh; ky++) {
            let iy = oy * params.stride_y + ky * params.dil_y - params.pad_y; // wraps above the input
            let row_ok = iy < params.h;
            let row = (plane + min(iy, params.h - 1u)) * params.w;
            let w_row = (ci * params.kh + ky) * params.kw;
            var v = vec4<f32>(load_x(row, row_ok, ix0), load_x(row, row_ok, ix0 + params.stride_x),
                              load_x(row, row_ok, ix0 + 2u * params.stride_x),
                              load_x(row, row_ok, ix0 + 3u * params.stride_x));
            for (var kx = 0u; kx < params.kw; kx++) {
                if (kx > 0u) {
                    let base = ix0 + kx * params.dil_x;
                    if (slide) {
                        v = vec4<f32>(v.yzw, load_x(row, row_ok, base + 3u * params.stride_x));
                    } else {
                        v = vec4<f32>(load_x(row, row_ok, base), load_x(row, row_ok, base + params.stride_x),
                                      load_x(row, row_ok, base + 2u * params.stride_x),
                                      load_x(row, row_ok, base + 3u * params.stride_x));
                    }
                }
                let t = w_row + kx;
                acc[0] += weight[w_base[0] + t] * v;
                acc[1] += weight[w_base[1] + t] * v;
                acc[2] += weight[w_base[2] + t] * v;
                acc[3] += weight[w_base[3] + t] * v;
            }
        }
    }

    for (var k = 0u; k < 4u; k++) {
        let co = co0 + k;
        if (co >= co_end) {
            break;
        }
        let out_row = ((n * params.c_out + co) * params.oh + oy) * params.ow;
        for (var j = 0u; j < 4u; j++) {
            if (ox0 + j < params.ow) {
                out[out_row + ox0 + j] = finish(acc[k][j], co, out_row + ox0 + j);
            }
        }
    }
}
