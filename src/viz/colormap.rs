//! Colormaps as 256-entry tables: what the `render_overlay` kernel reads, and what the CPU
//! drawing code (colour bars, charts) samples.

use crate::ops::render_overlay::COLORMAP_SIZE;
use crate::{Error, Tensor};
use std::str::FromStr;

/// A colormap for heat maps.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Colormap {
    /// Google's Turbo: a perceptually smoother rainbow (the default).
    #[default]
    Turbo,
    /// matplotlib's viridis: perceptually uniform, colour-blind safe.
    Viridis,
    /// matplotlib's inferno: perceptually uniform, black to yellow.
    Inferno,
    /// MATLAB's jet (not perceptually uniform; for comparison with older papers).
    Jet,
    /// Black to white.
    Gray,
}

impl Colormap {
    /// Every colormap with its command-line name.
    pub const ALL: [(&'static str, Colormap); 5] = [
        ("turbo", Colormap::Turbo),
        ("viridis", Colormap::Viridis),
        ("inferno", Colormap::Inferno),
        ("jet", Colormap::Jet),
        ("gray", Colormap::Gray),
    ];

    /// The colour at `t` in [0, 1] (clamped), as r, g, b in [0, 1].
    pub fn eval(self, t: f64) -> [f64; 3] {
        let t = t.clamp(0.0, 1.0);
        let gradient = match self {
            Colormap::Turbo => colorous::TURBO,
            Colormap::Viridis => colorous::VIRIDIS,
            Colormap::Inferno => colorous::INFERNO,
            // colorous has no jet: MATLAB's piecewise-linear definition.
            Colormap::Jet => {
                let ramp = |centre: f64| (1.5 - (4.0 * t - centre).abs()).clamp(0.0, 1.0);
                return [ramp(3.0), ramp(2.0), ramp(1.0)];
            }
            Colormap::Gray => return [t; 3],
        };
        let c = gradient.eval_continuous(t);
        [c.r, c.g, c.b].map(|v| v as f64 / 255.0)
    }

    /// The [256, 3] table the `render_overlay` kernel takes: entry i is the colour at i / 255.
    pub fn table(self) -> Tensor {
        let data = (0..COLORMAP_SIZE)
            .flat_map(|i| self.eval(i as f64 / (COLORMAP_SIZE - 1) as f64))
            .map(|v| v as f32)
            .collect();
        Tensor::from_vec(&[COLORMAP_SIZE, 3], data).expect("the table has 256 x 3 entries")
    }

    /// The colour at `t` as 8-bit RGB, for drawing on the CPU.
    pub fn rgb8(self, t: f64) -> [u8; 3] {
        self.eval(t).map(|v| (v * 255.0).round() as u8)
    }
}

impl FromStr for Colormap {
    type Err = Error;

    fn from_str(name: &str) -> Result<Colormap, Error> {
        Colormap::ALL.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, c)| *c).ok_or_else(|| {
            let names: Vec<&str> = Colormap::ALL.iter().map(|(n, _)| *n).collect();
            Error::invalid("colormap", format!("unknown colormap '{name}'; valid: {}", names.join(", ")))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_span_the_colormap() {
        let jet = Colormap::Jet.table();
        assert_eq!(&jet.data()[..3], &[0.0, 0.0, 0.5]); // dark blue
        assert_eq!(&jet.data()[255 * 3..], &[0.5, 0.0, 0.0]); // dark red
        assert_eq!(Colormap::Gray.rgb8(1.0), [255; 3]);
        assert_eq!(Colormap::Viridis.rgb8(0.0), [68, 1, 84]);
        assert!(Colormap::Turbo.table().data().iter().all(|v| (0.0..=1.0).contains(v)));
    }

    #[test]
    fn names_parse_and_unknown_ones_list_the_valid() {
        assert_eq!("Inferno".parse::<Colormap>().unwrap(), Colormap::Inferno);
        let err = "hot".parse::<Colormap>().unwrap_err().to_string();
        assert!(err.contains("unknown colormap 'hot'") && err.contains("turbo, viridis, inferno, jet, gray"), "{err}");
    }
}
