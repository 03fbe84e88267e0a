"""The output policy, table-driven: every tool and ``SparseModel.save`` against an output that is an input, one inside
the part of an input that is read, one around an input, a foreign non-empty directory (with and without
``--overwrite``) and an earlier output of its own (with and without ``--overwrite``). Each case asserts the exit
code, the message, and that every file that existed before is byte-identical afterwards (the whole tree is hashed),
except in the one allowed case: an earlier output of the tool's own, with ``--overwrite``."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from conftest import write_jsonl

import splade_lightning
from splade_lightning.errors import ConfigError
from splade_lightning.tools.main import main

REPO = Path(__file__).resolve().parents[2]
QUICKSTART = REPO / "configs" / "splade" / "quickstart.yaml"


def tree(root: Path) -> dict[str, str]:
    """Every file and directory under ``root``: relative path -> sha256 of its bytes (``dir`` for directories)."""
    return {p.relative_to(root).as_posix(): "dir" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*"))}


def run_cli(*args) -> int:
    return main([str(a) for a in args])


@pytest.fixture(scope="module")
def template(tmp_path_factory, tiny_bert_dir) -> Path:
    """A work directory with every kind of input: a BEIR folder, a suite of them, a saved model, an index, hard
    negatives, training triplets, and a foreign directory of the user's own notes."""
    root = tmp_path_factory.mktemp("world")
    beir = root / "beir"
    docs = [("d1", "the cat sat on the mat"), ("d2", "dogs bark at the postman"), ("d3", "python is a language"),
            ("d4", "the mat was red"), ("d5", "a python is a snake"), ("d6", "lightning strikes twice")]
    write_jsonl(beir / "corpus.jsonl", [{"_id": i, "title": "", "text": t} for i, t in docs])
    write_jsonl(beir / "queries.jsonl", [{"_id": "q1", "text": "cat on a mat"}, {"_id": "q2", "text": "python"},
                                         {"_id": "q3", "text": "barking dogs"}])
    (beir / "qrels").mkdir()
    (beir / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td3\t1\nq3\td2\t1\n")
    shutil.copytree(beir, root / "suite" / "toy")
    model = splade_lightning.load(tiny_bert_dir)
    model.max_query_length, model.max_doc_length = 16, 32
    model.save(root / "model")
    assert run_cli("index", "--model", root / "model", "--corpus", beir, "--output", root / "index",
                   "--no_progress") == 0
    write_jsonl(root / "hn.jsonl", [{"qid": "q1", "pos": ["d1"], "neg": ["d4", "d2"]},
                                    {"qid": "q2", "pos": ["d3"], "neg": ["d5"]}])
    write_jsonl(root / "train" / "train.jsonl", [{"query": f"question {i}", "pos": [f"answer {i}"],
                                                  "neg": [f"wrong {i}"]} for i in range(4)])
    (root / "run.trec").write_text("q1 Q0 d1 1 2.0 t\nq1 Q0 d4 2 1.0 t\nq2 Q0 d3 1 1.5 t\n")
    (root / "notes").mkdir()
    (root / "notes" / "todo.txt").write_text("my own notes\n")
    return root


@pytest.fixture()
def world(template, tmp_path) -> Path:
    work = tmp_path / "w"
    shutil.copytree(template, work, symlinks=True)
    return work


def fit_args(w: Path, export: Path) -> list:
    return ["fit", "--config", QUICKSTART, f"--model.init_args.encoder.init_args.backbone={w / 'model'}",
            f"--data.init_args.train.init_args.files=[{w / 'train' / 'train.jsonl'}]",
            "--data.init_args.train.init_args.negative_columns=[neg]",
            "--data.init_args.val_sets=null", "--data.init_args.batch_size=2", "--data.init_args.max_doc_length=16",
            "--data.init_args.max_query_length=8", "--trainer.max_steps=1", "--trainer.limit_val_batches=0",
            f"--trainer.default_root_dir={w / 'runs'}", f"--trainer.logger.init_args.save_dir={w / 'runs'}",
            "--eval_before_fit=false", f"--export_dir={export}"]


@dataclass
class Tool:
    """One command under test.

    Attributes:
        name: the case id.
        kind: ``file`` or ``dir`` output.
        args: (world, output) -> argv.
        inputs: (world) -> {flag: input path}, each tried as the output.
        read_part: (world) -> a path inside an input directory that the command reads.
        overwrite: the argument that allows replacing.
        resumes: an identical re-run of an earlier output resumes it (exit 0, nothing changes) instead of refusing.
    """

    name: str
    kind: str
    args: Callable[[Path, Path], list]
    inputs: Callable[[Path], dict[str, Path]]
    read_part: Callable[[Path], Path]
    overwrite: tuple = ("--overwrite",)
    resumes: bool = False
    out_name: str = "out"
    extra: dict = field(default_factory=dict)


def _beir_read(w):
    return w / "beir" / "corpus.jsonl"


TOOLS = [
    Tool("export", "dir", lambda w, o: ["export", "--model", w / "model", "--format", "sentence-transformers",
                                        "--output", o],
         lambda w: {"--model": w / "model"}, lambda w: w / "model" / "config.json"),
    Tool("export-anserini", "dir", lambda w, o: ["export", "--model", w / "model", "--format", "anserini",
                                                 "--corpus", w / "beir", "--output", o],
         lambda w: {"--model": w / "model", "--corpus": w / "beir"}, _beir_read),
    Tool("index", "dir", lambda w, o: ["index", "--model", w / "model", "--corpus", w / "beir", "--output", o,
                                       "--no_progress"],
         lambda w: {"--model": w / "model", "--corpus": w / "beir"}, _beir_read, resumes=True),
    Tool("search", "file", lambda w, o: ["search", "--index", w / "index", "--queries", w / "beir", "--output", o,
                                         "--no_progress"],
         lambda w: {"--index": w / "index", "--queries": w / "beir"}, lambda w: w / "beir" / "queries.jsonl",
         out_name="search.trec"),
    Tool("evaluate", "file", lambda w, o: ["evaluate", "--model", w / "model", "--data", w / "beir",
                                           "--output", o, "--no_progress"],
         lambda w: {"--model": w / "model", "--data": w / "beir"}, lambda w: w / "beir" / "qrels" / "test.tsv",
         out_name="metrics.json"),
    Tool("evaluate-runs", "dir", lambda w, o: ["evaluate", "--model", w / "model", "--data", w / "suite",
                                               "--run_output", o, "--no_progress"],
         lambda w: {"--model": w / "model", "--data": w / "suite" / "toy"},
         lambda w: w / "suite" / "toy" / "queries.jsonl"),
    Tool("mine", "file", lambda w, o: ["mine", "--data", w / "beir", "--split", "test", "--output", o,
                                       "--num_negatives", "1", "--no_progress"],
         lambda w: {"--data": w / "beir"}, _beir_read, resumes=True, out_name="hn_out.jsonl"),
    Tool("score", "file", lambda w, o: ["score", "--input", w / "hn.jsonl", "--queries", w / "beir", "--corpus",
                                        w / "beir", "--teacher", f"sparse:{w / 'model'}", "--output", o,
                                        "--device", "cpu", "--no_progress"],
         lambda w: {"--input": w / "hn.jsonl", "--teacher": w / "model", "--corpus": w / "beir"}, _beir_read,
         out_name="scores.jsonl"),
    Tool("idf", "file", lambda w, o: ["idf", "--corpus", w / "beir", "--tokenizer", w / "model", "--output", o,
                                      "--no_progress"],
         lambda w: {"--corpus": w / "beir", "--tokenizer": w / "model"}, _beir_read, out_name="idf.json"),
    Tool("interpolate", "dir", lambda w, o: ["interpolate", "--zero_shot", w / "model", "--fine_tuned", w / "model",
                                             "--data", w / "beir", "--alphas", "0", "1", "--k", "10", "--measures",
                                             "ndcg@10", "--output", o, "--no_progress"],
         lambda w: {"--zero_shot": w / "model", "--data": w / "beir"}, _beir_read),
    Tool("fit", "dir", lambda w, o: fit_args(w, o),
         lambda w: {"config data.init_args.train.init_args.files": w / "train" / "train.jsonl",
                    "config model.init_args.encoder.init_args.backbone": w / "model"},
         lambda w: w / "model" / "config.json", overwrite=("--overwrite=true",)),
]


def refused(tool: Tool, w: Path, output: Path, *extra, message: str | tuple = ()) -> None:
    """Run ``tool`` writing ``output``; expect exit 2, the message parts, and the whole tree unchanged."""
    before = tree(w)
    code = run_cli(*tool.args(w, output), *extra)
    err = CAPTURE.readouterr().err
    assert code == 2, (tool.name, output, err[-2000:])
    for part in (message,) if isinstance(message, str) else message:
        assert part in err, (tool.name, part, err[-2000:])
    assert "Traceback" not in err
    assert tree(w) == before, tool.name


CAPTURE = None


@pytest.fixture(autouse=True)
def _capture(capsys):
    global CAPTURE
    CAPTURE = capsys


@pytest.mark.parametrize("tool", TOOLS, ids=[t.name for t in TOOLS])
def test_output_equal_to_each_input_is_refused(tool, world):
    for flag, path in tool.inputs(world).items():
        if tool.kind == "file" and path.is_dir():
            continue  # a directory input as a file output: covered by the directory cases below
        flag_name = flag.split()[0] if flag.startswith("--") else flag
        refused(tool, world, path, *tool.overwrite, message=(str(path), flag_name))


@pytest.mark.parametrize("tool", TOOLS, ids=[t.name for t in TOOLS])
def test_output_inside_the_read_part_of_an_input_is_refused(tool, world):
    inside = tool.read_part(world)
    refused(tool, world, inside, *tool.overwrite, message=str(inside))


@pytest.mark.parametrize("tool", TOOLS, ids=[t.name for t in TOOLS])
def test_output_around_an_input_is_refused(tool, world):
    refused(tool, world, world, *tool.overwrite, message=("contains", str(world)))


@pytest.mark.parametrize("tool", TOOLS, ids=[t.name for t in TOOLS])
@pytest.mark.parametrize("overwrite", [False, True], ids=["plain", "overwrite"])
def test_foreign_directory_is_refused(tool, world, overwrite):
    extra = tool.overwrite if overwrite else ()
    expected = ("todo.txt", "not written by splade_lightning") if tool.kind == "dir" else "is a directory"
    refused(tool, world, world / "notes", *extra, message=expected)


@pytest.mark.parametrize("tool", TOOLS, ids=[t.name for t in TOOLS])
def test_earlier_output_is_replaced_only_with_overwrite(tool, world):
    output = world / tool.out_name
    assert run_cli(*tool.args(world, output)) == 0, CAPTURE.readouterr().err[-3000:]
    CAPTURE.readouterr()
    if tool.resumes:  # the same command again resumes a complete output: nothing changes
        before = tree(world)
        assert run_cli(*tool.args(world, output)) == 0
        assert tree(world) == before
    else:
        refused(tool, world, output, message="--overwrite")
    if tool.kind == "dir":  # a file of the user's own inside it makes it a mixed directory: always refused
        (output / "mine.txt").write_text("user file")
        refused(tool, world, output, *tool.overwrite, message=("mine.txt", "did not write"))
        (output / "mine.txt").unlink()
    outside = {k: v for k, v in tree(world).items() if not (world / k).resolve().is_relative_to(output.resolve())
               and not k.startswith("runs")}
    assert run_cli(*tool.args(world, output), *tool.overwrite) == 0, CAPTURE.readouterr().err[-3000:]
    after = tree(world)
    assert {k: v for k, v in after.items() if k in outside} == outside  # nothing outside the output changed
    assert output.exists()


# --- SparseModel.save -------------------------------------------------------------------------------------------

def test_save_follows_the_same_rules(world):
    model = splade_lightning.load(world / "model")
    for target, overwrite, message in [
        (world / "model", True, "is the model's source"),
        (world / "model" / "config.json", True, "inside the model's source"),
        (world, True, "contains the model's source"),
        (world / "notes", False, "todo.txt"),
        (world / "notes", True, "todo.txt"),
        (world / "index", False, "pass --overwrite"),
    ]:
        before = tree(world)
        with pytest.raises(ConfigError, match=message):
            model.save(target, overwrite=overwrite)
        assert tree(world) == before, target
    other = world / "copy"
    model.save(other)
    before = tree(world)
    with pytest.raises(ConfigError, match="earlier output"):
        model.save(other)
    assert tree(world) == before
    model.save(world / "index", overwrite=True)  # an earlier output of ours: replaced, its own files only
    assert (world / "index" / "config.json").is_file() and not list((world / "index").glob("shard_*"))
    assert splade_lightning.load(world / "index").encode_query("cat").to_dense().equal(
        model.encode_query("cat").to_dense())


def test_saved_files_follow_the_umask(world, monkeypatch):
    import os

    old = os.umask(0o022)
    try:
        out = splade_lightning.load(world / "model").save(world / "perm")
    finally:
        os.umask(old)
    assert (out.stat().st_mode & 0o777) == 0o755
    assert all((p.stat().st_mode & 0o777) == (0o755 if p.is_dir() else 0o644) for p in out.rglob("*"))


def test_manifest_lists_every_file_with_its_hash(world):
    manifest = json.loads((world / "model" / "splade_lightning.manifest.json").read_text())
    files = {p.relative_to(world / "model").as_posix() for p in (world / "model").rglob("*") if p.is_file()}
    assert set(manifest["files"]) == files - {"splade_lightning.manifest.json"}
    weights = manifest["files"]["model.safetensors"]
    assert weights["sha256"] == hashlib.sha256((world / "model" / "model.safetensors").read_bytes()).hexdigest()
    model = splade_lightning.load(world / "model")
    copy = model.save(world / "copy")
    (copy / "tokenizer_config.json").write_text("{}")  # a file the user edited is no longer ours to delete
    before = tree(world)
    with pytest.raises(ConfigError, match=r"tokenizer_config.json \(edited since it was written\)"):
        model.save(copy, overwrite=True)
    assert tree(world) == before


def test_output_through_a_symlink_to_an_input_is_refused(world):
    (world / "link.jsonl").symlink_to(world / "beir" / "corpus.jsonl")
    before = tree(world)
    assert run_cli("idf", "--corpus", world / "beir", "--tokenizer", world / "model", "--output", world / "link.jsonl",
                   "--overwrite", "--no_progress") == 2
    assert "--corpus" in CAPTURE.readouterr().err and tree(world) == before


def test_the_reported_cases(world):
    """The commands of the issue that destroyed files, each now refused with nothing changed."""
    ckpt_dir = world / "runs"
    ckpt_dir.mkdir()
    shutil.copytree(world / "model", ckpt_dir / "model")
    before = tree(world)
    corpus = world / "beir" / "corpus.jsonl"
    cases = [
        ["idf", "--corpus", corpus, "--output", corpus, "--overwrite"],
        ["export", "--model", ckpt_dir / "model", "--format", "opensearch", "--output", ckpt_dir, "--overwrite"],
        ["export", "--model", ckpt_dir / "model", "--format", "opensearch", "--output", ckpt_dir / "model",
         "--overwrite"],
        ["export", "--model", world / "model", "--format", "opensearch", "--output", world / "notes", "--overwrite"],
    ]
    for args in cases:
        assert run_cli(*args) == 2, args
        err = CAPTURE.readouterr().err
        assert "Nothing was written" in err or "nothing was written" in err.lower(), err
    assert tree(world) == before
