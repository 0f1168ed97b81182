// eltwise: out[i] = f(a[i], b[i]) for f in {a + b, max(a, 0), max(a + b, 0), sigmoid(a)}.
// One invocation per element. The grid is folded into y when it needs more
// than 65535 workgroups: linear workgroup = wid.x + wid.y * nwg.x.
// Bindings: a, b (b is bound to a for the unary ops) and out, contiguous f32.

struct Params {
    n: u32,     // element count
    kind: u32,  // 0: add, 1: relu, 2: add then relu, 3: sigmoid
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let i = (wid.x + wid.y * nwg.x) * 256u + lid;
    if (i >= params.n) {
        return;
    }
    var v = a[i];
    if (params.kind == 0u || params.kind == 2u) {
        v += b[i];
    }
    if (params.kind == 1u || params.kind == 2u) {
        v = max(v, 0.0);
    }
    if (params.kind == 3u) {
        // exp overflows f32 past 88: clamping keeps the sigmoid finite and exact to f32.
        v = 1.0 / (1.0 + exp(-clamp(v, -88.0, 88.0)));
    }
    out[i] = v;
}
