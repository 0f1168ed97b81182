//! Hard attention: torchvision's CenterCrop and PyTorch's MaxPool2d.

use super::{Arch, Args, Builder};
use crate::graph::ValueId;
use crate::ops::center_crop::CenterCrop;
use crate::ops::max_pool2d::MaxPool2d;
use crate::Result;

pub const CENTER_CROP: Arch = Arch {
    name: "CenterCrop",
    about: "torchvision's center crop (offsets rounded half to even); no weights",
    args: "size=H,W (required)",
    maps: &[],
    pretrained: None,
    build: center_crop,
};

pub const MAX_POOL: Arch = Arch {
    name: "MaxPool2d",
    about: "PyTorch's MaxPool2d with -inf padding; no weights",
    args: "kernel_size=K (required), stride=kernel_size, padding=0",
    maps: &[],
    pretrained: None,
    build: max_pool,
};

fn center_crop(b: &mut Builder, x: ValueId, args: &mut Args) -> Result<ValueId> {
    let size = args.required_pair("size")?;
    b.graph.add(CenterCrop::new(size), &[x])
}

fn max_pool(b: &mut Builder, x: ValueId, args: &mut Args) -> Result<ValueId> {
    let kernel = args.required_pair("kernel_size")?;
    let stride = args.pair("stride", kernel)?;
    let padding = args.pair("padding", [0, 0])?;
    b.graph.add(MaxPool2d::new(kernel, padding).with_stride(stride), &[x])
}
