"""
``aspects_scaling_config --output``: all or nothing. Every filesystem error is a CommandError naming
the path and the cause, and leaves --output as it was (no partial tree, no leftover temp files).
"""

import io
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from aspects_routing.scaling.configgen.common import GeneratedFile
from aspects_routing.scaling.configgen.service import ConfigError, write_files

ARGS = ("--services", "all", "--profile", "large")


def _run(*args):
    out, err = io.StringIO(), io.StringIO()
    call_command("aspects_scaling_config", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def _tree(root: Path) -> dict[str, bytes]:
    """Every entry under ``root`` (files with their bytes, directories as None), hidden ones included."""
    return {
        str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None) for p in sorted(root.rglob("*"))
    }


def test_new_directory_is_written_whole_with_no_leftovers(tmp_path):
    _run(*ARGS, "--output", str(tmp_path / "deep" / "out"))
    tree = _tree(tmp_path)
    assert "deep/out/k8s/clickhouse/installation.yaml" in tree
    assert not [name for name in tree if name.endswith(".tmp") or "/." in f"/{name}"]


def test_a_path_component_that_is_a_file(tmp_path):
    (tmp_path / "afile").write_text("x")
    before = _tree(tmp_path)
    with pytest.raises(CommandError) as caught:
        _run(*ARGS, "--output", str(tmp_path / "afile" / "out"))
    message = str(caught.value)
    assert str(tmp_path / "afile") in message and "Not a directory" in message
    assert _tree(tmp_path) == before


def test_proc_is_refused_with_the_cause():
    with pytest.raises(CommandError) as caught:
        _run(*ARGS, "--output", "/proc/aspects-scaling-config-out")
    assert "/proc" in str(caught.value) and "cannot write" in str(caught.value)
    assert not os.path.exists("/proc/aspects-scaling-config-out")


def test_existing_files_are_refused_and_nothing_is_written(tmp_path):
    out = tmp_path / "out"
    (out / "k8s" / "clickhouse").mkdir(parents=True)
    (out / "k8s" / "clickhouse" / "installation.yaml").write_text("mine")
    (out / "notes.txt").write_text("the operator's")
    before = _tree(tmp_path)
    with pytest.raises(CommandError, match="installation.yaml.*--force"):
        _run(*ARGS, "--output", str(out))
    assert _tree(tmp_path) == before


def test_a_failure_half_way_through_a_forced_overwrite_puts_everything_back(tmp_path):
    out = tmp_path / "out"
    _run(*ARGS, "--output", str(out))
    # Make one target impossible to replace after others were: a directory where a file goes.
    victim = sorted(p for p in out.rglob("*.yaml"))[-1]
    victim.unlink()
    victim.mkdir()
    (victim / "keep").write_text("x")
    before = _tree(tmp_path)
    with pytest.raises(CommandError) as caught:
        _run(*ARGS, "--output", str(out), "--force")
    assert str(victim) in str(caught.value) and "directory" in str(caught.value)
    assert _tree(tmp_path) == before


FILES = tuple(GeneratedFile(f"d{i}/f.yaml", f"new {i}\n", "k8s", "x", "what", "why") for i in range(3))


def _write_as_nobody(output: str, force: bool = False) -> str:
    """``write_files`` in a forked child that dropped root (root ignores permissions); its error text."""
    files = FILES
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: no exec needed, the modules are already imported
        try:
            os.setgid(65534)
            os.setuid(65534)
            write_files(files, output, force=force)
            os.write(write, b"written")
        except ConfigError as exc:
            os.write(write, str(exc).encode())
        finally:
            os._exit(0)  # pylint: disable=protected-access
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        text = pipe.read().decode()
    os.waitpid(pid, 0)
    return text


def test_read_only_directory():
    if os.geteuid() != 0:
        pytest.skip("needs root to drop to an unprivileged user")
    base = Path(tempfile.mkdtemp(prefix="aspects-ro-"))  # under /tmp: 'nobody' may reach it
    try:
        parent = base / "ro"
        parent.mkdir()
        os.chmod(base, 0o755)
        os.chmod(parent, 0o555)
        message = _write_as_nobody(str(parent / "out"))
        assert f"cannot write {parent}" in message and "Permission denied" in message, message
        assert list(parent.iterdir()) == []
        # A directory it cannot even look into: the same error, not a traceback.
        os.chmod(base, 0o700)
        message = _write_as_nobody(str(parent / "out"))
        assert "cannot write" in message and "Permission denied" in message, message
    finally:
        shutil.rmtree(base)


def test_immutable_directory(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep").write_text("x")
    chattr = shutil.which("chattr")
    if chattr is None or subprocess.run([chattr, "+i", str(out)], capture_output=True, check=False).returncode:
        pytest.skip("chattr +i is not available on this filesystem")
    try:
        before = _tree(tmp_path)
        with pytest.raises(CommandError, match="Operation not permitted"):
            _run(*ARGS, "--output", str(out))
        assert _tree(tmp_path) == before
    finally:
        subprocess.run([chattr, "-i", str(out)], check=False)


def test_a_move_failing_half_way_puts_the_replaced_files_back():
    """d0 and d1 are replaced, then d2 refuses (read-only for 'nobody'): all three are as they were."""
    if os.geteuid() != 0:
        pytest.skip("needs root to drop to an unprivileged user")
    base = Path(tempfile.mkdtemp(prefix="aspects-rollback-"))
    try:
        os.chmod(base, 0o755)  # not writable by 'nobody': the staging directory goes inside --output
        out = base / "out"
        write_files(FILES, str(out), force=False)
        for i in range(2):
            (out / f"d{i}" / "f.yaml").write_text(f"old {i}\n")
        for path in [out, *out.rglob("*")]:
            os.chown(path, 65534, 65534)
        os.chmod(out / "d2", 0o555)
        before = _tree(base)
        message = _write_as_nobody(str(out), force=True)
        assert f"cannot write {out / 'd2' / 'f.yaml'}" in message and "Permission denied" in message, message
        assert _tree(base) == before
    finally:
        os.chmod(base / "out" / "d2", 0o755)
        shutil.rmtree(base)
