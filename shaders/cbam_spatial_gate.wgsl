// cbam_spatial_gate: CBAM's spatial attention applied together with the
// channel gate, writing the block's output, in one dispatch. For pixel
// p = (y, x') of image n:
//   z = sum over ch < 2, ky, kx < k of weight[0, ch, ky, kx] * pooled[n, ch, y + ky - k/2, x' + kx - k/2]
//       (zero padding), then z = scale * z + shift when affine (timm's BatchNorm);
//   s = sigmoid(z), with z clamped to +-88 so exp stays finite in f32;
//   out[n, c, p] = post(x[n, c, p] * ca[n, c] * s) for every channel c, where
//   post adds residual[n, c, p] when residual, then max(., 0) when relu.
// One invocation per pixel (n, p), i = n * HW + p: s costs 2 * k * k MACs once,
// then the loop over c reads and writes neighbouring addresses across
// neighbouring invocations (coalesced). Where 4 divides HW the host runs
// cbam_spatial_map and cbam_spatial_apply_vec4 instead (the latter says why).
// The grid is folded into y past 65535 workgroups: linear workgroup =
// wid.x + wid.y * nwg.x.
// Bindings, contiguous f32: x [N, C, H, W], ca [N, C], pooled [N, 2, H, W]
// (channel mean, channel max), weight [1, 2, k, k], affine [2, 1] (scale,
// shift), residual [N, C, H, W], out [N, C, H, W], map [N, 1, H, W] (s itself,
// written when flag bit 3 is set: the spatial map as a side output): 8 storage
// buffers, WebGPU's limit. Without the affine / residual flag the host binds another input
// in that slot and the shader never reads it.
// The host guarantees k is odd and every index below (including H + k and
// W + k) fits in u32.

struct Params {
    pixels: u32,  // N * H * W, one invocation each
    c: u32,       // channels of x
    h: u32,       // height
    w: u32,       // width
    k: u32,       // kernel size (odd), padding k / 2
    flags: u32,   // bit 0: affine, bit 1: residual, bit 2: relu, bit 3: write the map s
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> ca: array<f32>;
@group(0) @binding(3) var<storage, read> pooled: array<f32>;
@group(0) @binding(4) var<storage, read> weight: array<f32>;
@group(0) @binding(5) var<storage, read> affine: array<f32>;
@group(0) @binding(6) var<storage, read> residual: array<f32>;
@group(0) @binding(7) var<storage, read_write> out: array<f32>;
@group(0) @binding(8) var<storage, read_write> spatial_map: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let i = (wid.x + wid.y * nwg.x) * 256u + lid;
    if (i >= params.pixels) {
        return;
    }
    let hw = params.h * params.w;
    let n = i / hw;
    let p = i % hw;
    let y = p / params.w;
    let xx = p % params.w;

    // The kernel rows (columns) that land inside the image: input row
    // y + ky - pad must lie in [0, H), i.e. ky in [max(pad, y) - y, min(k, H + pad - y)).
    // Kept in u32 without wrapping: y < H, so H + pad - y > 0.
    let pad = params.k / 2u;
    let ky0 = max(pad, y) - y;
    let ky1 = min(params.k, params.h + pad - y);
    let kx0 = max(pad, xx) - xx;
    let kx1 = min(params.k, params.w + pad - xx);
    var z = 0.0;
    for (var ch = 0u; ch < 2u; ch++) {
        let plane = (n * 2u + ch) * hw;  // pooled[n, ch, 0, 0]
        for (var ky = ky0; ky < ky1; ky++) {
            // Input row y + ky - pad, column xx + kx - pad; row + kx >= pad
            // because xx + kx >= pad, so the subtraction cannot wrap.
            let row = plane + (y + ky - pad) * params.w + xx;
            let taps = (ch * params.k + ky) * params.k;  // weight[0, ch, ky, 0]
            for (var kx = kx0; kx < kx1; kx++) {
                z += weight[taps + kx] * pooled[row + kx - pad];
            }
        }
    }
    if ((params.flags & 1u) != 0u) {
        z = affine[0] * z + affine[1];
    }
    let s = 1.0 / (1.0 + exp(-clamp(z, -88.0, 88.0)));
    if ((params.flags & 8u) != 0u) {
        spatial_map[i] = s;  // map[n, 0, p]: i = n * HW + p
    }

    let gates = n * params.c;        // ca[n, 0]
    var at = gates * hw + p;         // x[n, 0, p]; steps by HW per channel
    for (var c = 0u; c < params.c; c++) {
        var v = x[at] * ca[gates + c] * s;
        if ((params.flags & 2u) != 0u) {
            v += residual[at];
        }
        if ((params.flags & 4u) != 0u) {
            v = max(v, 0.0);
        }
        out[at] = v;
        at += hw;
    }
}
