// cbam_spatial_apply_vec4: the second of cbam_spatial_gate's two dispatches where 4 divides H * W
// (cbam_spatial_map wrote the map s first):
//   out[n, c, p] = post(x[n, c, p] * ca[n, c] * s[n, p]),
// where post adds residual[n, c, p] when residual, then max(., 0) when relu.
// Four neighbouring pixels of one (n, c) plane per invocation with 16-byte accesses, on a 2-D
// grid: x runs along the plane's pixel quads, y (folded into z past 65535) picks the plane, so
// ca's index is uniform per workgroup. Why not one pass over the channels per pixel, computing s
// on the way (cbam_spatial_gate, kept where 4 does not divide H * W): on lavapipe a workgroup's
// SIMD rows run one after another, and a row walking all C channels touches C lines of x, of the
// residual and of out, 12.5 KB apart at 56 x 56, before the next row reuses them. In resnet50 +
// CBAM (residual and ReLU) the gate over 1 x 256 x 56 x 56 took 4.5-5.3 ms that way and 2.9-3.7
// with the map pass and this plane-major order; in the CbamModule block (neither) 4.0-4.4 against
// 2.9 (BENCHMARKS.md, "Where the networks' time goes, and plane-major element-wise kernels").
// Params are cbam_spatial_gate's (k and flag bits 0 and 3 unread here).
// Bindings, contiguous f32: x [N, C, H, W] as vec4s, ca [N, C], map [N, 1, H, W] as vec4s,
// residual [N, C, H, W] as vec4s (without the residual flag the host binds x there, never read),
// out [N, C, H, W] as vec4s. The host guarantees 4 divides H * W and every index fits in u32.

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
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> ca: array<f32>;
@group(0) @binding(3) var<storage, read> map: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> residual: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> out: array<vec4<f32>>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let plane = wid.y + wid.z * nwg.y;  // n * C + c
    let quads = params.h * params.w / 4u;
    let q = wid.x * 64u + lid;
    let planes = params.pixels / (params.h * params.w) * params.c;  // N * C
    if (plane >= planes || q >= quads) {
        return;
    }
    let n = plane / params.c;
    let at = plane * quads + q;
    var v = x[at] * ca[plane] * map[n * quads + q];
    if ((params.flags & 2u) != 0u) {
        v += residual[at];
    }
    if ((params.flags & 4u) != 0u) {
        v = max(v, vec4<f32>(0.0));
    }
    out[at] = v;
}
