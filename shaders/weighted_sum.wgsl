// weighted_sum: SK's final step, out[n, c, p] = sum_m w[n, m, c] * x[m, n, c, p]
// for M stacked branches x [M, N, C, H, W] and attention weights w [N, M, C].
// One invocation per output element on a 2-D grid: x runs along the pixels of
// one (n, c) plane (neighbouring invocations on neighbouring elements:
// coalesced), y (folded into z past 65535) picks the plane, so the weights'
// index is uniform per workgroup and no per-element integer division is
// needed. Branch m's element is x[m * NCHW + i]. M is small (2-4): a plain f32 sum.
// Bindings: x, weights, out [N, C, H, W], contiguous f32.

struct Params {
    planes: u32,  // N * C
    m: u32,       // branches
    c: u32,       // channels
    hw: u32,      // H * W
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> weights: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let plane = wid.y + wid.z * nwg.y;  // n * C + c
    let p = wid.x * 64u + lid;
    if (plane >= params.planes || p >= params.hw) {
        return;
    }
    let n = plane / params.c;
    let c = plane - n * params.c;
    let i = plane * params.hw + p;
    let total = params.planes * params.hw;  // one branch, N * C * H * W
    // w[n, m, c] = w[(n * M + m) * C + c]
    let w0 = n * params.m * params.c + c;
    var acc = 0.0;
    for (var m = 0u; m < params.m; m++) {
        acc += weights[w0 + m * params.c] * x[m * total + i];
    }
    out[i] = acc;
}
