"""dockyard: a self-hosted production runtime for LangGraph agents."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("dockyard")
except PackageNotFoundError:  # running from a source tree without install
    __version__ = "0.0.0"

__all__ = ["__version__"]
