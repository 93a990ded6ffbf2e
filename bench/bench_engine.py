"""chat_core's cost over the raw SDK and bare llama-cpp-python. Prints figures; asserts nothing.

    python bench/bench_engine.py
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

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

    from chat_core.backends.anthropic_backend import AnthropicBackend
    from chat_core.conversation import Message

    os.environ.update(ANTHROPIC_API_KEY="bench-key", ANTHROPIC_BASE_URL=url)
    client = anthropic.Anthropic()
    backend = AnthropicBackend("claude-haiku-4-5", client)
    # The loopback server splits a reply per word: DELTAS words give DELTAS deltas.
    text = " ".join(["tok"] * DELTAS)
    prompt = f"__bench__ {text}"
    messages = [Message("user", prompt)]

    def raw() -> tuple[float, float, int]:
        start = time.perf_counter()
        first, count = None, 0
        with client.messages.stream(model="claude-haiku-4-5", max_tokens=8192, system="s",
                                    messages=[{"role": "user", "content": prompt}]) as stream:
            for _chunk in stream.text_stream:
                if first is None:
                    first = time.perf_counter() - start
                count += 1
            stream.get_final_message()
        return time.perf_counter() - start, first, count

    def core() -> tuple[float, float, int]:
        start = time.perf_counter()
        first, count = None, 0
        for _chunk in backend.stream("s", messages, 8192):
            if first is None:
                first = time.perf_counter() - start
            count += 1
        return time.perf_counter() - start, first, count

    raw(), core()  # warm the connection pool
    raw_runs, core_runs = [], []
    for _ in range(ROUNDS):
        raw_runs.append(raw())
        core_runs.append(core())
    raw_total = statistics.median(r[0] for r in raw_runs)
    core_total = statistics.median(r[0] for r in core_runs)
    raw_ttft = statistics.median(r[1] for r in raw_runs)
    core_ttft = statistics.median(r[1] for r in core_runs)
    deltas = core_runs[0][2]
    print(f"streaming, loopback, {deltas} deltas, median of {ROUNDS}:")
    print(f"  raw SDK text_stream   {deltas / raw_total:10,.0f} deltas/s   ttft {raw_ttft * 1000:6.2f} ms")
    print(f"  chat_core             {deltas / core_total:10,.0f} deltas/s   ttft {core_ttft * 1000:6.2f} ms")
    print(f"  throughput ratio chat_core/raw = {raw_total / core_total:.3f} (goal >= 0.95)")
    print(f"  added time to first token = {(core_ttft - raw_ttft) * 1000:+.2f} ms (goal < 5 ms)")


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
