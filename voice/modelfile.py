"""The Ollama ``Modelfile`` written beside the GGUF (``ollama create twin -f Modelfile``): the
twin's voice in Ollama's terms, from the same values as the GGUF's (voice.exported).

Owns the translation of the tokenizer's Jinja chat template into Ollama's Go-template
``TEMPLATE`` for the chat formats the supported base models use (ChatML: SmolLM2, Qwen2;
Llama 3 headers), the default ``SYSTEM`` prompt (the twin's persona line, else the one the
template injects by itself), the ``stop`` parameters (the end-of-turn token the twin ends a
reply with, and ``DONE``, which a twin trained before that rule still writes), and the decoding
defaults (:func:`parameters`: what the GGUF's ``general.sampling.*`` keys say, under Ollama's
names). For other templates the TEMPLATE is left out (Ollama then falls back to the template
stored in the GGUF) and a comment says so. :func:`refresh_parameters` rewrites only the decoding
lines, when ``twin eval`` has chosen new defaults.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.atomic import atomic_file, write_atomic
from core.settings import Sampling

from .decoding import Decoding

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
    # Gemma's <end_of_turn>, Phi-3's <|end|>, ...: the token that closes a turn, else EOS
    eot = _turn_end_token(tokenizer) or getattr(tokenizer, "eos_token", None)
    return ChatFormat("unknown", None, eot, notes=[
        "chat template not recognised as ChatML or Llama 3; Ollama will use the GGUF's own"])


def _turn_end_token(tokenizer: Any) -> str | None:
    """The token the chat template closes an assistant turn with (the twin's end of a reply)."""
    from .decoding import turn_end_text

    try:
        tail = turn_end_text(lambda m: tokenizer.apply_chat_template(m, tokenize=False))
    except Exception:  # noqa: BLE001 - a template that cannot render an assistant turn
        return None
    ids = tokenizer(tail, add_special_tokens=False)["input_ids"] if tail.strip() else []
    return tokenizer.convert_ids_to_tokens(ids[0]) if ids else None


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


def parameters(sampling: Sampling) -> dict[str, Any]:
    """The decoding defaults as Ollama ``PARAMETER`` lines (the fitted logit biases have no
    Ollama parameter: :func:`bias_note` says so)."""
    d = Decoding.from_sampling(sampling)
    out: dict[str, Any] = {"temperature": d.temperature, "top_k": d.top_k, "top_p": d.top_p, "min_p": d.min_p,
                           "repeat_penalty": d.repeat_penalty, "repeat_last_n": d.penalty_last_n,
                           "num_predict": d.max_tokens}
    if d.presence_penalty:
        out["presence_penalty"] = d.presence_penalty
    if d.frequency_penalty:
        out["frequency_penalty"] = d.frequency_penalty
    return out


def bias_note(sampling: Sampling, biases: dict[int, float]) -> list[str]:
    """A note on the fitted [sampling] biases, which no Modelfile parameter takes: how to pass them
    to llama.cpp by hand (twin serve applies them by itself, from the GGUF's twin.sampling key)."""
    if not biases:
        return []
    flags = " ".join(f"--logit-bias {token}{bias:+g}" for token, bias in biases.items())
    return [f"twin's length and separator biases (end {sampling.end_bias:+g}, separator "
            f"{sampling.separator_bias:+g}) have no Modelfile parameter; twin serve applies them, and "
            f"llama.cpp's llama-cli/llama-server take {flags}"]


def refresh_parameters(path: Path | str, sampling: Sampling) -> bool:
    """Rewrite the decoding ``PARAMETER`` lines of the Modelfile at ``path`` (stops, template and
    system line kept). False when there is no such file."""
    path = Path(path)
    if not path.is_file():
        return False
    names = set(parameters(Sampling())) | {"presence_penalty", "frequency_penalty"}
    kept = [line for line in path.read_text(encoding="utf-8").splitlines()
            if not (line.startswith("PARAMETER ") and line.split()[1] in names)]
    kept += [f"PARAMETER {key} {value}" for key, value in parameters(sampling).items()]
    write_atomic(path, "\n".join(kept) + "\n")
    return True
