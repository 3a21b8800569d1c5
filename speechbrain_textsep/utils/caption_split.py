"""Captions of sound mixtures turned into single-source text prompts.

The weakly-supervised bi-modal training of Mahmud et al. (ICLR 2024, SPEC
section 3) needs, for each training mixture, a caption of the whole mixture
and P prompts that each describe one of its sources:

- natural mixtures (AudioCaps) come with one caption, split into clauses by
  :func:`split_caption`, a rule-based splitter on connectives
  (:data:`CLAUSE_SEPARATORS`: " followed by ", " while ", " as ", " then ",
  " with ", " and ", ", "...), which leaves alone the pairs that name one
  source ("a man and woman talk", "on and off", "chirping and singing");
- labelled mixtures get the caption :func:`label_mixture_caption` ("The
  sound mixture of violin and flute") and one prompt per label,
  :func:`~speechbrain_textsep.utils.captions.label_caption` ("The sound of
  violin");
- :func:`sample_prompts` turns a mixture's clauses into exactly P prompts:
  a random subset when there are more, copies when there are fewer, each
  copy of a clause weighted 1/copies so that every clause weighs 1 in the
  consistency reconstruction loss.

Authors
 * speechbrain-textsep contributors
"""

import random
import re

from speechbrain_textsep.utils.captions import label_caption

__all__ = [
    "CLAUSE_SEPARATORS",
    "MIXTURE_CAPTION_TEMPLATE",
    "PROTECTED_PHRASES",
    "label_mixture_caption",
    "sample_prompts",
    "split_caption",
]

#: Caption of a labelled mixture (the paper's "The sound mixture of ...").
MIXTURE_CAPTION_TEMPLATE = "The sound mixture of {}"

#: Connectives between the clauses of a caption; the longest is tried first
#: where several start at the same place (" and then " before " and ").
CLAUSE_SEPARATORS = (
    " and is followed by ",
    " is followed by ",
    " followed by ",
    " accompanied by ",
    " along with ",
    " together with ",
    " as well as ",
    " after which ",
    " and then ",
    " while ",
    " whilst ",
    " then ",
    " as ",
    " with ",
    " before ",
    " after ",
    " during ",
    " amid ",
    " and ",
    ", ",
    "; ",
)

#: Phrases kept whole although they contain a separator: one source or one
#: manner, not two sources.
PROTECTED_PHRASES = (
    "on and off",
    "off and on",
    "back and forth",
    "up and down",
    "in and out",
    "to and fro",
    "rock and roll",
    "pots and pans",
    "knives and forks",
    "such as",
    "as if",
    "as though",
    "one after another",
    "one after the other",
)

_PERSON = (
    r"(?:man|woman|men|women|boy|girl|boys|girls|male|female|child|children"
    r"|kid|kids|adult|adults|person|people|lady|ladies|gentleman)"
)
# Pairs naming one group of sources or one way of sounding:
# "a man and (a) woman", "chirping and singing", "loudly and rapidly",
# "over and over".
_PROTECTED_PATTERNS = (
    re.compile(
        rf"\b{_PERSON} and (?:(?:a|an|the|another|some|several|other) )?{_PERSON}\b"
    ),
    re.compile(r"\b\w+ing and \w+ing\b"),
    re.compile(r"\b\w+ly and \w+ly\b"),
    re.compile(r"\b(\w+) and \1\b"),
    re.compile(r"\bas well\b(?! as\b)"),
)

#: Connectives dropped from the start of a clause (a caption's first word,
#: or what follows a comma: ", followed by", ", and then").
_LEADING = tuple(
    sorted(
        {s.strip(" ,;") for s in CLAUSE_SEPARATORS if s.strip(" ,;")} | {"also"},
        key=len,
        reverse=True,
    )
)
#: A clause made of these words only names no source: it is dropped.
_FILLER_WORDS = {word for phrase in _LEADING for word in phrase.split()} | {
    "shortly",
    "soon",
    "immediately",
    "later",
    "afterwards",
    "again",
    "too",
    "meanwhile",
    "simultaneously",
    "finally",
    "eventually",
}
_SEPARATOR_RE = re.compile(
    "|".join(re.escape(s) for s in sorted(CLAUSE_SEPARATORS, key=len, reverse=True))
)
_GLUE = "\x1f"  # stands for the spaces of protected phrases while splitting
_STRIP_CHARS = " \t.,;:!?\"'"


def _protect(text):
    """``text`` with the spaces of the protected phrases replaced by _GLUE."""

    def glue(match):
        return match.group(0).replace(" ", _GLUE)

    for phrase in PROTECTED_PHRASES:
        text = re.sub(rf"\b{re.escape(phrase)}\b", glue, text)
    for pattern in _PROTECTED_PATTERNS:
        text = pattern.sub(glue, text)
    return text


def _clean_clause(clause):
    """A clause without leftover connectives; empty if it names no source."""
    text = clause.replace(_GLUE, " ").strip(_STRIP_CHARS)
    stripped = True
    while stripped:
        stripped = False
        for phrase in _LEADING:
            if text == phrase or text.startswith(phrase + " "):
                text = text[len(phrase) :].strip(_STRIP_CHARS)
                stripped = True
    if all(word in _FILLER_WORDS for word in text.split()):
        return ""
    return text


def split_caption(caption):
    """Splits a caption into single-source clauses (rule-based).

    The caption is lower-cased, its whitespace collapsed, then split on
    :data:`CLAUSE_SEPARATORS` except inside :data:`PROTECTED_PHRASES` and
    the pairs that name one group of sources or one manner of sounding
    ("a man and (a) woman", "boys and girls", "chirping and singing",
    "loudly and rapidly", "over and over"). Leftover connectives at the start
    of a clause ("then", "and", "while"...) and surrounding punctuation are
    dropped, clauses made of filler words only ("shortly") are dropped, and
    a clause repeated in the caption is kept once.

    A second sound of the same source keeps its own clause, subject-less
    ("a dog barks and growls": ``["a dog barks", "growls"]``), as in the
    authors' parser: it is a sound event of its own.

    Arguments
    ---------
    caption : str
        A caption (e.g. from AudioCaps).

    Returns
    -------
    list of str
        The clauses, in caption order: lower-case, stripped, none empty (at
        least one).

    Raises
    ------
    TypeError
        ``caption`` is not a string.
    ValueError
        The caption has no words.

    Example
    -------
    >>> split_caption("A man speaks followed by a dog barking.")
    ['a man speaks', 'a dog barking']
    >>> split_caption("Wind blows while birds chirp and a man and woman talk")
    ['wind blows', 'birds chirp', 'a man and woman talk']
    >>> split_caption("A siren wails on and off")
    ['a siren wails on and off']
    """
    if not isinstance(caption, str):
        raise TypeError(f"a caption must be a string, got {type(caption).__name__}")
    text = " ".join(caption.lower().split())
    clauses = []
    for piece in _SEPARATOR_RE.split(_protect(text)):
        clause = _clean_clause(piece)
        if clause and clause not in clauses:
            clauses.append(clause)
    if not clauses:
        raise ValueError(f"the caption {caption!r} has no words to split")
    return clauses


def label_mixture_caption(labels):
    """The caption of a mixture of labelled sources.

    "The sound mixture of {c1} and {c2}", "The sound mixture of {c1}, {c2}
    and {c3}"... Labels are written as
    :func:`~speechbrain_textsep.utils.captions.label_caption` writes them
    (underscores become spaces, surrounding spaces dropped, case kept). A
    single label gives its single-source caption, "The sound of {c}".

    Arguments
    ---------
    labels : list of str
        Class labels of the sources, in order.

    Returns
    -------
    str

    Raises
    ------
    TypeError
        ``labels`` is a string rather than a list.
    ValueError
        No labels, or an empty label.

    Example
    -------
    >>> label_mixture_caption(["acoustic_guitar", "violin"])
    'The sound mixture of acoustic guitar and violin'
    >>> label_mixture_caption(["cello", "flute", "tuba"])
    'The sound mixture of cello, flute and tuba'
    >>> label_mixture_caption(["cello"])
    'The sound of cello'
    """
    if isinstance(labels, str):
        raise TypeError(f"labels must be a list of labels, got the string {labels!r}")
    names = [label_caption(label, "{}") for label in labels]
    if not names:
        raise ValueError("a mixture caption needs at least one label")
    if len(names) == 1:
        return label_caption(names[0])
    joined = ", ".join(names[:-1]) + " and " + names[-1]
    return MIXTURE_CAPTION_TEMPLATE.format(joined)


def _check_clauses(clauses):
    """The distinct clauses of ``clauses`` (order kept), validated."""
    if isinstance(clauses, str):
        raise TypeError(f"clauses must be a list of strings, got {clauses!r}")
    distinct = []
    for clause in clauses:
        if not isinstance(clause, str) or not clause.strip():
            raise ValueError(f"clauses must be non-empty strings, got {clause!r}")
        if clause not in distinct:
            distinct.append(clause)
    if not distinct:
        raise ValueError("no clauses to sample prompts from")
    return distinct


def sample_prompts(clauses, n_prompts, rng=None):
    """Exactly ``n_prompts`` prompts from a mixture's clauses, with weights.

    - as many clauses as prompts: the clauses, each weighted 1;
    - more clauses: a random subset of ``n_prompts`` (in clause order), each
      weighted 1;
    - fewer clauses: all of them, then copies of randomly chosen ones
      appended (as evenly as possible: no clause gets a third copy before
      every clause has a second); each copy of a clause is weighted
      1/copies, so that the weights of one clause sum to 1.

    Identical clauses are one clause.

    Arguments
    ---------
    clauses : list of str
        The clauses (:func:`split_caption`) or single-source captions of one
        mixture.
    n_prompts : int
        P, the number of prompts per mixture (at least 1).
    rng : random.Random or None
        Source of randomness (None: the ``random`` module's global one,
        which SpeechBrain seeds).

    Returns
    -------
    prompts : list of str
        ``n_prompts`` prompts.
    weights : list of float
        Their weights ``1 / copies``.

    Raises
    ------
    TypeError, ValueError
        Bad ``clauses`` or ``n_prompts``.

    Example
    -------
    >>> sample_prompts(["a dog barks", "a man speaks"], 3, random.Random(0))
    (['a dog barks', 'a man speaks', 'a man speaks'], [1.0, 0.5, 0.5])
    >>> sample_prompts(["a", "b", "c"], 2, random.Random(0))
    (['b', 'c'], [1.0, 1.0])
    """
    if isinstance(n_prompts, bool) or not isinstance(n_prompts, int):
        raise TypeError(f"n_prompts must be an int, got {n_prompts!r}")
    if n_prompts < 1:
        raise ValueError(f"n_prompts must be at least 1, got {n_prompts}")
    rng = random if rng is None else rng
    if not callable(getattr(rng, "sample", None)):
        raise TypeError(f"rng must be a random.Random, got {type(rng).__name__}")
    distinct = _check_clauses(clauses)
    if len(distinct) >= n_prompts:
        keep = sorted(rng.sample(range(len(distinct)), n_prompts))
        return [distinct[i] for i in keep], [1.0] * n_prompts
    prompts = list(distinct)
    while len(prompts) < n_prompts:
        extra = min(n_prompts - len(prompts), len(distinct))
        prompts.extend(rng.sample(distinct, extra))
    weights = [1.0 / prompts.count(prompt) for prompt in prompts]
    return prompts, weights
