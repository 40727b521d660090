"""`photo2cad train tsm`: BicycleGAN-style training of the Texture Synthesis Module with the category terms.

Pairs are (normal map, textured render) of the same shape from the same camera: the generator learns to put a
texture on a geometry. cVAE-GAN half: encode the real texture to z, reconstruct (L1 x10, KL x0.01). cLR-GAN half: a
random z, generate, regress z back with the encoder (x0.5, generator only). Least-squares GAN losses on both
PatchGANs; their category heads learn the category of real images and the generator is asked to match it.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from tqdm import tqdm

from photo2cad.heap import heap_kept_for_reuse
from photo2cad.models import TextureSynthesisModule, TSMConfig
from photo2cad.models.training.config import TSMTrainConfig
from photo2cad.models.training.curves import plot_curves
from photo2cad.models.training.losses import kl_divergence, lsgan_loss, masked_category_loss
from photo2cad.models.training.reproducible import deterministic_algorithms, pin_cublas_workspace, training_machine
from photo2cad.weights.checkpoint import header_for, load_tsm, save_checkpoint

log = logging.getLogger(__name__)

LAST = "tsm-last.safetensors"
STATE = "tsm-trainer-state.pt"


@dataclass(frozen=True)
class TexturePairs:
    """Aligned pairs: normals[i] and textured[i] show the same shape from the same camera."""

    normals: np.ndarray  # (P, S, S, 3) uint8, 255*(0.5 n + 0.5)
    textured: np.ndarray  # (P, S, S, 3) uint8
    categories: np.ndarray  # (P,) int, -1 unknown
    category_names: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.normals)


def _to_unit_range(images: np.ndarray, device: torch.device) -> torch.Tensor:
    return torch.from_numpy(images).to(device).permute(0, 3, 1, 2).float() / 127.5 - 1.0


def _batches(pairs: TexturePairs, batch_size: int, rng: np.random.Generator) -> Iterator[np.ndarray]:
    order = rng.permutation(len(pairs))
    for start in range(0, len(order) - batch_size + 1, batch_size):
        yield order[start : start + batch_size]


def _save_grid(tsm: TextureSynthesisModule, pairs: TexturePairs, path: Path, device: torch.device) -> None:
    """Rows: normal map, real texture, reconstruction from E(real), three random textures."""
    tsm.eval()
    picks = np.linspace(0, len(pairs) - 1, num=min(4, len(pairs))).astype(int)
    normals = _to_unit_range(pairs.normals[picks], device)
    real = _to_unit_range(pairs.textured[picks], device)
    category = torch.from_numpy(np.maximum(pairs.categories[picks], 0)).to(device)
    generator = torch.Generator(device=device).manual_seed(0)
    with torch.no_grad():
        rows = [normals, real, tsm.synthesize(normals, tsm.texture_code(real), category)]
        rows += [tsm.synthesize(normals, tsm.sample_z(len(picks), device, generator), category) for _ in range(3)]
    grid = torch.cat([torch.cat(list(row), dim=2) for row in rows], dim=1)  # (3, rows*S, cols*S)
    pixels = ((grid.clamp(-1, 1) + 1) * 127.5).byte().permute(1, 2, 0).cpu().numpy()
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    tsm.train()


def train_tsm(
    pairs: TexturePairs,
    out_dir: Path,
    model_config: TSMConfig,
    config: TSMTrainConfig,
    device: torch.device,
    training_data: str,
    resume: bool = True,
    max_steps: int | None = None,
    progress: bool = True,
) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    pin_cublas_workspace(config.deterministic, device)
    machine = training_machine(device)  # every epoch's header records it; it does not change within a run
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    tsm = TextureSynthesisModule(model_config).to(device)
    generator_params = [*tsm.encoder.parameters(), *tsm.generator.parameters()]
    discriminator_params = [*tsm.discriminator_70.parameters(), *tsm.discriminator_140.parameters()]
    betas = (config.beta1, 0.999)
    opt_g = torch.optim.Adam(generator_params, lr=config.lr, betas=betas)
    opt_d = torch.optim.Adam(discriminator_params, lr=config.lr, betas=betas)
    history: list[dict[str, float]] = []
    start_epoch, step = 0, 0
    if resume and (out_dir / STATE).is_file() and (out_dir / LAST).is_file():
        tsm = load_tsm(out_dir / LAST, device)[0].train()
        generator_params = [*tsm.encoder.parameters(), *tsm.generator.parameters()]
        discriminator_params = [*tsm.discriminator_70.parameters(), *tsm.discriminator_140.parameters()]
        opt_g = torch.optim.Adam(generator_params, lr=config.lr, betas=betas)
        opt_d = torch.optim.Adam(discriminator_params, lr=config.lr, betas=betas)
        state = torch.load(out_dir / STATE, map_location=device, weights_only=False)
        opt_g.load_state_dict(state["opt_g"])
        opt_d.load_state_dict(state["opt_d"])
        start_epoch, step, history = state["epoch"], state["step"], state["history"]
        log.info("resuming TSM training from epoch %d", start_epoch)
    tsm.train()
    discriminators = (tsm.discriminator_70, tsm.discriminator_140)
    # One bar for the whole run: an epoch of the bundled recipe is hundreds of steps (20 minutes on a slow 2-core CPU).
    total_steps = config.epochs * (len(pairs) // config.batch_size)
    if max_steps is not None:
        total_steps = min(total_steps, max_steps)
    bar = tqdm(total=total_steps, initial=min(step, total_steps), desc="TSM steps", unit="step", disable=not progress)
    with bar, deterministic_algorithms(config.deterministic), heap_kept_for_reuse():
        for epoch in range(start_epoch, config.epochs):
            sums: dict[str, float] = {}
            count = 0
            started = time.perf_counter()
            for picks in _batches(pairs, config.batch_size, rng):
                normals = _to_unit_range(pairs.normals[picks], device)
                real = _to_unit_range(pairs.textured[picks], device)
                labels = torch.from_numpy(pairs.categories[picks]).to(device)
                category = labels.clamp(min=0) if model_config.num_categories else None

                mu, logvar = tsm.encoder(real)
                z_encoded = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
                fake_encoded = tsm.synthesize(normals, z_encoded, category)
                z_random = tsm.sample_z(len(picks), device)
                fake_random = tsm.synthesize(normals, z_random, category)

                # Discriminators: real textures against both kinds of fake; their heads learn the category.
                opt_d.zero_grad(set_to_none=True)
                loss_d = torch.zeros((), device=device)
                for disc in discriminators:
                    real_out = disc(real)
                    loss_d = loss_d + lsgan_loss(real_out.patch_logits, True)
                    loss_d = loss_d + config.category_weight * masked_category_loss(real_out.category_logits, labels)
                    for fake in (fake_encoded, fake_random):
                        loss_d = loss_d + 0.5 * lsgan_loss(disc(fake.detach()).patch_logits, False)
                loss_d.backward()
                opt_d.step()

                # Encoder + generator.
                opt_g.zero_grad(set_to_none=True)
                loss_gan = torch.zeros((), device=device)
                loss_category = torch.zeros((), device=device)
                for disc in discriminators:
                    for fake in (fake_encoded, fake_random):
                        out = disc(fake)
                        loss_gan = loss_gan + lsgan_loss(out.patch_logits, True)
                        loss_category = loss_category + masked_category_loss(out.category_logits, labels)
                loss_l1 = F.l1_loss(fake_encoded, real)
                loss_kl = kl_divergence(mu, logvar)
                total_g = (
                    loss_gan
                    + config.category_weight * loss_category
                    + config.l1_weight * loss_l1
                    + config.kl_weight * loss_kl
                )
                total_g.backward(retain_graph=True)
                # Latent regression trains the generator only (BicycleGAN): the encoder's gradients are discarded.
                for param in tsm.encoder.parameters():
                    param.requires_grad_(False)
                mu_back, _ = tsm.encoder(fake_random)
                loss_latent = F.l1_loss(mu_back, z_random)
                (config.latent_weight * loss_latent).backward()
                for param in tsm.encoder.parameters():
                    param.requires_grad_(True)
                opt_g.step()

                step += 1
                count += 1
                values = {
                    "d": loss_d,
                    "gan": loss_gan,
                    "category": loss_category,
                    "l1": loss_l1,
                    "kl": loss_kl,
                    "latent": loss_latent,
                }
                for name, value in values.items():
                    sums[name] = sums.get(name, 0.0) + float(value.detach())
                bar.update()
                bar.set_postfix(epoch=epoch + 1, l1=round(sums["l1"] / count, 4), refresh=False)
                if step % config.sample_every == 0:
                    _save_grid(tsm, pairs, out_dir / "samples" / f"step-{step:06d}.png", device)
                if max_steps is not None and step >= max_steps:
                    break
            record = {"epoch": epoch + 1, "step": step, "seconds": time.perf_counter() - started}
            record.update({f"loss_{k}": v / max(count, 1) for k, v in sums.items()})
            history.append(record)
            log.info("TSM epoch %d: %s", epoch + 1, json.dumps({k: round(v, 4) for k, v in record.items()}))
            _save_grid(tsm, pairs, out_dir / "samples" / f"epoch-{epoch + 1:03d}.png", device)
            header = header_for(
                tsm,
                training_data=training_data,
                notes={
                    "train_config": config.model_dump(),
                    "categories": list(pairs.category_names),
                    "history": history,
                    "machine": machine,
                },
            )
            save_checkpoint(out_dir / LAST, tsm, header)
            torch.save(
                {
                    "opt_g": opt_g.state_dict(),
                    "opt_d": opt_d.state_dict(),
                    "epoch": epoch + 1,
                    "step": step,
                    "history": history,
                },
                out_dir / STATE,
            )
            plot_curves(history, out_dir / "loss_curve.png")
            if max_steps is not None and step >= max_steps:
                break
    return out_dir / LAST
