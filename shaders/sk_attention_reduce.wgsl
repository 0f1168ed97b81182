// sk_attention_reduce: the first half of sk_attention, the reduction fc:
//   z[n, d] = act(scale[d] * sum over c of fc[d, c] * s[n, c] + shift[d])
// One invocation per (n, d), d fastest, with a serial dot over C: the
// invocations of a workgroup share s[n, :] (a broadcast) and read whole rows
// of fc. The grid is folded into y past 65535 workgroups: linear workgroup =
// wid.x + wid.y * nwg.x.
// It is a separate dispatch only because the whole op needs six storage
// buffers and the portable baseline allows four per stage; z ([N, D], tiny)
// is the hand-over to shaders/sk_attention.wgsl.
// Bindings: s [N, C], fc [D, C], fc_affine [2, D] (row 0 scale, row 1 shift),
// z [N, D]; contiguous f32. The host guarantees every element count fits in u32.

struct Params {
    n: u32,           // images
    c: u32,           // channels
    d: u32,           // reduced width D
    branches: u32,    // M (unused here; the struct is shared with sk_attention)
    activation: u32,  // 0: none, 1: ReLU, 2: sigmoid
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> s: array<f32>;
@group(0) @binding(2) var<storage, read> fc: array<f32>;
@group(0) @binding(3) var<storage, read> fc_affine: array<f32>;
@group(0) @binding(4) var<storage, read_write> z: array<f32>;

fn activate(v: f32) -> f32 {
    switch params.activation {
        case 1u: {
            return max(v, 0.0);
        }
        case 2u: {
            // Clamped so exp cannot overflow (WGSL may assume no Inf).
            return 1.0 / (1.0 + exp(-clamp(v, -88.0, 88.0)));
        }
        default: {
            return v;
        }
    }
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let i = (wid.x + wid.y * nwg.x) * 64u + lid;
    if (i >= params.n * params.d) {
        return;
    }
    // i = n * D + d.
    let C = params.c;
    let d = i % params.d;
    let n = i / params.d;
    var acc = 0.0;
    for (var c = 0u; c < C; c++) {
        acc += fc[d * C + c] * s[n * C + c];
    }
    z[i] = activate(fc_affine[d] * acc + fc_affine[params.d + d]);
}
