"""The app as a whole: it builds without a server, serves its API, survives bad input."""

from __future__ import annotations

from pathlib import Path

import pytest

import app


def test_build_demo_has_the_five_tabs() -> None:
    demo = app.build_demo()
    labels = [block.label for block in demo.blocks.values() if type(block).__name__ == "Tab"]
    assert labels == ["Tokenizer", "Next token", "Step by step", "generate() playground",
                      "Compare strategies"], labels


def test_models_endpoint_describes_the_offer(client: object, tiny_gpt2_dir: Path) -> None:
    offer = client.predict(api_name="/models")
    assert offer["default"] == str(tiny_gpt2_dir), offer
    assert "embedded" in offer["choices"] and "distilgpt2" in offer["choices"], offer


def test_load_model_endpoint_loads_and_describes(client: object, tiny_llama_dir: Path) -> None:
    info = client.predict(model=str(tiny_llama_dir), api_name="/load_model")
    assert info["architecture"] == "LlamaForCausalLM" and info["context_length"] == 256, info
    assert info["special_tokens"]["bos"] == {"id": 1, "text": "<s>"}, info


@pytest.mark.parametrize(
    ("name", "message"),
    [("./missing-folder", "No file or folder at './missing-folder'"), ("distilgpt2", "HF_HUB_OFFLINE=1")],
)
def test_bad_model_names_get_a_message_and_the_app_keeps_serving(
    client: object, tiny_gpt2_dir: Path, name: str, message: str
) -> None:
    with pytest.raises(Exception, match=message):
        client.predict(model=name, api_name="/load_model")
    assert client.predict(model="", api_name="/load_model")["name"] == str(tiny_gpt2_dir), "still serving"


def test_a_message_echoing_a_huge_value_is_cut_short(tiny_gpt2_dir: Path, tiny_llama_dir: Path) -> None:
    import gradio as gr

    from ui.errors import MAX_MESSAGE
    from ui.tokenizer_tab import chat_template, tokenize_text

    with pytest.raises(gr.Error) as caught:
        tokenize_text("Hi", str(tiny_gpt2_dir), add_special_tokens="a" * 10_001)
    text = caught.value.message
    assert text.startswith("`add_special_tokens` has to be true or false, but is 'aaa"), text[:200]
    assert len(text) < MAX_MESSAGE + 40 and "characters left out" in text, f"{len(text)} characters: {text[-80:]}"
    with pytest.raises(gr.Error) as caught:  # the end says which message of the conversation is wrong
        chat_template([{"role": "user", "content": "Hi"}, {"role": "a" * 10_001}], str(tiny_llama_dir))
    assert caught.value.message.endswith("aaa' (message 1)"), caught.value.message[-200:]


def test_switching_model_in_the_ui_keeps_the_old_one_on_failure(tiny_gpt2_dir: Path) -> None:
    from ui.header import switch_model

    kept, status = switch_model("./missing-folder", str(tiny_gpt2_dir), progress=lambda *a, **k: None)
    assert kept == str(tiny_gpt2_dir), kept
    assert "No file or folder" in status and "Still serving" in status, status


def test_a_links_model_message_is_written_after_the_page_loads_status(tiny_gpt2_dir: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Both the header (the serving model) and a link (its model, or why it cannot load) write the status line
    when a page opens: the link's is chained after the header's, so it is never overwritten by it."""
    monkeypatch.setenv("STEPGEN_MODEL", str(tiny_gpt2_dir))
    demo = app.build_demo()
    ids = {getattr(fn.fn, "__name__", ""): key for key, fn in demo.fns.items()}
    header, restore = demo.fns[ids["show_current"]], demo.fns[ids["restore"]]
    assert header.targets and header.targets[0][1] == "load", header.targets
    assert restore.trigger_after == ids["show_current"], "the link's view is restored once the status has landed"


def test_the_first_view_is_settled_against_the_controls_on_screen(tiny_gpt2_dir: Path, tiny_gpt2: object,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """After the restore, one event reads the controls then on screen: it recomputes nothing when they are the
    values the first view was computed from, and the views of a tab whose controls a person changed meanwhile."""
    import gradio as gr
    from test_safety import _Answering, as_page

    monkeypatch.setenv("STEPGEN_MODEL", str(tiny_gpt2_dir))
    demo = app.build_demo()
    ids = {getattr(fn.fn, "__name__", ""): key for key, fn in demo.fns.items()}
    restore, settle = demo.fns[ids["restore"]], demo.fns[ids["settle"]]
    assert settle.trigger_after == ids["restore"], "the first view is settled once it has landed"
    request = as_page(query_params={})
    with _Answering(request):
        first = restore.fn(request, str(tiny_gpt2_dir))
    model = str(tiny_gpt2_dir)

    def on_screen(**typed: str) -> list[object]:
        values = []
        for block in settle.inputs:
            if getattr(block, "elem_id", None) in typed:
                values.append(typed[block.elem_id])
            elif isinstance(block, gr.State) and block not in first:
                values.append(model)  # the model's state: the one the page serves
            else:
                values.append(first.get(block, block.value))
        return values

    assert isinstance(settle.fn(*on_screen()), type(gr.skip())), "nothing typed, yet the views were computed again"
    again = settle.fn(*on_screen(**{"tok-text": "It was a dark and stormy"}))
    chips = next(block for block in again if getattr(block, "elem_id", None) == "tok-chips")
    typed = tiny_gpt2.tokenizer("It was a dark and stormy")["input_ids"]
    assert again[chips].count('title="id ') == len(typed) and all(f'title="id {i}"' in again[chips] for i in typed)
    assert not any((getattr(block, "elem_id", None) or "").startswith("next-") for block in again), \
        "only the edited tab is computed again"
