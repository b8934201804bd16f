"""voice.modelfile: the Ollama Modelfile beside the GGUF."""
from __future__ import annotations


def test_modelfile_chatml_with_default_system(tiny):
    from transformers import AutoTokenizer

    from voice.modelfile import chat_format, render_modelfile

    tok = AutoTokenizer.from_pretrained(tiny["llama"])
    tok.chat_template = (  # SmolLM2's: injects a default system prompt
        "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
        "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM<|im_end|>\n' }}{% endif %}"
        "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
        "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")
    fmt = chat_format(tok)
    assert fmt.name == "chatml" and fmt.default_system == "You are a helpful AI assistant named SmolLM"
    text = render_modelfile("twin-Q8_0.gguf", fmt, "DONE", parameters={"temperature": 0.7, "num_predict": 64})
    assert "FROM ./twin-Q8_0.gguf" in text
    assert "<|im_start|>{{ .Role }}" in text
    assert 'PARAMETER stop "DONE"' in text and 'PARAMETER stop "<|im_end|>"' in text
    assert 'SYSTEM """You are a helpful AI assistant named SmolLM"""' in text
    assert "PARAMETER temperature 0.7\n" in text and "PARAMETER num_predict 64\n" in text


def test_unknown_template_falls_back_to_the_gguf_one(tiny):
    from transformers import AutoTokenizer

    from voice.modelfile import chat_format, render_modelfile

    tok = AutoTokenizer.from_pretrained(tiny["gemma2"])
    fmt = chat_format(tok)
    assert fmt.name == "unknown" and fmt.template is None
    text = render_modelfile("twin-F16.gguf", fmt, "DONE", system="you are maya.")
    assert "TEMPLATE" not in text and "# note:" in text and 'SYSTEM """you are maya."""' in text
    assert 'PARAMETER stop "<end_of_turn>"' in text  # Gemma's end of turn, not its <eos>
