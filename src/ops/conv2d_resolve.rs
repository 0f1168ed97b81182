//! conv2d's kernel resolution: `Auto` through [`crate::ops::choose::conv2d`], and the checks that
//! turn a forced kernel the device or the shapes cannot take into an error saying why (one arm per
//! kernel, so conv2d.rs stays the op itself).

use super::{Conv2d, ConvKernel, Geometry, MAX_K};
use crate::gpu::DeviceProfile;
use crate::ops::choose;
use crate::ops::Op;
use crate::{Error, Result};

impl Conv2d {
    /// The kernel this conv runs on a device with `profile`: `Auto` as [`crate::ops::choose::conv2d`]
    /// picks it; a forced kernel the device or the shapes cannot take is an error that says why.
    pub(super) fn resolve(&self, profile: &DeviceProfile, g: &Geometry) -> Result<ConvKernel> {
        let name = self.name();
        let shape = choose::ConvShape {
            cout_per_group: g.k[0] / self.groups,
            k: g.x[1] / self.groups * g.k[1] * g.k[2],
            kernel: [g.k[1], g.k[2]],
            cin_per_group: g.x[1] / self.groups,
            groups: self.groups,
            stride: self.stride,
            padding: self.padding,
            dilation: self.dilation,
            out: [g.x[0], g.out[0], g.out[1]],
        };
        match self.kernel {
            ConvKernel::Auto => Ok(choose::conv2d(profile, shape)),
            ConvKernel::Gemm | ConvKernel::GemmSubgroup if shape.k >= MAX_K => Err(Error::invalid(
                name,
                format!(
                    "the implicit GEMM takes K (input channels per group x taps) below {}, got {}",
                    MAX_K,
                    shape.k
                ),
            )),
            ConvKernel::GemmSubgroup
            | ConvKernel::WindowSubgroup
            | ConvKernel::PhasedSubgroup
            | ConvKernel::WindowSubsampled
            | ConvKernel::RepackSubgroup
                if profile.subgroup_width.is_none() =>
            {
                Err(Error::invalid(
                    name,
                    format!(
                        "the {:?} kernel needs subgroups of one fixed width from 4 to 64, which {} lacks",
                        self.kernel, profile.name
                    ),
                ))
            }
            k => match takes(k) {
                Some((fits, what)) if !fits(&shape) => Err(Error::invalid(
                    name,
                    format!(
                        "the {k:?} kernel takes only {what}, got {}x{} stride {:?} padding {:?} dilation {:?} groups {} \
                         with {} input channels per group",
                        shape.kernel[0],
                        shape.kernel[1],
                        self.stride,
                        self.padding,
                        self.dilation,
                        self.groups,
                        shape.cin_per_group
                    ),
                )),
                _ => Ok(k),
            },
        }
    }
}

/// Whether a kernel takes a conv of this shape: one of [`choose`]'s `*_fits` predicates.
type Fits = fn(&choose::ConvShape) -> bool;

/// The convs a kernel made for some shapes only takes ([`choose`]'s predicate) and how an error
/// says so; `None` for the kernels that take any conv.
fn takes(kernel: ConvKernel) -> Option<(Fits, &'static str)> {
    Some(match kernel {
        ConvKernel::WindowSubgroup => (
            choose::window_fits,
            "3 x 3 convs with padding = dilation (1 or 2) or 1 x 1 convs without padding, stride 1 or 2, one group \
             and input channels a multiple of 4",
        ),
        ConvKernel::PhasedSubgroup => {
            (choose::phased_fits, "7 x 7 convs with stride 2, padding 3, dilation 1 and one group")
        }
        ConvKernel::WindowSubsampled => (
            choose::subsampled_window_fits,
            "3 x 3 convs with stride 2, padding 2, dilation 2, one group and input channels a multiple of 4",
        ),
        ConvKernel::RepackSubgroup => {
            (choose::repack_fits, "convs with one group and input channels x taps a multiple of 4")
        }
        ConvKernel::Winograd => (
            choose::winograd_fits,
            "3 x 3 convs with stride 1 and padding = dilation (1 or 2), or stride 2 and padding = dilation = 2, \
             and one group",
        ),
        ConvKernel::WinogradStride2 => {
            (choose::winograd_s2_fits, "3 x 3 convs with stride 2, padding 1, dilation 1 and one group")
        }
        _ => return None,
    })
}
