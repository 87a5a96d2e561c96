from krousar_common.runtime import pause_after


def test_a_quick_job_pauses_its_interval() -> None:
    assert pause_after(15, 0.2, max_busy_share=0.05) == 15


def test_a_slow_job_pauses_long_enough_to_stay_under_its_share() -> None:
    took = 4.0
    pause = pause_after(15, took, max_busy_share=0.05)
    assert pause == 76.0 and took / (took + pause) == 0.05


def test_without_a_share_the_interval_is_kept_whatever_the_job_took() -> None:
    assert pause_after(10, 30.0, max_busy_share=1.0) == 10
