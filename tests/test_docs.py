"""The documentation site (issue 14, section 3): built with warnings as errors, pages generated from the code.

The full build (``python -m mkdocs build --strict``, the README's command) runs
into a temporary folder; the generation (docs/hooks.py) and the cross-reference
resolution (docs/griffe_roles.py) are also checked piece by piece.
"""

from __future__ import annotations

import importlib.util
import logging
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

pytest.importorskip("mkdocs", reason="the docs need the docs extra: pip install -e '.[docs]'")
pytest.importorskip("mkdocstrings_handlers.python", reason="the docs need mkdocstrings[python] (the docs extra)")
griffe = pytest.importorskip("griffe", reason="the docs need griffe (with mkdocstrings[python], the docs extra)")


def load(name: str):
    """``docs/<name>.py`` as a module (the docs folder is not a package)."""
    spec = importlib.util.spec_from_file_location(f"camadas_docs_{name}", REPO / "docs" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def hooks():
    return load("hooks")


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("docs") / "site"
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
                          cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out


@pytest.mark.slow
def test_build_is_strict_and_has_every_page(site, hooks):
    for module, is_package in hooks.public_modules():
        page = site / hooks.reference_page(module, is_package).replace(".md", ".html")
        assert page.exists(), module
    dense = (site / "reference" / "layers" / "core" / "dense.html").read_text(encoding="utf-8")
    assert 'id="layers.core.dense.Dense"' in dense
    for page in ("index.html", "devices.html", "benchmarks.html", "examples/index.html", "examples/digits_cnn.html"):
        assert (site / page).exists(), page


@pytest.mark.slow
def test_book_pages_link_layers_and_examples(site):
    chapter = (site / "book" / "chapter-22.html").read_text(encoding="utf-8")
    assert "Redes Neurais Convolucionais" in chapter
    assert 'href="../reference/layers/convolution/conv2d.html#layers.convolution.conv2d"' in chapter  # cites 22.2
    assert 'href="../examples/digits_cnn.html"' in chapter


@pytest.mark.slow
def test_benchmark_page_links_the_committed_results(site):
    page = (site / "benchmarks.html").read_text(encoding="utf-8")
    results = sorted(p.relative_to(REPO / "bench" / "results").as_posix()
                     for p in (REPO / "bench" / "results").rglob("*") if p.is_file())
    assert results, "no committed benchmark results"
    for name in results:
        assert f'href="results/{name}"' in page and (site / "results" / name).exists(), name
    plot = "activations-cpu-float32-2026-11-23.png"
    assert f'<img alt="{plot}" src="results/{plot}"' in page


def test_config_turns_warnings_into_errors():
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("tag:", lambda loader, suffix, node: None)
    config = yaml.load((REPO / "mkdocs.yml").read_text(encoding="utf-8"), Loader=Loader)
    assert config["strict"] is True
    assert config["validation"]["links"]["not_found"] == "warn"  # a warning, so an error under strict


def test_citations(hooks):
    assert hooks.citations("Leaky ReLU (section 8.4.1, eqs. 8.3-8.4)") == [
        ("section 8.4.1", ["8.4.1"]), ("eqs. 8.3-8.4", ["8.3", "8.4"])]
    assert hooks.citations("sections 7.9 and 8.7") == [("sections 7.9 and 8.7", ["7.9", "8.7"])]
    assert hooks.citations("chapters 7-9") == [("chapters 7-9", ["7", "8", "9"])]
    assert hooks.citations("slides 003; figure 1") == []


def test_readme_split_keeps_every_section(hooks):
    pages = hooks.split_readme()
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    headings = [line for line in readme.splitlines() if line.startswith("## ")]
    joined = "\n".join(pages.values())
    assert all(h in joined for h in headings)
    assert "## Devices" in pages["devices.md"] and "## Benchmarks" in pages["benchmarks.md"]
    assert "](bench/results/" not in joined and "](examples/README.md)" not in joined


@pytest.fixture(scope="module")
def loader():
    sys.path.insert(0, str(REPO))
    loader = griffe.GriffeLoader(search_paths=[str(REPO)])
    for name in ("camadas", "backend", "kernels", "layers", "optimizers", "models", "bench"):
        loader.load(name)
    loader.resolve_aliases(implicit=False, external=False)
    return loader


def test_roles_become_checked_cross_references(loader, caplog):
    roles = load("griffe_roles").SphinxRoles()
    optimizer = loader.modules_collection["optimizers.base.Optimizer"]
    assert roles._link("~layers.base.Layer", optimizer, loader) == "[`Layer`][layers.base.Layer]"
    assert roles._link("step", optimizer, loader) == "[`step`][optimizers.base.Optimizer.step]"  # relative
    assert roles._link("layers.Sequential", optimizer, loader) == \
        "[`layers.Sequential`][layers.containers.sequential.Sequential]"  # through the re-export
    assert roles._link("time.perf_counter", optimizer, loader) == "`time.perf_counter`"  # not ours: code
    with caplog.at_level(logging.WARNING, logger="mkdocs.plugins.camadas.roles"):
        assert roles._link("layers.history.History", optimizer, loader) == "`layers.history.History`"
    assert "cross-reference 'layers.history.History' names no documented object" in caplog.text
