import pytest

from chat_core.config import settings_from_env
from chat_core.errors import ConfigError


def test_backend_follows_the_key_unless_chosen():
    assert settings_from_env({}).backend == "local"
    assert settings_from_env({}).model == "SmolLM2-135M-Instruct"
    keyed = settings_from_env({"ANTHROPIC_API_KEY": "k"})
    assert (keyed.backend, keyed.model) == ("anthropic", "claude-haiku-4-5")
    assert settings_from_env({"ANTHROPIC_API_KEY": "k", "CHAT_BACKEND": "local"}).backend == "local"
    assert settings_from_env({"CHAT_MODEL": "claude-opus-4-5"}, backend="anthropic").model == "claude-opus-4-5"
    assert settings_from_env({"CHAT_WINDOW": "3"}, window=5).window == 5


def test_bad_settings_say_what_to_fix():
    with pytest.raises(ConfigError, match="Unknown backend 'gpt'"):
        settings_from_env({"CHAT_BACKEND": "gpt"})
    with pytest.raises(ConfigError, match="CHAT_WINDOW='many' is not a whole number"):
        settings_from_env({"CHAT_WINDOW": "many"})
