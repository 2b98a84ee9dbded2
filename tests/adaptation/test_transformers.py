"""MPAAS widens attention and FFN in every common transformer (issue 19 point 3): DistilBERT,
ViT, GPT-2 (fused Conv1D c_attn), T5 and MiniLM, keeping the function (max diff <= 1e-5)."""

from __future__ import annotations

import pytest
import torch
from tests.coverage_models import distilbert, gpt2, minilm, t5, vit

from hetmap import AdaptPolicy, adapt, scan
from hetmap.inputs import first_output_tensor

TILE = (512, 512)

# (builder, attention modules the pattern must find, FFN groups, attention pattern)
CASES = {
    "distilbert": (distilbert, 2, 2, "pattern:distilbert-attention"),
    "vit": (vit, 2, 2, "pattern:q/k/v/o_proj-attention"),
    "gpt2": (gpt2, 2, 2, "pattern:gpt2-attention"),
    "t5": (t5, 6, 4, "pattern:t5-attention"),  # encoder self, decoder self and cross
}


def _out(model, x) -> torch.Tensor:
    with torch.no_grad():
        return first_output_tensor(model(**x) if isinstance(x, dict) else model(x))


@pytest.mark.parametrize("init", ["zero", "net2wider"])
@pytest.mark.parametrize("name", list(CASES))
def test_attention_and_ffn_widen_keeping_the_function(name: str, init: str) -> None:
    build, n_attention, n_ffn, pattern = CASES[name]
    model, x = build()
    adapted, report = adapt(model, x, TILE, AdaptPolicy(init=init))
    attention = [g for g in report.widened if g.kind == "attention"]
    assert len(attention) == n_attention and {g.found_by for g in attention} == {pattern}
    assert len([g for g in report.widened if g.kind == "linear"]) == n_ffn
    assert len(report.widened) == len(report.groups)
    for g in attention:
        assert g.new_width > g.old_width and sum(g.tiles_after.values()) == \
            sum(g.tiles_before.values())
    assert report.max_abs_diff <= 1e-5
    assert (_out(adapted, x) - _out(model, x)).abs().max() <= 1e-5  # checked independently
    inv = scan(adapted, x, TILE)
    assert inv.total_params > scan(model, x, TILE).total_params


def test_gpt2_fused_qkv_widens_each_block_per_head() -> None:
    model, x = gpt2()
    adapted, report = adapt(model, x, TILE)
    group = next(g for g in report.widened if g.kind == "attention")
    attn = adapted.get_submodule(group.producers[0].rsplit(".", 1)[0])
    w = group.new_width
    assert attn.c_attn.weight.shape == (3 * w, 32) and attn.c_proj.weight.shape == (32, w)
    assert (attn.split_size, attn.head_dim * attn.num_heads) == (w, w)
    assert attn.scaling == pytest.approx(attn.head_dim ** -0.5)
    # zero init: new query rows are zero, so scores are unchanged; new value units feed
    # zero columns of c_proj
    d, nd = 32 // 4, w // 4
    q_new = attn.c_attn.weight[:w].view(4, nd, 32)[:, d:]
    assert torch.count_nonzero(q_new) == 0
    assert torch.count_nonzero(attn.c_proj.weight.view(32, 4, nd)[:, :, d:]) == 0


def test_t5_keeps_its_unscaled_scores() -> None:
    model, x = t5()
    adapted, report = adapt(model, x, TILE, AdaptPolicy(init="net2wider"))
    group = next(g for g in report.widened if g.found_by == "pattern:t5-attention")
    attn = adapted.get_submodule(group.producers[0].rsplit(".", 1)[0])
    assert attn.scaling == 1.0  # T5 does not divide by sqrt(d_kv): no rescale either
    assert attn.inner_dim == group.new_width == attn.n_heads * attn.key_value_proj_dim
    assert report.max_abs_diff <= 1e-5


def test_real_minilm_widens_its_attention() -> None:
    model, x = minilm()
    adapted, report = adapt(model, x, TILE)
    attention = [g for g in report.widened if g.kind == "attention"]
    # 384 -> 504: 12 heads of 42, a multiple of 8, within the 512-column tile
    assert len(attention) == 6 and all(g.new_width == 504 for g in attention)
    ffn = [g for g in report.groups if g.kind == "linear"]
    assert len(ffn) == 6 and not any(g.widened for g in ffn)  # 1536 fills 3 tiles exactly
    assert report.max_abs_diff <= 1e-5
    other = {"input_ids": torch.randint(0, 30522, (3, 11), generator=torch.Generator()
                                        .manual_seed(5)),
             "attention_mask": torch.ones(3, 11, dtype=torch.long)}
    assert (_out(adapted, other) - _out(model, other)).abs().max() <= 1e-5  # another input
