"""``SparseModel.push_to_hub`` and ``export --push_to_hub`` with the real ``huggingface_hub`` client, up to the HTTP
boundary: a recording server on 127.0.0.1 answers the Hub endpoints that ``create_repo`` and ``upload_folder`` call
(``huggingface_hub`` 2.x: ``POST /api/repos/create``, ``POST /api/validate-yaml``,
``POST /api/models/{repo}/preupload/{revision}``, ``POST /api/models/{repo}/commit/{revision}``; small files go inline,
base64, in the NDJSON commit). Nothing reaches huggingface.co."""

from __future__ import annotations

import base64
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import yaml

from splade_lightning.api import SparseModel
from splade_lightning.errors import ConfigError
from splade_lightning.models import QueryDocRouter, SpladeEncoder, StaticSparseEncoder
from splade_lightning.tools.main import main

TOKEN = "hf_test_token_123"


class Recorder(BaseHTTPRequestHandler):
    """Answers like the Hub and records ``(method, path, headers, body)`` in ``server.requests``."""

    def log_message(self, *args) -> None:  # quiet
        pass

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.requests.append(("POST", self.path, dict(self.headers), body))
        path = self.path.split("?")[0]
        base = f"http://127.0.0.1:{self.server.server_port}"
        if path == "/api/repos/create":
            payload = json.loads(body)
            return self.reply({"url": f"{base}/{payload['organization']}/{payload['name']}"})
        if path == "/api/validate-yaml":
            return self.reply({"errors": [], "warnings": []})
        if re.fullmatch(r"/api/models/[^/]+/[^/]+/preupload/[^/]+", path):
            files = json.loads(body)["files"]
            return self.reply({"files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False}
                                         for f in files]})
        if match := re.fullmatch(r"/api/models/([^/]+/[^/]+)/commit/[^/]+", path):
            return self.reply({"commitUrl": f"{base}/{match.group(1)}/commit/{'a' * 40}", "commitOid": "a" * 40,
                               "pullRequestUrl": None})
        self.reply({"error": f"unexpected {path}"}, status=404)

    def do_GET(self) -> None:  # noqa: N802
        self.server.requests.append(("GET", self.path, dict(self.headers), b""))
        self.reply({"error": f"unexpected GET {self.path}"}, status=404)

    def reply(self, payload: dict, status: int = 200) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture()
def hub(monkeypatch):
    """A recording Hub at HF_ENDPOINT, online mode (the test suite runs with HF_HUB_OFFLINE=1)."""
    import huggingface_hub.constants

    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    server.requests = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.server_port}")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    yield server
    server.shutdown()
    server.server_close()


def committed_files(server) -> tuple[dict, dict[str, bytes]]:
    """(the commit header, {path: content}) of the one commit the server received."""
    commits = [r for r in server.requests if "/commit/" in r[1]]
    assert len(commits) == 1, [r[1] for r in server.requests]
    lines = [json.loads(line) for line in commits[0][3].splitlines() if line.strip()]
    header = next(item["value"] for item in lines if item["key"] == "header")
    files = {item["value"]["path"]: base64.b64decode(item["value"]["content"]) for item in lines
             if item["key"] == "file" and item["value"].get("encoding") == "base64"}
    return header, files


def authorised(server) -> set[str]:
    return {r[2].get("authorization") or r[2].get("Authorization") for r in server.requests}


def test_push_to_hub_records_repo_card_config_weights_and_token(hub, tiny_bert_dir, tokenizer_dir, tmp_path):
    from transformers import AutoTokenizer

    model = SparseModel(SpladeEncoder(tiny_bert_dir), AutoTokenizer.from_pretrained(tokenizer_dir), 16, 32)
    url = model.push_to_hub("someone/tiny-splade", private=True, token=TOKEN, commit_message="first upload")
    assert url.endswith("/someone/tiny-splade/commit/" + "a" * 40)
    create = json.loads(next(r[3] for r in hub.requests if r[1] == "/api/repos/create"))
    assert create["name"] == "tiny-splade" and create["organization"] == "someone"
    assert create["visibility"] == "private" and create["type"] == "model"
    assert authorised(hub) == {f"Bearer {TOKEN}"}
    header, files = committed_files(hub)
    assert header["summary"] == "first upload"
    assert {"README.md", "config.json", "model.safetensors", "modules.json", "1_SpladePooling/config.json",
            "config_sentence_transformers.json", "splade_lightning.json", "tokenizer.json"} <= set(files)
    assert "splade_lightning.manifest.json" not in files  # local bookkeeping stays local
    card = files["README.md"].decode()
    meta = yaml.safe_load(card.split("---\n")[1])
    assert meta["library_name"] == "sentence-transformers" and "sparse-encoder" in meta["tags"]
    assert 'SparseEncoder("someone/tiny-splade")' in card
    assert files["model.safetensors"] == (model.save(tmp_path / "m") / "model.safetensors").read_bytes()
    validated = json.loads(next(r[3] for r in hub.requests if r[1] == "/api/validate-yaml"))
    assert validated["content"] == card


def test_inference_free_is_pushed_as_a_router(hub, tiny_bert_dir, tokenizer_dir):
    from transformers import AutoTokenizer

    router = QueryDocRouter(SpladeEncoder(tiny_bert_dir), StaticSparseEncoder(tiny_bert_dir))
    SparseModel(router, AutoTokenizer.from_pretrained(tokenizer_dir), 16, 32).push_to_hub("me/if", token=TOKEN)
    create = json.loads(next(r[3] for r in hub.requests if r[1] == "/api/repos/create"))
    assert "visibility" not in create  # private=None: the Hub's default
    _, files = committed_files(hub)
    assert {"router_config.json", "query_0_SparseStaticEmbedding/model.safetensors", "README.md"} <= set(files)
    assert "inference-free" in yaml.safe_load(files["README.md"].decode().split("---\n")[1])["tags"]


def test_export_push_to_hub(hub, tiny_bert_dir, tokenizer_dir, tmp_path, monkeypatch, capsys):
    from transformers import AutoTokenizer

    source = SparseModel(SpladeEncoder(tiny_bert_dir), AutoTokenizer.from_pretrained(tokenizer_dir), 16, 32).save(
        tmp_path / "m")
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    out = tmp_path / "st"
    assert main(["export", "--model", str(source), "--format", "sentence-transformers", "--output", str(out),
                 "--push_to_hub", "org/exported", "--private"]) == 0
    assert "Uploaded" in capsys.readouterr().out
    create = json.loads(next(r[3] for r in hub.requests if r[1] == "/api/repos/create"))
    assert create["organization"] == "org" and create["visibility"] == "private"
    assert authorised(hub) == {f"Bearer {TOKEN}"}
    _, files = committed_files(hub)
    assert files["README.md"] == (out / "README.md").read_bytes() and "org/exported" in files["README.md"].decode()
    assert files["model.safetensors"] == (out / "model.safetensors").read_bytes()


def test_hub_refusal_is_a_config_error(hub, tiny_bert_dir, tokenizer_dir):
    from transformers import AutoTokenizer

    hub.RequestHandlerClass = type("Refuser", (Recorder,), {"do_POST": lambda self: (
        self.rfile.read(int(self.headers.get("Content-Length") or 0)), self.reply({"error": "no"}, status=403))})
    model = SparseModel(SpladeEncoder(tiny_bert_dir), AutoTokenizer.from_pretrained(tokenizer_dir), 16, 32)
    with pytest.raises(ConfigError, match=r"push_to_hub me/x: the Hub at http://127\.0\.0\.1:\d+ answered HTTP 403"):
        model.push_to_hub("me/x", token=TOKEN)
