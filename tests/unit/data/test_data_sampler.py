"""TrainDataset per-epoch choices and NoDuplicatesBatchSampler: no duplicates, determinism, DDP split, Lightning."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader, DistributedSampler

from splade_lightning.data import NoDuplicatesBatchSampler, TrainDataset, TrainRecord
from splade_lightning.data.sampler import no_duplicate_batches
from splade_lightning.errors import ConfigError, DataError

# the overlapping toy records need reshuffled passes to fill every batch; test_refill_warning checks the warning
pytestmark = pytest.mark.filterwarnings("ignore:NoDuplicatesBatchSampler:UserWarning")


def record(i: int, query: str, positives, negatives=()) -> TrainRecord:
    return TrainRecord(query, tuple(positives), tuple(negatives), "mem.jsonl", i + 1)


def overlapping_records(n: int = 60) -> list[TrainRecord]:
    """Records that share texts: query i%7, positive i%11, negatives among 13 shared texts."""
    return [record(i, f"query {i % 17}", [f"pos {i % 11}", f"pos {i}"], [f"neg {(i + k) % 13}" for k in range(4)])
            for i in range(n)]


def distinct_records(n: int) -> list[TrainRecord]:
    return [record(i, f"q{i}", [f"p{i}"], [f"n{i}a", f"n{i}b", f"n{i}c"]) for i in range(n)]


def test_dataset_choices_deterministic_per_epoch():
    records = [record(0, "q", ["p1", "p2", "p3"], [f"n{k}" for k in range(6)])]
    a, b = TrainDataset(records, 2, seed=1), TrainDataset(records, 2, seed=1)
    assert [a.example(0, e) for e in range(10)] == [b.example(0, e) for e in range(10)]
    examples = {tuple(a.example(0, e).docs) for e in range(20)}
    assert len(examples) > 5  # choices change across epochs
    for docs in examples:
        assert docs[0] in ("p1", "p2", "p3") and len(set(docs[1:])) == 2 and all(d.startswith("n") for d in docs[1:])
    a.set_epoch(3)
    assert a[0] == a.example(0, 3)
    first = TrainDataset(records, 2, sampling="first")
    assert first[0] == ("q", ["p1", "n0", "n1"], None, None) and first.example(0, 5) == first[0]


def test_dataset_pairs_and_skipped_records():
    records = [record(0, "q0", ["p"], ["n", "n", "p"]), record(1, "q1", ["p"], ["a", "b"]), record(2, "q2", ["p"])]
    pairs = TrainDataset(records, 0)
    assert len(pairs) == 3 and pairs[2] == ("q2", ["p"], None, None)
    ds = TrainDataset(records, 2)
    assert len(ds) == 1 and [r.line for r in ds.skipped] == [1, 3]  # record 0: duplicate + positive negatives dropped
    assert "skipped 2 training record(s)" in ds.skipped_message() and "mem.jsonl:1, mem.jsonl:3" in ds.skipped_message()


def batch_texts(ds: TrainDataset, batch: list[int], epoch: int) -> list[str]:
    return [t for i in batch for t in ds.texts(i, epoch)]


def test_no_duplicated_text_in_any_batch():
    ds = TrainDataset(overlapping_records(), num_negatives=2, seed=0)
    sampler = NoDuplicatesBatchSampler(ds, batch_size=4, seed=0, max_extra_passes=10)
    for epoch in range(3):
        sampler.set_epoch(epoch)
        batches = list(sampler)
        assert len(batches) == len(sampler) == 15
        for batch in batches:
            texts = batch_texts(ds, batch, epoch)
            assert len(batch) == 4 and len(texts) == len(set(texts))
            assert [ds[i] for i in batch] == [ds.example(i, epoch) for i in batch]


def test_deterministic_per_seed_and_epoch_and_different_across_epochs():
    ds = TrainDataset(distinct_records(40), 1)

    def order(seed, epoch):
        sampler = NoDuplicatesBatchSampler(TrainDataset(distinct_records(40), 1), 8, seed=seed)
        sampler.set_epoch(epoch)
        return list(sampler)

    assert order(3, 0) == order(3, 0) and order(3, 2) == order(3, 2)
    assert order(3, 0) != order(3, 1) and order(3, 0) != order(4, 0)
    assert sorted(i for b in order(3, 1) for i in b) == list(range(len(ds)))  # distinct texts: a permutation


def test_ddp_ranks_disjoint_and_equal_length():
    ds = TrainDataset(overlapping_records(), 1, seed=0)
    samplers = [NoDuplicatesBatchSampler(ds, 3, seed=5, num_replicas=3, rank=r, max_extra_passes=10) for r in range(3)]
    assert {len(s) for s in samplers} == {60 // 9}
    per_rank = [list(s) for s in samplers]
    assert all(len(b) == len(samplers[0]) for b in per_rank)
    for step in range(len(samplers[0])):  # the global batch of each step is duplicate-free and split disjointly
        global_batch = [i for rank in range(3) for i in per_rank[rank][step]]
        texts = batch_texts(ds, global_batch, 0)
        assert len(global_batch) == 9 and len(set(global_batch)) == 9 and len(texts) == len(set(texts))
    single = NoDuplicatesBatchSampler(ds, 9, seed=5, max_extra_passes=10)
    assert [b for batch in single for b in [batch]] == [sum((per_rank[r][s] for r in range(3)), [])
                                                       for s in range(len(single))]


def test_len_matches_iteration_without_drop_last():
    ds = TrainDataset(overlapping_records(30), 1)
    sampler = NoDuplicatesBatchSampler(ds, 4, drop_last=False)
    for epoch in range(3):
        sampler.set_epoch(epoch)
        batches = list(sampler)
        assert len(batches) == len(sampler)
        assert sorted(i for b in batches for i in b) == list(range(30))  # every record exactly once


def test_refill_warning():
    ds = TrainDataset(overlapping_records(), 1, seed=0)
    with pytest.warns(UserWarning, match=r"filled from reshuffled passes"):
        NoDuplicatesBatchSampler(ds, 3, seed=5, num_replicas=3, rank=0, max_extra_passes=10).global_batches(0)


def test_too_few_distinct_texts_is_a_clear_error():
    ds = TrainDataset([record(i, f"q{i}", ["same positive"]) for i in range(8)], 0)
    with pytest.raises(DataError, match="too few distinct texts"):
        list(NoDuplicatesBatchSampler(ds, 2))


def test_bad_arguments():
    ds = TrainDataset(distinct_records(4), 1)
    with pytest.raises(ConfigError, match="batch_size"):
        NoDuplicatesBatchSampler(ds, 0)
    with pytest.raises(ConfigError, match="rank"):
        NoDuplicatesBatchSampler(ds, 2, num_replicas=2, rank=2)
    with pytest.raises(ConfigError, match="drop_last=False"):
        NoDuplicatesBatchSampler(ds, 2, drop_last=False, num_replicas=2)
    with pytest.raises(TypeError, match="inside train_dataloader"):  # what Lightning does to one built elsewhere
        NoDuplicatesBatchSampler(DistributedSampler(ds, num_replicas=2, rank=0), batch_size=2, drop_last=True)


def test_linked_list_pass_matches_reference():
    texts = {0: {"a"}, 1: {"a"}, 2: {"b"}, 3: {"c"}, 4: {"b"}, 5: {"d"}}
    batches = list(no_duplicate_batches([0, 1, 2, 3, 4, 5], lambda i: frozenset(texts[i]), 3, drop_last=False))
    assert batches == [[0, 2, 3], [1, 4, 5]]


def test_dataloader_workers_see_the_epoch_the_sampler_used():
    ds = TrainDataset(overlapping_records(), 2, seed=0)
    sampler = NoDuplicatesBatchSampler(ds, 4, seed=0, max_extra_passes=10)
    loader = DataLoader(ds, batch_sampler=sampler, collate_fn=list, num_workers=2)
    for epoch in (0, 1):
        sampler.sampler.set_epoch(epoch)  # what Lightning calls (dataloader.batch_sampler.sampler.set_epoch)
        for indices, examples in zip(sampler.global_batches(epoch), loader):
            assert examples == [ds.example(i, epoch) for i in indices]
            texts = [t for q, docs, *_ in examples for t in (q, *docs)]
            assert len(texts) == len(set(texts))


def test_lightning_ddp_injection_keeps_our_sampler():
    """Replays what Lightning does under DDP with use_distributed_sampler=True (data_connector._prepare_dataloader)."""
    from lightning.fabric.utilities.data import _replace_dunder_methods, _set_sampler_epoch
    from lightning.pytorch.utilities.data import _update_dataloader
    from torch.utils.data import BatchSampler

    ds = TrainDataset(overlapping_records(), 1, seed=0)
    with _replace_dunder_methods(DataLoader, "dataset"), _replace_dunder_methods(BatchSampler):
        loader = DataLoader(ds, batch_sampler=NoDuplicatesBatchSampler(ds, 3, seed=2, num_replicas=2, rank=1),
                            collate_fn=list)
    injected = DistributedSampler(ds, num_replicas=2, rank=1, shuffle=True, seed=0)
    new = _update_dataloader(loader, injected)
    assert new is not loader and isinstance(new.batch_sampler, NoDuplicatesBatchSampler)
    assert (new.batch_sampler.num_replicas, new.batch_sampler.rank) == (2, 1)
    _set_sampler_epoch(new, 4)
    assert ds.epoch == 4
    assert list(new.batch_sampler) == list(NoDuplicatesBatchSampler(ds, 3, seed=2, num_replicas=2, rank=1))


def test_batches_are_movable_by_lightning():
    from lightning.fabric.utilities.apply_func import move_data_to_device

    from splade_lightning.types import EncodeBatch, TrainBatch

    batch = TrainBatch(torch.ones(2, 3, dtype=torch.long), torch.ones(2, 3), torch.ones(4, 5), torch.ones(4, 5), 1)
    moved = move_data_to_device(batch, torch.device("meta"))
    assert isinstance(moved, TrainBatch) and moved.doc_input_ids.device.type == "meta" and moved.num_negatives == 1
    encode = move_data_to_device(EncodeBatch(torch.ones(2, 3), torch.ones(2, 3), ["a", "b"], "query", "x"), "meta")
    assert encode.input_ids.device.type == "meta" and encode.ids == ["a", "b"] and encode.kind == "query"


def test_skip_batches_applies_once_to_its_epoch():
    sampler = NoDuplicatesBatchSampler(TrainDataset(distinct_records(40), 1), 8, seed=3)
    sampler.set_epoch(2)
    full = list(sampler)
    sampler.skip_batches(2, 3)
    assert sampler.batches_to_skip() == 3 and list(sampler) == full[3:]
    assert list(sampler) == full  # used once
    sampler.skip_batches(1, 3)  # another epoch: no effect, and discarded
    assert sampler.batches_to_skip() == 0 and list(sampler) == full and sampler._skip is None
    with pytest.raises(ValueError):
        sampler.skip_batches(2, -1)
