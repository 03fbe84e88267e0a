"""The fit report table: fixed columns always, CSR's extra columns only when a result has them."""

from splade_lightning.formats.report import COLUMNS, format_table, report_rows

SPLADE = {"msmarco": {"ndcg@10": 0.8, "mrr@10": 0.9, "recall@100": 0.85, "active_dims_query": 17.2,
                      "active_dims_doc": 128.1, "flops": 2.1}}


def test_splade_table_has_the_fixed_columns_only():
    header = format_table(None, SPLADE).splitlines()[0]
    assert [c.strip() for c in header.strip("|").split("|")] == ["dataset", "model", *COLUMNS]
    assert report_rows(None, SPLADE) == [["msmarco", "fine-tuned", "0.8000", "0.9000", "0.8500", "17.2", "128.1",
                                          "2.1"]]


def test_csr_columns_appear_when_present():
    before = {"msmarco": {**SPLADE["msmarco"], "dense_ndcg@10": 0.7977, "recon_fvu": 0.76, "dead_fraction": 0.0}}
    after = {"msmarco": {**SPLADE["msmarco"], "dense_ndcg@10": 0.7977, "recon_fvu": 0.75, "dead_fraction": 0.01}}
    lines = format_table(before, after).splitlines()
    assert lines[0].split("|")[-4:-1] == [" dense_ndcg@10 ", " recon_fvu ", " dead_fraction "]
    assert [row[-3:] for row in report_rows(before, after)] == [["0.7977", "0.7600", "0.0000"],
                                                                ["0.7977", "0.7500", "0.0100"]]
