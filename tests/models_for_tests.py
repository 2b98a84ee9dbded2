"""Tiny models with known structure, shared by tests of several subpackages."""

from __future__ import annotations

import torch
from torch import nn


class TinyMLP(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(8, 16)
        self.fc2 = nn.Linear(16, 16)
        self.fc3 = nn.Linear(16, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc3(torch.relu(self.fc2(torch.relu(self.fc1(x)))))


class TinyTransformer(nn.Module):
    """Uses nn.MultiheadAttention (whose input projection is not an nn.Linear)."""

    def __init__(self, dim: int = 16, heads: int = 4, seq_first: bool = False) -> None:
        super().__init__()
        self.embed = nn.Linear(6, dim)
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=not seq_first)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.embed(x)
        a, _ = self.attn(h, h, h, need_weights=False)
        return self.head(self.norm(h + a)).mean(dim=1)


class TwiceCalled(nn.Module):
    """One Linear applied twice in a forward: its MACs count twice."""

    def __init__(self) -> None:
        super().__init__()
        self.shared = nn.Linear(10, 10)
        self.out = nn.Linear(10, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.shared(torch.relu(self.shared(x))))


def tiny_bert_qa():
    from transformers import BertConfig, BertForQuestionAnswering

    config = BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=4, intermediate_size=64,
                        max_position_embeddings=64)
    return BertForQuestionAnswering(config).eval(), config
