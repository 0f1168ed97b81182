// cbam_spatial_gate: CBAM's spatial attention applied together with the
// channel gate, writing the block's output; the last of three dispatches
// (cbam_spatial_gate_pack, cbam_spatial_gate_map, this one). With s the
// spatial map the map kernel stored:
//   out[n, c, p] = post(x[n, c, p] * ca[n, c] * s[n, p]),
// where post adds residual[n, c, p] when residual, then max(., 0) when relu.
// One invocation per pixel (n, p), i = n * HW + p, looping over the channels:
// neighbouring invocations read and write neighbouring addresses (coalesced),
// and s is loaded once per pixel. The grid is folded into y past 65535
// workgroups: linear workgroup = wid.x + wid.y * nwg.x.
// Bindings: x [N, C, H, W], scratch = [ ca (N * C) | weight (2 * k * k) |
// scale, shift | s (N * H * W) ], residual [N, C, H, W] (the host binds x here
// without the residual flag and it is not read), out [N, C, H, W]; contiguous
// f32. Four storage buffers: the portable baseline's limit. The host
// guarantees every index fits in u32.

struct Params {
    pixels: u32,  // N * H * W, one invocation each
    c: u32,       // channels of x
    h: u32,       // height
    w: u32,       // width
    k: u32,       // kernel size (odd), padding k / 2
    flags: u32,   // bit 0: affine (applied by the map kernel), bit 1: residual, bit 2: relu
    n: u32,       // images
    _pad0: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> scratch: array<f32>;
@group(0) @binding(3) var<storage, read> residual: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let i = (wid.x + wid.y * nwg.x) * 256u + lid;
    if (i >= params.pixels) {
        return;
    }
    let hw = params.h * params.w;
    let n = i / hw;
    let p = i % hw;
    let s = scratch[params.n * params.c + 2u * params.k * params.k + 2u + i];

    let gates = n * params.c;        // ca[n, 0], at the start of scratch
    var at = gates * hw + p;         // x[n, 0, p]; steps by HW per channel
    for (var c = 0u; c < params.c; c++) {
        var v = x[at] * scratch[gates + c] * s;
        if ((params.flags & 2u) != 0u) {
            v += residual[at];
        }
        if ((params.flags & 4u) != 0u) {
            v = max(v, 0.0);
        }
        out[at] = v;
        at += hw;
    }
}
