"""The nbconvert template of the HTML reports: JupyterLab's "lab" template without anything loaded from the network.

nbconvert 7's lab template puts require.js (``html_head_js_requirejs`` inside ``html_head_js``), MathJax
(``html_head_js_mathjax``), Mermaid (``html_head_js_mermaidjs``, an ``import()`` from cdnjs) and the widget
renderer (``jupyter_widgets``, from unpkg) in every page (source: github:jupyter/nbconvert,
share/templates/lab/index.html.j2). A report is read offline and calls no third party, and MathJax would typeset
the ``$`` of a shell command as math: ``index.html.j2`` here empties those blocks and adds the copy buttons'
script. This directory is the template (``conf.json`` names ``lab`` as its base); it is a package only so that
it ships in the wheel.
"""

from pathlib import Path

NAME = Path(__file__).parent.name
BASEDIR = Path(__file__).parent.parent
