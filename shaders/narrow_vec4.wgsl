// narrow_vec4: narrow for H * W a multiple of 4, four neighbouring pixels per invocation:
// out[n, c, p] = x[n, first + c, p] for c < count.
// Why: on CPU adapters (lavapipe) every storage access is a loop over the SIMD lanes, so a vec4
// per lane costs about what a scalar does: this copies 4x the data per access.
// Same 2-D grid as narrow: x runs along the pixel quads of one output (n, c) plane, y (folded
// into z past 65535) picks the plane.
// Bindings: x [N, C, H, W] and out [N, count, H, W] as vec4s, contiguous f32. The host
// guarantees 4 divides H * W and every index fits in u32.

struct Params {
    planes: u32,    // N * count
    count: u32,     // output channels
    channels: u32,  // input channels C
    first: u32,     // first input channel of the window
    hw: u32,        // H * W
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> out: array<vec4<f32>>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let plane = wid.y + wid.z * nwg.y;  // n * count + c
    let quads = params.hw / 4u;
    let q = wid.x * 64u + lid;
    if (plane >= params.planes || q >= quads) {
        return;
    }
    let n = plane / params.count;
    let c = plane - n * params.count;
    out[plane * quads + q] = x[(n * params.channels + params.first + c) * quads + q];
}
