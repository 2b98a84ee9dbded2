"""`nn.MultiheadAttention` with its q/k/v/out projections as real `nn.Linear` modules.

PyTorch's MultiheadAttention keeps the input projection as a bare parameter used inside
`F.multi_head_attention_forward`, so no candidate could run it. `SplitMultiheadAttention`
computes the same function with four Linear layers that hetmap can map one by one.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hetmap.errors import ModelError


class SplitMultiheadAttention(nn.Module):
    """Drop-in for `nn.MultiheadAttention` (same forward signature and outputs)."""

    def __init__(self, embed_dim: int, num_heads: int, kdim: int, vdim: int, bias: bool,
                 dropout: float, batch_first: bool) -> None:
        super().__init__()
        self.embed_dim, self.num_heads = embed_dim, num_heads
        self.head_dim = embed_dim // num_heads
        self.dropout, self.batch_first = dropout, batch_first
        self.q_proj = nn.Linear(embed_dim, embed_dim, bias=bias)
        self.k_proj = nn.Linear(kdim, embed_dim, bias=bias)
        self.v_proj = nn.Linear(vdim, embed_dim, bias=bias)
        self.out_proj = nn.Linear(embed_dim, embed_dim, bias=True)

    @classmethod
    def from_mha(cls, mha: nn.MultiheadAttention) -> SplitMultiheadAttention:
        if mha.bias_k is not None or mha.add_zero_attn:
            raise ModelError("nn.MultiheadAttention with add_bias_kv or add_zero_attn is not "
                             "supported; build it without those options")
        has_bias = mha.in_proj_bias is not None
        new = cls(mha.embed_dim, mha.num_heads, mha.kdim, mha.vdim, has_bias,
                  mha.dropout, mha.batch_first)
        e = mha.embed_dim
        with torch.no_grad():
            if mha._qkv_same_embed_dim:
                w = mha.in_proj_weight
                new.q_proj.weight.copy_(w[:e])
                new.k_proj.weight.copy_(w[e:2 * e])
                new.v_proj.weight.copy_(w[2 * e:])
            else:
                new.q_proj.weight.copy_(mha.q_proj_weight)
                new.k_proj.weight.copy_(mha.k_proj_weight)
                new.v_proj.weight.copy_(mha.v_proj_weight)
            if has_bias:
                b = mha.in_proj_bias
                new.q_proj.bias.copy_(b[:e])
                new.k_proj.bias.copy_(b[e:2 * e])
                new.v_proj.bias.copy_(b[2 * e:])
            new.out_proj.weight.copy_(mha.out_proj.weight)
            if mha.out_proj.bias is not None:
                new.out_proj.bias.copy_(mha.out_proj.bias)
            else:
                new.out_proj.bias = None
        new.train(mha.training)
        return new.to(mha.out_proj.weight.device, mha.out_proj.weight.dtype)

    def forward(self, query: Tensor, key: Tensor, value: Tensor,
                key_padding_mask: Tensor | None = None, need_weights: bool = True,
                attn_mask: Tensor | None = None, average_attn_weights: bool = True,
                is_causal: bool = False) -> tuple[Tensor, Tensor | None]:
        batched = query.dim() == 3
        if not batched:
            query, key, value = query.unsqueeze(1), key.unsqueeze(1), value.unsqueeze(1)
            if key_padding_mask is not None:
                key_padding_mask = key_padding_mask.unsqueeze(0)
        elif self.batch_first:
            query, key, value = (t.transpose(0, 1) for t in (query, key, value))
        tgt_len, bsz, _ = query.shape
        src_len = key.shape[0]
        h, d = self.num_heads, self.head_dim

        def heads(t: Tensor, length: int) -> Tensor:  # (L, B, E) -> (B, H, L, D)
            return t.reshape(length, bsz, h, d).permute(1, 2, 0, 3)

        q = heads(self.q_proj(query), tgt_len)
        k = heads(self.k_proj(key), src_len)
        v = heads(self.v_proj(value), src_len)

        mask = _merge_masks(attn_mask, key_padding_mask, bsz, h, tgt_len, src_len, q.dtype)
        if is_causal and mask is None:
            causal = torch.ones(tgt_len, src_len, dtype=torch.bool, device=q.device).triu(1)
            mask = torch.zeros(tgt_len, src_len, dtype=q.dtype, device=q.device)
            mask = mask.masked_fill(causal, float("-inf"))
        dropout_p = self.dropout if self.training else 0.0
        if need_weights:
            scores = (q @ k.transpose(-2, -1)) / (d ** 0.5)
            if mask is not None:
                scores = scores + mask
            weights = scores.softmax(dim=-1)
            if dropout_p > 0:
                weights = F.dropout(weights, p=dropout_p)
            out = weights @ v
        else:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p)
            weights = None
        out = out.permute(2, 0, 1, 3).reshape(tgt_len, bsz, self.embed_dim)
        out = self.out_proj(out)
        if weights is not None and average_attn_weights:
            weights = weights.mean(dim=1)
        if not batched:
            out = out.squeeze(1)
            if weights is not None:
                weights = weights.squeeze(0)
        elif self.batch_first:
            out = out.transpose(0, 1)
        return out, weights


def _merge_masks(attn_mask: Tensor | None, key_padding_mask: Tensor | None, bsz: int,
                 heads: int, tgt_len: int, src_len: int, dtype: torch.dtype) -> Tensor | None:
    """One additive float mask of shape broadcastable to (B, H, L, S), as PyTorch merges."""

    def additive(m: Tensor) -> Tensor:
        if m.dtype == torch.bool:
            return torch.zeros_like(m, dtype=dtype).masked_fill(m, float("-inf"))
        return m.to(dtype)

    mask: Tensor | None = None
    if attn_mask is not None:
        m = additive(attn_mask)
        mask = m.view(bsz, heads, tgt_len, src_len) if m.dim() == 3 else m
    if key_padding_mask is not None:
        kpm = additive(key_padding_mask).view(bsz, 1, 1, src_len)
        mask = kpm if mask is None else mask + kpm
    return mask


def split_attention(model: nn.Module) -> int:
    """Replace every `nn.MultiheadAttention` in `model` in place; returns how many."""
    count = 0
    for parent in list(model.modules()):
        for child_name, child in list(parent.named_children()):
            if isinstance(child, nn.MultiheadAttention):
                setattr(parent, child_name, SplitMultiheadAttention.from_mha(child))
                count += 1
    return count
