"""Offline side: CAD pool -> meshes -> rendered views -> embeddings -> a versioned FAISS index directory.

The library functions the CLI, the demo and evaluation call: `build_index`, `update_index`, `ensure_index` (reuse
what fits, else build) and `open_index`; `verify_index` and `describe_index` check and describe one.
"""

if __name__ != "photo2cad.indexer":  # the folder imported from the repository root as a top-level `indexer`
    raise ImportError("this folder installs as photo2cad.indexer: import photo2cad.indexer, not indexer")

from photo2cad.indexer.info import describe_index
from photo2cad.indexer.layout import IndexNotFoundError
from photo2cad.indexer.runner import BuildError, BuildReport, BuildRequest, build_index, ensure_index, update_index
from photo2cad.indexer.vector_search import SearchConfig
from photo2cad.indexer.verify import verify_index, verify_version
from photo2cad.indexer.version import IndexVersion, open_index

__all__ = [
    "BuildError",
    "BuildReport",
    "BuildRequest",
    "IndexNotFoundError",
    "IndexVersion",
    "SearchConfig",
    "build_index",
    "describe_index",
    "ensure_index",
    "open_index",
    "update_index",
    "verify_index",
    "verify_version",
]
