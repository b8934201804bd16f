"""The server package reads top to bottom: no import cycles, every route in a blueprint, and the
parts that are not about HTTP (prompt building, replies, decoding, ids, keys) free of Flask."""
import ast
from pathlib import Path

import server
from server.app import BLUEPRINTS, create_app
from helpers.server import ScriptedBackend

PACKAGE = Path(server.__file__).parent
NO_FLASK = ["reply_log", "keys", "ratelimit", "conversations", "backends"]


def imports(module: str, path: Path | None = None) -> set[str]:
    """The server modules (and 'flask') that ``module`` imports, at any depth of its code."""
    tree = ast.parse((path or PACKAGE / f"{module}.py").read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1:
                found.update([node.module] if node.module else [a.name for a in node.names])
            elif node.module and node.module.split(".")[0] in ("server", "flask"):
                found.add(node.module.split(".")[1] if node.module.startswith("server.") else "flask")
        elif isinstance(node, ast.Import):
            found.update("flask" for a in node.names if a.name.split(".")[0] == "flask")
    return found


def test_no_import_cycles_in_the_server():
    modules = {p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
    graph = {m: imports(m) & modules for m in modules}
    done, path = set(), []

    def visit(module):
        assert module not in path, "import cycle: " + " -> ".join(path[path.index(module):] + [module])
        if module in done:
            return
        path.append(module)
        for dep in sorted(graph[module]):
            visit(dep)
        path.pop()
        done.add(module)

    for module in sorted(modules):
        visit(module)


def test_prompt_building_and_generation_need_no_flask():
    for module in NO_FLASK:
        assert "flask" not in imports(module), module
    import dataprocess.live_prompt
    import voice

    assert "flask" not in imports("live_prompt", Path(dataprocess.live_prompt.__file__))
    for path in Path(voice.__file__).parent.glob("*.py"):  # the voice serves every client, not just HTTP
        assert "flask" not in imports(path.stem, path), path.name


def test_every_route_belongs_to_a_blueprint():
    app = create_app(ScriptedBackend())
    for rule in app.url_map.iter_rules():
        if rule.endpoint != "static":
            assert "." in rule.endpoint, f"{rule.rule} is not in a blueprint"
    assert {bp.name for bp in BLUEPRINTS} == {"api", "openai", "feedback", "pages", "can_you_tell"}


def test_a_page_of_its_own_registers_as_a_blueprint():
    from flask import Blueprint, jsonify

    extra = Blueprint("extra", __name__)
    extra.add_url_rule("/extra", "extra", lambda: jsonify(ok=True))
    client = create_app(ScriptedBackend(), api_key="extra-key-1", extra_blueprints=[extra]).test_client()
    assert client.get("/extra").status_code == 401  # behind the key like every other route
    assert client.get("/extra", headers={"Authorization": "Bearer extra-key-1"}).get_json() == {"ok": True}
