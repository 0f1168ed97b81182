// weighted_sum_vec4: weighted_sum for H * W a multiple of 4, four neighbouring pixels per
// invocation: out[n, c, p] = sum_m w[n, m, c] * b_m[n, c, p] for M (1-4) branches b_m [N, C, H, W]
// and attention weights w [N, M, C].
// Why: on CPU adapters (lavapipe) every storage access is a loop over the SIMD lanes, so a vec4
// per lane costs about what a scalar does: this moves 4x the data per access, and loads each
// weight once per 4 pixels instead of once per pixel.
// Same 2-D grid as weighted_sum: x runs along the pixel quads of one (n, c) plane, y (folded into
// z past 65535) picks the plane, so the weights' index is uniform per workgroup.
// M is the override constant BRANCHES, as in sk_sum_pool: the unused slots' loads compile out.
// Bindings: b0..b3 as vec4s (slots past M are bound to b0 and never read), weights (f32), out as
// vec4s; contiguous f32. The host guarantees 4 divides H * W and every index fits in u32.

override BRANCHES: u32 = 2u;  // M, 1..=4

struct Params {
    planes: u32,  // N * C
    m: u32,       // branches (BRANCHES)
    c: u32,       // channels
    hw: u32,      // H * W
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> b0: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> b1: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> b2: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> b3: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read> weights: array<f32>;
@group(0) @binding(6) var<storage, read_write> out: array<vec4<f32>>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let plane = wid.y + wid.z * nwg.y;  // n * C + c
    let quads = params.hw / 4u;
    let q = wid.x * 64u + lid;
    if (plane >= params.planes || q >= quads) {
        return;
    }
    let n = plane / params.c;
    let c = plane - n * params.c;
    let i = plane * quads + q;
    // w[n, m, c] = w[(n * M + m) * C + c]
    let w0 = n * BRANCHES * params.c + c;
    var acc = weights[w0] * b0[i];
    if (BRANCHES > 1u) {
        acc += weights[w0 + params.c] * b1[i];
    }
    if (BRANCHES > 2u) {
        acc += weights[w0 + 2u * params.c] * b2[i];
    }
    if (BRANCHES > 3u) {
        acc += weights[w0 + 3u * params.c] * b3[i];
    }
    out[i] = acc;
}
