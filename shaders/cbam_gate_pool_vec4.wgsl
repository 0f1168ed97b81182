// cbam_gate_pool_vec4: cbam_gate_pool for H * W a multiple of 4, four
// neighbouring pixels per invocation. For pixel p of image n, with
// g[c] = x[n, c, p] * ca[n, c] (the channel-gated input, never stored):
//   out[n, 0, p] = mean over c of g[c],   out[n, 1, p] = max over c of g[c].
// Invocation q handles pixels 4q .. 4q + 3 of the flattened N * HW (all in one
// image, since 4 divides HW) and loops over the C channels with one 16-byte
// load of x per channel: on CPU adapters (lavapipe) a vec4 per lane costs
// about what a scalar does, so this moves 4x the data per instruction.
// The grid is folded into y past 65535 workgroups: linear workgroup =
// wid.x + wid.y * nwg.x.
// Bindings: x [N, C, H, W] as vec4s, ca [N, C], out [N, 2, H, W] as vec4s;
// contiguous f32. The host guarantees 4 divides HW and every index fits in u32.

struct Params {
    pixels: u32,  // N * H * W
    c: u32,       // channels
    hw: u32,      // H * W, a multiple of 4
    _pad0: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> ca: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<vec4<f32>>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let q = (wid.x + wid.y * nwg.x) * 256u + lid;
    let hw4 = params.hw / 4u;
    if (q >= params.pixels / 4u) {
        return;
    }
    let n = q / hw4;
    let p4 = q % hw4;                 // pixels 4 * p4 .. 4 * p4 + 3 of image n
    let gates = n * params.c;         // ca[n, 0]
    var at = gates * hw4 + p4;        // x[n, 0, 4 p4] in vec4s; steps by HW / 4 per channel
    // Channel 0 seeds the max, so no -inf is needed (WGSL may assume no Inf).
    var g = x[at] * ca[gates];
    var sum = g;
    var m = g;
    for (var c = 1u; c < params.c; c++) {
        at += hw4;
        g = x[at] * ca[gates + c];
        sum += g;
        m = max(m, g);
    }
    let base = 2u * n * hw4 + p4;     // out[n, 0, 4 p4] in vec4s
    out[base] = sum / f32(params.c);
    out[base + hw4] = m;
}
