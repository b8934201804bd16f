"""Serving stage: the twin behind an HTTP API (``twin serve``) and in the terminal (``twin chat``).

The app (Flask): ``app`` (the factory), ``security`` (keys, throttles, headers), ``errors``
(JSON errors), ``schema`` (request validation), one blueprint per area: ``api`` (/generate),
``openai_compat`` (/v1), ``feedback`` (/feedback), ``pages`` (/, /health, /metrics); ``state``
(what they share). No Flask in: ``replies`` (terminator and stop strings cut, no empty
replies), ``reply_log`` (the ids /feedback rates), ``decoding`` (sampling defaults + a
request's changes), ``keys``, ``ratelimit``, ``conversations``, ``metrics``; the prompt is built
by ``dataprocess.live_prompt`` (the training rules). Models: ``backends`` (which one to load),
``backend_base``, ``batching`` (llama.cpp, continuous batching), ``hf_backend`` (transformers
+ adapter), ``queueing``. Commands: ``cli`` (``twin serve``), ``chat`` (``twin chat``); ``tunnel``
(ngrok); ``static/chat.html`` (the page).
"""
