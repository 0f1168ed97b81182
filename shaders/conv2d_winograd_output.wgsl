// conv2d_winograd_output: the output transform of Winograd F(2x2, 3x3) (the scheme: see
// conv2d_winograd_input) fused with the conv's epilogue: for each (output channel, tile) the
// 2 x 2 outputs Y = A^T M A from the 16 GEMM results M[e][co][t], then
// y = act(scale[co] Y + shift[co] + residual), stored where inside the output (edge tiles reach
// past it).
//
//   A^T = [[1, 1, 1, 0], [0, 1, -1, -1]]
//
// One invocation per (co, tile t < tiles), t fastest: neighbouring lanes read neighbouring M
// elements.
//
// Bindings: 1 m [16, c_out, t_pad]; 2 affine [2, c_out] (bound to m when unused); 3 residual
// [n, c_out, oh, ow] (bound to m when unused); 4 out [n, c_out, oh, ow].
// Params: conv2d_winograd_input's (one Rust struct, WinogradParams).

// The epilogue (Params' bits), fixed at pipeline creation: lavapipe runs both sides of a branch it
// cannot prove uniform, and unused epilogue code would cost every store (as in matmul_subgroup).
override EPILOGUE: u32 = 0u;

struct Params {
    n: u32,
    c_in: u32,
    h: u32,
    w: u32,
    c_out: u32,
    oh: u32,
    ow: u32,
    dil: u32,
    tiles_y: u32,
    tiles_x: u32,
    tiles: u32,
    t_pad: u32,
    k_pad: u32,
    epilogue: u32, // unread here: EPILOGUE holds it
    total: u32,    // c_out tiles
    _pad: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> m: array<f32>;
@group(0) @binding(2) var<storage, read> affine: array<f32>;
@group(0) @binding(3) var<storage, read> residual: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

// A^T applied to 4 values.
fn at(v: vec4<f32>) -> vec2<f32> {
    return vec2(v.x + v.y + v.z, v.y - v.z - v.w);
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let i = (wid.x + wid.y * nwg.x) * 64u + li;
    if (i >= params.total) {
        return;
    }
    let t = i % params.tiles;
    let co = i / params.tiles;
    let plane = params.c_out * params.t_pad;
    let at0 = co * params.t_pad + t;
    // M's rows transformed along j: s[r] = (M[r] A)[0, 1].
    var s: array<vec2<f32>, 4>;
    for (var r = 0u; r < 4u; r++) {
        let e = 4u * r * plane + at0;
        s[r] = at(vec4(m[e], m[e + plane], m[e + 2u * plane], m[e + 3u * plane]));
    }
    // A^T along r: row 0 = s0 + s1 + s2, row 1 = s1 - s2 - s3.
    let y0 = s[0] + s[1] + s[2];
    let y1 = s[1] - s[2] - s[3];

    var scale = 1.0;
    var shift = 0.0;
    if ((EPILOGUE & 1u) != 0u) {
        scale = affine[co];
        shift = affine[params.c_out + co];
    }
    let per_image = params.tiles_y * params.tiles_x;
    let img = t / per_image;
    let ty = t % per_image / params.tiles_x;
    let tx = t % params.tiles_x;
    let dil = params.dil;
    let oy0 = (ty / dil) * 2u * dil + ty % dil;
    let ox0 = (tx / dil) * 2u * dil + tx % dil;
    let base = (img * params.c_out + co) * params.oh * params.ow;
    let ys = array(y0, y1);
    for (var a = 0u; a < 2u; a++) {
        let oy = oy0 + a * dil;
        if (oy >= params.oh) {
            break;
        }
        for (var b = 0u; b < 2u; b++) {
            let ox = ox0 + b * dil;
            if (ox >= params.ow) {
                break;
            }
            let idx = base + oy * params.ow + ox;
            var v = fma(ys[a][b], scale, shift);
            if ((EPILOGUE & 2u) != 0u) {
                v += residual[idx];
            }
            let act = EPILOGUE >> 2u;
            if (act == 1u) {
                v = max(v, 0.0);
            } else if (act == 2u) {
                // exp overflows f32 past 88: clamping keeps the sigmoid finite and exact to f32.
                v = 1.0 / (1.0 + exp(-clamp(v, -88.0, 88.0)));
            }
            out[idx] = v;
        }
    }
}
