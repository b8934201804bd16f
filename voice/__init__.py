"""The twin's voice: one definition of how it speaks, and the runtimes that speak through it.

Below the stages (it imports ``core`` and the prompt format of ``dataprocess`` only), so that
everything that talks to the twin shares it: ``twin eval``, training's checks, ``twin serve``
(each backend), ``twin chat``, the bots, and the exported GGUF / Modelfile.

- ``decoding``   the decoding contract (:class:`~voice.decoding.Decoding`): token cap, sampler
                 order and constants, first-token bans, retries, stop strings, logit biases
- ``backend``    what every runtime's backend shares: the gate, the deadline, the prompt's
                 tokenization in pieces (a message cannot forge a turn)
- ``llama``      the llama.cpp runtime: continuous batching over a GGUF, llama.cpp's samplers
- ``hf``         the transformers runtime: the same samplers as logits processors, a streaming
                 backend and batched generation
- ``replies``    raw generation -> what a client sees: terminator and stops cut, never empty
- ``queueing``   the bounded wait for a model that generates one reply at a time
- ``exported``   the voice written into the exported model: the GGUF's chat template (the
                 twin's system line by default), its ``general.sampling.*`` keys
- ``modelfile``  the same voice in Ollama's terms, beside the GGUF
- ``llama_runtime`` opening GGUFs with llama-cpp-python safely (AMX crash guard, threads)
"""
