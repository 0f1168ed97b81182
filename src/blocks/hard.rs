//! Hard attention: torchvision's CenterCrop and PyTorch's MaxPool2d.

use super::{param, Arch, Args, Builder};
use crate::graph::ValueId;
use crate::ops::center_crop::CenterCrop;
use crate::ops::max_pool2d::MaxPool2d;
use crate::{Error, Result};

pub const CENTER_CROP: Arch = Arch {
    name: "CenterCrop",
    about: "torchvision's center crop (offsets rounded half to even); no weights",
    params: &[param("size", "required: H,W or one side")],
    maps: &[],
    pretrained: None,
    build: center_crop,
    random_weights: None,
};

pub const MAX_POOL: Arch = Arch {
    name: "MaxPool2d",
    about: "PyTorch's MaxPool2d with -inf padding; no weights",
    params: &[
        param("kernel_size", "required"),
        param("stride", "kernel_size"),
        param("padding", "0"),
        param("dilation", "1 (only 1)"),
        param("return_indices", "false (only false)"),
        param("ceil_mode", "false (only false)"),
    ],
    maps: &[],
    pretrained: None,
    build: max_pool,
    random_weights: None,
};

fn center_crop(b: &mut Builder, x: ValueId, args: &mut Args) -> Result<ValueId> {
    let size = args.required_pair("size")?;
    b.graph.add(CenterCrop::new(size), &[x])
}

fn max_pool(b: &mut Builder, x: ValueId, args: &mut Args) -> Result<ValueId> {
    let kernel = args.required_pair("kernel_size")?;
    let stride = args.pair("stride", kernel)?;
    let padding = args.pair("padding", [0, 0])?;
    if args.pair("dilation", [1, 1])? != [1, 1] {
        return Err(Error::invalid("MaxPool2d", "dilation other than 1 is not supported"));
    }
    if args.bool("return_indices", false)? || args.bool("ceil_mode", false)? {
        return Err(Error::invalid("MaxPool2d", "return_indices and ceil_mode must be false: not supported"));
    }
    b.graph.add(MaxPool2d::new(kernel, padding).with_stride(stride), &[x])
}
