//! Whole networks: a .safetensors file holding the weights of every layer and,
//! in its metadata under `glimpse.network`, the network as JSON: the input
//! size, the layers in order (each an architecture from [`crate::blocks`] with
//! the prefix its weights live under and its arguments), the class labels and
//! the input normalisation. The loader builds one graph from the same block
//! builders `glimpse run` uses, so every block's fusion, maps and checks apply.
//!
//! ```json
//! {"name": "demo", "input": [3, 64, 64],
//!  "layers": [{"arch": "ConvBnAct", "prefix": "stem.", "args": ["stride=2"]},
//!             {"arch": "BasicBlock", "prefix": "layer1.0."},
//!             {"arch": "GlobalAvgPool"}, {"arch": "Linear", "prefix": "fc."}],
//!  "labels": ["circle", "square"], "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]}
//! ```
//! Maps come out named `{prefix}{map}`, e.g. `layer1.0.spatial`.

pub mod resnet;

use crate::blocks::{BuildOptions, Builder};
use crate::graph::Graph;
use crate::preprocess::Preprocess;
use crate::tensorfile::TensorFile;
use crate::weights::Weights;
use crate::{Error, Result, Shape};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The metadata key holding the network description.
pub const NETWORK_KEY: &str = "glimpse.network";

/// Largest input height or width a model may declare (the photo loader's limit too).
pub const MAX_INPUT_SIDE: usize = crate::budget::MAX_SIDE as usize;
/// Most input channels a model may declare.
pub const MAX_INPUT_CHANNELS: usize = 4096;

/// One layer of a network.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LayerSpec {
    /// An architecture name from `glimpse run --help`.
    pub arch: String,
    /// Where its weights live in the state_dict ("layer1.0."); also its maps' prefix.
    #[serde(default)]
    pub prefix: String,
    /// KEY=VALUE arguments, as `glimpse run --arg` takes them.
    #[serde(default)]
    pub args: Vec<String>,
}

/// A network: input size, layers, labels, normalisation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NetworkSpec {
    /// A name for reports.
    pub name: String,
    /// Input channels, height, width.
    pub input: [usize; 3],
    /// The layers, applied in order.
    pub layers: Vec<LayerSpec>,
    /// Class names, one per output of the last layer (may be empty).
    #[serde(default)]
    pub labels: Vec<String>,
    /// Per-channel mean subtracted from [0, 1] pixels.
    #[serde(default)]
    pub mean: Vec<f32>,
    /// Per-channel standard deviation the pixels are divided by.
    #[serde(default)]
    pub std: Vec<f32>,
}

/// Where `glimpse map` gets its model: a glimpse model file, or an
/// architecture from `glimpse run --help` with a PyTorch state_dict.
#[derive(Clone, Debug)]
pub enum ModelSource {
    /// A .safetensors with `glimpse.network` metadata.
    File(PathBuf),
    /// A named architecture (a whole network, e.g. timm.skresnet18) and its weights.
    Arch {
        /// The architecture name.
        arch: String,
        /// Its state_dict.
        weights: PathBuf,
        /// KEY=VALUE constructor arguments.
        args: Vec<String>,
        /// The square input side photos are resized to (default: the pretrained config's).
        size: Option<usize>,
    },
}

impl ModelSource {
    /// The weights, a name for errors, and the model.
    pub fn load(&self) -> Result<(TensorFile, String, Model)> {
        match self {
            ModelSource::File(path) => {
                let file = TensorFile::read(path)?;
                let source = path.display().to_string();
                let model = Model::from_file(file.clone(), &source)?;
                Ok((file, source, model))
            }
            ModelSource::Arch { arch, weights, args, size } => {
                let file = TensorFile::read(weights)?;
                let source = weights.display().to_string();
                let model = Model::from_arch(arch, file.clone(), &source, args, *size)?;
                Ok((file, source, model))
            }
        }
    }
}

/// Layers with attention maps name them `{prefix}{map}`: two such layers under one prefix
/// would give two maps one name, so a prefix may be used by one of them only. Unknown
/// architectures are left for [`Model::build`] to report.
fn check_map_prefixes(spec: &NetworkSpec) -> std::result::Result<(), String> {
    let mut seen: Vec<(&str, usize)> = Vec::new();
    for (i, layer) in spec.layers.iter().enumerate() {
        let has_maps = crate::blocks::arch(&layer.arch).is_ok_and(|a| !a.maps.is_empty());
        if !has_maps {
            continue;
        }
        // The builder's scopes ignore a trailing dot: "layer1.0" and "layer1.0." are one prefix.
        let prefix = layer.prefix.trim_end_matches('.');
        if let Some(&(_, first)) = seen.iter().find(|(p, _)| *p == prefix) {
            return Err(format!(
                "layers {first} and {i} both use the prefix '{}' and both have attention maps, whose names would clash; \
                 give each layer its own prefix",
                layer.prefix
            ));
        }
        seen.push((prefix, i));
    }
    Ok(())
}

/// A loaded model: its description and its weights.
#[derive(Clone, Debug)]
pub struct Model {
    /// The network description.
    pub spec: NetworkSpec,
    /// timm's eval transform for a named network (resize, centre crop, normalise);
    /// None for model files, whose photos are resized to the input (`photo::model_input`).
    pub preprocess: Option<Preprocess>,
    weights: TensorFile,
    source: String,
}

impl Model {
    /// Loads a model file; a file without `glimpse.network` metadata is an error.
    pub fn load(path: &Path) -> Result<Model> {
        Model::from_file(TensorFile::read(path)?, &path.display().to_string())
    }

    /// A model from tensors already read; `source` names it in errors.
    pub fn from_file(file: TensorFile, source: &str) -> Result<Model> {
        let file_error = |msg: String| Error::File { path: source.to_string(), msg };
        let json = file.metadata.get(NETWORK_KEY).ok_or_else(|| {
            file_error(format!(
                "no '{NETWORK_KEY}' metadata: this is not a glimpse model file (plain weights go to glimpse run)"
            ))
        })?;
        let spec: NetworkSpec = serde_json::from_str(json)
            .map_err(|e| file_error(format!("'{NETWORK_KEY}' metadata is not a valid network: {e}")))?;
        if spec.layers.is_empty() || spec.input.contains(&0) {
            return Err(file_error("the network has no layers or a zero-sized input".into()));
        }
        // The image loader's own limit: a typo of 100000 x 100000 must not become an allocation.
        let [_, h, w] = spec.input;
        if h > MAX_INPUT_SIDE || w > MAX_INPUT_SIDE || spec.input[0] > MAX_INPUT_CHANNELS {
            return Err(file_error(format!(
                "input {:?} is larger than glimpse accepts ({MAX_INPUT_CHANNELS} channels, {MAX_INPUT_SIDE} x {MAX_INPUT_SIDE} pixels)",
                spec.input
            )));
        }
        let c = spec.input[0];
        if (!spec.mean.is_empty() && spec.mean.len() != c) || (!spec.std.is_empty() && spec.std.len() != c) {
            return Err(file_error(format!("mean and std must have {c} values, one per input channel")));
        }
        check_normalisation(&spec.mean, &spec.std).map_err(file_error)?;
        check_map_prefixes(&spec).map_err(file_error)?;
        Ok(Model { spec, preprocess: None, weights: file, source: source.to_string() })
    }

    /// A network by architecture name over a state_dict: one layer, timm's
    /// eval preprocessing of its pretrained config (the crop side `size` when given), and the
    /// ImageNet class names when its classifier has 1000 outputs.
    pub fn from_arch(
        arch: &str,
        file: TensorFile,
        source: &str,
        args: &[String],
        size: Option<usize>,
    ) -> Result<Model> {
        let found = crate::blocks::arch(arch)?;
        let pretrained = found.pretrained;
        let side = match (size, pretrained) {
            (Some(s), _) => s,
            (None, Some(p)) => p.input_size[1],
            (None, None) => {
                return Err(Error::invalid(arch, "has no pretrained input size: give the input size (--img-size)"))
            }
        };
        if side == 0 || side > MAX_INPUT_SIDE {
            return Err(Error::invalid(arch, format!("input size {side} must be 1 to {MAX_INPUT_SIDE}")));
        }
        let (mean, std) = pretrained.map_or((vec![], vec![]), |p| (p.mean.to_vec(), p.std.to_vec()));
        // The photo goes through timm's eval transform, as `glimpse classify` does.
        let base = match pretrained {
            Some(p) => Preprocess::from_pretrained(&p)?,
            None => Preprocess::imagenet(side as u32),
        };
        let preprocess = Preprocess { size: side as u32, ..base };
        preprocess.validate()?;
        let classes = file.tensors.get("fc.weight").map(|t| t.shape().dims()[0]);
        let labels = if classes == Some(1000) { crate::classify::Labels::imagenet1k().into_names() } else { vec![] };
        let layer = LayerSpec { arch: found.name.to_string(), prefix: String::new(), args: args.to_vec() };
        let spec = NetworkSpec {
            name: found.name.to_string(),
            input: [3, side, side],
            layers: vec![layer],
            labels,
            mean,
            std,
        };
        Ok(Model { spec, preprocess: Some(preprocess), weights: file, source: source.to_string() })
    }

    /// The model's graph for a batch of `batch` images: input `x`
    /// [batch, C, H, W] (already normalised), output `y` (the last layer's),
    /// and the attention maps when `options.maps` is set.
    pub fn build(&self, batch: usize, options: BuildOptions) -> Result<Graph> {
        let [c, h, w] = self.spec.input;
        let mut b = Builder::new(Weights::new(self.weights.clone(), self.source.clone()), options);
        let mut v = b.graph.input("x", Shape::new(&[batch, c, h, w])?);
        for (i, layer) in self.spec.layers.iter().enumerate() {
            v = b.block(&layer.arch, v, &layer.args, &layer.prefix).map_err(|e| {
                Error::invalid(self.spec.name.clone(), format!("layer {i} ({} at '{}'): {e}", layer.arch, layer.prefix))
            })?;
        }
        b.finish(v)
    }
}

/// The smallest std a model may declare: pixels are divided by it, and below this the
/// normalised input leaves the range any network was trained on (and 1/std overflows f32
/// near 3e-39).
pub const MIN_STD: f32 = 1e-6;

/// Fails unless every mean is finite and every std finite and at least [`MIN_STD`]:
/// JSON's 1e39 parses to an infinite f32, and an infinite or NaN input would reach the
/// shaders, which may assume no NaN or Inf.
fn check_normalisation(mean: &[f32], std: &[f32]) -> std::result::Result<(), String> {
    if let Some((i, m)) = mean.iter().enumerate().find(|(_, m)| !m.is_finite()) {
        return Err(format!("mean[{i}] is {m}; every mean must be a finite number"));
    }
    if let Some((i, s)) = std.iter().enumerate().find(|(_, s)| !(s.is_finite() && **s >= MIN_STD)) {
        return Err(format!("std[{i}] is {s}; every std must be finite and at least {MIN_STD}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A one-layer model file whose metadata declares `mean` and `std` (JSON text).
    fn model_with(mean: &str, std: &str) -> TensorFile {
        let json = format!(
            r#"{{"name": "m", "input": [3, 8, 8], "layers": [{{"arch": "GlobalAvgPool"}}], "mean": {mean}, "std": {std}}}"#
        );
        let mut file = TensorFile::default();
        file.metadata.insert(NETWORK_KEY.to_string(), json);
        file
    }

    #[test]
    fn normalisation_must_be_finite_with_a_usable_std() {
        assert!(Model::from_file(model_with("[0.5, 0.5, 0.5]", "[0.25, 0.25, 0.25]"), "m").is_ok());
        for (mean, std, want) in [
            ("[1e39, 0, 0]", "[1, 1, 1]", "mean[0] is inf"),
            ("[0, -1e39, 0]", "[1, 1, 1]", "mean[1] is -inf"),
            ("[0, 0, 0]", "[1, 1, 1e39]", "std[2] is inf"),
            ("[0, 0, 0]", "[1e-7, 1, 1]", "std[0] is 0.0000001"),
            ("[0, 0, 0]", "[1, 1e-39, 1]", "std[1]"),
            ("[0, 0, 0]", "[1, 1, 0]", "std[2] is 0"),
            ("[0, 0, 0]", "[1, -1, 1]", "std[1] is -1"),
        ] {
            let err = Model::from_file(model_with(mean, std), "m.safetensors").unwrap_err().to_string();
            assert!(err.contains("m.safetensors") && err.contains(want), "mean {mean} std {std}: {err}");
        }
        // JSON has no NaN, but a Model built in code might: the check covers it too.
        assert!(check_normalisation(&[f32::NAN], &[1.0]).unwrap_err().contains("mean[0] is NaN"));
        assert!(check_normalisation(&[0.0], &[f32::NAN]).unwrap_err().contains("std[0] is NaN"));
    }
}
