"""Shared test helpers (no tests here): tiny models built in the tests, a scripted server
backend, export model builders. Importable as ``helpers.*`` because pytest puts ``tests/``
(the folder of the root conftest.py) on the import path."""
