"""Sphinx configuration of the documentation site (``bash scripts/docs.sh`` builds it).

MyST Markdown pages and the two notebooks, executed by myst-nb at build time against
the private Prosody that ``scripts/build_docs.py`` starts (it gives each notebook an
account: ``_ext/notebook_env.py``). The reference is generated from the code
(``_ext/hookref.py``) and by autodoc. Offline: no intersphinx.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(DOCS / "_ext"))
sys.path.insert(0, str(ROOT))  # the package of this checkout, before any installed one

import pubsub_hook_magic  # noqa: E402 - after the path

project = "pubsub_hook_magic"
author = "the pubsub_hook_magic authors"
copyright = "the pubsub_hook_magic authors, MIT licence"
release = pubsub_hook_magic.__version__
version = release

extensions = [
    "myst_nb",  # MyST Markdown (it brings myst_parser) and notebooks
    "sphinx.ext.autodoc",
    "hookref",
    "notebook_env",
]

exclude_patterns = ["_build", "_ext", "ARCHITECTURE.md", "Thumbs.db", ".DS_Store"]
root_doc = "index"
smartquotes = False  # "--flag" stays two hyphens, quotes stay straight: the text is code-like

# ---- MyST
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 4  # [text](page.md#a-heading) links, as on GitHub

# ---- notebooks: executed at every build, a failing cell fails the build
nb_execution_mode = "force"
nb_execution_timeout = 180  # seconds per cell
nb_execution_raise_on_error = True
nb_execution_show_tb = True
nb_execution_in_temp = True  # files the notebooks write (hook_file.py...) go to a temp dir
nb_merge_streams = True

# ---- autodoc
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_class_signature = "separated"

# ---- HTML
html_theme = "furo"
html_title = "pubsub_hook_magic"
html_static_path = ["_static"]
html_css_files = ["hookref.css"]
html_show_sourcelink = False
html_theme_options = {"navigation_with_keys": True}


def setup(app: Any) -> None:
    """Highlight ``python`` blocks as IPython: the pages' and the notebooks' cells hold
    ``%hook`` lines, which Pygments' Python lexer reports as errors (-W)."""
    from IPython.lib.lexers import IPython3Lexer

    app.add_lexer("python", IPython3Lexer)
