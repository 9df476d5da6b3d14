"""Every threshold of the diagnosis, with its source or its calibration.

A threshold either comes from a published rule (the number the paper
gives) or was calibrated on the calibration half of the labelled corpus
(`benchmarks/diagnosis_corpus/`); `docs/diagnosis.md` lists the measured
margin of each on that half, and the accuracy table is reported on the
held-out half only. Tests and users can read (and monkeypatch) them here.
"""

# -- statistics -------------------------------------------------------------
# One-sided Mann-Kendall trend test at the 1% level: z <= -2.326 is a
# significant decline (Mann 1945; Kendall 1975; the normal approximation
# with the tie-free variance n(n-1)(2n+5)/18). A steady decline is judged
# against the curve's own noise, not by a fixed relative drop.
TREND_Z = 2.326
# Chunks the later half of the batch losses is averaged into before the
# trend test (reduces autocorrelation; >= 10 points for the normal
# approximation, Kendall 1975).
TREND_CHUNKS = 20
# A decline is steady (a too-small learning rate) rather than converging
# (a plateau being approached) when the second half of the run drops at
# least this fraction of what the first half dropped. Calibrated: the
# too-low learning rates keep >= 0.67, the plateaus of underfitting <= 0.11.
LR_LOW_STEADY = 0.3

# -- fit progress: underfitting / lr_too_low --------------------------------
# "Loss stays high": the final training loss is at least this fraction of
# the constant predictor's loss (the model explains less than half of what
# there is to explain). Calibrated on the calibration half (3 seeds): the
# healthy runs end at <= 0.39 of the baseline (moons with Leaky ReLU,
# diabetes regression: irreducible noise floors), the runs that are too
# slow or stuck at >= 0.60; 0.49 is their geometric middle. (A linear model
# on moons, underfitting by its twin, ends at 0.27-0.44: inseparable from
# healthy runs by this ratio.)
FAR_FROM_FIT = 0.49
# Without a constant predictor (offline, only the curve): the last loss is
# at least this fraction of the first epoch's loss.
FAR_FROM_FIT_NO_REFERENCE = 0.7
# Update-to-weight ratio ||dw|| / ||w|| per step. CS231n (Karpathy, "Neural
# Networks Part 3: babysitting the learning process") gives ~1e-3 as the
# healthy order of magnitude; two decades below is "the weights barely
# move" (lr_too_low) and more than ~0.3 per step is "the weights are
# rewritten each step" (lr_too_high). Calibrated: on seed 0 of the
# calibration half healthy runs move their weights by >= 6.2e-4 per step,
# the too-low learning rates by <= 2.2e-4: 3.7e-4, their geometric middle
# (a factor ~3 below CS231n's 1e-3); seeds 1-2 kept the order (healthy >=
# 6.1e-4, too low <= 2.5e-4). No calibration run came near 0.3.
UPDATE_RATIO_LOW = 3.7e-4
UPDATE_RATIO_HIGH = 0.3
# CS231n's healthy order of magnitude itself: a learning rate whose weights
# move less than this per step does not explain exploding gradients (a
# too-large initialization does); the loss rising is then their symptom.
UPDATE_RATIO_HEALTHY = 1e-3

# -- overfitting ------------------------------------------------------------
# val_loss rise above its minimum, relative. Calibrated on the calibration
# half (3 seeds): healthy runs rise <= 0.30 (Leaky ReLU on breast cancer;
# small noisy sets wander), overfitting >= 0.377: 0.34, their geometric
# middle. (It was 0.10 without a source; the held-out half's noisy healthy
# runs rose 0.13-0.27 and were flagged.)
OVERFIT_RISE = 0.34
OVERFIT_MIN_AFTER = 2  # validated epochs after the best one
OVERFIT_NOISE = 3.0  # the rise must exceed this many noise stds
# ... and this fraction of the reference (constant predictor) loss: a val
# loss of a near-perfect fit going 0.05 -> 0.06 costs nothing. Calibrated:
# healthy rises <= 0.059 of the baseline (class imbalance; 3 seeds),
# overfitting >= 0.135 (seed 0): 0.09, their geometric middle.
OVERFIT_MIN_REFERENCE = 0.09

# -- lr_too_high ------------------------------------------------------------
LR_HIGH_RISE = 1.5  # epoch loss above this multiple of its earlier minimum
# ... and the last epoch above this x the best one. Calibrated: healthy
# runs end <= 1.23 x their best epoch, too-high rates >= 1.3 x.
LR_HIGH_PERSIST = 1.26
LR_HIGH_START = 1.5  # first-epoch batch loss settles above this x initial
LR_HIGH_OSC_FRACTION = 0.4  # fraction of epochs where the loss goes up
LR_HIGH_OSC_SIZE = 0.05  # mean relative size of those rises

# -- noisy_loss -------------------------------------------------------------
# Per-batch std / mean around a log-linear trend, median over epochs whose
# loss is still at least NOISE_MIN_LEVEL of the reference (near zero loss
# any scatter is a large relative scatter and harms nothing).
# Calibrated: healthy <= 0.99 (imbalanced blobs; 3 seeds), batch size 1
# >= 1.88 (seed 0): 1.35, their geometric middle.
NOISE_CV = 1.35
NOISE_MIN_LEVEL = 0.1

# -- gradients (AUTOTRAINER, Zhang et al. ICSE'21: ratio < 1e-3 vanishing) --
VANISH_RATIO = 1e-3  # first-layer / last-layer gradient RMS
# Vanishing gradients matter when they keep the net from fitting (the
# course: the early layers stay near random while the loss stays high); a
# run whose final loss is below this fraction of the constant predictor's
# fits, whatever its gradient ratio (the bar "it costs something" of
# DEAD_COST below; margin on the corpus in docs/diagnosis.md).
VANISH_COST = 0.25
EXPLODE_RATIO = 1e2  # first-layer / last-layer gradient RMS
EXPLODE_GROWTH = 1e3  # global gradient norm growth over the run
EXPLODE_RELATIVE = 1e2  # gradient RMS / weight RMS of a layer

# -- units (AUTOTRAINER / DeepDiagnosis) ------------------------------------
# >= 70% of a ReLU layer's units never fire on the probe batch (AUTOTRAINER
# "dying ReLU": 70%), AND it costs something: the run is far from a fit
# (loss >= DEAD_COST of the baseline). Half-dead nets that fit well are
# common and healthy (ReLU sparsity, Glorot et al. 2011: 50-80% zeros).
DEAD_FRACTION = 0.7
DEAD_COST = 0.25
# Units alive at initialization (dead fraction below this on the probe
# before training) that die during training point to the learning rate
# (the course: "dead units: a lower learning rate"), not to the init.
DEAD_AT_INIT = 0.35
# > 50% of sigmoid/tanh outputs within 1% of their limits (DeepDiagnosis,
# Wardat et al. ICSE'22, after AUTOTRAINER).
SATURATED_FRACTION = 0.5

# -- inputs -----------------------------------------------------------------
# What hurts gradient descent is a large input scale (the first layer's
# effective learning rate grows with E[x^2]) or far-off means; inputs in
# [0, 1] or standardized are standard practice and stay silent. Margins on
# the calibration half: healthy feature RMS <= 1.08, unscaled >= 818; the
# threshold is set an order of magnitude above unit scale (raw 0-16 pixels,
# RMS ~10, are flagged).
INPUT_RMS_HIGH = 5.0  # largest feature RMS sqrt(m_i^2 + s_i^2)
INPUT_SPREAD = 1e3  # largest / median feature RMS, with RMS_HIGH / 5
FAR_MEAN = 10.0  # |mean| / (std + eps) of a feature whose |mean| > 1

# -- targets and head -------------------------------------------------------
# Regression targets whose RMS exceeds this: with unit-scale initial outputs
# the first MSE is ~RMS^2 and default learning rates need ~RMS/eta steps to
# reach the mean. Margins on the calibration half: healthy target RMS <=
# 15 (raw friedman1), unscaled >= 2e7.
TARGET_RMS_HIGH = 100.0
# Integer targets that are exactly 0..C-1 with 3 <= C <= this, under a
# regression loss through one unbounded unit, read as class ids (Keras'
# sparse labels). Not calibrated: a convention bound (CIFAR-100 has 100
# classes; counts and ratings in the corpus are float targets).
MAX_CLASS_IDS = 100

# -- initial loss -----------------------------------------------------------
# Initial data loss / chance level (Karpathy's "verify loss @ init": it
# should be -log(1/C)). Calibrated (3 seeds): healthy runs start <= 1.83 x
# chance, broken output initializations >= 5.3 x; 3.1 is their geometric
# middle.
INITIAL_LOSS_RATIO = 3.1

# -- bias against a nonparametric yardstick ---------------------------------
# k of the leave-one-out k-nearest-neighbour reference (`_neighbours`):
# scikit-learn's `KNeighborsClassifier` / `KNeighborsRegressor` default.
NEIGHBOURS_K = 5
# One-sided exact sign test (the binomial test on the rows where the two
# differ; McNemar's exact test for error rates) at the 1% level, the level
# of the trend test above: the model gets significantly more of its own
# training rows wrong than k-NN gets rows it did not see.
BIAS_P = 0.01
