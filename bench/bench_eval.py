"""Offline speed and memory of the Pulumi program and the CLI verbs, as users run them.

    .venv/bin/python bench/bench_eval.py --sizes 100 1000 --reps 1          # program modes + verbs
    .venv/bin/python bench/bench_eval.py --sizes 3000 --reps 1 --no-raw --verbs preview   # the expensive size
    .venv/bin/python bench/bench_eval.py --sizes 10 100 --no-verbs          # program modes only
    .venv/bin/python bench/bench_eval.py --sizes 100 1000 --reps 5 --no-program --verbs validate plan audit diff

Program modes (each evaluation in a fresh interpreter, see below): `full` = the whole program
users run (`__main__.py` with the default extensions: rotation and monitoring); `components` =
the same program with extensions off (AgentFleet -> EnvironmentBase + AgentAccess per agent);
`raw` = `bench/raw_main.py`, the `components` resources declared flat (the baseline that prices
the component layer: overhead = components / raw). Verbs (`--verbs`, on by default): `preview
--format json`, `check`, `validate --stack`, `plan`, `audit`, `diff` (the fleet against a copy
with one agent changed), each as a subprocess from the fixture project, with the child's own
wall, CPU (user+sys) and peak RSS (os.wait4); median and minimum CPU over the repetitions (on a
shared machine the minimum is the closest to the verb's own cost).

For each size it generates a fleet (stores and strategies rotate, so every resource kind
appears), then evaluates it under Pulumi's mock runtime (`agentfleet.runner.mockrun`) twice per
repetition, interleaved: `components` runs the real `__main__.py` (AgentFleet -> EnvironmentBase
+ AgentAccess per agent); `raw` runs `bench/raw_main.py`, which declares the very same custom
resources with the same inputs flat under the stack and exports the same stack outputs, with no
component resources. Both run as a program file (runpy), as the language host would. Each evaluation runs in
a fresh interpreter (after a one-agent warm-up that loads the provider SDKs' lazy modules), so
peak RSS (ru_maxrss) belongs to that evaluation alone.

Reported: median wall and CPU seconds per mode (CPU time is the steadier figure on a shared
machine), growth t(1000)/t(100) (target <= 11: linear), component
overhead t(components)/t(raw) (target <= 1.10), peak RSS and the RSS the evaluation added on top
of the imports. Timings are informative only: no test asserts on them.
"""

from __future__ import annotations

import argparse
import json
import resource
import runpy
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

RAW_MAIN = Path(__file__).resolve().parent / "raw_main.py"
"""The baseline program: `__main__.py` rewritten without components."""
STORES = (("aws",), ("vault",), ("aws", "vault"))
STRATEGIES = ("manual", "generated", "openai")
CLASSES = ("internal", "confidential", "customer-data", "payments")


def fleet_yaml(n_agents: int, creds: int = 3) -> str:
    """A valid fleet of `n_agents` x `creds` credentials; stores, strategies, runtimes rotate (within the
    loader's rules: an automated strategy keeps an `aws` copy, `openai` rotates an openai key)."""
    lines = ["version: 1", "defaults: {owner: platform-team}", "agents:"]
    for i in range(n_agents):
        name = f"agent-{i:05d}"
        runtime = (
            "{service: ecs-tasks.amazonaws.com}" if i % 2 == 0
            else f'{{role_arns: ["arn:aws:iam::123456789012:role/runner-{name}"]}}'
        )
        lines += [f"  - name: {name}", f"    owner: team-{i % 7}", f"    runtime: {runtime}", "    credentials:"]
        for j in range(creds):
            strategy = STRATEGIES[(i + 2 * j) % 3]
            stores_of = STORES[(i + j) % 3]
            if strategy != "manual" and "aws" not in stores_of:  # a rotation function rotates the Secrets Manager copy
                stores_of = ("aws", "vault")
            service = "openai" if strategy == "openai" else f"svc{j}"  # the openai adapter rotates openai keys only
            lines.append(
                f"      - {{name: cred-{j}, service: {service}, type: api_key, classification: {CLASSES[(i + j) % 4]},"
                f" rotation: {{strategy: {strategy}}}, stores: [{', '.join(stores_of)}]}}"
            )
    return "\n".join(lines) + "\n"


def raw_main() -> None:
    runpy.run_path(str(RAW_MAIN), run_name="__main__")


def worker(mode: str, fleet_path: Path) -> dict[str, Any]:
    """One evaluation in this (fresh) interpreter."""
    from agentfleet.runner.mockrun import ProgramRun, run_program

    if mode == "components":
        # This package's components only: extension modules (rotation, monitoring) add resources
        # the raw baseline does not declare; `full` is the whole program.
        from agentfleet.components import fleet

        fleet.DEFAULT_EXTENSIONS = ()

    def evaluate(path: Path) -> ProgramRun:
        overrides = {"agentfleet:fleetFile": str(path)}
        if mode in ("components", "full"):
            return run_program("dev", config_overrides=overrides)
        return run_program("dev", config_overrides=overrides, program=raw_main)

    # Warm-up on a one-agent fleet: the provider SDKs load their modules lazily on first use,
    # a constant cost that would otherwise flatter the growth ratio.
    warm = fleet_path.with_name(f"warmup-{mode}.yaml")
    warm.write_text(fleet_yaml(1), encoding="utf-8")
    evaluate(warm)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start, cpu_start = time.perf_counter(), time.process_time()
    run = evaluate(fleet_path)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    rss_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "mode": mode, "seconds": seconds, "cpu": cpu, "resources": len(run.resources),
        "custom": sum(r.custom for r in run.resources),
        "rss_peak_mib": rss_peak / 1024, "rss_added_mib": (rss_peak - rss_before) / 1024,
    }


def measure(mode: str, fleet_path: Path) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, __file__, "--worker", mode, str(fleet_path)],
        capture_output=True, text=True, check=True, cwd=ROOT,
    )
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


PROJECT_DIR = ROOT / "tests" / "project"
"""The fixture project (Pulumi.dev.yaml): what the verbs run against."""


def changed_fleet_yaml(text: str, agent: int) -> str:
    """The same fleet with one agent changed (new owner, one credential's class raised): what a
    typical pull request does, for `diff`."""
    name = f"  - name: agent-{agent:05d}\n"
    start = text.index(name)
    end = text.find("\n  - name: ", start + len(name))
    end = len(text) if end < 0 else end + 1
    block = text[start:end]
    changed = block.replace("    owner: ", "    owner: new-", 1).replace("classification: internal,", "classification: payments,", 1)
    return text[:start] + changed + text[end:]


def verb_commands(fleet: Path) -> dict[str, list[str]]:
    """Each verb as users run it; `diff` compares the fleet with `changed-<fleet>` (one agent changed)."""
    cli = [sys.executable, "-m", "agentfleet"]
    f = str(fleet)
    return {
        "preview": [*cli, "preview", "--fleet", f, "--format", "json"],
        "check": [*cli, "check", "--fleet", f],
        "validate": [*cli, "validate", f, "--stack", "dev"],
        "plan": [*cli, "plan", f, "--format", "json"],
        "audit": [*cli, "audit", f, "--format", "json"],
        "diff": [*cli, "diff", f, str(fleet.with_name(f"changed-{fleet.name}"))],
    }


def measure_verb(cmd: list[str]) -> dict[str, Any]:
    """Wall, CPU and peak RSS of one CLI run (its own rusage, via os.wait4)."""
    import os

    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=PROJECT_DIR, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    return {"seconds": wall, "cpu": usage.ru_utime + usage.ru_stime, "rss_peak_mib": usage.ru_maxrss / 1024,
            "exit": os.waitstatus_to_exitcode(status)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 1000])
    ap.add_argument("--creds", type=int, default=3)
    ap.add_argument("--reps", type=int, default=3, help="repetitions per size and mode (median reported)")
    ap.add_argument("--no-raw", action="store_true", help="skip the raw baseline and the extension-free mode")
    ap.add_argument("--no-verbs", action="store_true", help="skip the CLI verbs")
    ap.add_argument("--no-program", action="store_true", help="skip the program evaluations (verbs only)")
    ap.add_argument("--verbs", nargs="+", choices=sorted(verb_commands(Path("x"))), default=None,
                    help="only these CLI verbs (default: all)")
    ap.add_argument("--worker", nargs=2, metavar=("MODE", "FLEET"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.worker[0], Path(args.worker[1]))))
        return 0

    rows: dict[int, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            path = Path(tmp) / f"fleet-{n}.yaml"
            text = fleet_yaml(n, args.creds)
            path.write_text(text, encoding="utf-8")
            path.with_name(f"changed-{path.name}").write_text(changed_fleet_yaml(text, n // 2), encoding="utf-8")
            modes = () if args.no_program else ("full",) if args.no_raw else ("raw", "components", "full")
            runs: dict[str, list[dict[str, Any]]] = {m: [] for m in modes}
            chosen = [] if args.no_verbs else (args.verbs or list(verb_commands(path)))
            verbs: dict[str, list[dict[str, Any]]] = {v: [] for v in chosen}
            for _ in range(args.reps):
                for mode in modes:  # interleaved: machine noise hits every mode alike
                    runs[mode].append(measure(mode, path))
                for verb, cmd in verb_commands(path).items():
                    if verb in verbs:
                        verbs[verb].append(measure_verb(cmd))
            rows[n] = {"agents": n}
            full = runs.get("full")
            if full:
                rows[n] |= {"resources_full": full[0]["resources"],
                            "t_full": statistics.median(x["seconds"] for x in full),
                            "cpu_full": statistics.median(x["cpu"] for x in full),
                            "rss_full": max(x["rss_peak_mib"] for x in full)}
                print(f"{n:>5} agents  whole program: {rows[n]['resources_full']} resources, "
                      f"{rows[n]['t_full']:.2f}s wall, {rows[n]['cpu_full']:.2f}s cpu, peak RSS {rows[n]['rss_full']:.0f} MiB",
                      flush=True)
            if verbs and not full:
                print(f"{n:>5} agents  CLI verbs, {args.reps} run(s) each:", flush=True)
            for verb, results in verbs.items():
                rows[n][f"verb_{verb}"] = {
                    "seconds": statistics.median(x["seconds"] for x in results),
                    "cpu": statistics.median(x["cpu"] for x in results),
                    "cpu_min": min(x["cpu"] for x in results),
                    "rss_peak_mib": max(x["rss_peak_mib"] for x in results),
                    "exit": results[0]["exit"],
                }
                v = rows[n][f"verb_{verb}"]
                print(f"       {verb:<9} {v['seconds']:7.2f}s wall {v['cpu']:7.2f}s cpu (min {v['cpu_min']:.2f})  peak RSS {v['rss_peak_mib']:6.0f} MiB"
                      f"  exit {v['exit']}", flush=True)
            if args.no_raw or args.no_program:
                continue
            comp, raw = runs["components"], runs["raw"]
            if comp[0]["custom"] != raw[0]["custom"]:
                raise SystemExit(f"baseline declares {raw[0]['custom']} custom resources, components {comp[0]['custom']}")
            rows[n] |= {
                "agents": n, "resources": comp[0]["resources"], "custom": comp[0]["custom"],
                "t_components": statistics.median(r["seconds"] for r in comp),
                "t_raw": statistics.median(r["seconds"] for r in raw),
                "cpu_components": statistics.median(r["cpu"] for r in comp),
                "cpu_raw": statistics.median(r["cpu"] for r in raw),
                "rss_components": max(r["rss_peak_mib"] for r in comp),
                "rss_raw": max(r["rss_peak_mib"] for r in raw),
                "rss_added_components": max(r["rss_added_mib"] for r in comp),
                "rss_added_raw": max(r["rss_added_mib"] for r in raw),
            }
            r = rows[n]
            print(
                f"{n:>5} agents  {r['resources']:>6} resources ({r['custom']} custom)  "
                f"wall: components {r['t_components']:6.2f}s raw {r['t_raw']:6.2f}s ({r['t_components'] / r['t_raw']:.2f}x)  "
                f"cpu: components {r['cpu_components']:6.2f}s raw {r['cpu_raw']:6.2f}s ({r['cpu_components'] / r['cpu_raw']:.2f}x)  "
                f"cpu ms/resource {1000 * r['cpu_components'] / r['resources']:.2f}  "
                f"peak RSS {r['rss_components']:.0f} MiB (raw {r['rss_raw']:.0f}; evaluation added "
                f"{r['rss_added_components']:.0f} / {r['rss_added_raw']:.0f})",
                flush=True,
            )
    sizes = sorted(rows)
    if len(sizes) >= 2:
        small, big = sizes[-2], sizes[-1]
        for mode in ("full", "components", "raw"):
            if f"t_{mode}" not in rows[big] or f"t_{mode}" not in rows[small]:
                continue
            wall = rows[big][f"t_{mode}"] / rows[small][f"t_{mode}"]
            cpu = rows[big][f"cpu_{mode}"] / rows[small][f"cpu_{mode}"]
            print(f"growth {mode}: t({big})/t({small}) = {wall:.2f} wall, {cpu:.2f} cpu (x{big / small:.0f} agents; target <= 11)")
        for verb in verb_commands(Path("x")):
            key = f"verb_{verb}"
            if key in rows[big] and key in rows[small]:
                print(f"growth {verb}: t({big})/t({small}) = {rows[big][key]['seconds'] / rows[small][key]['seconds']:.2f} wall,"
                      f" {rows[big][key]['cpu'] / rows[small][key]['cpu']:.2f} cpu,"
                      f" {rows[big][key]['cpu_min'] / rows[small][key]['cpu_min']:.2f} min cpu")
    big = sizes[-1]
    r = rows[big]
    if "t_raw" in r:
        print(
            f"component overhead at {big} agents: {r['t_components'] / r['t_raw']:.3f}x wall, "
            f"{r['cpu_components'] / r['cpu_raw']:.3f}x cpu (target <= 1.10)"
        )
    print(json.dumps({"sizes": rows}, indent=None))
    return 0


if __name__ == "__main__":
    sys.exit(main())
