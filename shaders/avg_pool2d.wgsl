// avg_pool2d: out[p, oy, ox] = (sum of x[p, y, x'] over the real elements of
// the window of output (oy, ox)) / divisor, where p = n * C + c indexes the
// N * C planes, as PyTorch's nn.AvgPool2d (cpu_avg_pool in
// aten/src/ATen/native/cpu/AvgPoolKernel.cpp). The window in padded
// coordinates is rows [oy * sh, oy * sh + kh) and columns [ox * sw, ox * sw + kw);
// padding is zero, so it adds nothing and is skipped.
// One invocation per output element; neighbouring invocations take
// neighbouring ox, so their loads are (strided) neighbours too. The grid is
// folded into y past 65535 workgroups: linear workgroup = wid.x + wid.y * nwg.x.
// Bindings: x [N, C, H, W] and out [N, C, OH, OW], contiguous f32.
// The host guarantees padding <= kernel / 2 and PyTorch's output rule (with
// ceil_mode the last window starts inside the input or the top padding), so
// every window holds at least one real element, and that every index below
// (below h + 2 * ph + kh) fits in u32.

struct Params {
    n: u32,                  // output element count, N * C * OH * OW
    h: u32,                  // input height
    w: u32,                  // input width
    oh: u32,                 // output height
    ow: u32,                 // output width
    kh: u32,                 // kernel height
    kw: u32,                 // kernel width
    sh: u32,                 // stride along y
    sw: u32,                 // stride along x
    ph: u32,                 // padding along y (each side)
    pw: u32,                 // padding along x (each side)
    count_include_pad: u32,  // 1: divide by the padded window, 0: by the real elements
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

    // The window clipped to the padded input, in padded coordinates: a
    // ceil_mode window may hang past the bottom / right padding.
    let ys = oy * params.sh;
    let ye = min(ys + params.kh, params.h + 2u * params.ph);
    let xs = ox * params.sw;
    let xe = min(xs + params.kw, params.w + 2u * params.pw);
    // Then clipped to the real rows and columns (max/min before subtracting
    // the padding keeps u32 from wrapping); subtracting ph / pw gives input
    // coordinates.
    let y0 = max(ys, params.ph) - params.ph;
    let y1 = min(ye, params.h + params.ph) - params.ph;
    let x0 = max(xs, params.pw) - params.pw;
    let x1 = min(xe, params.w + params.pw) - params.pw;

    // PyTorch's divisor: count_include_pad counts the padding the window holds
    // (its size clipped to the padded input, before clipping to the real one),
    // otherwise only the real elements. Each factor is converted on its own:
    // below 2^24 they are exact, and the product rounds once, as PyTorch's
    // int64 count does when it meets the float sum.
    var divisor = f32(y1 - y0) * f32(x1 - x0);
    if (params.count_include_pad != 0u) {
        divisor = f32(ye - ys) * f32(xe - xs);
    }

    // A plain f32 sum, as PyTorch's float kernel: windows are small.
    let plane = p * params.h * params.w;
    var sum = 0.0;
    for (var y = y0; y < y1; y++) {
        let row = plane + y * params.w;
        for (var xx = x0; xx < x1; xx++) {
            sum += x[row + xx];
        }
    }
    out[i] = sum / divisor;
}
