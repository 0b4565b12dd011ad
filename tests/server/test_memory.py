"""Large blocks go back to the system when freed (esc_pulumi/server/memory.py): after
``map_large_blocks`` a block of a MB is a mapping of its own even once glibc has seen a larger
block freed (which, by default, makes it serve the next ones from the heap, where they stay)."""
from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

PROGRAM = textwrap.dedent("""
    import sys
    from esc_pulumi.server.memory import map_large_blocks

    def in_heap(addr):
        for line in open("/proc/self/maps"):
            if line.rstrip().endswith("[heap]"):
                lo, hi = (int(x, 16) for x in line.split()[0].split("-"))
                if lo <= addr < hi:
                    return True
        return False

    if sys.argv[1] == "mapped":
        assert map_large_blocks()
    big = b"x" * (8 << 20)
    del big  # by default this raises glibc's threshold to 8 MB
    blocks = [b"y" * (1 << 20) for _ in range(5)]
    print(sum(in_heap(id(b)) for b in blocks))
""")


def _blocks_in_heap(mode: str) -> int:
    out = subprocess.run([sys.executable, "-c", PROGRAM, mode], capture_output=True, text=True, check=True)
    return int(out.stdout)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator and /proc are Linux's")
def test_large_blocks_are_mappings_of_their_own() -> None:
    assert _blocks_in_heap("default") == 5  # what the setting is for
    assert _blocks_in_heap("mapped") == 0
