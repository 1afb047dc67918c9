"""Writes sentiment.jsonl: a small, synthetic, labelled set of review-like sentences.

The data is SYNTHETIC: no real reviews. Every line is {"text": ..., "label": "positive"|"negative"},
built from templates over subjects ("the battery", "the waiter"), sentiment adjectives and verbs,
intensifiers ("really", "quite") and endings, with a seeded random generator so the file is the same
on every run (Python's `random` with a fixed seed; standard library only).

The templates are chosen so that a bag of words is not enough and word order matters a bit:

- plain:       "the battery was really good."                -> the adjective's polarity
- negated:     "the battery was not good." / "wasn't bad"    -> the opposite polarity
               ("not bad" is positive, "not good" negative)
- verbs:       "i loved the battery." / "i did not hate it"  -> the verb's polarity, flipped by "not"
- contrast:    "the screen was great but the battery was awful."
               -> the clause after "but" decides; the same words in the other order flip the label
- concession:  "although the screen was great, the battery was awful."
               -> the main (second) clause decides
- hedged:      "the battery was good, or so i thought." / "i expected it to be bad."
               -> the hedge flips the plain reading

Exact duplicate sentences are dropped, and the two labels are balanced to within one sentence.

    python3 crates/fm/examples/data/make_sentiment.py            # writes sentiment.jsonl next to it
    python3 crates/fm/examples/data/make_sentiment.py --count 3000 --seed 7 --out other.jsonl
"""

import argparse
import json
import os
import random

SUBJECTS = [
    "the movie", "the film", "the plot", "the acting", "the soundtrack", "the ending",
    "this phone", "the battery", "the screen", "the camera", "the keyboard", "this laptop",
    "the food", "the soup", "the dessert", "the coffee", "the pizza", "the menu",
    "the service", "the waiter", "the staff", "the hotel", "the room", "the bed",
    "this book", "the story", "the author", "the price", "the delivery", "the packaging",
    "the app", "the update", "the game", "the controls", "the graphics", "the headphones",
]

POSITIVE_ADJECTIVES = [
    "good", "great", "excellent", "wonderful", "amazing", "fantastic", "delightful", "superb",
    "pleasant", "lovely", "solid", "impressive", "brilliant", "enjoyable", "reliable", "charming",
    "perfect", "fun", "fresh", "friendly",
]

NEGATIVE_ADJECTIVES = [
    "bad", "terrible", "awful", "horrible", "poor", "disappointing", "boring", "dreadful",
    "mediocre", "annoying", "broken", "useless", "cheap", "bland", "slow", "rude", "noisy",
    "painful", "weak", "stale",
]

INTENSIFIERS = ["", "", "", "very ", "really ", "quite ", "so ", "pretty ", "truly ", "rather "]

POSITIVE_VERBS = ["loved", "liked", "enjoyed", "adored", "appreciated"]
NEGATIVE_VERBS = ["hated", "disliked", "regretted", "despised", "resented"]
# The base forms used after "did not".
BASE = {
    "loved": "love", "liked": "like", "enjoyed": "enjoy", "adored": "adore",
    "appreciated": "appreciate", "hated": "hate", "disliked": "dislike", "regretted": "regret",
    "despised": "despise", "resented": "resent",
}

ENDINGS = [".", ".", ".", "!", " overall.", " to be honest.", " in my opinion.", ", honestly."]

POSITIVE, NEGATIVE = "positive", "negative"


def flip(label):
    return NEGATIVE if label == POSITIVE else POSITIVE


def adjective(rng):
    """A random adjective and its polarity."""
    if rng.random() < 0.5:
        return rng.choice(POSITIVE_ADJECTIVES), POSITIVE
    return rng.choice(NEGATIVE_ADJECTIVES), NEGATIVE


def copula(rng, subject):
    plural = subject.endswith("s")
    return rng.choice(["were", "are"] if plural else ["was", "is"])


def clause(rng, negate):
    """ "the battery was (not) really good" and its label."""
    subject = rng.choice(SUBJECTS)
    adj, label = adjective(rng)
    be = copula(rng, subject)
    intensifier = rng.choice(INTENSIFIERS)
    if not negate:
        return f"{subject} {be} {intensifier}{adj}", label
    form = rng.randrange(3)
    if form == 0:
        return f"{subject} {be} not {intensifier}{adj}", flip(label)
    if form == 1:
        return f"{subject} {be}n't {intensifier}{adj}", flip(label)
    return f"{subject} {be} not {adj} at all", flip(label)


def plain(rng):
    text, label = clause(rng, negate=False)
    return text + rng.choice(ENDINGS), label


def negated(rng):
    text, label = clause(rng, negate=True)
    return text + rng.choice(ENDINGS), label


def verb(rng):
    subject = rng.choice(SUBJECTS + ["it"])
    if rng.random() < 0.5:
        word, label = rng.choice(POSITIVE_VERBS), POSITIVE
    else:
        word, label = rng.choice(NEGATIVE_VERBS), NEGATIVE
    if rng.random() < 0.4:
        not_form = rng.choice(["did not", "didn't", "never"])
        base = BASE[word] if not_form != "never" else word
        return f"i {not_form} {base} {subject}{rng.choice(ENDINGS)}", flip(label)
    adverb = rng.choice(["", "", "really ", "absolutely ", "honestly "])
    return f"i {adverb}{word} {subject}{rng.choice(ENDINGS)}", label


def contrast(rng):
    first, first_label = clause(rng, negate=rng.random() < 0.25)
    second, second_label = clause(rng, negate=rng.random() < 0.25)
    # Mostly opposite clauses, so the label depends on which one comes second.
    for _ in range(10):
        if first_label != second_label:
            break
        second, second_label = clause(rng, negate=rng.random() < 0.25)
    joiner = rng.choice([" but ", ", but ", " but then "])
    return f"{first}{joiner}{second}{rng.choice(ENDINGS)}", second_label


def concession(rng):
    first, _ = clause(rng, negate=rng.random() < 0.25)
    second, second_label = clause(rng, negate=rng.random() < 0.25)
    opener = rng.choice(["although", "even though", "while"])
    return f"{opener} {first}, {second}{rng.choice(ENDINGS)}", second_label


def hedged(rng):
    adj, label = adjective(rng)
    subject = rng.choice(SUBJECTS)
    be = copula(rng, subject)
    template = rng.choice([
        f"{subject} {be} {adj}, or so i thought.",
        f"i expected {subject} to be {adj}.",
        f"everyone said {subject} would be {adj}, it was not.",
    ])
    return template, flip(label)


TEMPLATES = [(plain, 3), (negated, 3), (verb, 2), (contrast, 3), (concession, 1), (hedged, 1)]


def generate(count, seed):
    rng = random.Random(seed)
    makers = [maker for maker, weight in TEMPLATES for _ in range(weight)]
    per_label = {POSITIVE: [], NEGATIVE: []}
    seen = set()
    target = (count + 1) // 2
    attempts = 0
    while min(len(v) for v in per_label.values()) < target:
        attempts += 1
        if attempts > count * 100:
            raise SystemExit("too few distinct sentences: lower --count")
        text, label = rng.choice(makers)(rng)
        if text in seen or len(per_label[label]) >= target:
            continue
        seen.add(text)
        per_label[label].append(text)
    rows = [(t, POSITIVE) for t in per_label[POSITIVE]] + [(t, NEGATIVE) for t in per_label[NEGATIVE]]
    rng.shuffle(rows)
    return rows[:count]  # an odd count drops one sentence


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=4000)
    parser.add_argument("--seed", type=int, default=20261129)
    parser.add_argument("--out", default=os.path.join(here, "sentiment.jsonl"))
    args = parser.parse_args()
    rows = generate(args.count, args.seed)
    with open(args.out, "w", encoding="utf-8", newline="\n") as f:
        for text, label in rows:
            f.write(json.dumps({"text": text, "label": label}) + "\n")
    counts = {POSITIVE: 0, NEGATIVE: 0}
    for _, label in rows:
        counts[label] += 1
    print(f"wrote {len(rows)} sentences to {args.out}: {counts}")


if __name__ == "__main__":
    main()
