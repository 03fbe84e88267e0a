"""One reading of a ``device`` argument for every tool and for :func:`splade_lightning.load`."""

from __future__ import annotations

from splade_lightning.errors import ConfigError


def resolve_device(device: str | object | None, flag: str = "--device") -> str:
    """The torch device to run on.

    Args:
        device: ``auto`` or None (CUDA when available, else CPU), ``cpu``, ``cuda``, ``cuda:N``, ``mps``, or a
            ``torch.device``.
        flag: what named it, for the error message.

    Returns:
        The device as a string torch accepts.

    Raises:
        ConfigError: not a device name, or a device this machine does not have.
    """
    import torch

    if device is None or device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError, ValueError) as e:
        raise ConfigError(f"{flag} {device}: not a device ({e}); expected auto, cpu, cuda or cuda:N") from None
    if parsed.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"{flag} {device}: CUDA is not available on this machine; expected cpu or auto")
        if parsed.index is not None and parsed.index >= torch.cuda.device_count():
            raise ConfigError(f"{flag} {device}: this machine has {torch.cuda.device_count()} CUDA device(s); "
                              f"expected cuda:0 .. cuda:{torch.cuda.device_count() - 1}")
    elif parsed.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ConfigError(f"{flag} {device}: MPS is not available on this machine; expected cpu or auto")
    elif parsed.type not in ("cpu", "cuda", "mps"):
        raise ConfigError(f"{flag} {device}: unsupported device type {parsed.type!r}; expected auto, cpu, cuda or "
                          "cuda:N")
    return str(parsed)
