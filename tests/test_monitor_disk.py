"""Disk occupancy and scratch directories (lfm.monitor.disk), on disk and on tmpfs."""
from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from lfm import MB
from lfm.monitor import disk

TMPFS = "/dev/shm"


def _on_tmpfs(path: str) -> bool:
    with open("/proc/mounts") as f:
        mounts = [line.split() for line in f]
    best = max((m for m in mounts if path.startswith(m[1].rstrip("/") + "/") or path == m[1]),
               key=lambda m: len(m[1]), default=None)
    return best is not None and best[2] == "tmpfs"


@pytest.fixture(params=["disk", "tmpfs"])
def area(request, tmp_path):
    """An empty directory on the test's file system, or on tmpfs (/dev/shm)."""
    if request.param == "disk":
        assert not _on_tmpfs(str(tmp_path)), "tmp_path is expected on a disk file system here"
        return str(tmp_path)
    if not os.path.isdir(TMPFS) or not _on_tmpfs(TMPFS):
        pytest.skip("no tmpfs at /dev/shm")
    path = disk.make_scratch(TMPFS)
    request.addfinalizer(lambda: disk.remove_scratch(path))
    return path


def write(path: str, mb: int) -> None:
    block = os.urandom(MB)
    with open(path, "wb") as f:
        for _ in range(mb):
            f.write(block)


@pytest.mark.timeout(60)
def test_rewrite_counts_once_and_delete_frees(area):
    assert disk.occupancy(area).bytes == 0
    target = os.path.join(area, "scratch.bin")
    for _ in range(5):
        write(target, 20)
        found = disk.occupancy(area)
        assert 20 * MB <= found.bytes < 20.5 * MB, found
    assert found.files == 1 and found.method == "st_blocks"
    os.unlink(target)
    assert disk.occupancy(area).bytes == 0


@pytest.mark.timeout(60)
def test_hard_links_count_once_symlinks_not_followed(area, tmp_path_factory):
    write(os.path.join(area, "a"), 4)
    os.link(os.path.join(area, "a"), os.path.join(area, "b"))
    elsewhere = tmp_path_factory.mktemp("outside")
    write(str(elsewhere / "big"), 8)
    os.symlink(str(elsewhere / "big"), os.path.join(area, "link"))
    found = disk.occupancy(area)
    assert found.files == 3
    assert 4 * MB <= found.bytes < 4 * MB + 64 * 1024, found


@pytest.mark.timeout(60)
def test_sparse_file_blocks_versus_apparent_size(area):
    with open(os.path.join(area, "sparse"), "wb") as f:
        f.truncate(100 * MB)
        f.write(b"x")
    assert disk.occupancy(area).bytes < MB
    apparent = disk.occupancy(area, apparent=True)
    assert apparent.bytes == 100 * MB and apparent.method == "st_size"


@pytest.mark.timeout(60)
def test_deep_tree_walked_iteratively(area):
    path = area
    try:
        for i in range(1500):  # deeper than Python's recursion limit (shutil.rmtree fails)
            path = os.path.join(path, "d")
            os.mkdir(path)
        with open(os.path.join(path, "leaf"), "wb") as f:
            f.write(b"y" * 10000)
        found = disk.occupancy(area)
        assert found.dirs == 1500 and found.files == 1 and found.bytes >= 10000
    finally:  # never leave pytest's own (recursive) clean-up a tree it cannot remove
        disk.remove_scratch(os.path.join(area, "d"))
    assert disk.occupancy(area).bytes == 0


@pytest.mark.timeout(60)
def test_not_a_directory(tmp_path):
    with pytest.raises(FileNotFoundError):
        disk.occupancy(str(tmp_path / "missing"))
    (tmp_path / "f").write_bytes(b"1")
    with pytest.raises(NotADirectoryError):
        disk.occupancy(str(tmp_path / "f"))


@pytest.mark.timeout(60)
def test_sampler_keeps_the_peak_and_backs_off_when_walks_are_slow(area):
    sampler = disk.DiskSampler(area, min_interval=0.0)
    write(os.path.join(area, "x"), 10)
    assert sampler.sample() >= 10
    os.unlink(os.path.join(area, "x"))
    assert sampler.sample(time.monotonic() + 1) == 0 and sampler.peak >= 10
    assert sampler.final() >= 10 and sampler.walks in (3, 4)
    # a walk of many files: the next one is not due before walk / duty seconds
    for i in range(3000):
        open(os.path.join(area, f"f{i}"), "wb").close()
    slow = disk.DiskSampler(area, min_interval=0.0, duty=0.01)
    slow.sample()
    first = slow.walk_seconds
    slow.sample()
    assert slow.walks == 1 or first == 0
    assert slow._next - time.monotonic() >= first / 0.01 - 0.5


@pytest.mark.timeout(60)
def test_scratch_directories_are_fresh_private_and_removed(tmp_path):
    one, two = disk.make_scratch(str(tmp_path)), disk.make_scratch(str(tmp_path))
    assert one != two and os.path.dirname(one) == str(tmp_path)
    assert os.listdir(one) == [] and (os.stat(one).st_mode & 0o777) == 0o700
    os.makedirs(os.path.join(one, "ro", "deep"))
    write(os.path.join(one, "ro", "deep", "f"), 1)
    os.chmod(os.path.join(one, "ro"), 0o500)  # a read-only directory left behind
    disk.remove_scratch(one)
    assert not os.path.exists(one) and os.path.isdir(two)
    disk.remove_scratch(two)


@pytest.mark.timeout(60)
def test_enter_scratch_sets_tmpdir_even_when_tempfile_cached_it(tmp_path):
    scratch = disk.make_scratch(str(tmp_path))
    code = ("import tempfile, os, subprocess, sys; tempfile.gettempdir(); "
            "from lfm.monitor.disk import enter_scratch; enter_scratch(sys.argv[1]); "
            "print(tempfile.gettempdir()); print(tempfile.mkstemp()[1]); "
            "sys.stdout.flush(); subprocess.run(['sh', '-c', 'echo $TMPDIR'])")
    out = subprocess.run([sys.executable, "-c", code, scratch], capture_output=True, text=True,
                         check=True, env={**os.environ, "TMPDIR": "/tmp"}).stdout.split()
    assert out[0] == scratch and os.path.dirname(out[1]) == scratch and out[2] == scratch
    disk.remove_scratch(scratch)
