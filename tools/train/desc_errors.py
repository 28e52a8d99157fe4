#!/usr/bin/env python3
"""Where wrong descriptions go wrong first: for each wrong "Describe the ..." answer, the first
object slot (left to right) where the answer leaves the truth, and how:

  another true object   the slot names an object of the scene, but not the one at that place
                        in the left-to-right order (an order error; also an object said twice)
  a false object        a colour and shape pair the scene does not hold
  motion wrong          the right object with the wrong motion (videos)
  extra / missing       the answer lists more / fewer objects, all of them right until then

Counting the whole answer instead (order errors, repeats, wrong facts) mixes a first error with
what it drags after it: an answer that starts with the wrong object usually repeats one later.
Two whole-answer counts follow each line: the wrong answers that hold exactly the scene's objects in
another order (what a perfect order would mend), and the share of the scenes' objects that the
answers name with colour, shape and motion right, anywhere in the sentence.

  python tools/train/desc_errors.py [--questions tests/eval/questions.tsv] ANSWERS.tsv [...]

ANSWERS.tsv: hf_answers.py's output (name, sampling, question, answer, ...), e.g.
tests/eval/hf_answers.tsv. Prints one line per file and media kind. Standard library only.
"""

from __future__ import annotations

import argparse
import collections
import csv
import re
from pathlib import Path


def items(sentence: str) -> list[tuple[str, str, str]]:
    """(colour, shape, motion phrase) per object of a description, in its order."""
    out = []
    for part in re.split(r", | and ", sentence.lower().rstrip(".")):
        words = part.split()
        if words and words[0] in ("a", "an"):
            words = words[1:]
        out.append((words[0] if words else "", words[1] if len(words) > 1 else "", " ".join(words[2:])))
    return out


def first_error(truth: list, answer: list) -> str | None:
    """How the answer first leaves the truth, or None when they are equal."""
    for slot in range(max(len(truth), len(answer))):
        if slot >= len(truth):
            return "extra object"
        if slot >= len(answer):
            return "missing object"
        if truth[slot] == answer[slot]:
            continue
        said, meant = answer[slot][:2], truth[slot][:2]
        if said == meant:
            return f"slot {slot}: motion wrong"
        objects = {t[:2] for t in truth}
        return f"slot {slot}: " + ("another true object" if said in objects else "a false object")
    return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("answers", nargs="+", type=Path)
    ap.add_argument("--questions", type=Path, default=Path("tests/eval/questions.tsv"))
    a = ap.parse_args()
    missing = [str(p) for p in [a.questions, *a.answers] if not p.is_file()]
    if missing:
        ap.error(f"no such file: {', '.join(missing)}")
    with a.questions.open() as f:
        truth = {(r["name"], r["question"]): r["answer"] for r in csv.DictReader(f, delimiter="\t")}
    for path in a.answers:
        with path.open() as f:
            rows = [r for r in csv.DictReader(f, delimiter="\t") if r["question"].startswith("Describe")]
        for kind in ("video", "image"):
            errors = collections.Counter()
            n = reordered = objects = named = 0
            for r in rows:
                if not r["name"].startswith(kind):
                    continue
                n += 1
                meant, said = items(truth[(r["name"], r["question"])]), items(r["answer"])
                e = first_error(meant, said)
                if e:
                    errors[e] += 1
                    reordered += sorted(meant) == sorted(said)
                objects += len(meant)
                named += sum(o in said for o in meant)
            listed = ", ".join(f"{v} {k}" for k, v in sorted(errors.items()))
            print(f"{path} {kind}s: {n} descriptions, {sum(errors.values())} wrong: {listed}; "
                  f"{reordered} of them only in order; objects named right {named} of {objects}")


if __name__ == "__main__":
    main()
