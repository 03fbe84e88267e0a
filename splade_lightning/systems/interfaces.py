"""Typed interfaces between the LightningModules and the callbacks that steer them.

A callback talks to a module only through these methods, never through attributes it writes or ``hparams`` keys it
reads: :class:`Regularized` (the λ of each side: warm-up scale, controller multiplier, the weight applied),
:class:`DeferrableLoss` (who decides about a non-finite training loss) and :class:`EvalReporting` (figures derived
from each evaluation, logged with it). :func:`require` turns a module that lacks an
interface into a :class:`~splade_lightning.errors.ConfigError` naming the module and the callback.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Literal, Protocol, runtime_checkable

from splade_lightning.errors import ConfigError
from splade_lightning.metrics.selection import Metrics

if TYPE_CHECKING:
    import lightning.pytorch as pl

#: the two sides of a retriever, as in the logged keys (``train/reg_weight_query``, ``train/reg_weight_doc``)
Side = Literal["query", "doc"]
SIDES: tuple[Side, Side] = ("query", "doc")


def check_side(side: str) -> Side:
    """``side`` itself when it is ``"query"`` or ``"doc"``; else a :class:`ConfigError` naming it."""
    if side not in SIDES:
        raise ConfigError(f"side={side!r}: expected one of {list(SIDES)}")
    return side


@runtime_checkable
class Regularized(Protocol):
    """A module whose loss adds ``λ_side · R_side(reps)`` for each side, with

    ``λ_side = configured_reg_weight(side) · reg_scale · reg_multiplier(side)``

    where ``reg_scale`` (1.0 by default) belongs to :class:`~splade_lightning.callbacks.RegularizerWarmup` and the
    per-side multipliers (1.0 by default) to :class:`~splade_lightning.callbacks.SparsityController`.
    Implemented by :class:`~splade_lightning.systems.SpladeModule` and its subclasses.
    """

    @property
    def reg_scale(self) -> float:
        """The warm-up scale in [0, 1] shared by both sides."""

    def set_reg_scale(self, scale: float) -> None:
        """Set the warm-up scale (a number >= 0)."""

    def reg_multiplier(self, side: Side) -> float:
        """The controller's factor on ``side``'s configured λ."""

    def set_reg_multiplier(self, side: Side, value: float) -> None:
        """Set the controller's factor on ``side``'s configured λ (a number > 0)."""

    def configured_reg_weight(self, side: Side) -> float:
        """λ as configured (``query_reg_weight`` / ``doc_reg_weight``), before scale and multiplier."""

    def reg_weight(self, side: Side) -> float:
        """The λ applied now: configured weight × warm-up scale × controller multiplier."""


@runtime_checkable
class DeferrableLoss(Protocol):
    """A module that raises ``FloatingPointError`` on a non-finite training loss unless a callback takes the
    decision over (:class:`~splade_lightning.callbacks.CollapseGuard`). Implemented by
    :class:`~splade_lightning.systems.RetrievalModule`."""

    def defer_nonfinite_loss(self, enabled: bool) -> None:
        """``True``: on a non-finite loss, log nothing for the batch and keep its terms in :attr:`nonfinite_terms`
        instead of raising; ``False``: raise (the default)."""

    @property
    def nonfinite_terms(self) -> dict[str, float] | None:
        """The loss terms of the last training batch when its loss was non-finite (deferred), else ``None``."""


#: ``reporter(module, stage, metrics) -> {logged key: value}``: the reporting module, ``stage`` ``"validate"`` or
#: ``"test"``, ``metrics`` the evaluation's ``{set: {measure: value}}`` (as the module's ``last_eval_metrics``)
EvalReporter = Callable[["pl.LightningModule", str, Metrics], dict[str, float]]


@runtime_checkable
class EvalReporting(Protocol):
    """A module that logs each evaluation's metrics itself and logs, in the same call (same step, same row of
    ``metrics.csv``, visible to ``ModelCheckpoint`` and ``EarlyStopping`` in any callback order), the figures that
    registered reporters derive from them (:class:`~splade_lightning.callbacks.SelectionCriterion`). Implemented by
    :class:`~splade_lightning.systems.RetrievalModule`."""

    def add_eval_reporter(self, reporter: EvalReporter) -> None:
        """Call ``reporter`` after every evaluation (not after a sanity check) and log what it returns; adding the
        same reporter twice keeps one."""

    def remove_eval_reporter(self, reporter: EvalReporter) -> None:
        """Stop calling ``reporter`` (nothing happens when it was not added)."""


def interface_members(interface: type) -> list[str]:
    """The public methods and properties an interface declares."""
    return [name for name in vars(interface) if not name.startswith("_")]


def require(module: object, interface: type, callback: str, expected: str) -> None:
    """Raise a :class:`ConfigError` unless ``module`` implements ``interface``.

    Args:
        module: the LightningModule a callback is attached to.
        interface: :class:`Regularized`, :class:`DeferrableLoss` or :class:`EvalReporting`.
        callback: the callback's class name, for the message.
        expected: which modules do implement it, for the message.
    """
    if isinstance(module, interface):
        return
    missing = [name for name in interface_members(interface) if not hasattr(module, name)]
    raise ConfigError(f"{callback}: the module {type(module).__name__} does not implement {interface.__name__} "
                      f"(missing: {', '.join(missing)}); expected {expected}")
