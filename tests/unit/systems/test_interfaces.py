"""The typed module interfaces: ``reg_weight`` (configured λ × warm-up scale × controller multiplier, by hand and
through the real callbacks), ``defer_nonfinite_loss``, the ConfigError when a callback meets a module without the
interface it needs, and the narrow ``encoder`` type of the modules' signatures."""

import math
import typing

import pytest
import torch

from splade_lightning.callbacks import CollapseGuard, RegularizerWarmup, SelectionCriterion, SparsityController
from splade_lightning.errors import ConfigError
from splade_lightning.models import CSREncoder, QueryDocRouter, SparseEncoderBase
from splade_lightning.systems import (
    CSRModule,
    DeferrableLoss,
    EvalReporting,
    InferenceFreeSpladeModule,
    Regularized,
    RetrievalModule,
    SpladeModule,
)
from tests.unit.systems.sparse_fakes import BagEncoder, V


class _Trainer:
    def __init__(self, step, total=100):
        self.global_step, self.estimated_stepping_batches = step, total


def module(**kwargs) -> SpladeModule:
    system = SpladeModule(BagEncoder(), **{"query_reg_weight": 2e-3, "doc_reg_weight": 4e-3, **kwargs})
    system.log_dict = lambda *args, **kw: None  # no Trainer: the controller's logging goes nowhere
    return system


def test_reg_weight_is_configured_times_scale_times_multiplier():
    system = module()
    assert isinstance(system, Regularized) and isinstance(system, DeferrableLoss)
    assert system.reg_weight("query") == system.configured_reg_weight("query") == 2e-3  # 1 · 1 before any callback
    system.set_reg_scale(0.25)
    system.set_reg_multiplier("doc", 8.0)
    assert system.reg_scale == 0.25 and system.reg_multiplier("doc") == 8.0 and system.reg_multiplier("query") == 1.0
    assert system.reg_weight("doc") == pytest.approx(4e-3 * 0.25 * 8.0)
    assert system.reg_weight("query") == pytest.approx(2e-3 * 0.25)
    reps = torch.rand(2, V)
    terms = system.compute_loss(reps, torch.rand(4, V), 1)
    assert float(terms["reg_weight_doc"]) == pytest.approx(8e-3)
    assert float(terms["reg_weight_query"]) == pytest.approx(5e-4)
    expected = terms["loss_rank"] + 5e-4 * terms["flops_query"] + 8e-3 * terms["flops_doc"]
    torch.testing.assert_close(terms["loss"], expected)


def test_reg_weight_through_the_warmup_and_the_controller():
    """Quadratic warm-up at step 2 of 4 -> scale 0.25; a controller that measures 200 active dims against a target of
    100 with kp = 1, ki = 0.1 -> u = 1.1 · log 2, multiplier 2^1.1 (see test_sparsity_controller)."""
    system = module()
    warmup, controller = RegularizerWarmup(warmup_steps=4), SparsityController(doc_target=100, kp=1.0, ki=0.1)
    for callback in (warmup, controller):
        callback.setup(_Trainer(2), system, "fit")
    warmup.on_train_batch_start(_Trainer(2), system, None, 0)
    docs = torch.zeros(4, 500)
    docs[:, :200] = 1.0
    controller.on_train_batch_end(_Trainer(2), system, {"query_reps": docs, "doc_reps": docs}, None, 0)
    assert system.reg_weight("doc") == pytest.approx(4e-3 * 0.25 * 2**1.1)
    assert system.reg_weight("query") == pytest.approx(2e-3 * 0.25)  # no query target: multiplier 1
    assert controller.state_dict()["states"]["doc"]["log_multiplier"] == pytest.approx(1.1 * math.log(2))


@pytest.mark.parametrize(("call", "match"), [
    (lambda m: m.reg_weight("document"), r"side='document': expected one of \['query', 'doc'\]"),
    (lambda m: m.set_reg_multiplier("passage", 2.0), "side='passage'"),
    (lambda m: m.set_reg_multiplier("doc", 0.0), "value=0.0: expected a finite number > 0"),
    (lambda m: m.set_reg_scale(float("nan")), "scale=nan"),
    (lambda m: m.set_reg_scale(-0.5), "scale=-0.5"),
])
def test_bad_interface_arguments_are_config_errors(call, match):
    with pytest.raises(ConfigError, match=match):
        call(module())


def test_defer_nonfinite_loss_switches_the_policy():
    system = module()
    terms = {"loss": torch.tensor(float("inf")), "loss_rank": torch.tensor(0.5)}
    system.defer_nonfinite_loss(True)
    system.log_training(terms, batch_size=2)
    assert system.nonfinite_terms == {"loss": float("inf"), "loss_rank": 0.5}
    system.defer_nonfinite_loss(False)
    with pytest.raises(FloatingPointError, match="loss=inf"):
        system.log_training(terms, batch_size=2)


@pytest.mark.parametrize("callback", [RegularizerWarmup(warmup_steps=2), SparsityController(doc_target=10)],
                         ids=["warmup", "controller"])
def test_a_module_without_regularizer_is_refused_by_name(callback):
    """A RetrievalModule with no λ (like CSRModule): the message names the module class and the callback."""
    plain = RetrievalModule(BagEncoder(), lr=1e-3, weight_decay=0.0, lr_warmup_fraction=None, lr_warmup_steps=None,
                            optimizer=None, lr_scheduler=None, eval_k=10, eval_measures=["ndcg@10"])
    assert not isinstance(plain, Regularized) and isinstance(plain, DeferrableLoss)
    name = type(callback).__name__
    with pytest.raises(ConfigError, match=f"{name}: the module RetrievalModule does not implement Regularized "
                                          r"\(missing: reg_scale, set_reg_scale, .*\); expected a SpladeModule"):
        callback.setup(None, plain, "fit")
    CollapseGuard().setup(None, plain, "fit")  # the guard only needs DeferrableLoss, which every module has
    plain.log_training({"loss": torch.tensor(float("nan"))}, batch_size=1)  # deferred to the guard: no raise
    assert plain.nonfinite_terms == {"loss": pytest.approx(float("nan"), nan_ok=True)}


def test_eval_reporters_are_added_once_and_removed():
    system = module()
    assert isinstance(system, EvalReporting)
    criterion = SelectionCriterion(in_domain=["home"], out_of_domain=["away"])
    criterion.setup(None, system, "fit")
    criterion.setup(None, system, "fit")  # a second setup (fit, then validate) keeps one reporter
    assert system._eval_reporters == [criterion.report]
    assert criterion.report(system, "test", {"home": {}}) == {}  # tests get no selection and no name check
    criterion.teardown(None, system, "fit")
    assert system._eval_reporters == []
    system.remove_eval_reporter(criterion.report)  # not registered: nothing happens


def test_a_module_without_eval_reporting_is_refused_by_name():
    class Plain(torch.nn.Module):
        pass

    with pytest.raises(ConfigError, match="SelectionCriterion: the module Plain does not implement EvalReporting "
                                          r"\(missing: add_eval_reporter, remove_eval_reporter\)"):
        SelectionCriterion(in_domain=["home"], out_of_domain=["away"]).setup(None, Plain(), "fit")


def test_encoder_arguments_are_typed_narrowly():
    """``--model.init_args.encoder.help`` lists sparse encoders, not every torch module."""
    def hint(cls):
        return typing.get_type_hints(cls.__init__)["encoder"]

    assert hint(RetrievalModule) is SparseEncoderBase and hint(SpladeModule) is SparseEncoderBase
    assert hint(InferenceFreeSpladeModule) is QueryDocRouter and hint(CSRModule) is CSREncoder
    assert typing.get_type_hints(QueryDocRouter.__init__)["doc_encoder"] is SparseEncoderBase
    with pytest.raises(TypeError, match="abstract"):
        SparseEncoderBase()
