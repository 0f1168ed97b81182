// narrow: out[n, c, p] = x[n, first + c, p] for c < count: a window of
// channels (timm's SelectiveKernel feeds path i the i-th channel chunk).
// One invocation per output element on a 2-D grid: x runs along the pixels of
// one output (n, c) plane (coalesced), y (folded into z past 65535) picks the
// plane, so no per-element integer division is needed.
// Bindings: x [N, C, H, W], out [N, count, H, W], contiguous f32.

struct Params {
    planes: u32,  // N * count
    count: u32,   // output channels
    channels: u32,  // input channels C
    first: u32,   // first input channel of the window
    hw: u32,      // H * W
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let plane = wid.y + wid.z * nwg.y;  // n * count + c
    let p = wid.x * 64u + lid;
    if (plane >= params.planes || p >= params.hw) {
        return;
    }
    let n = plane / params.count;
    let c = plane - n * params.count;
    out[plane * params.hw + p] = x[(n * params.channels + params.first + c) * params.hw + p];
}
