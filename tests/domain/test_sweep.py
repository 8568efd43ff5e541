"""Discovery's sweep, decided without Graph or storage: what is read in which order, and how
the cursor moves."""

from __future__ import annotations

from shared.domain.sweep import SweepState, advance, left_in_sweep, sweep_order

IDS = [f"sp{n:02d}" for n in range(10)]  # sorted, as the sweep keeps them


def test_new_principals_come_first_then_the_sweep_after_its_cursor() -> None:
    known = set(IDS) - {"sp07", "sp02"}
    assert sweep_order(IDS, known, first={"sp05"}, cursor="sp04") == ["sp02", "sp07", "sp06", "sp08", "sp09"]
    assert sweep_order(IDS, known, first=set(), cursor="") == ["sp02", "sp07", *sorted(known)]


def test_the_cursor_moves_over_answered_ids_and_stops_at_the_first_not_answered() -> None:
    state = advance(SweepState(), IDS, covered={"sp00", "sp01", "sp02", "sp04"}, now="t1")
    assert state == SweepState("sp02", "t1", None)
    assert left_in_sweep(state, IDS) == 7
    assert advance(state, IDS, covered=set(), now="t2") == state  # no answer: no move, same start
    # sp04 was answered in the run before, out of the sweep's order: it is read again in turn
    later = advance(state, IDS, covered={"sp03", "sp05"}, now="t3")
    assert later == SweepState("sp03", "t1", None)


def test_a_sweep_that_reaches_the_last_id_is_complete_and_the_next_starts_over() -> None:
    state = advance(SweepState("sp06", "t1", "t0"), IDS, covered={"sp07", "sp08", "sp09"}, now="t5")
    assert state == SweepState("", None, "t5")
    assert left_in_sweep(state, IDS) == 0
    assert sweep_order(IDS, set(IDS), first=set(), cursor=state.cursor) == IDS
    assert left_in_sweep(SweepState(), IDS) == len(IDS)  # never swept


def test_ids_that_appear_or_go_between_runs_do_not_stall_the_cursor() -> None:
    state = SweepState("sp03x", "t1", None)  # sp03x was deleted since the last run
    assert sweep_order(IDS, set(IDS), first=set(), cursor=state.cursor)[0] == "sp04"
    assert advance(state, IDS, covered={"sp04"}, now="t2").cursor == "sp04"
    assert advance(SweepState(), [], covered=set(), now="t3") == SweepState("", None, "t3")  # empty tenant
