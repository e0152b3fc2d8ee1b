"""Every use of a private API of Amaranth or cocotb, in one place (tests/test_compat.py
fails loudly when an upgrade changes one of them)."""
from __future__ import annotations

# AnyConst and AnySeq (values the solver picks once per trace, or anew every cycle) are
# not re-exported by amaranth.hdl in 0.5; the RTLIL backend emits them as yosys'
# $anyconst and $anyseq.
from amaranth.hdl._ast import AnyConst, AnySeq

__all__ = ["AnyConst", "AnySeq", "silence_unused", "without_build_flag"]


def silence_unused(elaboratable) -> None:
    """No "created but never used" warning for ``elaboratable`` (Amaranth's
    ``MustUse`` reads this name-mangled attribute when the object is collected)."""
    elaboratable._MustUse__silence = True


def without_build_flag(runner, flag: str) -> None:
    """Leave ``flag`` out of the first command of a cocotb runner's build (its private
    ``_build_command`` returns the build's commands, the simulator's own first)."""
    command = runner._build_command

    def without() -> list:
        cmds = command()
        cmds[0] = [arg for arg in cmds[0] if arg != flag]
        return cmds

    runner._build_command = without
