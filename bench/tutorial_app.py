"""The Streamlit tutorial chat pattern, as the Anthropic/Streamlit quickstarts write it: the
reference point `bench/bench_startup.py` compares the dashboard's start-up against.

    streamlit run bench/tutorial_app.py

The SDK reads ANTHROPIC_API_KEY and ANTHROPIC_BASE_URL itself (the bench points them at
the loopback API). Nothing here is stored; the chat lives in st.session_state.
"""

import os

import streamlit as st
from anthropic import Anthropic

st.title("💬 Chatbot")

client = Anthropic()
model = os.environ.get("CHAT_MODEL") or "claude-haiku-4-5"

if "messages" not in st.session_state:
    st.session_state.messages = []

for message in st.session_state.messages:
    with st.chat_message(message["role"]):
        st.markdown(message["content"])

if prompt := st.chat_input("What is up?"):
    st.session_state.messages.append({"role": "user", "content": prompt})
    with st.chat_message("user"):
        st.markdown(prompt)

    with st.chat_message("assistant"):
        with client.messages.stream(
            model=model,
            max_tokens=1024,
            messages=[{"role": m["role"], "content": m["content"]} for m in st.session_state.messages],
        ) as stream:
            response = st.write_stream(stream.text_stream)
    st.session_state.messages.append({"role": "assistant", "content": response})
