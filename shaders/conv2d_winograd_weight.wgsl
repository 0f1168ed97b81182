// conv2d_winograd_weight: the weight transform of Winograd F(2x2, 3x3) (see conv2d_winograd_input
// for the whole scheme): U = G g G^T for every (output channel, input channel), with
//   G = [[1, 0, 0], [1/2, 1/2, 1/2], [1/2, -1/2, 1/2], [0, 0, 1]],
// stored as the A operand of the 16 GEMMs: u[e][co][ci], e = 4 i + j the element of the 4 x 4 U,
// ci padded to k_pad (a multiple of 4: matmul's vec4 rows) with zeros. The weights are a runtime
// input (a network's weights are bound, not baked), so this runs on every launch; its work,
// 16 c_out c_in values, is small beside the GEMMs' 16 c_out c_in tiles multiply-adds.
//
// Bindings: 1 weight [c_out, c_in, 3, 3]; 2 u [16, c_out, k_pad].
// Params is conv2d_winograd_input's (one Rust struct, WinogradParams); this kernel reads c_in,
// c_out, k_pad and total (= c_out k_pad, one invocation each).

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
    _pad: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> weight: array<f32>;
@group(0) @binding(2) var<storage, read_write> u: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let i = (wid.x + wid.y * nwg.x) * 64u + li;
    if (i >= params.total) {
        return;
    }
    let ci = i % params.k_pad;
    let co = i / params.k_pad;
    // g's rows as vec3s (zero for the padding channels).
    var g0 = vec3(0.0);
    var g1 = vec3(0.0);
    var g2 = vec3(0.0);
    if (ci < params.c_in) {
        let b = (co * params.c_in + ci) * 9u;
        g0 = vec3(weight[b], weight[b + 1u], weight[b + 2u]);
        g1 = vec3(weight[b + 3u], weight[b + 4u], weight[b + 5u]);
        g2 = vec3(weight[b + 6u], weight[b + 7u], weight[b + 8u]);
    }
    // G g: 4 rows of 3.
    let r0 = g0;
    let r1 = 0.5 * (g0 + g1 + g2);
    let r2 = 0.5 * (g0 - g1 + g2);
    let r3 = g2;
    let plane = params.c_out * params.k_pad;
    let at = co * params.k_pad + ci;
    let rows = array(r0, r1, r2, r3);
    for (var r = 0u; r < 4u; r++) {
        let v = rows[r];
        // (G g) G^T: the same transform along the row.
        u[(4u * r) * plane + at] = v.x;
        u[(4u * r + 1u) * plane + at] = 0.5 * (v.x + v.y + v.z);
        u[(4u * r + 2u) * plane + at] = 0.5 * (v.x - v.y + v.z);
        u[(4u * r + 3u) * plane + at] = v.z;
    }
}
