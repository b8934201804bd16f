"""core.base_ref: a base model found by its content fingerprint on another machine."""
import shutil


from core.base_ref import fingerprint, locate_local, missing_base_error


def _model(root, weights=b"\0" * 4096):
    root.mkdir(parents=True)
    (root / "config.json").write_text('{"model_type": "llama"}')
    (root / "model.safetensors").write_bytes(len(b"{}").to_bytes(8, "little") + b"{}" + weights)
    return root


def test_fingerprint_follows_content_not_location(tmp_path):
    a = _model(tmp_path / "a")
    b = tmp_path / "elsewhere" / "b"
    shutil.copytree(a, b)
    assert fingerprint(a) == fingerprint(b)
    (b / "model.safetensors").write_bytes((2).to_bytes(8, "little") + b"{}" + b"\1" * 4096)
    assert fingerprint(a) != fingerprint(b)


def test_a_copied_workspace_finds_its_base_in_the_cache(tmp_path, monkeypatch):
    original = _model(tmp_path / "laptop" / "my-base")
    recorded = fingerprint(original)
    monkeypatch.setenv("TWIN_CACHE", str(tmp_path / "cache"))
    assert locate_local("/no/such/dir", recorded) is None
    shutil.copytree(original, tmp_path / "cache" / "models" / "any-name")
    assert locate_local("/no/such/dir", recorded) == tmp_path / "cache" / "models" / "any-name"
    assert locate_local(str(original), recorded) == original.resolve()


def test_a_changed_directory_of_the_recorded_name_is_not_taken(tmp_path, monkeypatch):
    monkeypatch.setenv("TWIN_CACHE", str(tmp_path / "cache"))
    base = _model(tmp_path / "base")
    recorded = fingerprint(base)
    (base / "config.json").write_text('{"model_type": "mistral"}')
    assert locate_local(str(base), recorded) is None
    error = missing_base_error(str(base), recorded)
    assert error.exit_code == 2 and "TWIN_CACHE" not in str(error) and str(tmp_path / "cache") in str(error)
