"""Direct functional recomputation of every fixture block from its state dict.

make_fixtures.py runs each module (tutorial_modules.py or timm) and then checks
the output and maps against these functions, which read only the state dict (so
they also pin the parameter names) and spell out the semantics DESIGN.md states:
BatchNorm in eval mode with eps 1e-5, paddings, softmax axes, gates. All inputs
are float64; the checks demand agreement to about 1e-12.
"""

import torch
import torch.nn.functional as F

BN_EPS = 1e-5


def bn(x, sd, prefix):
    """Eval-mode BatchNorm over dim 1 with running statistics."""
    shape = (1, -1) + (1,) * (x.dim() - 2)
    mean, var = sd[prefix + "running_mean"].view(shape), sd[prefix + "running_var"].view(shape)
    w, b = sd[prefix + "weight"].view(shape), sd[prefix + "bias"].view(shape)
    return (x - mean) / torch.sqrt(var + BN_EPS) * w + b


def conv(x, sd, prefix, stride=1, padding=0, dilation=1, groups=1):
    return F.conv2d(x, sd[prefix + "weight"], sd.get(prefix + "bias"), stride, padding, dilation, groups)


def mlp_1x1(v, w1, w2):
    """Two 1x1 convs (no bias) with ReLU between, applied to N x C vectors."""
    return torch.relu(v @ w1.flatten(1).T) @ w2.flatten(1).T


# ---- tutorial blocks ----

def spatial_attention(x, sd, prefix=""):
    """sigmoid(conv_kxk([mean_c, max_c])), padding k // 2, no bias: N x 1 x H x W."""
    w = sd[prefix + "conv.weight"]
    pooled = torch.stack([x.mean(1), x.max(1).values], dim=1)
    return torch.sigmoid(F.conv2d(pooled, w, padding=w.shape[-1] // 2))


def channel_attention(x, sd, prefix=""):
    """sigmoid(MLP(avg) + MLP(max)): N x C."""
    w1, w2 = sd[prefix + "sharedMLP.0.weight"], sd[prefix + "sharedMLP.2.weight"]
    return torch.sigmoid(mlp_1x1(x.mean((2, 3)), w1, w2) + mlp_1x1(x.amax((2, 3)), w1, w2))


def basic_block(x, sd, stride):
    out = torch.relu(bn(conv(x, sd, "conv1.", stride, 1), sd, "bn1."))
    out = bn(conv(out, sd, "conv2.", 1, 1), sd, "bn2.")
    ch = channel_attention(out, sd, "ca.")
    out = out * ch[:, :, None, None]
    sp = spatial_attention(out, sd, "sa.")
    out = out * sp
    res = bn(conv(x, sd, "downsample.0.", stride), sd, "downsample.1.") if "downsample.0.weight" in sd else x
    return torch.relu(out + res), {"channel": ch, "spatial": sp}


def skconv(x, sd, stride):
    m = sum(1 for k in sd if k.startswith("fcs.") and k.endswith(".weight"))
    c = x.shape[1]
    branches = []
    for i in range(m):
        w = sd[f"convs.{i}.0.weight"]
        groups = c // w.shape[1]
        assert w.shape[-1] == 3 + 2 * i
        branches.append(torch.relu(bn(conv(x, sd, f"convs.{i}.0.", stride, 1 + i, 1, groups), sd, f"convs.{i}.1.")))
    s = sum(branches).mean((2, 3))
    z = s @ sd["fc.weight"].T + sd["fc.bias"]
    logits = torch.stack([z @ sd[f"fcs.{i}.weight"].T + sd[f"fcs.{i}.bias"] for i in range(m)], dim=1)
    a = torch.softmax(logits, dim=1)
    return sum(b * a[:, i, :, None, None] for i, b in enumerate(branches)), {"branch": a}


def embedded_gaussian(theta, phi, g, scale=1.0):
    """theta: N x Ci x H x W; phi, g: N x Ci x Hk x Wk -> (y: N x Ci x H x W, attention N x HW x Hk x Wk)."""
    n, ci, h, w = theta.shape
    logits = torch.einsum("nci,ncj->nij", theta.flatten(2), phi.flatten(2)) * scale
    att = torch.softmax(logits, dim=-1)
    y = torch.einsum("nij,ncj->nci", att, g.flatten(2)).reshape(n, ci, h, w)
    return y, att.reshape(n, h * w, *phi.shape[2:]), logits


def nonlocal_block(x, sd, sub_sample):
    sub = ".0." if sub_sample else "."
    theta = conv(x, sd, "theta.")
    phi, g = conv(x, sd, "phi" + sub), conv(x, sd, "g" + sub)
    if sub_sample:
        phi, g = F.max_pool2d(phi, 2), F.max_pool2d(g, 2)
    y, att, logits = embedded_gaussian(theta, phi, g)
    if "W.1.weight" in sd:
        wy = bn(conv(y, sd, "W.0."), sd, "W.1.")
    else:
        wy = conv(y, sd, "W.")
    return wy + x, {"attention": att}, logits


# ---- hard attention ----

def max_pool(x, kernel, stride, padding):
    """-inf padded window max, by unfolding."""
    xp = F.pad(x, (padding,) * 4, value=float("-inf"))
    win = xp.unfold(2, kernel, stride).unfold(3, kernel, stride)
    return win.amax(dim=(-1, -2))


# ---- timm blocks ----

def timm_cbam(x, sd):
    w1, w2 = sd["channel.fc1.weight"], sd["channel.fc2.weight"]
    ch = torch.sigmoid(mlp_1x1(x.mean((2, 3)), w1, w2) + mlp_1x1(x.amax((2, 3)), w1, w2))
    x = x * ch[:, :, None, None]
    pooled = torch.stack([x.mean(1), x.amax(1)], dim=1)
    k = sd["spatial.conv.conv.weight"].shape[-1]
    sp = torch.sigmoid(bn(conv(pooled, sd, "spatial.conv.conv.", 1, k // 2), sd, "spatial.conv.bn."))
    return x * sp, {"channel": ch, "spatial": sp}


def timm_selective_kernel(x, sd, kernel_size, split_input, stride):
    """All paths 3x3 with dilation (k - 1) // 2 and padding = ((stride - 1) + 2 * dilation) // 2."""
    m = len(kernel_size)
    inputs = torch.chunk(x, m, dim=1) if split_input else [x] * m
    paths = []
    for i, (k, xi) in enumerate(zip(kernel_size, inputs)):
        d = (k - 1) // 2
        w = sd[f"paths.{i}.conv.weight"]
        assert w.shape[-1] == 3
        pad = ((stride - 1) + d * 2) // 2
        groups = xi.shape[1] // w.shape[1]
        paths.append(torch.relu(bn(conv(xi, sd, f"paths.{i}.conv.", stride, pad, d, groups), sd, f"paths.{i}.bn.")))
    s = sum(paths).mean((2, 3), keepdim=True)
    z = torch.relu(bn(conv(s, sd, "attn.fc_reduce."), sd, "attn.bn."))
    sel = conv(z, sd, "attn.fc_select.").flatten(1)  # N x (M * C), path-major
    a = torch.softmax(sel.view(x.shape[0], m, -1), dim=1)  # N x M x C
    return sum(p * a[:, i, :, None, None] for i, p in enumerate(paths)), {"branch": a}


def timm_nonlocal(x, sd, use_scale):
    scale = x.shape[1] ** -0.5 if use_scale else 1.0
    y, att, logits = embedded_gaussian(conv(x, sd, "t."), conv(x, sd, "p."), conv(x, sd, "g."), scale)
    return bn(conv(y, sd, "z."), sd, "norm.") + x, {"attention": att}, logits
