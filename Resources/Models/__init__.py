"""The bundled models, shipped inside the spinecore package as ``spinecore.bundled_models`` (see
``spinecore.models``); their cards are the ``.md`` files beside them."""
