"""How long ``common.photo_sources.photo_files`` takes to list a large ``--source`` folder, before any photo
is read (``common.images.photo_files`` in a ``--baseline`` revision from before ``common/photo_sources.py``).

Builds a scratch tree in a temporary folder (removed at the end): ``--files`` empty ``.png`` files spread
over ``--folders`` folders two levels deep (``lot_<i>/cam_<j>/img_<k>.png``, as a line's lots and cameras
are kept), then lists it with ``photo_files(<tree>)``: the walk, the suffix and file checks of every name,
the refusals of MVTec masks, earlier outputs and masks beside photos, and the UTF-8 check of every path.
Each listing runs in a fresh interpreter (one warm-up listing, then one timed), ``--rounds`` times.

With ``--baseline REV`` the ``common`` package of that git revision (``git archive``) is timed in the
same run, the two taking turns within each round (each round starting with the other one), so that the
machine's load falls on both alike; both must list the same files. The report gives the best round of
each, in files per second and as the ratio of the times.

Usage::

    PYTHONPATH=. python bench/photo_listing.py --baseline d405db9 --out bench/results
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from report import bench_parser, command_line, machine_info, note_load_after, run_section, write_report

ROOT = Path(__file__).resolve().parent.parent


def build_tree(root: Path, files: int, folders: int) -> None:
    """``files`` empty ``.png`` files in ``folders`` folders ``lot_<i>/cam_<j>`` (100 cameras a lot)."""
    for index in range(files):
        folder = index % folders
        path = root / f"lot_{folder // 100:03d}" / f"cam_{folder % 100:03d}" / f"img_{index:06d}.png"
        if index < folders:
            path.parent.mkdir(parents=True)
        path.touch()


def time_listing(tree: str) -> dict:
    """Worker: one warm-up listing of ``tree``, then one timed; wall and CPU seconds, what was listed.

    ``common.images`` in a ``--baseline`` revision from before ``common/photo_sources.py``: looked for
    in that revision's ``common`` folder: trying the import would find the installed tree's module
    through the editable install (``make setup``), and time it in the baseline's place.
    """
    import common

    moved = Path(common.__file__).with_name("photo_sources.py").is_file()
    listing = importlib.import_module("common.photo_sources" if moved else "common.images")
    listing.photo_files(tree)
    wall, cpu = time.perf_counter(), time.process_time()
    files, _ = listing.photo_files(tree)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    digest = hashlib.sha256("\n".join(map(str, files)).encode("utf-8", "surrogateescape")).hexdigest()
    return {"wall": wall, "cpu": cpu, "files": len(files), "digest": digest[:16], "module": listing.__file__}


def git(*arguments: str) -> str:
    return subprocess.run(["git", *arguments], cwd=ROOT, check=True, capture_output=True, text=True).stdout


def checkout_line() -> str:
    """This checkout's commit, with ``+ changes`` where tracked files differ from it."""
    changed = git("status", "--porcelain", "--untracked-files=no").strip()
    return git("rev-parse", "--short", "HEAD").strip() + (" + changes not committed" if changed else "")


def extract_baseline(revision: str, folder: Path) -> str:
    """``common/`` of ``revision`` into ``folder``; returns the revision's short hash."""
    archive = folder / "common.tar"
    archive.write_bytes(
        subprocess.run(
            ["git", "archive", revision, "common"], cwd=ROOT, check=True, capture_output=True
        ).stdout
    )
    with tarfile.open(archive) as tar:
        tar.extractall(folder, filter="data")
    return git("rev-parse", "--short", f"{revision}^{{commit}}").strip()


def run_worker(code_root: Path, tree: Path) -> dict:
    """:func:`time_listing` in a fresh interpreter importing ``common`` from ``code_root``."""
    env = {**os.environ, "PYTHONPATH": str(code_root)}
    command = [sys.executable, __file__, "--time-tree", str(tree)]
    done = subprocess.run(command, env=env, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.splitlines()[-1])


def time_sides(sides: dict[str, Path], tree: Path, rounds: int) -> dict[str, list[dict]]:
    """Every round of every side, the sides taking turns (each round starting one side later)."""
    timed: dict[str, list[dict]] = {name: [] for name in sides}
    names = list(sides)
    for index in range(rounds):
        for name in names[index % len(names) :] + names[: index % len(names)]:
            timed[name].append(run_worker(sides[name], tree))
            print(f"round {index + 1} {name}: {timed[name][-1]['wall']:.3f} s", file=sys.stderr)
    return timed


def table(timed: dict[str, list[dict]], files: int) -> list[str]:
    first = min(row["wall"] for row in next(iter(timed.values())))
    lines = [
        "| code | best wall s | best CPU s | files/s (wall) | µs per file | time vs first row "
        "| rounds, wall s |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for name, rows in timed.items():
        wall, cpu = min(row["wall"] for row in rows), min(row["cpu"] for row in rows)
        each = ", ".join(f"{row['wall']:.2f}" for row in rows)
        lines.append(
            f"| {name} | {wall:.3f} | {cpu:.3f} | {files / wall:,.0f} | {1e6 * wall / files:.1f} "
            f"| {wall / first:.2f}x | {each} |"
        )
    return lines


def listed_by(timed: dict[str, list[dict]]) -> str:
    """The function each side timed, once each: ``common.images``'s in a revision from before
    ``common/photo_sources.py``."""
    modules = dict.fromkeys(Path(rows[0]["module"]).stem for rows in timed.values())
    return " and ".join(f"`common.{module}.photo_files(<tree>)`" for module in modules)


def main(argv: Sequence[str] | None = None) -> int:
    parser = bench_parser(__doc__)
    parser.add_argument("--files", type=int, default=20_000, help="files in the tree (default 20000)")
    parser.add_argument(
        "--folders", type=int, default=2_000, help="folders they are spread over (default 2000)"
    )
    parser.add_argument(
        "--rounds", type=int, default=3, help="timed listings per side, best kept (default 3)"
    )
    parser.add_argument("--baseline", metavar="REV", help="also time common/ of this git revision")
    parser.add_argument("--time-tree", help=argparse.SUPPRESS)  # the worker of one listing
    args = parser.parse_args(argv)
    if args.time_tree:
        print(json.dumps(time_listing(args.time_tree)))
        return 0
    if args.files < 1 or not 1 <= args.folders <= args.files or args.rounds < 1:
        parser.error("need --files >= 1, 1 <= --folders <= --files, --rounds >= 1")
    command = command_line(__file__, argv)
    info = machine_info({"load_avg_1m": f"{os.getloadavg()[0]:.2f}"})
    with tempfile.TemporaryDirectory(prefix="photo_listing_") as tmp:
        work = Path(tmp)
        sides = {f"this checkout ({checkout_line()})": ROOT}
        if args.baseline:
            (work / "baseline").mkdir()
            sides = {
                f"baseline ({extract_baseline(args.baseline, work / 'baseline')})": work / "baseline",
                **sides,
            }
        print(f"writing {args.files} files in {args.folders} folders to {work / 'tree'} ...", file=sys.stderr)
        build_tree(work / "tree", args.files, args.folders)
        timed = time_sides(sides, work / "tree", args.rounds)
        note_load_after(info)
    listed = {(row["files"], row["digest"]) for rows in timed.values() for row in rows}
    if len(listed) != 1 or next(iter(listed))[0] != args.files:
        raise RuntimeError(f"the listings differ or miss files (count, digest): {sorted(listed)}")
    lines = [
        "# Listing a large photo folder",
        "",
        f"{listed_by(timed)} on {args.files} empty `.png` files in {args.folders} folders "
        f"(`lot_<i>/cam_<j>/`), each listing in a fresh interpreter after one warm-up listing; best of "
        f"{args.rounds} rounds, the rows taking turns within each round. Every listing named the same files.",
        "",
        *table(timed, args.files),
        "",
        *run_section(
            command, info, *(f"- {name}: `common` from {row[0]['module']}" for name, row in timed.items())
        ),
    ]
    write_report(args.out / "photo_listing.md", "\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
