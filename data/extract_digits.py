#!/usr/bin/env python3
"""Extracts the optical-digits set that scikit-learn ships (sklearn.datasets.load_digits) into
data/digits.csv: 1797 rows of 64 pixel values (8x8 images, integers 0..16, row by row) and the
digit label. Reads only the file inside the installed package; nothing is downloaded.

    pip install scikit-learn && python3 data/extract_digits.py

The CSV is committed, so neither building nor running entrograd needs scikit-learn or Python.
Licence and attribution: data/README.md.
"""

import csv
import pathlib
import sys

from sklearn import __version__ as sklearn_version
from sklearn.datasets import load_digits


def main() -> None:
    out = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else pathlib.Path(__file__).with_name("digits.csv")
    digits = load_digits()
    data, target = digits.data, digits.target
    assert data.shape == (1797, 64) and target.shape == (1797,)
    assert data.min() >= 0 and data.max() <= 16 and (data == data.round()).all()
    with out.open("w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow([f"p{r}{c}" for r in range(8) for c in range(8)] + ["label"])
        for row, label in zip(data.astype(int), target):
            w.writerow([*row.tolist(), int(label)])
    print(f"wrote {out}: {len(target)} images from scikit-learn {sklearn_version}")


if __name__ == "__main__":
    main()
