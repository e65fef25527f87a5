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


# The other plugins ansible-doc shows (callbacks, lookups; filters and tests in YAML files of their own): the same
# rule for their descriptions. Action plugins are documented by their modules.
PLUGIN_DIR = Path(modules.__path__[0]).parent
PLUGINS = sorted(str(path.relative_to(PLUGIN_DIR)) for path in [*PLUGIN_DIR.glob("*/*.py"), *PLUGIN_DIR.glob("*/*.yml")]
                 if path.parent.name not in ("modules", "module_utils", "plugin_utils", "action")
                 and path.stem != "__init__")


def plugin_doc(name: str) -> dict | None:
    if name.endswith(".yml"):
        return yaml.safe_load((PLUGIN_DIR / name).read_text())["DOCUMENTATION"]
    plugin = importlib.import_module("ansible_collections.netlab.lab.plugins." + name[:-3].replace("/", "."))
    return yaml.safe_load(plugin.DOCUMENTATION) if hasattr(plugin, "DOCUMENTATION") else None


@pytest.mark.parametrize("name", PLUGINS)
def test_plugin_docs_have_text_descriptions(name):
    doc = plugin_doc(name)
    if doc is None:
        pytest.skip("a filter or test module: each of its plugins has a YAML file")
    assert doc["name"] == Path(name).stem
    for item in texts(doc["description"]) + texts(doc.get("notes", [])) + texts(doc.get("requirements", [])):
        assert isinstance(item, str), item  # "word: word" in a plain YAML line turns into a mapping
    for option, spec in (doc.get("options") or {}).items():
        assert all(isinstance(t, str) for t in texts(spec["description"])), option
