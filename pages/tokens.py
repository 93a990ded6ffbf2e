"""Tokens per turn for the open conversation: where the input went (uncached,
written to the cache, read from it), the window's effect, the output, the
running cost, the time to first token, and the table as CSV."""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from chat_core import format_cost
from chat_core.backends import output_estimated
from chat_core.conversation import window_label
from chat_core.markdown_safety import literal
from chat_core.whatif import what_if
from chat_core.window import estimate_tokens
from dashboard import state

chat = state.chat()
st.title("Tokens per turn")
st.caption(f"**{literal(chat.title or 'New chat (not saved yet)')}** · {literal(chat.backend.label)} · "
           f"sending {window_label(chat.settings.window)}")

messages, records = chat.whole()  # every turn: read once, in one pass each below
if not records:
    st.info("No turns yet: chat on the Chat page and each reply's tokens and cost will show here.")
    st.stop()

frame = pd.DataFrame([record.as_row() for record in records]).drop(columns=["message_id"])
priced = frame["cost_usd"].notna().all()
cost_text = state.cost_text(chat)  # the sidebar's words too
free = cost_text == "free"
frame["running_cost_usd"] = frame["cost_usd"].cumsum() if priced else None
frame["output_estimated"] = [output_estimated(record) for record in records]
# The API counts thinking inside the output tokens and gives no count of its own: its share is
# estimated from the stored thinking text (about 4 characters a token), never more than the output.
thought = {m.id: sum(estimate_tokens(t.text) for t in m.thinking) for m in messages if m.thinking}
frame["thinking_tokens"] = [min(record.usage.output_tokens, thought.get(record.message_id, 0)) for record in records]
frame["answer_tokens"] = frame["output_tokens"] - frame["thinking_tokens"]

total = chat.totals
a, b, c, d = st.columns(4)
a.metric("Input tokens", f"{total.usage.all_input_tokens:,}")
b.metric("Read from cache", f"{total.usage.cache_read_tokens:,}")
c.metric("Output tokens", state.output_text(chat), help=state.OUTPUT_HELP)
d.metric("Cost", cost_text)

x = alt.X("turn:O", title="turn", axis=alt.Axis(labelAngle=0))  # turn numbers upright
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
    strokeDash=[6, 4], point=alt.OverlayMarkDef(color="#888")
).encode(
    x=x, y="unwindowed_input_tokens:Q",
    stroke=alt.Stroke("line:N", legend=alt.Legend(orient="top", title=None, symbolType="stroke", symbolDash=[6, 4],
                                                   symbolSize=400, symbolStrokeWidth=2),
                      scale=alt.Scale(range=["#888"])),
    tooltip=[alt.Tooltip("unwindowed_input_tokens:Q", title=NO_WINDOW)],
)
st.subheader("Input per turn")
st.caption("Dashed: the input with every past exchange sent; counted by the local model's tokenizer, "
           "estimated for Claude.")
st.altair_chart(alt.layer(stacked, no_window).resolve_scale(color="independent").properties(height=300),
                width="stretch")

st.subheader("Output per turn")
OUTPUT_PARTS = {"answer_tokens": "answer", "thinking_tokens": "thinking (estimated)"}
outputs = frame.melt(id_vars=["turn", "stop_reason"], value_vars=list(OUTPUT_PARTS), var_name="part",
                     value_name="tokens")
outputs["part"] = outputs["part"].map(OUTPUT_PARTS)
if frame["thinking_tokens"].any():
    st.caption("Thinking is billed as output; the API gives no count of its own, so its share is estimated "
               "from the thinking's text.")
st.altair_chart(alt.Chart(outputs).mark_bar().encode(
    x=x, y=alt.Y("tokens:Q", title="output tokens", stack="zero"),
    color=alt.Color("part:N", sort=list(OUTPUT_PARTS.values()), legend=legend,
                    scale=alt.Scale(domain=list(OUTPUT_PARTS.values()), range=["#f58518", "#b279a2"])),
    order=alt.Order("part:N"), tooltip=["turn", "part", "tokens", "stop_reason"],
).properties(height=240), width="stretch")

COSTS = {"running_cost_usd": "billed", "no_cache_usd": "with no caching (computed)",
         "plain_slide_usd": "plain sliding window, no cache (computed, estimate)"}
BOTH = "with no caching (computed), or the plain sliding window: the same here"
# Each line its own colour, dash and point shape, and the no-caching line wide and pale
# under the others: lines that run together stay visible, and the legend matches them.
LOOKS = {COSTS["running_cost_usd"]: ("#54a24b", [1, 0], "circle", 2),
         COSTS["no_cache_usd"]: ("#f4a3a4", [1, 0], "square", 7), BOTH: ("#f4a3a4", [1, 0], "square", 7),
         COSTS["plain_slide_usd"]: ("#9467bd", [6, 3], "triangle-up", 2.5)}


def running_cost_chart(running: pd.DataFrame, same: bool) -> alt.LayerChart:
    """The billed running cost beside the computed ones; `same`: the two computed ones coincide, drawn as one."""
    names = dict(COSTS, no_cache_usd=BOTH) if same else COSTS
    columns = ["running_cost_usd", "no_cache_usd"] if same else list(COSTS)
    long = running.melt(id_vars=["turn"], value_vars=columns, var_name="series", value_name="usd")
    long["series"] = long["series"].map(names)
    domain = [names[c] for c in columns]

    # One legend, from the colour alone: each line's dash, width and point shape are its layer's own
    # (an encoded shape would put its point symbol in the legend instead of a stroke).
    legend = alt.Legend(orient="top", title=None, labelLimit=600, symbolType="stroke", symbolStrokeWidth=3)
    color = alt.Color("series:N", legend=legend, scale=alt.Scale(domain=domain, range=[LOOKS[n][0] for n in domain]))
    base = alt.Chart(long).encode(x=x, y=alt.Y("usd:Q", title="USD", axis=alt.Axis(format="$.2~g")), color=color,
                                  tooltip=["turn", "series", alt.Tooltip("usd:Q", format="$.6f")])
    layers = []
    for name in reversed(domain):  # the wide computed line at the bottom, the billed one on top
        _, dash, shape, width = LOOKS[name]
        part = base.transform_filter(alt.datum.series == name)
        layers += [part.mark_line(strokeDash=dash, strokeWidth=width),
                   part.mark_point(filled=True, size=45, opacity=1, shape=shape)]
    return alt.layer(*layers).properties(height=260)


st.subheader("Running cost")
if free:
    st.caption("Free: the bundled local model costs nothing.")
elif priced:
    whatifs = pd.DataFrame([vars(w) for w in what_if(chat.settings.system, messages, records, chat.settings.window)])
    running = frame[["turn", "running_cost_usd"]].assign(
        no_cache_usd=whatifs["no_cache_usd"].cumsum(), plain_slide_usd=whatifs["plain_slide_usd"].cumsum(),
    )
    same = (running["plain_slide_usd"] - running["no_cache_usd"]).abs().max() < 5e-7  # equal to the micro-dollar
    st.altair_chart(running_cost_chart(running, same), width="stretch")
    if same:
        st.caption("The plain sliding window would have sent what this chat sent (its window never had to let go "
                   "of an exchange early), so it costs the same as no caching: one line shows both.")
    saved = whatifs["no_cache_usd"].sum() - frame["cost_usd"].sum()
    if not (frame["cache_write_tokens"].any() or frame["cache_read_tokens"].any()):
        st.caption("Nothing was written to the prompt cache or read from it in this conversation, so caching "
                   "changed nothing.")
    elif saved >= 0:
        st.caption(f"Prompt caching saved {format_cost(saved)} in this conversation (computed from the recorded "
                   "tokens and the prices).")
    else:
        st.caption(f"Prompt caching cost {format_cost(-saved)} more than no caching so far: a cache write is billed "
                   "at 1.25× the input price, and reads at 0.1× pay it back from the next turns on (computed from "
                   "the recorded tokens and the prices).")
else:
    st.caption("Unknown: a turn used a model with no known price.")

if frame["ttft_s"].notna().any():
    st.subheader("Time to first token")
    st.altair_chart(alt.Chart(frame.dropna(subset=["ttft_s"])).mark_line(point=alt.OverlayMarkDef(color="#b279a2"), color="#b279a2").encode(
        x=x, y=alt.Y("ttft_s:Q", title="seconds"), tooltip=["turn", "backend", alt.Tooltip("ttft_s:Q", format=".3f")],
    ).properties(height=160), width="stretch")

# The table and its CSV: named columns in reading order, numbers rounded to what they mean
# (dollars to the micro-dollar, seconds to the millisecond).
COLUMNS = {  # what one reads first, first
    "turn": ("Turn", None), "model": ("Model", None), "input_tokens": ("Input, uncached", None),
    "cache_write_tokens": ("Input written to cache", None), "cache_read_tokens": ("Input read from cache", None),
    "output_tokens": ("Output tokens", None), "output_estimated": ("Output is an estimate", None),
    "thinking_tokens": ("Of which thinking (estimate)", None), "cost_usd": ("Cost (USD)", 6), "running_cost_usd": ("Running cost (USD)", 6),
    "ttft_s": ("First token (s)", 3), "total_s": ("Reply time (s)", 3), "messages_sent": ("Messages sent", None),
    "unwindowed_input_tokens": ("Input with no window (estimate)", None), "status": ("Status", None),
    "stop_reason": ("Stop reason", None), "backend": ("Backend", None),
}
table = frame[list(COLUMNS)].round({name: digits for name, (_, digits) in COLUMNS.items() if digits is not None})


def column(name: str, label: str, digits: int | None):
    if digits is not None:
        return st.column_config.NumberColumn(label, format=f"%.{digits}f")
    if name.endswith("_tokens"):  # counts grouped by thousands, as in the metrics above: 4,356
        return st.column_config.NumberColumn(label, format="localized")
    return label


st.dataframe(table, hide_index=True, width="stretch",
             column_config={name: column(name, label, digits) for name, (label, digits) in COLUMNS.items()})
st.download_button("Download CSV", table.rename(columns={name: label for name, (label, _) in COLUMNS.items()})
                   .to_csv(index=False), file_name=f"tokens-{chat.conversation_id}.csv", mime="text/csv",
                   key="tokens_csv")
