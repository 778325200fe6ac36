"""Word stems shared by a question's segments and the phrasings (fusion.language.lexical). No
database."""

from __future__ import annotations


def test_word_stems_and_the_hops_whose_phrasings_share_them() -> None:
    from fusion.language.lexical import action_stems, stems, step_overlap

    assert stems("that specialize {x}") == {"speci"}
    assert stems("more specific than {x}") == {"speci"}
    assert stems("that are a kind of {x}") == {"kind"}  # function and short words carry none
    per_action = action_stems([["more specific than {x}"], ["that subsume {x}"], []])
    # segments run from the outermost hop inwards: hop 1's words are the last segment
    overlap = step_overlap(["that subsume", "that specialize"], 2, per_action, 3)
    assert overlap.tolist() == [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 0.0]]
