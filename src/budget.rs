//! The memory budget, in one place: every allocation whose size a user's input
//! decides (a photo's pixels, a model's input, a batch, a picture drawn, the
//! CPU reference's tensors) is checked against these limits before it is made,
//! so a bad file or argument ends in an error naming the bytes needed and the
//! budget, never in gigabytes allocated or an out-of-memory kill.

use crate::{Error, Result};

/// Largest width or height of a photo decoded, and of a model's input.
pub const MAX_SIDE: u32 = 8192;
/// Most bytes a decoder may allocate for one photo.
pub const DECODE_BYTES: u64 = 256 << 20;
/// Most bytes of one picture drawn (an overlay or a contact sheet, RGB8).
pub const PICTURE_BYTES: u64 = 64 << 20;
/// Most host bytes the tensors of one run may take: every tensor the CPU
/// reference keeps while it runs a graph, or one batch of photos as inputs.
pub const HOST_BYTES: u64 = 4 << 30;

/// Fails when `what` needs more than `budget` bytes, naming both.
pub fn check(what: &str, bytes: u64, budget: u64) -> Result<()> {
    if bytes <= budget {
        return Ok(());
    }
    Err(Error::invalid(
        "memory budget",
        format!("{what} needs {}, more than the {} glimpse allows for it", size(bytes), size(budget)),
    ))
}

/// Bytes of `elements` f32 values, saturating (a product of user sizes can overflow).
pub fn f32_bytes(elements: &[usize]) -> u64 {
    elements.iter().fold(4u64, |acc, &d| acc.saturating_mul(d as u64))
}

/// A byte count for people: "9.1 GiB", "300 MiB", "512 bytes".
pub fn size(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 30 => format!("{:.1} GiB", b as f64 / (1u64 << 30) as f64),
        b if b >= 1 << 20 => format!("{:.0} MiB", b as f64 / (1u64 << 20) as f64),
        b if b >= 1 << 10 => format!("{:.0} KiB", b as f64 / 1024.0),
        b => format!("{b} bytes"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn over_budget_names_both_sizes_and_products_saturate() {
        check("x", HOST_BYTES, HOST_BYTES).unwrap();
        let e = check("the CPU reference for 3 x 8192 x 8192", 9 << 30, HOST_BYTES).unwrap_err().to_string();
        assert!(e.contains("needs 9.0 GiB, more than the 4.0 GiB"), "{e}");
        assert_eq!(f32_bytes(&[3, 8192, 8192]), 805_306_368);
        assert_eq!(f32_bytes(&[usize::MAX, 4]), u64::MAX);
        assert_eq!(size(300 << 20), "300 MiB");
    }
}
