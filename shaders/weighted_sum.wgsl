// weighted_sum: SK's final step, out[n, c, p] = sum_m w[n, m, c] * b_m[n, c, p]
// for M (1-4) branches b_m [N, C, H, W] and attention weights w [N, M, C].
// One invocation per output element on a 2-D grid: x runs along the pixels of
// one (n, c) plane (neighbouring invocations on neighbouring elements:
// coalesced), y (folded into z past 65535) picks the plane, so the weights'
// index is uniform per workgroup and no per-element integer division is
// needed. M is small: a plain f32 sum.
// Bindings: b0..b3 (slots past M are bound to b0 and never read), weights, out.

struct Params {
    planes: u32,  // N * C
    m: u32,       // branches, 1 to 4
    c: u32,       // channels
    hw: u32,      // H * W
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> b0: array<f32>;
@group(0) @binding(2) var<storage, read> b1: array<f32>;
@group(0) @binding(3) var<storage, read> b2: array<f32>;
@group(0) @binding(4) var<storage, read> b3: array<f32>;
@group(0) @binding(5) var<storage, read> weights: array<f32>;
@group(0) @binding(6) var<storage, read_write> out: array<f32>;

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
    // w[n, m, c] = w[(n * M + m) * C + c]
    let w0 = n * params.m * params.c + c;
    var acc = weights[w0] * b0[i];
    if (params.m > 1u) {
        acc += weights[w0 + params.c] * b1[i];
    }
    if (params.m > 2u) {
        acc += weights[w0 + 2u * params.c] * b2[i];
    }
    if (params.m > 3u) {
        acc += weights[w0 + 3u * params.c] * b3[i];
    }
    out[i] = acc;
}
