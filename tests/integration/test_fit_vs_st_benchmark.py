"""The fit-vs-sentence-transformers benchmark trains both sides on the same recipe and rows (no training, no
timings here)."""

import importlib.util
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))


def test_recipe_and_rows_come_from_the_quickstart_config_and_our_data_module():
    import fit_vs_st

    r = fit_vs_st.recipe()
    assert (r["batch_size"], r["lr"], r["query_reg_weight"], r["doc_reg_weight"]) == (32, 1e-4, 5e-4, 3e-4)
    assert (r["reg_warmup_fraction"], r["reg_warmup_shape"], r["max_epochs"]) == (0.33, "quadratic", 3)
    rows = fit_vs_st.training_rows(42, r)
    assert len(rows) == 394 and all(len(row) == 3 for row in rows)  # 6 records have no negative
    assert rows == fit_vs_st.training_rows(42, r) and rows != fit_vs_st.training_rows(43, r)


def test_an_existing_non_empty_out_is_refused_untouched(tmp_path):
    import fit_vs_st

    (tmp_path / "keep.txt").write_text("mine")
    with pytest.raises(SystemExit) as exit_info:
        fit_vs_st.make_out(str(tmp_path))
    assert exit_info.value.code == 2 and (tmp_path / "keep.txt").read_text() == "mine"
    assert fit_vs_st.make_out(str(tmp_path / "new")).is_dir()


def test_summary_has_the_required_keys():
    import fit_vs_st

    run = {"wall_s": 2.0, "peak_rss_bytes": 1.0, "hotpotqa-dev": 0.5, "msmarco-trecdl-5k": 0.4}
    results = {"ours": {42: run, 43: {**run, "hotpotqa-dev": 0.7}}, "st": {42: {**run, "wall_s": 6.0}, 43: run}}
    out = fit_vs_st.summary(results)
    assert out["wall_speedup"] == pytest.approx(2.0) and out["peak_memory_ratio"] == pytest.approx(1.0)
    assert out["ndcg_at_10_ours"] == pytest.approx(0.6) and out["ndcg_at_10_st"] == pytest.approx(0.5)
    assert out["ndcg_at_10_seed_std"] == pytest.approx(0.1414, abs=1e-4)


@pytest.mark.skipif(importlib.util.find_spec("lightning_ir") is not None, reason="lightning-ir is in this venv")
def test_the_lightning_ir_step_is_skipped_with_the_reason_when_it_is_not_importable(tmp_path):
    import fit_vs_st
    import lightning_ir_step

    reason = fit_vs_st.lightning_ir_problem(str(tmp_path))  # an empty folder: lightning-ir is not in the venv
    assert reason is not None and "--lir-pythonpath" in reason and "lightning_ir" in reason
    assert lightning_ir_step.summary(None) == {"lightning_ir_step_speedup": None,
                                               "lightning_ir_step_peak_memory_ratio": None}


def test_the_lightning_ir_step_summary_is_ours_against_theirs():
    import lightning_ir_step

    steps = {"lir": {"s_per_step": 6.0, "peak_memory_bytes": 4e9, "first_loss": 2.5},
             "ours": {"s_per_step": 1.5, "peak_memory_bytes": 1e9, "first_loss": 2.5000001}}
    out = lightning_ir_step.summary(steps)
    assert out["lightning_ir_step_speedup"] == pytest.approx(4.0)
    assert out["lightning_ir_step_peak_memory_ratio"] == pytest.approx(0.25)
    assert out["lightning_ir_step_loss_abs_diff"] == pytest.approx(1e-7, abs=1e-9)
