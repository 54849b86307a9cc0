"""Training-level check: a tiny network learns a fixed synthetic mask with every loss."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import seglosses
from seglosses import metrics

# Two losses are meant as companions of a region loss, and their authors train them so: the
# boundary loss alone has a trivial minimiser far from the mask (Kervadec et al. 2019), and
# clDice alone only rewards the skeleton (Shit et al. 2021).
PAIRED = {"boundary": "0.5*dice + 0.5*boundary", "cldice": "0.5*dice + 0.5*cldice"}


def _data() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    yy, xx = torch.meshgrid(torch.arange(24.0), torch.arange(24.0), indexing="ij")
    masks, images = [], []
    for cy, cx, r in [(8, 9, 5), (14, 12, 7), (12, 16, 4), (10, 8, 6)]:
        m = ((yy - cy) ** 2 + (xx - cx) ** 2 <= r * r).float()
        masks.append(m)
        images.append(m * 1.0 + 0.3 * torch.randn(24, 24, generator=g))
    return torch.stack(images)[:, None], torch.stack(masks)[:, None]


@pytest.mark.parametrize("name", seglosses.list_losses())
def test_tiny_net_converges(name):
    torch.manual_seed(0)
    images, masks = _data()
    net = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1),
                        nn.ReLU(), nn.Conv2d(8, 1, 1))
    loss = seglosses.get_loss(PAIRED.get(name, name))
    opt = torch.optim.Adam(net.parameters(), lr=0.02)
    for _ in range(80):
        opt.zero_grad()
        value = loss(net(images), masks)
        value.backward()
        opt.step()
    with torch.no_grad():
        pred = net(images) > 0
    dice = metrics.dice(pred, masks.bool()).mean().item()
    assert dice > 0.9, f"{name}: Dice {dice:.3f} after training"
