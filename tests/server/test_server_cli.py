"""`twin serve` (waitress replaced by a recorder): options, --public, one-line errors, and the
transformers + adapter backend on a tiny model with a tiny LoRA adapter built here."""
import pytest
from click.testing import CliRunner

import server.cli
from core.base_ref import fingerprint
from core.settings import Persona, Settings, TrainRecord
from core.workspace import Workspace
from server.tunnel import TunnelError
from twin_cli import main


@pytest.fixture
def served(monkeypatch):
    """Run `twin serve ...`; returns (result, the waitress.serve call) without serving."""
    import waitress

    calls = []
    monkeypatch.setattr(waitress, "serve", lambda app, **kw: calls.append((app, kw)))

    def run(*args):
        result = CliRunner().invoke(main, ["serve", *map(str, args)])
        return result, (calls[-1] if calls else None)

    return run


def test_public_generates_a_key_prints_url_and_curl(served, monkeypatch, tiny_gguf):
    monkeypatch.setattr(server.cli, "open_tunnel", lambda port, **kw: "https://abc.ngrok.app")
    result, (app, kw) = served("--model", tiny_gguf, "--public", "--port", 5099, "--threads", 1)
    assert result.exit_code == 0, result.output
    key = result.output.split("generated one: ")[1].split()[0]
    assert "public URL: https://abc.ngrok.app" in result.output
    assert f"curl -X POST https://abc.ngrok.app/generate -H 'Authorization: Bearer {key}'" in result.output
    assert kw["port"] == 5099 and kw["host"] == "127.0.0.1" and kw["threads"] >= 8
    assert "authentication: on (1 key)" in result.output
    client = app.test_client()
    assert client.get("/v1/models").status_code == 401
    assert client.get("/v1/models", headers={"Authorization": f"Bearer {key}"}).get_json()["data"][0]["id"] == "twin-F16"


def test_tunnel_failure_is_one_line_and_serving_goes_on(served, tiny_gguf, tmp_path):
    result, call = served("--model", tiny_gguf, "--public", "--api-key", "tunnel-key-1", "--ngrok-path",
                          tmp_path / "ngrok")
    assert result.exit_code == 0 and call is not None
    assert "warning: ngrok agent not found" in result.output and "serving locally only" in result.output
    assert "Traceback" not in result.output


def test_open_tunnel_turns_any_failure_into_tunnel_error(monkeypatch):
    from pyngrok import ngrok

    from server.tunnel import open_tunnel

    def boom(*args, **kwargs):
        raise ConnectionRefusedError("network is unreachable")

    monkeypatch.setattr(ngrok, "connect", boom)
    with pytest.raises(TunnelError, match="could not open the ngrok tunnel"):
        open_tunnel(5000)


@pytest.mark.parametrize("args, fragment", [
    ([], "exactly one of --workspace or --model"),
    (["--model", "/nonexistent/twin.gguf"], "model file not found"),
    (["--model", "x.gguf", "--rate-limit", "lots"], "rate limit"),
    (["--model", "x.gguf", "--backend", "transformers"], "needs --workspace"),
    (["--model", "x.gguf", "--api-key", ""], "--api-key is empty"),
    (["--model", "x.gguf", "--api-key", "   "], "--api-key is empty"),
    (["--model", "x.gguf", "--api-key", "short"], "shorter than"),
    (["--model", "x.gguf", "--api-key", "long-enough-key", "--api-key-file", "keys.txt"], "not both"),
    (["--model", "x.gguf", "--api-key-file", "/nonexistent/keys.txt"], "cannot read the API key file"),
])
def test_serve_errors_are_one_line_exit_2(served, args, fragment):
    result, call = served(*args)
    assert result.exit_code == 2 and call is None
    assert fragment in result.output and "Traceback" not in result.output


def test_empty_key_from_the_environment_is_refused_too(served, monkeypatch, tiny_gguf):
    monkeypatch.setenv("TWIN_API_KEY", " ")
    result, call = served("--model", tiny_gguf)
    assert result.exit_code == 2 and call is None and "empty" in result.output


def test_start_up_line_says_whether_authentication_is_on(served, tiny_gguf, tmp_path):
    result, (app, kw) = served("--model", tiny_gguf, "--threads", 1, "--parallel", 1)
    assert result.exit_code == 0 and "authentication: OFF" in result.output
    assert app.test_client().get("/v1/models").status_code == 200
    (tmp_path / "keys").write_text("alex alex-key-123\nsam sam-key-4567\n")
    result, (app, kw) = served("--model", tiny_gguf, "--threads", 1, "--parallel", 1, "--api-key-file", tmp_path / "keys")
    assert result.exit_code == 0 and "authentication: on (2 keys)" in result.output
    client = app.test_client()
    assert client.get("/v1/models").status_code == 401
    assert client.get("/v1/models", headers={"Authorization": "Bearer sam-key-4567"}).status_code == 200


def test_serving_beyond_loopback_without_a_key_generates_one(served, tiny_gguf):
    result, (app, kw) = served("--model", tiny_gguf, "--host", "0.0.0.0", "--threads", 1, "--parallel", 1)
    assert result.exit_code == 0 and kw["host"] == "0.0.0.0"
    key = result.output.split("generated one: ")[1].split()[0]
    assert "--host 0.0.0.0 needs an API key" in result.output and "authentication: on" in result.output
    client = app.test_client()
    assert client.get("/v1/models").status_code == 401
    assert client.get("/v1/models", headers={"Authorization": f"Bearer {key}"}).status_code == 200


def test_waitress_gets_the_apps_limits(served, tiny_gguf):
    from server.app import MAX_BODY_BYTES

    result, (app, kw) = served("--model", tiny_gguf, "--threads", 1, "--parallel", 1, "--connections", 50)
    assert result.exit_code == 0
    assert kw["max_request_body_size"] == MAX_BODY_BYTES and kw["connection_limit"] == 50
    assert 0 < kw["channel_timeout"] <= 120 and kw["max_request_header_size"] <= 64 * 1024


def test_unwritable_feedback_db_is_one_line(served, tmp_path, tiny_gguf):
    (tmp_path / "file").write_text("x")
    result, call = served("--model", tiny_gguf, "--parallel", 1, "--feedback-db", tmp_path / "file" / "f.sqlite")
    assert result.exit_code == 2 and call is None
    assert "cannot open the feedback database" in result.output and "Traceback" not in result.output


def test_workspace_without_model_says_what_to_run(served, tmp_path):
    result, _ = served("--workspace", tmp_path)
    assert result.exit_code == 2 and "run `twin export --workspace" in result.output
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "twin-lora-F16.gguf").write_bytes(b"GGUF")  # an adapter is never taken for the model
    result, _ = served("--workspace", tmp_path)
    assert result.exit_code == 2 and "only a LoRA adapter GGUF" in result.output
    result, _ = served("--workspace", tmp_path, "--backend", "transformers")
    assert result.exit_code == 2 and "run `twin train --workspace" in result.output


def test_workspace_serving_options_reach_the_app(served, tmp_path, tiny_gguf):
    ws = tmp_path / "ws"
    (ws / "model").mkdir(parents=True)
    (ws / "model" / "twin-F16.gguf").symlink_to(tiny_gguf)
    Workspace(ws).save_settings(Settings(persona=Persona("maya")))
    result, (app, kw) = served("--workspace", ws, "--rate-limit", "2/min", "--max-tokens", 8, "--queue", 3,
                               "--cors", "https://app.example", "--threads", 1, "--workers", 1)
    assert result.exit_code == 0, result.output
    assert "as 'maya'" in result.output and kw["threads"] == 4 * 1 + 3 + 4  # --parallel x --workers + --queue + 4 spare
    client = app.test_client()
    assert client.post("/generate", json={"text": "hi", "max_tokens": 9}).status_code == 400  # cap is 8
    # (that one counted against the rate limit too: it is checked before the body is read)
    assert client.post("/generate", json={"text": "hi", "max_tokens": 8}).status_code == 200
    assert client.post("/generate", json={"text": "hi"}).status_code == 429
    assert client.get("/health").get_json()["feedback"] is True  # WORKSPACE/feedback.sqlite
    assert (ws / "feedback.sqlite").is_file()


def test_transformers_backend_serves_base_plus_adapter(served, tmp_path, tiny_llama):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    ws = Workspace(tmp_path / "ws")
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_llama),
                           LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"))
    model.save_pretrained(ws.adapter_dir)
    AutoTokenizer.from_pretrained(tiny_llama).save_pretrained(ws.adapter_dir)
    ws.save_settings(Settings(train=TrainRecord(base=str(tiny_llama), base_fingerprint=fingerprint(tiny_llama))))
    result, (app, _) = served("--workspace", ws.root, "--backend", "transformers", "--threads", 1)
    assert result.exit_code == 0, result.output
    client = app.test_client()
    body = client.post("/generate", json={"text": "hello, how are you?", "max_tokens": 6}).get_json()
    assert isinstance(body["response"], str) and "DONE" not in body["response"]
    assert body["messages"] == [p.strip() for p in body["response"].split("|") if p.strip()]
    chat = client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "hi"}],
                                                     "max_tokens": 4, "temperature": 0}).get_json()
    assert chat["usage"]["completion_tokens"] <= 4 and chat["usage"]["prompt_tokens"] > 0


def test_model_file_alone_gives_the_persona_from_its_gguf_name(tiny_llama, tmp_path):
    from core.artifacts import gguf_model_name, persona_from_gguf_name
    from export.gguf_writer import write_gguf

    gguf = write_gguf(tiny_llama, tmp_path / "twin-F16.gguf", "F16", name=gguf_model_name("maya"))
    assert server.cli.load(None, gguf, "llama", None, 0, 1, 256).persona == "maya"
    assert server.cli.load(None, gguf, "llama", "alex", 0, 1, 256).persona == "alex"
    assert persona_from_gguf_name("llama") is None and persona_from_gguf_name("twin-") is None
