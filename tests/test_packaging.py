"""Packaging: console scripts, CITATION.cff against the CFF 1.2.0 rules it uses, the README's package map."""

import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import yaml
from helpers import ROOT

from dspl import __version__

# The part of the Citation File Format 1.2.0 that this project's file uses, written down as a JSON schema.
PERSON = {
    "type": "object",
    "anyOf": [{"required": ["family-names"]}, {"required": ["name"]}],
    "properties": {"family-names": {"type": "string"}, "given-names": {"type": "string"}, "name": {"type": "string"}},
}
DOI = {"type": "string", "pattern": r"^10\.\d{4,9}(\.\d+)?/[A-Za-z0-9:/_;\-\.\(\)\[\]\\]+$"}
REFERENCE = {
    "type": "object",
    "required": ["type", "title", "authors"],
    "properties": {
        "type": {"enum": ["article", "software", "conference-paper", "book", "report", "misc"]},
        "title": {"type": "string", "minLength": 1},
        "authors": {"type": "array", "minItems": 1, "items": PERSON},
        "doi": DOI,
        "year": {"type": "integer"},
        "volume": {"type": ["integer", "string"]},
        "journal": {"type": "string"},
    },
}
CFF_SCHEMA = {
    "type": "object",
    "required": ["cff-version", "message", "title", "authors"],
    "properties": {
        "cff-version": {"const": "1.2.0"},
        "message": {"type": "string", "minLength": 1},
        "title": {"type": "string", "minLength": 1},
        "version": {"type": "string"},
        "date-released": {"type": "string", "pattern": r"^\d{4}-\d{2}-\d{2}$"},
        "type": {"enum": ["software", "dataset"]},
        "license": {"type": "string"},
        "authors": {"type": "array", "minItems": 1, "items": PERSON},
        "references": {"type": "array", "items": REFERENCE},
        "preferred-citation": REFERENCE,
    },
}


def test_citation_cff_is_valid_and_cites_the_deepspectrumlite_paper():
    citation = yaml.safe_load((ROOT / "CITATION.cff").read_text(encoding="utf-8"))
    citation["date-released"] = str(citation["date-released"])
    jsonschema.validate(citation, CFF_SCHEMA)
    assert citation["version"] == __version__
    papers = [r for r in citation["references"] if r.get("doi") == "10.3389/frai.2022.856232"]
    assert len(papers) == 1
    assert papers[0]["journal"] == "Frontiers in Artificial Intelligence" and papers[0]["year"] == 2022
    assert papers[0]["authors"][0]["family-names"] == "Amiriparian"


def test_citation_schema_rejects_a_broken_doi():
    citation = yaml.safe_load((ROOT / "CITATION.cff").read_text(encoding="utf-8"))
    citation["date-released"] = str(citation["date-released"])
    citation["references"][0]["doi"] = "doi:frai.2022"
    try:
        jsonschema.validate(citation, CFF_SCHEMA)
    except jsonschema.ValidationError as exc:
        assert "does not match" in exc.message
    else:
        raise AssertionError("a malformed DOI passed the schema")


def test_both_console_scripts_are_installed():
    bindir = Path(sys.executable).parent
    for name in ("dspl", "deepspectrumlite"):
        out = subprocess.run([str(bindir / name), "--help"], capture_output=True, text=True, check=True).stdout
        assert out.startswith(f"Usage: {name} ")


def test_the_readme_architecture_table_names_every_package_and_module():
    """The README's package map covers the layout: each sub-package and top-level module of dspl, no more."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    table = text.split("| package | holds |", 1)[1].split("\n\n", 1)[0]
    named = {name.rstrip("/") for name in re.findall(r"`(dspl/[a-z_./]+)`", table)}
    package = ROOT / "dspl"
    layout = {f"dspl/{p.parent.name}" for p in package.glob("*/__init__.py")}
    layout |= {f"dspl/{p.name}" for p in package.glob("*.py") if p.name not in ("__init__.py", "__main__.py")}
    assert named == layout
