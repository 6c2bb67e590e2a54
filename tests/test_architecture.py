"""The project's import rules, read from the source: no cycle among its modules, and the
packages depend one way: contract (the SavedModel's names, layout and top-k ranking) and
shards (shard patterns, atomic output files and TF error lines) import nothing of the project
and every package may use them; trainer_module (pure TF/Keras) and serving (the SavedModel
contract only) import no other package; the data tools build on trainer_module; evaluation
on trainer_module and serving; components on those, pipeline on all."""

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
PACKAGES = ("contract", "shards", "trainer_module", "data_tools", "evaluation", "components",
            "pipeline", "serving", "bench")
# What each package may import from the project (besides itself): packages or single modules.
SHARED = {"contract", "shards"}
ALLOWED = {"contract": set(), "shards": set(), "trainer_module": SHARED, "serving": SHARED,
           "data_tools": SHARED | {"trainer_module"},
           "evaluation": SHARED | {"trainer_module", "serving"},
           "components": SHARED | {"trainer_module", "serving", "evaluation"},
           "pipeline": SHARED | {"trainer_module", "serving", "evaluation", "components",
                                 "data_tools"},
           "bench": SHARED | {"trainer_module", "evaluation", "components", "pipeline",
                              "serving", "data_tools"}}
MAX_LINES = 300


def project_modules() -> dict[str, pathlib.Path]:
    modules = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            modules[name.removesuffix(".__init__")] = path
    return modules


def imports_of(path: pathlib.Path, modules: dict) -> set[str]:
    """The project modules `path` imports, at any depth of its code."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        found |= {name for name in names if name in modules}
    return found


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    modules = project_modules()
    return {name: imports_of(path, modules) - {name} for name, path in modules.items()}


def test_no_import_cycle_among_project_modules(graph):
    visiting, done = [], set()

    def visit(module):
        if module in visiting:
            raise AssertionError("import cycle: " + " → ".join(
                visiting[visiting.index(module):] + [module]))
        if module in done:
            return
        visiting.append(module)
        for imported in sorted(graph[module]):
            visit(imported)
        visiting.pop()
        done.add(module)

    for module in sorted(graph):
        visit(module)


def test_packages_depend_one_way(graph):
    wrong = sorted(f"{module} imports {imported}" for module, imported_modules in graph.items()
                   for imported in imported_modules
                   if imported.split(".")[0] != module.split(".")[0]
                   and imported.split(".")[0] not in ALLOWED[module.split(".")[0]]
                   and imported not in ALLOWED[module.split(".")[0]])
    assert not wrong, wrong


def test_modules_stay_short_unless_their_docstring_says_why():
    """A module over MAX_LINES lines must say in its docstring why it is one module."""
    long = []
    for name, path in project_modules().items():
        lines = len(path.read_text().splitlines())
        docstring = ast.get_docstring(ast.parse(path.read_text())) or ""
        if lines > MAX_LINES and "one module because" not in docstring:
            long.append(f"{name}: {lines} lines")
    assert not long, long
