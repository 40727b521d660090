"""photo2cad: photo in, ranked 3D CAD models out.

Everything installs under this one import root (`photo2cad.models`, `photo2cad.indexer`, ...), in floors that only
import downwards: README.md's "Architecture" lists them, `tests/test_import_graph.py` holds the code to them.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("photo2cad")
except PackageNotFoundError:  # the source tree imported without being installed
    __version__ = "0+unknown"
