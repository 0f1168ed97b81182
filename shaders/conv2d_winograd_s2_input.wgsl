// conv2d_winograd_s2_input: the input transform of the stride-2 Winograd scheme, for a 3 x 3 conv
// with stride 2, padding 1, dilation 1, one group.
//
// The scheme: along one axis, output o of a 3-tap stride-2 conv is w0 p[2o] + w1 p[2o+1] +
// w2 p[2o+2] (p: the padded input), a 2-tap stride-1 conv over the even phase e[j] = p[2j] plus a
// 1-tap one over the odd phase d[j] = p[2j+1]. Two outputs o, o + 1 read p[2o .. 2o + 4]; Winograd
// F(2, 2) takes the even part in 3 multiplies, the odd part takes 2: 5 where the direct sum takes 6,
// 25 per 2 x 2 output tile where it takes 36 (1.44x fewer). With the window p0 .. p4:
//   B^T p = (p0 - p2, p2, p4 - p2, p1, p3)        (the input, this kernel)
//   G w   = (w0, w0 + w2, w2, w1, w1)             (the weights, conv2d_winograd_weight with POINTS 5)
//   A^T m = (m0 + m1 + m3, m1 + m2 + m4)          (the output, conv2d_winograd_output with POINTS 5)
// (y0 = w0 (p0 - p2) + (w0 + w2) p2 + w1 p1, y1 = (w0 + w2) p2 + w2 (p4 - p2) + w1 p3: exact, no
// fractions.) In 2-D the 5 x 5 window of a tile is transformed along both axes, V = B^T X B; summed
// over input channels, element e = 5 i + j of the 5 x 5 product is a GEMM M[e] = U[e] V[e], run by
// matmul as one batch of 25, as conv2d_winograd_input's F(2x2, 3x3) does with 16.
//
// Tiles: per image tiles_y x tiles_x = ceil(oh / 2) x ceil(ow / 2) tiles of 2 x 2 outputs; tile
// (ty, tx) reads x's rows 4 ty - 1 .. 4 ty + 3 and columns 4 tx - 1 .. 4 tx + 3 (zeros outside x:
// the padding, and tiles partly past the output's edge). Invocations, V's layout and its zero
// padding (rows past c_in, columns past the tiles) as conv2d_winograd_input.
//
// Bindings: 1 x [n, c_in, h, w]; 2 v [25, k_pad, t_pad] (as vec4s).
// Params: conv2d_winograd_input's (one Rust struct, WinogradParams; dil and step are 1 here).

struct Params {
    n: u32,
    c_in: u32,
    h: u32,
    w: u32,
    c_out: u32,
    oh: u32,
    ow: u32,
    dil: u32,
    tiles_y: u32, // unread here, like tiles_x and t_pad: PER_IMAGE, TILES_X, QUADS hold them
    tiles_x: u32,
    tiles: u32,
    t_pad: u32,
    k_pad: u32,
    epilogue: u32,
    total: u32,   // k_pad t_pad / 4
    step: u32,
}

// The divisors, fixed per conv at pipeline creation (as in conv2d_winograd_input: lavapipe divides
// by a runtime value one lane at a time, by a constant with a multiply and a shift).
override TILES_X: u32 = 1u;   // params.tiles_x
override PER_IMAGE: u32 = 1u; // params.tiles_y x params.tiles_x
override QUADS: u32 = 1u;     // params.t_pad / 4

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> v4: array<vec4<f32>>;

// B^T applied to 5 values per tile (components: 4 tiles side by side).
struct Five {
    a: vec4<f32>,
    b: vec4<f32>,
    c: vec4<f32>,
    d: vec4<f32>,
    e: vec4<f32>,
}

fn bt(p0: vec4<f32>, p1: vec4<f32>, p2: vec4<f32>, p3: vec4<f32>, p4: vec4<f32>) -> Five {
    return Five(p0 - p2, p2, p4 - p2, p1, p3);
}

// Input pixel (row r, column c) of the 5 x 5 window of tile t (0 past the tiles, the channels or
// the map: the padding).
fn pixel(t: u32, ci: u32, r: i32, c: i32) -> f32 {
    if (t >= params.tiles || ci >= params.c_in) {
        return 0.0;
    }
    let per_image = PER_IMAGE;
    let ty = t % per_image / TILES_X;
    let tx = t % TILES_X;
    // Signed: the window starts one row and column before 2 x the tile's first output.
    let iy = i32(4u * ty) - 1 + r;
    let ix = i32(4u * tx) - 1 + c;
    if (iy < 0 || iy >= i32(params.h) || ix < 0 || ix >= i32(params.w)) {
        return 0.0;
    }
    return x[((t / per_image * params.c_in + ci) * params.h + u32(iy)) * params.w + u32(ix)];
}

// Column c of window row r of tiles t0 .. t0 + 3 (components).
fn quad(t0: u32, ci: u32, r: i32, c: i32) -> vec4<f32> {
    return vec4(pixel(t0, ci, r, c), pixel(t0 + 1u, ci, r, c), pixel(t0 + 2u, ci, r, c), pixel(t0 + 3u, ci, r, c));
}

// One invocation per (input channel ci < k_pad, 4 tiles t0 .. t0 + 3 < t_pad): its 25 outputs are
// 25 aligned vec4s of V (t_pad is a multiple of 4).
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
    // B^T along each window row first: rows[r] holds (X B)[r][0..5].
    var rows: array<Five, 5>;
    for (var r = 0; r < 5; r++) {
        rows[r] = bt(quad(t0, ci, r, 0), quad(t0, ci, r, 1), quad(t0, ci, r, 2), quad(t0, ci, r, 3),
                     quad(t0, ci, r, 4));
    }
    // Then B^T along each column j of X B: element (i', j) at e = 5 i' + j.
    let plane = params.k_pad * quads;
    let at = ci * quads + t0 / 4u;
    let cols = array(bt(rows[0].a, rows[1].a, rows[2].a, rows[3].a, rows[4].a),
                     bt(rows[0].b, rows[1].b, rows[2].b, rows[3].b, rows[4].b),
                     bt(rows[0].c, rows[1].c, rows[2].c, rows[3].c, rows[4].c),
                     bt(rows[0].d, rows[1].d, rows[2].d, rows[3].d, rows[4].d),
                     bt(rows[0].e, rows[1].e, rows[2].e, rows[3].e, rows[4].e));
    for (var j = 0u; j < 5u; j++) {
        let col = cols[j];
        v4[j * plane + at] = col.a;
        v4[(5u + j) * plane + at] = col.b;
        v4[(10u + j) * plane + at] = col.c;
        v4[(15u + j) * plane + at] = col.d;
        v4[(20u + j) * plane + at] = col.e;
    }
}
