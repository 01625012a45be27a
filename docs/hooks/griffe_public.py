"""A Griffe extension: special names without a docstring are not part of the reference.

mkdocstrings' ``filters: public`` keeps what a module's ``__all__`` exports and
what does not start with an underscore, *and* every special method. A bare
``__repr__`` or ``__aexit__`` says nothing a class docstring does not say
already ("usable as an async context manager"), so this extension marks the
undocumented ones private, and so are undocumented special attributes such as
``__slots__`` (an implementation detail). A special name with a docstring stays.
"""

from __future__ import annotations

from typing import Any

import griffe

__all__ = ["HideUndocumentedSpecials"]


class HideUndocumentedSpecials(griffe.Extension):
    """Sets ``public = False`` on ``__x__`` methods and attributes that have no docstring."""

    def on_object(self, *, obj: griffe.Object, loader: griffe.GriffeLoader, **kwargs: Any) -> None:
        """Hide ``obj`` if it is an undocumented special name (``__init__`` excepted)."""
        del loader, kwargs
        name = obj.name
        special = name.startswith("__") and name.endswith("__") and len(name) > 4
        member = obj.is_function or obj.is_attribute
        if special and member and name != "__init__" and obj.docstring is None:
            obj.public = False
