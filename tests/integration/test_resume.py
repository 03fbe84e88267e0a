"""Exact resume after a real SIGKILL, corrupt-checkpoint fallback and atomic saves (CPU, tiny BERT, subprocesses).

One uninterrupted run and two killed runs (SIGKILL mid-epoch 0 during an optimiser step; SIGKILL in epoch 1 while the
step-6 checkpoint is half written) run in parallel; the killed runs resume with ``--ckpt_path last`` (the second after
its ``last.ckpt`` is truncated and the step-5 checkpoint corrupted, so it falls back to step 4). Every tensor of the
final model, optimiser, LR scheduler and SparsityController state must equal the uninterrupted run's bitwise.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[2]
QUICKSTART = REPO / "configs" / "splade" / "quickstart.yaml"
CHECKPOINT = ("    - class_path: lightning.pytorch.callbacks.ModelCheckpoint\n"
              "      init_args: {every_n_train_steps: 1, save_top_k: 2, monitor: step, mode: max, filename: '{step}',\n"
              "                  save_last: true}\n")
CALLBACKS = ("trainer:\n  callbacks:\n"
             "    - {class_path: splade_lightning.callbacks.RegularizerWarmup,\n"
             "       init_args: {warmup_steps: 5, warmup_fraction: null}}\n"
             "    - {class_path: splade_lightning.callbacks.SparsityController, init_args: {doc_target: 40.0}}\n"
             + CHECKPOINT)
KILLER = '''"""Test-only callback: SIGKILL this process at a chosen moment."""
import os
import signal

import lightning.pytorch as pl


class KillAt(pl.Callback):
    """SIGKILL during optimiser step ``step + 1`` (after backward, before the update), or with ``during_save`` while
    the checkpoint of step ``step`` is half written."""

    def __init__(self, step: int, during_save: bool = False):
        self.step, self.during_save = step, during_save

    def setup(self, trainer, pl_module, stage):
        if self.during_save:
            import splade_lightning.callbacks.checkpoint_io as checkpoint_io

            real = checkpoint_io.write_checkpoint

            def save(checkpoint, path):
                real(checkpoint, path)
                if trainer.global_step == self.step:
                    with open(path, "r+b") as f:
                        f.truncate(os.path.getsize(path) // 2)
                    os.kill(os.getpid(), signal.SIGKILL)

            checkpoint_io.write_checkpoint = save

    def on_before_optimizer_step(self, trainer, pl_module, optimizer):
        if not self.during_save and trainer.global_step == self.step:
            os.kill(os.getpid(), signal.SIGKILL)
'''


def fit_args(tiny_bert_dir, train_file: Path, root: Path, *extra: str) -> list[str]:
    """2 epochs x 4 steps of the quickstart config on a tiny BERT (dropout on), no validation."""
    return ["fit", "--config", str(QUICKSTART), f"--model.init_args.encoder.init_args.backbone={tiny_bert_dir}",
            f"--data.init_args.train.init_args.files=[{train_file}]",
            "--data.init_args.train.init_args.negative_columns=[neg]",
            "--data.init_args.val_sets=null", "--data.init_args.batch_size=2", "--data.init_args.max_doc_length=24",
            "--data.init_args.max_query_length=16", "--trainer.max_epochs=2", "--trainer.limit_val_batches=0",
            f"--trainer.default_root_dir={root}", f"--trainer.logger.init_args.save_dir={root}",
            "--eval_before_fit=false", *extra]


def start(args: list[str], helpers: Path) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
           "TOKENIZERS_PARALLELISM": "false", "PYTHONPATH": os.pathsep.join([str(helpers), str(REPO)])}
    return subprocess.Popen([sys.executable, "-m", "splade_lightning", *args], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finish(processes: dict[str, subprocess.Popen]) -> dict[str, tuple[int, str]]:
    outputs = {name: p.communicate(timeout=300)[0] for name, p in processes.items()}
    return {name: (processes[name].returncode, output) for name, output in outputs.items()}


def checkpoints(root: Path, version: int) -> Path:
    return root / "csv" / f"version_{version}" / "checkpoints"


@pytest.fixture(scope="module")
def runs(tiny_bert_dir, tmp_path_factory):
    """Run everything once: {name: (returncode, output)} plus the run roots."""
    tmp = tmp_path_factory.mktemp("resume")
    train = tmp / "train.jsonl"
    train.write_text("".join(json.dumps({"query": f"question number {i}", "pos": [f"answer text {i}"],
                                         "neg": [f"wrong text {i}", f"bad text {i}"]}) + "\n" for i in range(8)))
    (tmp / "resume_killer.py").write_text(KILLER)
    overlays = {}
    for name, kill in (("full", ""), ("mid_epoch", "{step: 2}"), ("during_save", "{step: 6, during_save: true}")):
        overlays[name] = tmp / f"{name}.yaml"
        killer = f"    - {{class_path: resume_killer.KillAt, init_args: {kill}}}\n" if kill else ""
        overlays[name].write_text(CALLBACKS + killer)
    roots = {name: tmp / name for name in overlays}
    out = finish({name: start(fit_args(tiny_bert_dir, train, roots[name], "--config", str(overlays[name])), tmp)
                  for name in overlays})
    damaged = checkpoints(roots["during_save"], 0)
    if (damaged / "last.ckpt").is_file() and (damaged / "step=5.ckpt").is_file():
        with open(damaged / "last.ckpt", "r+b") as f:
            f.truncate(1000)
        data = bytearray((damaged / "step=5.ckpt").read_bytes())
        data[len(data) // 2] ^= 0xFF  # one flipped byte: the zip CRC check must catch it
        (damaged / "step=5.ckpt").write_bytes(bytes(data))
    resumes = {f"{name}_resumed": start(fit_args(tiny_bert_dir, train, roots[name], "--config", str(overlays["full"]),
                                                 "--ckpt_path", "last"), tmp)
               for name in ("mid_epoch", "during_save")}
    out.update(finish(resumes))
    return out, roots


def assert_same(a, b, where: str = "") -> None:
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and a.shape == b.shape, where
        assert torch.equal(a, b), f"{where}: max |diff| {(a.double() - b.double()).abs().max().item():.3g}"
    elif isinstance(a, dict):
        assert set(a) == set(b), (where, set(a) ^ set(b))
        for key in a:
            assert_same(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{where}[{i}]")
    else:
        assert a == b, (where, a, b)


def assert_same_final_state(expected: Path, actual: Path) -> None:
    a, b = torch.load(expected, weights_only=False), torch.load(actual, weights_only=False)
    assert a["global_step"] == b["global_step"] == 8
    for key in ("state_dict", "optimizer_states", "lr_schedulers"):
        assert_same(a[key], b[key], key)
    controllers = [key for key in a["callbacks"] if key.startswith("SparsityController")]
    assert controllers and a["callbacks"][controllers[0]]["states"]["doc"]["steps"] == 8
    assert_same(a["callbacks"][controllers[0]], b["callbacks"][controllers[0]], controllers[0])


def test_sigkill_mid_epoch_then_resume_is_bitwise(runs):
    out, roots = runs
    assert out["full"][0] == 0, out["full"][1][-3000:]
    assert out["mid_epoch"][0] == -signal.SIGKILL, out["mid_epoch"][1][-3000:]
    killed = checkpoints(roots["mid_epoch"], 0)
    assert torch.load(killed / "last.ckpt", weights_only=False)["global_step"] == 2
    code, log = out["mid_epoch_resumed"]
    assert code == 0, log[-3000:]
    assert f"Restoring states from the checkpoint path at {killed / 'last.ckpt'}" in log.replace("\n", "")
    assert "not resumable" not in log
    assert_same_final_state(checkpoints(roots["full"], 0) / "last.ckpt",
                            checkpoints(roots["mid_epoch"], 1) / "last.ckpt")


def test_sigkill_during_save_then_corrupt_last_falls_back_and_is_bitwise(runs):
    out, roots = runs
    assert out["during_save"][0] == -signal.SIGKILL, out["during_save"][1][-3000:]
    killed = checkpoints(roots["during_save"], 0)
    assert not (killed / "step=6.ckpt").exists() and list(killed.glob(".step=6.ckpt.*.tmp"))  # atomic: only a temp
    code, log = out["during_save_resumed"]
    assert code == 0, log[-3000:]
    flat = log.replace("\n", "")
    assert str(killed / "last.ckpt") in flat and str(killed / "step=5.ckpt") in flat and "CRC" in flat
    assert f"resuming from {killed / 'step=4.ckpt'} instead" in flat
    assert_same_final_state(checkpoints(roots["full"], 0) / "last.ckpt",
                            checkpoints(roots["during_save"], 1) / "last.ckpt")


def test_only_corrupt_checkpoints_is_a_clear_error(tiny_bert_dir, toy_triplets, tmp_path, capsys):
    from splade_lightning.tools.main import main

    directory = tmp_path / "csv" / "version_0" / "checkpoints"
    directory.mkdir(parents=True)
    (directory / "last.ckpt").write_bytes(b"PK\x03\x04 truncated")
    (directory / "step=3.ckpt").write_bytes(b"")
    exit_info = main(fit_args(tiny_bert_dir, toy_triplets, tmp_path, "--ckpt_path", "last"))
    assert exit_info == 2
    err = capsys.readouterr().err
    assert "no loadable checkpoint in" in err and "last.ckpt:" in err and "step=3.ckpt:" in err, err
    assert not list(tmp_path.rglob("metrics.csv"))  # failed before training


def test_explicit_corrupt_checkpoint_is_an_error_not_a_fallback(tiny_bert_dir, toy_triplets, tmp_path, capsys):
    """``--ckpt_path FILE`` names one file: a damaged one is an error even when a loadable checkpoint lies beside it
    (resuming from that one would report another model's metrics as this run's)."""
    from splade_lightning.tools.main import main

    main_args = fit_args(tiny_bert_dir, toy_triplets, tmp_path)
    main(main_args)
    directory = tmp_path / "csv" / "version_0" / "checkpoints"
    broken = directory / "broken.ckpt"
    broken.write_bytes((directory / "last.ckpt").read_bytes()[:1000])
    before = {p: p.read_bytes() for p in directory.iterdir()}
    for subcommand in ("fit", "validate"):
        exit_info = main([subcommand, *main_args[1:], "--ckpt_path", str(broken)])
        assert exit_info == 2
        err = capsys.readouterr().err
        assert f"--ckpt_path {broken}: the checkpoint cannot be loaded" in err and "resuming from" not in err, err
    assert {p: p.read_bytes() for p in directory.iterdir()} == before
    assert len(list(tmp_path.glob("csv/version_*"))) == 1  # no second run started


def test_crash_during_save_keeps_previous_last(tiny_bert_dir, toy_triplets, tmp_path, monkeypatch):
    import splade_lightning.callbacks.checkpoint_io as checkpoint_io
    from splade_lightning.tools.main import main

    real, calls = checkpoint_io.write_checkpoint, []

    def crash_on_third(checkpoint, path):  # step 1: step=1.ckpt, last.ckpt; step 2: crash half-way
        calls.append(path)
        if len(calls) == 3:
            Path(path).write_bytes(b"half a checkpoint")
            raise OSError("disk full")
        real(checkpoint, path)

    monkeypatch.setattr(checkpoint_io, "write_checkpoint", crash_on_third)
    overlay = tmp_path / "callbacks.yaml"
    overlay.write_text("trainer:\n  callbacks:\n" + CHECKPOINT)
    with pytest.raises(OSError, match="disk full"):
        main(fit_args(tiny_bert_dir, toy_triplets, tmp_path, "--config", str(overlay)))
    directory = checkpoints(tmp_path, 0)
    assert sorted(p.name for p in directory.iterdir()) == ["last.ckpt", "step=1.ckpt"]
    assert torch.load(directory / "last.ckpt", weights_only=False)["global_step"] == 1


def batches_equal(a, b) -> bool:
    pairs = [(getattr(a, name), getattr(b, name)) for name in vars(a)]
    return all(torch.equal(x, y) if isinstance(x, torch.Tensor) else x == y for x, y in pairs)


@pytest.mark.parametrize(("kind", "num_workers"), [("text", 0), ("scored", 0), ("scored", 1)])
def test_loader_continues_after_consumed_batches(kind, num_workers, tokenizer_dir, tmp_path):
    """Both text-record training sources (TextTriplets, ScoredGroups): a new loader given the saved state yields
    exactly the rest of the epoch's batches (and the next epoch from its start), also with a worker process."""
    from splade_lightning.data import RetrievalDataModule, ScoredGroups, TextTriplets

    rows = [{"query": f"question {i}", "pos": [f"answer {i}"], "neg": [f"wrong {i}", f"bad {i}"],
             "pos_scores": [9.0], "neg_scores": [1.0, 2.0]} for i in range(12)]
    train = tmp_path / "train.jsonl"
    train.write_text("".join(json.dumps(r) + "\n" for r in rows))

    def loader():
        common = {"batch_size": 2, "tokenizer": tokenizer_dir, "num_workers": num_workers, "seed": 7}
        source = (TextTriplets([str(train)], negative_columns=["neg"]) if kind == "text"
                  else ScoredGroups([str(train)]))
        dm = RetrievalDataModule(source, **common)
        dm.setup("fit")
        return dm.train_dataloader()

    first = loader()
    first.batch_sampler.set_epoch(1)
    iterator = iter(first)
    consumed = [next(iterator) for _ in range(4)]
    state = first.state_dict()
    assert state == {"epoch": 1, "batches": 4, "num_batches": 6}
    expected = consumed + list(iterator)
    resumed = loader()
    resumed.load_state_dict(state)
    resumed.batch_sampler.set_epoch(1)  # what Lightning does before the first batch
    rest = list(resumed)
    assert len(rest) == 2 and all(batches_equal(a, b) for a, b in zip(rest, expected[4:]))
    assert not batches_equal(rest[0], expected[0])
    resumed.batch_sampler.set_epoch(2)  # the skip applies once, to the saved epoch only
    assert len(list(resumed)) == 6 and resumed.state_dict()["batches"] == 6
