from __future__ import annotations

import pytest
import torch
from torch import nn

from hetmap.inventory import SplitMultiheadAttention
from hetmap.inventory.normalize import normalize_model


@pytest.mark.parametrize("batch_first", [True, False])
@pytest.mark.parametrize("need_weights", [True, False])
def test_split_attention_matches_torch(batch_first: bool, need_weights: bool) -> None:
    mha = nn.MultiheadAttention(16, 4, batch_first=batch_first).eval()
    split = SplitMultiheadAttention.from_mha(mha).eval()
    shape = (2, 5, 16) if batch_first else (5, 2, 16)
    q, k = torch.randn(shape), torch.randn(shape)
    pad = torch.tensor([[False] * 5, [False, False, False, True, True]])
    causal = torch.ones(5, 5, dtype=torch.bool).triu(1)
    for kwargs in ({}, {"key_padding_mask": pad}, {"attn_mask": causal},
                   {"attn_mask": causal, "key_padding_mask": pad}):
        ref_out, ref_w = mha(q, k, k, need_weights=need_weights, **kwargs)
        out, w = split(q, k, k, need_weights=need_weights, **kwargs)
        assert torch.allclose(out, ref_out, atol=1e-5), kwargs
        if need_weights:
            assert torch.allclose(w, ref_w, atol=1e-6)
        else:
            assert w is None


def test_split_attention_with_different_kv_dims() -> None:
    mha = nn.MultiheadAttention(8, 2, kdim=6, vdim=5, batch_first=True).eval()
    split = SplitMultiheadAttention.from_mha(mha)
    q, k, v = torch.randn(3, 4, 8), torch.randn(3, 7, 6), torch.randn(3, 7, 5)
    assert torch.allclose(split(q, k, v)[0], mha(q, k, v)[0], atol=1e-5)
    assert split.k_proj.in_features == 6 and split.v_proj.in_features == 5


def test_normalize_leaves_plain_models_alone() -> None:
    model = nn.Sequential(nn.Linear(3, 3))
    assert normalize_model(model) is model
