"""The sliding window: what is sent is always a valid request, whatever the history."""

from hypothesis import given, settings, strategies as st

from chat_core.window import CACHE_AWARE, POLICIES, SLIDE
from chat_core.conversation import (
    ASSISTANT, COMPLETE, FAILED, STOPPED, USER, Message, build_request, is_valid_request, window_indices,
)

texts = st.one_of(st.just(""), st.just("  \n"), st.text(min_size=1, max_size=12))
user_messages = st.builds(Message, st.just(USER), st.text(min_size=1, max_size=12).filter(str.strip))
replies = st.builds(Message, st.just(ASSISTANT), texts, st.sampled_from([COMPLETE, STOPPED, FAILED]))
# A turn: a user message, then a reply, or none at all (a process killed mid-reply).
turns = st.tuples(user_messages, st.one_of(st.none(), replies))


def flatten(pairs):
    history = []
    for user, reply in pairs:
        history.append(user)
        if reply is not None:
            history.append(reply)
    return history


@settings(max_examples=400)
@given(st.lists(turns, max_size=25), st.integers(min_value=0, max_value=30), st.text(min_size=1).filter(str.strip),
       st.sampled_from(POLICIES))
def test_any_history_and_window_gives_a_valid_request(pairs, window, new_text, policy):
    history = flatten(pairs)
    sent = build_request(history, new_text, window, policy)
    assert is_valid_request(sent)
    assert sent[-1].text == new_text
    past_exchanges = (len(sent) - 1) // 2
    if window:
        assert past_exchanges <= window
    usable = sum(1 for u, r in pairs if r is not None and r.text.strip())
    if policy == SLIDE or not window or usable <= window:
        assert past_exchanges == (min(window, usable) if window else usable)
    else:  # a full cache-aware window has let go of a block: between half of it and all of it
        assert window - window // 2 <= past_exchanges <= window


def test_window_keeps_the_latest_exchanges_and_never_starts_on_an_assistant():
    history = [Message(USER, "q1"), Message(ASSISTANT, "a1"), Message(USER, "q2"), Message(ASSISTANT, "a2"),
               Message(USER, "q3"), Message(ASSISTANT, "a3")]
    sent = build_request(history, "q4", 2, SLIDE)
    assert [m.text for m in sent] == ["q2", "a2", "q3", "a3", "q4"]
    # history[-N:] would start on "a2" here; the window never does.
    assert [m.text for m in build_request(history, "q4", 1, SLIDE)] == ["q3", "a3", "q4"]
    assert len(build_request(history, "q4", 0)) == 7
    # Cache-aware, a full window of 2 let go of one exchange at q3 and keeps that start at q4.
    assert [m.text for m in build_request(history, "q4", 2, CACHE_AWARE)] == ["q3", "a3", "q4"]


def test_failed_and_missing_replies_are_skipped_and_stopped_text_is_kept():
    history = [Message(USER, "q1"), Message(ASSISTANT, "", FAILED, "boom"),
               Message(USER, "q2"), Message(ASSISTANT, "half an ans", STOPPED),
               Message(USER, "q3")]  # killed before any reply was recorded
    sent = build_request(history, "q4", 0)
    assert [(m.role, m.text) for m in sent] == [(USER, "q2"), (ASSISTANT, "half an ans"), (USER, "q4")]
    assert window_indices(history, 0) == {2, 3}


def test_is_valid_request_rejects_what_the_api_refuses():
    assert not is_valid_request([])
    assert not is_valid_request([Message(ASSISTANT, "hi"), Message(USER, "x")])
    assert not is_valid_request([Message(USER, "a"), Message(USER, "b")])
    assert not is_valid_request([Message(USER, "a"), Message(ASSISTANT, " "), Message(USER, "b")])
    assert not is_valid_request([Message(USER, "a"), Message(ASSISTANT, "b")])
    assert is_valid_request([Message(USER, "a"), Message(ASSISTANT, "b"), Message(USER, "c")])
