"""deploy/CONFIG.md lists every setting of NodeConfig with its real default.

Checked against the models directly (not through deploy/config_reference.py, which writes the
table), so the reference cannot drift from the code either way.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
import tomllib
from enum import Enum
from pathlib import Path
from typing import Any

from node.config import CONFIG_TEMPLATE, NodeConfig, Section, render_config

ROOT = Path(__file__).resolve().parents[2]
CONFIG_MD = ROOT / "deploy" / "CONFIG.md"
CELL = re.compile(r"(?<!\\)\|")


def model_settings() -> dict[str, Any]:
    """``section.name`` -> FieldInfo for every setting of every section of NodeConfig."""
    found: dict[str, Any] = {}
    for section_name, section in NodeConfig.model_fields.items():
        model = section.annotation
        if isinstance(model, type) and issubclass(model, Section):
            for name, field in model.model_fields.items():
                found[f"{section_name}.{name}"] = field
    return found


def documented() -> dict[str, dict[str, str]]:
    """The settings table of CONFIG.md: ``section.name`` -> its cells."""
    rows: dict[str, dict[str, str]] = {}
    for line in CONFIG_MD.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in CELL.split(line.strip())]
        if len(cells) != 7 or not re.fullmatch(r"`[a-z_]+\.[a-z_]+`", cells[1]):
            continue
        key = cells[1].strip("`")
        assert key not in rows, f"{key} is listed twice in CONFIG.md"
        rows[key] = {
            "type": cells[2],
            "allowed": cells[3],
            "default": cells[4],
            "meaning": cells[5],
        }
    return rows


def toml(value: Any) -> str:
    if isinstance(value, Enum):
        value = value.value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return repr(value)


def test_every_setting_is_documented_with_its_default() -> None:
    settings, rows = model_settings(), documented()
    assert settings, "NodeConfig has no sections?"
    missing = sorted(set(settings) - set(rows))
    assert not missing, f"settings missing from deploy/CONFIG.md: {missing}"
    extra = sorted(set(rows) - set(settings))
    assert not extra, f"deploy/CONFIG.md lists settings NodeConfig does not have: {extra}"
    for key, field in settings.items():
        expected = "required" if field.is_required() else f"`{toml(field.default)}`"
        assert rows[key]["default"] == expected, (
            f"{key}: CONFIG.md says default {rows[key]['default']}, the code says {expected}"
        )
        meaning = rows[key]["meaning"]
        assert meaning and not meaning.startswith("TODO"), f"{key} has no meaning in CONFIG.md"


def test_enum_settings_list_every_code() -> None:
    for key, field in model_settings().items():
        if isinstance(field.annotation, type) and issubclass(field.annotation, Enum):
            cell = documented()[key]["allowed"]
            for member in field.annotation:
                assert f"`{member.value}`" in cell, f"{key}: {member.value} not listed"


def test_the_generator_agrees() -> None:
    """``python deploy/config_reference.py --check`` passes (types and bounds are current too)."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "deploy" / "config_reference.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_the_generator_keeps_meanings_and_fills_new_rows() -> None:
    spec = importlib.util.spec_from_file_location(
        "config_reference", ROOT / "deploy" / "config_reference.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    text = CONFIG_MD.read_text(encoding="utf-8")
    assert module.render(text) == text
    # a row lost from the table comes back, with the template's comment as its meaning
    lines = [
        x for x in text.splitlines(keepends=True) if not x.startswith("| `server.max_json_depth`")
    ]
    rebuilt = module.render("".join(lines))
    row = next(x for x in rebuilt.splitlines() if x.startswith("| `server.max_json_depth`"))
    assert "Deepest accepted JSON nesting" in row and "`32`" in row


def test_the_written_template_states_the_same_defaults() -> None:
    """The barnplan.toml ``init`` writes claims to list every default: the real ones."""
    text = render_config(
        node_id="skola.test.se",
        agency_name="Testskolan",
        agency_kind="school",
        base_url="http://127.0.0.1:8400",
        host="127.0.0.1",
        port=8400,
    )
    data = tomllib.loads(text)
    for key, field in model_settings().items():
        section, name = key.split(".")
        assert name in data.get(section, {}), f"CONFIG_TEMPLATE does not list {key}"
        if not field.is_required():
            assert data[section][name] == (
                field.default.value if isinstance(field.default, Enum) else field.default
            ), f"CONFIG_TEMPLATE's {key} is not the code's default"
    assert "deploy/CONFIG.md" in CONFIG_TEMPLATE
