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
}

impl Builder {
    /// Marks `value` as the attention map `name` when maps are wanted.
    pub fn map(&mut self, name: &str, value: ValueId) {
        if self.maps {
            self.graph.output(name, value);
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
    build: fn(&mut Builder, ValueId, &mut Args) -> Result<ValueId>,
}

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
    let arch = arch(arch_name)?;
    input.nchw(arch.name, "input x")?;
    let mut args = Args::parse(arch.name, args)?;
    let mut b =
        Builder { graph: Graph::new(), weights, fusion: options.fusion, maps: options.maps, queries: options.queries };
    let x = b.graph.input("x", input.clone());
    let y = (arch.build)(&mut b, x, &mut args)?;
    b.graph.output("y", y);
    args.finish()?;
    b.weights.finish()?;
    Ok(b.graph)
}
