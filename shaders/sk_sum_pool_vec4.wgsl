// sk_sum_pool_vec4: sk_sum_pool for H * W a multiple of 4, reading four neighbouring pixels per
// access: out[p] = (1 / HW) * sum over j < HW of sum over m < M of b_m[p * HW + j], for the
// N * C planes p (SKNet's "U = sum of branches, s = global average pool of U", U never stored).
// Why: on CPU adapters (lavapipe) every storage access is a loop over the SIMD lanes, so a vec4
// per lane costs about what a scalar does: the plane's loop runs a quarter of the accesses.
// Layout as in sk_sum_pool: one invocation per plane with a serial loop over its pixel quads,
// workgroups of 64, the grid folded into y past 65535 workgroups (linear workgroup =
// wid.x + wid.y * nwg.x); M is the override constant BRANCHES.
// Numerics: the quads are summed in chunks of 16 (64 pixels) into a vec4 (four sums of 16 terms),
// each chunk's four lanes added to the total, so rounding grows with 64 + HW / 64 as in sk_sum_pool.
// Bindings: b0, b1, b2, b3 [N, C, H, W] as vec4s (with M < 4 the host binds b0 in the unused
// slots; they are never read) and out [N, C] (f32). The host guarantees 4 divides H * W and that
// N * C * H * W fits in u32.

override BRANCHES: u32 = 4u;  // M, 2..=4

struct Params {
    planes: u32,  // N * C
    hw: u32,      // H * W
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> b0: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> b1: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> b2: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> b3: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;

const CHUNK: u32 = 16u;  // quads

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let p = (wid.x + wid.y * nwg.x) * 64u + lid;
    if (p >= params.planes) {
        return;
    }
    let quads = params.hw / 4u;
    let base = p * quads;
    var total = 0.0;
    for (var j0 = 0u; j0 < quads; j0 += CHUNK) {
        // j0 + min(CHUNK, quads - j0) cannot pass quads, so it cannot wrap either.
        let j1 = j0 + min(CHUNK, quads - j0);
        var part = vec4(0.0);
        for (var j = j0; j < j1; j++) {
            let k = base + j;
            var v = b0[k] + b1[k];
            if (BRANCHES > 2u) {
                v += b2[k];
            }
            if (BRANCHES > 3u) {
                v += b3[k];
            }
            part += v;
        }
        total += (part.x + part.y) + (part.z + part.w);
    }
    out[p] = total / f32(params.hw);
}
