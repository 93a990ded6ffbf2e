"""Tokens per turn: the window's effect, the running cost, the table as CSV."""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from chat_core import format_cost
from chat_core.conversation import window_label
from dashboard import state

st.set_page_config(page_title="Tokens per turn", page_icon="📊", layout="wide")
chat = state.current_chat()
st.title("📊 Tokens per turn")
st.caption(f"{chat.backend.label} · sending {window_label(chat.settings.window)}")

records = chat.records
if not records:
    st.info("No turns yet: chat on the main page and each reply's tokens and cost will show here.")
    st.stop()

frame = pd.DataFrame([record.as_row() for record in records])
frame["running_cost_usd"] = frame["cost_usd"].cumsum() if frame["cost_usd"].notna().all() else None

total = chat.totals
a, b, c = st.columns(3)
a.metric("Input tokens", f"{total.usage.input_tokens:,}")
b.metric("Output tokens", f"{total.usage.output_tokens:,}")
c.metric("Cost", format_cost(total.cost_usd))

bars = (
    frame.melt(id_vars=["turn"], value_vars=["input_tokens", "output_tokens"], var_name="kind", value_name="tokens")
    .replace({"kind": {"input_tokens": "input", "output_tokens": "output"}})
)
x = alt.X("turn:O", title="turn")
stacked = alt.Chart(bars).mark_bar().encode(
    x=x, y=alt.Y("tokens:Q", title="tokens", stack="zero"),
    color=alt.Color("kind:N", title=None, scale=alt.Scale(range=["#4c78a8", "#f58518"])),
    tooltip=["turn", "kind", "tokens"],
)
no_window = alt.Chart(frame.dropna(subset=["unwindowed_input_tokens"])).mark_line(
    strokeDash=[6, 4], color="#888", point=True
).encode(x=x, y="unwindowed_input_tokens:Q", tooltip=[alt.Tooltip("unwindowed_input_tokens:Q", title="input with no window (est.)")])
layers = [stacked, no_window]
charts = [alt.layer(*layers).properties(height=320, title="Input and output tokens; dashed: input with no window (estimate)")]
if frame["running_cost_usd"].notna().all():
    charts.append(
        alt.Chart(frame).mark_line(point=True, color="#54a24b").encode(
            x=x, y=alt.Y("running_cost_usd:Q", title="USD"), tooltip=["turn", "running_cost_usd"]
        ).properties(height=180, title="Running cost")
    )
else:
    st.caption("Running cost: unknown (a turn used a model with no known price).")
st.altair_chart(alt.vconcat(*charts), width="stretch")

st.dataframe(frame, hide_index=True, width="stretch")
st.download_button("Download CSV", frame.to_csv(index=False), file_name=f"tokens-{chat.conversation_id}.csv",
                   mime="text/csv", key="tokens_csv")
