"""The Step tab's converters and settings, without a browser: how the text reads, which settings it offers."""

from __future__ import annotations

import html
import re
from dataclasses import fields

from stepgen import stepping
from stepgen.settings import DecodingSettings
from ui import step_tab


def test_a_character_split_over_tokens_reads_as_itself(tiny_gpt2: object) -> None:
    session = stepping.start(tiny_gpt2.name, tiny_gpt2.tokenizer("I love")["input_ids"])
    session, _ = stepping.force_text(tiny_gpt2, session, " you 💜", DecodingSettings())
    pieces = tiny_gpt2.tokenizer.convert_ids_to_tokens(list(session.ids))
    assert len(pieces) - len(session.prompt_ids) > 2, f"the tiny tokenizer should split the emoji: {pieces}"
    shown = html.unescape(step_tab.text_html(tiny_gpt2, session, None))
    assert "💜" in shown and "<F0" not in shown, f"the emoji is shown as bytes: {shown}"
    assert shown.count("step-cont") >= 1, "the other pieces of the character are not marked as its continuation"
    titles = re.findall(r"part of ' ?💜' \(bytes ([0-9A-F ]+)\)", shown)
    assert len(titles) >= 2 and all(titles), f"hovering a piece no longer gives its own bytes: {titles}"


def test_the_step_tab_offers_every_decoding_setting() -> None:
    offered = set(step_tab.SETTING_NAMES)
    every = {f.name for f in fields(DecodingSettings)}
    assert offered == every, f"the Step tab lacks {every - offered}"
