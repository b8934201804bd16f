"""The workspace contract every stage shares, defined once.

twin's stages (dataprocess -> trainer -> export -> server) talk only through files in a
workspace directory. What those files are called, how they are written, what the settings
file holds and how a failure is reported are the same for every stage, so they live here,
below all of them; ``core`` imports nothing from the stages.

- ``errors``     one error base with the exit codes every command uses (2 bad input, 1 internal)
- ``atomic``     write to a temp sibling, then rename: never a half-written output
- ``artifacts``  every file and directory name in a workspace (model GGUF, LoRA GGUF, ...)
- ``terminator`` the reply terminator ``DONE`` and the message separator ``" | "``
- ``settings``   twin.toml as typed dataclasses: persona, data rules, base model, sampling
- ``base_ref``   the base model recorded by name and content fingerprint, not by path
- ``workspace``  the workspace directory: its paths and its settings
"""
