// render_overlay: an attention map drawn over a photo. One invocation computes the three
// channels of one output pixel (y, x):
//   v   = the map bilinearly upsampled to the photo's H x W (PyTorch's align_corners=False rule)
//   t   = clamp((v - lo) / max(hi - lo, 1e-12), 0, 1)            (the normalisation range)
//   rgb = the colormap at t, linearly interpolated between its 256 entries
//   out = (1 - alpha) * photo + alpha * rgb
// The grid is folded into y when it needs more than 65535 workgroups: linear workgroup =
// wid.x + wid.y * nwg.x. Neighbouring invocations take neighbouring x, so every load and
// store is coalesced.
// Bindings: photo [3, H, W] in [0, 1], attn [1, h, w], colormap [256, 3] (rows of r, g, b),
// out [3, H, W]; all contiguous f32.

struct Params {
    height: u32, // H: the photo and the output
    width: u32,  // W
    map_h: u32,  // h: the map
    map_w: u32,  // w
    alpha: f32,  // weight of the colour; 0 keeps the photo, 1 shows only the map
    lo: f32,     // map value drawn with the colormap's first entry
    hi: f32,     // map value drawn with its last entry
    _pad: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> photo: array<f32>;
@group(0) @binding(2) var<storage, read> attn: array<f32>;
@group(0) @binding(3) var<storage, read> colormap: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

// Where output index `dst` of `size_out` samples an input of `size_in` along one axis:
// src = max((dst + 0.5) * in / out - 0.5, 0) (PyTorch's area_pixel_compute_source_index), as
// the lower neighbour, the upper one (the edge repeats) and the weight of the upper one.
// Computed exactly as ((2 dst + 1) in - out) / (2 out) in integers (the host checks that the
// numerator fits u32): a rounded src, times the map's slope and the colormap's, would move
// the colour by more than the op tolerance.
struct Sample {
    i0: u32,
    i1: u32,
    lambda: f32,
}

fn source(dst: u32, size_in: u32, size_out: u32) -> Sample {
    let scaled = (2u * dst + 1u) * size_in;
    let num = select(0u, scaled - size_out, scaled > size_out);
    let den = 2u * size_out;
    let whole = num / den;
    if (whole >= size_in - 1u) {
        return Sample(size_in - 1u, size_in - 1u, 0.0);
    }
    return Sample(whole, whole + 1u, f32(num % den) / f32(den));
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let plane = params.height * params.width;
    let i = (wid.x + wid.y * nwg.x) * 256u + lid;
    if (i >= plane) {
        return;
    }
    let y = i / params.width;
    let x = i - y * params.width;

    let sy = source(y, params.map_h, params.height);
    let sx = source(x, params.map_w, params.width);
    let r0 = sy.i0 * params.map_w;
    let r1 = sy.i1 * params.map_w;
    // Lerps written as a + l * (b - a), so a constant map comes out exactly constant (and
    // normalises to exactly 0 instead of rounding noise divided by 1e-12).
    let top = attn[r0 + sx.i0] + sx.lambda * (attn[r0 + sx.i1] - attn[r0 + sx.i0]);
    let bottom = attn[r1 + sx.i0] + sx.lambda * (attn[r1 + sx.i1] - attn[r1 + sx.i0]);
    let v = top + sy.lambda * (bottom - top);

    // The range floor keeps a flat map (hi == lo) finite: it draws with the first entry.
    let t = clamp((v - params.lo) / max(params.hi - params.lo, 1e-12), 0.0, 1.0);
    // Interpolating between entries keeps the colour continuous in t, so rounding in v moves
    // the colour by as little, instead of jumping a whole entry at a boundary.
    let pos = t * 255.0;
    let k = min(u32(pos), 254u);
    let f = pos - f32(k);
    for (var c = 0u; c < 3u; c++) {
        let a = colormap[k * 3u + c];
        let rgb = a + f * (colormap[(k + 1u) * 3u + c] - a);
        let p = photo[c * plane + i];
        out[c * plane + i] = (1.0 - params.alpha) * p + params.alpha * rgb;
    }
}
