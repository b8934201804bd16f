"""The Ollama ``Modelfile`` written beside the GGUF (``ollama create twin -f Modelfile``).

Owns the translation of the tokenizer's Jinja chat template into Ollama's Go-template
``TEMPLATE`` for the chat formats the supported base models use (ChatML: SmolLM2, Qwen2;
Llama 3 headers), the default ``SYSTEM`` prompt (the twin's persona line, else the one the
template injects by itself), and the ``stop`` parameters: the reply terminator DONE that the
twin is trained to end with, and the end-of-turn token. For other templates the TEMPLATE is
left out (Ollama then falls back to the template stored in the GGUF) and a comment says so.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.atomic import atomic_file

CHATML_TEMPLATE = (
    "{{- range .Messages }}<|im_start|>{{ .Role }}\n"
    "{{ .Content }}<|im_end|>\n"
    "{{ end }}<|im_start|>assistant\n"
)
LLAMA3_TEMPLATE = (  # no <|begin_of_text|>: llama.cpp adds BOS itself for Llama 3
    "{{- range .Messages }}<|start_header_id|>{{ .Role }}<|end_header_id|>\n\n"
    "{{ .Content }}<|eot_id|>"
    "{{ end }}<|start_header_id|>assistant<|end_header_id|>\n\n"
)


@dataclass
class ChatFormat:
    name: str                      # "chatml", "llama3" or "unknown"
    template: str | None           # Ollama TEMPLATE, None when unknown
    end_of_turn: str | None        # token that ends a turn
    default_system: str | None = None
    notes: list[str] = field(default_factory=list)


def _render(tokenizer: Any, messages: list[dict[str, str]]) -> str | None:
    try:
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    except Exception:  # noqa: BLE001 - a template that cannot render is "unknown"
        return None


def chat_format(tokenizer: Any) -> ChatFormat:
    """Recognise the chat format of an HF tokenizer's chat template."""
    template = getattr(tokenizer, "chat_template", None)
    if not template:
        return ChatFormat("unknown", None, None, notes=["the tokenizer has no chat template"])
    probe = [{"role": "user", "content": "PROBE"}]
    rendered = _render(tokenizer, probe) or ""
    if "<|im_start|>" in rendered and "<|im_end|>" in rendered:
        fmt = ChatFormat("chatml", CHATML_TEMPLATE, "<|im_end|>")
        user_turn = "<|im_start|>user\nPROBE<|im_end|>\n"
        prefix = rendered.split(user_turn, 1)[0] if user_turn in rendered else ""
        head = "<|im_start|>system\n"
        if prefix.startswith(head) and prefix.endswith("<|im_end|>\n"):
            fmt.default_system = prefix[len(head):-len("<|im_end|>\n")]
        return fmt
    if "<|start_header_id|>" in rendered and "<|eot_id|>" in rendered:
        fmt = ChatFormat("llama3", LLAMA3_TEMPLATE, "<|eot_id|>")
        user_turn = "<|start_header_id|>user<|end_header_id|>\n\nPROBE<|eot_id|>"
        prefix = rendered.split(user_turn, 1)[0] if user_turn in rendered else ""
        head = "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"
        if prefix.startswith(head) and prefix.endswith("<|eot_id|>"):
            fmt.default_system = prefix[len(head):-len("<|eot_id|>")]
        return fmt
    from export.vocab import end_of_turn_token

    # Gemma's <end_of_turn>, Phi-3's <|end|>, ...: the marker that closes a turn, else EOS
    eot = end_of_turn_token(template, set(tokenizer.get_vocab())) or getattr(tokenizer, "eos_token", None)
    return ChatFormat("unknown", None, eot, notes=[
        "chat template not recognised as ChatML or Llama 3; Ollama will use the GGUF's own"])


def _quote(text: str) -> str:
    if '"""' in text:
        text = text.replace('"""', '\\"\\"\\"')
    return f'"""{text}"""'


def render_modelfile(gguf_name: str, fmt: ChatFormat, done: str, system: str | None = None,
                     parameters: dict[str, Any] | None = None, notes: list[str] = ()) -> str:
    """The Modelfile text for ``gguf_name`` (a file name relative to the Modelfile).

    ``system`` is the default system prompt (the twin's persona line); without it, the one
    the chat template injects by itself, if any.
    """
    lines = ["# Ollama Modelfile written by `twin export`.",
             "# Use: ollama create twin -f Modelfile && ollama run twin",
             f"FROM ./{gguf_name}", ""]
    for note in [*fmt.notes, *notes]:
        lines.append(f"# note: {note}")
    if fmt.template:
        lines.append(f"TEMPLATE {_quote(fmt.template)}")
    system = system or fmt.default_system
    if system:
        lines.append(f"SYSTEM {_quote(system)}")
    lines.append(f'PARAMETER stop "{done}"')
    if fmt.end_of_turn:
        lines.append(f'PARAMETER stop "{fmt.end_of_turn}"')
    for key, value in (parameters or {}).items():
        lines.append(f"PARAMETER {key} {value}")
    return "\n".join(lines) + "\n"


def write_modelfile(path: Path | str, gguf_name: str, tokenizer: Any, done: str,
                    system: str | None = None, parameters: dict[str, Any] | None = None,
                    notes: list[str] = ()) -> Path:
    """Write the Modelfile for ``gguf_name`` at ``path`` (atomically). Returns ``path``."""
    path = Path(path)
    text = render_modelfile(gguf_name, chat_format(tokenizer), done, system, parameters, notes)
    with atomic_file(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path
