//! From a batch's map outputs to one image's figures: which map is which kind, the heat maps
//! to draw with their normalisation ranges and query markers, and the charts.

use crate::blocks::{map_spec, MapKind};
use crate::graph::Tensors;
use crate::{Error, Result, Shape, Tensor};
use std::str::FromStr;

/// How heat maps are scaled to the colormap.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Normalize {
    /// Each image's map from its own minimum to its maximum.
    #[default]
    Image,
    /// The same range for every image of a batch: the minimum and maximum over the batch.
    Batch,
    /// The map's own range, 0 .. 1: every glimpse map is a sigmoid or softmax output.
    Fixed,
}

impl FromStr for Normalize {
    type Err = Error;

    fn from_str(s: &str) -> Result<Normalize> {
        match s {
            "image" => Ok(Normalize::Image),
            "batch" => Ok(Normalize::Batch),
            "fixed" => Ok(Normalize::Fixed),
            _ => Err(Error::invalid("normalize", format!("unknown mode '{s}'; valid: image, batch, fixed"))),
        }
    }
}

/// What the figures need to know about one attention layer beyond its maps.
#[derive(Clone, Debug, Default)]
pub struct LayerInfo {
    /// The layer's prefix, as its maps are named ("layer1.0.").
    pub prefix: String,
    /// Its input grid (height, width): what query pixels are given in.
    pub grid: Option<[usize; 2]>,
    /// Its query pixels (x, y), in the order of the rows of its `attention` map.
    pub queries: Vec<[usize; 2]>,
}

/// A map to draw over the photo.
#[derive(Clone, Debug)]
pub struct HeatMap {
    /// File stem ("layer1.0.spatial", "layer2.0.attention.q1").
    pub file: String,
    /// The map output it comes from ("layer2.0.attention") and, for attention rows, the row.
    pub source: (String, Option<usize>),
    /// Caption.
    pub caption: String,
    /// The map [1, h, w].
    pub map: Tensor,
    /// Value drawn with the colormap's first colour.
    pub lo: f32,
    /// Value drawn with its last colour.
    pub hi: f32,
    /// The query pixel's centre as fractions (x / width, y / height) of the picture.
    pub marker: Option<[f64; 2]>,
}

/// A chart of weights.
#[derive(Clone, Debug)]
pub enum Chart {
    /// Channel attention weights, one per channel.
    Channel { file: String, caption: String, weights: Vec<f32> },
    /// Branch attention weights [M][C] and a name per branch.
    Branch { file: String, caption: String, weights: Vec<Vec<f32>>, names: Vec<String> },
}

/// One image's figures, in the order of the maps.
#[derive(Clone, Debug, Default)]
pub struct Figures {
    /// Pictures over the photo.
    pub heat: Vec<HeatMap>,
    /// Charts.
    pub charts: Vec<Chart>,
}

/// The layer name users see: the prefix without its trailing dot ("" for a single block).
pub fn layer_name(prefix: &str) -> &str {
    prefix.strip_suffix('.').unwrap_or(prefix)
}

fn min_max(values: &[f32]) -> (f32, f32) {
    values.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| (lo.min(v), hi.max(v)))
}

/// The figures of image `image` of the first `images` images of a batch: each map in `maps`
/// (names of outputs in `outputs`), with ranges by `normalize` and markers from `layers`.
pub fn figures(
    outputs: &Tensors,
    maps: &[String],
    images: usize,
    image: usize,
    normalize: Normalize,
    layers: &[LayerInfo],
) -> Result<Figures> {
    let mut figures = Figures::default();
    for name in maps {
        let (prefix, spec) = map_spec(name).ok_or_else(|| Error::invalid("map", format!("'{name}' is no map")))?;
        let kind = spec.kind;
        let t = outputs.get(name).ok_or_else(|| Error::invalid("map", format!("the network has no map '{name}'")))?;
        let dims = t.shape().dims();
        if dims.len() != kind.rank() || dims[0] < images || image >= images {
            return Err(Error::invalid(
                "map",
                format!("'{name}' {} does not fit a {kind:?} map of {images} images", t.shape()),
            ));
        }
        let per_image = t.shape().numel() / dims[0];
        let slice = |i: usize| &t.data()[i * per_image..(i + 1) * per_image];
        let info = layers.iter().find(|l| l.prefix == prefix);
        let layer = layer_name(prefix);
        let stem = name.replace(|c: char| !(c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_'), "_");
        match kind {
            MapKind::Channel => figures.charts.push(Chart::Channel {
                file: stem,
                caption: format!("{layer} channel attention"),
                weights: slice(image).to_vec(),
            }),
            MapKind::Branch => {
                let (m, c) = (dims[1], dims[2]);
                let weights = (0..m).map(|b| slice(image)[b * c..(b + 1) * c].to_vec()).collect();
                let names = (0..m)
                    .map(|b| spec.labels.get(b).map_or_else(|| format!("branch {b}"), |l| l.to_string()))
                    .collect();
                let caption = format!("{layer} branch attention");
                figures.charts.push(Chart::Branch { file: stem, caption, weights, names });
            }
            MapKind::Spatial | MapKind::Attention => {
                let (rows, h, w) = (dims[1], dims[2], dims[3]);
                for row in 0..rows {
                    let values = |i: usize| &slice(i)[row * h * w..(row + 1) * h * w];
                    let (lo, hi) = match normalize {
                        Normalize::Image => min_max(values(image)),
                        Normalize::Batch => (0..images)
                            .map(|i| min_max(values(i)))
                            .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), (a, b)| (lo.min(a), hi.max(b))),
                        Normalize::Fixed => (0.0, 1.0),
                    };
                    let map = Tensor::new(Shape::new(&[1, h, w])?, values(image).to_vec())?;
                    let (file, caption, marker, source) = if kind == MapKind::Spatial {
                        (stem.clone(), format!("{layer} spatial attention"), None, (name.clone(), None))
                    } else {
                        let query = info.and_then(|l| Some((l.queries.get(row)?, l.grid?)));
                        let caption = match query {
                            Some(([x, y], [gh, gw])) => format!("{layer} attention of query ({x}, {y}) of {gw} x {gh}"),
                            None => format!("{layer} attention of query {row}"),
                        };
                        let marker = query
                            .map(|([x, y], [gh, gw])| [(*x as f64 + 0.5) / gw as f64, (*y as f64 + 0.5) / gh as f64]);
                        (format!("{stem}.q{row}"), caption, marker, (name.clone(), Some(row)))
                    };
                    figures.heat.push(HeatMap { file, source, caption, map, lo, hi, marker });
                }
            }
        }
    }
    Ok(figures)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outputs() -> Tensors {
        let spatial = Tensor::from_vec(&[2, 1, 1, 2], vec![0.2, 0.4, 0.1, 0.9]).unwrap();
        let attention = Tensor::from_vec(&[2, 2, 1, 2], vec![0.5, 0.5, 0.9, 0.1, 0.3, 0.7, 0.0, 1.0]).unwrap();
        Tensors::from([("a.spatial".to_string(), spatial), ("nl.attention".to_string(), attention)])
    }

    #[test]
    fn ranges_follow_the_normalize_mode() {
        let maps = vec!["a.spatial".to_string()];
        let range = |mode, image| {
            let f = figures(&outputs(), &maps, 2, image, mode, &[]).unwrap();
            (f.heat[0].lo, f.heat[0].hi)
        };
        assert_eq!(range(Normalize::Image, 0), (0.2, 0.4));
        assert_eq!(range(Normalize::Image, 1), (0.1, 0.9));
        assert_eq!(range(Normalize::Batch, 0), (0.1, 0.9));
        assert_eq!(range(Normalize::Fixed, 0), (0.0, 1.0));
        // Only the first image counts when the batch was padded to two.
        let f = figures(&outputs(), &maps, 1, 0, Normalize::Batch, &[]).unwrap();
        assert_eq!((f.heat[0].lo, f.heat[0].hi), (0.2, 0.4));
    }

    #[test]
    fn attention_rows_become_marked_heat_maps() {
        let layer = LayerInfo { prefix: "nl.".into(), grid: Some([4, 2]), queries: vec![[0, 0], [1, 3]] };
        let f = figures(&outputs(), &["nl.attention".into()], 2, 1, Normalize::Image, &[layer]).unwrap();
        assert_eq!(f.heat.len(), 2);
        assert_eq!(f.heat[1].file, "nl.attention.q1");
        assert_eq!(f.heat[1].map.data(), &[0.0, 1.0]);
        assert_eq!(f.heat[1].marker, Some([0.75, 0.875]));
        assert!(f.heat[1].caption.contains("query (1, 3) of 2 x 4"), "{}", f.heat[1].caption);
    }

    #[test]
    fn bad_maps_are_named() {
        let err = figures(&outputs(), &["b.spatial".into()], 2, 0, Normalize::Image, &[]).unwrap_err();
        assert!(err.to_string().contains("no map 'b.spatial'"), "{err}");
        let err = figures(&outputs(), &["a.spatial".into()], 3, 0, Normalize::Image, &[]).unwrap_err();
        assert!(err.to_string().contains("'a.spatial' [2 x 1 x 1 x 2]"), "{err}");
        assert_eq!("batch".parse::<Normalize>().unwrap(), Normalize::Batch);
        assert!("global".parse::<Normalize>().unwrap_err().to_string().contains("image, batch, fixed"));
    }
}
