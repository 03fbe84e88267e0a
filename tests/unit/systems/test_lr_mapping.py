"""``learning_rate_mapping`` (sentence-transformers 6.x's argument of that name): per-regex learning rates on every
training module, the ``idf_lr`` / ``autoencoder_lr`` shorthands as rules of the same mechanism, validation before
training, the warm-up/decay schedule on every group (per-group logging, resume and YAML:
``tests/integration/test_lr_mapping_fit.py``)."""

from __future__ import annotations

import re
from types import SimpleNamespace

import pytest
import torch

from splade_lightning.errors import ConfigError
from splade_lightning.models import (
    CSREncoder,
    DenseEncoder,
    QueryDocRouter,
    SparseAutoEncoder,
    SpladeEncoder,
    StaticSparseEncoder,
)
from splade_lightning.systems import CSRModule, InferenceFreeSpladeModule, SpladeModule
from splade_lightning.systems.optim import group_name, linear_warmup_decay, mapping_rules

LAYER1 = r"layer\.1\."
QUERY_TABLE = r"^encoder\.query_encoder\."
AUTOENCODER = r"^encoder\.autoencoder\."
NO_DECAY = ("bias", "LayerNorm.weight")


@pytest.fixture()
def splade(tiny_bert_dir) -> SpladeEncoder:
    return SpladeEncoder(tiny_bert_dir)


@pytest.fixture()
def router(tiny_bert_dir) -> QueryDocRouter:
    return QueryDocRouter(SpladeEncoder(tiny_bert_dir), StaticSparseEncoder(tiny_bert_dir))


@pytest.fixture()
def csr(tiny_encoder_dir) -> CSREncoder:
    return CSREncoder(DenseEncoder(tiny_encoder_dir), SparseAutoEncoder(32, hidden_dim=64, k=4, k_aux=8))


def layout(module) -> list[tuple[str, float | None, float, list[str]]]:
    """``(name, lr, weight_decay, parameter names)`` of each parameter group, in order."""
    names = {id(p): n for n, p in module.named_parameters()}
    return [(g["name"], g.get("lr"), g["weight_decay"], [names[id(p)] for p in g["params"]])
            for g in module.parameter_groups()]


def optimizer_and_scheduler(module, total_steps: int = 10):
    module.trainer = SimpleNamespace(estimated_stepping_batches=total_steps)  # all configure_optimizers reads
    config = module.configure_optimizers()
    return config["optimizer"], config["lr_scheduler"]["scheduler"]


# -- groups ------------------------------------------------------------------------------------------------------------
def test_mapped_groups_get_their_lr_and_keep_the_no_decay_split(splade):
    module = SpladeModule(splade, lr=2e-5, weight_decay=0.01,
                          learning_rate_mapping={LAYER1: 1e-3, r"embeddings": 5e-4})
    groups = layout(module)
    assert [g[:3] for g in groups] == [("backbone", None, 0.01), ("backbone", None, 0.0),
                                       ("layer.1", 1e-3, 0.01), ("layer.1", 1e-3, 0.0),
                                       ("embeddings", 5e-4, 0.01), ("embeddings", 5e-4, 0.0)]
    for name, _, decay, params in groups:
        assert all(n.endswith(NO_DECAY) is (decay == 0.0) for n in params)
        if name == "layer.1":
            assert all(".layer.1." in n for n in params)
        elif name == "embeddings":
            assert all(".embeddings." in n for n in params)
        else:  # unmatched: trained at lr
            assert not any(".layer.1." in n or ".embeddings." in n for n in params)
    everything = [n for g in groups for n in g[3]]
    assert sorted(everything) == sorted(n for n, _ in module.named_parameters())  # each parameter exactly once
    optimizer, _ = optimizer_and_scheduler(module)
    assert [g["initial_lr"] for g in optimizer.param_groups] == [2e-5, 2e-5, 1e-3, 1e-3, 5e-4, 5e-4]


def params_by_group(module) -> dict[tuple[str, float | None], list[str]]:
    """``{(group name, lr): parameter names}``, the decay and no-decay halves together."""
    out: dict[tuple[str, float | None], list[str]] = {}
    for name, lr, _, params in layout(module):
        out.setdefault((name, lr), []).extend(params)
    return out


def test_the_first_matching_pattern_wins(splade):
    module = SpladeModule(splade, learning_rate_mapping={LAYER1: 1e-3, r"layer\.": 5e-4})
    groups = params_by_group(module)
    assert set(groups) == {("backbone", None), ("layer.1", 1e-3), ("layer", 5e-4)}
    assert groups["layer.1", 1e-3] and all(".layer.1." in n for n in groups["layer.1", 1e-3])
    assert groups["layer", 5e-4] and all(".layer.0." in n for n in groups["layer", 5e-4])


def test_without_a_mapping_every_parameter_trains_at_lr(splade):
    module = SpladeModule(splade, lr=3e-4)
    assert {g[:2] for g in layout(module)} == {("backbone", None)}
    optimizer, _ = optimizer_and_scheduler(module)
    assert {g["initial_lr"] for g in optimizer.param_groups} == {3e-4}


def test_group_names_are_the_patterns_sanitised_and_unique(splade):
    assert group_name(r"encoder\.query_encoder\.") == "encoder.query_encoder"
    assert group_name(r"^encoder\.mlm\.(cls|bert\.embeddings)\.") == "encoder.mlm_cls_bert.embeddings"
    assert group_name(r"layer\.(0|1)\.") == "layer_0_1"
    assert group_name(r"\.*") == "group"
    rules = mapping_rules({"backbone?": 1, r"layer\.1\.": 2, "layer.1.": 3, "(layer.1.)": 4}, reserved=["backbone"])
    assert [(r.name, r.lr) for r in rules] == [("backbone_2", 1.0), ("layer.1", 2.0), ("layer.1_2", 3.0),
                                               ("layer.1_3", 4.0)]
    module = SpladeModule(splade, learning_rate_mapping={LAYER1: 1e-3, r"layer\.0\.|embeddings": 2e-3, "cls": 3e-3})
    names = [name for name, *_ in layout(module)]
    assert list(dict.fromkeys(names)) == ["layer.1", "layer.0_embeddings", "cls"]  # all claimed: no "backbone"


def test_the_schedule_scales_every_group(splade):
    module = SpladeModule(splade, lr=2e-5, lr_warmup_steps=3, learning_rate_mapping={LAYER1: 1e-3})
    optimizer, scheduler = optimizer_and_scheduler(module, total_steps=10)
    factor = linear_warmup_decay(3, 10)
    for step in range(10):
        assert [g["lr"] for g in optimizer.param_groups] == pytest.approx(
            [g["initial_lr"] * factor(step) for g in optimizer.param_groups])
        optimizer.step()
        scheduler.step()


def test_a_custom_optimizer_keeps_the_mapped_rates(splade):
    module = SpladeModule(splade, learning_rate_mapping={LAYER1: 1e-3},
                          optimizer=lambda groups: torch.optim.SGD(groups, lr=0.05))
    optimizer, _ = optimizer_and_scheduler(module)
    assert {(g["name"], g["initial_lr"]) for g in optimizer.param_groups} == {("backbone", 0.05), ("layer.1", 1e-3)}


# -- the shorthands are rules of the same mechanism --------------------------------------------------------------------
def same_groups(a, b, renamed: dict[str, str]) -> None:
    """``a``'s groups equal ``b``'s (same parameter objects, in the same order, same lr and decay) up to names."""
    ga, gb = a.parameter_groups(), b.parameter_groups()
    assert [renamed.get(g["name"], g["name"]) for g in ga] == [g["name"] for g in gb]
    assert [(g.get("lr"), g["weight_decay"], [id(p) for p in g["params"]]) for g in ga] == \
           [(g.get("lr"), g["weight_decay"], [id(p) for p in g["params"]]) for g in gb]


def test_idf_lr_equals_the_equivalent_mapping(router):
    shorthand = InferenceFreeSpladeModule(router, lr=2e-5, weight_decay=0.01, idf_lr=1e-3, idf_weight_decay=0.01)
    mapped = SpladeModule(router, lr=2e-5, weight_decay=0.01, learning_rate_mapping={QUERY_TABLE: 1e-3})
    same_groups(shorthand, mapped, {"idf": "encoder.query_encoder"})


def test_autoencoder_lr_equals_the_equivalent_mapping(csr):
    shorthand = CSRModule(csr, lr=2e-5, autoencoder_lr=1e-3)
    mapped = CSRModule(csr, lr=2e-5, learning_rate_mapping={AUTOENCODER: 1e-3})
    same_groups(shorthand, mapped, {"autoencoder": "encoder.autoencoder"})
    assert {g[0] for g in layout(shorthand)} == {"backbone", "autoencoder"}


def test_a_shorthand_takes_its_parameters_before_the_mapping(router, csr):
    module = InferenceFreeSpladeModule(router, lr=2e-5, idf_lr=1e-3, learning_rate_mapping={r"encoder\.": 5e-5})
    groups = layout(module)
    assert [g[:2] for g in groups] == [("idf", 1e-3), ("encoder", 5e-5), ("encoder", 5e-5)]  # no unmatched group
    assert groups[0][3] == ["encoder.query_encoder.weight"]
    with pytest.raises(ConfigError, match=re.escape(f"learning_rate_mapping: pattern '{QUERY_TABLE}' matches only "
                                                    "parameters an earlier rule takes first")) as err:
        InferenceFreeSpladeModule(router, learning_rate_mapping={QUERY_TABLE: 5e-3})
    assert "goes to idf_lr pattern" in str(err.value) and "set idf_lr instead" in str(err.value)
    groups = params_by_group(CSRModule(csr, autoencoder_lr=1e-3, learning_rate_mapping={"bias": 5e-3}))
    assert set(groups[("autoencoder", 1e-3)]) == {f"encoder.autoencoder.{n}" for n in ("pre_bias", "latent_bias",
                                                                                     "encoder.weight")}
    assert groups[("bias", 5e-3)] and all(n.startswith("encoder.dense.") and n.endswith("bias")
                                          for n in groups[("bias", 5e-3)])


def test_a_frozen_part_leaves_its_shorthand_group_out(tiny_bert_dir):
    router = QueryDocRouter(SpladeEncoder(tiny_bert_dir), StaticSparseEncoder(tiny_bert_dir, frozen=True))
    assert {g[0] for g in layout(InferenceFreeSpladeModule(router))} == {"backbone"}


# -- validation --------------------------------------------------------------------------------------------------------
def test_bad_patterns_and_rates_are_named_together(splade):
    with pytest.raises(ConfigError) as err:
        SpladeModule(splade, learning_rate_mapping={"layer[": 1e-3, LAYER1: 0, "cls": -1e-3, "bert": "fast"})
    message = str(err.value)
    assert "learning_rate_mapping: pattern 'layer[' is not a valid regular expression (unterminated character set" \
           in message
    assert f"pattern '{LAYER1}': learning rate 0: expected a number > 0" in message
    assert "pattern 'cls': learning rate -0.001" in message and "pattern 'bert': learning rate 'fast'" in message
    with pytest.raises(ConfigError, match="expected a mapping"):
        SpladeModule(splade, learning_rate_mapping=[LAYER1])


@pytest.mark.parametrize("make", [
    lambda enc: SpladeModule(enc["splade"], learning_rate_mapping={r"layre\.1\.": 1e-3}),
    lambda enc: InferenceFreeSpladeModule(enc["router"], learning_rate_mapping={r"layre\.1\.": 1e-3}),
    lambda enc: CSRModule(enc["csr"], learning_rate_mapping={r"layre\.1\.": 1e-3}),
], ids=["splade", "inference_free", "csr"])
def test_a_pattern_matching_nothing_fails_when_the_module_is_built(splade, router, csr, make):
    with pytest.raises(ConfigError, match=re.escape(r"learning_rate_mapping: pattern 'layre\.1\.' matches no "
                                                    "parameter name")) as err:
        make({"splade": splade, "router": router, "csr": csr})
    assert "Trainable parameter names" in str(err.value) and "encoder." in str(err.value)


def test_shadowed_and_frozen_only_patterns_fail(splade, tiny_encoder_dir):
    with pytest.raises(ConfigError, match=re.escape(f"pattern '{LAYER1}' matches only parameters an earlier rule "
                                                    r"takes first (e.g. encoder.mlm.bert.encoder.layer.1.")) as err:
        SpladeModule(splade, learning_rate_mapping={r"layer\.": 5e-4, LAYER1: 1e-3})
    assert "reorder the mapping" in str(err.value)
    frozen = CSREncoder(DenseEncoder(tiny_encoder_dir, frozen=True), SparseAutoEncoder(32, hidden_dim=64, k=4, k_aux=8))
    with pytest.raises(ConfigError, match=r"pattern 'encoder\\.dense' matches only frozen parameters"):
        CSRModule(frozen, learning_rate_mapping={r"encoder\.dense": 1e-3})
