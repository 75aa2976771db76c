"""Checkpoints: save -> load round trips, the inference contract, and refusal of unsafe or corrupt files."""

from __future__ import annotations

import dataclasses
import json
import pickle
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pytest
import safetensors.torch
import torch
import yaml
from models_testing import (  # noqa: F401 (autouse fixture)
    VARIANTS,
    build_variant,
    fit_unet,
    one_torch_thread,
    sampling,
    seeded,
    synthetic_batch,
    train,
    variant_card,
)

from qpe.errors import CheckpointError, InputError
from qpe.models import LoadedModel, ModelCard, UNetConfig, base_reference, load, save_checkpoint, sha256_file

VARIANT_IDS = [v[0] for v in VARIANTS]


class Payload:
    """Unpickling this object creates ``marker``: proof that a loader executed code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


@pytest.fixture(scope="module")
def batch():
    return synthetic_batch(batch=2)


@pytest.fixture(scope="module")
def models(batch):
    """Every variant, trained a few steps so that no output is trivially zero."""
    torch.set_num_threads(1)
    base = fit_unet(batch, steps=5)
    out = {"unet": base}
    for variant in VARIANT_IDS[1:]:
        model = build_variant(variant, base=base)
        train(model, batch, steps=3)
        out[variant] = model
    return out


def save_variant(models, variant: str, root: Path) -> Path:
    """Save ``variant`` under ``root`` (a residual flow also saves its U-Net as ``root/unet``)."""
    card = variant_card(variant)
    if variant == "flow_residual":
        unet = load(save_checkpoint(models["unet"], variant_card("unet"), root / "unet"))
        card = dataclasses.replace(card, base_checkpoint=base_reference(unet, root / variant))
    return save_checkpoint(models[variant], card, root / variant)


def kelvin(batch) -> torch.Tensor:
    return batch["ir"] * 20.0 + 250.0


def one_line_error(path, match: str) -> str:
    with pytest.raises(CheckpointError, match=match) as err:
        load(path)
    assert "\n" not in str(err.value)
    return str(err.value)


# -- round trips -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("variant", VARIANT_IDS)
def test_save_load_gives_identical_outputs(tmp_path, models, batch, variant):
    path = save_variant(models, variant, tmp_path)
    loaded = load(path)
    assert isinstance(loaded, LoadedModel) and loaded.card.family == variant.split("_")[0]
    ir = loaded.normalize_ir(kelvin(batch))
    with torch.no_grad():
        before = models[variant].sample(ir, sampling(variant, 2, 3), seeded(0))
        after = loaded.model.sample(ir, loaded.sampling(2, 3), seeded(0))
    np.testing.assert_array_equal(after.numpy(), before.numpy())


@pytest.mark.parametrize("variant", VARIANT_IDS)
def test_predict_normalises_kelvin_with_the_card(tmp_path, models, batch, variant):
    loaded = load(save_variant(models, variant, tmp_path)).to("cpu")
    rain = loaded.predict(kelvin(batch), loaded.sampling(members=2, steps=2), seeded(1))
    norm = loaded.card.normalization
    manual = (kelvin(batch) - torch.tensor(norm.mean)[None, None, :, None, None]) / torch.tensor(norm.std)[
        None, None, :, None, None
    ]
    with torch.no_grad():
        expected = models[variant].sample(manual, sampling(variant, 2, 2, loaded.card.sampling.sampler), seeded(1))
    assert rain.shape == ((2, 1, 24, 24) if variant == "unet" else (2, 2, 24, 24))
    np.testing.assert_allclose(rain.numpy(), expected.numpy(), rtol=1e-5, atol=1e-6)


def test_predict_refuses_a_wrong_stack(tmp_path, models):
    loaded = load(save_variant(models, "unet", tmp_path))
    with pytest.raises(InputError, match=r"T=2, C=2 \[WV_062, IR_108\]"):
        loaded.predict(torch.full((1, 2, 3, 8, 8), 250.0))


@pytest.mark.parametrize(
    "variant, steps, sampler, expected",
    [
        ("unet", None, None, 1),
        ("ddpm_v", None, None, 20),
        ("ddpm_v", 50, "ddim", 50),
        ("flow_gaussian", None, None, 16),
        ("flow_gaussian", 4, "euler", 4),
        ("flow_residual", 8, "heun", 17),
    ],
)
def test_loaded_model_counts_network_evaluations(tmp_path, models, variant, steps, sampler, expected):
    loaded = load(save_variant(models, variant, tmp_path))
    assert loaded.network_evaluations(loaded.sampling(steps=steps, sampler=sampler)) == expected


def test_card_round_trips_through_yaml_and_json(tmp_path, models):
    path = save_variant(models, "flow_residual", tmp_path)
    card = load(path).card
    assert card.weights.sha256 == sha256_file(path / "weights.safetensors")
    assert card.base_checkpoint.path == "../unet"
    assert card.base_checkpoint.sha256 == sha256_file(tmp_path / "unet" / "weights.safetensors")
    assert card.code_revision and card.created
    assert ModelCard.from_dict(yaml.safe_load(card.to_yaml())) == card
    assert ModelCard.read(card.write(tmp_path / "card.json")) == card
    text = (path / "card.yaml").read_text()
    assert "family: flow" in text and "source: residual" in text and "frame_step_min: 15" in text


def test_saving_replaces_a_checkpoint_atomically(tmp_path, models):
    save_variant(models, "unet", tmp_path)
    first = sha256_file(tmp_path / "unet" / "weights.safetensors")
    model = build_variant("unet", seed=5)
    save_checkpoint(model, variant_card("unet"), tmp_path / "unet")
    assert sha256_file(tmp_path / "unet" / "weights.safetensors") != first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["unet"]
    assert sorted(p.name for p in (tmp_path / "unet").iterdir()) == ["card.yaml", "weights.safetensors"]


@pytest.mark.parametrize(
    "card_change, match",
    [
        (lambda c: variant_card("flow_gaussian"), "cannot save a unet model with a flow card"),
        (
            lambda c: dataclasses.replace(
                c, architecture=UNetConfig(base_channels=16, channel_mults=(1, 2), groups=4)
            ),
            "do not match the model card",
        ),
    ],
)
def test_saving_refuses_a_card_that_does_not_describe_the_model(tmp_path, models, card_change, match):
    with pytest.raises(CheckpointError, match=match):
        save_checkpoint(models["unet"], card_change(variant_card("unet")), tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_saving_a_residual_flow_needs_its_unet(tmp_path, models):
    with pytest.raises(CheckpointError, match="must name its base_checkpoint"):
        save_checkpoint(models["flow_residual"], variant_card("flow_residual"), tmp_path / "f")


# -- unsafe and foreign weights ----------------------------------------------------------------------------
def test_a_pickle_with_a_payload_is_refused_without_running_it(tmp_path, models):
    path = save_variant(models, "unet", tmp_path)
    proof = tmp_path / "proof"
    pickle.loads(pickle.dumps(Payload(proof)))
    assert proof.exists(), "the payload must work when unpickled, or this test proves nothing"
    marker = tmp_path / "marker"
    (path / "weights.safetensors").write_bytes(pickle.dumps(Payload(marker)))
    one_line_error(path, "is a Python pickle, not safetensors; qpe never unpickles")
    assert not marker.exists()


def test_a_torch_save_file_with_a_payload_is_refused_without_running_it(tmp_path, models):
    path = save_variant(models, "unet", tmp_path)
    marker = tmp_path / "marker"
    torch.save({**models["unet"].state_dict(), "x": Payload(marker)}, path / "weights.safetensors")
    one_line_error(path, r"is a zip archive \(a torch.save file\?\)")
    torch.save({"x": Payload(marker)}, tmp_path / "model.pt")
    one_line_error(tmp_path / "model.pt", "no checkpoint folder at .*model.pt")
    assert not marker.exists()


def test_a_yaml_card_with_python_tags_is_refused_without_running_it(tmp_path, models):
    path = save_variant(models, "unet", tmp_path)
    marker = tmp_path / "marker"
    (path / "card.yaml").write_text(f"!!python/object/apply:pathlib.Path.touch [{str(marker)!r}]\n")
    one_line_error(path, "not a readable YAML/JSON model card")
    assert not marker.exists()


@pytest.mark.parametrize(
    "corrupt, match",
    [
        (lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]), "is truncated"),
        (lambda p: p.write_bytes(p.read_bytes()[:40]), "is truncated"),
        (lambda p: p.write_bytes(b""), r"not a safetensors file \(only 0 bytes\)"),
        (lambda p: p.write_bytes(p.read_bytes() + b"\0" * 16), "16 unexpected bytes after the tensors"),
        (lambda p: p.write_bytes(np.random.default_rng(0).bytes(4096)), "not a safetensors file"),
        (
            lambda p: (
                plt.imsave(p.with_suffix(".png"), np.zeros((4, 4)))
                or p.write_bytes(p.with_suffix(".png").read_bytes())
            ),
            "is a PNG image",
        ),
        (lambda p: p.unlink(), "has no weights file weights.safetensors"),
    ],
)
def test_corrupt_or_foreign_weights_are_refused(tmp_path, models, corrupt, match):
    path = save_variant(models, "unet", tmp_path)
    corrupt(path / "weights.safetensors")
    one_line_error(path, match)


def test_modified_weights_are_refused_by_their_hash(tmp_path, models):
    path = save_variant(models, "unet", tmp_path)
    state = safetensors.torch.load_file(str(path / "weights.safetensors"))
    state["backbone.head.bias"] = state["backbone.head.bias"] + 1.0
    safetensors.torch.save_file(state, str(path / "weights.safetensors"))
    one_line_error(path, "differs from the card's .* \\(weights modified or replaced\\)")


def _rewrite_weights(path: Path, change) -> None:
    """Edit the tensors and re-sign them in the card (as a careless hand edit would)."""
    state = safetensors.torch.load_file(str(path / "weights.safetensors"))
    change(state)
    safetensors.torch.save_file(state, str(path / "weights.safetensors"))
    card = yaml.safe_load((path / "card.yaml").read_text())
    card["weights"]["sha256"] = sha256_file(path / "weights.safetensors")
    (path / "card.yaml").write_text(yaml.safe_dump(card, sort_keys=False))


@pytest.mark.parametrize(
    "change, match",
    [
        (lambda s: s.pop("backbone.stem.bias"), r"1 missing tensor\(s\) \(e.g. backbone.stem.bias\)"),
        (lambda s: s.update(extra=torch.zeros(3)), r"1 unexpected tensor\(s\) \(e.g. extra\)"),
        (
            lambda s: s.update({"backbone.head.bias": torch.zeros(2)}),
            r"backbone.head.bias: \[2\] in the weights, \[1\]",
        ),
    ],
)
def test_weights_that_do_not_match_the_card_are_refused(tmp_path, models, change, match):
    path = save_variant(models, "unet", tmp_path)
    _rewrite_weights(path, change)
    one_line_error(path, match)


# -- cards -------------------------------------------------------------------------------------------------
def _edit_card(path: Path, edit) -> None:
    card = yaml.safe_load((path / "card.yaml").read_text())
    edit(card)
    (path / "card.yaml").write_text(yaml.safe_dump(card, sort_keys=False))


def _three_channels(card: dict) -> None:
    card["input"]["channels"] = ["WV_062", "IR_108", "IR_120"]
    for key in ("ir_mean", "ir_std"):
        card["normalization"][key]["IR_120"] = 260.0


@pytest.mark.parametrize(
    "edit, match",
    [
        (lambda c: c["architecture"].update(base_channels=16), "weights do not match the model card"),
        (
            lambda c: c["input"].update(frames=3),
            r"backbone.stem.weight: \[8, 4, 3, 3\] in the weights, \[8, 6, 3, 3\]",
        ),
        (_three_channels, r"backbone.stem.weight: \[8, 4, 3, 3\] in the weights, \[8, 6, 3, 3\]"),
        (lambda c: c.update(family="gan"), "unknown model family 'gan'"),
        (lambda c: c.update(version=2), "model card version 2 is not supported"),
        (lambda c: c.pop("format"), "not a qpe model card"),
        (lambda c: c.update(colour="blue"), r"unknown field\(s\) colour"),
        (lambda c: c.pop("weights"), "has no 'weights' entry"),
        (lambda c: c["input"].update(channels=["IR_108", "VIS_006"]), "unknown IR channel"),
        (lambda c: c["normalization"]["ir_std"].update(IR_108=0.0), "normalisation std must be positive"),
        (lambda c: c["architecture"].update(width=3), r"unknown model card 'architecture' settings width"),
        (
            lambda c: c.update(sampling={"sampler": "heun", "steps": 4, "eta": 0.0}),
            "samples with ddim or ddpm",
        ),
    ],
)
def test_bad_cards_are_refused(tmp_path, models, edit, match):
    path = save_variant(models, "ddpm_v" if "ddim" in match else "unet", tmp_path)
    _edit_card(path, edit)
    one_line_error(path, match)


def test_a_foreign_yaml_or_missing_card_is_refused(tmp_path, models):
    path = save_variant(models, "unet", tmp_path)
    (path / "card.yaml").write_text(json.dumps({"model": "resnet50"}))
    one_line_error(path, "not a qpe model card")
    (path / "card.yaml").unlink()
    one_line_error(path, r"has no model card \(card.yaml or card.yml or card.json\)")
    one_line_error(tmp_path / "absent", "no checkpoint folder at")


# -- the residual flow's U-Net -----------------------------------------------------------------------------
def test_residual_flow_refuses_a_unet_with_another_hash(tmp_path, models):
    path = save_variant(models, "flow_residual", tmp_path)
    other = build_variant("unet", seed=3)
    save_checkpoint(other, variant_card("unet"), tmp_path / "unet")
    one_line_error(path, r"base U-Net '../unet' has weights hash .* the card expects")


def test_residual_flow_refuses_a_missing_unet(tmp_path, models):
    path = save_variant(models, "flow_residual", tmp_path)
    (tmp_path / "unet" / "weights.safetensors").unlink()
    one_line_error(path, "has no weights file")


def test_residual_flow_loads_its_unet_first(tmp_path, models, batch):
    loaded = load(save_variant(models, "flow_residual", tmp_path))
    with torch.no_grad():
        np.testing.assert_array_equal(
            loaded.model.base.mean(batch["ir"]).numpy(), models["unet"].mean(batch["ir"]).numpy()
        )


def test_normalisation_is_keyed_by_channel_not_by_order(tmp_path, models):
    path = save_variant(models, "unet", tmp_path)
    card = yaml.safe_load((path / "card.yaml").read_text())
    (path / "card.yaml").write_text(yaml.safe_dump(card, sort_keys=True))  # IR_108 now before WV_062
    loaded = load(path)
    assert loaded.card.normalization.channels == ("WV_062", "IR_108")
    np.testing.assert_allclose(loaded.card.normalization.mean, [250.0, 251.0])
