"""Fetching the demo's real recordings: Debian packages, downloaded and unpacked, never installed.

`apt-get download` + `dpkg -x` into a cache folder (no root needed for those); fluidsynth, which
renders the music notes, is the one program installed (`apt-get install`, root). Everything is
reused from the cache on later runs.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

__all__ = ["PACKAGES", "DemoError", "Package", "ensure_fluidsynth", "fetch_packages"]


class DemoError(RuntimeError):
    """The demo corpus cannot be built here; the message says what is missing and what to do."""


@dataclass(frozen=True)
class Package:
    name: str
    license: str
    why: str


PACKAGES = (
    Package(
        "hedgewars-data",
        "GFDL-1.3",
        "speech: 15 voice packs saying the same ~60 phrases; game sounds",
    ),
    Package(
        "tuxpaint-stamps-default",
        "GPL-2",
        "speech: object names read by one speaker per language; animal sounds",
    ),
    Package("fillets-ng-data-cs", "GPL-2", "speech: two voice actors (small and big fish), Czech"),
    Package("fillets-ng-data-nl", "GPL-2", "speech: two voice actors (small and big fish), Dutch"),
    Package(
        "asterisk-core-sounds-en-wav",
        "CC-BY-SA-3.0",
        "speech: telephone prompts, one speaker (8 kHz)",
    ),
    Package("sonic-pi-samples", "CC0", "music: loops, drums, bass, ambient samples"),
    Package("hydrogen-drumkits", "GPL-2+ / CC", "music: drum hits from 14 kits"),
    Package(
        "fluid-soundfont-gm", "MIT", "music: the General MIDI soundfont notes are rendered from"
    ),
    Package("timgm6mb-soundfont", "GPL-2", "music: a second soundfont, for unseen-timbre probes"),
    Package(
        "minetest-data", "CC-BY-SA-3.0", "environment: water, lava, fire, footsteps, doors, glass"
    ),
    Package("wesnoth-1.16-data", "GPL-2+", "environment: animals, weapons, fire, explosions"),
    Package(
        "sound-theme-freedesktop", "GPL-2+ / CC-BY-SA", "environment: bells, alarms, phones, camera"
    ),
)


def _run(command: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)


def fetch_packages(cache: Path, packages: tuple[Package, ...] = PACKAGES) -> Path:
    """Download and unpack the packages into `cache`; returns the unpacked root.

    Raises:
        DemoError: apt-get or dpkg is missing, or a package cannot be downloaded.
    """
    for tool in ("apt-get", "dpkg"):
        if shutil.which(tool) is None:
            raise DemoError(
                f"the demo corpus is built from Debian packages and needs {tool}, which this machine "
                "lacks; on other systems ingest your own audio with --source folder"
            )
    debs, root = cache / "debs", cache / "root"
    debs.mkdir(parents=True, exist_ok=True)
    root.mkdir(parents=True, exist_ok=True)
    missing = [p for p in packages if not list(debs.glob(f"{p.name}_*.deb"))]
    if missing:
        print(f"downloading {len(missing)} Debian package(s) into {debs}:", file=sys.stderr)
        for package in missing:
            print(f"  {package.name} ({package.license}): {package.why}", file=sys.stderr)
        result = _run(["apt-get", "download", *(p.name for p in missing)], cwd=debs)
        if result.returncode != 0 and "Unable to locate" in result.stderr:
            print("  package lists are empty: running apt-get update once", file=sys.stderr)
            _run(["apt-get", "update"])
            result = _run(["apt-get", "download", *(p.name for p in missing)], cwd=debs)
        if result.returncode != 0:
            raise DemoError(f"apt-get download failed: {result.stderr.strip()[-500:]}")
    for package in packages:
        marker = root / f".{package.name}.unpacked"
        if marker.exists():
            continue
        (deb,) = sorted(debs.glob(f"{package.name}_*.deb"))[-1:]
        result = _run(["dpkg", "-x", str(deb), str(root)])
        if result.returncode != 0:
            raise DemoError(f"dpkg -x {deb.name} failed: {result.stderr.strip()[-500:]}")
        marker.touch()
    return root


def ensure_fluidsynth() -> str:
    """Path of the fluidsynth program, installing it with apt-get when it is missing.

    Raises:
        DemoError: it is missing and cannot be installed.
    """
    found = shutil.which("fluidsynth")
    if found:
        return found
    if shutil.which("apt-get") is None:
        raise DemoError(
            "fluidsynth is needed to render the demo's music notes; install it and rerun"
        )
    print("installing fluidsynth (renders the demo's music notes)", file=sys.stderr)
    result = _run(["apt-get", "install", "-y", "--no-install-recommends", "fluidsynth"])
    if result.returncode != 0 or shutil.which("fluidsynth") is None:
        raise DemoError(
            f"apt-get install fluidsynth failed (root needed?): {result.stderr.strip()[-500:]}"
        )
    return str(shutil.which("fluidsynth"))
