"""Tokens per turn for the open conversation: where the input went (uncached,
written to the cache, read from it), the window's effect, the output, the
running cost, the time to first token, and the table as CSV."""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from chat_core import format_cost
from chat_core.conversation import window_label
from chat_core.markdown_safety import literal
from chat_core.whatif import what_if
from dashboard import state

chat = state.chat()
st.title("Tokens per turn")
st.caption(f"**{literal(chat.title or 'New chat (not saved yet)')}** · {literal(chat.backend.label)} · "
           f"sending {window_label(chat.settings.window)}")

records = chat.records
if not records:
    st.info("No turns yet: chat on the Chat page and each reply's tokens and cost will show here.")
    st.stop()

frame = pd.DataFrame([record.as_row() for record in records]).drop(columns=["message_id"])
priced = frame["cost_usd"].notna().all()
free = priced and (frame["backend"] == "local").all()
frame["running_cost_usd"] = frame["cost_usd"].cumsum() if priced else None

total = chat.totals
a, b, c, d = st.columns(4)
a.metric("Input tokens", f"{total.usage.all_input_tokens:,}")
b.metric("Read from cache", f"{total.usage.cache_read_tokens:,}")
c.metric("Output tokens", f"{total.usage.output_tokens:,}")
d.metric("Cost", "free" if free else format_cost(total.cost_usd))

x = alt.X("turn:O", title="turn")
INPUT_PARTS = {"input_tokens": "uncached", "cache_write_tokens": "written to cache",
               "cache_read_tokens": "read from cache"}
inputs = frame.melt(id_vars=["turn"], value_vars=list(INPUT_PARTS), var_name="part", value_name="tokens")
inputs["part"] = inputs["part"].map(INPUT_PARTS)
legend = alt.Legend(orient="top", title=None, labelLimit=400)
stacked = alt.Chart(inputs).mark_bar().encode(
    x=x, y=alt.Y("tokens:Q", title="input tokens", stack="zero"),
    color=alt.Color("part:N", sort=list(INPUT_PARTS.values()), legend=legend,
                    scale=alt.Scale(domain=list(INPUT_PARTS.values()), range=["#4c78a8", "#e45756", "#72b7b2"])),
    order=alt.Order("part:N"),
    tooltip=["turn", "part", "tokens"],
)
NO_WINDOW = "with no window"
no_window = alt.Chart(frame.dropna(subset=["unwindowed_input_tokens"]).assign(line=NO_WINDOW)).mark_line(
    strokeDash=[6, 4], point=True
).encode(
    x=x, y="unwindowed_input_tokens:Q",
    stroke=alt.Stroke("line:N", legend=legend, scale=alt.Scale(range=["#666"])),
    tooltip=[alt.Tooltip("unwindowed_input_tokens:Q", title=NO_WINDOW)],
)
st.subheader("Input per turn")
st.caption("Dashed: the input with every past exchange sent; counted by the local model's tokenizer, "
           "estimated for Claude.")
st.altair_chart(alt.layer(stacked, no_window).resolve_scale(color="independent").properties(height=300),
                width="stretch")

st.subheader("Output per turn")
st.altair_chart(alt.Chart(frame).mark_bar(color="#f58518").encode(
    x=x, y=alt.Y("output_tokens:Q", title="output tokens"), tooltip=["turn", "output_tokens", "stop_reason"],
).properties(height=180), width="stretch")

st.subheader("Running cost")
if free:
    st.caption("Free: the bundled local model costs nothing.")
elif priced:
    whatifs = pd.DataFrame([vars(w) for w in what_if(chat.settings.system, chat.messages, records, chat.settings.window)])
    COSTS = {"running_cost_usd": "billed", "no_cache_usd": "with no caching (computed)",
             "plain_slide_usd": "plain sliding window, no cache (computed, estimate)"}
    running = frame[["turn", "running_cost_usd"]].assign(
        no_cache_usd=whatifs["no_cache_usd"].cumsum(), plain_slide_usd=whatifs["plain_slide_usd"].cumsum(),
    ).melt(id_vars=["turn"], var_name="series", value_name="usd")
    running["series"] = running["series"].map(COSTS)
    st.altair_chart(alt.Chart(running).mark_line(point=True).encode(
        x=x, y=alt.Y("usd:Q", title="USD"),
        color=alt.Color("series:N", legend=alt.Legend(orient="top", title=None, labelLimit=400),
                        scale=alt.Scale(domain=list(COSTS.values()), range=["#54a24b", "#e45756", "#9d755d"])),
        strokeDash=alt.StrokeDash("series:N", legend=None, scale=alt.Scale(domain=list(COSTS.values()),
                                                                          range=[[1, 0], [6, 4], [2, 2]])),
        tooltip=["turn", "series", alt.Tooltip("usd:Q", format="$.6f")],
    ).properties(height=200), width="stretch")
    saved = whatifs["no_cache_usd"].sum() - frame["cost_usd"].sum()
    st.caption(f"Prompt caching saved {format_cost(saved)} in this conversation (computed from the recorded "
               "tokens and the prices).")
else:
    st.caption("Unknown: a turn used a model with no known price.")

if frame["ttft_s"].notna().any():
    st.subheader("Time to first token")
    st.altair_chart(alt.Chart(frame.dropna(subset=["ttft_s"])).mark_line(point=True, color="#b279a2").encode(
        x=x, y=alt.Y("ttft_s:Q", title="seconds"), tooltip=["turn", "backend", alt.Tooltip("ttft_s:Q", format=".3f")],
    ).properties(height=160), width="stretch")

st.dataframe(frame, hide_index=True, width="stretch")
st.download_button("Download CSV", frame.to_csv(index=False), file_name=f"tokens-{chat.conversation_id}.csv",
                   mime="text/csv", key="tokens_csv")
