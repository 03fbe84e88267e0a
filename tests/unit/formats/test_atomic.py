"""Atomic writes keep the permissions a plain ``open`` would give, and reading the umask does not change it."""

import os
import stat
import threading

import pytest

from splade_lightning.formats import atomic


@pytest.fixture
def umask_027():
    old = os.umask(0o027)
    yield
    os.umask(old)


def test_atomic_file_gets_the_umask_permissions(tmp_path, umask_027):
    target = atomic.write_text_atomic(tmp_path / "out.txt", "x")
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert atomic.default_mode() == 0o640


def test_reading_the_umask_never_changes_it_under_another_thread(umask_027, monkeypatch):
    """Another thread sees the umask unchanged while ``current_umask`` runs (Linux reads /proc/self/status)."""
    if not any(line.startswith("Umask:") for line in open("/proc/self/status")):
        pytest.skip("this kernel does not report Umask in /proc/self/status")
    calls = []
    real = os.umask
    monkeypatch.setattr(atomic.os, "umask", lambda mask: calls.append(mask) or real(mask))
    seen, stop = set(), threading.Event()

    def watch():
        while not stop.is_set():
            seen.add(int(next(line for line in open("/proc/self/status") if line.startswith("Umask:")).split()[1], 8))

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        assert all(atomic.current_umask() == 0o027 for _ in range(200))
    finally:
        stop.set()
        watcher.join()
    assert calls == [] and seen == {0o027}


def test_umask_fallback_restores_it(umask_027, monkeypatch):
    real_open = open

    def no_proc(path, *args, **kwargs):
        if str(path) == "/proc/self/status":
            raise OSError("no procfs")
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr("builtins.open", no_proc)
    assert atomic.current_umask() == 0o027
    assert os.umask(0o027) == 0o027
