"""Tracing the whole inference: layer calls, element-wise ops and their dependencies,
fused attention as QK^T, softmax and AV, folded batch norm."""

import torch
from torch import nn

from hetmap.hardware import OpGraph, trace_graph
from hetmap.inventory import scan


class Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.bn(self.conv(x))) + x
        return self.fc(y.mean(dim=(2, 3)))


def test_residual_block_graph():
    model, x = Block(), torch.zeros(1, 4, 8, 8)
    inv = scan(model, x, tile=(16, 16))
    g = trace_graph(model, x, inv)
    kinds = [(n.name.split("#")[0], n.kind, n.deps) for n in g.nodes]
    # batch norm folds into the conv; the add reads the relu and the block input (no node)
    assert kinds == [("conv", "layer", ()), ("relu", "vector", (0,)), ("add", "vector", (1,)),
                     ("mean", "vector", (2,)), ("fc", "layer", (3,))]
    assert g.nodes[0].rows == 8 and g.nodes[2].streamable and not g.nodes[3].streamable
    assert g.nodes[3].elements == 4 * 8 * 8
    assert OpGraph.chain(inv).nodes[1].deps == (0,)


def test_attention_becomes_two_matmuls_and_a_softmax():
    from transformers import BertConfig, BertModel

    config = BertConfig(num_hidden_layers=1, hidden_size=32, num_attention_heads=2,
                        intermediate_size=64, vocab_size=50)
    model = BertModel(config)
    x = {"input_ids": torch.zeros(1, 10, dtype=torch.long)}
    inv = scan(model, x, tile=(64, 64))
    g = trace_graph(model, x, inv)
    mm = [n for n in g.nodes if n.kind == "matmul"]
    assert [n.gemm for n in mm] == [(2, 10, 16, 10), (2, 10, 10, 16)]  # heads, S, d, S
    soft = [n for n in g.nodes if "softmax" in n.name]
    assert len(soft) == 1 and soft[0].elements == 2 * 10 * 10
    assert sum(n.kind == "memory" for n in g.nodes) >= 3  # word, position, type embeddings
    assert sum("layer_norm" in n.name for n in g.nodes) == 3
    q, k, v = (g.nodes.index(next(n for n in g.nodes if n.name.endswith(s)))
               for s in ("query", "key", "value"))
    assert set(mm[0].deps) >= {q, k} and v in mm[1].deps
    assert not g.unclassified
