"""Every shipped YAML is parsed and instantiated through the real CLI (no training)."""

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
#: configs of a tool other than fit/validate/test: directory -> the tool (``splade-lightning TOOL --config FILE``)
TOOL_DIRS = {REPO / "configs" / "serving": "export", REPO / "configs" / "interpolate": "interpolate"}
#: the fit configs of the shipped studies (each a frozen copy of the config it was run from) are fit configs too
CONFIGS = sorted([*(c for c in (REPO / "configs").rglob("*.yaml") if c.parent not in TOOL_DIRS),
                  *(REPO / "experiments").glob("*/base.yaml")])
TOOL_CONFIGS = sorted(c for d in TOOL_DIRS for c in d.glob("*.yaml"))
#: partial configs meant to be given after a full one (``--config base.yaml --config overlay.yaml``)
OVERLAY_DIRS = [REPO / "configs" / "logging", REPO / "configs" / "validation"]
BASE = REPO / "configs" / "splade" / "quickstart.yaml"


def test_configs_exist():
    assert (REPO / "configs" / "splade" / "quickstart.yaml") in CONFIGS


@pytest.mark.parametrize("config", CONFIGS, ids=[str(c.relative_to(REPO)) for c in CONFIGS])
def test_config_instantiates(config, monkeypatch):
    from splade_lightning.tools.lightning_cli import SpladeCLI

    monkeypatch.chdir(REPO)  # shipped configs use paths relative to the repository root
    monkeypatch.setenv("WANDB_MODE", "offline")  # the wandb overlay: never reach the network
    overlay = any(d in config.parents for d in OVERLAY_DIRS)
    cli = SpladeCLI(args=[*(["--config", str(BASE)] if overlay else []), "--config", str(config)], run=False)
    assert cli.model is not None and cli.datamodule is not None and cli.trainer is not None
    assert callable(getattr(cli.model, "configure_optimizers", None))


@pytest.mark.parametrize("config", TOOL_CONFIGS, ids=[str(c.relative_to(REPO)) for c in TOOL_CONFIGS])
def test_tool_config_parses(config, monkeypatch, capsys):
    """A tool's config resolves through the tool's own parser, and every key of the file is one of its options."""
    import yaml

    from splade_lightning.tools.main import main

    monkeypatch.chdir(REPO)
    assert main([TOOL_DIRS[config.parent], "--config", str(config), "--print_config"]) == 0
    resolved = yaml.safe_load(capsys.readouterr().out)
    assert yaml.safe_load(config.read_text()).items() <= resolved.items()
