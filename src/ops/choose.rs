//! Kernel choice: the one place that picks, from the [`DeviceProfile`] and the shapes, which
//! kernel each op with alternatives runs. Ops resolve their `Auto` here and nowhere else, so the
//! whole policy is readable (and tested, in choose_tests.rs) without a device.

use super::conv2d::{ConvKernel, MAX_K};
use crate::gpu::DeviceProfile;

/// What conv2d's choice depends on besides the device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvShape {
    /// Output channels per group: the implicit GEMM's rows.
    pub cout_per_group: usize,
    /// Input channels per group x taps: the implicit GEMM's K.
    pub k: usize,
    /// [KH, KW].
    pub kernel: [usize; 2],
}

/// Fewest output channels per group the implicit GEMM takes: its tiles are 16 rows per subgroup
/// (64 per workgroup), so depthwise and narrow grouped convs would compute mostly padding; the
/// direct kernel holds 4 channels per invocation.
pub const GEMM_MIN_COUT_PER_GROUP: usize = 8;

/// conv2d: the implicit GEMM wherever a group has enough output channels (and K is below
/// [`MAX_K`]), with subgroups where the device has them (any fixed width from 4 to 64); the direct
/// kernel otherwise.
pub fn conv2d(profile: &DeviceProfile, shape: ConvShape) -> ConvKernel {
    let gemm = shape.cout_per_group >= GEMM_MIN_COUT_PER_GROUP && shape.k < MAX_K;
    match (gemm, profile.subgroup_width) {
        (false, _) => ConvKernel::Direct,
        (true, Some(_)) => ConvKernel::GemmSubgroup,
        (true, None) => ConvKernel::Gemm,
    }
}
