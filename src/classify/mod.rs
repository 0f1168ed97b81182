//! Classifying photos: which files to read, class probabilities from a network's logits, and
//! the reports (`glimpse classify` runs the network itself; see src/cli/classify.rs).

pub mod labels;
pub mod report;

pub use labels::Labels;
pub use report::{Outcome, Ranked};

use crate::{Error, Result, Tensor};
use std::path::PathBuf;

pub use crate::walk::IMAGE_EXTENSIONS;

/// The images to classify: each file named, and the .png / .jpg / .jpeg files directly inside
/// each folder named (not its subfolders), sorted by name (the walker `glimpse map` uses, one
/// level deep: each real folder listed once). A missing or unreadable file is kept: it is reported
/// when it fails to decode, and the others go on.
pub fn collect_images(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    Ok(crate::walk::collect(paths, crate::walk::Depth::OneLevel, None)?.images)
}

/// The class scores of a classifier's output: `y` as [N, K], or [N, K, 1, 1] (a network cut
/// after global pooling). Returns (N, K).
pub fn logit_rows(y: &Tensor) -> Result<(usize, usize)> {
    match *y.shape().dims() {
        [n, k] | [n, k, 1, 1] => Ok((n, k)),
        _ => Err(Error::invalid(
            "classify",
            format!("the network's output y is {}; a classifier gives N x classes", y.shape()),
        )),
    }
}

/// Softmax of one row of logits in f64, the maximum subtracted first so that large logits
/// cannot overflow. Non-finite logits are an error (a probability from them would be noise).
pub fn softmax(logits: &[f32]) -> Result<Vec<f64>> {
    if let Some(i) = logits.iter().position(|v| !v.is_finite()) {
        return Err(Error::invalid("classify", format!("logit {i} is {} (not finite)", logits[i])));
    }
    let max = logits.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v as f64));
    let exp: Vec<f64> = logits.iter().map(|&v| (v as f64 - max).exp()).collect();
    let sum: f64 = exp.iter().sum();
    Ok(exp.into_iter().map(|e| e / sum).collect())
}

/// The `k` most probable classes of one row of logits, most probable first (ties: lower
/// index first), named from `labels`.
pub fn top_k(logits: &[f32], k: usize, labels: &Labels) -> Result<Vec<Ranked>> {
    if labels.len() != logits.len() {
        return Err(Error::invalid("classify", format!("{} labels for {} classes", labels.len(), logits.len())));
    }
    let probs = softmax(logits)?;
    let mut order: Vec<usize> = (0..probs.len()).collect();
    order.sort_by(|&a, &b| probs[b].total_cmp(&probs[a]).then(a.cmp(&b)));
    Ok(order
        .into_iter()
        .take(k)
        .map(|index| Ranked { index, label: labels.get(index).to_string(), prob: probs[index] })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn softmax_survives_large_logits_and_rejects_nan() {
        let p = softmax(&[1000.0, 1000.0, -f32::MAX]).unwrap();
        assert_eq!(p, [0.5, 0.5, 0.0]);
        assert!(softmax(&[0.0, f32::NAN]).unwrap_err().to_string().contains("logit 1 is NaN"));
    }

    #[test]
    fn top_k_orders_by_probability_then_index() {
        let labels = Labels::numbered(4);
        let top = top_k(&[1.0, 3.0, 3.0, 2.0], 3, &labels).unwrap();
        let got: Vec<usize> = top.iter().map(|r| r.index).collect();
        assert_eq!(got, [1, 2, 3]);
        assert_eq!(top[0].label, "class 1");
        let e = 3f64.exp();
        let want = e / (1f64.exp() + 2.0 * e + 2f64.exp());
        assert!((top[0].prob - want).abs() < 1e-15);
        assert_eq!(top_k(&[0.0; 4], 10, &labels).unwrap().len(), 4);
    }
}
