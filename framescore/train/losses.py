"""The papers' training losses, as plain functions of tensors (each returns a scalar mean).

RAPID (Lu et al.)            :func:`rapid_cross_entropy`
Relative aesthetics (Siamese) :func:`relative_hinge_loss`
Kong et al. (AADB)           :func:`euclidean_loss`, :func:`rank_hinge_loss`,
                             :func:`reg_rank_loss`, :func:`attribute_loss`, :func:`kong_loss`
AROD (Schwarz et al.)        :func:`directional_triplet_loss` (+ :func:`directional_triplet_terms`)
Jin et al. (weighted CNNs)   :func:`weighted_mse_loss`, :func:`chi2_distance`,
                             :func:`weighted_chi2_loss` (sample weights:
                             :func:`framescore.train.samplers.jin_weights`)

Every function takes batched tensors and keeps the autograd graph, so the returned scalar can
be back-propagated directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "AROD_PRESETS",
    "TripletPreset",
    "attribute_loss",
    "chi2_distance",
    "directional_triplet_loss",
    "directional_triplet_terms",
    "euclidean_loss",
    "kong_loss",
    "rank_hinge_loss",
    "rapid_cross_entropy",
    "reg_rank_loss",
    "relative_hinge_loss",
    "weighted_chi2_loss",
    "weighted_mse_loss",
]


def _flat(x: Tensor) -> Tensor:
    return x.reshape(-1)


def _check_same(name: str, a: Tensor, b: Tensor) -> None:
    if a.shape != b.shape:
        raise ValueError(f"{name}: shapes differ ({tuple(a.shape)} vs {tuple(b.shape)})")


# --------------------------------------------------------------------------- RAPID
def rapid_cross_entropy(logits: Tensor, labels: Tensor, weight: Tensor | None = None) -> Tensor:
    """RAPID's softmax cross-entropy: ``mean_i −log softmax(z_i)[c_i]``.

    ``logits`` (N, C): C = 2 for {low, high} aesthetics, 14 for the AVA style column;
    ``labels`` (N,) class indices. ``weight`` (C,) optionally re-weights classes
    (``Σ_i w_{c_i}·ℓ_i / Σ_i w_{c_i}``, PyTorch's convention).
    """
    return F.cross_entropy(logits, labels.long(), weight=weight)


# --------------------------------------------------------------------------- relative aesthetics
def relative_hinge_loss(d: Tensor, y: Tensor, delta: float = 3.0,
                        weight: Tensor | None = None) -> Tensor:
    """Relative-aesthetics hinge: ``mean_i max(0, δ − y_i·d_i)``, δ = 3.

    ``d`` (N,) is the Siamese output d(I1, I2) = w2ᵀ relu(w1ᵀ (C1 − C2)); ``y`` (N,) is +1
    when I1 is the better image of the pair and −1 when I2 is. ``weight`` (N,) optionally
    weighs the pairs: ``Σ_i w_i·ℓ_i / Σ_i w_i``.
    """
    d, y = _flat(d), _flat(y).to(d.dtype)
    _check_same("relative_hinge_loss", d, y)
    if not bool(torch.all(y.abs() == 1)):
        raise ValueError("relative_hinge_loss: y must be +1 or -1")
    per_pair = F.relu(delta - y * d)
    if weight is None:
        return per_pair.mean()
    weight = _flat(weight).to(d.dtype)
    _check_same("relative_hinge_loss", d, weight)
    return (per_pair * weight).sum() / weight.sum()


# --------------------------------------------------------------------------- Kong et al.
def euclidean_loss(pred: Tensor, target: Tensor) -> Tensor:
    """Caffe's Euclidean loss, Kong's regression term: ``Σ_i ‖ŷ_i − y_i‖² / (2N)``.

    ``pred``/``target`` (N,) or (N, K); N is the batch size (rows).
    """
    _check_same("euclidean_loss", pred, target)
    n = pred.shape[0] if pred.ndim else 1
    return (pred - target.to(pred.dtype)).pow(2).sum() / (2 * max(n, 1))


def rank_hinge_loss(pred_i: Tensor, pred_j: Tensor, target_i: Tensor, target_j: Tensor,
                    alpha: float = 0.02) -> Tensor:
    """Kong's pairwise ranking loss, their Eq. 1 as written:
    ``1/(2N) Σ_(i,j) max(0, α − δ(y_i ≥ y_j)·(ŷ_i − ŷ_j))`` over the N pairs of a batch,
    with ``δ(y_i ≥ y_j) = +1`` when ``y_i ≥ y_j`` and −1 otherwise.

    α = 0.02 on AADB (scores in [0, 1]), 0.15 on AVA. A tie (``y_i == y_j``) counts with
    δ = +1, as the equation has it (the pair samplers draw no ties: a tie carries no order).
    """
    pi, pj, ti, tj = _flat(pred_i), _flat(pred_j), _flat(target_i), _flat(target_j)
    _check_same("rank_hinge_loss", pi, pj)
    _check_same("rank_hinge_loss", ti, tj)
    _check_same("rank_hinge_loss", pi, ti)
    sign = torch.where(ti >= tj, 1.0, -1.0).to(pi.dtype)
    return F.relu(alpha - sign * (pi - pj)).sum() / (2 * max(pi.shape[0], 1))


def reg_rank_loss(pred_i: Tensor, pred_j: Tensor, target_i: Tensor, target_j: Tensor,
                  alpha: float = 0.02, omega_r: float = 1.0) -> Tensor:
    """Kong's Reg+Rank objective: ``euclidean(both images of every pair) + ω_r·rank_hinge``.

    The regression term covers the 2N images of the N pairs (:func:`euclidean_loss` over their
    concatenation); ω_r = 1 on AADB, 0.1 on AVA.
    """
    reg = euclidean_loss(torch.cat([_flat(pred_i), _flat(pred_j)]),
                         torch.cat([_flat(target_i), _flat(target_j)]))
    return reg + omega_r * rank_hinge_loss(pred_i, pred_j, target_i, target_j, alpha)


def attribute_loss(pred: Tensor, target: Tensor, mask: Tensor | None = None) -> Tensor:
    """Kong's attribute regression: ``Σ_i Σ_k m_ik (â_ik − a_ik)² / (2N)``.

    ``pred``/``target`` (N, 11) attribute values in [−1, 1]; ``mask`` (N, 11) of 0/1 leaves out
    missing labels (default: all present). Weighted by ω_a = 0.1 in :func:`kong_loss`.
    """
    _check_same("attribute_loss", pred, target)
    sq = (pred - target.to(pred.dtype)).pow(2)
    if mask is not None:
        _check_same("attribute_loss", pred, mask)
        sq = sq * mask.to(sq.dtype)
    return sq.sum() / (2 * max(pred.shape[0], 1))


def kong_loss(score_i: Tensor, target_i: Tensor, score_j: Tensor | None = None,
              target_j: Tensor | None = None, *, attr_i: Tensor | None = None,
              attr_target_i: Tensor | None = None, attr_j: Tensor | None = None,
              attr_target_j: Tensor | None = None, alpha: float = 0.02, omega_r: float = 1.0,
              omega_a: float = 0.1) -> Tensor:
    """Kong et al.'s full objective for one batch.

    ``reg(+rank) + ω_a·attr``: with only ``score_i``/``target_i`` it is the Reg model's
    Euclidean loss; with the second image of each pair (``score_j``/``target_j``) it is
    :func:`reg_rank_loss`; attribute predictions and targets (N, 11) add
    ``ω_a·`` :func:`attribute_loss` over every image given.
    """
    if (score_j is None) != (target_j is None):
        raise ValueError("kong_loss: give both score_j and target_j, or neither")
    if score_j is None:
        total = euclidean_loss(_flat(score_i), _flat(target_i))
    else:
        total = reg_rank_loss(score_i, score_j, target_i, target_j, alpha, omega_r)
    preds = [a for a in (attr_i, attr_j) if a is not None]
    targets = [t for t in (attr_target_i, attr_target_j) if t is not None]
    if preds or targets:
        if len(preds) != len(targets):
            raise ValueError("kong_loss: every attribute prediction needs its target")
        total = total + omega_a * attribute_loss(torch.cat(preds), torch.cat(targets))
    return total


# --------------------------------------------------------------------------- AROD
TripletVariant = Literal["paper", "bounded", "release"]


@dataclass(frozen=True)
class TripletPreset:
    """Settings of :func:`directional_triplet_loss` (and of the triplet sampler around it)."""

    variant: TripletVariant
    margin: float          # m, triplet margin
    norm_margin: float     # m̃, direction margin
    alpha: float           # triplet sampling: lower bound of the score-difference ratios
    beta: float            # triplet sampling: upper bound
    embedding_dim: int
    optimizer: str
    lr: float


AROD_PRESETS: dict[str, TripletPreset] = {
    # The paper: 1000-D Φ, raw (unnormalized) embeddings, norm-based direction term, SGD 1e-3
    # divided by 10 on plateau. The paper gives no values for m, m̃, α, β: ours are 1.0, 1.0,
    # 0.3, 0.7 (the sampling bounds taken from the authors' release).
    "paper": TripletPreset("paper", 1.0, 1.0, 0.3, 0.7, 1000, "sgd", 1e-3),
    # The authors' released training code: 1024-D, triplet term on L2-normalized embeddings
    # with margin 0.5, element-wise direction term with margin 0.2, Adam; α = 0.3 and β = 0.7
    # applied to both ratios |S(a)−S(p)|/|S(a)−S(n)| and |S(a)−S(p)|/|S(p)−S(n)|.
    # (Adam with learning rate 0.1, as their script sets it).
    "release": TripletPreset("release", 0.5, 0.2, 0.3, 0.7, 1024, "adam", 1e-1),
}


def directional_triplet_terms(phi_a: Tensor, phi_p: Tensor, phi_n: Tensor, score_a: Tensor,
                              score_n: Tensor, margin: float = 1.0, norm_margin: float = 1.0,
                              variant: TripletVariant = "paper") -> tuple[Tensor, Tensor]:
    """The two terms of AROD's loss (triplet, direction), each averaged over the batch.

    ``phi_*`` (N, D) encodings of anchor, positive (similar score) and negative (the odd one
    out); ``score_a``/``score_n`` (N,) their AROD scores S = log(faves)/log(views).

    ``paper`` (default), as printed in the paper::

        [m + ‖Φa − Φp‖² − ‖Φa − Φn‖²]₊ + sign(S(n) − S(a))·[‖Φa‖ − ‖Φn‖ + m̃]₊

      When n is better the direction term pushes ‖Φn‖ above ‖Φa‖ + m̃. When n is worse it is
      −[‖Φa‖ − ‖Φn‖ + m̃]₊ ≤ 0: it keeps pushing ‖Φa‖ up and ‖Φn‖ down with a constant
      gradient and is unbounded below (consistent with the released model's raw norms of
      1e5–2e6). This is the literal formula, kept on purpose.
    ``bounded``: the direction term mirrored into a proper hinge,
      ``[m̃ − sign(S(n) − S(a))·(‖Φn‖ − ‖Φa‖)]₊`` (identical to ``paper`` when n is better).
    ``release``: the authors' released code: triplet term on L2-normalized encodings,
      ``[m + ‖ûa − ûp‖² − ‖ûa − ûn‖²]₊``, direction term element-wise on the raw encodings,
      ``mean_k [sign(S(a) − S(n))·(Φa,k − Φn,k) + m̃]₊`` (m = 0.5, m̃ = 0.2 there). Note
      that, as released, this pushes the *worse* image's components above the better one's.
    """
    for name, t in (("phi_p", phi_p), ("phi_n", phi_n)):
        _check_same(f"directional_triplet_loss ({name})", phi_a, t)
    sa, sn = _flat(score_a).to(phi_a.dtype), _flat(score_n).to(phi_a.dtype)
    _check_same("directional_triplet_loss (scores)", sa, sn)
    if sa.shape[0] != phi_a.shape[0]:
        raise ValueError("directional_triplet_loss: one score per triplet expected")
    if variant == "release":
        ua, up, un = (F.normalize(t, dim=1) for t in (phi_a, phi_p, phi_n))
        d_pos = (ua - up).pow(2).sum(1)
        d_neg = (ua - un).pow(2).sum(1)
        triplet = F.relu(margin + d_pos - d_neg).mean()
        sign = torch.sign(sa - sn).unsqueeze(1)
        direction = F.relu(sign * (phi_a - phi_n) + norm_margin).mean()
        return triplet, direction
    d_pos = (phi_a - phi_p).pow(2).sum(1)
    d_neg = (phi_a - phi_n).pow(2).sum(1)
    triplet = F.relu(margin + d_pos - d_neg)
    norm_a, norm_n = phi_a.norm(dim=1), phi_n.norm(dim=1)
    sign = torch.sign(sn - sa)
    if variant == "paper":
        direction = sign * F.relu(norm_a - norm_n + norm_margin)
    elif variant == "bounded":
        direction = F.relu(norm_margin - sign * (norm_n - norm_a)) * (sign != 0).to(sign.dtype)
    else:
        raise ValueError(f"unknown triplet variant {variant!r} (paper, bounded or release)")
    return triplet.mean(), direction.mean()


def directional_triplet_loss(phi_a: Tensor, phi_p: Tensor, phi_n: Tensor, score_a: Tensor,
                             score_n: Tensor, margin: float = 1.0, norm_margin: float = 1.0,
                             variant: TripletVariant = "paper") -> Tensor:
    """AROD's directional triplet loss (sum of :func:`directional_triplet_terms`).

    Paper (default): ``mean_i [m + ‖Φa−Φp‖² − ‖Φa−Φn‖²]₊ + sign(S(n)−S(a))·[‖Φa‖−‖Φn‖+m̃]₊``.
    See :func:`directional_triplet_terms` for the ``bounded`` and ``release`` variants and
    :data:`AROD_PRESETS` for the margins of each.
    """
    triplet, direction = directional_triplet_terms(phi_a, phi_p, phi_n, score_a, score_n,
                                                   margin, norm_margin, variant)
    return triplet + direction


# --------------------------------------------------------------------------- Jin et al.
def _weighted_mean(per_sample: Tensor, weight: Tensor | None, per_batch: bool,
                   name: str) -> Tensor:
    if weight is None:
        return per_sample.mean()
    w = _flat(weight).to(per_sample.dtype)
    _check_same(name, per_sample, w)
    if not per_batch:
        return (w * per_sample).mean()
    return (w * per_sample).sum() / w.sum().clamp_min(torch.finfo(per_sample.dtype).tiny)


def weighted_mse_loss(pred: Tensor, target: Tensor, weight: Tensor | None = None, *,
                      per_batch: bool = True) -> Tensor:
    """Jin's weighted MSE: ``Σ_i w_i (y_i − ŷ_i)² / Σ_i w_i`` (plain MSE without weights).

    ``w_i = 1 / f_b``, f_b the normalized frequency of the bin (90 over 1..10) of image i's
    mean rating: ``framescore.train.samplers.jin_weights``.

    ``per_batch`` (default) divides by the batch's own Σw. The paper's Σw runs over the
    training set: with ``per_batch=False`` the weights must already be normalized over the
    training set (``jin_weights`` gives them mean 1) and the batch term is
    ``mean_i w_i (y_i − ŷ_i)²``, whose average over an epoch of equal batches is the
    training set's WMSE exactly (a batch of rare, heavy samples then weighs more than a batch
    of common ones, as in the paper's sum).
    """
    pred, target = _flat(pred), _flat(target).to(pred.dtype)
    _check_same("weighted_mse_loss", pred, target)
    return _weighted_mean((target - pred).pow(2), weight, per_batch, "weighted_mse_loss")


def chi2_distance(p: Tensor, q: Tensor, eps: float = 1e-12) -> Tensor:
    """Per-row χ² distance between histograms: ``½ Σ_k (p_k − q_k)² / (p_k + q_k)``.

    ``p``/``q`` (N, K) non-negative (normalized rating histograms); bins where both are 0
    contribute nothing. Returns (N,). The ½ makes it lie in [0, 1] for distributions.
    """
    _check_same("chi2_distance", p, q)
    q = q.to(p.dtype)
    num = (p - q).pow(2)
    den = p + q
    return 0.5 * torch.where(den > eps, num / den.clamp_min(eps), torch.zeros_like(num)).sum(-1)


def weighted_chi2_loss(pred_hist: Tensor, target_hist: Tensor,
                       weight: Tensor | None = None, *, per_batch: bool = True) -> Tensor:
    """Jin's histogram loss: ``Σ_i w_i χ²(ĥ_i, h_i) / Σ_i w_i`` with :func:`chi2_distance`.

    ``pred_hist`` (N, 10) softmax output, ``target_hist`` (N, 10) the normalized vote counts,
    ``weight`` (N,) Jin's sample weights, ``framescore.train.samplers.jin_weights``
    (None: plain mean); ``per_batch`` as in :func:`weighted_mse_loss`.
    """
    chi = chi2_distance(pred_hist, target_hist)
    return _weighted_mean(chi, weight, per_batch, "weighted_chi2_loss")
