"""The training recipes, one per paper family (see :mod:`framescore.train.recipes.base`)."""

from framescore.train.recipes.base import (
    BY_MODULE,
    FAMILIES,
    ArodRecipe,
    Figure,
    JinRecipe,
    KongRecipe,
    RapidRecipe,
    Recipe,
    RelativeRecipe,
    ViewFn,
    accepts,
    cap,
    family_of,
    freeze,
    make_recipe,
    multi_view,
    options_for,
    predict,
    random_split,
    recipe_class,
    repeated_view,
    sized,
    test_view,
    train_view,
    trainable_models,
)

__all__ = [
    "BY_MODULE", "FAMILIES", "ArodRecipe", "Figure", "JinRecipe", "KongRecipe", "RapidRecipe",
    "Recipe", "RelativeRecipe", "ViewFn", "accepts", "cap", "family_of", "freeze",
    "make_recipe", "multi_view", "options_for", "predict", "random_split", "recipe_class",
    "repeated_view", "sized", "test_view", "train_view", "trainable_models",
]
