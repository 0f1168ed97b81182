//! The operator library. Each op is one `shaders/<op>.wgsl` plus one
//! `src/ops/<op>.rs` holding its arguments, CPU reference (f64 accumulation),
//! encoder, cost model and test cases.

use crate::gpu::{Dispatch, Gpu, GpuTensor, Kernel};
use crate::kernel;
use crate::{Error, Result, Shape, Tensor};

pub mod attention_rows;
pub mod avg_pool2d;
pub mod cbam_channel_mlp;
pub mod cbam_gate_pool;
pub mod cbam_spatial_gate;
pub mod center_crop;
pub mod channel_affine;
pub mod channel_pool;
pub mod choose;
pub mod conv2d;
pub mod eltwise;
pub mod gate;
pub mod global_pool;
pub mod hard_mask;
pub mod matmul;
pub mod max_pool2d;
pub mod narrow;
pub mod nonlocal_attention;
pub mod render_overlay;
pub mod sk_attention;
pub mod sk_sum_pool;
pub mod softmax;
mod tiles;
pub mod weighted_sum;

pub use tiles::*;

/// Work an op must do: FLOPs (a multiply-add counts 2) and the fewest bytes it
/// must move (each input read once, the output written once).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Cost {
    /// Floating-point operations.
    pub flops: u64,
    /// Minimum bytes read plus written.
    pub bytes: u64,
}

/// Lets the fusion pass ask what a node's op is (`op.as_any().downcast_ref::<Conv2d>()`)
/// without a list of op kinds to keep in step with the op files.
pub trait AsAny {
    /// The op as `Any`, for downcasting.
    fn as_any(&self) -> &dyn std::any::Any;
}

impl<T: std::any::Any> AsAny for T {
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// One operator: shape rules, the CPU reference and the GPU encoder.
/// Inputs come in the order `input_names` gives; weights are inputs too.
pub trait Op: AsAny + std::fmt::Debug + Send + Sync {
    /// The op's stem: shader file, module, test and benchmark names.
    fn name(&self) -> &'static str;
    /// Names of the inputs this configuration expects, in order.
    fn input_names(&self) -> Vec<&'static str>;
    /// The output shape, or an error naming the op, the input and the shapes.
    fn output_shape(&self, inputs: &[&Shape]) -> Result<Shape>;
    /// The obviously-correct CPU version (f64 accumulation).
    fn reference(&self, inputs: &[&Tensor]) -> Result<Tensor>;
    /// Prepares the GPU dispatches computing `output` from `inputs`.
    fn encode(&self, gpu: &Gpu, inputs: &[&GpuTensor], output: &GpuTensor) -> Result<Vec<Dispatch>>;
    /// FLOPs and minimum bytes for these input shapes.
    fn cost(&self, inputs: &[&Shape]) -> Cost;

    /// The op at these input shapes in a few words, for reports (where a network's time went):
    /// its name and the inputs' dims, `matmul 1x64x256 1x256x3136`. Ops whose arguments matter
    /// as much as the shapes (a conv's kernel and stride) say so.
    fn describe(&self, inputs: &[&Shape]) -> String {
        let dims: Vec<String> = inputs.iter().map(|s| dims_text(s.dims())).collect();
        format!("{} {}", self.name(), dims.join(" "))
    }

    /// Shapes of the values the op writes besides its output: a fused kernel
    /// keeping an intermediate alive that is a requested map. None by default.
    fn side_outputs(&self, _inputs: &[&Shape]) -> Result<Vec<Shape>> {
        Ok(Vec::new())
    }

    /// The reference of the output, then of each side output.
    fn reference_all(&self, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
        Ok(vec![self.reference(inputs)?])
    }

    /// Prepares the dispatches writing `outputs`: the output, then each side output.
    fn encode_all(&self, gpu: &Gpu, inputs: &[&GpuTensor], outputs: &[&GpuTensor]) -> Result<Vec<Dispatch>> {
        self.encode(gpu, inputs, outputs[0])
    }
}

/// A shape as reports write it: `8x64x56x56`.
pub fn dims_text(dims: &[usize]) -> String {
    dims.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("x")
}

/// Fails unless `inputs` holds exactly the inputs `op` expects.
pub fn expect_inputs<T>(op: &dyn Op, inputs: &[T]) -> Result<()> {
    let names = op.input_names();
    if inputs.len() != names.len() {
        return Err(Error::invalid(
            op.name(),
            format!("expects {} inputs ({}), got {}", names.len(), names.join(", "), inputs.len()),
        ));
    }
    Ok(())
}

/// Shapes of CPU tensors, for `output_shape` and `cost`.
pub fn shapes_of<'a>(tensors: &[&'a Tensor]) -> Vec<&'a Shape> {
    tensors.iter().map(|t| t.shape()).collect()
}

/// Shapes of GPU tensors.
pub fn gpu_shapes_of<'a>(tensors: &[&'a GpuTensor]) -> Vec<&'a Shape> {
    tensors.iter().map(|t| t.shape()).collect()
}

/// Checks the output's shape against the op's rule before encoding.
pub fn expect_output(op: &dyn Op, inputs: &[&GpuTensor], output: &GpuTensor) -> Result<Shape> {
    expect_inputs(op, inputs)?;
    let want = op.output_shape(&gpu_shapes_of(inputs))?;
    if output.shape() != &want {
        return Err(Error::invalid(op.name(), format!("output must be {want}, got {}", output.shape())));
    }
    Ok(want)
}

/// A u32 for a shader parameter, or an error naming the op when it does not fit.
pub fn to_u32(op: &str, what: &str, value: usize) -> Result<u32> {
    u32::try_from(value)
        .map_err(|_| Error::invalid(op, format!("{what} = {value} exceeds the 32-bit index range of the shaders")))
}

/// Activation applied in an epilogue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    /// Identity.
    None,
    /// max(x, 0).
    Relu,
    /// 1 / (1 + exp(-x)).
    Sigmoid,
}

impl Activation {
    /// The code shaders switch on.
    pub fn code(self) -> u32 {
        match self {
            Activation::None => 0,
            Activation::Relu => 1,
            Activation::Sigmoid => 2,
        }
    }

    /// The reference activation in f64.
    pub fn apply(self, x: f64) -> f64 {
        match self {
            Activation::None => x,
            Activation::Relu => x.max(0.0),
            Activation::Sigmoid => sigmoid(x),
        }
    }
}

/// What a conv or GEMM does to each accumulated value before storing it:
/// `y = activation(scale[c] * acc + shift[c] + residual)`, where `c` is the
/// output channel. Folded BatchNorm and bias become scale and shift; the
/// residual is added before the activation, as in ResNet's `relu(bn(conv) + x)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Epilogue {
    /// An `affine` input of shape [2, C] (row 0: scale, row 1: shift) follows the weights.
    pub affine: bool,
    /// Applied last.
    pub activation: Activation,
    /// A `residual` input shaped like the output comes last.
    pub residual: bool,
}

impl Epilogue {
    /// Store the accumulator unchanged.
    pub const NONE: Epilogue = Epilogue { affine: false, activation: Activation::None, residual: false };

    /// Names of the extra inputs this epilogue needs, in order.
    pub fn input_names(&self) -> Vec<&'static str> {
        let mut names = Vec::new();
        if self.affine {
            names.push("affine");
        }
        if self.residual {
            names.push("residual");
        }
        names
    }

    /// The code shaders read from their Params: bit 0 affine, bit 1 residual,
    /// bits 2.. the activation.
    pub fn code(&self) -> u32 {
        self.affine as u32 | (self.residual as u32) << 1 | self.activation.code() << 2
    }

    /// The reference epilogue for channel `c` of `channels` (`affine` is [2, channels]).
    pub fn apply(&self, acc: f64, c: usize, channels: usize, affine: Option<&Tensor>, residual: f32) -> f64 {
        let mut v = acc;
        if let Some(a) = affine {
            v = a.data()[c] as f64 * v + a.data()[channels + c] as f64;
        }
        if self.residual {
            v += residual as f64;
        }
        self.activation.apply(v)
    }
}

/// The reference sigmoid, stable for large |x|.
pub fn sigmoid(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

/// Uniform random values in [lo, hi) for a correctness case. `dims` are
/// written in the source, so invalid ones are our bug: this panics on them.
pub fn random_input(rng: &mut fastrand::Rng, dims: &[usize], lo: f32, hi: f32) -> Tensor {
    Tensor::random(Shape::new(dims).expect("case shapes are valid"), rng, lo, hi)
}

/// The grid limit of the folded-grid cases ([`Case::with_grid_limit`]): 16 workgroups per
/// dimension, so a few thousand elements reach the folded path the real limit (65535) needs
/// hundreds of millions for.
pub const SMALL_GRID: u32 = 16;

/// One correctness case: an op and fresh inputs for it.
#[derive(Debug)]
pub struct Case {
    /// What is special about the case ("stride 2, groups 4").
    pub label: String,
    /// The op under test.
    pub op: Box<dyn Op>,
    /// Its inputs.
    pub inputs: Vec<Tensor>,
    /// Encode as if the device allowed only this many workgroups per dimension
    /// ([`Gpu::with_grid_limit`]): a "folded grid" case reaches the folded path with small
    /// inputs. `None`: the device's own limit.
    pub grid_limit: Option<u32>,
}

impl Case {
    /// A case of `op` on `inputs`.
    pub fn new(label: impl Into<String>, op: impl Op + 'static, inputs: Vec<Tensor>) -> Case {
        Case { label: label.into(), op: Box::new(op), inputs, grid_limit: None }
    }

    /// The case encoded with grids folding past `limit` workgroups per dimension: it must
    /// fold there (tests/ops.rs checks that every such case's launch does).
    pub fn with_grid_limit(self, limit: u32) -> Case {
        Case { grid_limit: Some(limit), ..self }
    }
}

/// Every op's correctness cases with fresh random inputs from `rng`: the test
/// suite and `glimpse check` run the same list.
pub fn all_cases(rng: &mut fastrand::Rng) -> Vec<Case> {
    let mut cases = Vec::new();
    cases.extend(eltwise::cases(rng));
    cases.extend(max_pool2d::cases(rng));
    cases.extend(avg_pool2d::cases(rng));
    cases.extend(center_crop::cases(rng));
    cases.extend(hard_mask::cases(rng));
    cases.extend(channel_affine::cases(rng));
    cases.extend(channel_pool::cases(rng));
    cases.extend(global_pool::cases(rng));
    cases.extend(gate::cases(rng));
    cases.extend(softmax::cases(rng));
    cases.extend(weighted_sum::cases(rng));
    cases.extend(narrow::cases(rng));
    cases.extend(conv2d::cases(rng));
    cases.extend(matmul::cases(rng));
    cases.extend(cbam_channel_mlp::cases(rng));
    cases.extend(cbam_gate_pool::cases(rng));
    cases.extend(cbam_spatial_gate::cases(rng));
    cases.extend(sk_sum_pool::cases(rng));
    cases.extend(sk_attention::cases(rng));
    cases.extend(nonlocal_attention::cases(rng));
    cases.extend(attention_rows::cases(rng));
    cases.extend(render_overlay::cases(rng));
    cases
}

/// Every shader with the size of the Rust `Params` struct it is given, so a
/// test can hold each pair together and compile every pipeline.
pub fn kernels() -> Vec<(Kernel, usize)> {
    use std::mem::size_of;
    vec![
        (kernel!("eltwise"), size_of::<eltwise::EltwiseParams>()),
        (kernel!("max_pool2d"), size_of::<max_pool2d::MaxPool2dParams>()),
        (kernel!("max_pool2d_s2_vec4"), size_of::<max_pool2d::MaxPool2dParams>()),
        (kernel!("avg_pool2d"), size_of::<avg_pool2d::AvgPool2dParams>()),
        (kernel!("center_crop"), size_of::<center_crop::CenterCropParams>()),
        (kernel!("hard_mask"), size_of::<hard_mask::HardMaskParams>()),
        (kernel!("channel_affine"), size_of::<channel_affine::ChannelAffineParams>()),
        (kernel!("channel_pool"), size_of::<channel_pool::ChannelPoolParams>()),
        (kernel!("global_pool"), size_of::<global_pool::GlobalPoolParams>()),
        (kernel!("global_pool_vec4"), size_of::<global_pool::GlobalPoolParams>()),
        (kernel!("global_pool_tree"), size_of::<global_pool::GlobalPoolParams>()),
        (kernel!("gate"), size_of::<gate::GateParams>()),
        (kernel!("softmax"), size_of::<softmax::SoftmaxParams>()),
        (kernel!("softmax_row"), size_of::<softmax::SoftmaxParams>()),
        (kernel!("weighted_sum"), size_of::<weighted_sum::WeightedSumParams>()),
        (kernel!("weighted_sum_vec4"), size_of::<weighted_sum::WeightedSumParams>()),
        (kernel!("narrow"), size_of::<narrow::NarrowParams>()),
        (kernel!("narrow_vec4"), size_of::<narrow::NarrowParams>()),
        (kernel!("conv2d"), size_of::<conv2d::Conv2dParams>()),
        (kernel!("conv2d_gemm"), size_of::<conv2d::Conv2dGemmParams>()),
        (kernel!("conv2d_gemm_subgroup"), size_of::<conv2d::Conv2dGemmParams>()),
        (kernel!("conv2d_window_subgroup"), size_of::<conv2d::Conv2dWindowParams>()),
        (kernel!("conv2d_phases"), size_of::<conv2d::PhasesParams>()),
        (kernel!("conv2d_phased_subgroup"), size_of::<conv2d::Conv2dPhasedParams>()),
        (kernel!("conv2d_winograd_weight"), size_of::<conv2d::WinogradParams>()),
        (kernel!("conv2d_winograd_input"), size_of::<conv2d::WinogradParams>()),
        (kernel!("conv2d_winograd_output"), size_of::<conv2d::WinogradParams>()),
        (kernel!("conv2d_winograd_s2_input"), size_of::<conv2d::WinogradParams>()),
        (kernel!("matmul"), size_of::<matmul::MatmulParams>()),
        (kernel!("matmul_naive"), size_of::<matmul::MatmulParams>()),
        (kernel!("matmul_vec4"), size_of::<matmul::MatmulParams>()),
        (kernel!("matmul_subgroup"), size_of::<matmul::MatmulParams>()),
        (kernel!("matmul_rows_subgroup"), size_of::<matmul::MatmulParams>()),
        (kernel!("repack_pixels"), size_of::<matmul::repack::RepackPixelsParams>()),
        (kernel!("cbam_channel_mlp"), size_of::<cbam_channel_mlp::CbamChannelMlpParams>()),
        (kernel!("cbam_channel_mlp_vec4"), size_of::<cbam_channel_mlp::CbamChannelMlpParams>()),
        (kernel!("cbam_gate_pool"), size_of::<cbam_gate_pool::CbamGatePoolParams>()),
        (kernel!("cbam_gate_pool_vec4"), size_of::<cbam_gate_pool::CbamGatePoolParams>()),
        (kernel!("cbam_spatial_map"), size_of::<cbam_spatial_gate::CbamSpatialGateParams>()),
        (kernel!("cbam_spatial_apply"), size_of::<cbam_spatial_gate::CbamSpatialGateParams>()),
        (kernel!("cbam_spatial_apply_vec4"), size_of::<cbam_spatial_gate::CbamSpatialGateParams>()),
        (kernel!("sk_sum_pool"), size_of::<sk_sum_pool::SkSumPoolParams>()),
        (kernel!("sk_sum_pool_vec4"), size_of::<sk_sum_pool::SkSumPoolParams>()),
        (kernel!("sk_attention"), size_of::<sk_attention::SkAttentionParams>()),
        (kernel!("nonlocal_attention"), size_of::<nonlocal_attention::NonLocalAttentionParams>()),
        (kernel!("nonlocal_attention_wide"), size_of::<nonlocal_attention::NonLocalAttentionParams>()),
        (kernel!("nonlocal_attention_subgroup"), size_of::<nonlocal_attention::NonLocalAttentionParams>()),
        (kernel!("attention_rows"), size_of::<attention_rows::AttentionRowsParams>()),
        (kernel!("render_overlay"), size_of::<render_overlay::RenderOverlayParams>()),
    ]
}
