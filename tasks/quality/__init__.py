"""Quality: a version's vectors, index and evaluation sets in; metrics, a gate verdict, a card out.

`base` is the evaluation contract; then evaluators, sets (labelled, mined), gate, bias, card.
"""
