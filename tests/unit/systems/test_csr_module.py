"""CSRModule / CSREncoder: parity with sentence-transformers 6.2 CSRLoss through the whole model, dead-latent accounting
per optimizer step, parameter groups, config errors and the frozen-backbone embedding cache."""

import re
from types import SimpleNamespace

import pytest
import torch

from splade_lightning.errors import ConfigError
from splade_lightning.models import CSREncoder, DenseEncoder, SparseAutoEncoder
from splade_lightning.models.csr import ACTIVE_EPS
from splade_lightning.systems import CSRModule
from splade_lightning.types import TrainBatch

D, H, K, K_AUX, THR = 32, 64, 4, 8, 5
B = 4
ANCHORS = ["the cat sat on the mat", "what is the capital of france?", "sparse codes from dense embeddings", "a"]
POSITIVES = ["a cat on a mat", "paris is the capital", "csr learns a topk autoencoder over embeddings", "b c"]
NEGATIVES = ["dogs bark at the postman", "berlin is in germany", "lightning strikes twice in one place today", "q"]


@pytest.fixture(scope="module")
def encoder_dir(tmp_path_factory, tokenizer_dir) -> str:
    """A randomly initialised 2-layer, hidden-32 BertModel (no MLM head) with the BERT-uncased tokenizer."""
    from transformers import AutoTokenizer, BertConfig, BertModel

    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=30522, hidden_size=D, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=128)
    model = BertModel(cfg)
    with torch.no_grad():  # a fresh LayerNorm gives rows of mean 0; shift them so the embeddings are less symmetric
        model.encoder.layer[-1].output.LayerNorm.bias.normal_(mean=0.5)
    out = tmp_path_factory.mktemp("tiny_dense_encoder")
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(tokenizer_dir).save_pretrained(out)
    return str(out)


def tokenize(path: str, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    from splade_lightning.hub import load_tokenizer

    tok = load_tokenizer(path)(texts, padding=True, truncation=True, max_length=64, return_tensors="pt")
    return tok["input_ids"], tok["attention_mask"]


def make_sae(seed: int = 0, **kwargs) -> SparseAutoEncoder:
    torch.manual_seed(seed)
    sae = SparseAutoEncoder(D, **{"hidden_dim": H, "k": K, "k_aux": K_AUX, "dead_threshold": THR, **kwargs})
    with torch.no_grad():
        sae.pre_bias.normal_(std=0.1)
        sae.latent_bias.normal_(std=0.1)
    return sae


# -- parity with sentence-transformers 6.2 CSRLoss ---------------------------------------------------------------------
def st_and_ours(encoder_dir: str, dense_normalize: bool, **sae_kwargs):
    """ST SparseEncoder(Transformer -> Pooling(mean) [-> Normalize] -> SparseAutoEncoder) and a CSREncoder with the
    same weights and dead-latent counters, both float64 and in eval mode (no dropout; ST's counters do not move)."""
    from sentence_transformers import SparseEncoder
    from sentence_transformers.base.modules import Normalize
    from sentence_transformers.sentence_transformer.modules import Pooling
    from sentence_transformers.sparse_encoder.modules import SparseAutoEncoder as STSparseAutoEncoder
    from sentence_transformers.sparse_encoder.modules import Transformer

    sae = make_sae(seed=1, **sae_kwargs)
    stats = torch.randint(0, 2 * THR, (H,))
    stats[stats == THR] = THR + 1  # ST tests stats > THR, we test stats >= THR: equal away from THR itself
    sae.stats_last_nonzero.copy_(stats)
    st_sae = STSparseAutoEncoder(**{k: v for k, v in sae.export_config().items() if k != "max_active_dims"})
    st_sae.load_state_dict(sae.state_dict(), strict=True)
    modules = [Transformer(encoder_dir), Pooling(D, "mean"), *([Normalize()] if dense_normalize else []), st_sae]
    st = SparseEncoder(modules=modules, device="cpu")
    dense = DenseEncoder(encoder_dir, normalize=dense_normalize)
    dense.encoder.load_state_dict(st[0].auto_model.state_dict(), strict=True)
    encoder = CSREncoder(dense, sae)
    for model in (st[0].auto_model, dense.encoder):  # the (30522, 32) table's gradient only costs time
        model.get_input_embeddings().weight.requires_grad_(False)
    return st.double().eval(), encoder.double().eval()


@pytest.mark.parametrize(("gamma", "num_negatives", "dense_normalize", "sae_kwargs"), [
    (1.0, 0, False, {}), (1.0, 1, False, {}), (0.1, 0, False, {}), (0.1, 1, False, {}),
    (0.1, 1, True, {}),  # L2-normalised backbone embedding (ST's Normalize module)
    (1.0, 1, False, {"normalize": True}),  # the autoencoder standardises its input
    (1.0, 1, False, {"k_aux": 0}),  # no auxiliary code
], ids=["pairs", "triplets", "pairs-gamma0.1", "triplets-gamma0.1", "l2-normalized", "sae-normalize", "no-aux"])
def test_compute_loss_matches_st_csr_loss(encoder_dir, gamma, num_negatives, dense_normalize, sae_kwargs):
    from sentence_transformers import util
    from sentence_transformers.sparse_encoder.losses import CSRLoss, SparseMultipleNegativesRankingLoss

    beta = 0.3
    st, encoder = st_and_ours(encoder_dir, dense_normalize, **sae_kwargs)
    st_stats = st[-1].stats_last_nonzero.clone()
    module = CSRModule(encoder, beta=beta, gamma=gamma)  # default loss: InBatchNegativesLoss(20, cosine)
    st_loss = CSRLoss(st, loss=SparseMultipleNegativesRankingLoss(st, scale=20.0, similarity_fct=util.cos_sim),
                      beta=beta, gamma=gamma)

    query = st.preprocess(ANCHORS)
    docs = st.preprocess(POSITIVES + NEGATIVES[: num_negatives * B])  # one padding for all doc columns, as ours
    columns = [query] + [{k: v[c * B:(c + 1) * B] if torch.is_tensor(v) else v for k, v in docs.items()}
                         for c in range(1 + num_negatives)]
    expected = st_loss([dict(column) for column in columns])

    query_out = encoder(query["input_ids"], query["attention_mask"])
    doc_out = encoder(docs["input_ids"], docs["attention_mask"])
    terms = module.compute_loss(query_out, doc_out, num_negatives)

    assert (terms["recon_aux"] > 0) == (encoder.autoencoder.k_aux > 0)  # dead latents exercise the auxiliary term
    pairs = {"reconstruction_loss_k": terms["recon_k"], "reconstruction_loss_4k": terms["recon_4k"] / 8,
             "reconstruction_loss_aux": beta * terms["recon_aux"], "base_loss": gamma * terms["loss_rank"]}
    assert set(expected) == set(pairs)
    for key, value in pairs.items():
        torch.testing.assert_close(value, expected[key], rtol=1e-5, atol=1e-5, msg=key)
    expected_total = sum(expected.values())
    torch.testing.assert_close(terms["loss"], expected_total, rtol=1e-5, atol=1e-5)
    assert torch.equal(st[-1].stats_last_nonzero, st_stats)  # ST's forward did not move its counters

    expected_total.backward()
    terms["loss"].backward()
    theirs = dict(st[-1].named_parameters())
    for name, param in encoder.autoencoder.named_parameters():
        torch.testing.assert_close(param.grad, theirs[name].grad, rtol=1e-6, atol=1e-9, msg=name)
    layer = "encoder.layer.1.output.dense.weight"
    theirs_layer = st[0].auto_model.get_parameter(layer)
    assert theirs_layer.grad.abs().sum() > 0
    torch.testing.assert_close(encoder.dense.encoder.get_parameter(layer).grad, theirs_layer.grad, rtol=1e-6,
                               atol=1e-9)


def test_compute_loss_columns_are_column_major(encoder_dir):
    """Swapping the doc columns changes the ranking term but not the per-column average reconstruction terms."""
    encoder = CSREncoder(DenseEncoder(encoder_dir), make_sae()).eval()
    module = CSRModule(encoder)
    q = tokenize(encoder_dir, ANCHORS)
    docs = tokenize(encoder_dir, POSITIVES + NEGATIVES)
    swapped = tokenize(encoder_dir, NEGATIVES + POSITIVES)
    with torch.no_grad():
        query_out = encoder(*q)
        a = module.compute_loss(query_out, encoder(*docs), 1)
        b = module.compute_loss(query_out, encoder(*swapped), 1)
    for key in ("recon_k", "recon_4k", "recon_aux"):
        torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-6)
    assert not torch.isclose(a["loss_rank"], b["loss_rank"])


# -- dead-latent accounting --------------------------------------------------------------------------------------------
def micro_batches(path: str, count: int, batch: int = 2) -> list[TrainBatch]:
    out = []
    for i in range(count):
        q = tokenize(path, [f"question {i} number {j}" for j in range(batch)])
        docs = [f"answer {i} text {j}" for j in range(batch)] + [f"wrong {i} doc {j}" for j in range(batch)]
        d = tokenize(path, docs)
        out.append(TrainBatch(q[0], q[1], d[0], d[1], num_negatives=1))
    return out


@pytest.mark.parametrize("accumulate", [1, 2])
def test_dead_latent_counters_move_once_per_optimizer_step(encoder_dir, accumulate):
    import lightning.pytorch as pl
    from torch.utils.data import DataLoader

    class Recorder(pl.Callback):
        def __init__(self):
            self.rows = []

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            fired = (torch.cat([outputs["query_reps"], outputs["doc_reps"]]) > ACTIVE_EPS).any(0)
            self.rows.append((trainer.global_step, fired, pl_module.autoencoder.stats_last_nonzero.clone()))

    steps = 3
    encoder = CSREncoder(DenseEncoder(encoder_dir, frozen=True), make_sae(dead_threshold=100))
    module = CSRModule(encoder, lr=5e-2, lr_warmup_steps=0, weight_decay=0.0)
    recorder = Recorder()
    trainer = pl.Trainer(accelerator="cpu", max_steps=steps, accumulate_grad_batches=accumulate, logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                         callbacks=[recorder], num_sanity_val_steps=0)
    loader = DataLoader(micro_batches(encoder_dir, steps * accumulate), batch_size=1, collate_fn=lambda b: b[0])
    trainer.fit(module, train_dataloaders=loader)

    assert len(recorder.rows) == steps * accumulate
    expected = torch.zeros(H, dtype=torch.long)
    union = torch.zeros(H, dtype=torch.bool)
    fired_per_micro_batch = []
    for i, (global_step, fired, observed) in enumerate(recorder.rows):
        union |= fired
        fired_per_micro_batch.append(fired)
        if (i + 1) % accumulate == 0:  # an optimizer step ran after this micro-batch
            expected = (expected + 1).masked_fill(union, 0)
            union = torch.zeros(H, dtype=torch.bool)
        assert global_step == (i + 1) // accumulate
        assert torch.equal(observed, expected), f"micro-batch {i}: {observed.tolist()} != {expected.tolist()}"
    stats = encoder.autoencoder.stats_last_nonzero
    assert int(stats.max()) == steps  # never fired: one count per optimizer step (not per micro-batch or column)
    assert module._fired is None
    if accumulate == 2:  # the union matters: a micro-batch fired latents the other one of its step did not
        pairs = zip(fired_per_micro_batch[0::2], fired_per_micro_batch[1::2])
        assert any(not torch.equal(a, b) for a, b in pairs)


def test_optimizer_hook_without_training_step_is_a_no_op(encoder_dir):
    module = CSRModule(CSREncoder(DenseEncoder(encoder_dir), make_sae()))
    module.on_before_optimizer_step(None)
    assert int(module.autoencoder.stats_last_nonzero.sum()) == 0


# -- parameter groups --------------------------------------------------------------------------------------------------
def optimizer_of(module: CSRModule) -> torch.optim.Optimizer:
    module.trainer = SimpleNamespace(estimated_stepping_batches=10)  # all configure_optimizers reads
    return module.configure_optimizers()["optimizer"]


def test_parameter_groups_with_autoencoder_lr(encoder_dir):
    encoder = CSREncoder(DenseEncoder(encoder_dir), make_sae())
    module = CSRModule(encoder, lr=2e-5, autoencoder_lr=1e-3, weight_decay=0.01)
    groups = module.parameter_groups()
    sae_groups = [g for g in groups if g["name"] == "autoencoder"]
    rest = [g for g in groups if g["name"] != "autoencoder"]
    assert sae_groups and rest and all(g["lr"] == 1e-3 for g in sae_groups) and all("lr" not in g for g in rest)
    sae_ids = {id(p) for g in sae_groups for p in g["params"]}
    rest_ids = {id(p) for g in rest for p in g["params"]}
    assert sae_ids == {id(p) for p in encoder.autoencoder.parameters()}
    assert rest_ids == {id(p) for p in encoder.dense.parameters()} and not sae_ids & rest_ids
    decay = {g["weight_decay"]: [p.shape for p in g["params"]] for g in sae_groups}
    assert decay == {0.01: [(H, D)], 0.0: [(D,), (H,)]}  # W decayed; pre_bias, latent_bias not
    optimizer = optimizer_of(module)
    assert {g["initial_lr"] for g in optimizer.param_groups if g["name"] == "autoencoder"} == {1e-3}
    assert {g["initial_lr"] for g in optimizer.param_groups if g["name"] != "autoencoder"} == {2e-5}


def test_frozen_backbone_has_no_group(encoder_dir):
    encoder = CSREncoder(DenseEncoder(encoder_dir, frozen=True), make_sae())
    module = CSRModule(encoder, lr=2e-5, autoencoder_lr=1e-3)
    groups = module.parameter_groups()
    assert {g["name"] for g in groups} == {"autoencoder"}
    ids = {id(p) for g in groups for p in g["params"]}
    assert ids == {id(p) for p in encoder.autoencoder.parameters()}
    assert not ids & {id(p) for p in encoder.dense.parameters()}


def test_single_lr_without_autoencoder_lr(encoder_dir):
    encoder = CSREncoder(DenseEncoder(encoder_dir), make_sae())
    module = CSRModule(encoder, lr=3e-4)
    groups = module.parameter_groups()
    assert all("lr" not in g and g["name"] != "autoencoder" for g in groups)
    assert {id(p) for g in groups for p in g["params"]} == {id(p) for p in encoder.parameters()}
    assert {g["initial_lr"] for g in optimizer_of(module).param_groups} == {3e-4}


# -- config errors -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("kwargs", "match"), [
    ({"beta": -0.5}, "beta=-0.5"), ({"gamma": -1.0}, "gamma=-1.0"), ({"autoencoder_lr": 0}, "autoencoder_lr=0"),
    ({"autoencoder_lr": -0.001}, "autoencoder_lr=-0.001"),
])
def test_bad_module_arguments_are_named(encoder_dir, kwargs, match):
    encoder = CSREncoder(DenseEncoder(encoder_dir), make_sae())
    with pytest.raises(ConfigError, match=re.escape(match)):
        CSRModule(encoder, **kwargs)


def test_bad_module_arguments_listed_together(encoder_dir):
    with pytest.raises(ConfigError) as err:
        CSRModule(CSREncoder(DenseEncoder(encoder_dir), make_sae()), beta=-1, gamma=-2, autoencoder_lr=0)
    assert all(s in str(err.value) for s in ("beta=-1", "gamma=-2", "autoencoder_lr=0"))


def test_non_csr_encoder_is_rejected(encoder_dir, tiny_bert_dir):
    from splade_lightning.models import SpladeEncoder

    with pytest.raises(ConfigError, match="got DenseEncoder"):
        CSRModule(DenseEncoder(encoder_dir))
    with pytest.raises(ConfigError, match="got SpladeEncoder"):
        CSRModule(SpladeEncoder(tiny_bert_dir))


def test_encoder_width_mismatch_names_both_widths(encoder_dir):
    sae = SparseAutoEncoder(16, hidden_dim=H, k=K, k_aux=K_AUX)
    with pytest.raises(ConfigError) as err:
        CSREncoder(DenseEncoder(encoder_dir), sae)
    message = str(err.value)
    assert "input_dim=16" in message and "32-dim" in message and "input_dim: 32" in message


@pytest.mark.parametrize(("kwargs", "match"), [({"k": H + 1}, f"k={H + 1}"), ({"k_aux": H + 1}, f"k_aux={H + 1}")])
def test_sae_sizes_beyond_hidden_dim(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        SparseAutoEncoder(D, **{"hidden_dim": H, "k": K, "k_aux": K_AUX, **kwargs})


def test_embedding_cache_needs_frozen_backbone(encoder_dir):
    with pytest.raises(ConfigError, match=r"embedding_cache=10 needs a frozen dense encoder"):
        CSREncoder(DenseEncoder(encoder_dir), make_sae(), embedding_cache=10)
    with pytest.raises(ConfigError, match="embedding_cache=-1"):
        CSREncoder(DenseEncoder(encoder_dir, frozen=True), make_sae(), embedding_cache=-1)


@pytest.mark.parametrize(("kwargs", "match"), [({"eval_k": 10}, "recall@100"), ({"eval_measures": ["ndgc@1"]}, "ndgc"),
                                               ({"eval_k": 0}, "eval_k=0"), ({"eval_measures": []}, "eval_measures")])
def test_bad_eval_settings_fail_at_construction(encoder_dir, kwargs, match):
    with pytest.raises(ConfigError, match=re.escape(match)):
        CSRModule(CSREncoder(DenseEncoder(encoder_dir), make_sae()), **kwargs)


# -- frozen-backbone embedding cache -----------------------------------------------------------------------------------
def counted(dense: DenseEncoder) -> list[int]:
    """Rows per backbone forward call."""
    calls: list[int] = []
    dense.register_forward_hook(lambda module, args, out: calls.append(int(args[0].shape[0])))
    return calls


def test_embedding_cache_skips_seen_texts_whatever_the_padding(encoder_dir):
    dense = DenseEncoder(encoder_dir, frozen=True)
    sae = make_sae()
    cached = CSREncoder(dense, sae, embedding_cache=100).train()
    plain = CSREncoder(dense, sae).train()
    batches = [["alpha beta", "gamma", "delta epsilon zeta"],
               ["gamma", "a much longer text that pads gamma with many more padding tokens than before", "alpha beta"],
               ["alpha beta", "gamma"]]
    inputs = [tokenize(encoder_dir, texts) for texts in batches]
    assert len({ids.shape[1] for ids, _ in inputs}) == 3  # three different paddings
    with torch.no_grad():
        expected = [plain.embed(*x) for x in inputs]
        expected_codes = [plain.encode(*x) for x in inputs]
    calls = counted(dense)
    got = [cached.embed(*x) for x in inputs]
    assert calls == [3, 1]  # batch 2 computes only the long text; batch 3 comes entirely from the cache
    assert len(cached._cache) == 4
    for a, b in zip(got, expected):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)
    for x, codes in zip(inputs, expected_codes):
        torch.testing.assert_close(cached.encode(*x), codes, rtol=1e-6, atol=1e-6)
        torch.testing.assert_close(cached(*x).z_k, codes, rtol=1e-6, atol=1e-6)
    assert calls == [3, 1]
    out = cached(*inputs[2])  # cached embeddings still train the autoencoder
    out.decoded_k.pow(2).sum().backward()
    assert sae.encoder.weight.grad is not None and sae.encoder.weight.grad.abs().sum() > 0


def test_embedding_cache_limit(encoder_dir):
    dense = DenseEncoder(encoder_dir, frozen=True)
    cached = CSREncoder(dense, make_sae(), embedding_cache=2)
    x = tokenize(encoder_dir, ["one text", "two texts here", "three"])
    with torch.no_grad():
        expected = dense(*x)
    calls = counted(dense)
    first, second = cached.embed(*x), cached.embed(*x)
    assert calls == [3, 1] and len(cached._cache) == 2  # the third text is recomputed, never stored
    torch.testing.assert_close(first, expected, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(second, expected, rtol=1e-6, atol=1e-6)


def test_load_state_dict_clears_the_cache(encoder_dir):
    dense = DenseEncoder(encoder_dir, frozen=True)
    cached = CSREncoder(dense, make_sae(), embedding_cache=100)
    x = tokenize(encoder_dir, ["one text", "two texts here"])
    calls = counted(dense)
    cached.embed(*x)
    assert len(cached._cache) == 2
    cached.load_state_dict(cached.state_dict())
    assert not cached._cache
    cached.embed(*x)
    assert calls == [2, 2]
    module = CSRModule(cached)  # through the LightningModule (a checkpoint restore) too
    module.load_state_dict(module.state_dict())
    assert not cached._cache

