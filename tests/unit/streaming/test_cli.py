"""The job's and the status command's flags: every topic and the seed, clear usage errors."""

from __future__ import annotations

import pytest

from streaming import __main__ as status_cli
from streaming import job


def test_every_topic_and_the_seed_have_a_flag() -> None:
    args = job._parser().parse_args(["--trades-topic", "t", "--prices-topic", "p", "--events-topic", "e",
                                     "--dead-letter-topic", "d", "--seed", "7"])
    assert (args.trades_topic, args.prices_topic, args.events_topic, args.dead_letter_topic, args.seed) == (
        "t", "p", "e", "d", 7)
    assert job._parser().parse_args([]).seed == 1  # the generator's default seed


def test_a_new_users_cash_follows_the_seed_unless_one_amount_is_given() -> None:
    settings = job.JobSettings("k:9092", "ks", "/tmp/cp", cassandra=None, seed=7)  # type: ignore[arg-type]
    assert callable(settings.opening)
    assert job.JobSettings("k:9092", "ks", "/tmp/cp", cassandra=None,  # type: ignore[arg-type]
                           opening_cash_cents=500).opening == 500


@pytest.mark.parametrize("argv", [["--seed", "-1"], ["--seed", "x"], ["--max-offsets-per-trigger", "0"]])
def test_bad_numbers_are_usage_errors(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        job._parser().parse_args(argv)
    assert exit_.value.code == 2 and "expected a whole number" in capsys.readouterr().err


def test_help_says_how_to_start_and_stop(capsys: pytest.CaptureFixture[str]) -> None:
    for parser in (job._parser(), status_cli._parser()):
        with pytest.raises(SystemExit):
            parser.parse_args(["--help"])
        assert "bin/stockafolio run" in " ".join(capsys.readouterr().out.split())


def test_local_master_gets_the_task_slots_a_cluster_master_is_kept():
    from streaming.job import master

    assert master("local[2]", 4) == "local[4]"
    assert master("local[*]", 4) == master("local", 4) == "local[4]"
    assert master("local[2]", 0) == "local[2]"
    for cluster in ("spark://10.0.1.5:7077", "yarn", "local-cluster[2,1,1024]"):
        assert master(cluster, 4) == cluster


def test_more_local_task_slots_mean_fewer_join_reads_per_task():
    from streaming.job import local_read_conf

    assert local_read_conf("local[2]", 4) == {"spark.cassandra.concurrent.reads": "128"}
    assert local_read_conf("local[2]", 0) == {} == local_read_conf("spark://10.0.1.5:7077", 4)


def test_executors_read_and_write_only_on_a_cluster_unless_told() -> None:
    never = {"executor_write_users": 10**9, "driver_read_users": 10**9}
    assert job.executor_work("local[2]", 4, None, None) == never == job.executor_work("local", 0, None, None)
    assert job.executor_work("spark://10.0.1.5:7077", 4, None, None) == {
        "executor_write_users": 5_000, "driver_read_users": 10_000}
    assert job.executor_work("local[2]", 4, 1, 0) == {"executor_write_users": 1, "driver_read_users": 0}


def test_the_collector_freezes_what_a_batch_leaves_and_collects_it_all_now_and_then() -> None:
    import gc
    import weakref

    class Node:
        pass

    collector = job.Collector()
    was_enabled = gc.isenabled()
    gc.disable()  # no automatic collection in between: the test decides when one runs
    try:
        node = Node()
        node.me = node  # a reference cycle: only the cycle collector frees it
        gone = weakref.ref(node)
        del node
        collector.after_batch()
        assert gc.get_freeze_count() > 0
        gc.collect()
        assert gone() is not None  # frozen: ordinary collections leave it alone
        collector.batches = job.Collector.FULL_EVERY - 1
        collector.after_batch()  # every FULL_EVERY batches: unfreeze, collect everything, freeze again
        assert gone() is None and collector.batches == 0
    finally:
        gc.unfreeze()
        if was_enabled:
            gc.enable()
