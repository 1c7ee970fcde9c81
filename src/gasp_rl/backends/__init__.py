"""Policy backends: the embedded model, Hugging Face transformers, vLLM, OpenAI-compatible servers,
and a scripted fake for tests.  :mod:`gasp_rl.backends.factory` picks one from the config."""

from __future__ import annotations

from typing import Any

from gasp_rl.seams import Chat


def chat_prompt_text(tokenizer: Any, chat: Chat) -> str:
    """``chat`` rendered with the tokenizer's chat template, ending where the model writes next.

    A chat whose last message is the assistant's is a *prefill* (for example an opening code
    fence): the model continues that message instead of starting a new one."""
    prefill = bool(chat) and chat[-1]["role"] == "assistant"
    return tokenizer.apply_chat_template(
        chat, tokenize=False, add_generation_prompt=not prefill, continue_final_message=prefill
    )
