"""Paired significance tests (fusion.learn.stats). No database."""

from __future__ import annotations

import pytest

from fusion.learn.stats import paired_outcomes, sign_test


def test_sign_test_on_hand_checked_splits() -> None:
    # two-sided exact binomial tail: 5 of 5 one way is 2 * (1/2)^5; 8 of 10 is
    # 2 * (C(10,0) + C(10,1) + C(10,2)) / 2^10
    assert sign_test(5, 0) == pytest.approx(2 / 32)
    assert sign_test(2, 8) == pytest.approx(2 * 56 / 1024)
    assert sign_test(3, 3) == 1.0
    assert sign_test(0, 0) == 1.0


def test_paired_outcomes_count_the_questions_only_one_model_answers() -> None:
    first = [True, True, False, False, True]
    second = [True, False, True, False, False]
    assert paired_outcomes(first, second) == (2, 1)
    assert paired_outcomes(second, first) == (1, 2)
    # by hand: 2 of 3 discordant questions either way, p = 2 * (1 + 3) / 8 = 1
    assert sign_test(*paired_outcomes(first, second)) == 1.0
    assert sign_test(6, 0) == pytest.approx(2 / 64)
    with pytest.raises(ValueError):
        paired_outcomes([True], [True, False])
