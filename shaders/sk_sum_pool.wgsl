// sk_sum_pool: out[p] = (1 / HW) * sum over j < HW of sum over m < M of b_m[p * HW + j],
// where p = n * C + c indexes the N * C planes: SKNet's "U = sum of branches,
// s = global average pool of U" in one pass, U never stored.
// One invocation per plane p with a serial loop over its H * W pixels. On
// lavapipe (one workgroup per CPU thread, 8 lanes) this was 10-50x faster
// than a workgroup tree reduction, whose barriers are coroutine switches; on
// real GPUs a workgroup-per-plane reduction would win when N * C is small.
// Workgroups of 64 (not 256) so that typical N * C (64 to 2048) spreads over
// several workgroups, hence several CPU threads. The grid is folded into y
// past 65535 workgroups: linear workgroup = wid.x + wid.y * nwg.x.
// Bindings: b0, b1, b2, b3 [N, C, H, W] and out [N, C], contiguous f32: 5
// storage buffers, within WebGPU's 8, so M = 2 to 4 is one dispatch. With
// M < 4 branches the host binds b0 in the unused slots; they are never read.
// M is the override constant BRANCHES, so the pixel loop holds only the loads
// it needs: with M a uniform instead, lavapipe still paid for the masked-off
// loads of the unused slots (M = 3 ran about 1.2x slower than a 3-slot kernel).
// The host guarantees N * C * H * W fits in u32.
// Numerics: the sum runs in chunks of 64 pixels, each summed on its own and
// then added to the total, so rounding grows with 64 + HW / 64 rather than HW
// (a 56 x 56 plane of 4 branches is 12544 terms).

override BRANCHES: u32 = 4u;  // M, 2..=4

struct Params {
    planes: u32,  // N * C
    hw: u32,      // H * W
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> b0: array<f32>;
@group(0) @binding(2) var<storage, read> b1: array<f32>;
@group(0) @binding(3) var<storage, read> b2: array<f32>;
@group(0) @binding(4) var<storage, read> b3: array<f32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;

const CHUNK: u32 = 64u;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let p = (wid.x + wid.y * nwg.x) * 64u + lid;
    if (p >= params.planes) {
        return;
    }
    let base = p * params.hw;
    var total = 0.0;
    for (var j0 = 0u; j0 < params.hw; j0 += CHUNK) {
        // j0 + min(CHUNK, hw - j0) cannot pass hw, so it cannot wrap either.
        let j1 = j0 + min(CHUNK, params.hw - j0);
        var part = 0.0;
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
        total += part;
    }
    out[p] = total / f32(params.hw);
}
