"""What a chat session holds of its stored conversation, and how it is kept up to date with the
store (the truth): the latest page (`LATEST` questions and everything after them: what the page
draws and the widest window sends), the totals as the database sums them, and of what comes before
only its sums (`earlier`); older messages load when asked for (`load_earlier`, `reach`).

`Held` is the reading half of `chat_core.session.ChatSession`; the attributes it works on are set
up there: store, owner, conversation_id, conversation, records, everything, earlier, title,
settings, listed, and the private _questions, _summed, _seen, _pending.

A reply this session asked for is taken in from its job once it ended (`catch_up`, `settled_here`)
when one statement shows the store holds just that since the session last read; anything else
moved (another view wrote, chose a version, renamed; the page would move on), it reads again.
"""

from __future__ import annotations

from typing import Sequence

from . import errors
from .conversation import ASSISTANT, STREAMING, USER, Message
from .database import storable
from .kept import KEPT, key as kept_key
from .loading import Earlier
from .storage import ConversationInfo, StoredConversation
from .usage import TurnRecord

LATEST = 40  # questions a session holds: the page's latest 60 messages and the widest window (20 exchanges)


class Held:
    def last_saved_id(self) -> int | None:
        """The newest stored message this session holds, any version."""
        return max((m.id for m in self.everything if m.id is not None), default=None)

    def refresh(self) -> bool:
        """Reload the conversation (its latest page, as many questions as held) from the store;
        False when it is gone (deleted elsewhere).

        Messages the store refused stay, at the end, marked unsaved. `listed` is then the owner's
        conversation list fingerprint read with it (None when nothing was read)."""
        self.listed = None
        if self.store is None or self.conversation_id is None:
            return True
        try:
            stored = self.store.load(self.conversation_id, self.owner, latest=self._questions, known=self._summed)
        except errors.StorageError:
            self._hold_kept()
            raise
        if stored is None:
            return False
        self._take(stored, unsaved=[m for m in self.messages if m.unsaved])
        return True

    def _hold_kept(self) -> None:
        """The store cannot be read: hold what it refused (a reply that ended meanwhile, written by any
        view of this process) in the place of the reply shown as streaming to the same question."""
        kept = [m for m in KEPT.of(kept_key(self.store.url, self.owner, self.conversation_id))
                if not any(m is n for n in self.messages)]
        answered = {m.reply_to for m in kept if m.role == ASSISTANT}
        if kept:
            self.conversation.messages = [m for m in self.messages
                                          if not (m.status == STREAMING and m.reply_to in answered)] + kept

    def _take(self, stored: StoredConversation, unsaved: Sequence[Message] = ()) -> None:
        info = stored.info
        kept = KEPT.of(kept_key(self.store.url, self.owner, info.id))  # refused here or in another view
        unsaved = [*kept, *(m for m in unsaved if not any(m is k for k in kept))]
        self.conversation.messages = stored.messages + unsaved
        self.everything = stored.versions
        self.records = stored.records
        self._take_head(info, stored.summed, stored.listed)
        # Of what lies before the page, only the sums (read once per process, chat_core.loading.SharedEarlier).
        self.earlier = self.store.earlier(info.id, stored.start) if stored.start else Earlier()

    def _take_head(self, info: ConversationInfo, summed, listed: tuple | None) -> None:
        self.conversation.system = info.system
        self._summed = summed
        self.listed = listed
        self.title = info.title
        self.settings = self.settings.with_(system=info.system, window=info.window, thinking=info.thinking,
                                            web=bool(info.web))
        self._apply_prompt_cache()  # the backend follows the stored thinking and web settings
        self._seen = self.last_saved_id()

    def catch_up(self) -> bool:
        """Bring the session up to the store; False when its conversation is gone (deleted elsewhere).
        A reply this session asked for that ended since is taken in from its job (`settled_here`),
        else the conversation is read again (`refresh`)."""
        pending = self._pending
        if pending is not None and pending[1].job is not None and pending[1].job.done:
            self._pending = None
            plan = pending[0]
            try:
                if plan.result is not None and not plan.settled and self.settled_here(plan):
                    return True
            except errors.StorageError:
                pass  # the store cannot be read: `refresh` says so, holding what it refused
        return self.refresh()

    def settled_here(self, plan) -> bool:
        """Take in the ended reply of `plan` (chat_core.reply_plan.Plan: a message sent, not a regenerate
        or an edit) without reading the conversation again, when one statement (`Store.head`) shows the
        store holds exactly what this session holds and that reply since it last read: the newest message
        is that reply, the one usage row written since is its, the active messages are the ones held; the
        totals and the conversation's row come from that statement. False (nothing changed) otherwise:
        a version chosen or a message written elsewhere, a reply or message the store refused, a
        question with files, or a page that would move on (the conversation outgrew what is held)."""
        message, record = plan.result
        user = plan.user
        if (self.store is None or self.conversation_id is None or plan.replaced is not None or not plan.takes_place
                or message.id is None or record.message_id != message.id or user.id is None or user.attachments
                or self.earlier.messages
                or KEPT.of(kept_key(self.store.url, self.owner, self.conversation_id))):
            return False
        thread = self.messages
        if thread and thread[-1].id == message.id and thread[-1].status == STREAMING:  # read while it streamed
            thread = thread[:-1]
        if (not thread or thread[-1].id != user.id or any(m.id is None or m.unsaved or m.status == STREAMING
                                                          for m in thread)
                or sum(m.role == USER for m in thread) > self._questions):
            return False
        ended = Message(ASSISTANT, storable(message.text), message.status,
                        storable(message.error) if message.error is not None else None, id=message.id,
                        reply_to=user.id, thinking=message.thinking, citations=message.citations)
        everything = [m for m in self.everything if m.id != message.id]
        everything += [m for m in (thread[-1], ended) if not any(n.id == m.id for n in everything)]
        held = [m.id for m in everything if m.active]
        head = self.store.head(self.conversation_id, self.owner, self._summed, held)
        if head is None or not head.same or head.newest != message.id or head.turns_since != 1 \
                or head.replied != message.id:
            return False
        plan.settled = True
        self.conversation.messages = [*thread, ended]
        self.everything = everything
        self.records = [*self.records, record]
        self._take_head(ConversationInfo(*head.info), head.summed, head.listed)
        return True

    def load_earlier(self, questions: int = LATEST) -> None:
        """Hold `questions` more of the questions before the ones held (and their replies)."""
        if self.earlier.messages:
            self._questions += questions
            self.refresh()

    def reach(self, message_id: int) -> bool:
        """Hold every message from `message_id` (a search hit) on; False when it is not in this conversation."""
        if self.store is None or not self.stored:
            return False
        needed = self.store.questions_since(self.conversation_id, message_id)
        if needed > self._questions:
            self._questions = needed
            self.refresh()
        return needed > 0

    def whole(self) -> tuple[list[Message], list[TurnRecord]]:
        """Every message of the conversation as shown, and every usage record (an export, the Tokens
        page): read from the store, the ones it refused (in memory, unsaved) after them."""
        if self.store is None or not self.stored:
            return list(self.messages), list(self.records)
        stored = self.store.load(self.conversation_id, self.owner)
        if stored is None:
            return list(self.messages), list(self.records)
        return stored.messages + [m for m in self.messages if m.unsaved], stored.records

    def changed_elsewhere(self, newest: int | None = None) -> bool:
        """True when another view wrote to this conversation since this one last read it (`newest`:
        its newest message id as the caller just read it, `Store.look`; else read here)."""
        if self.store is None or self.conversation_id is None:
            return False
        return (newest if newest is not None else self.store.last_message_id(self.conversation_id)) != self._seen

    def _sync(self) -> None:
        if self.changed_elsewhere() and not self.refresh():
            raise errors.StorageError("This conversation was deleted (in another tab?): start a new chat to send it.")
