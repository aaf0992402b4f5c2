"""MkDocs hook: every page of the site is generated here, from the code and the repository's own files.

* ``index.md``, ``devices.md``, ``benchmarks.md``: the README, split by its sections (one source of text);
* ``reference/``: one page per public module of camadas's packages, found on disk (mkdocstrings renders
  the docstrings), so a new module appears without editing anything;
* ``book/``: one page per chapter of the book, listing the sections and, under each, the classes,
  functions, modules and examples whose docstrings cite it ("section 7.4", "eqs. 8.9-8.10", "chapter 22");
* ``examples/``: examples/README.md and one page per script (its docstring and source);
* ``results/``: the committed files of bench/results/, linked and embedded by the benchmarks page.

Links that would break (a cited object that is not rendered, a README link to a missing file) are
warnings, and ``strict: true`` in mkdocs.yml makes them errors.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from camadas.packages import PACKAGES  # noqa: E402  (the hook runs before the path is set up)

PACKAGE_NAMES = ("camadas", *PACKAGES)
BOOK = "the book *Aprendizado de Máquina* (L. G. M. da Costa Faria, UnB, 2025 draft)"

#: A citation of the book in a docstring: the kind of reference and one or more numbers.
CITATION = re.compile(
    r"\b(sections?|chapters?|ch\.|eqs?\.|equations?|book)\s+"
    r"(\d+(?:\.\d+)*(?:\s*(?:,|and|or|to|-|–|/)\s*\d+(?:\.\d+)*)*)",
    re.IGNORECASE,
)
NUMBER = re.compile(r"\d+(?:\.\d+)*")


# --------------------------------------------------------------------------- #
# What there is to document
# --------------------------------------------------------------------------- #
def public_modules() -> list[tuple[str, bool]]:
    """``(dotted name, is_package)`` for every public module of camadas's packages, in file order."""
    found = []
    for package in PACKAGE_NAMES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            is_package = parts[-1] == "__init__"
            if is_package:
                parts = parts[:-1]
            if any(part.startswith("_") for part in parts):
                continue
            found.append((".".join(parts), is_package))
    return found


def reference_page(module: str, is_package: bool) -> str:
    return "reference/" + module.replace(".", "/") + ("/index.md" if is_package else ".md")


def book_contents() -> dict[str, str]:
    """``{"7.4": "Contexto Histórico...", "7": "Funções de Ativação Sigmoidais", ...}`` (docs/book_contents.txt)."""
    contents = {}
    for line in (ROOT / "docs" / "book_contents.txt").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            number, _, title = line.partition(" ")
            contents[number] = title.strip()
    return contents


def citations(text: str) -> list[tuple[str, list[str]]]:
    """Each book citation in ``text``: ``(the text as written, the section/equation numbers it names)``.

    A chapter range ("chapters 7-9") names every chapter of the range.
    """
    found = []
    for match in CITATION.finditer(text or ""):
        kind, numbers = match.group(1).lower(), NUMBER.findall(match.group(2))
        if kind.startswith("ch") and re.search(r"\d\s*[-–]\s*\d", match.group(2)) and len(numbers) == 2 \
                and "." not in numbers[0] + numbers[1]:
            numbers = [str(n) for n in range(int(numbers[0]), int(numbers[1]) + 1)]
        found.append((" ".join(match.group(0).split()), numbers))
    return found


def docstring_objects():
    """``(path, kind, docstring)`` of every public module, class and function (griffe, without importing)."""
    import griffe

    def visit(obj):
        if obj.is_alias or any(part.startswith("_") for part in obj.path.split(".")):
            return
        if obj.docstring is not None:
            yield obj.path, obj.kind.value, obj.docstring.value
        for member in obj.members.values():
            if not member.is_alias and (member.is_module or member.is_class or member.is_function):
                yield from visit(member)

    loader = griffe.GriffeLoader(search_paths=[str(ROOT)])
    for package in PACKAGE_NAMES:
        yield from visit(loader.load(package))


def example_scripts() -> list[tuple[str, str]]:
    """``(name, docstring)`` of every example script (parsed, not run)."""
    scripts = []
    for path in sorted((ROOT / "examples").glob("*.py")):
        if not path.stem.startswith("_"):
            scripts.append((path.stem, ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""))
    return scripts


# --------------------------------------------------------------------------- #
# The README, split into pages
# --------------------------------------------------------------------------- #
def readme_sections() -> list[tuple[str, str]]:
    """``(heading, text)`` of the README's ``##`` sections; the first is the title and introduction."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    sections, heading, lines, fenced = [], "", [], False
    for line in text.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        if line.startswith("## ") and not fenced:
            sections.append((heading, "\n".join(lines)))
            heading, lines = line[3:].strip(), []
        lines.append(line)
    sections.append((heading, "\n".join(lines)))
    return sections


def relink(markdown: str) -> str:
    """Point the README's repository links at the site's copies (examples and benchmark results)."""
    markdown = markdown.replace("](examples/README.md)", "](examples/index.md)")
    markdown = re.sub(r"\]\(examples/(\w+)\.py\)", r"](examples/\1.md)", markdown)
    return markdown.replace("](bench/results/", "](results/")


def split_readme() -> dict[str, str]:
    """index.md (everything else), devices.md (## Devices), benchmarks.md (## Benchmarks up to ## Layout)."""
    pages = {"index.md": [], "devices.md": [], "benchmarks.md": []}
    in_benchmarks = False
    for heading, text in readme_sections():
        if heading == "Benchmarks":
            in_benchmarks = True
        elif heading == "Layout":
            in_benchmarks = False
        page = "devices.md" if heading == "Devices" else "benchmarks.md" if in_benchmarks else "index.md"
        pages[page].append(relink(text))
    return {page: "\n\n".join(texts) for page, texts in pages.items()}


# --------------------------------------------------------------------------- #
# Pages
# --------------------------------------------------------------------------- #
def first_line(docstring: str) -> str:
    return (docstring or "").strip().splitlines()[0] if (docstring or "").strip() else ""


def module_page(module: str, is_package: bool, modules: list[tuple[str, bool]], summaries: dict) -> str:
    lines = [f"::: {module}"]
    if is_package:
        children = [(m, p) for m, p in modules if m.rpartition(".")[0] == module]
        if children:
            lines += ["", "## Modules", ""]
            for child, child_is_package in children:
                name = child.rpartition(".")[2]
                link = f"{name}/index.md" if child_is_package else f"{name}.md"
                lines.append(f"* [`{child}`]({link}): {summaries.get(child, '')}")
    return "\n".join(lines) + "\n"


def devices_page(readme_text: str, modules) -> str:
    backend = [m for m, _ in modules if m.split(".")[0] == "backend"]
    links = "\n".join(f"* [`{m}`][{m}]" for m in backend)
    return (f"{readme_text}\n\n## Reference\n\nThe backend's modules (device selection, arrays, dtypes, "
            f"random generators, argument checks):\n\n{links}\n")


def results_section(results: Path) -> tuple[str, list[str]]:
    """Markdown listing bench/results/ (plots embedded) and the files to copy under ``results/``."""
    files = sorted(p.relative_to(results).as_posix() for p in results.rglob("*") if p.is_file())
    lines = ["## Result files", "", "Every run committed under `bench/results/` (text report, JSON with the "
             "raw timings, plots):", ""]
    for name in files:
        lines.append(f"* [`{name}`](results/{name})")
    for name in files:
        if name.endswith(".png"):
            lines += ["", f"![{name}](results/{name})"]
    return "\n".join(lines) + "\n", files


def chapter_pages(contents: dict, objects: list, examples: list) -> dict[str, str]:
    """One page per chapter that something cites: its sections, each with what cites it."""
    cited: dict[str, dict[str, dict[str, list[str]]]] = {}  # chapter -> section ("": none) -> item -> citations

    def add(item: str, text: str, numbers: list[str]):
        for number in numbers:
            chapter = number.split(".")[0]
            if chapter not in contents:
                continue
            parts = number.split(".")
            section = ".".join(parts[:2]) if len(parts) > 1 and text.lower().startswith(("section", "book")) else ""
            if section and section not in contents:
                section = ""
            texts = cited.setdefault(chapter, {}).setdefault(section, {}).setdefault(item, [])
            if text not in texts:
                texts.append(text)

    for path, kind, docstring in objects:
        for text, numbers in citations(docstring):
            add(f"[`{path}`][{path}] ({kind})", text, numbers)
    for name, docstring in examples:
        for text, numbers in citations(docstring):
            add(f"[`examples/{name}.py`](../examples/{name}.md)", text, numbers)

    pages = {}
    for chapter in sorted(cited, key=int):
        lines = [f"# Chapter {chapter}: {contents[chapter]}", "",
                 f"What of camadas implements or illustrates chapter {chapter} of {BOOK}, from the citations "
                 "in the docstrings.", ""]
        sections = sorted((s for s in contents if s.split(".")[0] == chapter and "." in s),
                          key=lambda s: [int(p) for p in s.split(".")])
        for section in sections:
            lines += [f"## {section} {contents[section]}", ""]
            lines += _entries(cited[chapter].get(section, {})) or ["(nothing cites it yet)"]
            lines.append("")
        if cited[chapter].get(""):
            lines += ["## The chapter as a whole, and its equations", ""]
            lines += _entries(cited[chapter][""])
        pages[f"book/chapter-{int(chapter):02d}.md"] = "\n".join(lines) + "\n"
    return pages


def _entries(items: dict) -> list[str]:
    return [f"* {item}: {'; '.join(texts)}" for item, texts in items.items()]


def example_page(name: str, docstring: str) -> str:
    source = (ROOT / "examples" / f"{name}.py").read_text(encoding="utf-8")
    return (f"# `examples/{name}.py`\n\n{first_line(docstring)}\n\n"
            f"```text\npython examples/{name}.py --help\n```\n\n## Source\n\n```python\n{source}\n```\n")


def generate() -> tuple[dict[str, str], dict[str, Path], list]:
    """Every page (path -> markdown), every copied file (path -> source) and the navigation."""
    modules = public_modules()
    objects = list(docstring_objects())
    summaries = {path: first_line(doc) for path, kind, doc in objects if kind == "module"}
    examples = example_scripts()
    readme = split_readme()
    results_md, result_files = results_section(ROOT / "bench" / "results")

    pages = {"index.md": readme["index.md"], "devices.md": devices_page(readme["devices.md"], modules),
             "benchmarks.md": readme["benchmarks.md"] + "\n\n" + results_md}
    examples_readme = (ROOT / "examples" / "README.md").read_text(encoding="utf-8")
    pages["examples/index.md"] = re.sub(r"\]\((\w+)\.py\)", r"](\1.md)", examples_readme)
    pages.update({f"examples/{name}.md": example_page(name, doc) for name, doc in examples})
    chapters = chapter_pages(book_contents(), objects, examples)
    pages.update(chapters)
    pages.update({reference_page(m, p): module_page(m, p, modules, summaries) for m, p in modules})
    copies = {f"results/{name}": ROOT / "bench" / "results" / name for name in result_files}

    nav = [
        {"Home": "index.md"},
        {"Devices": "devices.md"},
        {"Book chapters": [{title.splitlines()[0].removeprefix("# "): page} for page, title in chapters.items()]},
        {"Examples": ["examples/index.md"] + [{f"{name}.py": f"examples/{name}.md"} for name, _ in examples]},
        {"Benchmarks": "benchmarks.md"},
        {"Design notes": [{p.stem: f"design/{p.name}"} for p in sorted((ROOT / "docs" / "design").glob("*.md"))]},
        {"API reference": reference_nav(modules)},
    ]
    return pages, copies, nav


def reference_nav(modules) -> list:
    """The reference pages as a tree: a package is a section whose first page is its own."""
    def children(prefix: str) -> list:
        entries = []
        for module, is_package in modules:
            if module.rpartition(".")[0] != prefix:
                continue
            if is_package:
                entries.append({module: [reference_page(module, True)] + children(module)})
            else:
                entries.append({module: reference_page(module, False)})
        return entries

    return [{module: [reference_page(module, True)] + children(module)} for module in PACKAGE_NAMES]


# --------------------------------------------------------------------------- #
# MkDocs events
# --------------------------------------------------------------------------- #
_GENERATED: dict = {}


def on_config(config):
    pages, copies, nav = generate()
    _GENERATED.update(pages=pages, copies=copies)
    config["nav"] = nav
    return config


def on_files(files, config):
    for path, text in _GENERATED["pages"].items():
        files.append(File.generated(config, path, content=text))
    for path, source in _GENERATED["copies"].items():
        files.append(File.generated(config, path, abs_src_path=str(source)))
    return files
