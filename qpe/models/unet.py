"""The U-Net backbone shared by every model family.

A plain convolutional U-Net: residual blocks (GroupNorm, SiLU, 3x3 convolutions) at ``len(channel_mults)``
resolutions, strided-convolution downsampling, nearest-neighbour upsampling, skip connections by
concatenation, optional self-attention at the lowest resolution only, and an optional sinusoidal
embedding of a time / noise level ``t in [0, 1]`` injected into every block as a scale and shift of its
second normalisation (FiLM). Inputs of any height and width are padded (edge replication) to a
multiple of ``2^(levels - 1)`` and the output is cropped back.

The backbone knows nothing of rain, IR or training: it maps (B, C_in, H, W) [+ t] to (B, C_out, H, W).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from qpe.errors import CheckpointError


@dataclass(frozen=True)
class UNetConfig:
    """Width and depth of the U-Net (the model card's ``architecture``).

    The defaults are the demo architecture: 0.79 M parameters (3.2 MB of float32 weights) for T=4 x C=7
    inputs, about 9 GFLOP per 256 x 256 forward pass, trainable on a 2-core CPU in minutes on 64² crops.

    Parameters
    ----------
    base_channels : int
        Channels at full resolution.
    channel_mults : tuple of int
        Channel multiplier per resolution level; ``len`` = number of levels (the field is halved
        ``len - 1`` times).
    blocks_per_level : int
        Residual blocks per level on the way down (and on the way up).
    attention : bool
        Self-attention at the lowest resolution (cost grows with (H W / 4^(levels-1))², so keep it
        for deep nets or small tiles).
    groups : int
        GroupNorm groups (reduced to a divisor of each width).
    dropout : float
        Dropout inside residual blocks.
    """

    base_channels: int = 16
    channel_mults: tuple[int, ...] = (1, 2, 4, 4)
    blocks_per_level: int = 1
    attention: bool = False
    groups: int = 8
    dropout: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "channel_mults", tuple(int(m) for m in self.channel_mults))
        if self.base_channels < 1 or not self.channel_mults or min(self.channel_mults) < 1:
            raise CheckpointError(
                f"U-Net needs base_channels >= 1 and positive channel_mults, got {self.base_channels}, "
                f"{list(self.channel_mults)}"
            )
        if self.blocks_per_level < 1 or self.groups < 1 or not 0.0 <= self.dropout < 1.0:
            raise CheckpointError("U-Net needs blocks_per_level >= 1, groups >= 1 and dropout in [0, 1)")

    @property
    def multiple(self) -> int:
        """Inputs are padded to a multiple of this (``2^(levels - 1)``)."""
        return 2 ** (len(self.channel_mults) - 1)


def _norm(channels: int, groups: int) -> nn.GroupNorm:
    return nn.GroupNorm(math.gcd(groups, channels), channels)


class SinusoidalEmbedding(nn.Module):
    """``t in [0, 1]`` (B,) -> (B, dim): ``[sin(1000 t ω_k), cos(1000 t ω_k)]``, ``ω_k = 10000^(-2k/dim)``."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        half = self.dim // 2
        freqs = torch.exp(
            -math.log(10000.0) * torch.arange(half, device=t.device, dtype=torch.float32) / half
        )
        angles = 1000.0 * t.float()[:, None] * freqs[None, :]
        emb = torch.cat([angles.sin(), angles.cos()], dim=1)
        return F.pad(emb, (0, self.dim - 2 * half))


class ResBlock(nn.Module):
    """``x + conv(SiLU(FiLM(GN(conv(SiLU(GN(x)))), emb)))``; FiLM is ``h (1 + scale) + shift``."""

    def __init__(self, cin: int, cout: int, emb_dim: int | None, groups: int, dropout: float) -> None:
        super().__init__()
        self.norm1 = _norm(cin, groups)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.norm2 = _norm(cout, groups)
        self.film = nn.Linear(emb_dim, 2 * cout) if emb_dim else None
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor | None) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.norm2(h)
        if self.film is not None:
            scale, shift = self.film(F.silu(emb))[:, :, None, None].chunk(2, dim=1)
            h = h * (1 + scale) + shift
        h = self.conv2(self.dropout(F.silu(h)))
        return self.skip(x) + h


class SelfAttention(nn.Module):
    """Single-head self-attention over all pixels, residual, output projection zero-initialised."""

    def __init__(self, channels: int, groups: int) -> None:
        super().__init__()
        self.norm = _norm(channels, groups)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.proj = nn.Conv2d(channels, channels, 1)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(b, 3, c, h * w).transpose(2, 3).unbind(1)
        out = F.scaled_dot_product_attention(q[:, None], k[:, None], v[:, None])[:, 0]
        return x + self.proj(out.transpose(1, 2).reshape(b, c, h, w))


class UNet(nn.Module):
    """The backbone: (B, in_channels, H, W) [, t (B,)] -> (B, out_channels, H, W).

    Parameters
    ----------
    config : UNetConfig
        Width and depth.
    in_channels, out_channels : int
        Input and output channels (the model family decides what they hold).
    time_embedding : bool
        Accept a time / noise level ``t in [0, 1]`` and inject it in every residual block.
    """

    def __init__(
        self, config: UNetConfig, in_channels: int, out_channels: int = 1, time_embedding: bool = False
    ) -> None:
        super().__init__()
        self.config = config
        self.in_channels, self.out_channels = in_channels, out_channels
        widths = [config.base_channels * m for m in config.channel_mults]
        g, nb, drop = config.groups, config.blocks_per_level, config.dropout
        emb_dim = 4 * config.base_channels if time_embedding else None
        self.time_mlp = (
            nn.Sequential(
                SinusoidalEmbedding(config.base_channels),
                nn.Linear(config.base_channels, emb_dim),
                nn.SiLU(),
                nn.Linear(emb_dim, emb_dim),
            )
            if time_embedding
            else None
        )
        self.stem = nn.Conv2d(in_channels, widths[0], 3, padding=1)
        self.down_blocks = nn.ModuleList()
        self.downsample = nn.ModuleList()
        ch = widths[0]
        for i, w in enumerate(widths):
            self.down_blocks.append(
                nn.ModuleList([ResBlock(ch if j == 0 else w, w, emb_dim, g, drop) for j in range(nb)])
            )
            ch = w
            if i < len(widths) - 1:
                self.downsample.append(nn.Conv2d(w, w, 3, stride=2, padding=1))
        self.mid1 = ResBlock(ch, ch, emb_dim, g, drop)
        self.mid_attention = SelfAttention(ch, g) if config.attention else nn.Identity()
        self.mid2 = ResBlock(ch, ch, emb_dim, g, drop)
        self.up_blocks = nn.ModuleList()
        self.upsample = nn.ModuleList()
        for i in reversed(range(len(widths))):
            w = widths[i]
            if i < len(widths) - 1:
                self.upsample.append(nn.Conv2d(ch, ch, 3, padding=1))
            self.up_blocks.append(
                nn.ModuleList([ResBlock(ch + w if j == 0 else w, w, emb_dim, g, drop) for j in range(nb)])
            )
            ch = w
        self.head_norm = _norm(ch, g)
        self.head = nn.Conv2d(ch, out_channels, 3, padding=1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    @property
    def time_embedding(self) -> bool:
        return self.time_mlp is not None

    def forward(self, x: torch.Tensor, t: torch.Tensor | None = None) -> torch.Tensor:
        """Run the network.

        Parameters
        ----------
        x : torch.Tensor
            (B, in_channels, H, W), any H and W.
        t : torch.Tensor, optional
            (B,) time / noise level in [0, 1]; required when built with ``time_embedding``.

        Returns
        -------
        torch.Tensor
            (B, out_channels, H, W).
        """
        if (t is None) == self.time_embedding:
            raise ValueError("UNet: pass t exactly when the network has a time embedding")
        height, width = x.shape[-2:]
        m = self.config.multiple
        pad_h, pad_w = (-height) % m, (-width) % m
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")
        # Channels-last activations: oneDNN (CPU) and cuDNN run these convolutions fastest so (on 2 CPU
        # cores ~5-15 % per 256² network evaluation, benchmarks/bench_models.py); the weights keep their
        # layout (loading stays bit-exact, nothing is mutated under threads).
        x = x.contiguous(memory_format=torch.channels_last)
        emb = self.time_mlp(t) if self.time_mlp is not None else None
        h = self.stem(x)
        skips = []
        for i, blocks in enumerate(self.down_blocks):
            for block in blocks:
                h = block(h, emb)
            skips.append(h)
            if i < len(self.downsample):
                h = self.downsample[i](h)
        h = self.mid2(self.mid_attention(self.mid1(h, emb)), emb)
        for k, blocks in enumerate(self.up_blocks):
            if k > 0:
                h = self.upsample[k - 1](F.interpolate(h, scale_factor=2.0, mode="nearest"))
            h = torch.cat([h, skips.pop()], dim=1)
            for block in blocks:
                h = block(h, emb)
        out = self.head(F.silu(self.head_norm(h)))
        return out[..., :height, :width]
