"""Captions to single-source prompts: the caption splitter, labelled-mixture
captions and the sampling of P weighted prompts per mixture."""

import random
from collections import Counter

import pytest

from speechbrain_textsep.utils.caption_split import (
    MIXTURE_CAPTION_TEMPLATE,
    label_mixture_caption,
    sample_prompts,
    split_caption,
)

pytestmark = pytest.mark.unit

# AudioCaps-style captions and the clauses a reader expects from the rules:
# split on the connectives, keep whole the pairs naming one source or one
# manner, drop leftover connectives and punctuation.
CAPTION_SPLITS = [
    ("A man speaks followed by a dog barking", ["a man speaks", "a dog barking"]),
    (
        "Wind blows while birds chirp and a man and woman talk",
        ["wind blows", "birds chirp", "a man and woman talk"],
    ),
    ("A woman speaks and then a baby cries", ["a woman speaks", "a baby cries"]),
    (
        "A car engine revs, then accelerates away",
        ["a car engine revs", "accelerates away"],
    ),
    ("An engine idles then revs up", ["an engine idles", "revs up"]),
    ("A dog barks and growls", ["a dog barks", "growls"]),
    ("People talking as a bus drives by", ["people talking", "a bus drives by"]),
    (
        "Rain falls on a roof with thunder rumbling in the distance",
        ["rain falls on a roof", "thunder rumbling in the distance"],
    ),
    (
        "Water flows and trickles as birds chirp in the background",
        ["water flows", "trickles", "birds chirp in the background"],
    ),
    (
        "A horn honks several times, followed by a train passing by",
        ["a horn honks several times", "a train passing by"],
    ),
    (
        "Several people clap and cheer while a man speaks over a microphone",
        ["several people clap", "cheer", "a man speaks over a microphone"],
    ),
    (
        "Typing on a computer keyboard while a man speaks",
        ["typing on a computer keyboard", "a man speaks"],
    ),
    (
        "A vehicle passes by, and then a horn honks",
        ["a vehicle passes by", "a horn honks"],
    ),
    (
        "A woman speaks with a crowd murmuring in the background.",
        ["a woman speaks", "a crowd murmuring in the background"],
    ),
    (
        "A helicopter flies overhead as wind blows into a microphone",
        ["a helicopter flies overhead", "wind blows into a microphone"],
    ),
    ("A clock ticks and a bell rings", ["a clock ticks", "a bell rings"]),
    (
        "Food sizzles in a pan while a woman talks",
        ["food sizzles in a pan", "a woman talks"],
    ),
    ("A toilet flushes and water drains", ["a toilet flushes", "water drains"]),
    (
        "Ducks quack, geese honk and water splashes",
        ["ducks quack", "geese honk", "water splashes"],
    ),
    (
        # the slides' example; a shared verb ("food and oil sizzle") is split
        # like any "and", as in the authors' parser
        "A man talking while wood clanks on a metal pan followed by gravel "
        "crunching as food and oil sizzle",
        [
            "a man talking",
            "wood clanks on a metal pan",
            "gravel crunching",
            "food",
            "oil sizzle",
        ],
    ),
    (
        "An adult female speaks and several people laugh, while slight rustling "
        "occurs in the background",
        [
            "an adult female speaks",
            "several people laugh",
            "slight rustling occurs in the background",
        ],
    ),
    ("A bell rings, shortly after a man speaks", ["a bell rings", "a man speaks"]),
    (
        "Sheep bleat nearby, then a man whistles.",
        ["sheep bleat nearby", "a man whistles"],
    ),
    ("Music plays with a man singing along", ["music plays", "a man singing along"]),
    (
        "A motorcycle engine starts and idles before revving",
        ["a motorcycle engine starts", "idles", "revving"],
    ),
    (
        "Insects buzz and birds chirp during a light rain",
        ["insects buzz", "birds chirp", "a light rain"],
    ),
    (
        "A man speaks during a crowd applauding amid music playing",
        ["a man speaks", "a crowd applauding", "music playing"],
    ),
    (
        "Footsteps on gravel followed by a door slams shut",
        ["footsteps on gravel", "a door slams shut"],
    ),
    ("A man speaks as well as a woman laughing", ["a man speaks", "a woman laughing"]),
    (
        "A baby cries; a woman sings along with a guitar",
        ["a baby cries", "a woman sings", "a guitar"],
    ),
    (
        "A goat bleats accompanied by a man yelling",
        ["a goat bleats", "a man yelling"],
    ),
    ("A jet engine roars", ["a jet engine roars"]),
    (
        "A telephone rings, and then a woman answers, after which a man speaks",
        ["a telephone rings", "a woman answers", "a man speaks"],
    ),
    # exceptions: one source, one group of speakers, one manner
    (
        "A man and a woman talk while a baby laughs",
        ["a man and a woman talk", "a baby laughs"],
    ),
    ("Men and women speak while dishes clank", ["men and women speak", "dishes clank"]),
    (
        "Boys and girls shout and scream at a playground",
        ["boys and girls shout", "scream at a playground"],
    ),
    ("A siren wails on and off", ["a siren wails on and off"]),
    (
        "A train moves back and forth along the tracks with a horn blowing",
        ["a train moves back and forth along the tracks", "a horn blowing"],
    ),
    ("A cat meows loudly and repeatedly", ["a cat meows loudly and repeatedly"]),
    ("A dog barks over and over", ["a dog barks over and over"]),
    (
        "Birds chirping and singing with wind blowing",
        ["birds chirping and singing", "wind blowing"],
    ),
    (
        "Clanking and clunking of metal with a man speaking",
        ["clanking and clunking of metal", "a man speaking"],
    ),
    ("A man speaks as well", ["a man speaks as well"]),
    (
        "Heavy rain falls as if poured from a bucket",
        ["heavy rain falls as if poured from a bucket"],
    ),
]


@pytest.mark.parametrize(("caption", "expected"), CAPTION_SPLITS)
def test_split_caption_audiocaps_captions(caption, expected):
    assert split_caption(caption) == expected


def test_enough_real_captions_with_exceptions():
    assert len(CAPTION_SPLITS) >= 30
    multi = [c for c, clauses in CAPTION_SPLITS if " and " in " ".join(clauses)]
    assert len(multi) >= 8  # the exceptions are really exercised


def test_split_caption_normalises_text():
    assert split_caption("  A  DOG\tBarks,   AND a Cat meows!! ") == [
        "a dog barks",
        "a cat meows",
    ]
    # a clause said twice is one source
    assert split_caption("A dog barks, then a dog barks") == ["a dog barks"]
    # clauses of connectives or fillers only are dropped
    assert split_caption("A man speaks and then") == ["a man speaks"]
    assert split_caption("Then, shortly after, a bird sings") == ["a bird sings"]


@pytest.mark.parametrize("caption", ["", "   ", ".", " , ; ", "and then"])
def test_split_caption_without_words_is_an_error(caption):
    with pytest.raises(ValueError, match="no words"):
        split_caption(caption)


@pytest.mark.parametrize("caption", [None, 3, ["a dog barks"], b"a dog"])
def test_split_caption_needs_a_string(caption):
    with pytest.raises(TypeError, match="must be a string"):
        split_caption(caption)


def test_label_mixture_caption():
    assert MIXTURE_CAPTION_TEMPLATE == "The sound mixture of {}"
    assert (
        label_mixture_caption(["violin", "flute"])
        == "The sound mixture of violin and flute"
    )
    assert (
        label_mixture_caption(("acoustic_guitar", "cello", "erhu"))
        == "The sound mixture of acoustic guitar, cello and erhu"
    )
    assert (
        label_mixture_caption(["a", "b", "c", "d"])
        == "The sound mixture of a, b, c and d"
    )
    assert label_mixture_caption([" Dog_bark "]) == "The sound of Dog bark"


@pytest.mark.parametrize(
    ("labels", "error", "match"),
    [
        ([], ValueError, "at least one label"),
        (["violin", ""], ValueError, "empty class label"),
        (["violin", "_"], ValueError, "empty class label"),
        ("violin", TypeError, "list of labels"),
    ],
)
def test_label_mixture_caption_errors(labels, error, match):
    with pytest.raises(error, match=match):
        label_mixture_caption(labels)


def test_sample_prompts_exact_count():
    prompts, weights = sample_prompts(["a", "b", "c"], 3, random.Random(0))
    assert prompts == ["a", "b", "c"]
    assert weights == [1.0, 1.0, 1.0]


@pytest.mark.parametrize(
    ("n_clauses", "n_prompts"), [(1, 1), (1, 4), (2, 3), (2, 5), (3, 7)]
)
def test_sample_prompts_duplicates_weighted_one_over_copies(n_clauses, n_prompts):
    clauses = [f"clause {i}" for i in range(n_clauses)]
    for seed in range(5):
        prompts, weights = sample_prompts(clauses, n_prompts, random.Random(seed))
        assert len(prompts) == len(weights) == n_prompts
        assert prompts[:n_clauses] == clauses  # every clause, in order, first
        copies = Counter(prompts)
        assert set(copies) == set(clauses)
        # as even as possible
        assert max(copies.values()) - min(copies.values()) <= 1
        for prompt, weight in zip(prompts, weights):
            assert weight == pytest.approx(1 / copies[prompt])
        for clause in clauses:  # each clause weighs 1 in total
            total = sum(w for p, w in zip(prompts, weights) if p == clause)
            assert total == pytest.approx(1.0)


def test_sample_prompts_duplicate_example():
    prompts, weights = sample_prompts(["dog", "man"], 3, random.Random(0))
    extra = prompts[2]
    assert prompts[:2] == ["dog", "man"] and extra in ("dog", "man")
    expected = {"dog": [0.5, 1.0], "man": [1.0, 0.5]}[extra]
    assert weights == expected + [0.5]


def test_sample_prompts_random_subset_when_too_many():
    clauses = [f"clause {i}" for i in range(6)]
    subsets = set()
    for seed in range(20):
        prompts, weights = sample_prompts(clauses, 3, random.Random(seed))
        assert weights == [1.0, 1.0, 1.0]
        assert len(set(prompts)) == 3 and set(prompts) <= set(clauses)
        assert prompts == sorted(prompts, key=clauses.index)  # caption order
        subsets.add(tuple(prompts))
    assert len(subsets) > 5  # really random, not the first three


def test_sample_prompts_deterministic_with_seeded_rng():
    clauses = ["a", "b", "c", "d", "e"]
    for n_prompts in (2, 8):
        first = sample_prompts(clauses, n_prompts, random.Random(123))
        again = sample_prompts(clauses, n_prompts, random.Random(123))
        assert first == again
    # rng=None draws from the global `random`, so its seed rules
    random.seed(7)
    first = sample_prompts(clauses, 2)
    random.seed(7)
    assert sample_prompts(clauses, 2) == first


def test_sample_prompts_identical_clauses_are_one():
    prompts, weights = sample_prompts(["dog", "dog", "man"], 2, random.Random(0))
    assert prompts == ["dog", "man"] and weights == [1.0, 1.0]


@pytest.mark.parametrize(
    ("clauses", "n_prompts", "error", "match"),
    [
        (["a"], 0, ValueError, "at least 1"),
        (["a"], -2, ValueError, "at least 1"),
        (["a"], 2.0, TypeError, "must be an int"),
        (["a"], True, TypeError, "must be an int"),
        ([], 2, ValueError, "no clauses"),
        (["a", ""], 2, ValueError, "non-empty strings"),
        (["a", None], 2, ValueError, "non-empty strings"),
        ("a dog barks", 2, TypeError, "list of strings"),
    ],
)
def test_sample_prompts_errors(clauses, n_prompts, error, match):
    with pytest.raises(error, match=match):
        sample_prompts(clauses, n_prompts, random.Random(0))


def test_sample_prompts_rng_must_be_a_random():
    with pytest.raises(TypeError, match="random.Random"):
        sample_prompts(["a", "b"], 1, rng=0)
