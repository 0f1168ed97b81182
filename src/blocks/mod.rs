//! Attention blocks as graph builders, by the names users know them:
//! the tutorial's modules and timm's, with PyTorch's weight names and arguments.
//!
//! Each builder reads its weights by state_dict name (inferring what the
//! shapes reveal), takes the remaining hyperparameters from [`Args`], and adds
//! either fused kernels or single ops to the graph as [`Fusion`] allows. With
//! `maps` on, it also marks its attention maps as named outputs.

mod args;
mod cbam;
mod hard;
mod layers;
mod nonlocal;
mod sk;

pub use args::Args;

use crate::graph::{Fusion, Graph, ValueId};
use crate::weights::Weights;
use crate::{Error, Result, Shape, Tensor};

/// What a builder works with.
pub struct Builder {
    /// The graph being built.
    pub graph: Graph,
    /// The state_dict being consumed.
    pub weights: Weights,
    /// Which fusion rules may be used.
    pub fusion: Fusion,
    /// Whether attention maps become named outputs.
    pub maps: bool,
    /// Query pixels (x, y) whose Non-local attention rows are wanted.
    pub queries: Vec<[usize; 2]>,
    /// Prepended to map names: the block's place in a network ("layer1.0.").
    map_prefix: String,
}

impl Builder {
    /// A builder over an empty graph.
    pub fn new(weights: Weights, options: BuildOptions) -> Builder {
        Builder {
            graph: Graph::new(),
            weights,
            fusion: options.fusion,
            maps: options.maps,
            queries: options.queries,
            map_prefix: String::new(),
        }
    }

    /// Adds block `arch` on `x`: its weights are read under `prefix` and its
    /// maps are named `{prefix}{map}` (so "layer1.0.spatial" inside a network).
    pub fn block(&mut self, arch: &str, x: ValueId, args: &[String], prefix: &str) -> Result<ValueId> {
        let arch = self::arch(arch)?;
        let mut args = Args::parse(arch.name, args)?;
        self.weights.set_prefix(prefix);
        self.map_prefix = prefix.to_string();
        let y = (arch.build)(self, x, &mut args);
        self.weights.set_prefix("");
        self.map_prefix.clear();
        let y = y?;
        args.finish()?;
        Ok(y)
    }

    /// Marks `y` as the output and checks every weight was used.
    pub fn finish(mut self, y: ValueId) -> Result<Graph> {
        self.graph.output("y", y);
        self.weights.finish()?;
        Ok(self.graph)
    }

    /// Marks `value` as the attention map `name` when maps are wanted.
    pub fn map(&mut self, name: &str, value: ValueId) {
        if self.maps {
            let name = format!("{}{name}", self.map_prefix);
            self.graph.output(&name, value);
        }
    }

    /// Adds a constant (weights) to the graph.
    pub fn constant(&mut self, tensor: Tensor) -> ValueId {
        self.graph.constant(tensor)
    }
}

/// How to build one architecture.
pub struct Arch {
    /// The name `--arch` takes.
    pub name: &'static str,
    /// One line on what it is.
    pub about: &'static str,
    /// Its arguments with defaults, as `--help` shows them.
    pub args: &'static str,
    /// Names of the attention maps it can output.
    pub maps: &'static [&'static str],
    /// timm's pretrained configuration (input size and preprocessing), for networks.
    pub pretrained: Option<Pretrained>,
    build: fn(&mut Builder, ValueId, &mut Args) -> Result<ValueId>,
}

/// timm's `pretrained_cfg`: the input a network was trained on and how
/// timm's eval transform prepares an image for it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Pretrained {
    /// Channels, height, width.
    pub input_size: [usize; 3],
    /// The centre crop's share of the resized image (the shorter side is resized to size / crop_pct).
    pub crop_pct: f32,
    /// PIL's resampling filter for the resize: "bicubic", "bilinear" or "nearest".
    pub interpolation: &'static str,
    /// Per-channel mean subtracted from [0, 1] pixels.
    pub mean: [f32; 3],
    /// Per-channel standard deviation the pixels are divided by.
    pub std: [f32; 3],
    /// Classes of the pretrained classifier.
    pub num_classes: usize,
}

/// ImageNet's mean and standard deviation (timm's IMAGENET_DEFAULT_MEAN / STD).
pub const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
/// See [`IMAGENET_MEAN`].
pub const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];

/// Every architecture `glimpse run` knows.
pub const ARCHS: &[Arch] = &[
    cbam::CHANNEL_ATTENTION,
    cbam::SPATIAL_ATTENTION,
    cbam::BASIC_BLOCK,
    sk::SK_CONV,
    nonlocal::NON_LOCAL,
    hard::CENTER_CROP,
    hard::MAX_POOL,
    cbam::TIMM_CBAM,
    sk::TIMM_SK,
    nonlocal::TIMM_NON_LOCAL,
    layers::CONV_BN_ACT,
    layers::GLOBAL_AVG_POOL,
    layers::LINEAR,
];

/// The architecture called `name`, or an error listing the valid ones.
pub fn arch(name: &str) -> Result<&'static Arch> {
    ARCHS.iter().find(|a| a.name == name).ok_or_else(|| {
        let names: Vec<&str> = ARCHS.iter().map(|a| a.name).collect();
        Error::invalid("arch", format!("unknown architecture '{name}'; valid: {}", names.join(", ")))
    })
}

/// How to build a block's graph.
#[derive(Clone, Debug, Default)]
pub struct BuildOptions {
    /// Which fusion rules may be used.
    pub fusion: Fusion,
    /// Output attention maps as well as `y`.
    pub maps: bool,
    /// Query pixels (x, y) for Non-local attention maps.
    pub queries: Vec<[usize; 2]>,
}

/// Builds the graph of `arch` for an input of `input` shape: one input `x`,
/// output `y`, and the attention maps when asked.
pub fn build(
    arch_name: &str,
    input: &Shape,
    weights: Weights,
    args: &[String],
    options: BuildOptions,
) -> Result<Graph> {
    let name = arch(arch_name)?.name;
    input.nchw(name, "input x")?;
    let mut b = Builder::new(weights, options);
    let x = b.graph.input("x", input.clone());
    let y = b.block(name, x, args, "")?;
    b.finish(y)
}
