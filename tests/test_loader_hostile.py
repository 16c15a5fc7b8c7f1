"""Hostile fleet files: every input ends in a fleet or `FILE:LINE: message` lines, exit 0 or 1.

Alias bombs, deep nesting (which segfaults libyaml's composer), odd encodings, NUL bytes, bad
tags and huge integers each get their own message, in bounded time and memory. A bounded
property-based fuzz test mutates the sample fleet and asserts the same of every mutant.
"""

from __future__ import annotations

import io
import re
import resource
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agentfleet.cli.main import main
from agentfleet.core import loader
from agentfleet.core.loader import FleetError, Problem, load_fleet, parse_fleet

from tests.conftest import REPO

SAMPLE = (REPO / "tests" / "project" / "agents.yaml").read_bytes()


def _bomb(levels: int = 9) -> bytes:
    out = [b"a: &a ['x','x','x','x','x','x','x','x','x']"]
    for i in range(levels):
        prev, cur = chr(97 + i).encode(), chr(98 + i).encode()
        out.append(cur + b": &" + cur + b" [" + b",".join([b"*" + prev] * 9) + b"]")
    return b"\n".join(out) + b"\n"


# (name, input, line, substring of the one message expected on that line)
HOSTILE: tuple[tuple[str, bytes, int, str], ...] = (
    ("alias-bomb", _bomb(), 1, "alias bomb"),
    ("deep-flow-50k", b"[" * 50_000 + b"]" * 50_000, 1, "levels deep"),
    ("deep-block-dashes", b"- " * 50_000 + b"x\n", 1, "levels deep"),
    ("deep-5k-mapping", b"a: " + b"{a: " * 5_000 + b"1" + b"}" * 5_000 + b"\n", 1, "levels deep"),
    ("self-alias", b"version: 1\nagents: &a [*a]\n", 2, "levels deep (through aliases)"),
    ("utf-16-bom", SAMPLE.decode().encode("utf-16"), 1, "UTF-16"),
    ("utf-16-no-bom", SAMPLE.decode().encode("utf-16-le"), 1, "NUL byte"),
    ("utf-32", SAMPLE.decode().encode("utf-32"), 1, "UTF-32"),
    ("latin-1", b"version: 1\n# caf\xe9\n", 2, "not UTF-8"),
    ("nul-byte", b"version: 1\nagents:\x00\n", 2, "NUL byte"),
    ("too-large", b"#" * (loader.MAX_FILE_BYTES + 1), 0, "at most"),
)

BAD_SCALARS: tuple[tuple[str, str], ...] = (
    ("!!int x", "cannot be read as an integer"),
    ("!!float abc", "cannot be read as a number"),
    ("!!timestamp foo", "cannot be read as a date or time"),
    ("!!timestamp 2020-99-99", "cannot be read as a date or time"),
    ("5" * 5000, "too large"),
    ("!foo 1", "tag `!foo` is not allowed"),
    ("!!python/object/apply:os.system [ls]", "is not allowed"),
    ("!!binary aGVsbG8=", "is not allowed"),
)


def problems(data: bytes) -> list[Problem]:
    with pytest.raises(FleetError) as exc:
        parse_fleet(data, "f.yaml")
    return exc.value.problems


@pytest.mark.parametrize("name,data,line,text", HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_input_gets_one_clear_message(name: str, data: bytes, line: int, text: str) -> None:
    [p] = problems(data)
    assert p.line == line and text in p.message, str(p)


@pytest.mark.parametrize("scalar,text", BAD_SCALARS, ids=[s[0][:20] for s in BAD_SCALARS])
def test_bad_scalar_is_reported_on_its_line_and_nothing_else_about_it(scalar: str, text: str) -> None:
    # Put the bad scalar where an integer belongs: its own message replaces the schema's.
    lines = SAMPLE.decode().splitlines()
    at = next(i for i, ln in enumerate(lines) if re.search(r"\bdays: \d+", ln))
    lines[at] = re.sub(r"days: \d+\}", f"days: {scalar}" + "}", lines[at])
    found = problems("\n".join(lines).encode())
    assert [(p.line, text in p.message) for p in found] == [(at + 1, True)], found


def test_merge_keys_still_work_and_explicit_keys_win() -> None:
    text = (
        "version: 1\nagents:\n  - name: a1\n    runtime: {service: ecs-tasks.amazonaws.com}\n"
        "    credentials:\n      - &base {name: k1, service: openai, type: api_key}\n"
        "      - {<<: *base, name: k2, type: token}\n"
    )
    creds = parse_fleet(text, "f.yaml").agents[0].credentials
    assert [(c.name, c.service, c.type) for c in creds] == [("k1", "openai", "api_key"), ("k2", "openai", "token")]
    [p] = problems(text.replace("*base", "*base, oops: 1").encode())
    assert p.line == 7 and "unknown key `oops`" in p.message


def test_yaml_comment_holding_a_key_is_refused_and_masked() -> None:
    fake = "sk-live-4eC39HqLyjWDarjtT1zdp7dc"  # pragma: allowlist secret
    text = SAMPLE + f"\n# old key: {fake}\n".encode()
    [p] = problems(text)
    assert p.line == SAMPLE.count(b"\n") + 2 and "comment" in p.message
    assert fake not in p.message
    # A comment without a key is fine.
    assert parse_fleet(SAMPLE + b"\n# rotate monthly, see docs\n", "f.yaml").agents


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (2 * 1024**3, 2 * 1024**3))


@pytest.mark.parametrize("name", ["alias-bomb", "deep-flow-50k", "utf-16-bom"])
def test_cli_exits_1_in_a_real_process_with_bounded_memory(tmp_path: Path, name: str) -> None:
    """A separate process: a segfault or MemoryError would show as a signal or traceback here."""
    data = next(h[1] for h in HOSTILE if h[0] == name)
    f = tmp_path / "agents.yaml"
    f.write_bytes(data)
    run = subprocess.run(
        [sys.executable, "-m", "agentfleet", "validate", str(f)], capture_output=True, text=True,
        timeout=60, check=False, preexec_fn=_limit_memory,
    )
    assert run.returncode == 1, run.stderr
    assert "Traceback" not in run.stderr
    assert re.match(rf"^{re.escape(str(f))}:\d+: \S", run.stderr)


# ---- property-based fuzzing of the sample ----

SNIPPETS = (
    b"&a ", b"*a", b"<<: *a\n", b"!!int ", b"!!float ", b"!!timestamp ", b"!!str ", b"!!binary ", b"!x ",
    b"[", b"]", b"{", b"}", b"? ", b": ", b"- ", b"\t", b"\x00", b"\xff", b"\xe9", b"'", b'"', b"#",
    b"9" * 40, b"-1", b".inf", b".nan", b"null", b"~", b"yes", b"0x1F", b"2020-99-99",
    b"\n  - ", b"\n    ", b"|\n  ", b">-\n", b"\xef\xbb\xbf", b"\r", b"\\u0000", b"%YAML 1.1\n---\n",
)

mutation = st.one_of(
    st.tuples(st.just("insert"), st.integers(0, len(SAMPLE)), st.sampled_from(SNIPPETS)),
    st.tuples(st.just("insert"), st.integers(0, len(SAMPLE)), st.binary(min_size=1, max_size=8)),
    st.tuples(st.just("delete"), st.integers(0, len(SAMPLE)), st.integers(1, 40)),
    st.tuples(st.just("dup"), st.integers(0, len(SAMPLE)), st.integers(1, 200)),
)

def mutate(data: bytes, ops: list[tuple[str, int, object]]) -> bytes:
    for kind, at, arg in ops:
        at = min(at, len(data))
        if kind == "insert":
            assert isinstance(arg, bytes)
            data = data[:at] + arg + data[at:]
        elif kind == "delete":
            assert isinstance(arg, int)
            data = data[:at] + data[at + arg:]
        else:
            assert isinstance(arg, int)
            data = data[:at] + data[at:at + arg] + data[at:]
    return data


@settings(max_examples=400, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(mutation, min_size=1, max_size=6))
def test_fuzzed_mutants_end_in_a_fleet_or_file_line_messages(ops: list[tuple[str, int, object]]) -> None:
    data = mutate(SAMPLE, ops)
    n_lines = data.count(b"\n") + 1
    try:
        fleet = parse_fleet(data, "f.yaml")
    except FleetError as exc:
        assert exc.problems, "a FleetError always names its problems"
        for p in exc.problems:
            assert p.file == "f.yaml" and 0 <= p.line <= n_lines + 1, str(p)
            assert p.message.strip(), str(p)
    else:
        assert fleet.agents


def test_cli_agrees_on_exit_codes_for_mutants(tmp_path: Path) -> None:
    """The CLI path (file -> validate) gives 0/1 and FILE:LINE lines for a sample of mutants."""
    f = tmp_path / "agents.yaml"
    rng_ops = [[("insert", 40 * i, SNIPPETS[i % len(SNIPPETS)])] for i in range(len(SNIPPETS))]
    for ops in rng_ops:
        f.write_bytes(mutate(SAMPLE, ops))  # type: ignore[arg-type]
        out, err = io.StringIO(), io.StringIO()
        code = main(["validate", str(f)], out, err)
        assert code in (0, 1)
        if code == 1:
            *lines, summary = err.getvalue().splitlines()
            assert lines and all(re.match(rf"^{re.escape(str(f))}:\d+: ", ln) for ln in lines)
            assert summary.endswith("nothing was planned")
    # load_fleet reads no more than the bound into memory.
    big = tmp_path / "big.yaml"
    big.write_bytes(b"#" * (loader.MAX_FILE_BYTES + 10))
    with pytest.raises(FleetError, match="at most"):
        load_fleet(big)
