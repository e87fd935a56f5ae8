"""Runs the shell walk-throughs of docs/*.md as written.

A walk-through is a series of fenced ```sh blocks, each preceded by a
marker line naming the walk-through and the step:

    <!-- walkthrough backup-restore: journal -->
    ```sh
    tools/ops/revocation_journal.sh export ...
    ```

The step named `settings` holds only `NAME=value` lines (and comments): the
site-specific values. A test does not run it; it supplies its own value for
every name in it (and no other), and runs each other step with
`bash -euo pipefail` after assigning those values, from the repository
root. Python 3 standard library only.
"""

import re
import shlex
import subprocess

MARKER = re.compile(r"^\s*<!-- walkthrough ([a-z0-9-]+): ([a-z0-9-]+) -->\s*$")
FENCE = re.compile(r"^(\s*)```(\S*)\s*$")
SETTING = re.compile(r"^([A-Z][A-Z0-9_]*)=\S+(\s+#.*)?$")
HEADING = re.compile(r"^(#+)\s+(.*?)\s*$")


class WalkthroughError(Exception):
    """The document does not follow the walk-through conventions."""


def _blocks(path):
    """Yields (line number, marker or None, heading, language, code) for
    every fenced block of the Markdown file `path`."""
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    heading = ""
    marker = None
    i = 0
    while i < len(lines):
        line = lines[i]
        m = HEADING.match(line)
        if m and len(m.group(1)) <= 2:
            heading = m.group(2)
        m = MARKER.match(line)
        if m:
            marker = (m.group(1), m.group(2))
            i += 1
            continue
        m = FENCE.match(line)
        if m:
            indent, language = m.group(1), m.group(2)
            start = i + 1
            i += 1
            body = []
            while i < len(lines) and lines[i].strip() != "```":
                text = lines[i]
                body.append(text[len(indent):] if text.startswith(indent)
                            else text.lstrip())
                i += 1
            yield start, marker, heading, language, "\n".join(body) + "\n"
            marker = None
        elif line.strip():
            if marker is not None:
                raise WalkthroughError(
                    f"{path}:{i + 1}: a walkthrough marker must be followed "
                    "by a fenced block")
        i += 1


def steps(path, walkthrough):
    """The steps of `walkthrough` in `path`, in document order, as a list of
    (step name, code)."""
    found = [(marker[1], code) for _, marker, _, _, code in _blocks(path)
             if marker is not None and marker[0] == walkthrough]
    if not found:
        raise WalkthroughError(f"{path}: no walkthrough '{walkthrough}'")
    names = [name for name, _ in found]
    if len(set(names)) != len(names):
        raise WalkthroughError(f"{path}: walkthrough '{walkthrough}' repeats "
                               "a step name")
    return found


def unmarked_shell_blocks(path, section):
    """Line numbers of ```sh blocks under the level-1/2 heading `section`
    that belong to no walk-through (each such command would go untested)."""
    return [line for line, marker, heading, language, _ in _blocks(path)
            if heading == section and language == "sh" and marker is None]


def setting_names(code):
    """The variable names a settings step assigns; WalkthroughError if it
    holds anything but assignments and comments."""
    names = []
    for line in code.split("\n"):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        m = SETTING.match(stripped)
        if not m:
            raise WalkthroughError(
                f"settings may only assign variables, found: {stripped}")
        names.append(m.group(1))
    return names


class Runner:
    """Runs the steps of one walk-through with the test's settings.

    `settings` must name exactly the variables of the settings step; `env`
    is the environment of every step; `cwd` the repository root."""

    def __init__(self, path, walkthrough, settings, env, cwd):
        self.steps = dict(steps(path, walkthrough))
        expected = set(setting_names(self.steps.pop("settings", "")))
        if expected != set(settings):
            raise WalkthroughError(
                f"walkthrough '{walkthrough}' settings {sorted(expected)} "
                f"but the test sets {sorted(settings)}")
        self.settings = settings
        self.env = env
        self.cwd = cwd
        self.ran = set()

    def run(self, step, timeout=600):
        """Runs `step` as written; returns the CompletedProcess (text,
        stdout and stderr captured). Never raises for a failing step."""
        if step not in self.steps:
            raise WalkthroughError(f"no step '{step}'")
        prelude = "".join(f"{name}={shlex.quote(value)}\n"
                          for name, value in self.settings.items())
        script = "set -euo pipefail\n" + prelude + self.steps[step]
        self.ran.add(step)
        return subprocess.run(["bash", "-c", script], cwd=self.cwd,
                              env=self.env, capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)

    def not_run(self):
        """Steps of the walk-through that no run() call executed."""
        return sorted(set(self.steps) - self.ran)
