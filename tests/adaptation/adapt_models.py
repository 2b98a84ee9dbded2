"""Small models with known widenable structure, for the adaptation tests."""

from __future__ import annotations

import torch
from torch import nn


class ConvHead(nn.Module):
    """conv -> bn -> relu -> pool(1) -> flatten -> fc1 -> relu -> fc2: two chained groups."""

    def __init__(self, pool: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.pool = nn.AdaptiveAvgPool2d(pool)
        self.fc1 = nn.Linear(8 * pool * pool, 12)
        self.fc2 = nn.Linear(12, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.pool(torch.relu(self.bn(self.conv(x)))).flatten(1)
        return self.fc2(torch.relu(self.fc1(h)))


class NormInBetween(nn.Module):
    """A LayerNorm over the inner width: widening would change the normalised values."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(6, 10)
        self.norm = nn.LayerNorm(10)
        self.fc2 = nn.Linear(10, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.norm(self.fc1(x)))


class TokenBatchNorm(nn.Module):
    """BatchNorm1d over (N, C, L) after a Linear on the last axis: it normalises L, not C."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(6, 10)
        self.bn = nn.BatchNorm1d(4)
        self.fc2 = nn.Linear(10, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (N, 4, 6)
        return self.fc2(self.bn(self.fc1(x)))


class Untraceable(nn.Module):
    """Data-dependent control flow at the top; the inner Sequential still traces."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(6, 10), nn.BatchNorm1d(10), nn.ReLU(),
                                  nn.Linear(10, 10), nn.GELU(), nn.Linear(10, 4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.sum() > 0:
            x = -x
        return self.body(x)


def small_bert_config():
    from transformers import BertConfig

    return BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2,
                      num_attention_heads=4, intermediate_size=64,
                      max_position_embeddings=32)


def bert_input(batch: int = 2, length: int = 10) -> dict[str, torch.Tensor]:
    ids = torch.randint(0, 100, (batch, length))
    mask = torch.ones_like(ids)
    mask[0, -3:] = 0  # padding, so the attention mask matters
    return {"input_ids": ids, "attention_mask": mask}


class InputResidual(nn.Module):
    """x + f(x) with x the model input: the stream cannot widen (the input is fixed)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(6, 12)
        self.fc2 = nn.Linear(12, 6)
        self.head = nn.Linear(6, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(x + self.fc2(torch.relu(self.fc1(x))))


class SelfLoopResidual(nn.Module):
    """stem -> x; y = fc(x) + x: fc reads and writes the same stream."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Linear(6, 8)
        self.fc = nn.Linear(8, 8)
        self.head = nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.stem(x)
        return self.head(torch.relu(self.fc(h) + h))
