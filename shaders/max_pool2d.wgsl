// max_pool2d: out[p, oy, ox] = max of x[p, y, x'] over the kernel window of
// output (oy, ox), where p = n * C + c indexes the N * C planes. The window in
// padded coordinates is rows [oy * sh, oy * sh + kh) and columns
// [ox * sw, ox * sw + kw); padding is -inf, so it is simply skipped.
// One invocation per output element; neighbouring invocations take
// neighbouring ox, so their loads are (strided) neighbours too. The grid is
// folded into y past 65535 workgroups: linear workgroup = wid.x + wid.y * nwg.x.
// Bindings: x [N, C, H, W] and out [N, C, OH, OW], contiguous f32.
// The host guarantees padding <= kernel / 2 and the floor output rule, so
// every window holds at least one real element, and that every index below
// (including h + ph and oy * sh + kh) fits in u32.

struct Params {
    n: u32,   // output element count, N * C * OH * OW
    h: u32,   // input height
    w: u32,   // input width
    oh: u32,  // output height
    ow: u32,  // output width
    kh: u32,  // kernel height
    kw: u32,  // kernel width
    sh: u32,  // stride along y
    sw: u32,  // stride along x
    ph: u32,  // padding along y (each side)
    pw: u32,  // padding along x (each side)
    _pad0: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let i = (wid.x + wid.y * nwg.x) * 256u + lid;
    if (i >= params.n) {
        return;
    }
    // i = (p * OH + oy) * OW + ox.
    let ox = i % params.ow;
    let oy = (i / params.ow) % params.oh;
    let p = i / (params.ow * params.oh);

    // The window clipped to the real rows and columns, still in padded
    // coordinates (max/min before subtracting the padding keeps u32 from
    // wrapping); subtracting ph / pw gives input coordinates.
    let y0 = max(oy * params.sh, params.ph) - params.ph;
    let y1 = min(oy * params.sh + params.kh, params.h + params.ph) - params.ph;
    let x0 = max(ox * params.sw, params.pw) - params.pw;
    let x1 = min(ox * params.sw + params.kw, params.w + params.pw) - params.pw;

    let plane = p * params.h * params.w;
    // Start from a real element rather than -inf (WGSL may assume no Inf).
    var m = x[plane + y0 * params.w + x0];
    for (var y = y0; y < y1; y++) {
        let row = plane + y * params.w;
        for (var xx = x0; xx < x1; xx++) {
            m = max(m, x[row + xx]);
        }
    }
    out[i] = m;
}
