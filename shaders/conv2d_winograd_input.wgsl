// conv2d_winograd_input: the input transform of Winograd F(2x2, 3x3), for a 3 x 3 conv with stride
// 1 and padding = dilation = d (1 or 2), one group.
//
// The scheme (Lavin and Gray, "Fast Algorithms for Convolutional Neural Networks", 2015): the
// output splits into tiles of 2 x 2 pixels d apart; a tile needs the 4 x 4 input pixels d apart
// from (oy0 - d, ox0 - d), and per (input channel, output channel) its 4 outputs are
// Y = A^T [(G g G^T) .* (B^T x B)] A, 16 multiplies where the direct sum takes 36. Summed over
// input channels, element e of the 4 x 4 product is a GEMM: M[e] = U[e] V[e], U[e] [c_out, c_in]
// (conv2d_winograd_weight), V[e] [c_in, tiles] (this kernel); matmul runs the 16 as one batch and
// conv2d_winograd_output applies A^T . A and the conv's epilogue.
//
// Tiles: per image tiles_y x tiles_x, tiles_y = ceil(oh / 2d) d (row blocks of 2d output rows, d
// tiles each, interleaved), tile row ty starting at output row (ty / d) 2 d + ty % d; likewise x.
// Pixels outside x read as zeros (the conv's padding; tiles partly past the output's edge too).
// With step 2 the window's pixels are x's rows and columns 2 i (a 3 x 3 / 2 conv with padding =
// dilation = 2 reads only x's even phase, where it is a stride-1 conv with padding = dilation = 1).
//
// Invocations run through (input channel, 4 tiles), tiles fastest: neighbouring lanes read
// neighbouring pixels and write neighbouring V elements. Rows past c_in and columns past the
// tiles are written as zeros: the GEMMs' K and N are padded to multiples of 4 (matmul's vec4
// rows) and the padding must add nothing.
//
//   B^T = [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]]
//
// WIDE (the host sets it for step 1, x as wide as the output and a multiple of 8: ResNet's 56 x 56
// maps): an invocation's 4 tiles lie on one tile row (tiles_x = w / 2, a multiple of 4) and their
// windows on x's rows span 8 + 2 d columns from an aligned vec4, so each window row is read as 4
// aligned vec4s (the driver drops the components no tap uses) instead of 16 single
// pixels: on lavapipe every load, of either width, is a loop over the lanes.
//
// Bindings: 1 x [n, c_in, h, w] as vec4s (x's buffer is padded to whole vec4s; element e is
// component e % 4 of vec4 e / 4); 2 v [16, k_pad, t_pad] (as vec4s).
// Params (one Rust struct for the three Winograd kernels, WinogradParams):

struct Params {
    n: u32,
    c_in: u32,
    h: u32,
    w: u32,
    c_out: u32,
    oh: u32,
    ow: u32,
    dil: u32,     // unread by the transforms: DIL holds it
    tiles_y: u32, // per image (unread: PER_IMAGE holds tiles_y tiles_x)
    tiles_x: u32, // unread: TILES_X holds it
    tiles: u32,   // n tiles_y tiles_x
    t_pad: u32,   // tiles rounded up to a multiple of 4: the GEMMs' N (unread: QUADS = t_pad / 4)
    k_pad: u32,   // c_in rounded up to a multiple of 4: the GEMMs' K
    epilogue: u32, // bit 0 affine, bit 1 residual, bits 2.. activation (conv2d_winograd_output)
    total: u32,   // invocations this launch needs
    step: u32,    // x's rows and columns read: every one (1), or the even ones (2, a 3 x 3 / 2 conv
                  // with dilation 2 as this stride-1 conv over x's even phase)
}

// The divisors, fixed per conv at pipeline creation (the host sets them from the same sizes as
// Params'): lavapipe has no vector integer division and divides by a runtime value one lane at a
// time, by a constant with a multiply and a shift.
override TILES_X: u32 = 1u;   // params.tiles_x
override PER_IMAGE: u32 = 1u; // params.tiles_y x params.tiles_x
override DIL: u32 = 1u;       // params.dil
override QUADS: u32 = 1u;     // params.t_pad / 4
override WIDE: bool = false;  // see the header: step 1, w == ow, w % 8 == 0, d 1 or 2

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> v4: array<vec4<f32>>;

// B^T applied to 4 values per tile (components: 4 tiles side by side).
fn bt(d0: vec4<f32>, d1: vec4<f32>, d2: vec4<f32>, d3: vec4<f32>) -> mat4x4<f32> {
    return mat4x4(d0 - d2, d1 + d2, d2 - d1, d1 - d3);
}

// Input pixel (row r, column c) of the 4 x 4 window of tile t (0 past the tiles, the channels or
// the map: the padding).
fn pixel(t: u32, ci: u32, r: i32, c: i32) -> f32 {
    if (t >= params.tiles || ci >= params.c_in) {
        return 0.0;
    }
    let per_image = PER_IMAGE;
    let ty = t % per_image / TILES_X;
    let tx = t % TILES_X;
    let dil = DIL;
    // Signed: the window starts d before the tile's first output (step rows and columns of x per
    // window row and column).
    let step = i32(params.step);
    let iy = step * (i32((ty / dil) * 2u * dil + ty % dil) + (r - 1) * i32(dil));
    let ix = step * (i32((tx / dil) * 2u * dil + tx % dil) + (c - 1) * i32(dil));
    if (iy < 0 || iy >= i32(params.h) || ix < 0 || ix >= i32(params.w)) {
        return 0.0;
    }
    let e = ((t / per_image * params.c_in + ci) * params.h + u32(iy)) * params.w + u32(ix);
    return x4[e / 4u][e % 4u];
}

// Row r of the windows of tiles t0 .. t0 + 3, column c of each as component k of element c.
fn window_row(t0: u32, ci: u32, r: i32) -> mat4x4<f32> {
    var row = mat4x4<f32>();
    for (var c = 0; c < 4; c++) {
        row[c] = vec4(pixel(t0, ci, r, c), pixel(t0 + 1u, ci, r, c), pixel(t0 + 2u, ci, r, c), pixel(t0 + 3u, ci, r, c));
    }
    return row;
}

// window_row for WIDE: the 4 tiles from t0 (one tile row; their first output column 8 m) at
// window row r, column c of tile j in element j of the result's column c.
fn window_row_wide(t0: u32, ci: u32, r: i32) -> mat4x4<f32> {
    let ty = t0 % PER_IMAGE / TILES_X;
    let m = t0 % TILES_X / 4u; // 4 tiles per 8 output columns
    let iy = i32((ty / DIL) * 2u * DIL + ty % DIL) + (r - 1) * i32(DIL);
    let w = params.w;
    let inside = ci < params.c_in && iy >= 0 && iy < i32(params.h);
    // Row iy of plane (image, ci), clamped inside x where the row is not (its values are dropped).
    let plane = t0 / PER_IMAGE * params.c_in + min(ci, params.c_in - 1u);
    let row = (plane * params.h + u32(clamp(iy, 0, i32(params.h) - 1))) * w;
    // x's columns 8 m - 4 .. 8 m + 11 as vec4s l, a, b, r; l and r are zeros past the map's edges.
    let q = (row + 8u * m) / 4u;
    let zero = vec4(0.0);
    let a = select(zero, x4[q], inside);
    let b = select(zero, x4[q + 1u], inside);
    let l = select(zero, x4[max(q, 1u) - 1u], inside && m > 0u);
    let rr = select(zero, x4[min(q + 2u, arrayLength(&x4) - 1u)], inside && 8u * m + 8u < w);
    // Tile j's window column c is x's column 8 m + o_j + (c - 1) d, o_j = (j / d) 2 d + j % d.
    if (DIL == 1u) {
        return mat4x4(vec4(l.w, a.y, a.w, b.y), vec4(a.x, a.z, b.x, b.z), vec4(a.y, a.w, b.y, b.w),
                      vec4(a.z, b.x, b.z, rr.x));
    }
    return mat4x4(vec4(l.z, l.w, a.z, a.w), vec4(a.x, a.y, b.x, b.y), vec4(a.z, a.w, b.z, b.w),
                  vec4(b.x, b.y, rr.x, rr.y));
}

// Window row r of the tiles from t0, whichever layout the pipeline has.
fn window_row_of(t0: u32, ci: u32, r: i32) -> mat4x4<f32> {
    if (WIDE) {
        return window_row_wide(t0, ci, r);
    }
    return window_row(t0, ci, r);
}

// One invocation per (input channel ci < k_pad, 4 tiles t0 .. t0 + 3 < t_pad): its 16 outputs
// are 16 aligned vec4s of V (t_pad is a multiple of 4), one store each where single tiles took
// four (on lavapipe every access is a loop over the lanes: 64 scalar stores cost about 4x the 16).
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let i = (wid.x + wid.y * nwg.x) * 64u + li;
    if (i >= params.total) {
        return;
    }
    let quads = QUADS;
    let t0 = 4u * (i % quads);
    let ci = i / quads;
    // B^T along each window column: column c of rows r = 0..3, then rows' = B^T rows.
    let w0 = window_row_of(t0, ci, 0);
    let w1 = window_row_of(t0, ci, 1);
    let w2 = window_row_of(t0, ci, 2);
    let w3 = window_row_of(t0, ci, 3);
    // bt(...)[r'] for column c: (B^T d)[r'][c].
    let c0 = bt(w0[0], w1[0], w2[0], w3[0]);
    let c1 = bt(w0[1], w1[1], w2[1], w3[1]);
    let c2 = bt(w0[2], w1[2], w2[2], w3[2]);
    let c3 = bt(w0[3], w1[3], w2[3], w3[3]);
    let plane = params.k_pad * quads;
    let at = ci * quads + t0 / 4u;
    for (var r = 0u; r < 4u; r++) {
        // Then B^T along row r' of B^T d: element (r', j) at e = 4 r' + j.
        let e = bt(c0[r], c1[r], c2[r], c3[r]);
        v4[(4u * r) * plane + at] = e[0];
        v4[(4u * r + 1u) * plane + at] = e[1];
        v4[(4u * r + 2u) * plane + at] = e[2];
        v4[(4u * r + 3u) * plane + at] = e[3];
    }
}
