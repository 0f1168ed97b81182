// weighted_sum: SK's final step, out[n, c, p] = sum_m w[n, m, c] * x[m, n, c, p]
// for M stacked branches x [M, N, C, H, W] and attention weights w [N, M, C].
// One invocation per output element i = (n * C + c) * HW + p; branch m's
// element is x[m * NCHW + i]. Neighbouring invocations take neighbouring
// pixels, so every load and store is coalesced; the weights repeat per pixel
// and stay in cache. M is small (2-4): a plain f32 sum.
// The grid is folded into y past 65535 workgroups: wid.x + wid.y * nwg.x.
// Bindings: x, weights, out [N, C, H, W], contiguous f32.

struct Params {
    total: u32,  // N * C * H * W, one branch
    m: u32,      // branches
    c: u32,      // channels
    hw: u32,     // H * W
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> weights: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let i = (wid.x + wid.y * nwg.x) * 256u + lid;
    if (i >= params.total) {
        return;
    }
    let nc = i / params.hw;  // n * C + c
    let n = nc / params.c;
    let c = nc - n * params.c;
    // w[n, m, c] = w[(n * M + m) * C + c]
    let w0 = n * params.m * params.c + c;
    var acc = 0.0;
    for (var m = 0u; m < params.m; m++) {
        acc += weights[w0 + m * params.c] * x[m * params.total + i];
    }
    out[i] = acc;
}
