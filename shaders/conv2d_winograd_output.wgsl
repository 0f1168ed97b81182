// conv2d_winograd_output: the output transform of both Winograd schemes fused with the conv's
// epilogue: for each (output channel, tile) the 2 x 2 outputs Y = A^T M A from the GEMM results
// M[e][co][t] (POINTS^2 of them), then y = act(scale[co] Y + shift[co] + residual), stored where
// inside the output (edge tiles reach past it).
//
//   POINTS 4, F(2x2, 3x3) (the scheme: conv2d_winograd_input):   A^T = [[1, 1, 1, 0], [0, 1, -1, -1]]
//   POINTS 5, the stride-2 scheme (conv2d_winograd_s2_input):    A^T = [[1, 1, 0, 1, 0], [0, 1, 1, 0, 1]]
//
// One invocation per (co, 4 tiles t0 .. t0 + 3 of the t_pad columns), tiles fastest: it reads its
// POINTS^2 elements of M as aligned vec4s (t_pad is a multiple of 4) and transforms the 4 tiles as
// the components of vec4s (on lavapipe every access is a loop over the lanes: 64 scalar loads cost
// about 4x the 16); neighbouring lanes read neighbouring vec4s.
//
// TRANSPOSED (the host sets it where few tiles would fill a GEMM tile's columns poorly:
// choose::winograd_transposed) reads M^T [POINTS^2, t_pad, c_out] instead, the GEMMs' output when
// they ran as M[e]^T = V[e]^T U[e]^T (tiles as rows): one invocation per (tile, 4 channels co ..
// co + 3), channels fastest, transforming the 4 channels as the components (c_out is a multiple of
// 4); element (e, i) of an invocation is vec4 e c_out t_pad / 4 + i of M either way.
//
// WIDE (the host sets it where the output is a multiple of 8 wide and not TRANSPOSED: ResNet's
// 56 x 56 outputs): an invocation's 4 tiles lie on one tile row (tiles_x = ow / 2, a
// multiple of 4) and their outputs fill 8 columns from an aligned vec4 on each of 2 rows, stored
// (and their residual read) as 4 vec4s instead of 16 single elements (on lavapipe each access is
// a loop over the lanes).
//
// Bindings: 1 m [POINTS^2, c_out, t_pad] (as vec4s; [POINTS^2, t_pad, c_out] where TRANSPOSED);
// 2 affine [2, c_out] (bound to m when unused);
// 3 residual [n, c_out, oh, ow] (bound to m when unused); 4 out [n, c_out, oh, ow]; residual and out
// as vec4s (every tensor buffer is padded to whole vec4s), element i their component i % 4 of
// vec4 i / 4.
// Params: conv2d_winograd_input's (one Rust struct, WinogradParams); the stride-2 scheme runs with
// dilation 1, so both place tile (ty, tx) the same way.

// Points per axis of the scheme: 4 (F(2x2, 3x3)) or 5 (stride 2).
override POINTS: u32 = 4u;
// The epilogue (Params' bits), fixed at pipeline creation: lavapipe runs both sides of a branch it
// cannot prove uniform, and unused epilogue code would cost every store (as in matmul_subgroup).
override EPILOGUE: u32 = 0u;
// M is the transposed GEMMs' output [POINTS^2, t_pad, c_out] (see the header).
override TRANSPOSED: bool = false;
// The divisors, fixed per conv at pipeline creation (as in conv2d_winograd_input: lavapipe divides
// by a runtime value one lane at a time, by a constant with a multiply and a shift).
override TILES_X: u32 = 1u;   // params.tiles_x
override PER_IMAGE: u32 = 1u; // params.tiles_y x params.tiles_x
override DIL: u32 = 1u;       // params.dil
override QUADS: u32 = 1u;     // params.t_pad / 4
override CHANNEL_QUADS: u32 = 1u; // params.c_out / 4 (TRANSPOSED)
override WIDE: bool = false;  // see the header: ow % 8 == 0, not TRANSPOSED

struct Params {
    n: u32,
    c_in: u32,
    h: u32,
    w: u32,
    c_out: u32,
    oh: u32,
    ow: u32,
    dil: u32,      // unread here, like tiles_y, tiles_x and t_pad: DIL, PER_IMAGE, TILES_X, QUADS
    tiles_y: u32,
    tiles_x: u32,
    tiles: u32,
    t_pad: u32,
    k_pad: u32,
    epilogue: u32, // unread here: EPILOGUE holds it
    total: u32,    // c_out t_pad / 4
    step: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> m4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> affine: array<f32>;
@group(0) @binding(3) var<storage, read> residual: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> out: array<vec4<f32>>;

// The epilogue of one output.
fn finish(acc: f32, scale: f32, shift: f32, idx: u32) -> f32 {
    var v = fma(acc, scale, shift);
    if ((EPILOGUE & 2u) != 0u) {
        v += residual[idx / 4u][idx % 4u];
    }
    return activate(vec4(v)).x;
}

// finish for the 4 outputs of vec4 q of out (WIDE).
fn finish4(acc: vec4<f32>, scale: f32, shift: f32, q: u32) -> vec4<f32> {
    var v = fma(acc, vec4(scale), vec4(shift));
    if ((EPILOGUE & 2u) != 0u) {
        v += residual[q];
    }
    return activate(v);
}

// The epilogue's activation.
fn activate(v: vec4<f32>) -> vec4<f32> {
    let act = EPILOGUE >> 2u;
    if (act == 1u) {
        return max(v, vec4(0.0));
    } else if (act == 2u) {
        // exp overflows f32 past 88: clamping keeps the sigmoid finite and exact to f32.
        return 1.0 / (1.0 + exp(-clamp(v, vec4(-88.0), vec4(88.0))));
    }
    return v;
}

// Stores the 4 tiles from t0 (one tile row, first output column 8 m; WIDE) of channel co: output
// (a, b) of tile j is y_ab[j], at column 8 m + o_j + b d of row oy0 + a d, o_j = (j / d) 2 d + j % d.
fn store_wide(t0: u32, co: u32, scale: f32, shift: f32, y00: vec4<f32>, y01: vec4<f32>, y10: vec4<f32>,
              y11: vec4<f32>) {
    let o = tile_origin(t0);
    let row = ((t0 / PER_IMAGE * params.c_out + co) * params.oh + o.y) * params.ow + o.x;
    let q = row / 4u;
    let below = q + DIL * params.ow / 4u;
    // d = 1: tile j's outputs are columns 2 j and 2 j + 1; d = 2: tiles 0, 1 take columns 0 .. 3
    // interleaved, tiles 2, 3 columns 4 .. 7.
    var top: array<vec4<f32>, 2>;
    var bottom: array<vec4<f32>, 2>;
    if (DIL == 1u) {
        top = array(vec4(y00.x, y01.x, y00.y, y01.y), vec4(y00.z, y01.z, y00.w, y01.w));
        bottom = array(vec4(y10.x, y11.x, y10.y, y11.y), vec4(y10.z, y11.z, y10.w, y11.w));
    } else {
        top = array(vec4(y00.x, y00.y, y01.x, y01.y), vec4(y00.z, y00.w, y01.z, y01.w));
        bottom = array(vec4(y10.x, y10.y, y11.x, y11.y), vec4(y10.z, y10.w, y11.z, y11.w));
    }
    if (o.y < params.oh) {
        out[q] = finish4(top[0], scale, shift, q);
        out[q + 1u] = finish4(top[1], scale, shift, q + 1u);
    }
    if (o.y + DIL < params.oh) {
        out[below] = finish4(bottom[0], scale, shift, below);
        out[below + 1u] = finish4(bottom[1], scale, shift, below + 1u);
    }
}

// Output element idx alone (a component of vec4 idx / 4).
fn store1(idx: u32, v: f32) {
    out[idx / 4u][idx % 4u] = v;
}

// Output tile t's first output: .x its column, .y its row (with dilation 2 a tile's first output
// can lie past the map too: a 1 x 1 map has 2 x 2 tiles, 3 of them wholly outside).
fn tile_origin(t: u32) -> vec2<u32> {
    let ty = t % PER_IMAGE / TILES_X;
    let tx = t % TILES_X;
    let dil = DIL;
    return vec2((tx / dil) * 2u * dil + tx % dil, (ty / dil) * 2u * dil + ty % dil);
}

// TRANSPOSED: the 2 x 2 outputs y_ab of tile t for channels co .. co + 3 (the components), through
// the epilogue, stored where inside the map.
fn store_channels(t: u32, co: u32, y00: vec4<f32>, y01: vec4<f32>, y10: vec4<f32>, y11: vec4<f32>) {
    let o = tile_origin(t);
    if (t >= params.tiles || o.y >= params.oh || o.x >= params.ow) {
        return;
    }
    var scale = vec4(1.0);
    var shift = vec4(0.0);
    if ((EPILOGUE & 1u) != 0u) {
        let c = params.c_out;
        scale = vec4(affine[co], affine[co + 1u], affine[co + 2u], affine[co + 3u]);
        shift = vec4(affine[c + co], affine[c + co + 1u], affine[c + co + 2u], affine[c + co + 3u]);
    }
    let dil = DIL;
    let plane = params.oh * params.ow;
    let first = ((t / PER_IMAGE * params.c_out + co) * params.oh + o.y) * params.ow + o.x;
    let down = o.y + dil < params.oh;
    let right = o.x + dil < params.ow;
    for (var k = 0u; k < 4u; k++) {
        let idx = first + k * plane;
        store1(idx, finish(y00[k], scale[k], shift[k], idx));
        if (right) {
            store1(idx + dil, finish(y01[k], scale[k], shift[k], idx + dil));
        }
        if (down) {
            let below = idx + dil * params.ow;
            store1(below, finish(y10[k], scale[k], shift[k], below));
            if (right) {
                store1(below + dil, finish(y11[k], scale[k], shift[k], below + dil));
            }
        }
    }
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let i = (wid.x + wid.y * nwg.x) * 64u + li;
    if (i >= params.total) {
        return;
    }
    let quads = QUADS;
    var t0 = 4u * (i % quads);
    var co = i / quads;
    var at0 = co * quads + t0 / 4u;
    if (TRANSPOSED) {
        let channel_quads = CHANNEL_QUADS;
        t0 = i / channel_quads;
        co = 4u * (i % channel_quads);
        at0 = i;
    }
    let plane = params.c_out * quads;
    // M's rows transformed along j, 4 tiles per vec4: s0[r] = (M A)[r][0], s1[r] = (M A)[r][1].
    var s0: array<vec4<f32>, 5>;
    var s1: array<vec4<f32>, 5>;
    for (var r = 0u; r < POINTS; r++) {
        let e = POINTS * r * plane + at0;
        let m0 = m4[e];
        let m1 = m4[e + plane];
        let m2 = m4[e + 2u * plane];
        let m3 = m4[e + 3u * plane];
        if (POINTS == 4u) {
            s0[r] = m0 + m1 + m2;
            s1[r] = m1 - m2 - m3;
        } else {
            s0[r] = m0 + m1 + m3;
            s1[r] = m1 + m2 + m4[e + 4u * plane];
        }
    }
    // A^T along r: y_ab = output (a, b) of the 4 tiles.
    var y00 = s0[0] + s0[1] + s0[2];
    var y01 = s1[0] + s1[1] + s1[2];
    var y10 = s0[1] - s0[2] - s0[3];
    var y11 = s1[1] - s1[2] - s1[3];
    if (POINTS == 5u) {
        y00 = s0[0] + s0[1] + s0[3];
        y01 = s1[0] + s1[1] + s1[3];
        y10 = s0[1] + s0[2] + s0[4];
        y11 = s1[1] + s1[2] + s1[4];
    }

    if (TRANSPOSED) {
        store_channels(t0, co, y00, y01, y10, y11);
        return;
    }
    var scale = 1.0;
    var shift = 0.0;
    if ((EPILOGUE & 1u) != 0u) {
        scale = affine[co];
        shift = affine[params.c_out + co];
    }
    if (WIDE) {
        store_wide(t0, co, scale, shift, y00, y01, y10, y11);
        return;
    }
    let per_image = PER_IMAGE;
    let dil = DIL;
    for (var k = 0u; k < 4u; k++) {
        let t = t0 + k;
        if (t >= params.tiles) {
            break;
        }
        let o = tile_origin(t);
        if (o.y >= params.oh || o.x >= params.ow) {
            continue;
        }
        let oy = o.y;
        let ox = o.x;
        let idx = ((t / per_image * params.c_out + co) * params.oh + oy) * params.ow + ox;
        // Outputs past the map's bottom or right edge are not stored (edge tiles).
        let down = oy + dil < params.oh;
        let right = ox + dil < params.ow;
        store1(idx, finish(y00[k], scale, shift, idx));
        if (right) {
            store1(idx + dil, finish(y01[k], scale, shift, idx + dil));
        }
        if (down) {
            let below = idx + dil * params.ow;
            store1(below, finish(y10[k], scale, shift, below));
            if (right) {
                store1(below + dil, finish(y11[k], scale, shift, below + dil));
            }
        }
    }
}
