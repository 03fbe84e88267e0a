"""λ warm-up: a pure function of the global step (value at step 0, at T, after T, linear, config errors)."""

import pytest

from splade_lightning.callbacks import RegularizerWarmup, warmup_factor
from splade_lightning.errors import ConfigError


def test_quadratic_values():
    assert warmup_factor(0, 10) == 0.0  # the first optimiser step trains without regularisation (ST convention)
    assert warmup_factor(1, 10) == pytest.approx(0.01)
    assert warmup_factor(5, 10) == pytest.approx(0.25)
    assert warmup_factor(10, 10) == 1.0
    assert warmup_factor(1000, 10) == 1.0


def test_linear_and_disabled():
    assert warmup_factor(5, 10, "linear") == pytest.approx(0.5)
    assert warmup_factor(0, 0) == 1.0


def test_depends_only_on_the_step():
    """After a resume the callback sees the restored global_step: same λ as an uninterrupted run."""
    uninterrupted = [warmup_factor(s, 7) for s in range(12)]
    resumed = [warmup_factor(s, 7) for s in range(5)] + [warmup_factor(s, 7) for s in range(5, 12)]
    assert uninterrupted == resumed


class _Trainer:
    def __init__(self, step, total):
        self.global_step = step
        self.estimated_stepping_batches = total


class _Module:
    """Implements the Regularized interface, as SpladeModule does."""

    reg_scale = 1.0

    def set_reg_scale(self, scale):
        self.reg_scale = scale

    def reg_multiplier(self, side):
        return 1.0

    def set_reg_multiplier(self, side, value):
        raise AssertionError("the warm-up never touches the multipliers")

    def configured_reg_weight(self, side):
        return 1.0

    def reg_weight(self, side):
        return self.reg_scale


@pytest.mark.parametrize(("kwargs", "total", "step", "expected"), [
    ({"warmup_steps": 4}, 100, 2, 0.25),
    ({"warmup_fraction": 0.5}, 20, 5, 0.25),
    ({}, 30, 5, 0.25),  # default: one third of the run
])
def test_callback_sets_scale_on_module(kwargs, total, step, expected):
    module = _Module()
    callback = RegularizerWarmup(**kwargs)
    callback.setup(_Trainer(step, total), module, "fit")
    callback.on_train_batch_start(_Trainer(step, total), module, None, 0)
    assert module.reg_scale == pytest.approx(expected)


def test_a_module_without_the_interface_is_refused_at_fit():
    """CSRModule has no regulariser: RegularizerWarmup on it is a ConfigError naming both classes."""
    import lightning.pytorch as pl

    with pytest.raises(ConfigError, match="RegularizerWarmup: the module LightningModule does not implement "
                                          "Regularized"):
        RegularizerWarmup(warmup_steps=4).setup(None, pl.LightningModule(), "fit")


def test_bad_configuration():
    with pytest.raises(ConfigError, match="not both"):
        RegularizerWarmup(warmup_steps=3, warmup_fraction=0.2)
    with pytest.raises(ConfigError, match="warmup_fraction=1.5"):
        RegularizerWarmup(warmup_fraction=1.5)
