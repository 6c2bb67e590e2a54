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


# Strings equal to a contract name that mean something else where they are written.
NOT_THE_CONTRACT = {
    ("trainer_module/segment_metrics.py", "scores"): "a __slots__ attribute",
    ("trainer_module/features.py", "video_id"): "the 2017 data's id feature",
    ("trainer_module/segments.py", "segment_start_times"): "the 2019 data's context feature",
    ("trainer_module/segments.py", "segment_scores"): "the 2019 data's context feature",
    ("evaluation/offline_eval.py", "examples"): "a printed row title",
    ("pipeline/summary.py", "examples"): "a printed row title",
    ("pipeline/pipeline.py", "examples"): "TFX's ExampleGen output channel",
    ("serving/json_examples.py", "examples"): "TF Serving's classify/regress request key",
    ("serving/json_responses.py", "scores"): "TF Serving's classification output",
    ("serving/server.py", "scores"): "TF Serving's classification output",
    ("bench/evaluator.py", "examples"): "TFX's ExampleGen output channel",
    ("bench/run.py", "examples"): "a result field",
    ("bench/scale.py", "examples"): "a result field",
    ("bench/full.py", "examples"): "a folder's name",
}


def _string_constants(path: pathlib.Path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            yield node


def test_every_contract_name_is_written_in_the_contract_only():
    """Each signature, input and output name is a literal in contract/saved_model.py and
    nowhere else in the packages (issue #34); the rest import it."""
    from contract import saved_model

    names = {value for key, value in vars(saved_model).items()
             if key.endswith(("_SIGNATURE", "_INPUT", "_OUTPUT")) and isinstance(value, str)}
    assert len(names) >= 14
    restated = []
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            where = str(path.relative_to(ROOT))
            if where == "contract/saved_model.py":
                continue
            restated += [f"{where}:{node.lineno} {node.value!r}"
                         for node in _string_constants(path)
                         if node.value in names and (where, node.value) not in NOT_THE_CONTRACT]
    assert not restated, "write these as contract.saved_model's names: " + ", ".join(restated)


def _top_k_defaults(tree: ast.AST):
    """(line, name) of each parameter or argparse flag about top k with a number default."""
    for node in ast.walk(tree):
        if isinstance(node, ast.arguments):
            named = node.posonlyargs + node.args + node.kwonlyargs
            defaults = [None] * (len(node.posonlyargs + node.args) - len(node.defaults))
            for arg, default in zip(named, defaults + node.defaults + node.kw_defaults,
                                    strict=True):
                if "top" in arg.arg and isinstance(default, ast.Constant):
                    yield arg.lineno, arg.arg, default.value
        elif (isinstance(node, ast.Call) and node.args
              and isinstance(node.args[0], ast.Constant) and "top" in str(node.args[0].value)):
            for keyword in node.keywords:
                if keyword.arg == "default" and isinstance(keyword.value, ast.Constant):
                    yield node.lineno, node.args[0].value, keyword.value.value


def test_no_top_k_default_restates_top_k():
    """TOP_K's value is written once: no parameter or flag about top k defaults to that
    number written again."""
    from contract.saved_model import TOP_K

    restated = [f"{path.relative_to(ROOT)}:{line} {name}"
                for package in PACKAGES for path in (ROOT / package).rglob("*.py")
                for line, name, value in _top_k_defaults(ast.parse(path.read_text()))
                if value == TOP_K and path.name != "saved_model.py"]
    assert not restated, f"default to contract.saved_model.TOP_K: {restated}"
