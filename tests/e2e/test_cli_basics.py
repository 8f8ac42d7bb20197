"""needle CLI basics: help, version, command dispatch, option parsing and
exit codes (0 ok, 1 runtime error, 2 usage error; errors as 'needle: ...')."""
import re
import subprocess

import numpy as np
import pytest

from conftest import ENV, NEEDLE, run_needle, write_fvecs

COMMANDS = ["create", "import", "search", "get", "bench", "info", "drop", "check", "compact", "help"]


def test_help_lists_every_command():
    p = run_needle(["help"])
    assert p.returncode == 0 and p.stderr == ""
    for c in COMMANDS:
        assert f"  {c} " in p.stdout
    assert "--data DIR" in p.stdout


@pytest.mark.parametrize("cmd", COMMANDS)
def test_help_of_each_command(cmd):
    a = run_needle(["help", cmd])
    b = run_needle([cmd, "--help"])
    assert a.returncode == 0 and b.returncode == 0
    assert a.stdout.startswith(f"usage: needle {cmd}")
    assert a.stdout == b.stdout


def test_help_flags_at_top_level():
    for flag in ("--help", "-h"):
        p = run_needle([flag])
        assert p.returncode == 0 and "usage: needle COMMAND" in p.stdout


def test_version():
    p = run_needle(["--version"])
    assert p.returncode == 0
    assert p.stdout.startswith("needle ") and p.stdout.strip().split()[1].count(".") == 2


def test_no_command_is_a_usage_error():
    p = run_needle([])
    assert p.returncode == 2
    assert "usage: needle COMMAND" in p.stderr and p.stdout == ""


def test_unknown_command():
    p = run_needle(["frobnicate"])
    assert p.returncode == 2
    assert p.stderr == "needle: unknown command 'frobnicate' (see 'needle help')\n"


def test_help_of_unknown_command():
    p = run_needle(["help", "frobnicate"])
    assert p.returncode == 2 and "unknown command 'frobnicate'" in p.stderr


@pytest.mark.parametrize("cmd", ["snapshot", "restore"])
def test_later_commands_say_not_available(cmd):
    p = run_needle([cmd])
    assert p.returncode == 2
    assert p.stderr == f"needle: '{cmd}' is not available yet\n"


@pytest.mark.parametrize("cmd", ["create", "import", "search", "bench", "info", "drop", "check"])
def test_unknown_option(cmd, tmp_path):
    p = run_needle([cmd, "x", "--bogus", "1"], tmp_path / "db")
    assert p.returncode == 2
    assert p.stderr.startswith(f"needle: unknown option '--bogus' for '{cmd}'")
    assert not (tmp_path / "db").exists()


def test_short_unknown_option(tmp_path):
    p = run_needle(["info", "-x"], tmp_path / "db")
    assert p.returncode == 2 and "unknown option '-x'" in p.stderr


def test_option_missing_value(tmp_path):
    p = run_needle(["search", "x", "--queries", "q.fvecs", "--k"])
    assert p.returncode == 2 and p.stderr == "needle: option '--k' needs a value\n"


def test_flag_given_a_value(tmp_path):
    p = run_needle(["search", "x", "--queries", "q.fvecs", "--k", "1", "--exact=yes"], tmp_path)
    assert p.returncode == 2 and "'--exact' takes no value" in p.stderr


def test_too_many_arguments(tmp_path):
    p = run_needle(["drop", "a", "b"], tmp_path / "db")
    assert p.returncode == 2 and "unexpected argument 'b'" in p.stderr


def test_option_equals_form(tmp_path):
    db = tmp_path / "db"
    p = run_needle(["create", "eq", "--dim=4", "--metric=l2", f"--data={db}"])
    assert p.returncode == 0, p.stderr
    p = run_needle(["info", "eq", "--json"], db)
    assert '"dimension":4' in p.stdout


@pytest.mark.parametrize("args", [["help"], ["--version"], ["info"], ["info", "c", "--json"],
                                  ["search", "c", "--queries", "Q", "--k", 2],
                                  ["bench", "c", "--queries", "Q", "--k", 2, "--json"]])
def test_output_that_cannot_be_written_is_an_error(tmp_path, args):
    """A full disk under stdout is exit 1, never a silent success with a cut result."""
    db = tmp_path / "db"
    q = write_fvecs(tmp_path / "q.fvecs", np.eye(4, dtype=np.float32))
    assert run_needle(["import", "c", q, "--metric", "l2"], db).returncode == 0
    cmd = [NEEDLE] + [str(q) if a == "Q" else str(a) for a in args] + ["--data", str(db)]
    if args[0] in ("help", "--version"):
        cmd = cmd[:-2]
    with open("/dev/full", "w") as full:
        p = subprocess.run(cmd, stdout=full, stderr=subprocess.PIPE, text=True, env=ENV)
    assert p.returncode == 1, p.stderr
    assert p.stderr.startswith("needle: ")
    assert re.search(r"write|No space left on device", p.stderr), p.stderr
