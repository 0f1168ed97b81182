// conv2d_winograd_weight: the weight transform of both Winograd schemes: U = G g G^T for every
// (output channel, input channel), POINTS x POINTS values, with
//   POINTS 4, F(2x2, 3x3) (the scheme: conv2d_winograd_input):
//     G = [[1, 0, 0], [1/2, 1/2, 1/2], [1/2, -1/2, 1/2], [0, 0, 1]]
//   POINTS 5, the stride-2 scheme (conv2d_winograd_s2_input):
//     G = [[1, 0, 0], [1, 0, 1], [0, 0, 1], [0, 1, 0], [0, 1, 0]]
// stored as the A operand of the POINTS^2 GEMMs: u[e][co][ci], e = POINTS i + j the element of U,
// ci padded to k_pad (a multiple of 4: matmul's vec4 rows) with zeros. One invocation per
// (co, 4 channels ci0 .. ci0 + 3), channels fastest: its results are aligned vec4 stores
// (on lavapipe every access is a loop over the lanes; one channel per invocation, 16 scalar
// stores each, took 16 ms for 512 x 512 channels). A launch that reads only the weights: a plan
// whose weights are constants runs it once (a prepared launch); given other weights it runs with
// the conv.
//
// Bindings: 1 weight [c_out, c_in, 3, 3] (as vec4s); 2 u [POINTS^2, c_out, k_pad] (as vec4s).
// Params is conv2d_winograd_input's (one Rust struct, WinogradParams); this kernel reads c_in,
// c_out, k_pad and total (= c_out k_pad / 4).

// Points per axis of the scheme: 4 (F(2x2, 3x3)) or 5 (stride 2).
override POINTS: u32 = 4u;

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
    epilogue: u32,
    total: u32,
    step: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> weight4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> u4: array<vec4<f32>>;

// Set where c_in % 4 == 0: a (co, 4 channels) block of weights is 36 consecutive floats starting
// at a multiple of 36, so 9 aligned vec4s; else 36 single loads (zeros past c_in).
override ALIGNED: bool = false;

// G applied to 3 values per channel (components: 4 channels side by side); `e` is 0 with 4 points.
struct Five {
    a: vec4<f32>,
    b: vec4<f32>,
    c: vec4<f32>,
    d: vec4<f32>,
    e: vec4<f32>,
}

fn g3(x: vec4<f32>, y: vec4<f32>, z: vec4<f32>) -> Five {
    if (POINTS == 4u) {
        return Five(x, 0.5 * (x + y + z), 0.5 * (x - y + z), z, vec4(0.0));
    }
    return Five(x, x + z, z, y, y);
}

// Weight element i (the buffer is padded to whole vec4s).
fn weight_at(i: u32) -> f32 {
    return weight4[i / 4u][i % 4u];
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let i = (wid.x + wid.y * nwg.x) * 64u + li;
    if (i >= params.total) {
        return;
    }
    let quads = params.k_pad / 4u;
    let ci0 = 4u * (i % quads);
    let co = i / quads;
    // tap[k] = the 4 channels' tap k (k = 3 row + column).
    var tap: array<vec4<f32>, 9>;
    let base = (co * params.c_in + ci0) * 9u;
    if (ALIGNED) {
        // w[j] holds floats 4 j .. 4 j + 3 of the block: channel (4 j + q) / 9, tap (4 j + q) % 9.
        var w: array<vec4<f32>, 9>;
        for (var j = 0u; j < 9u; j++) {
            w[j] = weight4[base / 4u + j];
        }
        for (var k = 0u; k < 9u; k++) {
            tap[k] = vec4(w[k / 4u][k % 4u], w[(k + 9u) / 4u][(k + 9u) % 4u], w[(k + 18u) / 4u][(k + 18u) % 4u],
                          w[(k + 27u) / 4u][(k + 27u) % 4u]);
        }
    } else {
        for (var k = 0u; k < 9u; k++) {
            var v = vec4(0.0);
            for (var q = 0u; q < 4u; q++) {
                if (ci0 + q < params.c_in) {
                    v[q] = weight_at(base + 9u * q + k);
                }
            }
            tap[k] = v;
        }
    }
    // G along each kernel column kx: (G g)[i][kx], rows of G g.
    let c0 = g3(tap[0], tap[3], tap[6]);
    let c1 = g3(tap[1], tap[4], tap[7]);
    let c2 = g3(tap[2], tap[5], tap[8]);
    let rows = array(g3(c0.a, c1.a, c2.a), g3(c0.b, c1.b, c2.b), g3(c0.c, c1.c, c2.c), g3(c0.d, c1.d, c2.d),
                     g3(c0.e, c1.e, c2.e));
    // rows[i] = G along row i of G g: element (i, j) at e = POINTS i + j.
    let plane = params.c_out * quads;
    let at = co * quads + ci0 / 4u;
    for (var r = 0u; r < POINTS; r++) {
        let e = rows[r];
        u4[(POINTS * r) * plane + at] = e.a;
        u4[(POINTS * r + 1u) * plane + at] = e.b;
        u4[(POINTS * r + 2u) * plane + at] = e.c;
        u4[(POINTS * r + 3u) * plane + at] = e.d;
        if (POINTS == 5u) {
            u4[(POINTS * r + 4u) * plane + at] = e.e;
        }
    }
}
