"""
Every command line this package prints runs the way an operator would run it.

edx-platform's ``manage.py`` parses its own options before Django sees anything,
with ``argparse.parse_known_args``, whose prefix matching takes an unknown
``--service`` for the LMS's ``--service-variant``. So each ``./manage.py`` line
that the report, the checks, the docs and the generated configs print goes first
through a parser built the way each release's ``manage.py`` builds its own (both
services), must come out unchanged, and then runs through Django (``aspects_scaling_config``
is executed; the report and other packages' commands, such as ``consume_events``,
which would block consuming, are parsed by their own Django parser). Each ``celery`` line
goes through Celery's own command line (click), down to the subcommand's options,
with ``--app=lms.celery``/``--app=cms.celery`` importable as in edx-platform.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import re
import shlex
import sys
from pathlib import Path

import pytest
import yaml
from django.core.management import get_commands, load_command_class
from django.core.management import CommandError, execute_from_command_line

from aspects_routing.scaling import recommendations as rec
from aspects_routing.scaling.collectors.routing import QueueConsumers, RoutingReport, TaskRoute, WorkerInfo
from aspects_routing.scaling.report import SECTIONS, Section
from aspects_routing.scaling.sizing import Measured, size
from aspects_routing.service import CMS, LMS, Service, current_service, service_of

ROOT = Path(__file__).resolve().parent.parent
PLATFORM = ROOT / "tests" / "platform"
OUR_COMMANDS = ("aspects_scaling_config", "aspects_scaling_report")

# ---------------------------------------------------------------- edx-platform's manage.py, per release


def _subparsers_manage(contracts: bool) -> argparse.ArgumentParser:
    """``manage.py`` up to the 2025 rewrite: one subparser per service (LMS with ``--service-variant``)."""
    parser = argparse.ArgumentParser()
    subparsers = parser.add_subparsers(title="system", description="edX service to run")
    lms = subparsers.add_parser("lms", add_help=False, usage="%(prog)s [options] ...")
    lms.add_argument("-h", "--help", action="store_true")
    lms.add_argument("--settings")
    lms.add_argument("--service-variant", choices=["lms", "lms-xml", "lms-preview"], default="lms")
    cms = subparsers.add_parser("cms", add_help=False, usage="%(prog)s [options] ...")
    cms.add_argument("--settings")
    cms.add_argument("-h", "--help", action="store_true")
    if contracts:  # the releases that still had pycontracts
        lms.add_argument("--contracts", action="store_true", default=False)
        cms.add_argument("--contracts", action="store_true", default=False)
    return parser


def _parse_subparsers(contracts: bool, argv: list[str]) -> list[str]:
    _edx_args, django_args = _subparsers_manage(contracts).parse_known_args(argv)
    return django_args


def _parse_newest(argv: list[str]) -> list[str]:
    """The current ``manage.py``'s legacy branch: ``lms|cms`` first, then only ``--settings`` is its own."""
    assert argv[0] in ("lms", "cms")
    parser = argparse.ArgumentParser()  # add_help: -h/--help are its own too
    parser.add_argument("--settings")
    _settings, management_args = parser.parse_known_args(argv[1:])
    return management_args


MANAGE_PY = {
    "subparsers, --settings, --service-variant, --contracts": lambda argv: _parse_subparsers(True, argv),
    "subparsers, --settings, --service-variant": lambda argv: _parse_subparsers(False, argv),
    "current: --settings only": _parse_newest,
}


def through_manage_py(shape: str, argv: list[str]) -> list[str]:
    """What ``manage.py`` of ``shape`` hands to Django for ``./manage.py <argv>``; fails on its errors."""
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            return MANAGE_PY[shape](argv)
    except SystemExit as exc:
        pytest.fail(f"manage.py ({shape}) rejects {shlex.join(argv)!r}: exit {exc.code}: {err.getvalue()}")
    raise AssertionError("unreachable")


def django_parse(argv: list[str]):
    """Parse ``argv`` (command name first) with the command's own Django parser."""
    name = argv[0]
    command = load_command_class(get_commands()[name], name)
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            return command.create_parser("manage.py", name).parse_args(argv[1:])
    except (SystemExit, CommandError) as exc:
        pytest.fail(f"Django's {name} parser rejects {shlex.join(argv)!r}: {exc!r} {err.getvalue()}")
    raise AssertionError("unreachable")


def manage_argv(line) -> list[str] | None:
    """The arguments after ``manage.py`` of a manage.py command line (str or exec list), else None."""
    argv = shlex.split(line) if isinstance(line, str) else list(line)
    for i, arg in enumerate(argv):
        if arg.endswith("manage.py"):
            return argv[i + 1:]
    return None


def check_manage_line(line, run_ours: bool = True) -> list[str]:
    """A ``./manage.py <service> ...`` line through every release's manage.py, then Django; ours run."""
    argv = manage_argv(line)
    assert argv and argv[0] in ("lms", "cms"), line
    handed_over = {shape: through_manage_py(shape, argv) for shape in MANAGE_PY}
    for shape, django_args in handed_over.items():
        # Nothing of ours is taken by manage.py: Django gets every argument, in order.
        expected = [a for a in argv[1:] if not a.startswith("--settings")]
        assert django_args == expected, (shape, line, django_args)
    django_args = handed_over["current: --settings only"]
    django_parse(django_args)
    # aspects_scaling_config runs (writing to stdout or the --output given). The report is
    # parsed only: one run waits up to --timeout on sources this test LMS lacks, and its own
    # tests run it (tests/test_report_*.py).
    if run_ours and django_args[0] == "aspects_scaling_config":
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                execute_from_command_line(["manage.py", *django_args])
            except SystemExit as exc:
                # --fail-on exits 1/2 on purpose; anything else (2 from argparse) is a failure.
                assert exc.code in (0, 1, 2) and "error:" not in err.getvalue(), (line, err.getvalue())
    return django_args


# ---------------------------------------------------------------- celery's own command line


def check_celery_line(line) -> None:
    """Parse a ``celery ...`` line with Celery's click CLI, subcommand options included."""
    from celery.app.utils import find_app  # pylint: disable=import-outside-toplevel
    from celery.bin.base import CLIContext  # pylint: disable=import-outside-toplevel
    from celery.bin.celery import celery as cli  # pylint: disable=import-outside-toplevel

    from celery import current_app  # pylint: disable=import-outside-toplevel

    argv = shlex.split(line) if isinstance(line, str) else list(line)
    assert argv[0] == "celery", line
    # Importing the stand-in lms.celery builds a Celery app, which Celery makes the process's
    # current app; the test LMS's app must stay current for the tests that run after this one.
    previous_app = current_app._get_current_object()  # pylint: disable=protected-access
    sys.path.insert(0, str(PLATFORM))  # lms.celery / cms.celery, as edx-platform has them
    try:
        ctx = cli.make_context("celery", argv[1:], resilient_parsing=False)
        # What celery's group callback sets up before a subcommand parses (its options read the app).
        ctx.obj = CLIContext(app=find_app(ctx.params["app"]), no_color=True, workdir=None, quiet=True)
        rest = [*ctx.protected_args, *ctx.args]
        name = rest[0]
        sub = cli.get_command(ctx, name)
        assert sub is not None, (line, name)
        sub.make_context(name, rest[1:], parent=ctx)
    except Exception as exc:  # click.UsageError and friends: show the line
        pytest.fail(f"celery rejects {line!r}: {exc}")
    finally:
        sys.path.remove(str(PLATFORM))
        previous_app.set_current()


def check_line(line) -> str:
    """Dispatch a printed command line to the right checker; return its kind."""
    argv = shlex.split(line) if isinstance(line, str) else list(line)
    if argv[0] == "celery":
        check_celery_line(argv)
        return "celery"
    if manage_argv(argv) is not None:
        check_manage_line(argv)
        return "manage.py"
    return "other"


# ---------------------------------------------------------------- the parsers themselves


@pytest.mark.parametrize("shape", sorted(MANAGE_PY))
def test_the_edx_parsers_reproduce_the_reported_failure(shape):
    """``--service all`` is what broke on edx-platform: the stand-in parsers must break the same way."""
    argv = ["lms", "aspects_scaling_config", "--service", "all"]
    if "service-variant" in shape:
        with pytest.raises(SystemExit), contextlib.redirect_stderr(io.StringIO()):
            MANAGE_PY[shape](argv)
    else:
        assert MANAGE_PY[shape](argv) == argv[1:]
    assert MANAGE_PY[shape](["cms", "aspects_scaling_config", "--service", "all"]) == argv[1:]


@pytest.mark.parametrize("name", OUR_COMMANDS)
@pytest.mark.parametrize("service", [LMS, CMS])
def test_no_option_of_ours_is_taken_by_any_manage_py(name, service):
    """
    Every option, spaced or with ``=``, passes every release's manage.py untouched.

    (Abbreviations are another matter: ``--serv`` would still be taken for
    ``--service-variant``, as Django's own ``--settings`` takes ``--set``.)
    """
    command = load_command_class(get_commands()[name], name)
    parser = command.create_parser("manage.py", name)
    options = [o for action in parser._actions for o in action.option_strings  # pylint: disable=protected-access
               if o.startswith("--") and o not in ("--help", "--settings")]
    assert "--services" in options or name != "aspects_scaling_config"
    for option in options:
        for argv in ([service, name, option, "x"], [service, name, f"{option}=x"]):
            for shape in MANAGE_PY:
                assert through_manage_py(shape, argv) == argv[1:], (shape, argv)


# ---------------------------------------------------------------- what the package prints


def _routing(service: str, workers):
    queue = f"edx.{service}.core.aspects"
    return RoutingReport(
        transport="celery", configured_queue=queue, configured_queue_source="ASPECTS_ROUTING.QUEUE",
        broker="redis://redis:6379/0", tasks=(TaskRoute("eventtracking.tasks.send_event", queue),),
        unmatched_patterns=(),
        queues=(QueueConsumers(queue, ("eventtracking.tasks.send_event",), () if workers is not None else None),),
        workers=workers, workers_error=None if workers is not None else "TimeoutError",
    )


def report_commands(service: Service) -> list[str]:
    """Every command line in the recommendations the report prints, for ``service``."""
    sections = {name: Section(name, "unavailable", None, "unreachable", 0.1) for name in SECTIONS}
    workers = (WorkerInfo("w1@host", (f"edx.{service.name}.core.default",), 2),)
    found = list(rec.recommend(sections, size(Measured.nothing()), service=service))
    sections["routing"] = Section("routing", "ok", _routing(service.name, workers), None, 0.1)
    found += rec.recommend(sections, size(Measured.nothing()), service=service)
    sections["routing"] = Section("routing", "ok", _routing(service.name, None), None, 0.1)
    found += rec.recommend(sections, size(Measured.nothing()), service=service)
    lines = []
    for finding in found:
        for change in finding.changes:
            if change.kind != "command":
                continue
            value = change.value
            if value.startswith("--"):  # options for the named command: "--a X (or --b)"
                for alternative in re.split(r"\s*\(or\s+|\)\s*$", value):
                    if alternative.strip():
                        lines.append(service.manage(change.target, alternative.strip()))
            else:
                lines.append(value)
    return lines


@pytest.mark.parametrize("service_name", [LMS, CMS])
def test_report_advice_names_its_own_service_and_every_command_runs(service_name):
    service = Service(service_name, "test")
    lines = report_commands(service)
    other = CMS if service_name == LMS else LMS
    celery_lines = [line for line in lines if line.startswith("celery ")]
    manage_lines = [line for line in lines if manage_argv(line) is not None]
    assert {line.split()[1] for line in celery_lines} == {f"--app={service_name}.celery"}, celery_lines
    assert any(" worker " in line and f"edx.{service_name}.core.aspects" in line for line in celery_lines)
    assert any(line.startswith(f"./manage.py {service_name} aspects_scaling_config --services ") for line in lines)
    assert not any(f"{other}.celery" in line or f"./manage.py {other} aspects_" in line for line in lines), lines
    kinds = [check_line(line) for line in lines]
    assert kinds.count("celery") == len(celery_lines) >= 3
    assert kinds.count("manage.py") == len(manage_lines) >= 5


def _check_messages(settings, service_env, monkeypatch, **aspects):
    from django.core import checks  # pylint: disable=import-outside-toplevel

    monkeypatch.setenv("SERVICE_VARIANT", service_env)
    settings.ASPECTS_ROUTING = aspects
    return [m for m in checks.run_checks() if (m.id or "").startswith("aspects_routing.")]


@pytest.mark.parametrize("service_name", [LMS, CMS])
def test_check_hints_name_the_service_and_their_commands_run(settings, monkeypatch, service_name):
    monkeypatch.setenv("DJANGO_SETTINGS_MODULE", "tests.settings.edx_order")
    messages = _check_messages(settings, service_name, monkeypatch, QUEUE=f"edx.{service_name}.core.aspects")
    (w051,) = [m for m in messages if m.id == "aspects_routing.W051"]
    lines = re.findall(r"'((?:celery|\./manage\.py) [^']+)'", w051.hint)
    assert lines == [f"celery --app={service_name}.celery worker -Q edx.{service_name}.core.aspects"]
    # Event-bus hints (consume_events) as well.
    messages += _check_messages(settings, service_name, monkeypatch, TRANSPORT="event_bus")
    settings.EVENT_BUS_CONSUMER = None
    messages += _check_messages(settings, service_name, monkeypatch, TRANSPORT="event_bus")
    for message in messages:
        for line in re.findall(r"'((?:celery|\./manage\.py) [^']+)'", f"{message.msg} {message.hint}"):
            check_line(line)


def test_the_service_is_known_from_the_platform():
    assert service_of("cms.urls", "lms.envs.production", "lms").name == CMS  # ROOT_URLCONF first
    assert service_of("lms.urls", None, "cms").name == LMS
    assert service_of("tests.urls", "cms.envs.tutor.production", None).name == CMS
    assert service_of(None, "tests.settings.edx_order", "cms").name == CMS
    assert service_of(None, None, "lms-preview").name == LMS
    assert service_of(None, None, None) == Service(LMS, "default (nothing names the service)")
    assert Service(CMS, "x").celery("inspect", "ping") == "celery --app=cms.celery inspect ping"
    assert Service(CMS, "x").manage("check") == "./manage.py cms check"


def test_current_service_reads_settings_then_environment(settings, monkeypatch):
    monkeypatch.setenv("SERVICE_VARIANT", "cms")
    assert current_service().name == CMS  # tests' ROOT_URLCONF and settings module name no service
    settings.ROOT_URLCONF = "lms.urls"
    assert current_service().name == LMS
    assert current_service().source == "ROOT_URLCONF 'lms.urls'"


# ---------------------------------------------------------------- docs


DOC_FILES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
PROGRAMS = ("./manage.py ", "python manage.py ", "celery ")


def doc_commands() -> list[tuple[str, str]]:
    """(file, line) of every command line in the docs' code blocks and inline code."""
    found = []
    for path in DOC_FILES:
        text = path.read_text(encoding="utf-8")
        for language, block in re.findall(r"```([\w-]*)\n(.*?)```", text, re.S):
            if language not in ("", "bash", "sh", "shell", "console"):
                continue
            for line in block.replace("\\\n", " ").splitlines():
                line = line.split("  #", 1)[0].strip()
                if line.startswith(PROGRAMS):
                    found.append((path.name, " ".join(line.split())))
        for span in re.findall(r"`([^`\n]+)`", re.sub(r"```.*?```", "", text, flags=re.S)):
            # A command, not a mention of a program ("`./manage.py cms`") or an abridged one ("...").
            if span.startswith(PROGRAMS) and len(span.split()) > 3 and "..." not in span.split():
                found.append((path.name, span))
    return found


def _synopsis_variants(line: str) -> list[str]:
    """A usage synopsis (``[--a X] --b x|y``) as concrete lines: every option with its first choice."""
    head = line.split(" [", 1)[0]
    head = re.sub(r"(\S+)\|\S+", lambda m: m.group(1).split("|")[0], head)
    variants = [head]
    for group in re.findall(r"\[([^\]]+)\]", line):
        for alternative in group.split(" | "):
            parts = alternative.split()
            if not parts[0].startswith("--"):  # "[--output DIR | -]": another value, not an option
                continue
            value = parts[1].split("|")[0] if len(parts) > 1 else None
            if value is not None and value.isupper():  # a placeholder such as MINUTES, DIR, NAME[=PROVISIONER]
                value = {"MINUTES": "60", "SECONDS": "5", "N": "3", "DIR": "-", "NS": "openedx",
                         "DSN": "chdb:///tmp/x", "NAME": "fast"}.get(value.split("[")[0], "x")
            variants.append(" ".join([head, parts[0]] + ([value] if value is not None else [])))
    return variants


def test_docs_command_lines_run():
    lines = doc_commands()
    names = {line for _file, line in lines}
    assert any("aspects_scaling_config --services" in line for line in names)
    assert any(line.startswith("celery --app=lms.celery worker") for line in names)
    checked = 0
    for _file, line in lines:
        try:  # a concrete line piped into another tool: the part before the pipe
            tokens = shlex.split(line)
            if "|" in tokens and "[" not in " ".join(tokens[:tokens.index("|")]):  # not a synopsis's "[a | b]"
                line = shlex.join(tokens[:tokens.index("|")])
        except ValueError:
            pass
        if "[" in line or "|" in line:
            for variant in _synopsis_variants(line):
                argv = manage_argv(variant)
                for shape in MANAGE_PY:
                    assert through_manage_py(shape, argv) == argv[1:], (shape, variant)
                django_parse(argv[1:])
                checked += 1
        elif line.startswith("celery "):
            check_celery_line(line)
            checked += 1
        else:
            argv = manage_argv(line)
            if argv[1] in OUR_COMMANDS or argv[1] in get_commands():
                django_args = [a for a in argv[1:]]
                for shape in MANAGE_PY:
                    assert through_manage_py(shape, argv) == django_args, (shape, line)
                django_parse(django_args)
            else:  # a platform command this test LMS lacks (none today): at least manage.py passes it
                for shape in MANAGE_PY:
                    through_manage_py(shape, argv)
            checked += 1
    assert checked >= len(lines)


# ---------------------------------------------------------------- generated configs


def _strings_with_commands(node, found):
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("args", "command") and isinstance(value, list) and value and all(isinstance(v, str) for v in value):
                if value[0] in ("celery", "python", "./manage.py") or "manage.py" in value:
                    found.append(value)
                    continue
            _strings_with_commands(value, found)
    elif isinstance(node, list):
        for value in node:
            _strings_with_commands(value, found)
    elif isinstance(node, str):
        if "\n" in node:  # a Tutor patch holding YAML (k8s-deployments...): look inside, Jinja tags aside
            plain = "\n".join(line for line in node.splitlines() if not re.fullmatch(r"\s*\{%.*%\}\s*", line))
            try:
                documents = [d for d in yaml.safe_load_all(plain) if isinstance(d, (dict, list))]
            except yaml.YAMLError:
                documents = []
            if documents:
                _strings_with_commands(documents, found)
                return
        for line in node.splitlines():
            line = line.strip().strip("\"'")
            if line.startswith(PROGRAMS):
                found.append(line)


@pytest.mark.parametrize("transport", ["celery", "event_bus"])
def test_generated_configs_command_lines_run(settings, tmp_path, transport):
    settings.ASPECTS_ROUTING = {"QUEUE": "edx.lms.core.aspects", "TRANSPORT": transport}
    out = tmp_path / "out"
    # The command itself, as an operator types it, through every manage.py and then Django.
    check_manage_line(["./manage.py", "lms", "aspects_scaling_config", "--services", "all", "--format", "both",
                       "--output", str(out), "--events-per-second", "20"])
    found = []
    for path in sorted(out.rglob("*")):
        if path.suffix in (".yaml", ".yml"):
            for document in yaml.safe_load_all(path.read_text(encoding="utf-8")):
                _strings_with_commands(document, found)
        elif path.is_file():
            _strings_with_commands(path.read_text(encoding="utf-8"), found)
    assert found, sorted(str(p.relative_to(out)) for p in out.rglob("*"))
    kinds = [check_line(line) for line in found]
    assert ("celery" if transport == "celery" else "manage.py") in kinds, found
