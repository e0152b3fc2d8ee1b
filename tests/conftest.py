"""Shared fixtures: the simulators to run hardware tests on, skipped with a reason."""
import pytest

from accelgen.sim import runner

HDL_SIMS = ("icarus", "verilator")
#: the Amaranth simulator's runs are the fast subset that mutation testing runs
ALL_SIMS = (pytest.param("amaranth", marks=pytest.mark.mutation),) + HDL_SIMS


def require_sim(sim: str) -> None:
    """Skip (with the printed reason) when ``sim`` cannot run on this machine."""
    reason = runner.unavailable(sim)
    if reason:
        pytest.skip(f"{sim}: {reason}")


@pytest.fixture(params=ALL_SIMS)
def any_sim(request):
    require_sim(request.param)
    return request.param


@pytest.fixture(params=HDL_SIMS)
def hdl_sim(request):
    require_sim(request.param)
    return request.param
