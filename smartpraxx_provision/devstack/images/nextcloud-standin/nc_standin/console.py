"""Symfony Console behaviour of Nextcloud's ``occ`` (stand-in, test double).

Command lookup (exact name, abbreviations, "Did you mean" alternatives), ArgvInput option and
argument parsing, validation, synopsis and the exception block are re-implemented after
symfony/console 6.x (Application::find/findNamespace/findAlternatives, ArgvInput::parse,
Input::validate, InputDefinition::getSynopsis, Application::doRenderThrowable) so that error
texts match the real ``occ``. The command definitions come from the vendored
``reference/nextcloud-occ-commands.json`` (``php occ list --format=json`` of a real
Nextcloud 34.0.1).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import REFERENCE_DIR

COMMANDS_JSON = REFERENCE_DIR / "nextcloud-occ-commands.json"
TERMINAL_WIDTH = 80  # Symfony's Terminal default when there is no tty and no COLUMNS


class ConsoleError(Exception):
    """An exception Symfony renders as a block on stderr (exit 1)."""


@dataclass(frozen=True)
class Option:
    name: str
    shortcut: str  # Symfony's form without dashes: "v|vv|vvv", "" if none
    accept_value: bool
    value_required: bool
    multiple: bool
    default: Any
    negatable: bool = False

    @property
    def value_optional(self) -> bool:
        return self.accept_value and not self.value_required


@dataclass(frozen=True)
class Argument:
    name: str
    required: bool
    is_array: bool
    default: Any


@dataclass
class CommandDef:
    name: str
    arguments: list[Argument]
    options: dict[str, Option]
    hidden: bool = False
    shortcuts: dict[str, str] = field(default_factory=dict)  # "v" -> "verbose"
    negations: dict[str, str] = field(default_factory=dict)  # "no-ansi" -> "ansi"

    def __post_init__(self) -> None:
        for opt in self.options.values():
            for sc in filter(None, opt.shortcut.split("|")):
                self.shortcuts.setdefault(sc, opt.name)
            if opt.negatable:
                self.negations["no-" + opt.name] = opt.name

    def all_arguments(self) -> list[Argument]:
        """The merged definition: the application's ``command`` argument comes first."""
        return [Argument("command", True, False, None), *self.arguments]

    def synopsis(self) -> str:
        elements = []
        for opt in self.options.values():
            value = ""
            if opt.accept_value:
                up = opt.name.upper()
                value = f" [{up}]" if opt.value_optional else f" {up}"
            short = f"-{opt.shortcut}|" if opt.shortcut else ""
            neg = f"|--no-{opt.name}" if opt.negatable else ""
            elements.append(f"[{short}--{opt.name}{value}{neg}]")
        args = self.all_arguments()
        if elements and args:
            elements.append("[--]")
        tail = ""
        for arg in args:
            el = f"<{arg.name}>" + ("..." if arg.is_array else "")
            if not arg.required:
                el = "[" + el
                tail += "]"
            elements.append(el)
        return f"{self.name} {' '.join(elements)}{tail}".strip()


def _option_from_json(d: dict[str, Any], negatable: bool) -> Option:
    shortcut = "|".join(s.lstrip("-") for s in d["shortcut"].split("|") if s)
    return Option(
        name=d["name"][2:],
        shortcut=shortcut,
        accept_value=d["accept_value"],
        value_required=d["is_value_required"],
        multiple=d["is_multiple"],
        default=d["default"],
        negatable=negatable,
    )


def command_from_json(d: dict[str, Any]) -> CommandDef:
    raw = d["options"]
    options: dict[str, Option] = {}
    for key, od in raw.items():
        # The JSON descriptor lists the negation of a negatable option (--no-ansi) separately.
        if key.startswith("no-") and key[3:] in raw and not raw[key[3:]]["accept_value"]:
            continue
        negatable = f"no-{key}" in raw and not od["accept_value"]
        options[key] = _option_from_json(od, negatable)
    arguments = [
        Argument(a["name"], a["is_required"], a["is_array"], a["default"])
        for a in d["arguments"].values()
    ]
    return CommandDef(d["name"], arguments, options, hidden=bool(d.get("hidden")))


def load_reference(path: Path = COMMANDS_JSON) -> dict[str, CommandDef]:
    data = json.loads(path.read_text(encoding="utf-8"))
    return {c["name"]: command_from_json(c) for c in data["commands"]}


def with_global_options(
    name: str, arguments: list[Argument], options: list[Option], template: CommandDef
) -> CommandDef:
    """A supplementary command definition carrying the application's global options."""
    opts = {o.name: o for o in options}
    for key in ("help", "quiet", "verbose", "version", "ansi", "no-interaction", "no-warnings"):
        opts[key] = template.options[key]
    return CommandDef(name, arguments, opts)


# --- command lookup (Application::find) ----------------------------------------------------


def _levenshtein(a: str, b: str) -> int:
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def _natural_key(s: str) -> list[Any]:
    return [(0, int(p), "") if p.isdigit() else (1, 0, p) for p in re.split(r"(\d+)", s.lower())]


def find_alternatives(name: str, collection: list[str]) -> list[str]:
    threshold = 1000
    alternatives: dict[str, int] = {}
    parts_of = {item: item.split(":") for item in collection}
    for i, sub in enumerate(name.split(":")):
        for item, parts in parts_of.items():
            exists = item in alternatives
            if i >= len(parts):
                if exists:
                    alternatives[item] += threshold
                continue
            lev = _levenshtein(sub, parts[i])
            if lev <= len(sub) / 3 or (sub != "" and sub in parts[i]):
                alternatives[item] = alternatives[item] + lev if exists else lev
            elif exists:
                alternatives[item] += threshold
    for item in collection:
        lev = _levenshtein(name, item)
        if lev <= len(name) / 3 or name in item:
            alternatives[item] = alternatives[item] - lev if item in alternatives else lev
    keep = [k for k, v in alternatives.items() if v < 2 * threshold]
    return sorted(keep, key=_natural_key)


def _did_you_mean(alternatives: list[str]) -> str:
    if not alternatives:
        return ""
    head = "Did you mean this?" if len(alternatives) == 1 else "Did you mean one of these?"
    return f"\n\n{head}\n    " + "\n    ".join(alternatives)


def _abbrev_expr(name: str) -> str:
    return "[^:]*:".join(re.escape(p) for p in name.split(":")) + "[^:]*"


def _namespaces(commands: dict[str, CommandDef]) -> list[str]:
    out: list[str] = []
    for c in commands.values():
        if c.hidden:
            continue
        parts = c.name.split(":")[:-1]
        for i in range(1, len(parts) + 1):
            ns = ":".join(parts[:i])
            if ns not in out:
                out.append(ns)
    return out


def find_namespace(commands: dict[str, CommandDef], namespace: str) -> str:
    all_ns = _namespaces(commands)
    expr = re.compile("^" + _abbrev_expr(namespace))
    found = [n for n in all_ns if expr.match(n)]
    if not found:
        msg = f'There are no commands defined in the "{namespace}" namespace.'
        raise ConsoleError(msg + _did_you_mean(find_alternatives(namespace, all_ns)))
    exact = namespace in found
    if len(found) > 1 and not exact:
        listed = "    " + "\n    ".join(found)
        raise ConsoleError(
            f'The namespace "{namespace}" is ambiguous.\nDid you mean one of these?\n{listed}.'
        )
    return namespace if exact else found[0]


def find_command(commands: dict[str, CommandDef], name: str) -> CommandDef:
    if name in commands:
        return commands[name]
    names = list(commands)
    expr = _abbrev_expr(name)
    found = [c for c in names if re.match("^" + expr, c)]
    if not found:
        found = [c for c in names if re.match("^" + expr, c, re.IGNORECASE)]
    if not found or not any(re.fullmatch(expr, c, re.IGNORECASE) for c in found):
        if ":" in name:
            find_namespace(commands, name.rsplit(":", 1)[0])
        alts = [a for a in find_alternatives(name, names) if not commands[a].hidden]
        raise ConsoleError(f'Command "{name}" is not defined.' + _did_you_mean(alts))
    if len(found) > 1:
        found = [c for c in found if not commands[c].hidden]
    if len(found) > 1:
        width = max(len(c) for c in found)
        listed = "    " + "\n    ".join(c.ljust(width) + " " for c in found)
        raise ConsoleError(
            f'Command "{name}" is ambiguous.\nDid you mean one of these?\n{listed}.'
        )
    return commands[found[0]]


# --- argv parsing (ArgvInput) --------------------------------------------------------------


def first_argument(tokens: list[str]) -> str | None:
    """ArgvInput::getFirstArgument (all global options are flags)."""
    for tok in tokens:
        if tok and tok[0] == "-":
            continue
        return tok
    return None


def has_parameter_option(tokens: list[str], values: tuple[str, ...]) -> bool:
    """ArgvInput::hasParameterOption(values, onlyParams=true)."""
    for tok in tokens:
        if tok == "--":
            return False
        for v in values:
            leading = v + "=" if v.startswith("--") else v
            if tok == v or tok.startswith(leading):
                return True
    return False


@dataclass
class ParsedInput:
    command: CommandDef
    arguments: dict[str, Any]
    options: dict[str, Any]
    given: set[str]  # option names that appeared on the command line

    def arg(self, name: str) -> Any:
        if name in self.arguments:
            return self.arguments[name]
        for a in self.command.arguments:
            if a.name == name:
                return a.default
        raise KeyError(name)

    def opt(self, name: str) -> Any:
        if name in self.options:
            return self.options[name]
        return self.command.options[name].default

    def has(self, name: str) -> bool:
        return name in self.given


class _Parser:
    def __init__(self, cmd: CommandDef, tokens: list[str]) -> None:
        self.cmd = cmd
        self.defs = cmd.all_arguments()
        self.parsed = list(tokens)
        self.arguments: dict[str, Any] = {}
        self.options: dict[str, Any] = {}
        self.given: set[str] = set()

    def run(self) -> ParsedInput:
        parse_options = True
        while self.parsed:
            tok = self.parsed.pop(0)
            if parse_options and tok == "":
                self._argument(tok)
            elif parse_options and tok == "--":
                parse_options = False
            elif parse_options and tok.startswith("--"):
                self._long(tok)
            elif parse_options and tok[0] == "-" and tok != "-":
                self._short(tok)
            else:
                self._argument(tok)
        return ParsedInput(self.cmd, self.arguments, self.options, self.given)

    def _short(self, tok: str) -> None:
        name = tok[1:]
        if len(name) > 1:
            first = self.cmd.shortcuts.get(name[0])
            if first and self.cmd.options[first].accept_value:
                self._add_short(name[0], name[1:])
            else:
                self._short_set(name)
        else:
            self._add_short(name, None)

    def _short_set(self, name: str) -> None:
        for i, ch in enumerate(name):
            if ch not in self.cmd.shortcuts:
                raise ConsoleError(f'The "-{ch}" option does not exist.')
            opt = self.cmd.options[self.cmd.shortcuts[ch]]
            if opt.accept_value:
                self._add_long(opt.name, None if i == len(name) - 1 else name[i + 1 :])
                break
            self._add_long(opt.name, None)

    def _long(self, tok: str) -> None:
        name = tok[2:]
        if "=" in name:
            name, value = name.split("=", 1)
            if value == "":
                self.parsed.insert(0, value)
            self._add_long(name, value)
        else:
            self._add_long(name, None)

    def _add_short(self, shortcut: str, value: str | None) -> None:
        if shortcut not in self.cmd.shortcuts:
            raise ConsoleError(f'The "-{shortcut}" option does not exist.')
        self._add_long(self.cmd.shortcuts[shortcut], value)

    def _add_long(self, name: str, value: str | None) -> None:
        if name not in self.cmd.options:
            if name not in self.cmd.negations:
                raise ConsoleError(f'The "--{name}" option does not exist.')
            if value is not None:
                raise ConsoleError(f'The "--{name}" option does not accept a value.')
            self.options[self.cmd.negations[name]] = False
            self.given.add(self.cmd.negations[name])
            return
        opt = self.cmd.options[name]
        if value is not None and not opt.accept_value:
            raise ConsoleError(f'The "--{name}" option does not accept a value.')
        if value in ("", None) and opt.accept_value and self.parsed:
            nxt = self.parsed.pop(0)
            if (nxt and nxt[0] != "-") or nxt == "":
                value = nxt
            else:
                self.parsed.insert(0, nxt)
        result: Any = value
        if value is None:
            if opt.value_required:
                raise ConsoleError(f'The "--{name}" option requires a value.')
            if not opt.multiple and not opt.value_optional:
                result = True
        self.given.add(name)
        if opt.multiple:
            self.options.setdefault(name, []).append(result)
        else:
            self.options[name] = result

    def _argument(self, tok: str) -> None:
        c = len(self.arguments)
        if c < len(self.defs):
            arg = self.defs[c]
            self.arguments[arg.name] = [tok] if arg.is_array else tok
        elif c >= 1 and self.defs[c - 1].is_array:
            self.arguments[self.defs[c - 1].name].append(tok)
        else:
            expected = [a.name for a in self.defs[1:]]
            name = self.arguments.get("command")
            if expected:
                joined = '" "'.join(expected)
                raise ConsoleError(
                    f'Too many arguments to "{name}" command, expected arguments "{joined}".'
                )
            raise ConsoleError(f'No arguments expected for "{name}" command, got "{tok}".')


def parse(cmd: CommandDef, tokens: list[str]) -> ParsedInput:
    """Bind ``tokens`` (everything after ``occ``) to ``cmd`` and validate, like Symfony."""
    parsed = _Parser(cmd, tokens).run()
    missing = [
        a.name for a in cmd.all_arguments() if a.required and a.name not in parsed.arguments
    ]
    if missing:
        raise ConsoleError(f'Not enough arguments (missing: "{", ".join(missing)}").')
    return parsed


# --- rendering (Application::renderThrowable) ----------------------------------------------


def render_error(message: str, synopsis: str | None = None) -> str:
    """The text Symfony writes to stderr for an exception (undecorated, no tty)."""
    width = TERMINAL_WIDTH - 1 - 4
    lines: list[str] = []
    for line in message.strip().splitlines() or [""]:
        chunks = [line[i : i + width] for i in range(0, len(line), width)] or [""]
        lines.extend(chunks)
    length = max(len(line) + 4 for line in lines)
    out = ["", " " * length]
    out += [f"  {line}  " + " " * (length - len(line) - 4) for line in lines]
    out += [" " * length, ""]
    if synopsis is not None:
        out += [synopsis, ""]
    return "\n".join(out) + "\n"
