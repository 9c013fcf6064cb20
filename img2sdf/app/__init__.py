"""The web demo (``img2sdf serve``): a FastAPI app and a plain HTML/JS page around the §6 pipeline."""

from .server import create_app

__all__ = ["create_app"]
