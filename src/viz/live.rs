//! What index.html needs to be interactive, per picture in `{name}/live.js` (a classic
//! script, so the page still opens from disk: Chromium refuses module and fetch loads over
//! file://): every heat map's values (hover shows the value under the cursor) and each
//! Non-local layer's theta and phi, from which the page computes the attention row of any
//! query pixel the user clicks, with `attention_rows.wgsl` in WebGPU or in plain JavaScript.
//!
//! theta and phi are stored as f16 when the rows computed from the rounded values stay within
//! the op tolerance of the rows from the f32 values, else as f32 (see [`compact`]).

use super::figures::HeatMap;
use super::job::image_slice;
use super::render::{ImageReport, Style};
use crate::blocks::{map_spec, MapKind};
use crate::check::{compare, OP_TOLERANCE};
use crate::graph::Tensors;
use crate::ops::attention_rows::AttentionRows;
use crate::ops::Op;
use crate::tensorfile::write_atomically;
use crate::{Error, Result, Shape, Tensor};
use serde_json::{json, Value};
use std::path::Path;
use std::time::Instant;

/// One Non-local layer's inputs to its attention rows, for one picture.
#[derive(Clone, Debug)]
pub struct AttentionInputs {
    /// The attention map's output name ("layer1.0.attn.attention").
    pub map: String,
    /// [1, D, H, W]: the queries' features, the score scale folded in.
    pub theta: Tensor,
    /// [1, D, Hk, Wk]: the keys' features.
    pub phi: Tensor,
}

/// Writes `{name}/live.js` for the picture `report` describes, image `slot` of a batch's
/// `outputs`: its heat maps `heat` (drawn as the report's first figures) and the theta and
/// phi of each Non-local map among `maps`, with the `style` live rows are drawn in. Sets
/// `report.live` and adds the time to its write time.
pub fn write(
    out_dir: &Path,
    report: &mut ImageReport,
    style: Style,
    heat: &[HeatMap],
    outputs: &Tensors,
    maps: &[String],
    slot: usize,
) -> Result<()> {
    let start = Instant::now();
    let mut attention = Vec::new();
    for map in maps.iter().filter(|m| map_spec(m).is_some_and(|(_, s)| s.kind == MapKind::Attention)) {
        let part = |what: &str| -> Result<Tensor> {
            let t = outputs.get(&format!("{map}.{what}")).ok_or_else(|| {
                Error::invalid("map", format!("the network has no '{map}.{what}' for the live report"))
            })?;
            image_slice(t, slot)
        };
        attention.push(AttentionInputs { map: map.clone(), theta: part("theta")?, phi: part("phi")? });
    }
    let text = script(report, style, heat, &attention)?;
    report.live = format!("{}/live.js", report.name);
    write_atomically(&out_dir.join(&report.live), text.as_bytes())?;
    report.write_time += start.elapsed();
    Ok(())
}

/// Most multiply-adds [`compact`] spends checking f16 on one layer: above it, an even spread
/// of query rows is checked instead of every row.
const CHECK_BUDGET: usize = 1 << 24;

/// The text of `{name}/live.js` for the picture `report` describes: its heat maps `heat`,
/// drawn as the report's first figures (in the same order), the Non-local layers'
/// `attention` inputs, and the colormap and alpha of `style`.
pub fn script(report: &ImageReport, style: Style, heat: &[HeatMap], attention: &[AttentionInputs]) -> Result<String> {
    let heat_json: Vec<Value> = heat
        .iter()
        .zip(&report.figures)
        .map(|(h, f)| {
            let dims = h.map.shape().dims();
            json!({
                "figure": f.path,
                "map": h.source.0,
                "row": h.source.1,
                "height": dims[1],
                "width": dims[2],
                "lo": h.lo,
                "hi": h.hi,
                "values": base64(&f32_bytes(h.map.data())),
            })
        })
        .collect();
    let mut attention_json = Vec::new();
    for a in attention {
        let (&[1, d, h, w], &[1, dk, hk, wk]) = (a.theta.shape().dims(), a.phi.shape().dims()) else {
            return Err(Error::invalid(
                "map",
                format!("{}: theta {} / phi {} are not 1 x D x H x W", a.map, a.theta.shape(), a.phi.shape()),
            ));
        };
        if d != dk {
            return Err(Error::invalid("map", format!("{}: theta has {d} channels, phi {dk}", a.map)));
        }
        let (dtype, theta, phi, checked) = compact(&a.theta, &a.phi)?;
        attention_json.push(json!({
            "map": a.map,
            "channels": d,
            "grid": [h, w],
            "keys": [hk, wk],
            "dtype": dtype,
            "f16_checked_rows": checked,
            "theta": base64(&theta),
            "phi": base64(&phi),
        }));
    }
    let data = json!({
        "picture": report.name,
        "photo": report.photo_size,
        "photo_file": report.photo,
        "alpha": style.alpha,
        "colormap": (0..256).map(|i| style.colormap.rgb8(i as f64 / 255.0)).collect::<Vec<_>>(),
        "heat": heat_json,
        "attention": attention_json,
    });
    // `</` never appears in JSON from serde except inside strings; escape it so the text can
    // never close a script element if it is ever inlined.
    let text = serde_json::to_string(&data).map_err(|e| Error::invalid("map", e.to_string()))?.replace("</", "<\\/");
    Ok(format!("(window.glimpseLive = window.glimpseLive || []).push({text});\n"))
}

/// theta and phi as little-endian f16 when that keeps the attention rows within
/// [`OP_TOLERANCE`] of the rows from f32 (checked on every query row, or on an even spread
/// of rows when every row would cost more than [`CHECK_BUDGET`] multiply-adds), else as f32.
/// Returns the dtype, both byte strings and how many rows were checked.
pub fn compact(theta: &Tensor, phi: &Tensor) -> Result<(&'static str, Vec<u8>, Vec<u8>, usize)> {
    let dims = theta.shape().dims();
    let (d, q) = (dims[1], dims[2] * dims[3]);
    let k = phi.shape().numel() / d.max(1);
    let step = (q * k * d).div_ceil(CHECK_BUDGET).max(1);
    let queries: Vec<usize> = (0..q).step_by(step).collect();
    let flat = |t: &Tensor, n: usize| Tensor::new(Shape::new(&[1, d, n])?, t.data().to_vec());
    let rounded = |t: &Tensor, n: usize| {
        Tensor::new(Shape::new(&[1, d, n])?, t.data().iter().map(|&v| half::f16::from_f32(v).to_f32()).collect())
    };
    let rows = AttentionRows { scale: 1.0, queries };
    let checked = rows.queries.len();
    // Values past f16's range rule it out before any row is computed.
    let fits = theta.data().iter().chain(phi.data()).all(|v| v.abs() <= half::f16::MAX.to_f32());
    let f16_passes = || -> Result<bool> {
        let exact = rows.reference(&[&flat(theta, q)?, &flat(phi, k)?])?;
        let from_f16 = rows.reference(&[&rounded(theta, q)?, &rounded(phi, k)?])?;
        Ok(compare(&from_f16, &exact, OP_TOLERANCE).passed)
    };
    if fits && f16_passes()? {
        let f16 = |t: &Tensor| t.data().iter().flat_map(|&v| half::f16::from_f32(v).to_le_bytes()).collect();
        Ok(("f16", f16(theta), f16(phi), checked))
    } else {
        Ok(("f32", f32_bytes(theta.data()), f32_bytes(phi.data()), checked))
    }
}

fn f32_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// Standard base64 with padding (RFC 4648), as the page's `atob` reads it.
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        let cases =
            [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foob", "Zm9vYg=="), ("foobar", "Zm9vYmFy")];
        for (plain, want) in cases {
            assert_eq!(base64(plain.as_bytes()), want);
        }
    }

    #[test]
    fn f16_is_chosen_only_when_the_rows_stay_within_tolerance() {
        // Scores of zero: every row is uniform whatever the rounding, so f16 is exact enough.
        let zeros = Tensor::from_vec(&[1, 2, 2, 2], vec![0.0; 8]).unwrap();
        assert_eq!(compact(&zeros, &zeros).unwrap().0, "f16");
        // Scores of a few units: f16's 1e-3 relative rounding moves the softmax by far more than 1e-5.
        let mut rng = fastrand::Rng::with_seed(3);
        let theta = Tensor::random(Shape::new(&[1, 4, 3, 3]).unwrap(), &mut rng, -2.0, 2.0);
        let phi = Tensor::random(Shape::new(&[1, 4, 3, 3]).unwrap(), &mut rng, -2.0, 2.0);
        let (dtype, t, p, checked) = compact(&theta, &phi).unwrap();
        assert_eq!((dtype, t.len(), p.len(), checked), ("f32", 36 * 4, 36 * 4, 9));
    }
}
