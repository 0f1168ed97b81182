// cbam_gate_pool: CBAM's channel gate fused with the spatial attention's pools.
// For pixel p of image n, with g[c] = x[n, c, p] * ca[n, c] (the channel-gated
// input, never stored):
//   out[n, 0, p] = mean over c of g[c],   out[n, 1, p] = max over c of g[c].
// One invocation per pixel (n, p), looping over the C channels: neighbouring
// invocations take neighbouring pixels, so every load of x is coalesced, and
// no barrier or workgroup memory is needed. i = n * HW + p; the grid is folded
// into y past 65535 workgroups: linear workgroup = wid.x + wid.y * nwg.x.
// Bindings: x [N, C, H, W], ca [N, C] (channel weights, already sigmoid-ed),
// out [N, 2, H, W]; contiguous f32. The host guarantees every index fits in u32.

struct Params {
    pixels: u32,  // N * H * W, one invocation each
    c: u32,       // channels
    hw: u32,      // H * W
    _pad0: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> ca: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let i = (wid.x + wid.y * nwg.x) * 256u + lid;
    if (i >= params.pixels) {
        return;
    }
    let n = i / params.hw;
    let p = i % params.hw;
    let gates = n * params.c;            // ca[n, 0]
    var at = gates * params.hw + p;      // x[n, 0, p]; steps by HW per channel
    // Channel 0 seeds the max, so no -inf is needed (WGSL may assume no Inf).
    var g = x[at] * ca[gates];
    var sum = g;
    var m = g;
    for (var c = 1u; c < params.c; c++) {
        at += params.hw;
        g = x[at] * ca[gates + c];
        sum += g;
        m = max(m, g);
    }
    let base = 2u * n * params.hw + p;   // out[n, 0, p]
    out[base] = sum / f32(params.c);
    out[base + params.hw] = m;
}
