"""``lfm demo`` (the monitor's demonstration): real calls, one readable table."""
from __future__ import annotations

from lfm.cli import main


def test_demo_prints_a_table_of_real_calls(capfd):
    assert main(["demo", "--quick"]) == 0
    out = capfd.readouterr().out
    lines = out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("call"))
    assert "memory MB" in lines[header] and "cores" in lines[header]
    rows = {line.split("  ")[0].strip(): line for line in lines[header + 2:] if line.strip()
            and not line.startswith("memory:")}
    assert "killed: memory limit" in rows["grow, limit 200 MB"]
    assert all(" ok " in rows[name] for name in ("matmul n=300", "child process 250 MB",
                                                 "sleep 0.5 s", "matmul n=1500 inline"))
    child_memory = float(rows["child process 250 MB"].split()[5])
    assert child_memory >= 250
