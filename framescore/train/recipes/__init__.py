"""One training recipe per paper family: data, views, loss, optimizer defaults, evaluation.

A :class:`Recipe` is made for one registered model, its resolved settings and a dataset root.
It reads the dataset in its own format (labels only: no image is opened until training),
splits it as the paper does, and then serves as the :class:`~framescore.train.loop.Task` of
the training loop (the data of each epoch, one step, validation) and as the test protocol of
``framescore evaluate`` (the paper's metrics with the paper's figures beside ours).

========================  =========================================================  ========
family (models)           data, sampling and loss                                    monitor
========================  =========================================================  ========
rapid (rapid-scnn*,       AVA, standard split, binary labels high if mean ≥ 5 + δ,   val acc
rapid-dcnn, rapid-rdcnn*) low if ≤ 5 − δ; view at 256, random 224 crop + flip;
                          softmax cross-entropy; test: P(high) averaged over 50
                          random views
rapid (rapid-style)       AVA style lists (14 styles); cross-entropy; test mAP        val mAP
relative                  AVA pairs (|Δmean| ≥ 1, variances < 2.6, same tag), unique  val pair
(relative-siamese)        images; hinge max(0, 3 − y·d); SGD Nesterov, ×0.85 every    acc
                          10 epochs, early stop after 10
kong (kong-*)             AADB train / validation / TestNew (or AVA, scores rescaled  val ρ
                          to [0, 1]); Euclidean loss; pairs (cross-rater + within-
                          rater) with the rank hinge; 11 attribute regressors; k-means
                          content gating (K = 10, centroids from the starting fc7)
arod (arod-resnet50;      AROD list.txt (S = log faves / log views), random test /    val ρ of
framescore-mobile with    val split; triplets on the fly (α < ratios < β); AROD's     ‖Φ‖ vs S
--recipe arod)             directional triplet loss; score = ‖Φ‖
jin (jin-*)               AVA minus RS-test (3,000 random) and ED-test (1,000 per     −val
                          band); whole image warped; (weighted) MSE or weighted χ²    loss
                          on the vote histogram
hints                     ``framescore data`` folders: (clean, low, high) groups of   none
(framescore-mobile)       graded faults of real photos; directional triplet +
                          relative hinge per path, cross-photo hint; frozen stem
                          (cached); test: fault table on the held-out photos
========================  =========================================================  ========

Where a paper is silent the choice is ours and written in the option's help (see
``framescore train MODEL --show-config``). Besides each family's own dataset, every family but
the style column also trains on a plain folder + ``scores.csv`` (``data_format = "folder"``).

The package: :mod:`~framescore.train.recipes.base` holds what the families share (figures,
views, splits, prediction, the :class:`Recipe` base); one module a family (``rapid``,
``relative``, ``kong``, ``arod``, ``jin``, ``hints``) holds its recipe; this module picks a
model's recipe from its registry entry (``ModelInfo.training.recipes``, the first by default).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from framescore.errors import UsageError
from framescore.models.spec import ModelInfo
from framescore.train.config import Option
from framescore.train.recipes.arod import ArodRecipe
from framescore.train.recipes.base import (
    Figure,
    Recipe,
    ViewFn,
    accepts,
    cap,
    freeze,
    multi_view,
    predict,
    random_split,
    repeated_view,
    sized,
    test_view,
    train_view,
)
from framescore.train.recipes.hints import HintsRecipe
from framescore.train.recipes.jin import JinRecipe
from framescore.train.recipes.kong import KongRecipe
from framescore.train.recipes.rapid import RapidRecipe
from framescore.train.recipes.relative import RelativeRecipe

#: recipe name (as ``TrainingSpec.recipes`` names it) → its class
RECIPES: dict[str, type[Recipe]] = {
    "rapid": RapidRecipe, "relative": RelativeRecipe, "kong": KongRecipe, "arod": ArodRecipe,
    "jin": JinRecipe, "hints": HintsRecipe,
}


def recipe_names(info: ModelInfo) -> tuple[str, ...]:
    """The recipes that can train a registered model, its default first (none: not
    trainable)."""
    training = info.training
    return tuple(r for r in training.recipes if r in RECIPES) if training else ()


def trainable_models() -> list[str]:
    """The registered models a recipe can train."""
    from framescore.models.registry import REGISTRY

    return [name for name, info in REGISTRY.items() if recipe_names(info)]


def recipe_class(name: str, recipe: str | None = None) -> tuple[ModelInfo, type[Recipe]]:
    """The registry entry of model ``name`` and the class of its recipe ``recipe`` (default:
    the model's own); a model nothing can train, or a recipe it does not take, is a one-line
    UsageError."""
    from framescore.models.registry import get

    info = get(name)
    names = recipe_names(info)
    if not names:
        raise UsageError(f"model {name!r} has no training recipe (trainable: "
                         f"{', '.join(trainable_models())})")
    if recipe is None:
        return info, RECIPES[names[0]]
    if recipe not in names:
        raise UsageError(f"model {name!r} is not trained with recipe {recipe!r} (its recipes: "
                         f"{', '.join(names)})")
    return info, RECIPES[recipe]


def options_for(name: str, recipe: str | None = None) -> dict[str, Option]:
    """Every setting (with the paper's default) of model ``name``'s recipe."""
    info, cls = recipe_class(name, recipe)
    return cls.options(info)


def make_recipe(name: str, config: Mapping[str, Any], root: str | Path | None,
                recipe: str | None = None) -> Recipe:
    """The configured recipe of model ``name`` on the dataset at ``root``."""
    info, cls = recipe_class(name, recipe)
    return cls(name, info, config, root)


__all__ = [
    "RECIPES", "ArodRecipe", "Figure", "HintsRecipe", "JinRecipe", "KongRecipe", "RapidRecipe",
    "Recipe", "RelativeRecipe", "ViewFn", "accepts", "cap", "freeze", "make_recipe",
    "multi_view", "options_for", "predict", "random_split", "recipe_class",
    "recipe_names", "repeated_view", "sized", "test_view", "train_view", "trainable_models",
]
