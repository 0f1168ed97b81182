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
//
// One invocation per (input channel ci < k_pad, tile t < t_pad), t fastest: neighbouring lanes
// read neighbouring pixels and write neighbouring V elements. Rows past c_in and columns past
// the tiles are written as zeros: the GEMMs' K and N are padded to multiples of 4 (matmul's vec4
// rows) and the padding must add nothing.
//
//   B^T = [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]]
//
// Bindings: 1 x [n, c_in, h, w]; 2 v [16, k_pad, t_pad].
// Params (one Rust struct for the three Winograd kernels, WinogradParams):

struct Params {
    n: u32,
    c_in: u32,
    h: u32,
    w: u32,
    c_out: u32,
    oh: u32,
    ow: u32,
    dil: u32,
    tiles_y: u32, // per image
    tiles_x: u32,
    tiles: u32,   // n tiles_y tiles_x
    t_pad: u32,   // tiles rounded up to a multiple of 4: the GEMMs' N
    k_pad: u32,   // c_in rounded up to a multiple of 4: the GEMMs' K
    epilogue: u32, // bit 0 affine, bit 1 residual, bits 2.. activation (conv2d_winograd_output)
    total: u32,   // invocations this launch needs
    _pad: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> v: array<f32>;

// B^T applied to a column of 4 (the same 1-D transform serves rows and columns).
fn bt(d: vec4<f32>) -> vec4<f32> {
    return vec4(d.x - d.z, d.y + d.z, d.z - d.y, d.y - d.w);
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let i = (wid.x + wid.y * nwg.x) * 64u + li;
    if (i >= params.total) {
        return;
    }
    let t = i % params.t_pad;
    let ci = i / params.t_pad;
    // d[r] = input row r of the tile (4 pixels d apart), zeros outside.
    var d = mat4x4<f32>();
    if (t < params.tiles && ci < params.c_in) {
        let per_image = params.tiles_y * params.tiles_x;
        let img = t / per_image;
        let ty = t % per_image / params.tiles_x;
        let tx = t % params.tiles_x;
        let dil = params.dil;
        // Signed: the tile's first input row and column sit d before its first output.
        let iy0 = i32((ty / dil) * 2u * dil + ty % dil) - i32(dil);
        let ix0 = i32((tx / dil) * 2u * dil + tx % dil) - i32(dil);
        let base = (img * params.c_in + ci) * params.h * params.w;
        for (var r = 0; r < 4; r++) {
            let iy = iy0 + r * i32(dil);
            if (iy < 0 || iy >= i32(params.h)) {
                continue;
            }
            var row = vec4(0.0);
            for (var c = 0; c < 4; c++) {
                let ix = ix0 + c * i32(dil);
                if (ix >= 0 && ix < i32(params.w)) {
                    row[c] = x[base + u32(iy) * params.w + u32(ix)];
                }
            }
            d[r] = row;
        }
    }
    // Columns of d hold the tile's input columns: B^T along them, then along the rows.
    let cols = transpose(d);
    let tcols = mat4x4(bt(cols[0]), bt(cols[1]), bt(cols[2]), bt(cols[3])); // [column][row']
    let rows = transpose(tcols); // [row'][column]
    let plane = params.k_pad * params.t_pad;
    let at = ci * params.t_pad + t;
    for (var r = 0u; r < 4u; r++) {
        let e = bt(rows[r]);
        v[(4u * r) * plane + at] = e.x;
        v[(4u * r + 1u) * plane + at] = e.y;
        v[(4u * r + 2u) * plane + at] = e.z;
        v[(4u * r + 3u) * plane + at] = e.w;
    }
}
