"""The progress bar: drawn on stderr (with carriage returns, cleared at the
end) when stdout and stderr are a terminal; absent otherwise, so piped
output stays clean (SPEC section 2)."""
import os
import pty
import subprocess

import numpy as np

from conftest import ENV, NEEDLE, Cli, clustered, write_fvecs


def run_on_terminal(args):
    """Run needle with stdout and stderr on one pseudo-terminal; returns
    (exit code, everything written)."""
    master, slave = pty.openpty()
    try:
        p = subprocess.Popen([NEEDLE] + [str(a) for a in args], stdin=subprocess.DEVNULL,
                             stdout=slave, stderr=slave, env=ENV)
        os.close(slave)
        chunks = []
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        code = p.wait(timeout=300)
    finally:
        os.close(master)
    return code, b"".join(chunks).decode("utf-8", "replace")


def test_import_and_bench_draw_a_bar_on_a_terminal(tmp_path):
    db = tmp_path / "db"
    write_fvecs(tmp_path / "b.fvecs", clustered(1500, 8))
    write_fvecs(tmp_path / "q.fvecs", clustered(20, 8, seed=3))
    code, out = run_on_terminal(["import", "t", tmp_path / "b.fvecs", "--metric", "l2", "--m", 8,
                                 "--ef-construction", 40, "--data", db])
    assert code == 0, out
    assert "\rimporting  [" in out and "%" in out and "1500/1500" in out
    assert "\r\033[K" in out  # the bar is cleared before the summary line
    assert "imported 1500 vectors into 't'" in out
    assert "AddressSanitizer" not in out and "runtime error" not in out

    code, out = run_on_terminal(["bench", "t", "--queries", tmp_path / "q.fvecs", "--k", 5,
                                 "--ef", "16,32", "--data", db])
    assert code == 0, out
    assert "\ref=16" in out and "\ref=32" in out and "20/20" in out


def test_no_bar_when_piped(tmp_path):
    cli = Cli(tmp_path / "db")
    write_fvecs(tmp_path / "b.fvecs", clustered(500, 8))
    p = cli.run("import", "t", tmp_path / "b.fvecs", "--metric", "l2", "--m", 8,
                "--ef-construction", 40)
    assert p.stderr == "" and "\r" not in p.stdout
    write_fvecs(tmp_path / "q.fvecs", np.ones((3, 8), np.float32))
    p = cli.run("bench", "t", "--queries", tmp_path / "q.fvecs", "--k", 2)
    assert p.stderr == "" and "\r" not in p.stdout
