"""What a password costs this machine (docs/decisions/0026-password-hashing.md): argon2id hash
and verify at the service's parameters (argon2-cffi's default profile, RFC 9106's low-memory
option) and, for comparison, at OWASP's smallest recommended argon2id setting, one at a time
and with one hash per core at once; and what that makes sign-ins per second per core.

    uv run python bench/passwords.py [--rounds 20]

Prints Markdown. The machine's load average is printed with it: on a shared machine the
figures are slower than on a quiet one.
"""

from __future__ import annotations

import argparse
import os
import platform
import secrets
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from importlib.metadata import version

from argon2 import PasswordHasher

from web.accounts.passwords import new_hasher

OWASP_MINIMUM = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
"""OWASP Password Storage Cheat Sheet, argon2id: m=19 MiB, t=2, p=1 (its lowest setting)."""


def _measure(hasher: PasswordHasher, rounds: int) -> dict[str, float]:
    """Medians over ``rounds`` of one hash and one verify: wall and CPU seconds (CPU of the
    whole process, so argon2's lane threads count)."""
    password = secrets.token_urlsafe(12)
    walls, cpus, verify_walls, verify_cpus = [], [], [], []
    stored = hasher.hash(password)
    for _ in range(rounds):
        wall, cpu = time.perf_counter(), time.process_time()
        hasher.hash(password)
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
        wall, cpu = time.perf_counter(), time.process_time()
        assert hasher.verify(stored, password)
        verify_walls.append(time.perf_counter() - wall)
        verify_cpus.append(time.process_time() - cpu)
    return {
        "hash_ms": statistics.median(walls) * 1000,
        "verify_ms": statistics.median(verify_walls) * 1000,
        "verify_cpu_ms": statistics.median(verify_cpus) * 1000,
    }


def _throughput(hasher: PasswordHasher, threads: int, verifies: int) -> float:
    """Verifies per second with ``threads`` running at once (argon2-cffi releases the GIL)."""
    password = secrets.token_urlsafe(12)
    stored = hasher.hash(password)
    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        assert all(pool.map(lambda _: hasher.verify(stored, password), range(verifies)))
    return verifies / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    parser.add_argument("--rounds", type=int, default=20, help="hashes and verifies timed")
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    profiles = [
        ("service: RFC 9106 low memory", new_hasher()),
        ("OWASP minimum", OWASP_MINIMUM),
    ]
    load = os.getloadavg()
    print(
        f"{platform.processor() or platform.machine()}, {cores} cores, "
        f"Python {platform.python_version()}, argon2-cffi {version('argon2-cffi')}; "
        f"load average {load[0]:.1f} at the start; medians of {args.rounds}\n"
    )
    print(
        "| parameters | hash, ms | verify, ms | verify CPU, ms | sign-ins/s per core "
        f"| sign-ins/s, {cores} at once |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for name, hasher in profiles:
        figures = _measure(hasher, args.rounds)
        per_core = 1000 / figures["verify_cpu_ms"]
        machine = _throughput(hasher, cores, max(args.rounds, 2 * cores))
        params = f"t={hasher.time_cost}, m={hasher.memory_cost // 1024} MiB, p={hasher.parallelism}"
        print(
            f"| {name} ({params}) | {figures['hash_ms']:.0f} | {figures['verify_ms']:.0f} "
            f"| {figures['verify_cpu_ms']:.0f} | {per_core:.1f} | {machine:.1f} |"
        )
    print(f"\nload average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
