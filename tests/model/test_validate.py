"""``validate`` checks the ``models:`` block and each model step's model."""
from __future__ import annotations

import pytest

from tether import FlowError
from tether.flow import load_flow


def problems(write_flow, text: str) -> str:
    with pytest.raises(FlowError) as info:
        load_flow(write_flow(text))
    return "\n".join(info.value.problems)


def test_unconfigured_model_is_reported_with_a_hint(write_flow):
    text = problems(write_flow, """
name: v
models: {gpt-small: {base_url: "http://127.0.0.1:1/v1"}}
steps:
  - {id: a, tool: model, with: {model: gpt-smal, prompt: hi}}
""")
    assert "flow.yaml:5:" in text and "model 'gpt-smal' is not configured" in text
    assert "did you mean 'gpt-small'?" in text


def test_bad_models_block(write_flow):
    text = problems(write_flow, """
name: v
models:
  m: {base_url: "ftp://x", input_per_million: -1, max_concurency: 2}
steps:
  - {id: a, tool: model, with: {prompt: hi}}
""")
    assert "unknown key 'max_concurency' (did you mean 'max_concurrency'?)" in text
    assert "models.m.base_url" in text and "models.m.input_per_million" in text
    assert "a model step needs 'with: {model: NAME}'" in text


def test_base_url_or_template_model_is_accepted(write_flow):
    load_flow(write_flow("""
name: v
inputs: {which: m}
steps:
  - {id: a, tool: model, with: {model: x, base_url: "http://127.0.0.1:1/v1", prompt: hi}}
  - {id: b, tool: model, with: {model: "{{ inputs.which }}", prompt: hi}}
"""))


def test_model_settings_are_checked(tmp_path):
    from tether.errors import UsageError
    from tether.settings import Settings
    with pytest.raises(UsageError, match="TETHER_MODEL_BASE_URL must be an http"):
        Settings.from_env({"TETHER_MODEL_BASE_URL": "localhost:8000"})
    bad = tmp_path / "prices.json"
    bad.write_text("[1, 2]")
    with pytest.raises(UsageError, match="TETHER_MODEL_PRICES must be a readable JSON file"):
        Settings.from_env({"TETHER_MODEL_PRICES": str(bad)})
    with pytest.raises(UsageError, match="TETHER_MODEL_PRICES"):
        Settings.from_env({"TETHER_MODEL_PRICES": str(tmp_path / "missing.json")})
    bad.write_text('{"m": {"input_per_million": 1}}')
    prices = Settings.from_env({"TETHER_MODEL_PRICES": str(bad)}).model_prices
    assert prices is not None and prices["m"]["input_per_million"] == 1
