"""The MovieLens multi-scenario recipe shared by ml-100k-msr and ml-1m-msr (Scenario-Wise-Rec's age recipe).

scenario = user age group (< 25 -> ``young``, 25-34 -> ``middle``, >= 35 -> ``senior``), label = rating > 3.
On ml-1m the ages are the codes 1, 18, 25, 35, 45, 50, 56, so the same thresholds give Scenario-Wise-Rec's groups
{1, 18} / {25} / {35, 45, 50, 56}.
"""
import numpy as np
import pandas as pd

from dataset_converters.writer import ConversionError, write_dataset

SCENARIOS = ("young", "middle", "senior")


def age_scenario(age, source):
    age = pd.to_numeric(age, errors="coerce")
    if age.isna().any():
        raise ConversionError(f"{source}: column 'age' has {int(age.isna().sum())} non-numeric value(s)")
    return pd.Series(np.select([age < 25, age < 35], [SCENARIOS[0], SCENARIOS[1]], SCENARIOS[2]), index=age.index)


def build_movielens(inter, user, source):
    """inter: user_id, item_id, rating, timestamp; user: user_id, age, ... -> (inter with label + scenario)."""
    rating = pd.to_numeric(inter["rating"], errors="coerce")
    if rating.isna().any():
        raise ConversionError(f"{source}: column 'rating' has {int(rating.isna().sum())} non-numeric value(s)")
    scen = age_scenario(user["age"], source + " (.user)")
    user_scen = dict(zip(user["user_id"], scen))
    scenario = inter["user_id"].map(user_scen)
    if scenario.isna().any():
        unknown = inter.loc[scenario.isna(), "user_id"].unique()[:5].tolist()
        raise ConversionError(f"{source}: users {unknown} of the .inter file have no row (age) in the .user file")
    out = pd.DataFrame({
        "user_id": inter["user_id"],
        "item_id": inter["item_id"],
        "label": (rating > 3).astype(np.float64),
        "scenario": scenario,
        "timestamp": pd.to_numeric(inter["timestamp"], errors="coerce"),
    })
    return out


def write_movielens(out_dir, name, inter, user, item, source, genre_field, item_text_fields, seed, overwrite):
    """Write a MovieLens-MSR dataset: user features age / gender / occupation and item features release year and
    genres are model features; the title (and zip code) are kept in the files for the prompts only."""
    types = {
        "user_id": "token", "item_id": "token", "label": "float", "scenario": "token", "timestamp": "float",
        "age": "token", "gender": "token", "occupation": "token", "zip_code": "token",
        "movie_title": "token_seq", "release_year": "token", genre_field: "token_seq",
    }
    return write_dataset(
        out_dir, name, inter, types, user=user[["user_id", "age", "gender", "occupation", "zip_code"]],
        item=item[["item_id", "movie_title", "release_year", genre_field]], source=source,
        load_col={
            "inter": ["user_id", "item_id", "label", "scenario"],
            "user": ["user_id", "age", "gender", "occupation"],
            "item": ["item_id", "release_year", genre_field],
        },
        extra_config={"item_text_fields": list(item_text_fields)},
        seed=seed, overwrite=overwrite,
    )
