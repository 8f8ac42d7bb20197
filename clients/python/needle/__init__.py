"""needle: the Python client of the needle vector database.

Two modes with the same methods and the same answers:

    import needle
    client = needle.Client("http://127.0.0.1:6400")      # a `needle serve`
    with needle.open("./needle-data") as db:               # libneedle in-process
        docs = db.create_collection("docs", dimension=3, metric="cosine")
        docs.upsert([1, "b"], [[1, 0, 0], [0, 1, 0]], [{"tag": "x"}, None])
        docs.search([1, 0, 0], k=1)

Standard library only; numpy arrays are accepted wherever vectors are.
See docs/PYTHON.md.
"""
from ._base import Collection
from ._embedded import Database, open
from ._errors import NeedleError
from ._http import Client

__version__ = "0.1.0"
__all__ = ["Client", "Collection", "Database", "NeedleError", "open"]
