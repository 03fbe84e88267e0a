"""OnnxDocumentEncoder: a SPLADE document encoder exported by ``splade-lightning export --format onnx``, run with
ONNX Runtime (https://onnxruntime.ai) instead of torch.

The graph's contract (see :mod:`splade_lightning.serialization.onnx_dir`): inputs ``input_ids`` and
``attention_mask``, int64 ``[batch, sequence]``; output ``sparse_embedding``, float32 ``[batch, vocab]``, the SPLADE
pooled weights ``pool_l act(MLM(x)_l)`` (Formal et al., arXiv:2109.10086). onnxruntime is an optional dependency,
imported when a model is loaded.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from splade_lightning.errors import ConfigError
from splade_lightning.models.base import SparseEncoderBase

#: the graph's input and output names: a stable contract other tools rely on
INPUT_NAMES = ("input_ids", "attention_mask")
OUTPUT_NAME = "sparse_embedding"


def inference_session(path: Path, threads: int | None = None):
    """An ``onnxruntime.InferenceSession`` on the CPU with ``threads`` intra-op threads (default: torch's count, so
    that both runtimes use the same cores).

    Raises:
        ConfigError: onnxruntime is not installed, or the file is not a model it can run.
    """
    try:
        import onnxruntime as ort
    except ImportError as e:
        raise ConfigError(f"{path}: running an ONNX model needs onnxruntime (pip install onnxruntime, or "
                          "pip install 'splade_lightning[serving]')") from e
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or torch.get_num_threads()
    options.inter_op_num_threads = 1
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own (non-exported) exception types
        raise ConfigError(f"{path}: onnxruntime cannot load it ({str(e).splitlines()[0][:300]}); expected a model "
                          "written by splade-lightning export --format onnx") from e


def runtime_of(encoder: torch.nn.Module) -> str:
    """``onnx`` for a model running on ONNX Runtime (its document side, for an inference-free model), else
    ``torch``."""
    config = encoder.export_config()
    doc = config.get("doc")
    return config.get("runtime") or (doc.get("runtime") if isinstance(doc, dict) else None) or "torch"


class OnnxDocumentEncoder(SparseEncoderBase):
    """A SPLADE encoder run by ONNX Runtime: (B, L) ids -> (B, V) weights, the same for queries and documents.

    Inference only (no gradient, CPU). Loaded by :func:`splade_lightning.load` from an ONNX export directory; an
    inference-free export wraps it as the document side of a :class:`~splade_lightning.models.QueryDocRouter`.

    Args:
        model_file: the ``.onnx`` file.
        tokenizer: the directory of its tokenizer files.
        vocab_size: output width V.
        pooling: the pooling baked into the graph (recorded for ``export_config``).
        activation: the activation baked into the graph.
        threads: intra-op threads (default: ``torch.get_num_threads()``).
    """

    def __init__(self, model_file: str, tokenizer: str, vocab_size: int, pooling: str = "max",
                 activation: str = "relu", threads: int | None = None):
        super().__init__()
        self.model_file = Path(model_file)
        self._tokenizer = str(tokenizer)
        self._vocab_size = int(vocab_size)
        self.pooling, self.activation = pooling, activation
        self.session = inference_session(self.model_file, threads)
        names = [i.name for i in self.session.get_inputs()]
        outputs = [o.name for o in self.session.get_outputs()]
        if tuple(names) != INPUT_NAMES or OUTPUT_NAME not in outputs:
            raise ConfigError(f"{self.model_file}: inputs {names} and outputs {outputs}; expected inputs "
                              f"{list(INPUT_NAMES)} and output {OUTPUT_NAME!r}")

    @property
    def vocab_size(self) -> int:
        return self._vocab_size

    @property
    def tokenizer_name_or_path(self) -> str:
        return self._tokenizer

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Run the graph.

        Args:
            input_ids: (B, L) token ids (any integer dtype, any device).
            attention_mask: (B, L) 1 for real tokens.

        Returns:
            (B, V) float32 weights on the inputs' device.
        """
        feed = {"input_ids": input_ids.detach().cpu().numpy().astype(np.int64, copy=False),
                "attention_mask": attention_mask.detach().cpu().numpy().astype(np.int64, copy=False)}
        (out,) = self.session.run([OUTPUT_NAME], feed)
        return torch.from_numpy(out).to(input_ids.device)

    def encode_query(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Query side (SPLADE: the same graph): (B, L) -> (B, V)."""
        return self(input_ids, attention_mask)

    def encode_doc(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Document side: (B, L) -> (B, V)."""
        return self(input_ids, attention_mask)

    def export_config(self) -> dict:
        """The settings of the exported encoder; ``runtime: onnx`` marks that its weights are an ONNX graph."""
        return {"architecture": "splade", "pooling": self.pooling, "activation": self.activation, "runtime": "onnx"}
