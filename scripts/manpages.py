#!/usr/bin/env python3
"""Generates sealgate(8) and sealgate.yaml(5) from the documentation at package
build time, so that the man pages never drift from the docs: sealgate.yaml(5)
from docs/configuration.md, sealgate(8) from the README's "Using it" section
and the built binary's own help texts. This script only rearranges Markdown
into what a man page reads like; go-md2man turns it into roff.

usage: scripts/manpages.py --binary build/gateway/sealgate --version 0.1.0 --out DIR
"""
import argparse
import datetime
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def section(markdown: str, heading: str) -> str:
    """The body of one '## heading' section (up to the next heading of that level or above)."""
    m = re.search(rf"^## {re.escape(heading)}\n(.*?)(?=^#{{1,2}} |\Z)", markdown, re.M | re.S)
    if not m:
        raise SystemExit(f"manpages: no section '## {heading}'")
    return m.group(1).strip() + "\n"


def plain_links(markdown: str) -> str:
    """Links become their text: a man page cannot follow docs/x.md or #anchors;
    an absolute URL stays, after its text, for the reader to open."""
    markdown = re.sub(r"\[([^\]]+)\]\((https?://[^)]+)\)", r"\1 <\2>", markdown)
    return re.sub(r"\[([^\]]+)\]\([^)]+\)", r"\1", markdown)


def cells(row: str) -> list:
    # A pipe inside a code span (`a|b`) is part of the cell, not a border.
    parts, current, in_code = [], "", False
    for ch in row.strip().strip("|"):
        if ch == "`":
            in_code = not in_code
        if ch == "|" and not in_code:
            parts.append(current.strip())
            current = ""
        else:
            current += ch
    parts.append(current.strip())
    return parts


def tables_to_lists(markdown: str) -> str:
    """Tables become definition lists: roff tables do not wrap their cells,
    so a row of docs/configuration.md would run far past 80 columns. The first
    column is the term; a 'default' column goes beside it, the rest below."""
    out, lines, i = [], markdown.split("\n"), 0
    while i < len(lines):
        if lines[i].startswith("|") and i + 1 < len(lines) and re.match(r"^\|[-| :]+\|$", lines[i + 1]):
            header = [h.lower() for h in cells(lines[i])]
            i += 2
            while i < len(lines) and lines[i].startswith("|"):
                row = cells(lines[i])
                term = row[0]
                rest = []
                for name, value in zip(header[1:], row[1:]):
                    if name == "default":
                        term += f" (default: {value})"
                    elif name in ("meaning", "what it holds"):
                        rest.append(value)
                    else:
                        rest.append(f"{name}: {value}")
                out += [term, ": " + " ".join(rest) if rest else ": -", ""]
                i += 1
            continue
        out.append(lines[i])
        i += 1
    return "\n".join(out)


def subsections(markdown: str) -> str:
    """go-md2man makes '#' and '##' both a section (.SH); '###' is a subsection (.SS)."""
    return re.sub(r"^## ", "### ", markdown, flags=re.M)


def preformatted(text: str) -> str:
    """An indented code block, its long lines wrapped below their own indent
    plus four (no-fill text is never wrapped by man, it runs off the screen)."""
    out = []
    for line in text.split("\n"):
        indent = len(line) - len(line.lstrip())
        out += textwrap.wrap(line, 66, initial_indent=" " * indent, subsequent_indent=" " * (indent + 4),
                             break_on_hyphens=False, break_long_words=False) or [""]
    return "\n".join("    " + l for l in out) + "\n"


def title(name: str, sec: int, version: str, manual: str) -> str:
    # SOURCE_DATE_EPOCH (set by dpkg-buildpackage from debian/changelog) keeps
    # the page byte-for-byte reproducible.
    epoch = int(os.environ.get("SOURCE_DATE_EPOCH", "0")) or int(datetime.datetime.now().timestamp())
    date = datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).strftime("%Y-%m-%d")
    return f'% {name.upper()} {sec} "{date}" "sealgate {version}" "{manual}"\n\n'


def configuration_page(version: str) -> str:
    doc = (ROOT / "docs/configuration.md").read_text()
    body = re.sub(r"\A# Configuration\n", "", doc)
    intro, _, keys = body.partition("\n## ")
    return (
        title("sealgate.yaml", 5, version, "File Formats")
        + "# NAME\n\nsealgate.yaml \\- sealgate gateway configuration\n\n"
        + "# SYNOPSIS\n\n/etc/sealgate/sealgate.yaml\n\n"
        + "# DESCRIPTION\n\n" + intro.strip() + "\n\n"
        + "# KEYS\n\n" + subsections("## " + keys.strip()) + "\n\n"
        + "# FILES\n\n"
        + "/etc/sealgate/sealgate.yaml\n: the configuration the package ships (a conffile)\n\n"
        + "/etc/sealgate/policy.yaml\n: the delivery policy (**policy_file**), relative to the configuration's directory\n\n"
        + "/etc/sealgate/ranges/\n: the published address ranges of Microsoft 365 and Google Workspace\n\n"
        + "# SEE ALSO\n\n**sealgate**(8), /usr/share/doc/sealgate/policy.md.gz\n"
    )


def help_text(binary: str, *args: str) -> str:
    """What the binary prints for `sealgate ARGS` on stdout, or, for a command
    without a help verb, the usage it prints on stderr (exit 2)."""
    r = subprocess.run([binary, *args], capture_output=True, text=True)
    text = r.stdout if r.returncode == 0 else r.stderr
    if "usage:" not in text:
        raise SystemExit(f"manpages: no usage from {binary} {' '.join(args)}: {text!r}")
    # The error line ("sealgate: dkim: expected ...") and the generic first
    # usage line are not part of the command's synopsis.
    lines = [l for l in text.split("\n") if not l.startswith("sealgate: ") and l.strip() != "usage: sealgate COMMAND ..."]
    return "\n".join(lines).strip("\n")


def usage_entries(text: str) -> str:
    """'  verb ARGS   what it does' lines (description on the same line after two
    or more spaces, or on the deeper indented lines after it) as a definition list."""
    entries = []
    for line in text.split("\n"):
        m = re.match(r"^ {0,2}(?:usage:\s*)?(\S.*?)(?:\s{2,}(\S.*))?$", line)
        if line.startswith("   ") and entries:
            entries[-1][1].append(line.strip())
        elif m and m.group(1) not in ("usage:", "commands:"):
            entries.append([m.group(1), [m.group(2)] if m.group(2) else []])
    out = []
    for n, (synopsis, description) in enumerate(entries):
        verb = synopsis.split()[0]
        if not description:
            following = entries[n + 1] if n + 1 < len(entries) else None
            if following and following[0].split()[0] == verb and following[1]:
                description = following[1]
            else:
                description = [f"see {verb} under COMMAND DETAILS"]
        out += ["**sealgate " + re.sub(r"^sealgate ", "", synopsis).replace("*", "\\*").replace("<", "\\<") + "**",
                ": " + " ".join(description), ""]
    return "\n".join(out)


def command_page(binary: str, version: str) -> str:
    readme = (ROOT / "README.md").read_text()
    description = readme.split("\n\n")[1].strip()
    using = section(readme, "Using it")
    top = help_text(binary, "help")
    commands = top.split("commands:\n", 1)[1]
    details = ""
    for verb, args in (("policy", ("policy", "help")), ("queue", ("queue", "help")),
                       ("portal", ("portal", "help")), ("dns", ("dns",)), ("keys", ("keys",)),
                       ("probe", ("probe",)), ("dkim", ("dkim",))):
        text = help_text(binary, *args)
        if verb == "policy":
            # Free text with its own layout: kept as it is.
            details += f"### {verb}\n\n" + preformatted(text) + "\n"
        else:
            details += f"### {verb}\n\n" + usage_entries(text) + "\n"
    return (
        title("sealgate", 8, version, "System Administration")
        + "# NAME\n\nsealgate \\- outbound SMTP encryption gateway\n\n"
        + "# SYNOPSIS\n\n**sealgate** *COMMAND* [*OPTIONS*]\n\n"
        + "# DESCRIPTION\n\n" + plain_links(description) + "\n\n"
        + "The gateway runs as **sealgate run** under systemd (sealgate.service, as the user "
        + "sealgate); every other command is a tool for its operator.\n\n"
        + "# COMMANDS\n\n" + usage_entries(commands) + "\n"
        + "# COMMAND DETAILS\n\n" + details
        + "# EXAMPLES\n\n" + plain_links(using) + "\n"
        + "# FILES\n\n"
        + "/etc/sealgate/sealgate.yaml\n: the configuration, see **sealgate.yaml**(5)\n\n"
        + "/var/spool/sealgate\n: the spool: every accepted message until it is delivered\n\n"
        + "/var/lib/sealgate/sealgate.db\n: the record of every message, recipient and attempt (SQLite)\n\n"
        + "# SEE ALSO\n\n**sealgate.yaml**(5), **systemctl**(1), **journalctl**(1), "
        + "/usr/share/doc/sealgate/operations.md.gz\n"
    )


def render(markdown: str, out: Path) -> None:
    source = out.with_suffix(out.suffix + ".md")
    source.write_text(markdown)
    subprocess.run(["go-md2man", "-in", str(source), "-out", str(out)], check=True)
    source.unlink()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--binary", required=True)
    p.add_argument("--version", required=True)
    p.add_argument("--out", required=True)
    a = p.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    render(plain_links(tables_to_lists(configuration_page(a.version))), out / "sealgate.yaml.5")
    render(command_page(a.binary, a.version), out / "sealgate.8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
