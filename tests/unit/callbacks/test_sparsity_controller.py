"""SparsityController: the PI update rule (hand-computed values, bounds, convergence on a toy plant), the batch
measure, what it writes to the module, state_dict round trip (a resumed controller continues exactly) and config
errors."""

import math

import pytest
import torch

from splade_lightning.callbacks import SparsityController
from splade_lightning.callbacks.sparsity_controller import ControllerState, batch_measure, pi_update
from splade_lightning.errors import ConfigError


def test_first_update_is_positional_p_plus_i():
    new = pi_update(ControllerState(), measured=200.0, target=100.0, kp=1.0, ki=0.1, ema_decay=0.9, bounds=(-5, 5))
    e = math.log(2.0)
    assert new.ema == 200.0  # the EMA starts at the first measurement (no bias towards 0)
    assert new.prev_error == pytest.approx(e)
    assert new.log_multiplier == pytest.approx(1.0 * e + 0.1 * e)
    assert new.steps == 1


def test_velocity_form_second_step_by_hand():
    state = ControllerState(log_multiplier=0.5, prev_error=math.log(2.0), ema=200.0, steps=1)
    new = pi_update(state, measured=100.0, target=100.0, kp=2.0, ki=0.1, ema_decay=0.5, bounds=(-5, 5))
    ema = 0.5 * 200.0 + 0.5 * 100.0
    e = math.log(ema / 100.0)
    assert new.ema == pytest.approx(150.0)
    assert new.log_multiplier == pytest.approx(0.5 + 2.0 * (e - math.log(2.0)) + 0.1 * e)


def test_bounds_clip_and_zero_measurement_stays_finite():
    up = pi_update(ControllerState(), 1e6, 100.0, kp=1.0, ki=1.0, ema_decay=0.0, bounds=(-1.0, 2.0))
    assert up.log_multiplier == 2.0
    down = pi_update(ControllerState(), 0.0, 100.0, kp=1.0, ki=1.0, ema_decay=0.0, bounds=(-1.0, 2.0))
    assert down.log_multiplier == -1.0 and math.isfinite(down.prev_error)


def test_converges_on_a_toy_plant_with_lag():
    """Plant: active dims relax towards 400·λ^-0.7 with a time constant of 5 steps; target 100 needs λ = 7.25."""
    state, dims = ControllerState(), 400.0
    trace = []
    for _ in range(300):
        state = pi_update(state, dims, 100.0, kp=1.0, ki=0.05, ema_decay=0.5, bounds=(-10, 10))
        dims += (400.0 * math.exp(state.log_multiplier) ** -0.7 - dims) / 5.0
        trace.append(dims)
    assert abs(trace[-1] - 100.0) < 1.0
    assert min(trace) > 85.0  # no large undershoot
    assert math.exp(state.log_multiplier) == pytest.approx(4.0 ** (1 / 0.7), rel=0.02)


def test_batch_measure_active_dims_and_flops():
    query = torch.tensor([[1.0, 0.0, 0.0, 2.0], [0.0, 0.0, 3.0, 0.0]])
    doc = torch.tensor([[1.0, 1.0, 0.0, 0.0], [0.0, 2.0, 2.0, 2.0], [0.5, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
    assert batch_measure("active_dims", query, doc, "doc") == pytest.approx((2 + 3 + 1 + 0) / 4)
    assert batch_measure("active_dims", query, doc, "query") == pytest.approx(1.5)
    p_q = torch.tensor([0.5, 0.0, 0.5, 0.5])
    p_d = torch.tensor([0.5, 0.5, 0.25, 0.25])
    assert batch_measure("flops", query, doc, "doc") == pytest.approx(float((p_q * p_d).sum()))


class _Module:
    """Implements the Regularized interface (as SpladeModule does) and records what is logged."""

    def __init__(self):
        self.multipliers = {"query": 1.0, "doc": 1.0}
        self.configured = {"query": 1e-3, "doc": 1e-3}
        self.logged = {}

    reg_scale = 1.0

    def set_reg_scale(self, scale):
        self.reg_scale = scale

    def reg_multiplier(self, side):
        return self.multipliers[side]

    def set_reg_multiplier(self, side, value):
        self.multipliers[side] = value

    def configured_reg_weight(self, side):
        return self.configured[side]

    def reg_weight(self, side):
        return self.configured[side] * self.reg_scale * self.multipliers[side]

    def log_dict(self, values, batch_size):
        self.logged.update(values)


def _outputs(doc_dims: int, vocab: int = 500, batch: int = 4) -> dict:
    doc = torch.zeros(batch, vocab)
    doc[:, :doc_dims] = 1.0
    query = torch.zeros(batch, vocab)
    query[:, :10] = 1.0
    return {"loss": torch.tensor(0.0), "query_reps": query, "doc_reps": doc}


def test_callback_writes_the_multiplier_and_logs():
    module = _Module()
    controller = SparsityController(doc_target=100, kp=1.0, ki=0.1)
    controller.on_train_batch_end(None, module, _outputs(200), None, 0)
    e = math.log(2.0)
    assert module.reg_multiplier("doc") == pytest.approx(math.exp(1.1 * e))
    assert module.reg_multiplier("query") == 1.0  # no query target: untouched
    assert module.logged["train/controller_measured_doc"] == 200.0
    assert module.logged["train/controller_log_multiplier_doc"] == pytest.approx(1.1 * e)
    assert module.logged["train/controller_target_doc"] == 100.0
    assert "train/controller_measured_query" not in module.logged


def test_state_dict_round_trip_continues_exactly():
    measurements = [300, 260, 210, 180, 150, 130, 120, 110, 105, 98]
    straight, module = SparsityController(doc_target=100, query_target=8), _Module()
    for dims in measurements:
        straight.on_train_batch_end(None, module, _outputs(dims), None, 0)

    first, module_a = SparsityController(doc_target=100, query_target=8), _Module()
    for dims in measurements[:4]:
        first.on_train_batch_end(None, module_a, _outputs(dims), None, 0)
    saved = first.state_dict()
    resumed, module_b = SparsityController(doc_target=100, query_target=8), _Module()
    resumed.load_state_dict(saved)
    resumed.on_train_start(None, module_b)
    assert module_b.multipliers == module_a.multipliers  # applied before the first resumed batch
    for dims in measurements[4:]:
        resumed.on_train_batch_end(None, module_b, _outputs(dims), None, 0)
    assert resumed.states == straight.states
    assert module_b.multipliers == module.multipliers


def test_state_dict_of_another_target_is_refused():
    saved = SparsityController(doc_target=100).state_dict()
    with pytest.raises(ConfigError, match="targets"):
        SparsityController(doc_target=50).load_state_dict(saved)


def test_state_key_differs_per_target():
    assert SparsityController(doc_target=100).state_key != SparsityController(doc_target=50).state_key


@pytest.mark.parametrize(("kwargs", "match"), [
    ({}, "neither"),
    ({"doc_target": 0}, "doc_target=0"),
    ({"doc_target": -5.0}, "doc_target=-5.0"),
    ({"doc_target": 1.0, "query_target": 2.0, "metric": "flops"}, "not both"),
    ({"doc_target": 100, "metric": "l0"}, "metric='l0'"),
    ({"doc_target": 100, "ki": -1.0}, "ki=-1.0"),
    ({"doc_target": 100, "kp": 0.0, "ki": 0.0}, "never move"),
    ({"doc_target": 100, "ema_decay": 1.0}, "ema_decay=1.0"),
    ({"doc_target": 100, "initial_log_multiplier": 20.0}, "initial_log_multiplier=20.0"),
])
def test_bad_configuration(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        SparsityController(**kwargs)


def test_setup_refuses_a_module_without_the_interface_or_with_zero_weight():
    class _Plain:
        hparams = {"query_reg_weight": 1e-3, "doc_reg_weight": 1e-3}  # hparams alone are no interface

    with pytest.raises(ConfigError, match=r"SparsityController: the module _Plain does not implement Regularized "
                                          r"\(missing: reg_scale, set_reg_scale, reg_multiplier, set_reg_multiplier, "
                                          r"configured_reg_weight, reg_weight\)"):
        SparsityController(doc_target=100).setup(None, _Plain(), "fit")
    SparsityController(doc_target=100).setup(None, _Plain(), "validate")  # adapts nothing outside fit
    module = _Module()
    module.configured["query"] = 0.0
    with pytest.raises(ConfigError, match="query_reg_weight=0.0"):
        SparsityController(query_target=10).setup(None, module, "fit")
    SparsityController(doc_target=100).setup(None, module, "fit")  # the doc side has a starting λ: fine
