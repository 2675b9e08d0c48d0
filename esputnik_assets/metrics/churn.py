"""churn_risk (use case 4): features in SQL, a scikit-learn model fitted on the account's own history in Python.

The label of a contact at a reference day R is "churned" = no order (not canceled) in the H days R+1 .. R+H
(H = ESPUTNIK_CHURN_HORIZON_DAYS, default 28). For day D the model is fitted on the contact_segments snapshot of
R = D-2H labelled by R+1 .. D-H, evaluated on the later, held-out snapshot D-H labelled by D-H+1 .. D, and scores
D's snapshot. On the held-out snapshot it is compared with a recency-only baseline (score = recency_days): both AUCs,
on all contacts and on buyers only (frequency > 0), go into the metadata. The model's score is published only when
its AUC on held-out buyers beats the baseline's by MODEL_MARGIN_AUC; otherwise the baseline's rank is published
(recency_days / NO_ORDER_RECENCY, in [0, 1]) and `score_source` says so. Only one row per contact ever reaches
Python (three snapshots).
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import TYPE_CHECKING

import polars as pl

from esputnik_assets.metrics.catalog import DATE, Metric, col
from esputnik_assets.metrics.engine import MetricEngine, MetricTable, QueryStats
from esputnik_assets.metrics.resource import MetricsWarehouse

if TYPE_CHECKING:
    import numpy as np

FEATURES = ("recency_days", "frequency", "monetary", "opens_30d", "clicks_30d")
NO_ORDER_RECENCY = 91  # recency of a contact without an order in the 90-day window: just beyond it
MODEL_MARGIN_AUC = 0.02  # how much better than recency alone (AUC on held-out buyers) the model must be to be used
MODEL_SOURCE, BASELINE_SOURCE = "model", "recency baseline"

FEATURES_SQL = f"""
SELECT contactId, COALESCE(recency_days, {NO_ORDER_RECENCY}) AS recency_days, frequency, monetary, opens_30d,
  clicks_30d
FROM metrics.contact_segments WHERE date = @feature_day
"""
LABELLED_SQL = f"""
WITH buyers AS (
  SELECT DISTINCT contactId FROM metrics.contact_daily
  WHERE date > @feature_day AND date <= @label_end AND orders > 0
)
SELECT f.*, IF(b.contactId IS NULL, 1, 0) AS churned
FROM ({FEATURES_SQL}) AS f LEFT JOIN buyers AS b ON b.contactId = f.contactId
"""


def _fit_and_score(train: pl.DataFrame, test: pl.DataFrame, current: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Logistic regression on log1p-scaled features fitted on train: its probabilities for test and for current."""
    import numpy as np  # scikit-learn and numpy cost seconds to import: only the churn step that fits pays them
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, StandardScaler

    model = make_pipeline(FunctionTransformer(np.log1p), StandardScaler(), LogisticRegression(max_iter=1000))
    model.fit(train.select(FEATURES).to_numpy(), train["churned"].to_numpy())
    return (model.predict_proba(test.select(FEATURES).to_numpy())[:, 1],
            model.predict_proba(current.select(FEATURES).to_numpy())[:, 1])  # fmt: skip


def _auc(churned: pl.Series, scores: np.ndarray | pl.Series) -> float | None:
    """ROC AUC of scores against the labels, rounded to 4 places; None when the labels hold one class only."""
    from sklearn.metrics import roc_auc_score

    if churned.n_unique() < 2:
        return None
    return round(float(roc_auc_score(churned.to_numpy(), scores)), 4)


def baseline_score(recency_days: pl.Expr) -> pl.Expr:
    """The recency baseline's rank in [0, 1]: 0 ordered today, 1 no order within the 90-day window."""
    return recency_days.cast(pl.Float64) / NO_ORDER_RECENCY


def _choose(test: pl.DataFrame, model_test: np.ndarray) -> tuple[str, dict[str, object]]:
    """Model or baseline, from the held-out AUCs (all contacts and buyers only), and the metadata that says why."""
    buyers = (test["frequency"] > 0).to_numpy()
    recency = test["recency_days"]
    aucs = {
        "auc_held_out": _auc(test["churned"], model_test),
        "baseline_auc_held_out": _auc(test["churned"], recency),
        "auc_held_out_buyers": _auc(test["churned"].filter(buyers), model_test[buyers]),
        "baseline_auc_held_out_buyers": _auc(test["churned"].filter(buyers), recency.filter(buyers)),
    }
    model, baseline = aucs["auc_held_out_buyers"], aucs["baseline_auc_held_out_buyers"]
    if model is None or baseline is None:
        source = BASELINE_SOURCE
        why = (f"{BASELINE_SOURCE}: the held-out buyers ({int(buyers.sum())}) are not both churned and retained, so "
               "the model cannot be shown to beat recency")  # fmt: skip
    elif round(model - baseline, 4) >= MODEL_MARGIN_AUC:  # both rounded to 4 places: compare the same way
        source = MODEL_SOURCE
        why = f"{MODEL_SOURCE}: it beat the recency baseline on held-out buyers ({model:.4f} vs {baseline:.4f} AUC)"
    else:
        source = BASELINE_SOURCE
        why = (f"{BASELINE_SOURCE}: the model did not beat it by {MODEL_MARGIN_AUC} AUC on held-out buyers "
               f"({model:.4f} vs {baseline:.4f})")  # fmt: skip
    return source, {**{k: v for k, v in aucs.items() if v is not None}, "score_source": why,
                    "held_out_buyers": int(buyers.sum()), "model_margin_auc": MODEL_MARGIN_AUC}  # fmt: skip


def _why_not(train: pl.DataFrame, test: pl.DataFrame, train_day: date, test_day: date, horizon: int) -> str | None:
    """Why no model can be fitted (too little history, or one class only), or None."""
    for name, frame, day in (("training", train, train_day), ("held-out", test, test_day)):
        if frame.height == 0:
            return (
                f"no contact_segments snapshot for {day} ({name} reference day): the model needs {2 * horizon} "
                f"days of metric history before the day (2 x ESPUTNIK_CHURN_HORIZON_DAYS) within the retention"
            )
        if frame["churned"].n_unique() < 2:
            return f"every contact of the {name} snapshot {day} has the same label: nothing to learn or evaluate"
    return None


def run_churn(
    metric: Metric, engine: MetricEngine, warehouse: MetricsWarehouse, day: date
) -> tuple[QueryStats, dict[str, object]]:
    """Write D's churn features and, when the history allows a model, its scores; say in metadata how it went."""
    horizon = warehouse.churn_horizon_days
    train_day, test_day = day - timedelta(days=2 * horizon), day - timedelta(days=horizon)
    stats = QueryStats()
    current, s = engine.fetch(FEATURES_SQL, {"feature_day": day})
    stats.add(s)
    train, s = engine.fetch(LABELLED_SQL, {"feature_day": train_day, "label_end": test_day})
    stats.add(s)
    test, s = engine.fetch(LABELLED_SQL, {"feature_day": test_day, "label_end": day})
    stats.add(s)
    reason = _why_not(train, test, train_day, test_day, horizon)
    extra: dict[str, object] = {"train_reference_day": str(train_day), "held_out_reference_day": str(test_day)}
    if reason is None and current.height:
        model_test, model_current = _fit_and_score(train, test, current)
        source, chosen = _choose(test, model_test)
        extra |= {
            "model": "scikit-learn LogisticRegression on log1p, standardized features",
            **chosen,
            "train_rows": train.height, "train_churn_rate": round(float(train["churned"].mean()), 4),
            "held_out_rows": test.height, "held_out_churn_rate": round(float(test["churned"].mean()), 4),
        }  # fmt: skip
        model_score = pl.Series("churn_score", model_current, dtype=pl.Float64)
        score = model_score if source == MODEL_SOURCE else baseline_score(pl.col("recency_days"))
        frame = current.with_columns(score.alias("churn_score"), pl.lit(source).alias("score_source"))
    else:
        extra["score_null_reason"] = reason or f"no contact_segments snapshot for {day}: nothing to score"
        frame = current.with_columns(pl.lit(None, pl.Float64).alias("churn_score"),
                                     pl.lit(None, pl.String).alias("score_source"))  # fmt: skip
    frame = frame.with_columns(pl.lit(day).alias("date"))
    written = engine.replace_day_from_frame(metric.table, frame, day)
    stats.rows_written = written.rows_written
    stats.bytes_processed.extend(written.bytes_processed)
    return stats, extra


CHURN_RISK = Metric(
    table=MetricTable(
        "churn_risk",
        (
            DATE,
            col("contactId", "int", "The contact", "contact_segments.contactId"),
            col("recency_days", "int", f"Days since the last order within 90 days; {NO_ORDER_RECENCY} without one",
                "contact_segments.recency_days"),
            col("frequency", "int", "Orders over D-89 .. D", "contact_segments.frequency"),
            col("monetary", "float", "Revenue over D-89 .. D", "contact_segments.monetary"),
            col("opens_30d", "int", "Opens over D-29 .. D", "contact_segments.opens_30d"),
            col("clicks_30d", "int", "Clicks over D-29 .. D", "contact_segments.clicks_30d"),
            col("churn_score", "float", "Risk of no order in the next H days: the fitted model's probability when it "
                f"beats recency by {MODEL_MARGIN_AUC} AUC on held-out buyers, else recency_days / {NO_ORDER_RECENCY}; "
                "null when the history is too short (the reason is in the materialization metadata)",
                "contact_segments.recency_days", "contact_daily.orders", rate=True),
            col("score_source", "string", f"Which score churn_score holds: '{MODEL_SOURCE}' or '{BASELINE_SOURCE}' "
                "(why: the materialization metadata); null with churn_score", "contact_segments.recency_days"),
        ),
        cluster_by=("contactId",),
        grain=("date", "contactId"),
    ),
    formula=(
        "Use case 4 (churn prediction). Per contact as of D: the features recency_days (91 without an order in 90 "
        "days), frequency, monetary, opens_30d, clicks_30d from contact_segments, and churn_score = P(no order in "
        "the next H days) by a scikit-learn logistic regression fitted on the snapshot of D-2H labelled by its next "
        "H days (H = ESPUTNIK_CHURN_HORIZON_DAYS, default 28), its AUC measured on the held-out snapshot of D-H "
        "labelled by D-H+1 .. D. On that held-out snapshot the model is compared with a recency-only baseline "
        "(score = recency_days): both AUCs, on all contacts and on buyers only (frequency > 0), are in the metadata. "
        f"churn_score is the model's probability only when its AUC on held-out buyers is at least {MODEL_MARGIN_AUC} "
        f"above the baseline's; otherwise it is the baseline's rank recency_days / {NO_ORDER_RECENCY} (0 = ordered "
        "on D, 1 = no order in 90 days), and score_source says which ('model' or 'recency baseline'; the metadata's "
        "score_source says why). Too little history: features written, score and score_source null, reason in the "
        "metadata."
    ),
    sql=FEATURES_SQL,  # the features written; the runner adds the labelled snapshots and the score
    reads=(),
    upstream=("contact_daily", "contact_segments"),
    snapshot=True,
    window=(-56, 0),  # snapshots of D-2H .. D: the settings' H replaces it in wiring.metrics_for
    runner=run_churn,
)
