"""Every notebook under notebooks/ runs end to end (nbclient, the venv's python3 kernel) on two tiny models and the
toy BEIR set and writes its PNG plots; committed notebooks carry no outputs."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

import splade_lightning

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("matplotlib")

NOTEBOOK_DIR = Path(__file__).resolve().parents[2] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
#: notebook stem -> the PNG files it must write
EXPECTED_PNGS = {
    "01_model_analysis": ["expansions_A.png", "expansions_B.png", "active_dims.png", "df_profile.png", "overlap.png",
                          "active_dims_paired.png", "weight_changes.png"],
}


@pytest.fixture(scope="module")
def model_b_dir(tiny_bert_dir, tmp_path_factory) -> str:
    """The tiny model with every weight perturbed: a second "checkpoint" of the same vocabulary."""
    model = splade_lightning.load(tiny_bert_dir)
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for param in model.encoder.parameters():
            param.add_(0.05 * torch.randn(param.shape, generator=generator))
    return str(model.save(tmp_path_factory.mktemp("notebook_model_b") / "model"))


def test_notebooks_exist_and_are_covered():
    assert NOTEBOOKS, f"no notebooks under {NOTEBOOK_DIR}"
    assert sorted(p.stem for p in NOTEBOOKS) == sorted(EXPECTED_PNGS)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_notebook_has_no_outputs(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    dirty = [i for i, cell in enumerate(nb.cells)
             if cell.cell_type == "code" and (cell.outputs or cell.execution_count is not None)]
    assert not dirty, f"{path.name}: cells {dirty} have outputs or execution counts; strip them before committing"
    assert nb.metadata.kernelspec.name == "python3"


def _outputs_text(nb) -> str:
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            parts.append(out.get("text", ""))
            parts.extend(str(v) for k, v in out.get("data", {}).items() if k.startswith("text/"))
    return "\n".join(parts)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_on_tiny_models(path, tiny_bert_dir, model_b_dir, toy_beir, tmp_path, monkeypatch):
    out = tmp_path / "output"
    for name, value in {"SPLADE_NB_MODEL_A": tiny_bert_dir, "SPLADE_NB_MODEL_B": model_b_dir,
                        "SPLADE_NB_DATA": str(toy_beir), "SPLADE_NB_MIN_RELEVANCE": "1",
                        "SPLADE_NB_MAX_QUERIES": "2", "SPLADE_NB_OUTPUT": str(out),
                        "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("PATH", str(Path(sys.executable).parent), prepend=":")  # the kernel's "python" is ours
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(nb, kernel_name="python3", timeout=180,
                                     resources={"metadata": {"path": str(NOTEBOOK_DIR)}})
    client.execute()  # raises CellExecutionError with the failing cell's traceback
    for name in EXPECTED_PNGS[path.stem]:
        png = out / name
        assert png.is_file(), f"{path.name} did not write {name}; wrote {sorted(p.name for p in out.iterdir())}"
        assert png.read_bytes()[:8] == PNG_MAGIC and png.stat().st_size > 5000, name
    text = _outputs_text(nb)
    assert "toy_beir: 2 queries, 4 documents (of 6)" in text  # the subset limit reached the kernel
    assert "| A |" in text and "| B |" in text and "A and B are identical" not in text
    assert "Traceback" not in text
