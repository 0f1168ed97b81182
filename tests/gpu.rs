//! The GPU runtime's failure paths: each is a typed error, never a panic.

mod common;

use glimpse::gpu::{Gpu, Kernel};
use glimpse::ops::matmul::{Matmul, Variant};
use glimpse::ops::{eltwise::Eltwise, Op};
use glimpse::{Error, Shape, Tensor};

#[test]
fn a_tensor_over_the_binding_limit_is_a_clear_error() {
    let gpu = gpu_or_skip!();
    let elements = (gpu.max_binding_bytes() / 4 + 1) as usize;
    let err = gpu.empty(&Shape::new(&[elements]).unwrap()).unwrap_err();
    assert!(matches!(err, Error::TooLarge { .. }), "{err}");
    assert!(err.to_string().contains(&elements.to_string()), "{err}");
}

#[test]
fn a_grid_beyond_two_dimensions_of_workgroups_is_an_error() {
    let gpu = gpu_or_skip!();
    let max = gpu.max_workgroups_per_dim() as u64;
    assert_eq!(gpu.grid_1d("test", max).unwrap(), [max as u32, 1, 1]);
    assert_eq!(gpu.grid_1d("test", max + 1).unwrap(), [max as u32, 2, 1]);
    let err = gpu.grid_1d("test", max * max + 1).unwrap_err();
    assert!(err.to_string().contains("test"), "{err}");
}

#[test]
fn a_lower_grid_limit_folds_grids_on_the_same_device() {
    let gpu = gpu_or_skip!();
    let small = gpu.with_grid_limit(4).unwrap();
    assert_eq!(small.max_workgroups_per_dim(), 4);
    assert_eq!(small.grid_1d("test", 4).unwrap(), [4, 1, 1]);
    assert_eq!(small.grid_1d("test", 5).unwrap(), [4, 2, 1]);
    assert!(small.grid_1d("test", 17).unwrap_err().to_string().contains("4 x 4"));
    // It never raises the device's own limit.
    let max = gpu.max_workgroups_per_dim();
    assert_eq!(gpu.with_grid_limit(u32::MAX).unwrap().max_workgroups_per_dim(), max);
    let err = gpu.with_grid_limit(0).err().expect("a grid limit of 0 is refused").to_string();
    assert!(err.contains("grid limit") && err.contains("at least 1"), "{err}");
    // A launch prepared through the view runs on the device it shares.
    let x = small.upload(&Tensor::from_vec(&[4], vec![-1.0, 2.0, -3.0, 4.0]).unwrap()).unwrap();
    let y = small.empty(x.shape()).unwrap();
    let dispatches = Eltwise::Relu.encode(&small, &[&x], &y).unwrap();
    gpu.submit(&dispatches).unwrap();
    assert_eq!(gpu.read(&y).unwrap().data(), &[0.0, 2.0, 0.0, 4.0]);
}

#[test]
fn a_broken_shader_is_an_error_not_a_panic() {
    let gpu = gpu_or_skip!();
    let broken = Kernel { name: "broken", source: "@compute @workgroup_size(1) fn main( {" };
    let err = gpu.compile(&broken).unwrap_err();
    assert!(matches!(err, Error::Gpu { .. }) && err.to_string().contains("broken"), "{err}");
}

/// The declarations of a test kernel with glimpse's binding 0 (`params`, four u32s, in the one line
/// lavapipe's storage form rewrites) and one output, `out`; its entry point follows.
macro_rules! params_and_out {
    ($main:literal) => {
        concat!(
            "struct Params { x: u32, y: u32, z: u32, w: u32 }\n",
            "@group(0) @binding(0) var<uniform> params: Params;\n",
            "@group(0) @binding(1) var<storage, read_write> out: array<f32>;\n",
            $main
        )
    };
}

#[test]
fn a_pipeline_the_device_refuses_is_an_error_where_it_is_waited_for() {
    let gpu = gpu_or_skip!();
    // Valid WGSL whose workgroup no device allows: refused only when the pipeline is created.
    let huge = Kernel {
        name: "huge_workgroup",
        source: params_and_out!("@compute @workgroup_size(1024, 1024) fn main() { out[0] = f32(params.x); }"),
    };
    let out = gpu.empty(&glimpse::Shape::new(&[4]).unwrap()).unwrap();
    let params = [1u32, 0, 0, 0];
    // Alone, prepare compiles and says so.
    let err = gpu.prepare(&huge, &[], &params, &[&out], [1, 1, 1]).unwrap_err();
    assert!(matches!(err, Error::Gpu { .. }) && err.to_string().contains("huge_workgroup"), "{err}");
    let err = gpu.compile(&huge).unwrap_err();
    assert!(err.to_string().contains("huge_workgroup"), "{err}");
    // Compiling in parallel (a fresh kernel: the error above is cached), prepare returns before
    // the compile thread fails, and the launch carries the error to whoever waits for it.
    let huge2 = Kernel { name: "huge_workgroup_2", ..huge };
    let launch = gpu.compiling_in_parallel(|| gpu.prepare(&huge2, &[], &params, &[&out], [1, 1, 1])).unwrap();
    let err = launch.ready().unwrap_err();
    assert!(err.to_string().contains("huge_workgroup_2"), "{err}");
    let err = gpu.submit(std::slice::from_ref(&launch)).unwrap_err();
    assert!(matches!(err, Error::Gpu { .. }) && err.to_string().contains("huge_workgroup_2"), "{err}");
    // The device stays usable.
    let x = gpu.upload(&Tensor::from_vec(&[4], vec![-1.0; 4]).unwrap()).unwrap();
    gpu.submit(&Eltwise::Relu.encode(gpu, &[&x], &out).unwrap()).unwrap();
    assert_eq!(gpu.read(&out).unwrap().data(), &[0.0; 4]);
}

#[test]
fn compiles_started_in_parallel_have_finished_when_the_call_returns() {
    let gpu = gpu_or_skip!();
    let add = Kernel {
        name: "add_override",
        source: params_and_out!(
            "override ADD: f32 = 0.0;\n@compute @workgroup_size(1) fn main() { out[params.x] = ADD; }"
        ),
    };
    let out = gpu.empty(&glimpse::Shape::new(&[4]).unwrap()).unwrap();
    let before = gpu.pipeline_compiles().len();
    let launches = gpu
        .compiling_in_parallel(|| {
            (0..4u32)
                .map(|i| gpu.prepare(&add, &[("ADD", f64::from(i) + 1.0)], &[i, 0, 0, 0], &[&out], [1, 1, 1]))
                .collect::<Result<Vec<_>, _>>()
        })
        .unwrap();
    let compiles = gpu.pipeline_compiles();
    let ours: Vec<_> = compiles[before..].iter().filter(|c| c.kernel == "add_override").collect();
    assert_eq!(ours.len(), 4);
    // Each compile records its time just before it finishes.
    assert!(ours.iter().all(|c| c.create_ms > 0.0), "{ours:?}");
    gpu.submit(&launches).unwrap();
    assert_eq!(gpu.read(&out).unwrap().data(), &[1.0, 2.0, 3.0, 4.0]);
}

#[test]
fn binding_the_wrong_buffers_is_an_error_not_a_panic() {
    let gpu = gpu_or_skip!();
    let x = gpu.upload(&Tensor::from_vec(&[4], vec![1.0; 4]).unwrap()).unwrap();
    // eltwise needs three storage buffers; bind two.
    let params = [4u32, 0, 0, 0];
    let kernel = glimpse::ops::kernels().into_iter().find(|(k, _)| k.name == "eltwise").unwrap().0;
    let err = gpu.prepare(&kernel, &[], &params, &[&x, &x], [1, 1, 1]).unwrap_err();
    assert!(matches!(err, Error::Gpu { .. }), "{err}");
    // The device stays usable after a caught validation error.
    let out = gpu.empty(x.shape()).unwrap();
    gpu.submit(&Eltwise::Relu.encode(gpu, &[&x], &out).unwrap()).unwrap();
    assert_eq!(gpu.read(&out).unwrap().data(), &[1.0; 4]);
}

#[test]
fn a_lost_device_fails_every_later_call() {
    if common::gpu().is_none() {
        return;
    }
    // A device of its own: losing the shared one would break the other tests.
    let gpu = Gpu::new().unwrap();
    let x = gpu.upload(&Tensor::from_vec(&[4], vec![1.0; 4]).unwrap()).unwrap();
    gpu.destroy();
    assert!(matches!(gpu.read(&x), Err(Error::DeviceLost(_))));
    assert!(matches!(gpu.upload(&Tensor::from_vec(&[1], vec![0.0]).unwrap()), Err(Error::DeviceLost(_))));
}

#[test]
fn timestamps_measure_each_dispatch() {
    let gpu = gpu_or_skip!();
    if !gpu.has_timestamps() {
        eprintln!("SKIPPED: {} has no timestamp queries", gpu.adapter());
        return;
    }
    let x = gpu.upload(&Tensor::from_vec(&[1 << 20], vec![1.0; 1 << 20]).unwrap()).unwrap();
    let out = gpu.empty(x.shape()).unwrap();
    let mut dispatches = Eltwise::Relu.encode(gpu, &[&x], &out).unwrap();
    dispatches.extend(Eltwise::Add.encode(gpu, &[&x, &x], &out).unwrap());
    let times = gpu.submit_timed(&dispatches).unwrap();
    assert_eq!(times.len(), 2);
    assert!(times.iter().all(|&t| t > 0.0), "{times:?}");
}

/// The subgroup GEMM runs wherever subgroups have one fixed width (4 to 64 lanes; the
/// choice is ops::choose's), and CI's lavapipe on Vulkan is such a device (8 lanes), so the
/// ops tests cross-check that kernel there (and matmul_vec4 on GL, which has no subgroups).
#[test]
fn matmul_auto_takes_the_subgroup_kernel_where_subgroups_have_a_fixed_width() {
    let gpu = gpu_or_skip!();
    let s = Shape::new(&[1, 64, 64]).unwrap();
    let kernel = |variant| Matmul::new(false, false).with_variant(variant).kernel_for(gpu, &[&s, &s]);
    let adapter = gpu.adapter();
    if adapter.name.starts_with("llvmpipe") && adapter.backend == "Vulkan" {
        assert_eq!(gpu.subgroup_size(), Some(8), "lavapipe should offer 8-lane subgroups");
    }
    if gpu.subgroup_size().is_some() {
        assert_eq!(kernel(Variant::Auto).unwrap().name, "matmul_subgroup");
    } else {
        assert_eq!(kernel(Variant::Auto).unwrap().name, "matmul_vec4");
        let e = kernel(Variant::Subgroup).unwrap_err().to_string();
        assert!(e.contains("needs subgroups of one fixed power-of-two width from 4 to 64"), "{e}");
    }
    let odd = Shape::new(&[1, 64, 63]).unwrap();
    let e = Matmul::new(false, false).with_variant(Variant::Vec4).kernel_for(gpu, &[&s, &odd]).unwrap_err();
    assert!(e.to_string().contains("whole vec4s: a's rows hold K = 64, b's N = 63"), "{e}");
}

/// A 1 x 1 conv's GEMM on a 7 x 7 map (49 columns) takes matmul_rows_subgroup (lanes take the
/// output rows; Winograd's batched GEMMs over few tiles too) where choose says so: CPU devices with
/// subgroups (lavapipe), M and K multiples of 4;
/// the repacked path (repack_pixels, then a GEMM) where M is not; a forced Rows or Repack that the
/// device, the shapes or the layout cannot take is an error saying which; a forced RepackSubgroup
/// conv whose K (input channels x taps) is not whole vec4s is too.
#[test]
fn seven_by_seven_conv_gemms_take_the_rows_kernel_where_chosen_and_forced_misuse_says_why() {
    use glimpse::ops::conv2d::{Conv2d, ConvKernel};
    let gpu = gpu_or_skip!();
    let shape = |d: &[usize]| Shape::new(d).unwrap();
    let (w, x) = (shape(&[1, 64, 64]), shape(&[2, 64, 49]));
    let conv1x1 = Matmul::conv1x1(glimpse::ops::Epilogue::NONE);
    let kernel = |op: Matmul, a: &Shape, b: &Shape| op.kernel_for(gpu, &[a, b]);
    let subgroups = gpu.subgroup_size().is_some();
    let rows = conv1x1.with_variant(Variant::Rows);
    if subgroups && gpu.profile().cpu {
        assert_eq!(kernel(conv1x1, &w, &x).unwrap().name, "matmul_rows_subgroup");
        assert_eq!(kernel(conv1x1, &shape(&[1, 62, 64]), &x).unwrap().name, "matmul_subgroup", "M = 62: repacked");
    }
    if subgroups {
        assert_eq!(kernel(rows, &w, &x).unwrap().name, "matmul_rows_subgroup");
        let e = kernel(rows, &w, &shape(&[2, 64, 55])).unwrap_err().to_string();
        assert!(e.contains("at most 52 columns") && e.contains("or a multiple of 4") && e.contains("got 55"), "{e}");
        assert_eq!(kernel(rows, &w, &shape(&[2, 64, 56])).unwrap().name, "matmul_rows_subgroup", "56: column tiles");
        let e = kernel(rows, &shape(&[1, 62, 64]), &x).unwrap_err().to_string();
        assert!(e.contains("M and K multiples of 4") && e.contains("M = 62"), "{e}");
    } else {
        let e = kernel(rows, &w, &x).unwrap_err().to_string();
        assert!(e.contains("the Rows kernel needs subgroups of one fixed width"), "{e}");
    }
    let repack = conv1x1.with_variant(Variant::Repack);
    if subgroups {
        // Repacked to 52 columns, the GEMM is the rows kernel on CPU devices; with M = 62 (or on a
        // GPU) matmul_subgroup.
        let short_rows = if gpu.profile().cpu { "matmul_rows_subgroup" } else { "matmul_subgroup" };
        assert_eq!(kernel(repack, &w, &x).unwrap().name, short_rows);
        assert_eq!(kernel(repack, &shape(&[1, 62, 64]), &x).unwrap().name, "matmul_subgroup");
        let e = kernel(repack, &shape(&[1, 64, 63]), &shape(&[2, 63, 49])).unwrap_err().to_string();
        assert!(e.contains("K (input channels x taps) a multiple of 4") && e.contains("got 63"), "{e}");
    } else {
        let e = kernel(repack, &w, &x).unwrap_err().to_string();
        assert!(e.contains("needs subgroups of one fixed width"), "{e}");
    }
    let transposed = |variant| kernel(Matmul::new(false, true).with_variant(variant), &w, &shape(&[2, 49, 64]));
    let e = transposed(Variant::Repack).unwrap_err().to_string();
    assert!(e.contains("the Repack kernel runs only the 1 x 1 conv form"), "{e}");
    let e = transposed(Variant::Rows).unwrap_err().to_string();
    assert!(e.contains("the Rows kernel runs only products with neither operand transposed"), "{e}");

    // 3 input channels x 9 taps: K = 27.
    let forced = Conv2d { kernel: ConvKernel::RepackSubgroup, ..Conv2d::new().stride([2, 2]).padding([1, 1]) };
    let x = gpu.empty(&shape(&[1, 3, 9, 9])).unwrap();
    let weight = gpu.empty(&shape(&[16, 3, 3, 3])).unwrap();
    let out = gpu.empty(&forced.output_shape(&[x.shape(), weight.shape()]).unwrap()).unwrap();
    let e = forced.encode(gpu, &[&x, &weight], &out).unwrap_err().to_string();
    let why = if subgroups { "input channels x taps a multiple of 4" } else { "needs subgroups" };
    assert!(e.contains(why), "{e}");
}

/// matmul_subgroup forced onto a tile its subgroups cannot cover says so (tests/ops.rs runs every
/// tile they can), and a tile of the adapter's width runs.
#[test]
fn a_forced_matmul_tile_outside_the_subgroup_width_says_why() {
    use glimpse::ops::{subgroup_tiles, SubgroupTile};
    let gpu = gpu_or_skip!();
    let Some(width) = common::subgroup_width(gpu) else { return };
    let shape = |d: &[usize]| Shape::new(d).unwrap();
    let (a, b) = (gpu.empty(&shape(&[1, 64, 16])).unwrap(), gpu.empty(&shape(&[1, 16, 64])).unwrap());
    let out = gpu.empty(&shape(&[1, 64, 64])).unwrap();
    let odd = SubgroupTile { rows: 48, cols: 64, invocations: 64 };
    let e = Matmul::new(false, false).with_tile(odd).encode(gpu, &[&a, &b], &out).unwrap_err().to_string();
    assert!(e.contains("[48, 64] is none of matmul_subgroup's") && e.contains(&format!("{width} lanes")), "{e}");
    let one = subgroup_tiles(width).pop().unwrap();
    assert!(Matmul::new(false, false).with_tile(one).encode(gpu, &[&a, &b], &out).is_ok());
}

/// A wait past the limit is a Timeout error that says how long it really waited.
#[test]
fn a_wait_past_the_limit_is_a_timeout_naming_the_time_waited() {
    let _ = gpu_or_skip!();
    let options = glimpse::gpu::GpuOptions { timeout: std::time::Duration::from_micros(1), ..Default::default() };
    let gpu = Gpu::with_options(options).expect("a second device opens");
    let mut rng = common::rng();
    let a = gpu.upload(&Tensor::random(Shape::new(&[1, 512, 512]).unwrap(), &mut rng, -1.0, 1.0)).unwrap();
    let out = gpu.empty(&Shape::new(&[1, 512, 512]).unwrap()).unwrap();
    // Several products back to back: far longer than a microsecond on any device.
    let many: Vec<_> = (0..16).flat_map(|_| Matmul::new(false, false).encode(&gpu, &[&a, &a], &out).unwrap()).collect();
    match gpu.submit(&many) {
        Err(e @ Error::Timeout { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains("gave up after") && msg.contains("the limit is 0.0 s"), "{msg}");
        }
        // wgpu's GL backend finishes the work inside submit, so its wait never blocks.
        Ok(()) if gpu.adapter().backend == "Gl" => eprintln!("GL: the wait cannot time out; nothing to check"),
        other => panic!("expected a Timeout on {}, got {other:?}", gpu.adapter().backend),
    }
}
