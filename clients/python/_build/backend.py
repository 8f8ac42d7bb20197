"""A PEP 517 build backend from the standard library alone.

pip builds in an isolated environment that holds only the build requirements;
with setuptools as one it would download it, which fails offline. This
backend needs nothing: it zips the pure-Python package `needle` into a wheel
(PEP 427), an sdist, or an editable wheel (PEP 660: a .pth file naming this
directory). Files are written in a fixed order with fixed timestamps, so a
build is reproducible.
"""
import base64
import hashlib
import io
import os
import re
import tarfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent  # clients/python
DIST = "needle-client"           # the distribution name; the import name is `needle`
WHEEL_NAME = "needle_client"     # DIST as a wheel file name component
PACKAGE = "needle"
SUMMARY = "Python client of the needle vector database (HTTP and embedded)"
REQUIRES_PYTHON = ">=3.8"
ZIP_TIME = (1980, 1, 1, 0, 0, 0)


def _version():
    text = (ROOT / PACKAGE / "__init__.py").read_text(encoding="utf-8")
    return re.search(r'^__version__ = "([^"]+)"', text, re.M).group(1)


def _metadata():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    return (f"Metadata-Version: 2.1\nName: {DIST}\nVersion: {_version()}\n"
            f"Summary: {SUMMARY}\nRequires-Python: {REQUIRES_PYTHON}\n"
            "Provides-Extra: numpy\nRequires-Dist: numpy; extra == \"numpy\"\n"
            "Description-Content-Type: text/markdown\n\n" + readme)


def _package_files():
    """(path in the archive, bytes) of every module, sorted."""
    return [(p.relative_to(ROOT).as_posix(), p.read_bytes())
            for p in sorted((ROOT / PACKAGE).rglob("*.py"))]


def _dist_info():
    return f"{WHEEL_NAME}-{_version()}.dist-info"


def _dist_info_files():
    wheel = ("Wheel-Version: 1.0\nGenerator: needle _build/backend.py\n"
             "Root-Is-Purelib: true\nTag: py3-none-any\n")
    d = _dist_info()
    return [(f"{d}/METADATA", _metadata().encode()), (f"{d}/WHEEL", wheel.encode())]


def _write_wheel(directory, files):
    name = f"{WHEEL_NAME}-{_version()}-py3-none-any.whl"
    record, d = [], _dist_info()
    with zipfile.ZipFile(os.path.join(directory, name), "w", zipfile.ZIP_DEFLATED) as z:
        for path, data in files + _dist_info_files():
            info = zipfile.ZipInfo(path, ZIP_TIME)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
            record.append(f"{path},sha256={digest.decode()},{len(data)}")
        record.append(f"{d}/RECORD,,")
        info = zipfile.ZipInfo(f"{d}/RECORD", ZIP_TIME)
        info.external_attr = 0o644 << 16
        z.writestr(info, "\n".join(record) + "\n")
    return name


# ---------------------------------------------------------------- PEP 517 / 660 hooks

def get_requires_for_build_wheel(config_settings=None):
    return []


def get_requires_for_build_sdist(config_settings=None):
    return []


def get_requires_for_build_editable(config_settings=None):
    return []


def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    for path, data in _dist_info_files():
        target = Path(metadata_directory) / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return _dist_info()


prepare_metadata_for_build_editable = prepare_metadata_for_build_wheel


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    return _write_wheel(wheel_directory, _package_files())


def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    pth = (str(ROOT) + "\n").encode()
    return _write_wheel(wheel_directory, [(f"{WHEEL_NAME}.pth", pth)])


def build_sdist(sdist_directory, config_settings=None):
    base = f"{WHEEL_NAME}-{_version()}"
    files = [("pyproject.toml", (ROOT / "pyproject.toml").read_bytes()),
             ("README.md", (ROOT / "README.md").read_bytes()),
             ("_build/backend.py", Path(__file__).read_bytes()),
             ("PKG-INFO", _metadata().encode())] + _package_files()
    name = base + ".tar.gz"
    with tarfile.open(os.path.join(sdist_directory, name), "w:gz",
                      format=tarfile.PAX_FORMAT) as tar:
        for path, data in sorted(files):
            info = tarfile.TarInfo(f"{base}/{path}")
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tar.addfile(info, io.BytesIO(data))
    return name
