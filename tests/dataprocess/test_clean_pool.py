"""dataprocess.clean_pool: texts cleaned in a second process come back cleaned as in place, in
order, with what went with them; big batches do not wedge the pipe; short inputs start nothing."""
import threading

from core.settings import Rules
from dataprocess.clean import clean_text
from dataprocess.clean_pool import TextCleaner

TEXTS = ["Hello THERE 😀", "call me at 555 123 4567", "soooooo good", "www.Example.com/x ok", "",
         "  spaced   out  ", "мы идём", "a@b.co", "line one\nline two"]


def _run(cleaner, texts):
    out = []
    with cleaner:
        for n, text in enumerate(texts):
            out += cleaner.add(text, n)
        out += list(cleaner.drain())
        cleaner.worked = cleaner.started_worker
    return out


def test_worker_cleans_in_order_like_clean_text():
    texts = TEXTS * 40
    cleaner = TextCleaner(Rules(), start_after=10, batch=7, workers=2)
    out = _run(cleaner, texts)
    assert [n for _, n in out] == list(range(len(texts)))   # every text back, in order, with its tag
    assert [text for text, _ in out] == [clean_text(t) for t in texts]
    assert cleaner.worked and not cleaner.started_worker   # a worker did it, and is gone after close


def test_rules_reach_the_worker():
    rules = Rules(lowercase=False, strip_emoji=False)
    out = _run(TextCleaner(rules, start_after=0, batch=3, workers=2), TEXTS)
    assert out[0][0] == "Hello THERE 😀"


def test_batches_larger_than_the_pipe_do_not_deadlock():
    texts = [("word " * 2000) + str(n) for n in range(60)]   # ~10 KB each: ~200 KB a batch
    result = {}
    thread = threading.Thread(target=lambda: result.update(out=_run(
        TextCleaner(Rules(), start_after=0, batch=20, workers=2), texts)), daemon=True)
    thread.start()
    thread.join(timeout=120)
    assert not thread.is_alive(), "the cleaning pipe deadlocked"
    assert [t for t, _ in result["out"]] == [clean_text(t) for t in texts]


def test_short_inputs_and_one_core_clean_in_place():
    short = TextCleaner(Rules(), start_after=100, workers=2)
    assert _run(short, TEXTS) == [(clean_text(t), n) for n, t in enumerate(TEXTS)]
    assert not short.worked
    single = TextCleaner(Rules(), start_after=0, workers=1)
    _run(single, TEXTS * 10)
    assert not single.worked


def test_a_worker_that_dies_is_twins_one_line_error_not_a_runtime_error():

    import pytest

    from core.errors import TwinError
    from dataprocess.errors import BackgroundWorkError

    cleaner = TextCleaner(Rules(), start_after=0, batch=2, workers=2)
    with cleaner, pytest.raises(BackgroundWorkError, match="ended unexpectedly") as caught:
        cleaner.add("one", 0)       # starts the worker
        cleaner._process.kill()     # the worker dies (killed, out of memory, ...)
        cleaner._process.join()
        for n in range(1, 6):
            cleaner.add("text", n)  # the next batch needs the first one back
        list(cleaner.drain())
    assert isinstance(caught.value, TwinError) and not isinstance(caught.value, RuntimeError)
