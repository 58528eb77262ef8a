"""The module map: every import inside hwtf (deferred ones too) goes from a
higher layer to a lower one, so there are no circles, and no library module
reaches up into a command."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).parents[1] / "hwtf"

# Lowest first. A module may import modules of lower layers only.
LAYERS = [
    ["hwtf.cli", "hwtf.precision", "hwtf.data.strokes", "hwtf.distributions", "hwtf.files", "hwtf.inkml", "hwtf.packed", "hwtf.summaries", "hwtf.layers.window", "hwtf.layers.cell",
     "hwtf.unit_weights"],
    ["hwtf.data.cache", "hwtf.data.iamondb", "hwtf.data.synthetic", "hwtf.render", "hwtf.layers.wavefront",
     "hwtf.layers.mdn", "hwtf.jax_stint"],
    ["hwtf.layers.lstm_stack"],
    ["hwtf.data.dataset", "hwtf.layers"],
    ["hwtf.model"],
    ["hwtf.writer"],
    ["hwtf.styles"],
    ["hwtf.export", "hwtf.legibility"],
    ["hwtf.rest"],
    # Commands.
    ["hwtf.data.__main__", "hwtf.evaluate", "hwtf.sample", "hwtf.serve", "hwtf.train"],
    ["hwtf.stint_state"],  # a command built on train's
    ["hwtf.widen"],  # a command built on stint_state's
]
PACKAGES = ["hwtf", "hwtf.data"]  # empty __init__s


def _modules() -> dict[str, Path]:
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        name = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        modules[name.removesuffix(".__init__")] = path
    return modules


def _imports(path: Path, modules) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "hwtf")
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "hwtf":
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                found.add(submodule if submodule in modules else node.module)
    return found


def test_every_module_has_a_layer():
    placed = [m for layer in LAYERS for m in layer] + PACKAGES
    assert sorted(placed) == sorted(_modules())


def test_imports_go_down_the_layers_only():
    modules = _modules()
    rank = {m: i for i, layer in enumerate(LAYERS) for m in layer}
    wrong = []
    for name, path in modules.items():
        for imported in _imports(path, modules) - {name}:
            if imported in PACKAGES:
                continue
            if rank[imported] >= rank[name]:
                wrong.append(f"{name} (layer {rank[name]}) imports {imported} (layer {rank[imported]})")
    assert not wrong, "\n".join(wrong)
