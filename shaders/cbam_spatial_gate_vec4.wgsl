// cbam_spatial_gate_vec4: the last cbam_spatial_gate dispatch for H * W a
// multiple of 4, four neighbouring pixels per invocation. With s the spatial
// map cbam_spatial_gate_map stored:
//   out[n, c, p] = post(x[n, c, p] * ca[n, c] * s[n, p]),
// where post adds residual[n, c, p] when residual, then max(., 0) when relu.
// Invocation q handles pixels 4q .. 4q + 3 of the flattened N * HW (all in one
// image, since 4 divides HW) and loops over the channels with 16-byte loads
// and stores: on CPU adapters (lavapipe) a vec4 per lane costs about what a
// scalar does. The grid is folded into y past 65535 workgroups: linear
// workgroup = wid.x + wid.y * nwg.x.
// Bindings: x [N, C, H, W] as vec4s, scratch = [ ca (N * C) | weight (2 * k * k) |
// scale, shift | s (N * H * W) ] (scalars: s is not 16-byte aligned in it),
// residual [N, C, H, W] as vec4s (the host binds x here without the residual
// flag and it is not read), out [N, C, H, W] as vec4s; contiguous f32.
// The host guarantees 4 divides HW and every index fits in u32.

struct Params {
    pixels: u32,  // N * H * W
    c: u32,       // channels of x
    h: u32,       // height
    w: u32,       // width
    k: u32,       // kernel size (odd), padding k / 2
    flags: u32,   // bit 0: affine (applied by the map kernel), bit 1: residual, bit 2: relu
    n: u32,       // images
    _pad0: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> scratch: array<f32>;
@group(0) @binding(3) var<storage, read> residual: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> out: array<vec4<f32>>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let q = (wid.x + wid.y * nwg.x) * 256u + lid;
    if (q >= params.pixels / 4u) {
        return;
    }
    let hw4 = params.h * params.w / 4u;
    let n = q / hw4;
    let p4 = q % hw4;
    let sa = params.n * params.c + 2u * params.k * params.k + 2u + 4u * q;  // s[n, 4 p4]
    let s = vec4<f32>(scratch[sa], scratch[sa + 1u], scratch[sa + 2u], scratch[sa + 3u]);

    let gates = n * params.c;         // ca[n, 0], at the start of scratch
    var at = gates * hw4 + p4;        // x[n, 0, 4 p4] in vec4s; steps by HW / 4 per channel
    for (var c = 0u; c < params.c; c++) {
        var v = x[at] * scratch[gates + c] * s;
        if ((params.flags & 2u) != 0u) {
            v += residual[at];
        }
        if ((params.flags & 4u) != 0u) {
            v = max(v, vec4<f32>(0.0));
        }
        out[at] = v;
        at += hw4;
    }
}
