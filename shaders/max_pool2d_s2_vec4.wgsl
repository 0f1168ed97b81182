// max_pool2d_s2_vec4: max_pool2d for the ResNet stem's pool, a 3 x 3 window, stride 2, padding 1,
// over maps whose width W is a multiple of 8 (so OW = W / 2 is a multiple of 4): four
// neighbouring outputs of one row per invocation, out[p, oy, 4 q + j] = max over rows
// 2 oy - 1 .. 2 oy + 1 and columns 8 q + 2 j - 1 .. 8 q + 2 j + 1 of x[p] (padding skipped),
// p = n * C + c indexing the N * C planes.
// Why: max_pool2d loads 9 elements per output, one at a time; here one row of the 4 outputs'
// windows is 9 neighbouring elements, read as the two vec4s at columns 8 q .. 8 q + 7 and the
// last component of the vec4 before them: 9 loads and 1 store per 4 outputs instead of 36 and 4.
// On CPU adapters (lavapipe) every storage access is a loop over the SIMD lanes and a vec4
// costs about what a scalar does.
// Edges: column 8 q - 1 is padding for q = 0 (the column 8 q stands in for it: the same max);
// columns 8 q + 7 <= W - 1 always; row 2 oy lies inside the map (OH = floor((H - 1) / 2) + 1),
// rows 2 oy - 1 and 2 oy + 1 are skipped where they lie outside it.
// The grid is folded into y past 65535 workgroups: linear workgroup = wid.x + wid.y * nwg.x.
// Bindings: x [N, C, H, W] and out [N, C, OH, OW] as vec4s, contiguous f32. The host guarantees
// the window, stride and padding above, 8 divides W, and that every index fits in u32.

struct Params {
    n: u32,   // output element count, N * C * OH * OW
    h: u32,   // input height
    w: u32,   // input width
    oh: u32,  // output height
    ow: u32,  // output width
    kh: u32,  // kernel height (3)
    kw: u32,  // kernel width (3)
    sh: u32,  // stride along y (2)
    sw: u32,  // stride along x (2)
    ph: u32,  // padding along y (1)
    pw: u32,  // padding along x (1)
    _pad0: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> out: array<vec4<f32>>;

// The maxima of input row `row` (a vec4 index of its first element) over the 4 outputs' columns.
fn row_max(row: u32, q: u32) -> vec4<f32> {
    let a = x[row + 2u * q];
    let b = x[row + 2u * q + 1u];
    // Column 8 q - 1: the last component of the vec4 before a; for q = 0 it is padding, and a.x
    // (already in the window) stands in. The index is clamped so the load stays inside x.
    let before = select(a.x, x[max(row + 2u * q, 1u) - 1u].w, q > 0u);
    return vec4(max(before, max(a.x, a.y)), max(a.y, max(a.z, a.w)), max(a.w, max(b.x, b.y)),
                max(b.y, max(b.z, b.w)));
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let i = (wid.x + wid.y * nwg.x) * 256u + lid;  // (p * OH + oy) * OW / 4 + q
    let quads = params.ow / 4u;
    if (i >= params.n / 4u) {
        return;
    }
    let q = i % quads;
    let oy = (i / quads) % params.oh;
    let p = i / (quads * params.oh);
    let w4 = params.w / 4u;
    let plane = p * params.h * w4;
    let y = 2u * oy;
    var m = row_max(plane + y * w4, q);
    if (y >= 1u) {
        m = max(m, row_max(plane + (y - 1u) * w4, q));
    }
    if (y + 1u < params.h) {
        m = max(m, row_max(plane + (y + 1u) * w4, q));
    }
    out[i] = m;
}
