"""The networks' speed in NCHW (PyTorch's default), NHWC (channels_last) and NHWC folded for inference, here.

    .venv/bin/python benchmarks/network_layout.py
    .venv/bin/python benchmarks/network_layout.py --backbones efficientnet_lite0 resnet34 --repeats 5

`photo2cad.device.place_network` puts AMV-ML in NHWC wherever PyTorch computes it, and inference folds its batch
norms and paddings into the convolutions (`photo2cad.models.inference`); this prints what each buys. Per backbone,
the median milliseconds of (the variants taking turns, after one untimed pass; the folded one cannot train):

- a training step: 16 photos and 24 shapes x 4 views forward and backward (the end-to-end epoch's batch);
- an index batch: 8 shapes x 12 views forward under inference mode;
- a query: one photo forward under inference mode;

and, for the TSM (128 px, 32 channels, as the bundled recipe trains it), a step of its generator and both
discriminators forward and backward on 4 pairs. ImageNet-initialised weights; random inputs (speed only).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch

from photo2cad.device import Network
from photo2cad.models import AMVML, AMVMLConfig, TextureSynthesisModule, TSMConfig
from photo2cad.models.inference import folded_for_inference
from photo2cad.models.training.losses import lsgan_loss
from photo2cad.weights.pretrained import new_amvml

LAYOUTS = {"NCHW": torch.contiguous_format, "NHWC": torch.channels_last}


def paired_medians(works: dict[str, Callable[[], None]], repeats: int) -> dict[str, float]:
    """Median ms of each work; the works take turns, so that a drift in the machine's speed (a shared VM's
    neighbours) falls on all of them alike. One untimed pass each first: it allocates and picks kernels."""
    for work in works.values():
        work()
    times: dict[str, list[float]] = {name: [] for name in works}
    for _ in range(repeats):
        for name, work in works.items():
            start = time.perf_counter()
            work()
            times[name].append((time.perf_counter() - start) * 1000)
    return {name: statistics.median(values) for name, values in times.items()}


def amvml_works(model: AMVML, size: int, device: torch.device, training: bool = True) -> dict[str, Callable[[], None]]:
    photos = torch.rand(16, 3, size, size, device=device)
    views = torch.rand(24, 4, 3, size, size, device=device)
    index_views = torch.rand(8, 12, 3, size, size, device=device)
    query = torch.rand(1, 3, size, size, device=device)

    def training_step() -> None:
        model.train()
        photo_out, shape_out = model.embed_photo(photos), model.embed_views(views)
        loss = photo_out.embedding.sum() + shape_out.embedding.sum() + photo_out.mask_logits.float().mean()
        model.zero_grad(set_to_none=True)
        loss.backward()

    def inference(work: Callable[[], object]) -> Callable[[], None]:
        def run() -> None:
            model.eval()
            with torch.inference_mode():
                work()

        return run

    works = {"training step": training_step} if training else {}
    return works | {
        "index batch": inference(lambda: model.embed_views(index_views)),
        "query": inference(lambda: model.embed_photo(query)),
    }


def tsm_step(tsm: TextureSynthesisModule, device: torch.device) -> Callable[[], None]:
    size = tsm.config.image_size
    normals = torch.rand(4, 3, size, size, device=device) * 2 - 1
    real = torch.rand(4, 3, size, size, device=device) * 2 - 1
    category = torch.zeros(4, dtype=torch.long, device=device)
    discriminators = (tsm.discriminator_70, tsm.discriminator_140)

    def step() -> None:
        mu, logvar = tsm.encoder(real)
        fakes = [
            tsm.synthesize(normals, mu + torch.randn_like(mu) * (0.5 * logvar).exp(), category),
            tsm.synthesize(normals, tsm.sample_z(4, device), category),
        ]
        loss_d = sum(
            lsgan_loss(disc(real).patch_logits, True) + lsgan_loss(disc(fake.detach()).patch_logits, False)
            for disc in discriminators
            for fake in fakes
        )
        loss_g = sum(lsgan_loss(disc(fake).patch_logits, True) for disc in discriminators for fake in fakes)
        tsm.zero_grad(set_to_none=True)
        (loss_d + loss_g + (fakes[0] - real).abs().mean()).backward()  # type: ignore[operator]

    return step


def in_layout(model: Network, layout: str, device: torch.device) -> Network:
    return model.to(device).to(memory_format=LAYOUTS[layout])


def report(label: str, works: dict[str, dict[str, Callable[[], None]]], repeats: int) -> None:
    """works: variant -> measurement -> work; prints each measurement's medians side by side, with each variant's
    ratio to the first (NCHW)."""
    medians = paired_medians(
        {f"{variant}/{name}": work for variant, named in works.items() for name, work in named.items()}, repeats
    )
    first = next(iter(works))
    for name in works[first]:
        base = medians[f"{first}/{name}"]
        figures = [f"{first} {base:.1f} ms"] + [
            f"{variant} {medians[f'{variant}/{name}']:.1f} ms ({medians[f'{variant}/{name}'] / base:.2f}x)"
            for variant in list(works)[1:]
            if name in works[variant]
        ]
        print(f"{label}, {name}: " + ", ".join(figures))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbones", nargs="+", default=["efficientnet_lite0"], help="AMV-ML backbones to time")
    parser.add_argument("--size", type=int, default=160, help="side of photos and views (default 160)")
    parser.add_argument("--repeats", type=int, default=5, help="timed passes of each measurement (default 5)")
    args = parser.parse_args()

    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    name = torch.cuda.get_device_name(0) if cuda else "CPU"
    print(f"torch {torch.__version__}, {name}, {torch.get_num_threads()} threads")
    for backbone in args.backbones:
        config = AMVMLConfig(num_categories=7, backbone=backbone, image_size=args.size)
        works = {
            layout: amvml_works(in_layout(new_amvml(config), layout, device), args.size, device) for layout in LAYOUTS
        }
        folded = folded_for_inference(in_layout(new_amvml(config), "NHWC", device))
        works["NHWC folded"] = amvml_works(folded, args.size, device, training=False)
        report(f"{backbone} {args.size} px", works, args.repeats)
    tsm_config = TSMConfig(image_size=128, base_channels=32, num_categories=7)
    tsm_works = {
        layout: {"step": tsm_step(in_layout(TextureSynthesisModule(tsm_config), layout, device), device)}
        for layout in LAYOUTS
    }
    report("TSM 128 px", tsm_works, args.repeats)


if __name__ == "__main__":
    main()
