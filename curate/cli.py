"""`curate` command: one sub-command per curation stage, each defined in the module that owns the stage."""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    help=(
        "Curate virtual try-on data into a clean, leak-free training set.\n\n"
        "Example: curate synth --out data/synth --n 200 && curate ingest data/synth --out data/ds"
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# (command name, module, function). Heavy imports (torch, cv2, ...) stay inside the functions so that
# `curate --help` is instant.
_COMMANDS: tuple[tuple[str, str, str], ...] = (
    ("synth", "curate.synth", "synth_command"),
    ("ingest", "curate.ingest.command", "ingest_command"),
    ("summary", "curate.ingest.command", "summary_command"),
    ("dedupe", "curate.dedupe.command", "dedupe_command"),
    ("filter", "curate.filters.command", "filter_command"),
    ("triplets", "curate.triplets", "triplets_command"),
    ("labelmaps", "curate.labelmaps", "labelmaps_command"),
    ("browse", "curate.browse", "browse_command"),
)

for _name, _module, _attr in _COMMANDS:
    try:
        _mod = importlib.import_module(_module)
    except ModuleNotFoundError as exc:
        # A stage not built yet is simply absent from --help; any other missing module is a real error.
        if exc.name is None or not _module.startswith(exc.name):
            raise
        continue
    app.command(_name)(getattr(_mod, _attr))
