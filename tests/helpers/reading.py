"""A fixture that runs a test module's tests twice: with the exports read in place, and read in a
forked child (dataprocess.read_ahead) as on a long history, so that what twin process says of odd
and hostile files is checked on both paths. Import it into a module to use it."""
import pytest


@pytest.fixture(autouse=True, params=["read in place", "read aside"])
def both_ways_of_reading(request, monkeypatch):
    from dataprocess import forked, pipeline, read_ahead

    if request.param == "read aside":
        assert forked.can_fork()
        monkeypatch.setattr(pipeline, "READ_AHEAD_BYTES", 0)
        monkeypatch.setattr(read_ahead, "usable_cores", lambda: 2)
    else:
        monkeypatch.setattr(pipeline, "READ_AHEAD_BYTES", 10**15)
    return request.param
