"""PyTorch reference modules for the tutorial ("seed") attention blocks of glimpse.

These follow the design page (DESIGN.md, section "The modules"): the intended semantics of the
tutorial's code (whose typos are not reproduced) with the tutorial's state_dict
names, so that a `model.state_dict()` saved from here is exactly what a user of
the tutorial would export.

Every module's ``forward(x, return_maps=False)`` returns the output tensor, or
``(output, maps)`` when ``return_maps`` is true; ``maps`` is a dict of attention
maps named as in the golden fixtures (``map.<name>`` there):

- SpatialAttention, ChannelAttention: the output *is* the map; ``maps`` is empty.
- SKConv: ``branch`` = softmax branch weights, N x M x C.
- BasicBlock: ``channel`` = sigmoid channel weights, N x C; ``spatial`` = sigmoid
  spatial map, N x 1 x H x W (output resolution).
- NonLocal: ``attention`` = all softmax rows, N x (H*W) x Hk x Wk, query pixel
  index = row * W + col; Hk x Wk is the key grid (H//2 x W//2 when sub-sampled).

Hard attention helpers: ``center_crop_offsets`` / ``center_crop`` (torchvision's
offsets, Python's round(), i.e. round half to even).
"""

import torch
import torch.nn.functional as F
from torch import nn


class SpatialAttention(nn.Module):
    """[mean, max] over channels -> k x k conv 2->1 (no bias) -> sigmoid; N x 1 x H x W.

    State dict: ``conv.weight`` (1 x 2 x k x k), as in the tutorial's sharedMLP
    variant (``self.conv``).
    """

    def __init__(self, kernel_size=7):
        super().__init__()
        assert kernel_size in (3, 7), "kernel size must be 3 or 7"
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2, bias=False)

    def forward(self, x, return_maps=False):
        pooled = torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)
        y = torch.sigmoid(self.conv(pooled))
        return (y, {}) if return_maps else y


class ChannelAttention(nn.Module):
    """Global avg and max pool -> shared MLP (C -> C//ratio -> C, no bias) -> sum -> sigmoid.

    Returns the N x C x 1 x 1 weights. State dict: ``sharedMLP.0.weight``,
    ``sharedMLP.2.weight`` (1x1 convs; index 1 is the ReLU).
    """

    def __init__(self, in_planes, ratio=16):
        super().__init__()
        hidden = in_planes // ratio
        assert hidden >= 1, "in_planes // ratio must be at least 1"
        self.sharedMLP = nn.Sequential(
            nn.Conv2d(in_planes, hidden, 1, bias=False),
            nn.ReLU(),
            nn.Conv2d(hidden, in_planes, 1, bias=False),
        )

    def forward(self, x, return_maps=False):
        avg = self.sharedMLP(x.mean(dim=(2, 3), keepdim=True))
        mx = self.sharedMLP(x.amax(dim=(2, 3), keepdim=True))
        y = torch.sigmoid(avg + mx)
        return (y, {}) if return_maps else y


class SKConv(nn.Module):
    """Selective kernel convolution (SKNet reference code, features -> features).

    Branch i: conv(k = 3 + 2i, padding 1 + i, groups G, stride, bias) + BN + ReLU.
    U = sum of branches; s = mean of U over H, W; z = fc(s) (Linear features -> d,
    d = max(int(features / r), L), with bias, no BN/ReLU); a = softmax over the M
    branches of fcs[i](z) (Linear d -> features); output = sum_i branch_i * a_i.
    State dict: convs.{i}.0.* (conv), convs.{i}.1.* (BN), fc.*, fcs.{i}.*.
    """

    def __init__(self, features, M=2, G=32, r=16, stride=1, L=32):
        super().__init__()
        d = max(int(features / r), L)
        self.M = M
        self.convs = nn.ModuleList([
            nn.Sequential(
                nn.Conv2d(features, features, kernel_size=3 + 2 * i, stride=stride, padding=1 + i, groups=G),
                nn.BatchNorm2d(features),
                nn.ReLU(inplace=False),
            )
            for i in range(M)
        ])
        self.fc = nn.Linear(features, d)
        self.fcs = nn.ModuleList([nn.Linear(d, features) for _ in range(M)])

    def forward(self, x, return_maps=False):
        feas = torch.stack([conv(x) for conv in self.convs], dim=1)  # N x M x C x H x W
        s = feas.sum(dim=1).mean(dim=(2, 3))  # N x C
        z = self.fc(s)  # N x d
        a = torch.softmax(torch.stack([fc(z) for fc in self.fcs], dim=1), dim=1)  # N x M x C
        y = (feas * a[:, :, :, None, None]).sum(dim=1)
        return (y, {"branch": a}) if return_maps else y


def conv3x3(in_planes, out_planes, stride=1):
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)


class BasicBlock(nn.Module):
    """CBAM ResNet basic block.

    conv3x3(stride)-BN-ReLU-conv3x3-BN, times ChannelAttention, times
    SpatialAttention, plus residual (downsample = conv1x1(stride, no bias) + BN when
    stride != 1 or inplanes != planes), ReLU. State dict: conv1, bn1, conv2, bn2,
    ca.sharedMLP.{0,2}, sa.conv, downsample.{0,1}.
    """

    def __init__(self, inplanes, planes, stride=1, ratio=16, kernel_size=7):
        super().__init__()
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.ca = ChannelAttention(planes, ratio)
        self.sa = SpatialAttention(kernel_size)
        self.downsample = None
        if stride != 1 or inplanes != planes:
            self.downsample = nn.Sequential(
                nn.Conv2d(inplanes, planes, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm2d(planes),
            )

    def forward(self, x, return_maps=False):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        ch = self.ca(out)
        out = out * ch
        sp = self.sa(out)
        out = out * sp
        residual = x if self.downsample is None else self.downsample(x)
        y = F.relu(out + residual)
        return (y, {"channel": ch.flatten(1), "spatial": sp}) if return_maps else y


class NonLocal(nn.Module):
    """Embedded-Gaussian non-local block, 2-D (`_NonLocalBlockND` of the reference code).

    inter_channels = in_channels // 2 (at least 1) unless given. theta, phi, g,
    W: 1x1 convs with bias; sub_sample adds a 2x2 max pool (stride 2, floor) after
    phi and g; f = softmax over keys of theta^T phi (no scaling); y = f g;
    z = W(y) + x, where W is conv + BN when bn_layer. State dict: theta, phi or
    phi.0, g or g.0, W or W.0 / W.1. The reference code zero-initialises W; the
    fixtures randomise it.
    """

    def __init__(self, in_channels, inter_channels=None, sub_sample=True, bn_layer=True):
        super().__init__()
        self.inter_channels = inter_channels or max(in_channels // 2, 1)
        ci = self.inter_channels
        self.g = nn.Conv2d(in_channels, ci, kernel_size=1)
        if bn_layer:
            self.W = nn.Sequential(nn.Conv2d(ci, in_channels, kernel_size=1), nn.BatchNorm2d(in_channels))
        else:
            self.W = nn.Conv2d(ci, in_channels, kernel_size=1)
        self.theta = nn.Conv2d(in_channels, ci, kernel_size=1)
        self.phi = nn.Conv2d(in_channels, ci, kernel_size=1)
        if sub_sample:
            self.g = nn.Sequential(self.g, nn.MaxPool2d(kernel_size=(2, 2)))
            self.phi = nn.Sequential(self.phi, nn.MaxPool2d(kernel_size=(2, 2)))

    def logits(self, x):
        """theta^T phi: N x (H*W) x (Hk*Wk), and the key grid (Hk, Wk)."""
        n, ci = x.shape[0], self.inter_channels
        theta = self.theta(x).view(n, ci, -1).permute(0, 2, 1)
        phi = self.phi(x)
        return torch.matmul(theta, phi.view(n, ci, -1)), phi.shape[2:]

    def forward(self, x, return_maps=False):
        n, ci = x.shape[0], self.inter_channels
        f, key_hw = self.logits(x)
        f = torch.softmax(f, dim=-1)
        g = self.g(x).view(n, ci, -1).permute(0, 2, 1)
        y = torch.matmul(f, g).permute(0, 2, 1).reshape(n, ci, *x.shape[2:])
        z = self.W(y) + x
        return (z, {"attention": f.view(n, -1, *key_hw)}) if return_maps else z


def center_crop_offsets(height, width, crop_h, crop_w):
    """torchvision's center_crop offsets: int(round((H - h) / 2)), round half to even."""
    assert crop_h <= height and crop_w <= width, "padding crops are not covered"
    return int(round((height - crop_h) / 2.0)), int(round((width - crop_w) / 2.0))


def center_crop(x, size):
    """Center crop of an N x C x H x W tensor to size = (h, w) by plain slicing."""
    top, left = center_crop_offsets(x.shape[-2], x.shape[-1], *size)
    return x[..., top:top + size[0], left:left + size[1]]
