"""The modules' docs are what ansible-doc reads: YAML whose descriptions are text, every option typed."""

import importlib
from pathlib import Path

import pytest
import yaml

from ansible_collections.netlab.lab.plugins import modules

MODULES = sorted(path.stem for path in Path(modules.__path__[0]).glob("*.py") if path.stem != "__init__")


def texts(value):
    return value if isinstance(value, list) else [value]


@pytest.mark.parametrize("name", MODULES)
def test_docs_parse_with_text_descriptions(name):
    module = importlib.import_module(f"{modules.__name__}.{name}")
    doc = yaml.safe_load(module.DOCUMENTATION)
    assert doc["module"] == name
    for item in texts(doc["description"]) + texts(doc.get("notes", [])):
        assert isinstance(item, str), item  # "word: word" in a plain YAML line turns into a mapping
    for option, spec in doc["options"].items():
        assert "type" in spec and all(isinstance(t, str) for t in texts(spec["description"])), option
    assert yaml.safe_load(module.EXAMPLES) and yaml.safe_load(module.RETURN)
