"""needle create: configs land as given; bad names, values and not-yet-supported
options are usage errors (exit 2) that create nothing."""
import pytest


def test_create_hnsw_with_parameters(cli):
    p = cli.run("create", "docs", "--dim", 16, "--metric", "cosine", "--index", "hnsw",
                "--m", 8, "--ef-construction", 64, "--quantization", "none")
    assert "created collection 'docs'" in p.stdout and p.stderr == ""
    info = cli.info("docs")
    assert info["name"] == "docs"
    assert info["dimension"] == 16 and info["metric"] == "cosine"
    assert info["index"] == {"type": "hnsw", "m": 8, "ef_construction": 64}
    assert info["count"] == 0 and info["deleted"] == 0


def test_create_defaults(cli):
    cli.run("create", "d", "--dim", 3, "--metric", "l2")
    info = cli.info("d")
    assert info["index"] == {"type": "hnsw", "m": 16, "ef_construction": 200}


@pytest.mark.parametrize("metric", ["l2", "cosine", "ip", "l1", "hamming"])
def test_create_every_metric(cli, metric):
    cli.run("create", "m", "--dim", 8, "--metric", metric, "--index", "flat")
    info = cli.info("m")
    assert info["metric"] == metric and info["index"] == {"type": "flat"}


def test_create_existing_is_a_runtime_error(cli):
    cli.run("create", "dup", "--dim", 4, "--metric", "l2")
    cli.fail("create", "dup", "--dim", 8, "--metric", "ip", code=1, match="'dup' already exists")
    assert cli.info("dup")["dimension"] == 4


@pytest.mark.parametrize("name", ["bad name", "a/b", "x" * 65, "", "dot.name", "é"])
def test_create_bad_name(cli, name):
    cli.fail("create", name, "--dim", 4, "--metric", "l2", code=2, match="bad collection name")
    assert not cli.data.exists()


@pytest.mark.parametrize("args, match", [
    (["--metric", "euclid"], r"--metric: .*euclid"),
    (["--metric", "l2", "--index", "annoy"], r"--index: .*annoy"),
    (["--metric", "l2", "--index", "ivf"], r"--index ivf is not supported yet"),
    (["--metric", "l2", "--nlist", "64"], r"--nlist is not supported yet"),
    (["--metric", "l2", "--quantization", "pq"], r"--quantization pq is not supported yet"),
    (["--metric", "l2", "--field", "price:float"], r"--field is not supported yet"),
    (["--metric", "l2", "--index", "flat", "--m", "8"], r"--m and --ef-construction apply only"),
    (["--metric", "l2", "--m", "1"], r"--m must be in 2\.\.128, got 1"),
    (["--metric", "l2", "--m", "x"], r"--m: 'x' is not a whole number"),
    (["--metric", "l2", "--ef-construction", "5000"], r"--ef-construction must be in 4\.\.4096"),
])
def test_create_bad_options(cli, args, match):
    cli.fail("create", "c", "--dim", 4, *args, code=2, match=match)
    assert not cli.data.exists()


@pytest.mark.parametrize("dim, match", [
    ("0", r"--dim must be in 1\.\.65536, got 0"),
    ("65537", r"--dim must be in 1\.\.65536, got 65537"),
    ("-3", r"--dim must be in 1\.\.65536, got -3"),
    ("12x", r"--dim: '12x' is not a whole number"),
    ("", r"--dim: '' is not a whole number"),
    ("99999999999999999999999", r"--dim must be in"),
])
def test_create_bad_dimension(cli, dim, match):
    cli.fail("create", "c", "--dim", dim, "--metric", "l2", code=2, match=match)


def test_create_missing_options(cli):
    cli.fail("create", "c", "--metric", "l2", code=2, match="'create' needs --dim")
    cli.fail("create", "c", "--dim", 4, code=2, match="'create' needs --metric")
    cli.fail("create", "--dim", 4, "--metric", "l2", code=2, match="needs a collection NAME")
    assert not cli.data.exists()


def test_create_in_a_directory_that_is_not_a_database(cli):
    cli.data.mkdir()
    (cli.data / "notes.txt").write_text("hello")
    cli.fail("create", "c", "--dim", 4, "--metric", "l2", code=1, match="not a needle database")
    assert sorted(p.name for p in cli.data.iterdir()) == ["notes.txt"]
