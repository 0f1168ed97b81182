// cbam_spatial_gate_map: second of the three cbam_spatial_gate dispatches: the
// spatial attention map. For pixel p = (y, x') of image n:
//   z = sum over ch < 2, ky, kx < k of weight[0, ch, ky, kx] * pooled[n, ch, y + ky - k/2, x' + kx - k/2]
//   (zero padding); s[n, p] = sigmoid(scale * z + shift), with the sigmoid's
//   input clamped to +-88 so exp stays finite in f32.
// One invocation per pixel, i = n * HW + p (2 * k * k MACs each); neighbouring
// invocations read neighbouring pooled values. The grid is folded into y past
// 65535 workgroups: linear workgroup = wid.x + wid.y * nwg.x.
// Bindings: pooled [N, 2, H, W] (channel mean, channel max), and scratch =
// [ ca (N * C) | weight (2 * k * k) | scale, shift | s (N * H * W) ], whose first
// three parts cbam_spatial_gate_pack wrote; this kernel writes s. Contiguous f32.
// The host guarantees k is odd and every index below (including H + k and
// W + k) fits in u32.

struct Params {
    pixels: u32,  // N * H * W, one invocation each
    c: u32,       // channels of x
    h: u32,       // height
    w: u32,       // width
    k: u32,       // kernel size (odd), padding k / 2
    flags: u32,   // bit 0: affine, bit 1: residual, bit 2: relu (applied by the other kernels)
    n: u32,       // images
    _pad0: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> pooled: array<f32>;
@group(0) @binding(2) var<storage, read_write> scratch: array<f32>;

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
    let taps = params.n * params.c;              // weight[0, 0, 0, 0] in scratch
    let affine = taps + 2u * params.k * params.k;  // scale, then shift

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
            let tap = taps + (ch * params.k + ky) * params.k;  // weight[0, ch, ky, 0]
            for (var kx = kx0; kx < kx1; kx++) {
                z += scratch[tap + kx] * pooled[row + kx - pad];
            }
        }
    }
    z = scratch[affine] * z + scratch[affine + 1u];
    scratch[affine + 2u + i] = 1.0 / (1.0 + exp(-clamp(z, -88.0, 88.0)));
}
