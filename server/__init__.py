"""Serving stage: the Flask API over a llama.cpp backend, ngrok tunnel (``twin serve``)."""
