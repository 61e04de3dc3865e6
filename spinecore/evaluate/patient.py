"""How well the patient-level head predicts its scores: Pearson and Spearman correlation and the
error per score, on patients it was not trained on."""
from __future__ import annotations

import numpy as np
from scipy.stats import pearsonr, spearmanr

from spinecore.data.patients import PatientSet
from spinecore.grade.patient import PatientHead

#: Fewer known scores than this give no correlation.
MIN_PATIENTS = 3


def evaluate_patient_head(head: PatientHead, data: PatientSet) -> dict:
    """Per score: ``patients``, ``pearson_r``, ``spearman_rho``, ``mae`` and ``rmse`` (score units);
    ``predictions``: per patient, the true and predicted scores."""
    predicted = head.predict(data.features, data.present)
    scores = {}
    for k, name in enumerate(head.config.scores):
        known = np.isfinite(data.scores[:, k])
        truth, guess = data.scores[known, k].astype(float), predicted[known, k].astype(float)
        enough = known.sum() >= MIN_PATIENTS and np.ptp(truth) > 0 and np.ptp(guess) > 0
        scores[name] = {"patients": int(known.sum()),
                        "pearson_r": float(pearsonr(truth, guess)[0]) if enough else None,
                        "spearman_rho": float(spearmanr(truth, guess)[0]) if enough else None,
                        "mae": float(np.mean(np.abs(truth - guess))) if known.any() else None,
                        "rmse": float(np.sqrt(np.mean((truth - guess) ** 2))) if known.any() else None}
    predictions = [{"patient": p, **{f"{n}": float(data.scores[i, k]) for k, n in enumerate(head.config.scores)},
                    **{f"{n}_predicted": float(predicted[i, k]) for k, n in enumerate(head.config.scores)}}
                   for i, p in enumerate(data.patients)]
    return {"patients": len(data), "scores": scores, "predictions": predictions}
