"""Evaluation of a trained grid: strategies, adaptive attackers, the paper's analyses, the report.

The pieces, in the order ``dysan evaluate`` uses them:

- :mod:`.runs`       reopen a run: rebuild its own split from config.json and check it against data.npz;
- :mod:`.sanitize`   every model's sanitized windows, own-P / own-D predictions and distortion (cached);
- :mod:`.streams`    each user's windows in time order, the calibration subset of DySan(o);
- :mod:`.strategies` which model sanitizes each window: fixed, personalized, dynamic, DySan(o), device;
- :mod:`.attackers`  analysts and attackers retrained on sanitized data (adaptive) or on raw data;
- :mod:`.metrics`    distortion statistics, DTW, uniqueness of selected-model sets, accuracies per user;
- :mod:`.pipeline`   the whole evaluation and its JSON tables; :mod:`.figures` the PNGs;
- :mod:`.report`     the self-contained HTML page of ``dysan report``.

``docs/evaluation.md`` states every methodological choice made here.
"""
