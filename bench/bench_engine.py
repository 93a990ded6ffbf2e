"""chat_core's cost over the raw SDK and bare llama-cpp-python. Prints figures; asserts nothing.

    python bench/bench_engine.py
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Iterator

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DELTAS = 5_000
ROUNDS = 7


def start_loopback() -> tuple[subprocess.Popen, str]:
    """The loopback Messages API in its own process, so it does not share our GIL."""
    proc = subprocess.Popen([sys.executable, "-m", "tests.loopback_api"], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    return proc, proc.stdout.readline().strip()


def streaming_overhead(url: str) -> None:
    import anthropic

    from chat_core import ChatSession, settings_from_env
    from chat_core.backends.anthropic_backend import AnthropicBackend
    from chat_core.conversation import Message
    from chat_core.storage import Store

    os.environ.update(ANTHROPIC_API_KEY="bench-key", ANTHROPIC_BASE_URL=url)
    client = anthropic.Anthropic()
    backend = AnthropicBackend("claude-haiku-4-5", client)
    # The loopback server splits a reply per word: DELTAS words give DELTAS deltas.
    text = " ".join(["tok"] * DELTAS)
    prompt = f"__bench__ {text}"
    messages = [Message("user", prompt)]

    def raw() -> Iterator[str]:
        with client.messages.stream(model="claude-haiku-4-5", max_tokens=8192, system="s",
                                    messages=[{"role": "user", "content": prompt}]) as stream:
            yield from stream.text_stream
            stream.get_final_message()

    settings = settings_from_env({}, backend="anthropic", model="claude-haiku-4-5", system="s", max_tokens=8192).with_(
        max_input_chars=0)  # the prompt is long on purpose
    data = Path(tempfile.mkdtemp(prefix="bench-engine-"))
    stored_chat = ChatSession.start(Store(f"sqlite:///{data / 'chat.db'}"), backend, settings)
    bare_chat = ChatSession(backend, settings)

    def job(chat: ChatSession) -> Callable[[], Iterator[str]]:
        """A reply through a job (a worker thread, its buffer, a viewer), from `send` on: with a
        store, the question saved first, the reply's row as it goes out and its text as it grows."""
        def run() -> Iterator[str]:
            chat.new_conversation()
            return chat.send(prompt)
        return run

    def timed(chunks: Callable[[], Iterator[str]]) -> tuple[float, float, int, float]:
        """(seconds, seconds to the first chunk, chunks, CPU seconds of this process)."""
        start, cpu = time.perf_counter(), time.process_time()
        first, count = None, 0
        for _chunk in chunks():
            if first is None:
                first = time.perf_counter() - start
            count += 1
        return time.perf_counter() - start, first, count, time.process_time() - cpu

    ways = {"raw SDK text_stream": raw, "chat_core backend": lambda: backend.stream("s", messages, 8192),
            "job (no store)": job(bare_chat), "job + store": job(stored_chat)}
    for way in ways.values():
        timed(way)  # warm the connection pool and the store
    runs: dict[str, list] = {name: [] for name in ways}
    for _ in range(ROUNDS):
        for name, way in ways.items():
            runs[name].append(timed(way))
    total = {name: statistics.median(r[0] for r in rs) for name, rs in runs.items()}
    ttft = {name: statistics.median(r[1] for r in rs) for name, rs in runs.items()}
    cpu = {name: statistics.median(r[3] for r in rs) for name, rs in runs.items()}
    deltas = runs["chat_core backend"][0][2]
    print(f"streaming, loopback, {deltas} deltas, median of {ROUNDS}:")
    for name in ways:
        print(f"  {name:21} {deltas / total[name]:10,.0f} deltas/s   ttft {ttft[name] * 1000:6.2f} ms"
              f"   client CPU {cpu[name] / deltas * 1e6:6.1f} us/delta")
    raw_name = "raw SDK text_stream"
    for name in ("chat_core backend", "job + store"):
        print(f"  {name}: throughput ratio to raw = {total[raw_name] / total[name]:.3f} (goal >= 0.95), "
              f"added time to first token = {(ttft[name] - ttft[raw_name]) * 1000:+.2f} ms (goal < 5 ms)")
    print(f"  saving the growing text: throughput job + store / job = {total['job (no store)'] / total['job + store']:.3f}"
          f" (goal >= 0.95)")


def local_decode() -> None:
    from chat_core import ChatSession, settings_from_env
    from chat_core.backends.base import Reply
    from chat_core.backends.local import LocalBackend, LocalModel
    from chat_core.conversation import Message, build_request

    model = LocalModel.load()
    llama = model.llama
    backend = LocalBackend(model)
    system, question, max_tokens = "You are a storyteller.", "Tell me a long story about a lighthouse keeper.", 128
    chat = [{"role": "system", "content": system}, {"role": "user", "content": question}]

    def rate(total: float, ttft: float, tokens: int) -> float:
        return (tokens - 1) / (total - ttft)  # decode speed, after the first token

    def bare() -> float:
        llama.reset()  # no prefix reuse for either side
        start = time.perf_counter()
        ttft, tokens = None, 0
        for chunk in llama.create_chat_completion(messages=chat, max_tokens=max_tokens, stream=True):
            if chunk["choices"][0]["delta"].get("content") is not None:
                tokens += 1
                if ttft is None:
                    ttft = time.perf_counter() - start
        return rate(time.perf_counter() - start, ttft, tokens)

    def core() -> float:
        llama.reset()
        reply = Reply("local", model.name)
        for _ in backend.stream(system, [Message("user", question)], max_tokens, reply):
            pass
        return rate(reply.total_s, reply.ttft_s, reply.usage.output_tokens)

    bare(), core()
    bare_rates, core_rates = [], []
    for _ in range(ROUNDS):
        bare_rates.append(bare())
        core_rates.append(core())
    bare_rate, core_rate = statistics.median(bare_rates), statistics.median(core_rates)
    print(f"local decode, {model.name}, max_tokens {max_tokens}, median of {ROUNDS}:")
    print(f"  bare llama-cpp-python {bare_rate:8.1f} tokens/s")
    print(f"  chat_core             {core_rate:8.1f} tokens/s")
    print(f"  tokens/s ratio chat_core/bare = {core_rate / bare_rate:.3f} (goal >= 0.95)")

    llama.reset()
    settings = settings_from_env({}, backend="local", max_tokens=48, window=0)
    session = ChatSession(backend, settings)
    questions = ["Tell me about the sea.", "And about rivers?", "What about lakes?", "And mountains?", "And deserts?"]
    for text in questions:
        for _ in session.send(text):
            pass
    first, fifth = session.records[0], session.records[4]
    print("local time to first token in one conversation (the KV cache reuses the shared prefix):")
    print(f"  turn 1: {first.ttft_s * 1000:7.1f} ms for a {first.usage.input_tokens}-token prompt")
    print(f"  turn 5: {fifth.ttft_s * 1000:7.1f} ms for a {fifth.usage.input_tokens}-token prompt")
    llama.reset()
    reply = Reply("local", model.name)
    turn5 = build_request(session.messages[:8], questions[4], 0)  # what turn 5 sent
    for _ in backend.stream(settings.system, turn5, 1, reply):
        pass
    print(f"  same turn-5 prompt with a cold cache: {reply.ttft_s * 1000:7.1f} ms ({reply.usage.input_tokens} tokens)")


def main() -> None:
    proc, url = start_loopback()
    try:
        streaming_overhead(url)
    finally:
        proc.terminate()
        proc.wait()
    local_decode()


if __name__ == "__main__":
    main()
