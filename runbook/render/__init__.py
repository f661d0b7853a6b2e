"""Render a page's Jinja includes exactly as the site does, keeping a map back to the sources.

Jinja is imported inside this package and nowhere else. The MkDocs plugin and
``runbook exec`` both call :func:`Renderer.render`, so what readers see is what runs.

To know where each rendered line came from, every source line that starts outside a Jinja
tag gets an invisible marker (private-use characters carrying file and line, and a random
nonce of the renderer, see :class:`runbook.model.Marks`) before Jinja sees it; after
rendering the markers are read and stripped. Since no source can know the nonce, nothing
but a marker is ever stripped or read as one. Lines where a marker could change the output
(whitespace control such as ``{%-``) are left unmarked and inherit their position from the
line above.

Most pages use Jinja only for ``{{ variables }}``, ``{% include %}`` and ``{% raw %}``.
Such a page is rendered tag by tag: each distinct tag is compiled once per site, the text
between tags is copied, and only lines after a tag need a marker. Compiling each page
whole, which is most of what a Jinja render costs, is left to pages using anything else.

``runbook lint`` renders collecting (``render(..., collect=True)``): a missing, cyclic,
escaping or unparsable include renders as nothing and is recorded, undefined variables are
recorded one per use, and the page is still rendered, so that everything else on it can be
checked in the same pass.

One concern per module; where tags sit in a page's text is read without Jinja, in
:mod:`runbook.tags`:

``renderer``     the ``Renderer``: marking, the tag-by-tag and whole-page paths, unmarking
``environment``  the site's Jinja environment, its include loader and recording Undefined
``problems``     where a render is, and the errors that say what stopped it
``collect``      rendering past problems, for ``runbook lint``
``sources``      the files read: decoding, their numbers in the line maps, their text
"""

from runbook.render.renderer import Renderer
from runbook.tags import split_front_matter, split_lines

__all__ = ["Renderer", "split_front_matter", "split_lines"]
