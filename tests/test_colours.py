"""Model colours: stable by name, told apart within a figure."""

from qpe.colours import EXTRA_COLOURS, MODEL_COLOURS, model_colour, model_colours


def test_a_model_keeps_its_colour_whatever_the_other_models():
    two = model_colours(["unet", "flow_residual"])
    four = model_colours(["ddpm", "flow_gaussian", "unet", "flow_residual"])
    assert two["flow_residual"] == four["flow_residual"] == MODEL_COLOURS["flow_residual"] == "#CC79A7"
    assert two["unet"] == four["unet"] == "#0072B2"


def test_unknown_names_get_the_same_colour_in_every_session():
    # A digest, not Python's salted hash: fixed values (a new session gives the same).
    assert model_colour("my_team_model") == model_colour("my_team_model")
    assert model_colour("my_team_model") in EXTRA_COLOURS
    assert model_colour("my_team_model") not in MODEL_COLOURS.values()


def test_models_of_one_figure_are_told_apart():
    names = ["unet", "radar"] + [f"model_{i}" for i in range(len(EXTRA_COLOURS))]
    colours = model_colours(names)
    assert len(set(colours.values())) == len(names)
    assert colours["radar"] == "#000000"
    # The first unknown name keeps its own colour; only later ones that meet a taken colour move.
    assert colours["model_0"] == model_colour("model_0")
