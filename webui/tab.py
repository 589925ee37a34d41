"""What one browser tab holds: its chat, the past chats kept in the browser, and the edits the page offers.

The chats live in the browser (Gradio's BrowserState, localStorage), so a reload or a dropped connection
loses nothing: `TabState.restore` reads them back into a new server-side state. The owner secret that lets
this tab stop its own answer is made on the server and never leaves it (`to_browser` leaves it out): a
reloaded tab gets a new one. What comes back from the browser is checked like any other input.

Concurrency: Gradio hands every event of a tab the same TabState object. `epoch` tells a running answer
that the chat it writes to was replaced (New chat, Regenerate, an edit, another past chat): it stops
writing, and the chat service stops its generation.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass, field

from .chat import Conversation, Turn

MAX_CHATS = 20  # kept in the browser, the current one included
MAX_TURNS = 400
MAX_TEXT = 100_000  # characters of one message read back from the browser
TITLE_CHARS = 48
STORAGE_VERSION = 1
CUT_BY_RELOAD = "cut off: the page was reloaded or closed before the answer ended"


def _new_id() -> str:
    return secrets.token_hex(6)


@dataclass
class SavedChat:
    id: str
    title: str
    updated: float
    turns: list[Turn]


def title_of(turns: list[Turn]) -> str:
    first = next((t.content for t in turns if t.role == "user"), "")
    line = " ".join(first.split())
    return (line[:TITLE_CHARS - 1] + "…") if len(line) > TITLE_CHARS else (line or "New chat")


def _turn_to_dict(t: Turn) -> dict:
    out = {"role": t.role, "content": t.content}
    if t.figures:
        out["figures"] = t.figures
    if t.speed:
        out["speed"] = list(t.speed)
    return out


def _turn_from(data) -> Turn | None:
    if not isinstance(data, dict) or data.get("role") not in ("user", "assistant"):
        return None
    content, figures = data.get("content"), data.get("figures", "")
    if not isinstance(content, str) or not isinstance(figures, str):
        return None
    speed = data.get("speed")
    ok = (isinstance(speed, list) and len(speed) == 2
          and all(isinstance(x, (int, float)) and not isinstance(x, bool) and 0 <= x < 1e6 for x in speed))
    return Turn(data["role"], content[:MAX_TEXT], figures[:2000], (float(speed[0]), float(speed[1])) if ok else None)


def _chat_from(data) -> SavedChat | None:
    if not isinstance(data, dict) or not isinstance(data.get("id"), str) or not isinstance(data.get("turns"), list):
        return None
    turns = [t for t in (_turn_from(x) for x in data["turns"][:MAX_TURNS]) if t is not None]
    if turns and turns[-1].role == "assistant" and not turns[-1].figures:  # the tab went away mid-answer
        turns[-1] = Turn("assistant", turns[-1].content, CUT_BY_RELOAD)
    updated = data.get("updated")
    chat_id = data["id"][:32]
    if not turns or not chat_id:
        return None
    return SavedChat(chat_id, title_of(turns), float(updated) if isinstance(updated, (int, float)) else 0.0, turns)


@dataclass
class TabState:
    conversation: Conversation = field(default_factory=Conversation)
    chat_id: str = field(default_factory=_new_id)
    past: list[SavedChat] = field(default_factory=list)  # most recent first, never the current one
    speeds: list[tuple[float, float]] = field(default_factory=list)  # this session's answers, for the chart
    epoch: int = 0
    switching: bool = False  # this tab is switching models: it does not send meanwhile
    answering: int = 0  # the epoch of the answer being written now, 0 when none
    streams: int = 0  # answer generators of this tab still running (their last update may still be on its way)
    # who may stop this tab's answer: a secret made on the server at the first question, kept in the page's
    # server-side state only, so it cannot be forged the way a client-chosen session id can
    owner: str = ""

    def owned(self) -> str:
        if not self.owner:
            self.owner = secrets.token_urlsafe(16)
        return self.owner

    # -- a running answer and what replaces it ----------------------------------------------
    def begin(self) -> int:
        """A new answer (or a new chat) takes over: the one running until now stops writing."""
        self.epoch += 1
        return self.epoch

    def current(self, epoch: int) -> bool:
        return self.epoch == epoch

    def interrupt(self) -> None:
        """The answer being written is left as it stands (New chat, another past chat): mark it stopped."""
        last = self.conversation.turns[-1] if self.conversation.turns else None
        if last is not None and last.role == "assistant" and not last.figures:
            self.conversation = Conversation(self.conversation.turns[:-1] + [Turn("assistant", last.content,
                                                                                 "stopped")])

    def finish(self, conversation: Conversation) -> None:
        self.conversation = conversation
        last = conversation.turns[-1] if conversation.turns else None
        if last is not None and last.role == "assistant" and last.speed:
            self.speeds.append(last.speed)

    # -- the browser's copy -------------------------------------------------------------------
    def to_browser(self) -> dict:
        chats = ([self._saved()] if self.conversation.turns else []) + self.past
        return {"v": STORAGE_VERSION, "current": self.chat_id,
                "chats": [{"id": c.id, "title": c.title, "updated": c.updated,
                           "turns": [_turn_to_dict(t) for t in c.turns]} for c in chats[:MAX_CHATS]]}

    def _saved(self) -> SavedChat:
        return SavedChat(self.chat_id, title_of(self.conversation.turns), time.time(), list(self.conversation.turns))

    def restore(self, data) -> None:
        """The chats the browser kept (anything malformed is left out); the owner secret stays this tab's own."""
        chats = []
        if isinstance(data, dict) and isinstance(data.get("chats"), list):
            seen = set()
            for chat in (_chat_from(c) for c in data["chats"][:MAX_CHATS]):
                if chat is not None and chat.id not in seen:
                    seen.add(chat.id)
                    chats.append(chat)
        current = data.get("current") if isinstance(data, dict) else None
        mine = next((c for c in chats if c.id == current), None)
        self.past = [c for c in chats if c is not mine]
        self.conversation = Conversation(list(mine.turns)) if mine else Conversation()
        self.chat_id = mine.id if mine else _new_id()
        self.speeds = [t.speed for t in self.conversation.turns if t.speed]

    # -- chats --------------------------------------------------------------------------------
    def new_chat(self) -> None:
        """Keep the current chat among the past ones, start an empty one."""
        if self.conversation.turns:
            self.past = ([self._saved()] + self.past)[:MAX_CHATS - 1]
        self.conversation, self.chat_id = Conversation(), _new_id()

    def open(self, chat_id: str) -> bool:
        chosen = next((c for c in self.past if c.id == chat_id), None)
        if chosen is None or chat_id == self.chat_id:
            return False
        rest = [c for c in self.past if c is not chosen]
        if self.conversation.turns:
            rest.insert(0, self._saved())
        self.past = rest[:MAX_CHATS - 1]
        self.conversation, self.chat_id = Conversation(list(chosen.turns)), chosen.id
        return True

    def past_choices(self) -> list[tuple[str, str]]:
        """(label, id) of the past chats, most recent first."""
        return [(f"{c.title} · {time.strftime('%d %b %H:%M', time.localtime(c.updated))}" if c.updated else c.title,
                 c.id) for c in self.past]


# -- edits: what is resent, and what stays before it ------------------------------------------
def cut_at_user(conversation: Conversation, index: int) -> tuple[Conversation, str]:
    """The chat before the user message at `index` (or the last one before it), and that message: Regenerate
    resends it, an edit sends its new text instead, Undo puts it back into the box."""
    turns = conversation.turns
    index = min(max(index, 0), len(turns) - 1) if turns else -1
    while index >= 0 and turns[index].role != "user":
        index -= 1
    if index < 0:
        return Conversation(list(turns)), ""
    return Conversation(list(turns[:index])), turns[index].content


def last_user_index(conversation: Conversation) -> int:
    return max((i for i, t in enumerate(conversation.turns) if t.role == "user"), default=-1)


def event_index(index) -> int:
    """Gradio's event index: a message index, or (message, part) for a message with several parts."""
    if isinstance(index, (list, tuple)):
        index = index[0] if index else 0
    return int(index) if isinstance(index, int) and not isinstance(index, bool) else 0


# -- export -----------------------------------------------------------------------------------
def to_markdown(conversation: Conversation) -> str:
    out = [f"# {title_of(conversation.turns)}", ""]
    for t in conversation.turns:
        out += [f"**{'You' if t.role == 'user' else 'Assistant'}:**", "", t.content, ""]
        if t.figures:
            out += [f"<sub>{t.figures}</sub>", ""]
    return "\n".join(out)


def to_json(conversation: Conversation) -> str:
    """The chat in the shape chat APIs take (role, content), with the figures beside each answer."""
    return json.dumps({"title": title_of(conversation.turns), "messages": [_turn_to_dict(t)
                                                                           for t in conversation.turns]},
                      ensure_ascii=False, indent=2)
