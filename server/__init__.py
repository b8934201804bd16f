"""Serving stage: the twin behind an HTTP API (``twin serve``) and in the terminal (``twin chat``).

Modules: ``app`` (Flask routes, auth, limits, errors), ``openai_compat`` (/v1 routes),
``schema`` (request validation), ``replies`` (DONE filtering, streamed or whole),
``conversations`` (server-side history), ``ratelimit``, ``feedback`` (SQLite ratings ->
training records), ``backends`` (llama.cpp, transformers + adapter), ``batching``
(continuous batching over llama.cpp), ``queueing`` (bounded queue, timeouts), ``tunnel``
(ngrok), ``cli`` (``twin serve``), ``chat`` (``twin chat``), ``static/chat.html`` (the page).
"""
