//! Attention blocks and the networks made of them, as graph builders under
//! the names users know them: the tutorial's modules and timm's, with
//! PyTorch's weight names and constructor arguments.
//!
//! Blocks compose: a [`Builder`] keeps one scope stack for weight names and
//! map names alike, so `b.scope("layer2.0", ..)` then `b.scope("conv1", ..)`
//! reads `layer2.0.conv1.paths.0.conv.weight` and names the map
//! `layer2.0.conv1.attn`. A block is written once and used alone or inside
//! any network. Each builder reads its weights by state_dict name (inferring
//! what the shapes reveal), takes the remaining hyperparameters from [`Args`],
//! and adds single ops to the graph: the canonical graph. [`Builder::finish`]
//! then runs the fusion pass ([`crate::graph::fuse`]) with the rules [`Fusion`]
//! allows. With `maps` on, builders also mark their attention maps as named
//! outputs, which the rules keep alive.

mod args;
mod cbam;
mod hard;
mod layers;
mod nonlocal;
mod sk;

pub use args::{param, Args, Param};
pub(crate) use cbam::cbam_module;
pub(crate) use layers::conv_bn;
pub(crate) use sk::TIMM_SK_BRANCHES;

use crate::graph::{fuse, Fusion, Graph, Report, ValueId};
use crate::weights::Weights;
use crate::{Error, Result, Shape, Tensor};

/// What a builder works with.
pub struct Builder {
    /// The graph being built.
    pub graph: Graph,
    /// The state_dict being consumed (names are looked up under the current scope).
    pub weights: Weights,
    /// Which fusion rules [`Builder::finish`] applies to the canonical graph.
    pub fusion: Fusion,
    /// Whether attention maps become named outputs.
    pub maps: bool,
    /// Query pixels (x, y) whose Non-local attention rows are wanted.
    pub queries: Vec<[usize; 2]>,
    /// The grid [H, W] the queries are given in, when it is not each block's
    /// own: a Non-local block deep in a network scales them to its grid.
    pub query_grid: Option<[usize; 2]>,
}

impl Builder {
    /// A builder over an empty graph.
    pub fn new(weights: Weights, options: BuildOptions) -> Builder {
        let (fusion, maps, queries) = (options.fusion, options.maps, options.queries);
        Builder { graph: Graph::new(), weights, fusion, maps, queries, query_grid: None }
    }

    /// Runs `f` one scope deeper: weights and maps are named `{scope}.{name}`
    /// inside it (`name` may hold dots, "layer1.0"; an empty name adds nothing).
    pub fn scope<T>(&mut self, name: &str, f: impl FnOnce(&mut Builder) -> Result<T>) -> Result<T> {
        let name = name.trim_end_matches('.');
        let outer = self.weights.prefix().to_string();
        if !name.is_empty() {
            self.weights.set_prefix(&format!("{outer}{name}."));
        }
        let path = self.path().to_string();
        self.graph.set_scope(&path);
        let result = f(self);
        self.weights.set_prefix(&outer);
        let path = self.path().to_string();
        self.graph.set_scope(&path);
        result
    }

    /// The current scope as a state_dict path ("layer2.0.conv1"), empty at the top.
    pub fn path(&self) -> &str {
        self.weights.prefix().trim_end_matches('.')
    }

    /// Adds architecture `arch` on `x` under scope `name` with `KEY=VALUE`
    /// arguments, as `glimpse run` and model files name blocks.
    pub fn block(&mut self, arch: &str, x: ValueId, args: &[String], name: &str) -> Result<ValueId> {
        let arch = self::arch(arch)?;
        let mut args = Args::for_params(arch.name, arch.params, args)?;
        let y = self.scope(name, |b| (arch.build)(b, x, &mut args).and_then(|y| args.finish().map(|()| y)));
        // Inside a network, say where: "layer2.0.conv1: timm.SelectiveKernel: ...".
        let at = format!("{}{}", self.weights.prefix(), name.trim_end_matches('.'));
        match y {
            Err(Error::Invalid { op, msg }) if !at.is_empty() && !self.weights.prefix().is_empty() => {
                Err(Error::invalid(at, format!("{op}: {msg}")))
            }
            y => y,
        }
    }

    /// Marks `y` as the output, checks every weight was used, and applies the
    /// fusion rules [`Builder::fusion`] allows to the canonical graph.
    pub fn finish(self, y: ValueId) -> Result<Graph> {
        self.finish_reported(y).map(|(graph, _)| graph)
    }

    /// [`Builder::finish`], with where each fusion rule fired or was refused.
    pub fn finish_reported(mut self, y: ValueId) -> Result<(Graph, Report)> {
        self.graph.output("y", y);
        self.weights.finish()?;
        let report = fuse(&mut self.graph, &self.fusion)?;
        Ok((self.graph, report))
    }

    /// Marks `value` as the attention map `name` (under the current scope) when maps are wanted.
    pub fn map(&mut self, name: &str, value: ValueId) {
        if self.maps {
            let name = format!("{}{name}", self.weights.prefix());
            self.graph.output(&name, value);
        }
    }

    /// Adds a constant (weights) to the graph.
    pub fn constant(&mut self, tensor: Tensor) -> ValueId {
        self.graph.constant(tensor)
    }
}

/// How to build one architecture: the one place that names it.
pub struct Arch {
    /// The name `--arch` takes.
    pub name: &'static str,
    /// One line on what it is.
    pub about: &'static str,
    /// Its PyTorch constructor arguments with their defaults.
    pub params: &'static [Param],
    /// The attention maps it outputs (named under its own scope).
    pub maps: &'static [MapSpec],
    /// timm's pretrained configuration (input size and preprocessing), for networks.
    pub pretrained: Option<Pretrained>,
    pub(crate) build: fn(&mut Builder, ValueId, &mut Args) -> Result<ValueId>,
    /// Random weights under its state_dict names, as PyTorch's constructor makes
    /// them for the given `KEY=VALUE` arguments (networks; for the benchmark).
    pub random_weights: Option<RandomWeights>,
}

/// The width `key` (a block's first constructor argument: channels, in_channels,
/// features, inplanes) its random-weights maker is asked for.
pub(crate) fn random_width(arch: &str, key: &'static str, args: &[String]) -> Result<usize> {
    let mut a = Args::parse(arch, args)?;
    let c = a.usize(key, 64)?;
    a.finish()?;
    if c == 0 {
        return Err(Error::invalid(arch, format!("{key} must be at least 1")));
    }
    Ok(c)
}

/// What an attention map holds, which decides how it is drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapKind {
    /// Channel weights [N, C] (CBAM's channel attention).
    Channel,
    /// A spatial map [N, 1, h, w] (CBAM's spatial attention).
    Spatial,
    /// Branch weights [N, M, C], a softmax over the M branches (SK).
    Branch,
    /// Attention rows of query pixels [N, Q, hk, wk] (Non-local).
    Attention,
}

impl MapKind {
    /// The map's rank, batch dimension included.
    pub fn rank(self) -> usize {
        match self {
            MapKind::Channel => 2,
            MapKind::Branch => 3,
            MapKind::Spatial | MapKind::Attention => 4,
        }
    }
}

/// One attention map an architecture outputs: its name (the last part of the
/// output's name: `attn` in `layer2.0.conv1.attn`), kind, and a label per
/// row where the rows have names (SK's branches).
#[derive(Clone, Copy, Debug)]
pub struct MapSpec {
    /// The output's name under the block's scope ("spatial", or "se.spatial" in a network).
    pub name: &'static str,
    /// How to draw it.
    pub kind: MapKind,
    /// Names of its rows (branches); "branch i" past the end.
    pub labels: &'static [&'static str],
}

/// A [`MapSpec`] (short, for the architecture tables).
pub const fn map(name: &'static str, kind: MapKind, labels: &'static [&'static str]) -> MapSpec {
    MapSpec { name, kind, labels }
}

/// The map an output called `output` is, by the maps the architectures
/// declare: its layer prefix ("layer2.0.conv1.", or "" for a single block)
/// and its spec; None for outputs that are no map (`y`).
pub fn map_spec(output: &str) -> Option<(&str, &'static MapSpec)> {
    ARCHS.iter().flat_map(|a| a.maps).find_map(|spec| {
        let prefix = output.strip_suffix(spec.name)?;
        (prefix.is_empty() || prefix.ends_with('.')).then_some((prefix, spec))
    })
}

/// Makes a random state_dict for constructor arguments (`channels=16,32,64,128`).
pub type RandomWeights = fn(&[String], &mut fastrand::Rng) -> Result<crate::tensorfile::TensorFile>;

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
    cbam::TIMM_LIGHT_CBAM,
    sk::TIMM_SK,
    nonlocal::TIMM_NON_LOCAL,
    layers::CONV_BN_ACT,
    layers::GLOBAL_AVG_POOL,
    layers::LINEAR,
    crate::models::resnet::SKRESNET18,
    crate::models::resnet::SKRESNET34,
    crate::models::resnet::SKRESNET50,
    crate::models::resnet::SKRESNET50D,
    crate::models::resnet::SKRESNEXT50_32X4D,
    crate::models::resnet::RESNET18,
    crate::models::resnet::RESNET18D,
    crate::models::resnet::RESNET26,
    crate::models::resnet::RESNET26D,
    crate::models::resnet::RESNET34,
    crate::models::resnet::RESNET34D,
    crate::models::resnet::RESNET50,
    crate::models::resnet::RESNET50D,
    crate::models::resnet::RESNET101,
    crate::models::resnet::RESNET101D,
];

/// The architecture called `name`, or an error listing the valid ones.
pub fn arch(name: &str) -> Result<&'static Arch> {
    ARCHS.iter().find(|a| a.name == name).ok_or_else(|| {
        let names: Vec<&str> = ARCHS.iter().map(|a| a.name).collect();
        Error::invalid("arch", format!("unknown architecture '{name}'; valid: {}", names.join(", ")))
    })
}

/// timm's `make_divisible(v, divisor, round_limit=round_limit)`: `v` rounded
/// to a multiple of `divisor` (at least `divisor`), one step up when rounding
/// lost more than `1 - round_limit` of it. Reduction widths come from it.
pub fn make_divisible(v: f64, divisor: usize, round_limit: f64) -> usize {
    let d = divisor.max(1) as f64;
    let mut new_v = d.max(((v + d / 2.0) / d).floor() * d);
    if new_v < round_limit * v {
        new_v += d;
    }
    new_v as usize
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
    build_at(arch_name, "", input, weights, args, options)
}

/// Builds the block `arch_name` found under `prefix` ("layer1.0.se.") in a
/// whole state_dict: the tensors outside `prefix` are ignored, those inside
/// must all be used; maps are named by their full state_dict path. An empty
/// `prefix` is the whole file ([`build`]).
pub fn build_at(
    arch_name: &str,
    prefix: &str,
    input: &Shape,
    weights: Weights,
    args: &[String],
    options: BuildOptions,
) -> Result<Graph> {
    build_reported(arch_name, prefix, input, weights, args, options).map(|(graph, _)| graph)
}

/// [`build_at`], with where each fusion rule fired or was refused (`glimpse run --explain`).
pub fn build_reported(
    arch_name: &str,
    prefix: &str,
    input: &Shape,
    weights: Weights,
    args: &[String],
    options: BuildOptions,
) -> Result<(Graph, Report)> {
    let name = arch(arch_name)?.name;
    input.nchw(name, "input x")?;
    weights.reject_data_parallel()?;
    let weights = if prefix.is_empty() { weights } else { weights.only_under(prefix)? };
    let mut b = Builder::new(weights, options);
    let x = b.graph.input("x", input.clone());
    let y = b.block(name, x, args, prefix)?;
    b.finish_reported(y)
}
