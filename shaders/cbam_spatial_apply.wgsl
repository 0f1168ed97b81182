// cbam_spatial_apply: the second of cbam_spatial_gate's two dispatches where 4 does not divide
// H * W (cbam_spatial_apply_vec4 is the variant where it does; cbam_spatial_map wrote the map s
// first):
//   out[n, c, p] = post(x[n, c, p] * ca[n, c] * s[n, p]),
// where post adds residual[n, c, p] when residual, then max(., 0) when relu.
// One invocation per element of x in memory order (i = (n C + c) HW + p), so neighbouring lanes
// read and write neighbouring addresses. The grid is folded into y past 65535 workgroups: linear
// workgroup = wid.x + wid.y * nwg.x.
// Params are cbam_spatial_gate's (k and flag bits 0 and 3 unread here).
// Bindings, contiguous f32: x [N, C, H, W], ca [N, C], map [N, 1, H, W], residual [N, C, H, W]
// (without the residual flag the host binds x there, never read), out [N, C, H, W]. The host
// guarantees every index fits in u32.

struct Params {
    pixels: u32,  // N * H * W
    c: u32,       // channels of x
    h: u32,       // height
    w: u32,       // width
    k: u32,       // kernel size (unread)
    flags: u32,   // bit 1: residual, bit 2: relu (bits 0 and 3 are cbam_spatial_map's and the host's)
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> ca: array<f32>;
@group(0) @binding(3) var<storage, read> map: array<f32>;
@group(0) @binding(4) var<storage, read> residual: array<f32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let i = (wid.x + wid.y * nwg.x) * 256u + lid;
    if (i >= params.pixels * params.c) {
        return;
    }
    let hw = params.h * params.w;
    let plane = i / hw;  // n * C + c
    let n = plane / params.c;
    var v = x[i] * ca[plane] * map[n * hw + i % hw];
    if ((params.flags & 2u) != 0u) {
        v += residual[i];
    }
    if ((params.flags & 4u) != 0u) {
        v = max(v, 0.0);
    }
    out[i] = v;
}
