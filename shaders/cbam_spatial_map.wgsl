// cbam_spatial_map: CBAM's spatial attention map, the first of cbam_spatial_gate's two dispatches
// where 4 divides H * W (cbam_spatial_apply_vec4 is the second). For pixel p = (y, x') of image n:
//   z = sum over ch < 2, ky, kx < k of weight[0, ch, ky, kx] * pooled[n, ch, y + ky - k/2, x' + kx - k/2]
//       (zero padding), then z = scale * z + shift when affine (timm's BatchNorm);
//   map[n, 0, p] = s = sigmoid(z), with z clamped to +-88 so exp stays finite in f32.
// One invocation per pixel, i = n * HW + p; the conv's loops as in cbam_spatial_gate (WGSL has no
// includes). The grid is folded into y past 65535 workgroups: linear workgroup = wid.x + wid.y * nwg.x.
// Params are cbam_spatial_gate's (c and flags bits 1 to 3 unread here).
// Bindings, contiguous f32: pooled [N, 2, H, W] (channel mean, channel max), weight [1, 2, k, k],
// affine [2, 1] (scale, shift; without the affine flag the host binds weight there, never read),
// map [N, 1, H, W]. The host guarantees k is odd and every index below (including H + k and
// W + k) fits in u32.

struct Params {
    pixels: u32,  // N * H * W, one invocation each
    c: u32,       // channels of x (unread)
    h: u32,       // height
    w: u32,       // width
    k: u32,       // kernel size (odd), padding k / 2
    flags: u32,   // bit 0: affine (bits 1 to 3 are cbam_spatial_apply_vec4's)
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> pooled: array<f32>;
@group(0) @binding(2) var<storage, read> weight: array<f32>;
@group(0) @binding(3) var<storage, read> affine: array<f32>;
@group(0) @binding(4) var<storage, read_write> map: array<f32>;

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
    map[i] = 1.0 / (1.0 + exp(-clamp(z, -88.0, 88.0)));
}
