//! The kernel each op gets on four described devices: the whole policy as one table.

use super::*;
use crate::gpu::DeviceProfile;
use crate::ops::SubgroupTile;

/// lavapipe (Vulkan on the CPU, AVX2: 8 lanes), GL on llvmpipe (no subgroups), SwiftShader
/// (Chromium's CPU WebGPU: 4 lanes) and a discrete GPU with 32-lane subgroups (NVIDIA).
fn devices() -> [DeviceProfile; 4] {
    [
        DeviceProfile::described("lavapipe", true, Some(8)),
        DeviceProfile::described("gl", true, None),
        DeviceProfile::described("swiftshader", true, Some(4)),
        DeviceProfile::described("discrete-32", false, Some(32)),
    ]
}

/// A conv's shape as conv2d's choice sees it (square kernel, the same stride, padding and dilation
/// on both axes): output and input channels per group, kernel size, stride, padding, dilation, groups.
fn shape(
    cout_per_group: usize,
    cin_per_group: usize,
    k: usize,
    [stride, pad, dilation, groups]: [usize; 4],
) -> ConvShape {
    ConvShape {
        cout_per_group,
        k: cin_per_group * k * k,
        kernel: [k, k],
        cin_per_group,
        groups,
        stride: [stride; 2],
        padding: [pad; 2],
        dilation: [dilation; 2],
        out: [1, 56, 56],
    }
}

/// One row per (op, situation): the kernel each device gets, in `devices()` order.
fn table(p: &DeviceProfile) -> Vec<(&'static str, String)> {
    let conv = |cout_per_group, cin_per_group, k, args| {
        format!("{:?}", conv2d(p, shape(cout_per_group, cin_per_group, k, args)))
    };
    // A stride-1 3 x 3 conv on [N, OH, OW] outputs (Winograd's tiles and scratch depend on them).
    let conv3x3_at = |channels, dilation, out| {
        format!("{:?}", conv2d(p, ConvShape { out, ..shape(channels, channels, 3, [1, dilation, dilation, 1]) }))
    };
    // A stride-2 3 x 3 conv with `cin` input channels, 512 output, on [N, OH, OW] outputs.
    let strided_at = |cin, dilation, out| {
        format!("{:?}", conv2d(p, ConvShape { out, ..shape(512, cin, 3, [2, dilation, dilation, 1]) }))
    };
    // The same with 510 output channels (no multiple of 4: its GEMMs cannot run transposed).
    let strided_510 = |cin, out| format!("{:?}", conv2d(p, ConvShape { out, ..shape(510, cin, 3, [2, 1, 1, 1]) }));
    // matmul_subgroup's tile for M rows by that many columns (none without subgroups).
    let tile = |m, columns| match p.subgroup_width {
        Some(w) => format!("{:?}", matmul_tile(p, w as usize, m, columns, 1)),
        None => "-".to_string(),
    };
    // matmul for an M x N x K product (vec4_fits from N and K): a 1 x 1 conv's GEMM (A shared
    // and nothing transposed), a batched one with nothing transposed, or another.
    #[derive(Clone, Copy)]
    enum Form {
        Conv1x1,
        Batched,
        Other,
    }
    let product = |m, n, k, form| {
        let vec4_fits = n % 4 == 0 && k % 4 == 0;
        let (untransposed, shared_a) = match form {
            Form::Conv1x1 => (true, true),
            Form::Batched => (true, false),
            Form::Other => (false, false),
        };
        format!("{:?}", matmul(p, MatmulShape { batch: 1, m, n, k, vec4_fits, untransposed, shared_a }))
    };
    vec![
        ("conv2d 3x3 256->256", conv(256, 256, 3, [1, 1, 1, 1])),
        ("conv2d 3x3 512->512 1x7x7 (16 tiles)", conv3x3_at(512, 1, [1, 7, 7])),
        ("conv2d 3x3 512->512 8x7x7", conv3x3_at(512, 1, [8, 7, 7])),
        ("conv2d 3x3 256->256 1x14x14 dilation 2", conv3x3_at(256, 2, [1, 14, 14])),
        ("conv2d 3x3 64->64 16x56x56 (103 MB scratch)", conv3x3_at(64, 1, [16, 56, 56])),
        ("conv2d 3x3 1024->1024 1x14x14 (U 64 MiB)", conv3x3_at(1024, 1, [1, 14, 14])),
        ("conv2d 3x3 2048->2048 1x14x14 (U 256 MiB)", conv3x3_at(2048, 1, [1, 14, 14])),
        ("conv2d 3x3 dilation 2", conv(64, 32, 3, [1, 2, 2, 1])),
        ("conv2d 3x3 stride 2", conv(128, 64, 3, [2, 1, 1, 1])),
        ("conv2d 3x3 stride 2 dilation 2", conv(128, 64, 3, [2, 2, 2, 1])),
        ("conv2d 3x3 stride 2, 32 input channels", conv(128, 32, 3, [2, 1, 1, 1])),
        ("conv2d 3x3 stride 2 512->512 1x7x7 (one 7x7 map)", strided_at(512, 1, [1, 7, 7])),
        ("conv2d 3x3 stride 2 512->510 1x7x7 (one 7x7 map)", strided_510(512, [1, 7, 7])),
        (
            "conv2d 3x3 stride 2, 32 input channels, 8x28x28",
            format!("{:?}", conv2d(p, ConvShape { out: [8, 28, 28], ..shape(128, 32, 3, [2, 1, 1, 1]) })),
        ),
        ("conv2d 3x3 stride 2 512->512 8x7x7", strided_at(512, 1, [8, 7, 7])),
        ("conv2d 3x3 stride 2 128->512 8x7x7", strided_at(128, 1, [8, 7, 7])),
        ("conv2d 3x3 stride 2 256->512 1x14x14", strided_at(256, 1, [1, 14, 14])),
        ("conv2d 3x3 stride 2 128->512 1x28x28", strided_at(128, 1, [1, 28, 28])),
        ("conv2d 3x3 stride 2 128->512 300x7x7 (72 MB scratch)", strided_at(128, 1, [300, 7, 7])),
        ("conv2d 3x3 stride 2 dilation 2 128->512 1x7x7", strided_at(128, 2, [1, 7, 7])),
        ("conv2d 3x3 stride 2 dilation 2, 6 input channels", conv(128, 6, 3, [2, 2, 2, 1])),
        ("conv2d 3x3 stride 2 dilation 2 64->512 1x5x5 (9 tiles)", strided_at(64, 2, [1, 5, 5])),
        ("conv2d 3x3 stride 2, 3 input channels", conv(64, 3, 3, [2, 1, 1, 1])),
        ("conv2d 3x3 stride 3", conv(128, 64, 3, [3, 1, 1, 1])),
        ("conv2d 3x3 3 input channels", conv(64, 3, 3, [1, 1, 1, 1])),
        ("conv2d 7x7 stem 3->64", conv(64, 3, 7, [2, 3, 1, 1])),
        ("conv2d 1x1 stride 2", conv(512, 256, 1, [2, 0, 1, 1])),
        ("conv2d 1x1 stride 2, 6 input channels", conv(512, 6, 1, [2, 0, 1, 1])),
        ("conv2d 1x1 stride 1", conv(512, 256, 1, [1, 0, 1, 1])),
        ("conv2d grouped 4 per group", conv(4, 4, 3, [1, 1, 1, 32])),
        ("conv2d grouped 16 per group", conv(16, 16, 3, [1, 1, 1, 8])),
        ("conv2d depthwise", conv(1, 1, 3, [1, 1, 1, 64])),
        ("matmul whole vec4 rows", product(512, 512, 512, Form::Other)),
        ("matmul other rows", product(512, 49, 512, Form::Other)),
        ("matmul 1x1 conv, 7x7 map", product(512, 49, 512, Form::Conv1x1)),
        ("matmul 1x1 conv, 7x7 map, K = 130", product(512, 49, 130, Form::Conv1x1)),
        ("matmul 1x1 conv, 7x7 map, M = 70", product(70, 49, 512, Form::Conv1x1)),
        ("matmul 1x1 conv, 52 pixels", product(512, 52, 512, Form::Conv1x1)),
        ("matmul 1x1 conv, 56 pixels", product(512, 56, 512, Form::Conv1x1)),
        ("matmul batched, 52 columns (Winograd's GEMMs)", product(256, 52, 256, Form::Batched)),
        ("matmul 1x1 conv, 14x14 map", product(256, 196, 1024, Form::Conv1x1)),
        ("matmul 1x1 conv, 8x8 map", product(256, 64, 1024, Form::Conv1x1)),
        ("matmul 1x1 conv, 28x28 map", product(256, 784, 1024, Form::Conv1x1)),
        ("matmul tile 512^3", tile(512, 512)),
        ("GEMM output lines touched first, 28x28 map", format!("{}", touch_outputs_first(p, 784))),
        ("GEMM output lines touched first, 14x14 map", format!("{}", touch_outputs_first(p, 196))),
        ("matmul tile 1x1 conv 1024 x 14x14", tile(1024, 196)),
        ("matmul tile 1x1 conv 64 x 56x56", tile(64, 3136)),
        ("matmul tile 1x1 conv 128 x 28x28", tile(128, 784)),
        ("matmul tile 1x1 conv 2048 x 8x7x7 repacked", tile(2048, 8 * 52)),
        ("winograd GEMMs transposed, 512 x 16 tiles", format!("{}", winograd_transposed(p, 512, 16, 16, 16))),
        ("winograd GEMMs transposed, 256 x 72 tiles", format!("{}", winograd_transposed(p, 256, 16, 72, 16))),
        ("winograd GEMMs transposed, 256 x 64 tiles", format!("{}", winograd_transposed(p, 256, 16, 64, 16))),
        ("winograd GEMMs transposed, 130 x 16 tiles", format!("{}", winograd_transposed(p, 130, 16, 16, 16))),
        ("nonlocal attention", format!("{:?}", nonlocal_attention(p))),
        ("softmax row of 784", format!("{:?}", softmax(p, 1, 784))),
        ("softmax strided", format!("{:?}", softmax(p, 49, 784))),
        ("global_pool 56x56", format!("{:?}", global_pool(p, 3136))),
        ("global_pool 7x7", format!("{:?}", global_pool(p, 49))),
        ("cbam gates 56x56", format!("vec4 {}", pixels_in_vec4s(3136))),
        ("cbam gates 7x7", format!("vec4 {}", pixels_in_vec4s(49))),
        ("winograd input rows 56x56", format!("vec4 {}", winograd_input_rows_in_vec4s(1, 56, 56))),
        ("winograd input rows 28x28", format!("vec4 {}", winograd_input_rows_in_vec4s(1, 28, 28))),
        ("winograd output rows 56x56", format!("vec4 {}", winograd_output_rows_in_vec4s(56, false))),
    ]
}

#[test]
fn every_op_gets_the_listed_kernel_on_each_device() {
    // matmul_subgroup's one-subgroup tiles (choose::matmul_tile) at 8 and 4 lanes.
    const ONE_8: &str = "[64, 32] of 8 invocations";
    const ONE_4: &str = "[64, 16] of 4 invocations";
    //                                lavapipe        gl         swiftshader     discrete-32
    let want: [(&str, [&str; 4]); 64] = [
        ("conv2d 3x3 256->256", ["Winograd", "Winograd", "Winograd", "GemmSubgroup"]),
        ("conv2d 3x3 512->512 1x7x7 (16 tiles)", ["Winograd", "Winograd", "Winograd", "GemmSubgroup"]),
        ("conv2d 3x3 512->512 8x7x7", ["Winograd", "Winograd", "Winograd", "GemmSubgroup"]),
        ("conv2d 3x3 256->256 1x14x14 dilation 2", ["Winograd", "Winograd", "Winograd", "GemmSubgroup"]),
        ("conv2d 3x3 64->64 16x56x56 (103 MB scratch)", ["WindowSubgroup", "Gemm", "WindowSubgroup", "GemmSubgroup"]),
        ("conv2d 3x3 1024->1024 1x14x14 (U 64 MiB)", ["Winograd", "Winograd", "Winograd", "GemmSubgroup"]),
        ("conv2d 3x3 2048->2048 1x14x14 (U 256 MiB)", ["WindowSubgroup", "Gemm", "WindowSubgroup", "GemmSubgroup"]),
        ("conv2d 3x3 dilation 2", ["Winograd", "Winograd", "Winograd", "GemmSubgroup"]),
        ("conv2d 3x3 stride 2", ["WinogradStride2", "WinogradStride2", "WinogradStride2", "GemmSubgroup"]),
        ("conv2d 3x3 stride 2 dilation 2", ["Winograd", "Winograd", "Winograd", "GemmSubgroup"]),
        ("conv2d 3x3 stride 2, 32 input channels", ["WindowSubgroup", "Gemm", "WindowSubgroup", "GemmSubgroup"]),
        (
            "conv2d 3x3 stride 2 512->512 1x7x7 (one 7x7 map)",
            ["RepackSubgroup", "Gemm", "RepackSubgroup", "GemmSubgroup"],
        ),
        (
            "conv2d 3x3 stride 2 512->510 1x7x7 (one 7x7 map)",
            ["RepackSubgroup", "Gemm", "RepackSubgroup", "GemmSubgroup"],
        ),
        (
            "conv2d 3x3 stride 2, 32 input channels, 8x28x28",
            ["RepackSubgroup", "Gemm", "RepackSubgroup", "GemmSubgroup"],
        ),
        (
            "conv2d 3x3 stride 2 512->512 8x7x7",
            ["WinogradStride2", "WinogradStride2", "WinogradStride2", "GemmSubgroup"],
        ),
        ("conv2d 3x3 stride 2 128->512 8x7x7", ["RepackSubgroup", "WinogradStride2", "RepackSubgroup", "GemmSubgroup"]),
        (
            "conv2d 3x3 stride 2 256->512 1x14x14",
            ["WinogradStride2", "WinogradStride2", "WinogradStride2", "GemmSubgroup"],
        ),
        (
            "conv2d 3x3 stride 2 128->512 1x28x28",
            ["WinogradStride2", "WinogradStride2", "WinogradStride2", "GemmSubgroup"],
        ),
        (
            "conv2d 3x3 stride 2 128->512 300x7x7 (72 MB scratch)",
            ["WindowSubgroup", "Gemm", "WindowSubgroup", "GemmSubgroup"],
        ),
        ("conv2d 3x3 stride 2 dilation 2 128->512 1x7x7", ["Winograd", "Winograd", "Winograd", "GemmSubgroup"]),
        ("conv2d 3x3 stride 2 dilation 2, 6 input channels", ["GemmSubgroup", "Gemm", "GemmSubgroup", "GemmSubgroup"]),
        (
            "conv2d 3x3 stride 2 dilation 2 64->512 1x5x5 (9 tiles)",
            ["WindowSubsampled", "Gemm", "WindowSubsampled", "GemmSubgroup"],
        ),
        ("conv2d 3x3 stride 2, 3 input channels", ["GemmSubgroup", "Gemm", "GemmSubgroup", "GemmSubgroup"]),
        ("conv2d 3x3 stride 3", ["GemmSubgroup", "Gemm", "GemmSubgroup", "GemmSubgroup"]),
        ("conv2d 3x3 3 input channels", ["GemmSubgroup", "Gemm", "GemmSubgroup", "GemmSubgroup"]),
        ("conv2d 7x7 stem 3->64", ["PhasedSubgroup", "Gemm", "PhasedSubgroup", "GemmSubgroup"]),
        ("conv2d 1x1 stride 2", ["RepackSubgroup", "Gemm", "RepackSubgroup", "GemmSubgroup"]),
        ("conv2d 1x1 stride 2, 6 input channels", ["GemmSubgroup", "Gemm", "GemmSubgroup", "GemmSubgroup"]),
        ("conv2d 1x1 stride 1", ["WindowSubgroup", "Gemm", "WindowSubgroup", "GemmSubgroup"]),
        ("conv2d grouped 4 per group", ["Direct", "Direct", "Direct", "Direct"]),
        ("conv2d grouped 16 per group", ["GemmSubgroup", "Gemm", "GemmSubgroup", "GemmSubgroup"]),
        ("conv2d depthwise", ["Direct", "Direct", "Direct", "Direct"]),
        ("matmul whole vec4 rows", ["Subgroup", "Vec4", "Subgroup", "Subgroup"]),
        ("matmul other rows", ["Tiled", "Tiled", "Tiled", "Tiled"]),
        ("matmul 1x1 conv, 7x7 map", ["Rows", "Tiled", "Rows", "ConvGemm"]),
        ("matmul 1x1 conv, 7x7 map, K = 130", ["ConvGemm", "Tiled", "ConvGemm", "ConvGemm"]),
        ("matmul 1x1 conv, 7x7 map, M = 70", ["Repack", "Tiled", "Repack", "ConvGemm"]),
        ("matmul 1x1 conv, 52 pixels", ["Rows", "Vec4", "Rows", "Subgroup"]),
        ("matmul 1x1 conv, 56 pixels", ["Subgroup", "Vec4", "Subgroup", "Subgroup"]),
        ("matmul batched, 52 columns (Winograd's GEMMs)", ["Rows", "Vec4", "Rows", "Subgroup"]),
        ("matmul 1x1 conv, 14x14 map", ["Rows", "Vec4", "Rows", "Subgroup"]),
        ("matmul 1x1 conv, 8x8 map", ["Subgroup", "Vec4", "Subgroup", "Subgroup"]),
        ("matmul 1x1 conv, 28x28 map", ["Subgroup", "Vec4", "Subgroup", "Subgroup"]),
        ("matmul tile 512^3", ["[128, 128]", "-", "[128, 128]", "[32, 128]"]),
        ("GEMM output lines touched first, 28x28 map", ["true", "true", "true", "false"]),
        ("GEMM output lines touched first, 14x14 map", ["false", "false", "false", "false"]),
        ("matmul tile 1x1 conv 1024 x 14x14", ["[512, 32]", "-", "[512, 32]", "[32, 128]"]),
        ("matmul tile 1x1 conv 64 x 56x56", [ONE_8, "-", ONE_4, "[32, 128]"]),
        ("matmul tile 1x1 conv 128 x 28x28", [ONE_8, "-", ONE_4, "[32, 128]"]),
        ("matmul tile 1x1 conv 2048 x 8x7x7 repacked", ["[512, 32]", "-", "[512, 32]", "[32, 128]"]),
        ("winograd GEMMs transposed, 512 x 16 tiles", ["false", "false", "false", "false"]),
        ("winograd GEMMs transposed, 256 x 72 tiles", ["true", "false", "true", "false"]),
        ("winograd GEMMs transposed, 256 x 64 tiles", ["false", "false", "false", "false"]),
        ("winograd GEMMs transposed, 130 x 16 tiles", ["false", "false", "false", "false"]),
        ("nonlocal attention", ["Subgroup", "Portable", "Subgroup", "Subgroup"]),
        ("softmax row of 784", ["Serial", "Serial", "Serial", "Row"]),
        ("softmax strided", ["Serial", "Serial", "Serial", "Serial"]),
        ("global_pool 56x56", ["Serial", "Serial", "Serial", "Tree"]),
        ("global_pool 7x7", ["Serial", "Serial", "Serial", "Serial"]),
        ("cbam gates 56x56", ["vec4 true", "vec4 true", "vec4 true", "vec4 true"]),
        ("cbam gates 7x7", ["vec4 false", "vec4 false", "vec4 false", "vec4 false"]),
        ("winograd input rows 56x56", ["vec4 true", "vec4 true", "vec4 true", "vec4 true"]),
        ("winograd input rows 28x28", ["vec4 false", "vec4 false", "vec4 false", "vec4 false"]),
        ("winograd output rows 56x56", ["vec4 true", "vec4 true", "vec4 true", "vec4 true"]),
    ];
    let devices = devices();
    for (i, device) in devices.iter().enumerate() {
        let got = table(device);
        assert_eq!(got.len(), want.len());
        for ((row, kernel), (want_row, kernels)) in got.iter().zip(&want) {
            assert_eq!(row, want_row);
            assert_eq!(kernel, kernels[i], "{row} on {}", device.name);
        }
    }
}

#[test]
fn devices_below_the_gemm_limits_get_the_direct_conv() {
    let shape = shape(256, 256, 3, [2, 1, 1, 1]);
    // wgpu's downlevel limits: 16352 bytes of workgroup memory, 4 storage buffers.
    let mut p = DeviceProfile::described("downlevel", false, None);
    p.max_workgroup_storage = 16352;
    assert_eq!(conv2d(&p, shape), ConvKernel::Direct);
    p.max_workgroup_storage = 16384;
    p.max_storage_buffers = 4;
    assert_eq!(conv2d(&p, shape), ConvKernel::Direct);
    p.max_storage_buffers = 8;
    assert_eq!(conv2d(&p, shape), ConvKernel::Gemm);
}

#[test]
fn huge_k_goes_to_the_direct_kernel() {
    let p = DeviceProfile::described("lavapipe", true, Some(8));
    let shape = ConvShape { k: MAX_K, ..shape(64, 64, 1, [1, 0, 1, 1]) };
    assert_eq!(conv2d(&p, shape), ConvKernel::Direct);
}

#[test]
fn matmul_tiles_follow_the_cost_model() {
    let mut p = DeviceProfile::described("lavapipe", true, Some(8));
    // A batch-1 28 x 28 map's 1x1 conv with 128 outputs: 7 workgroups of 64-row subgroups (128 x
    // 128, 4 rounds on 2 threads, 14% padding) cost less than 25 of 16-row ones that pad nothing
    // (128 x 32: 13 rounds at 0.69 of the rate), and 50 of one 64-row subgroup (64 x 32: 25 rounds
    // at 0.9 of the rate, no thread idle) less again.
    assert_eq!(matmul_tile(&p, 8, 128, 784, 1), SubgroupTile::one_subgroup(8));
    // A batch-1 7 x 7 map's 1x1 conv with 512 outputs (52 columns, repacked): 2 workgroups of
    // 64-row subgroups are one round on 2 threads (one subgroup each: 8 rounds of 16, no sooner) ...
    assert_eq!(matmul_tile(&p, 8, 512, 52, 1), SubgroupTile::new([256, 64]));
    // ... while 16 threads finish 8 workgroups of 16-row subgroups in one round, sooner than the 2
    // workgroups of 64-row ones (below 64-row subgroups the one-subgroup tile is not weighed).
    p.cpu_threads = 16;
    assert_eq!(matmul_tile(&p, 8, 512, 52, 1), SubgroupTile::new([64, 64]));
    // Batches count: 16 Winograd elements of the same product fill 16 threads with the tall tile.
    assert_eq!(matmul_tile(&p, 8, 512, 52, 16), SubgroupTile::new([256, 64]));
}
